#!/usr/bin/env bash
# Fetch QEMU's upstream orig tarball from Debian's source package into
# CACHE_DIR and verify it. CACHE_DIR/qemu-orig.tar.xz points at the tarball.
set -euo pipefail

PIN_VERSION='1:10.0.13+ds-0+deb13u1'
PIN_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
CACHE=${1:?usage: fetch-qemu.sh CACHE_DIR}

die() { echo "fetch: error: $*" >&2; exit 1; }
mkdir -p "$CACHE"
cd "$CACHE"

pinned=qemu_10.0.13+ds.orig.tar.xz
if [ -f "$pinned" ] && echo "$PIN_SHA256  $pinned" | sha256sum -c --quiet - 2>/dev/null; then
    ln -sfn "$pinned" qemu-orig.tar.xz
    exit 0
fi

version=$PIN_VERSION
available=$(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p')
if ! grep -qxF "$PIN_VERSION" <<<"$available"; then
    version=$(grep -x '1:10\.0\.[0-9]*+ds-.*' <<<"$available" | sort -V | tail -n 1)
    [ -n "$version" ] || die "no qemu 1:10.0.x source package in the apt sources (run scripts/deps.sh)"
    {
        echo "fetch: ################################################################"
        echo "fetch: WARNING: qemu $PIN_VERSION has left the archive;"
        echo "fetch: WARNING: using $version instead. The series was made on 10.0.13."
        echo "fetch: ################################################################"
    } >&2
fi

echo "fetch: apt-get source --download-only qemu=$version" >&2
# apt drops privileges to _apt, which cannot write here: that is only a warning.
apt-get source -q --download-only "qemu=$version" 2>&1 |
    grep -v "couldn't be accessed by user" >&2 || true
upstream=${version#*:}
upstream=${upstream%-*}
tarball=qemu_$upstream.orig.tar.xz
[ -f "$tarball" ] || die "apt-get source did not produce $tarball"
if [ "$version" = "$PIN_VERSION" ]; then
    echo "$PIN_SHA256  $tarball" | sha256sum -c --quiet - ||
        die "$tarball: sha256 mismatch (expected $PIN_SHA256)"
fi
# Only the upstream tarball is used: Debian's own patches are not applied.
rm -f qemu_*.debian.tar.* qemu_*.dsc
ln -sfn "$tarball" qemu-orig.tar.xz
echo "fetch: $CACHE/$tarball"
