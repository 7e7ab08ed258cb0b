#!/usr/bin/env bash
# Everything `make check-e2e` needs besides L0 (build/bin/qemu-system-ppc64):
# host packages, the ppc64el sysroot and kernels, the L2 QEMUs cross-built
# (series: the series/*/10.0 stack, stock: the same tarball, series-11:
# the series/*/11.1 stack on QEMU 11.1's), the L1 initramfs per kernel. Incremental;
# downloads are cached in build/cache/e2e.
#   e2e/prepare.sh [SUITE...]   (default: trixie sid)
# E2E_BUILDS (comma-separated, as for run.py; default series,series-11, as
# make check-e2e; add stock to compare) limits the
# cross builds, for faster iteration; the initramfs takes the builds present.
# E2E_BUILDS=v19 (never a default) cross-builds series v19 as it was before
# issue 19's fixes, from git (commit a8ae2fe; E2E_V19_REV), for evidence:
# the cases that must fail on it (build/e2e/v19-patches, v19-build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$top/scripts/series-lib.sh"
E2E=$top/build/e2e
TARBALL=$top/build/cache/qemu-orig.tar.xz
TARBALL11=$top/build/cache/qemu11-orig.tar.xz
SUITES=${*:-trixie sid}
stamp() { printf 'prepare: %-28s %5ss\n' "$1" "$(( $(date +%s) - $2 ))"; }

t=$(date +%s); "$top/scripts/e2e-deps.sh"; stamp "host packages" $t
[ -f "$TARBALL" ] || "$top/scripts/fetch-qemu.sh" "$top/build/cache"
BUILDS=$(echo "${E2E_BUILDS:-series,series-11}" | tr , ' ')
case " $BUILDS " in *" series-11 "*) [ -f "$TARBALL11" ] || "$top/scripts/fetch-qemu.sh" "$top/build/cache" 11.1 ;; esac
t=$(date +%s); E2E_KERNEL_SUITES="$SUITES" "$here/sysroot.sh" "$E2E"; stamp "sysroot + kernels" $t
for b in $BUILDS; do
    tb=$TARBALL p=$(stack_dirs 10.0 | paste -sd:)
    [ $b != series-11 ] || tb=$TARBALL11 p=$(stack_dirs 11.1 | paste -sd:)
    [ $b != v19 ] || p=$E2E/v19-patches
    t=$(date +%s); "$here/cross-build.sh" $b "$tb" "$p" "$E2E"; stamp "cross-build $b" $t
done
for s in $SUITES; do
    t=$(date +%s); E2E_BUILDS="$BUILDS" "$here/initramfs.sh" "$E2E" "$s"; stamp "initramfs $s" $t
done
