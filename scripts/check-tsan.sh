#!/usr/bin/env bash
# The series' qtest cases with a second thread reading TCE tables (an
# iothread's DMA under RCU) on a ThreadSanitizer build: a data race report
# with a frame in the sPAPR IOMMU code fails, since those readers must only
# use what RCU published. QEMU's other reports (guest memory, the block
# layer) are not the series' and are only counted.
#   scripts/check-tsan.sh TSAN_BUILD TEST_BUILD CASE...
# The test program comes from TEST_BUILD, a build without TSan: libqtest's
# socket handshake fails under TSan's interceptors. A race shows only when
# the two threads happen to touch the data without a synchronizing event in
# between (12 of 30 runs of rcu-reader with v19's reader, which races),
# so each case runs TSAN_RUNS times (default 5).
set -uo pipefail
BUILD=$(realpath "${1:?usage: check-tsan.sh TSAN_BUILD TEST_BUILD CASE...}")
TESTS=$(realpath "${2:?}")
shift 2
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pass=0 fail=0
for c in "$@"; do
    rm -f "$logs"/*
    for i in $(seq "${TSAN_RUNS:-5}"); do
        out=$(cd "$BUILD" && TSAN_OPTIONS="log_path=$logs/tsan exitcode=0" \
            QTEST_QEMU_BINARY=./qemu-system-ppc64 \
            QTEST_VFIO_MODEL=$TESTS/tests/qtest/vfio-spapr-model/libvfio-spapr-model.so \
            timeout 600 "$TESTS/tests/qtest/spapr-tce-vfio-test" \
            -p "/ppc64/spapr-tce-vfio/$c" 2>&1)
        rc=$?
        [ "$rc" = 0 ] || break
    done
    # A report is ours when one of its two accesses (the first frame after
    # "Read/Write of size") is in the sPAPR IOMMU code.
    read -r reports ours < <(cat "$logs"/tsan.* 2>/dev/null | python3 -c '
import re, sys
blocks = re.split(r"^={18}$", sys.stdin.read(), flags=re.M)
reps = [b for b in blocks if "WARNING: ThreadSanitizer" in b]
def ours(b):
    return any("spapr_iommu.c" in m.group(1) for m in
               re.finditer(r"(?:Read|Write|read|write) of size.*\n\s+#0 (.*)", b))
hits = [b for b in reps if ours(b)]
print(len(reps), len(hits))
open(sys.argv[1], "w").write("".join(hits))' "$logs/ours")
    if [ "$rc" = 0 ] && [ "$ours" = 0 ]; then
        echo "PASS tsan/$c: no race in the sPAPR IOMMU ($reports other reports)"
        pass=$((pass + 1))
    else
        echo "FAIL tsan/$c: exit $rc, $ours race(s) in the sPAPR IOMMU"
        head -n 60 "$logs/ours"
        echo "$out" | tail -n 5
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
