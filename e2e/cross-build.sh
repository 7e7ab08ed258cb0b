#!/usr/bin/env bash
# Cross-build L2's qemu-system-ppc64 for ppc64le, incrementally.
#   e2e/cross-build.sh series|series-11|v19|stock TARBALL DIR[:DIR...] E2E_DIR
# series: E2E_DIR/series-src (a git tree of the tarball, the series of the
#         DIRs applied in order with git am, series/*/10.0; re-applied only
#         when they changed), build in series-build
# series-11: the same on QEMU 11.1's tarball (series/*/11.1)
# v19:    series v19, before issue 19's fixes (evidence only, in no default
#         list): PATCHES_DIR is first written from git, the files that
#         `git show REV:patches/series` lists at REV=${E2E_V19_REV:-a8ae2fe}
# stock:  E2E_DIR/stock-src (the plain tarball), build in stock-build
set -euo pipefail
if [ "${1:-}" = v19 ]; then
    top=$(cd "$(dirname "$0")/.." && pwd) rev=${E2E_V19_REV:-a8ae2fe} out=${3:?}
    mkdir -p "$out"
    command git -C "$top" show "$rev:patches/series" > "$out/series.new"
    for f in $(cat "$out/series.new"); do command git -C "$top" show "$rev:patches/$f" > "$out/$f"; done
    mv "$out/series.new" "$out/series"
fi
KIND=${1:?}; TARBALL=$(realpath "${2:?}"); E2E=$(realpath -m "${4:?}")
IFS=: read -r -a DIRS <<<"${3:?}"
PATCHES=""
for d in "${DIRS[@]}"; do
    d=$(realpath "$d")
    for f in $(sed -e 's/#.*//' "$d/series"); do PATCHES="$PATCHES $d/$f"; done
done
SRC=$E2E/$KIND-src BLD=$E2E/$KIND-build SYSROOT=$E2E/sysroot
die() { echo "e2e/cross-build($KIND): error: $*" >&2; exit 1; }
[ -f "$SYSROOT/.stamp" ] || die "no sysroot in $SYSROOT (run e2e/sysroot.sh)"
git() { command git -c user.name=e2e -c user.email=e2e@localhost -c advice.detachedHead=false -c gc.auto=0 "$@"; }

if [ ! -f "$SRC/VERSION" ]; then
    rm -rf "$SRC"; mkdir -p "$SRC"
    tar -xf "$TARBALL" -C "$SRC" --strip-components=1
    if [ "$KIND" != stock ]; then
        (cd "$SRC" && git init -q && git add -A -f && git commit -q -m baseline && git tag baseline)
    fi
fi
if [ "$KIND" != stock ]; then
    # shellcheck disable=SC2086
    sum=$(cat $PATCHES | sha256sum | cut -c1-16)
    if [ "$(cat "$SRC/.git/e2e-applied" 2>/dev/null)" != "$sum" ]; then
        echo "e2e: applying ${DIRS[*]} to $SRC"
        # shellcheck disable=SC2086
        (cd "$SRC" && { git am --abort >/dev/null 2>&1 || true; } &&
            git reset -q --hard baseline && git clean -q -fdx &&
            git am -q $PATCHES) ||
            die "${DIRS[*]} do not apply (git am)"
        echo "$sum" > "$SRC/.git/e2e-applied"
    fi
fi

L=$SYSROOT/usr/lib/powerpc64le-linux-gnu L2=$SYSROOT/lib/powerpc64le-linux-gnu
export PKG_CONFIG=pkg-config
export PKG_CONFIG_LIBDIR=$L/pkgconfig:$SYSROOT/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
# The issue's flags, plus vhost-kernel/vhost-net (default features, off with
# --without-default-features) for case 5's vhost-net iommu_platform=on.
# L2 runs with -accel kvm only: no TCG (a third less to compile).
OPTS=(--cross-prefix=powerpc64le-linux-gnu- --enable-kvm --disable-tcg --target-list=ppc64-softmmu
      --python=/usr/bin/python3 --without-default-features --enable-fdt=system
      --disable-docs --disable-download --enable-trace-backends=log
      --enable-vhost-kernel --enable-vhost-net
      --disable-install-blobs --firmwarepath=/usr/share/qemu
      --extra-cflags="--sysroot=$SYSROOT"
      --extra-ldflags="--sysroot=$SYSROOT -L$L -L$L2 -Wl,-rpath-link,$L:$L2")
# QEMU 11's configure wants qemu.qmp (scripts/fetch-qemu.sh unpacks it)
py=$(dirname "$TARBALL")/qemu11-python/usr/lib/python3/dist-packages
if [ ! -f "$BLD/build.ninja" ] || [ "$(cat "$BLD/.e2e-opts" 2>/dev/null)" != "${OPTS[*]}" ]; then
    rm -rf "$BLD"; mkdir -p "$BLD"
    (cd "$BLD" && PYTHONPATH=$py "$SRC/configure" "${OPTS[@]}") > "$E2E/$KIND-configure.log" 2>&1 ||
        { rm -f "$BLD/build.ninja"; tail -n 30 "$E2E/$KIND-configure.log" >&2; die "configure failed: $E2E/$KIND-configure.log"; }
    echo "${OPTS[*]}" > "$BLD/.e2e-opts"
fi
nice -n 10 ninja -C "$BLD" -j "${E2E_JOBS:-2}" qemu-system-ppc64 > "$E2E/$KIND-build.log" 2>&1 ||
    { tail -n 40 "$E2E/$KIND-build.log" >&2; die "build failed: $E2E/$KIND-build.log"; }
file "$BLD/qemu-system-ppc64" | grep -q 'PowerPC' || die "$BLD/qemu-system-ppc64 is not a ppc64 binary"
