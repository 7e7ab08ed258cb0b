#!/usr/bin/env bash
# Host (amd64) packages for `make check-e2e`: the ppc64le cross toolchain and
# the tools that build L1's initramfs. Idempotent. ppc64el packages are never
# installed on the host: e2e/prepare.sh downloads them with a private apt
# state and unpacks them under build/.
set -euo pipefail
PKGS="gcc-powerpc64le-linux-gnu binutils-powerpc64le-linux-gnu
      libc6-dev-ppc64el-cross kmod cpio xz-utils zstd
      qemu-system-data debian-archive-keyring python3 pkg-config"
missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || { echo "e2e-deps: run as root or with passwordless sudo" >&2; exit 1; }
    SUDO=sudo
fi
echo "e2e-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends $missing ||
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $missing; }
