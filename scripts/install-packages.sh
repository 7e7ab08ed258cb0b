#!/usr/bin/env bash
# Install the Debian packages PKG... that are missing, as root or with
# passwordless sudo; TAG names the caller in messages. Idempotent: exits at
# once when everything is there.
#   scripts/install-packages.sh TAG PKG...
set -euo pipefail
tag=${1:?usage: install-packages.sh TAG PKG...}
shift
missing=
for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || { echo "$tag: run as root or with passwordless sudo" >&2; exit 1; }
    SUDO=sudo
fi
echo "$tag: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing ||
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $missing; }
