#!/usr/bin/env bash
# Install the Debian packages the project needs. Idempotent: when everything
# is present it only checks and exits. Extra suites (bookworm-backports for a
# recent meson on Debian 12, trixie sources for QEMU's source package) are
# added with the mirror URI of the machine's own apt configuration.
set -euo pipefail

QEMU_SUITE=trixie               # the suite that carries qemu 1:10.0.x sources
LIST=/etc/apt/sources.list.d/spapr-vfio-series.sources

die() { echo "deps: error: $*" >&2; exit 1; }

[ -r /etc/os-release ] || die "no /etc/os-release: this needs Debian 12 or 13"
. /etc/os-release
[ "${ID:-}" = debian ] || die "this is '${ID:-unknown}', not Debian (12 or 13 needed)"
case "${VERSION_CODENAME:-}" in
bookworm) BPO=bookworm-backports ;;
trixie)   BPO= ;;
*) die "Debian '${VERSION_CODENAME:-?}' is not supported (bookworm or trixie)" ;;
esac

# Packages from the release suite, then those that need a newer suite on 12.
# (device-tree-compiler: QEMU 11 compiles the PPC dtbs that Debian's "+ds"
# tarball leaves out.)
# (ccache: the builds of one run share what they compile alike, see
# scripts/configure-qemu.sh.)
PKGS="build-essential pkg-config git xz-utils perl python3 python3-venv device-tree-compiler ccache
      libglib2.0-dev libpixman-1-dev libfdt-dev ninja-build
      qemu-system-data seabios ipxe-qemu"
NEWER_PKGS="meson python3-pycotap"

missing=
for p in $PKGS $NEWER_PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
meson_ok() {
    command -v meson >/dev/null &&
        dpkg --compare-versions "$(meson --version)" ge 1.5
}
src_ok() { apt-cache showsrc qemu 2>/dev/null | grep -c '^Version: 1:10\.0\.' >/dev/null; }

if [ -z "$missing" ] && meson_ok && src_ok; then
    exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "run as root or install sudo"
    sudo -n true 2>/dev/null || die "run as root, or with passwordless sudo"
    SUDO=sudo
fi

# The machine's Debian mirror: the first URI that serves the release suite.
mirror=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk -v s="$VERSION_CODENAME" '
        /^[[:space:]]*$/ { if (u && ok) { print u; exit } u = ""; ok = 0; next }
        tolower($1) == "uris:" { u = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        END { if (u && ok) print u }' | head -n 1)
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(awk -v s="$VERSION_CODENAME" '
        $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
            if ($(i + 1) == s) { print $i; exit } } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no apt source for '$VERSION_CODENAME' found in /etc/apt"

want=$(mktemp)
trap 'rm -f "$want"' EXIT
{
    if [ -n "$BPO" ]; then
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$mirror" "$BPO"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n'
    fi
    printf 'Types: deb-src\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
        "$mirror" "$QEMU_SUITE" "$QEMU_SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
} > "$want"
if ! cmp -s "$want" "$LIST"; then
    echo "deps: adding apt sources ($mirror: ${BPO:+$BPO, }$QEMU_SUITE sources) in $LIST"
    $SUDO install -m 644 "$want" "$LIST"
    $SUDO apt-get update -q
elif ! src_ok || [ -n "$missing" ]; then
    $SUDO apt-get update -q
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ] || ! meson_ok; then
    echo "deps: installing:$missing"
    $SUDO apt-get install -y -q --no-install-recommends $PKGS
    # meson >= 1.5 and pycotap: backports on Debian 12, the release on 13.
    $SUDO apt-get install -y -q --no-install-recommends \
        ${BPO:+-t "$BPO"} $NEWER_PKGS
fi
meson_ok || die "meson >= 1.5 is needed, found '$(meson --version 2>/dev/null)'"
src_ok || die "no qemu 1:10.0.x source package in the apt sources"
echo "deps: all present"
