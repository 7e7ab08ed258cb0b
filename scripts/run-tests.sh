#!/usr/bin/env bash
# Run every test of the project and print one line per test, then the
# summary "N passed, N failed". A test that did not run (skipped, missing)
# counts as failed. Exits non-zero on any failure.
set -uo pipefail

B=$(realpath "${1:?usage: run-tests.sh BUILD_DIR QTEST...}")
shift
QEMU_BUILD=$B/qemu-build
TREE=$B/qemu
RESULTS=$B/test-results.txt
: > "$RESULTS"
cd "$(dirname "$0")/.."

record() {   # record PASS|FAIL NAME [WHY]
    echo "$1 $2${3:+: $3}" | tee -a "$RESULTS"
}

# 1. QEMU's qtests, through meson test.
names=()
for t in "$@"; do names+=("qtest-ppc64/$t"); done
meson test -C "$QEMU_BUILD" --no-rebuild --print-errorlogs "${names[@]}" \
    > "$B/meson-test.log" 2>&1
tail -n 25 "$B/meson-test.log"
python3 - "$QEMU_BUILD/meson-logs/testlog.json" "${names[@]}" >> "$RESULTS.meson" <<'PY'
import json, sys
log, wanted = sys.argv[1], sys.argv[2:]
seen = {}
with open(log) as f:
    for line in f:
        t = json.loads(line)
        seen[t["name"]] = t["result"]
for name in wanted:
    r = seen.get(name)
    if r == "OK":
        print(f"PASS {name}")
    else:
        print(f"FAIL {name}: {r.lower() if r else 'did not run'}")
PY
while read -r res name why; do record "$res" "$name" "${why#: }"; done < "$RESULTS.meson"
rm -f "$RESULTS.meson"

# 2. The series itself: it re-exports to exactly patches/, and every patch
#    passes QEMU's checkpatch.pl.
if out=$(scripts/export-series.sh check "$TREE" patches 2>&1); then
    record PASS "series/export-is-stable"
else
    record FAIL "series/export-is-stable" "$(echo "$out" | head -n 3 | tr '\n' ' ')"
fi
while read -r res name why; do record "$res" "$name" "${why#: }"; done \
    < <(scripts/checkpatch.sh "$TREE" patches --results)

passed=$(grep -c '^PASS ' "$RESULTS")
failed=$(grep -c '^FAIL ' "$RESULTS")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
