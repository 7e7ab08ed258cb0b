#!/usr/bin/env bash
# Run QEMU's scripts/checkpatch.pl over every patch of the series.
# With --results, print one "PASS|FAIL checkpatch/<patch>" line per patch.
set -uo pipefail

TREE=${1:?usage: checkpatch.sh TREE PATCHES [--results]}
PATCHES=$(realpath "${2:?}")
RESULTS=${3:-}
. "$(dirname "$0")/series-lib.sh"

# checkpatch asks for a licence other than GPL-2.0-or-later to be
# explained in the commit message: with the explanation, that warning is
# answered (the other warnings still fail).
licence_explained() {
    local lic
    lic=$(sed -n "s/^WARNING: Saw acceptable license '\([^ ']*\) *'.*/\1/p" <<<"$1" | sort -u)
    [ -n "$lic" ] || return 1
    [ "$(grep -c '^WARNING' <<<"$1")" = "$(grep -c "^WARNING: Saw acceptable license" <<<"$1")" ] || return 1
    for l in $lic; do
        sed '/^---$/q' "$2" | grep -qF "$l" || return 1
    done
}

bad=0
while read -r p; do
    out=$(cd "$TREE" && ./scripts/checkpatch.pl "$PATCHES/$p" 2>&1)
    rc=$?
    if [ $rc = 0 ] && ! grep -q '^WARNING' <<<"$out"; then
        [ -n "$RESULTS" ] && echo "PASS checkpatch/$p" || echo "ok:   $p"
    elif [ $rc = 0 ] && licence_explained "$out" "$PATCHES/$p"; then
        [ -n "$RESULTS" ] && echo "PASS checkpatch/$p (licence warning; the message explains it)" ||
            echo "ok:   $p (licence warning; the message explains it)"
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
