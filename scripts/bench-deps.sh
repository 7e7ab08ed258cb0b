#!/usr/bin/env bash
# Debian packages for `make bench` only (not for make check or CI): gnuplot
# draws its PNG plot. Idempotent: exits at once when everything is there.
set -euo pipefail
PKGS="gnuplot-nox"
missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || { echo "bench-deps: run as root or with passwordless sudo" >&2; exit 1; }
    SUDO=sudo
fi
echo "bench-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends $missing ||
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $missing; }
