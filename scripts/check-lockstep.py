#!/usr/bin/env python3
"""Check that two series directories hold the same patches, in the same
order, with the same subjects: one series on two bases
(series/NAME/10.0 and series/NAME/11.1). Prints "PASS lockstep/NN: subject" for each pair that
matches and "FAIL lockstep/...: why" for a patch missing from one series
or a subject that differs; exits non-zero on any failure. A patch of
DIR_A alone is in step when its message says "This is [AUTHOR's] upstream
commit HASH": a backport of a fix the base of DIR_B already has.

Usage: check-lockstep.py DIR_A DIR_B
"""

import email.parser
import os
import re
import sys


def patches(d):
    """(subject without "[PATCH ...]", upstream commit or None) of each
    patch d/series lists"""
    out = []
    with open(os.path.join(d, "series")) as f:
        names = [l.split("#")[0].strip() for l in f]
    for name in filter(None, names):
        with open(os.path.join(d, name), errors="replace") as p:
            msg = email.parser.Parser().parse(p)
        subj = " ".join(str(msg["Subject"] or "").split())
        body = str(msg.get_payload()).split("\n---\n")[0]
        up = re.search(r"This is (?:[^.]*?'s )?upstream commit ([0-9a-f]{12,40})\b",
                       " ".join(body.split()))
        out.append((re.sub(r"^\[[^]]*\]\s*", "", subj),
                    up.group(1) if up else None))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    a, b = sys.argv[1:]
    pa, sb = patches(a), [s for s, _ in patches(b)]
    failed = 0
    for subj, up in pa:
        if up:
            print(f"PASS lockstep/backport: {subj} (only in {a}: "
                  f"upstream {up})")
    sa = [s for s, up in pa if not up]
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        if x == y:
            print(f"PASS lockstep/{i + 1:02}: {x}")
            continue
        failed += 1
        if y is None:
            print(f"FAIL lockstep/{i + 1:02}: only in {a}: {x}")
        elif x is None:
            print(f"FAIL lockstep/{i + 1:02}: only in {b}: {y}")
        else:
            print(f"FAIL lockstep/{i + 1:02}: {a} has \"{x}\", {b} has \"{y}\"")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
