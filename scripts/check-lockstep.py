#!/usr/bin/env python3
"""Check that two series directories hold the same patches, in the same
order, with the same subjects: patches/ (QEMU 10.0.13) and its port
(patches-11.1/). Prints "PASS lockstep/NN: subject" for each pair that
matches and "FAIL lockstep/...: why" for a patch missing from one series
or a subject that differs; exits non-zero on any failure.

Usage: check-lockstep.py DIR_A DIR_B
"""

import email.parser
import os
import re
import sys


def subjects(d):
    """The subjects of the patches d/series lists, without "[PATCH ...]"."""
    out = []
    with open(os.path.join(d, "series")) as f:
        names = [l.split("#")[0].strip() for l in f]
    for name in filter(None, names):
        with open(os.path.join(d, name), errors="replace") as p:
            hdr = email.parser.Parser().parse(p, headersonly=True)
        subj = " ".join(str(hdr["Subject"] or "").split())
        out.append(re.sub(r"^\[[^]]*\]\s*", "", subj))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    a, b = sys.argv[1:]
    sa, sb = subjects(a), subjects(b)
    failed = 0
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
