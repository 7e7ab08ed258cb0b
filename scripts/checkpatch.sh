#!/usr/bin/env bash
# Run QEMU's scripts/checkpatch.pl over every patch of the series.
# With --results, print one "PASS|FAIL checkpatch/<patch>" line per patch.
set -uo pipefail

TREE=${1:?usage: checkpatch.sh TREE PATCHES [--results]}
PATCHES=$(realpath "${2:?}")
RESULTS=${3:-}
. "$(dirname "$0")/series-lib.sh"

# Two warnings of checkpatch ask a question rather than find a fault, and
# count as answered when:
#  - "Saw acceptable license ... Please explain the license choice in the
#    commit message": the commit message names that licence;
#  - "added, moved or deleted file(s), does MAINTAINERS need updating?":
#    every file the patch adds is covered by an F: entry of the tree's
#    MAINTAINERS (a series that adds a directory's section first).
# Any other warning fails.
answered() {    # answered CHECKPATCH_OUTPUT PATCH
    local lic l
    if grep '^WARNING' <<<"$1" | grep -v -e "^WARNING: Saw acceptable license" \
        -e "^WARNING: added, moved or deleted file(s), does MAINTAINERS need updating?" | grep -q .; then
        return 1
    fi
    lic=$(sed -n "s/^WARNING: Saw acceptable license '\([^ ']*\) *'.*/\1/p" <<<"$1" | sort -u)
    for l in $lic; do
        sed '/^---$/q' "$2" | grep -qF "$l" || return 1
    done
    if grep -q "^WARNING: added, moved or deleted file" <<<"$1"; then
        python3 - "$TREE/MAINTAINERS" "$2" <<'PY' || return 1
import fnmatch, re, sys
pats = [l[3:].strip() for l in open(sys.argv[1], errors="replace") if l.startswith("F: ")]
new = re.findall(r"^diff --git a/\S+ b/(\S+)\nnew file mode", open(sys.argv[2], errors="replace").read(), re.M)
def covered(f):
    return any(f.startswith(p) if p.endswith("/") else fnmatch.fnmatch(f, p) for p in pats)
sys.exit(0 if new and all(covered(f) for f in new) else 1)
PY
    fi
}

bad=0
while read -r p; do
    out=$(cd "$TREE" && ./scripts/checkpatch.pl "$PATCHES/$p" 2>&1)
    rc=$?
    if [ $rc = 0 ] && ! grep -q '^WARNING' <<<"$out"; then
        [ -n "$RESULTS" ] && echo "PASS checkpatch/$p" || echo "ok:   $p"
    elif [ $rc = 0 ] && answered "$out" "$PATCHES/$p"; then
        [ -n "$RESULTS" ] && echo "PASS checkpatch/$p (its warnings answered: licence explained, files under MAINTAINERS)" ||
            echo "ok:   $p (its warnings answered: licence explained, files under MAINTAINERS)"
    else
        bad=1
        if [ -n "$RESULTS" ]; then
            echo "FAIL checkpatch/$p: $(grep -m1 '^\(ERROR\|WARNING\)' <<<"$out")"
        else
            echo "FAIL: $p"; echo "$out"
        fi
    fi
done < <(series_files)
exit $bad
