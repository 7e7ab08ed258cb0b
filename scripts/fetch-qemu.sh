#!/usr/bin/env bash
# Fetch QEMU's upstream orig tarball from Debian's source package into
# CACHE_DIR and verify it, for one of the two series:
#   10.0  (default) qemu 1:10.0.13 from trixie; CACHE_DIR/qemu-orig.tar.xz
#   11.1  the newest 11.x that Debian's archive serves (from sid);
#         CACHE_DIR/qemu11-orig.tar.xz, and python3-qemu-qmp unpacked in
#         CACHE_DIR/qemu11-python (QEMU 11's configure wants qemu.qmp,
#         which Debian's "+ds" tarball drops from python/wheels and Debian
#         12 and 13 do not package)
set -euo pipefail

CACHE=${1:?usage: fetch-qemu.sh CACHE_DIR [10.0|11.1]}
SERIES=${2:-10.0}

die() { echo "fetch: error: $*" >&2; exit 1; }
warn_fallback() {
    {
        echo "fetch: ################################################################"
        echo "fetch: WARNING: qemu $1 has left the archive;"
        echo "fetch: WARNING: using $2 instead. The series was made on $1."
        echo "fetch: ################################################################"
    } >&2
}
mkdir -p "$CACHE"
CACHE=$(realpath "$CACHE")
cd "$CACHE"

# The machine's Debian mirror, from its apt configuration.
mirror() {
    local m
    m=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        awk 'tolower($1) == "uris:" && $2 ~ /debian\/?$/ { print $2; exit }')
    [ -n "$m" ] || m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++)
        if ($i ~ /^[a-z]+:\/\/.*debian\/?$/) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null | head -n 1)
    echo "$m"
}

# apt-get/apt-cache with a private state in CACHE/apt-sid, whose sources
# are sid's (source and binary packages); the host's apt is not touched.
# A mirror that serves a frozen sid (any snapshot mirror) has a Release
# past its Valid-Until: said here, not inherited from the host's apt.conf.d
# (a fresh Debian has no such setting). Signatures and hashes are still
# checked, and the tarball against its pinned sha256.
sid_apt() {
    local d=$CACHE/apt-sid cmd=$1 m
    shift
    mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/etc"
    : > "$d/status.empty"
    if [ ! -s "$d/etc/sources.list" ]; then
        m=$(mirror)
        [ -n "$m" ] || die "no Debian mirror in /etc/apt"
        printf '%s\n' \
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m sid main" \
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $m sid main" \
            > "$d/etc/sources.list"
    fi
    "$cmd" -q -o Dir::State="$d/state" -o Dir::Cache="$d/cache" \
        -o Dir::State::status="$d/status.empty" \
        -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Parts=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
        -o Acquire::Languages=none -o Acquire::Check-Valid-Until=false "$@"
}

# apt-get source --download-only QEMU=VERSION with APT ("apt-get" or
# "sid_apt apt-get"); prints the tarball, or fails (not in the index, or
# a 404).
download_source() {
    local apt=$1 version=$2 upstream tarball
    upstream=${version#*:}
    upstream=${upstream%-*}
    tarball=qemu_$upstream.orig.tar.xz
    echo "fetch: apt-get source --download-only qemu=$version" >&2
    # apt drops privileges to _apt, which cannot write here: only a warning.
    $apt source -q --download-only "qemu=$version" 2>&1 |
        grep -v "couldn't be accessed by user" >&2 || true
    # Only the upstream tarball is used: Debian's own patches are not applied.
    rm -f qemu_*.debian.tar.* qemu_*.dsc
    [ -f "$tarball" ] && echo "$tarball"
}

if [ "$SERIES" = 10.0 ]; then
    PIN_VERSION='1:10.0.13+ds-0+deb13u1'
    PIN_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
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
        warn_fallback "$PIN_VERSION" "$version"
    fi
    tarball=$(download_source apt-get "$version") || die "apt-get source did not produce the tarball"
    if [ "$version" = "$PIN_VERSION" ]; then
        echo "$PIN_SHA256  $tarball" | sha256sum -c --quiet - ||
            die "$tarball: sha256 mismatch (expected $PIN_SHA256)"
    fi
    ln -sfn "$tarball" qemu-orig.tar.xz
    echo "fetch: $CACHE/$tarball"
    exit 0
fi

[ "$SERIES" = 11.1 ] || die "unknown series '$SERIES' (10.0 or 11.1)"

# The newest 11.x whose files the mirror serves today. Sid's index lists
# 1:11.1.3+ds-1 and 1:11.1.2+ds-3, but the pool answers 404 for both
# (the index is ahead of the pool); 11.1.1's files are still there.
PIN_VERSION='1:11.1.1+ds-1'
PIN_SHA256=0b1376e75dbe3e2fea4e408f8669f88a723f419f36a5b7d74cc6a4cfe07e4f5e
pinned=qemu_11.1.1+ds.orig.tar.xz
# python3-qemu-qmp, pure Python, from sid
QMP_VERSION='0.0.6-1.1'
QMP_SHA256=584fdc71673c328ea08a99e01ad2a8c7456adb96f753aa1854ece91bcd279b32

fetch_qmp() {
    local deb=python3-qemu-qmp_${QMP_VERSION}_all.deb dir=qemu11-python
    if [ -d "$dir/usr/lib/python3/dist-packages/qemu/qmp" ]; then
        return 0
    fi
    if [ ! -f "$deb" ] || ! echo "$QMP_SHA256  $deb" | sha256sum -c --quiet - 2>/dev/null; then
        rm -f "$deb"
        sid_apt apt-get update >&2
        sid_apt apt-get download "python3-qemu-qmp=$QMP_VERSION" >&2 ||
            sid_apt apt-get download python3-qemu-qmp >&2 ||
            die "cannot download python3-qemu-qmp from sid"
        deb=$(ls python3-qemu-qmp_*_all.deb | sort -V | tail -n 1)
    fi
    rm -rf "$dir"
    dpkg -x "$deb" "$dir"
    echo "fetch: $CACHE/$dir (from $deb)"
}

if ! { [ -f "$pinned" ] && echo "$PIN_SHA256  $pinned" | sha256sum -c --quiet - 2>/dev/null; }; then
    sid_apt apt-get update >&2
    tarball=$(download_source "sid_apt apt-get" "$PIN_VERSION") || tarball=
    if [ -z "$tarball" ]; then
        # Not in the index any more (as now): the pool may still serve it,
        # and apt-helper checks it against the pinned hash.
        m=$(mirror)
        echo "fetch: $pinned from the mirror's pool" >&2
        /usr/lib/apt/apt-helper download-file "${m%/}/pool/main/q/qemu/$pinned" \
            "$pinned" "SHA256:$PIN_SHA256" >&2 && tarball=$pinned
    fi
    if [ -z "$tarball" ]; then
        # The newest 11.x in sid's index that downloads (apt-get source
        # checks it against the signed index)
        for version in $(sid_apt apt-cache showsrc qemu | sed -n 's/^Version: //p' |
                         grep -x '1:11\.[0-9.]*+ds-.*' | sort -Vr); do
            if tarball=$(download_source "sid_apt apt-get" "$version"); then
                warn_fallback "$PIN_VERSION" "$version"
                break
            fi
        done
        [ -n "$tarball" ] || die "no qemu 1:11.x tarball downloads from the mirror"
    elif ! echo "$PIN_SHA256  $tarball" | sha256sum -c --quiet -; then
        die "$tarball: sha256 mismatch (expected $PIN_SHA256)"
    fi
    pinned=$tarball
fi
ln -sfn "$pinned" qemu11-orig.tar.xz
fetch_qmp
echo "fetch: $CACHE/$pinned"
