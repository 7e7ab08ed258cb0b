#!/usr/bin/env bash
# Run every test of the project and print one line per test, then the
# summary "N passed, N failed". A test that did not run (skipped, missing,
# crashed before reporting) counts as failed. Exits non-zero on any failure.
set -uo pipefail

B=$(realpath "${1:?usage: run-tests.sh BUILD_DIR QTEST...}")
shift
QEMU_BUILD=$B/qemu-build
TREE=$B/qemu
# The series on QEMU 11.1 (series/*/11.1/), built by make build-11
QEMU11_BUILD=$B/qemu-11-build
TREE11=$B/qemu-11
RESULTS=$B/test-results.txt
cd "$(dirname "$0")/.."
: > "$RESULTS"

# The qtests that belong to the series: a skipped case there is a failure.
OWN_QTESTS="spapr-tce-vfio-test"
# They run vfio-pci against the model of the kernel's VFIO sPAPR interface,
# whose path meson passes, as in any build of the series.
unset QTEST_VFIO_MODEL

record() {   # record PASS|FAIL|XFAIL NAME [WHY]
    echo "$1 $2${3:+: $3}" | tee -a "$RESULTS"
}

# run_suite NAME CMD...: CMD prints "PASS x" / "FAIL x: why" lines.
run_suite() {
    local name=$1 out rc n=0
    shift
    out=$("$@" 2>&1)
    rc=$?
    while read -r res test why; do
        case $res in
        PASS|FAIL) record "$res" "$name/$test" "${why#: }"; n=$((n + 1)) ;;
        XFAIL) record "$res" "$name/$test" "${why#: }" ;;     # shown, not counted
        esac
    done < <(grep -E '^(PASS|FAIL|XFAIL) ' <<<"$out" | sed 's/^\(PASS\|FAIL\|XFAIL\) \([^:]*\)\(: \)\?/\1 \2 /')
    if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        record FAIL "$name" "exited with $rc without reporting a failure"
        echo "$out" | tail -n 20
    elif [ "$n" = 0 ]; then
        record FAIL "$name" "no test ran"
        echo "$out" | tail -n 20
    fi
}

# 1. QEMU's qtests and the series' own, through meson test, in the build of
#    each series: run_qtests LABEL BUILD QTEST...
run_qtests() {
    local label=$1 build=$2 names=() t
    shift 2
    for t in "$@"; do names+=("qtest-ppc64/$t"); done
    meson test -C "$build" --no-rebuild --print-errorlogs "${names[@]}" \
        > "$build/meson-test-run.log" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$build/meson-test-run.log"
    while read -r res name why; do record "$res" "$label$name" "$why"; done < <(
python3 - "$build/meson-logs/testlog.json" "$OWN_QTESTS" "$@" <<'PY'
import json, sys
log, own, wanted = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
seen = {}
with open(log) as f:
    for line in f:
        t = json.loads(line)
        seen[t["name"].rsplit("/", 1)[-1]] = t
for name in wanted:
    t = seen.get(name)
    skips = [l for l in (t or {}).get("stdout", "").splitlines() if "# SKIP" in l]
    if not t:
        print(f"FAIL qtest-ppc64/{name} did not run")
    elif t["result"] != "OK":
        print(f"FAIL qtest-ppc64/{name} {t['result'].lower()}")
    elif name in own and skips:
        print(f"FAIL qtest-ppc64/{name} skipped: {skips[0]}")
    else:
        note = f"({len(skips)} subtests skipped by QEMU itself)" if skips else ""
        print(f"PASS qtest-ppc64/{name} {note}")
PY
    )
}
run_qtests "" "$QEMU_BUILD" "$@"
cp "$QEMU_BUILD/meson-test-run.log" "$B/meson-test.log"
run_qtests "qemu-11.1/" "$QEMU11_BUILD" "$@"

# 1b. The series' qtest keeps a preload of its caller's (an ASan runtime,
#     say) and adds the model after it: one case, under a marking library.
mark_lib=$B/lib/libpreload-mark.so
mark_out=$B/preload-mark.txt
rm -f "$mark_out"
if ! gcc -shared -fPIC -o "$mark_lib" scripts/preload-mark.c; then
    record FAIL "qtest-ppc64/spapr-tce-vfio-test-keeps-ld-preload" "cannot build the marking library"
elif ! LD_PRELOAD=$mark_lib PRELOAD_MARK=$mark_out \
        meson test -C "$QEMU_BUILD" --no-rebuild qtest-ppc64/spapr-tce-vfio-test \
        --test-args '-p /ppc64/spapr-tce-vfio/cold-plug' > "$B/meson-preload.log" 2>&1; then
    record FAIL "qtest-ppc64/spapr-tce-vfio-test-keeps-ld-preload" "the cold-plug case failed: see $B/meson-preload.log"
else
    want="$mark_lib $QEMU_BUILD/tests/qtest/vfio-spapr-model/libvfio-spapr-model.so"
    starts=$(grep -c . "$mark_out" 2>/dev/null || true)
    bad=$(grep -cvxF "$want" "$mark_out" 2>/dev/null || true)
    if [ "${starts:-0}" -gt 0 ] && [ "${bad:-1}" = 0 ]; then
        record PASS "qtest-ppc64/spapr-tce-vfio-test-keeps-ld-preload" "($starts QEMU starts)"
    else
        record FAIL "qtest-ppc64/spapr-tce-vfio-test-keeps-ld-preload" \
            "$starts QEMU starts, $bad without LD_PRELOAD=\"$want\": $(head -n 2 "$mark_out" 2>/dev/null | tr '\n' ' ')"
    fi
fi

# 2. The VFIO model: its own tests, under ASan/LSan too, and against QEMU
#    with and without the series.
run_suite vfio-model make -s -C vfio-model check O="$B"
run_suite vfio-model-asan make -s -C vfio-model check-asan O="$B"
run_suite vfio-model-qemu-series make -s -C vfio-model check-qemu O="$B" \
    QEMU="$B/bin/qemu-system-ppc64" SERIES=1
run_suite vfio-model-qemu-stock make -s -C vfio-model check-qemu O="$B" \
    QEMU="$B/bin/qemu-system-ppc64-stock"

# 3. The series (series/order, each in series/NAME/10.0 and /11.1): each
#    base's tree is its whole stack applied (make tree, make tree-11) and
#    re-exports to exactly the series directories; every patch passes its
#    base's checkpatch.pl; each series is in step across the bases (the
#    same patches, in the same order, with the same subjects). Then one
#    line per series that says all three.
. scripts/series-lib.sh
mapfile -t STACK10 < <(stack_dirs 10.0)
mapfile -t STACK11 < <(stack_dirs 11.1)
for base in 10.0 11.1; do
    if [ $base = 10.0 ]; then tree=$TREE dirs=("${STACK10[@]}"); else tree=$TREE11 dirs=("${STACK11[@]}"); fi
    if out=$(scripts/export-series.sh check "$tree" "${dirs[@]}" 2>&1); then
        record PASS "series/$base-stack-applies-and-re-exports" "(${#dirs[@]} series)"
    else
        record FAIL "series/$base-stack-applies-and-re-exports" "$(echo "$out" | head -n 3 | tr '\n' ' ')"
    fi
done
for i in "${!STACK10[@]}"; do
    d10=${STACK10[$i]} d11=${STACK11[$i]}
    name=$(basename "$(dirname "$d10")")
    before=$(grep -c '^FAIL ' "$RESULTS")
    run_suite "$name/10.0" scripts/checkpatch.sh "$TREE" "$d10" --results
    run_suite "$name/11.1" scripts/checkpatch.sh "$TREE11" "$d11" --results
    run_suite "$name" python3 scripts/check-lockstep.py "$d10" "$d11"
    n10=$(PATCHES=$d10 series_files | wc -l) n11=$(PATCHES=$d11 series_files | wc -l)
    if [ "$(grep -c '^FAIL ' "$RESULTS")" = "$before" ] &&
       grep -q "^PASS series/10.0-stack" "$RESULTS" && grep -q "^PASS series/11.1-stack" "$RESULTS"; then
        record PASS "series/$name" "applies (10.0.13: $n10 patches, 11.1.1: $n11), checkpatch clean, lockstep"
    else
        record FAIL "series/$name" "see the lines above"
    fi
done

# 4. Reliability (reliability/README.md), reduced: 5000 hostile TCE
#    hypercalls (a random seed, printed on every line) and the probes of the
#    bugs they found (XFAIL while the bugs are there), then migration with
#    VFIO, then the fault sweep (every other failing kernel call of hotplug,
#    unplug, DDW create/remove and system_reset; known defects XFAIL), then
#    the storm (100 random cycles of hotplug/unplug of two groups on two
#    PHBs, DDW create/remove and system_reset per host flavour, a random
#    seed; on this build, without sanitizers, which it says: make
#    check-storm runs 500 under ASan + UBSan). make check-reliability runs
#    them at full size.
run_suite reliability python3 reliability/hostile.py --calls 5000 \
    --qemu "$B/bin/qemu-system-ppc64" --model "$B/lib/libvfio-model.so"
run_suite reliability python3 reliability/migration.py --size reduced \
    --qemu "$B/bin/qemu-system-ppc64" --model "$B/lib/libvfio-model.so"
run_suite reliability python3 reliability/sweep.py --size reduced \
    --qemu "$B/bin/qemu-system-ppc64" --model "$B/lib/libvfio-model.so"
run_suite reliability python3 reliability/storm.py --cycles 100 --check-every 10 \
    --qemu "$B/bin/qemu-system-ppc64" --model "$B/lib/libvfio-model.so"

passed=$(grep -c '^PASS ' "$RESULTS")
failed=$(grep -c '^FAIL ' "$RESULTS")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
