#!/usr/bin/env bash
# Run QEMU's scripts/checkpatch.pl over every patch of the series.
# With --results, print one "PASS|FAIL checkpatch/<patch>" line per patch.
set -uo pipefail

TREE=${1:?usage: checkpatch.sh TREE PATCHES [--results]}
PATCHES=$(realpath "${2:?}")
RESULTS=${3:-}
. "$(dirname "$0")/series-lib.sh"

bad=0
while read -r p; do
    if out=$(cd "$TREE" && ./scripts/checkpatch.pl "$PATCHES/$p" 2>&1) &&
       ! grep -q '^WARNING' <<<"$out"; then
        [ -n "$RESULTS" ] && echo "PASS checkpatch/$p" || echo "ok:   $p"
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
