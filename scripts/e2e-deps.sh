#!/usr/bin/env bash
# Host (amd64) packages for `make check-e2e`: the ppc64le cross toolchain and
# the tools that build L1's initramfs. ppc64el packages are never installed
# on the host: e2e/prepare.sh downloads them with a private apt state and
# unpacks them under build/.
exec "$(dirname "$0")/install-packages.sh" e2e-deps \
    gcc-powerpc64le-linux-gnu binutils-powerpc64le-linux-gnu \
    libc6-dev-ppc64el-cross kmod cpio xz-utils zstd \
    qemu-system-data debian-archive-keyring python3 pkg-config
