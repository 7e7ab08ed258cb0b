#!/usr/bin/env bash
# Configure QEMU for ppc64 into BUILDDIR: once, or again when the options or
# the source directory change. The build itself is ninja's (incremental).
set -euo pipefail

SRC=$(realpath "${1:?usage: configure-qemu.sh SRC BUILDDIR [CONFIGURE-OPTION...]}")
BUILD=${2:?}
shift 2

# Debian's firmware (qemu-system-data, seabios, ipxe-qemu) instead of the
# blobs QEMU would install, at fixed paths; nothing is downloaded. Debian's
# python3 carries meson; a pyenv or venv python first in PATH would not.
FIRMWARE="/usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu"
# -Werror always: a git tree gets it by default, a tarball does not, and
# the same flags let ccache (the Makefile points it at build/cache/ccache)
# reuse for stock what the series' build compiled alike.
CC=cc CXX=c++
if [ -x /usr/lib/ccache/cc ]; then CC=/usr/lib/ccache/cc CXX=/usr/lib/ccache/c++; fi
OPTS="--python=/usr/bin/python3 --target-list=ppc64-softmmu --cc=$CC --cxx=$CXX
      --without-default-features --enable-tools --enable-fdt=system --enable-werror
      --disable-docs --disable-download --disable-install-blobs --disable-relocatable
      --firmwarepath=$(echo $FIRMWARE | tr ' ' :)${*:+ $*}"

mkdir -p "$BUILD"
if [ ! -f "$BUILD/build.ninja" ] || [ "$(cat "$BUILD/.configure-opts" 2>/dev/null)" != "$SRC $OPTS" ]; then
    echo "configure: $SRC into $BUILD"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    # shellcheck disable=SC2086
    if ! (cd "$BUILD" && "$SRC/configure" $OPTS > configure.log 2>&1); then
        tail -n 30 "$BUILD/configure.log" >&2
        echo "configure failed: see $BUILD/configure.log" >&2
        exit 1
    fi
    echo "$SRC $OPTS" > "$BUILD/.configure-opts"
fi

# A binary run from the build tree looks for its data under qemu-bundle/
# instead: point it at the same firmware there.
for dir in $FIRMWARE; do
    mkdir -p "$BUILD/qemu-bundle$(dirname "$dir")"
    ln -sfn "$dir" "$BUILD/qemu-bundle$dir"
done
