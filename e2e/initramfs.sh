#!/usr/bin/env bash
# Build what L1 boots: E2E_DIR/l1-SUITE.cpio, an uncompressed initramfs with
# busybox, the kernel's modules L1 needs (decompressed, depmod'ed), the L2
# QEMUs with their libraries from the sysroot, Debian's slof/vof, the
# cap-hiding shim, l2view (the host-truth oracle's L1 half), the payloads,
# Debian's ppc64el strace (case diff), and the L2 guest (the same kernel
# plus a small busybox initramfs with the nvme driver and DLPAR tooling).
#   e2e/initramfs.sh E2E_DIR SUITE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
E2E=$(realpath "${1:?usage: initramfs.sh E2E_DIR SUITE}"); SUITE=${2:?}
SYSROOT=$E2E/sysroot KD=$E2E/kernel-$SUITE
X=powerpc64le-linux-gnu-
die() { echo "e2e/initramfs: error: $*" >&2; exit 1; }
KVER=$(basename "$(readlink -f "$KD/modules")")
[ -d "$KD/modules/kernel" ] || die "no modules in $KD"

# Small guest-side programs, rebuilt when their source changes.
mkdir -p "$E2E/guest"
if [ "$here/guest/hide-cap.c" -nt "$E2E/guest/hide-cap.so" ]; then
    ${X}gcc -O2 -Wall -shared -fPIC -o "$E2E/guest/hide-cap.so" "$here/guest/hide-cap.c"
fi
if [ "$here/guest/l2view.c" -nt "$E2E/guest/l2view" ]; then
    ${X}gcc -O2 -Wall --sysroot="$SYSROOT" -o "$E2E/guest/l2view" "$here/guest/l2view.c"
fi
for v in stress keep; do
    if [ "$here/guest/tce-stress.S" -nt "$E2E/guest/tce-$v.bin" ]; then
        d=; [ $v = keep ] && d=-DKEEP
        ${X}gcc -mbig $d -c -x assembler-with-cpp -o "$E2E/guest/tce-$v.o" "$here/guest/tce-stress.S"
        ${X}ld -EB -Ttext=0 -o "$E2E/guest/tce-$v.elf" "$E2E/guest/tce-$v.o"
        ${X}objcopy -O binary "$E2E/guest/tce-$v.elf" "$E2E/guest/tce-$v.bin"
    fi
done
for v in fill flip reset race; do
    if [ "$here/guest/tce-$v.S" -nt "$E2E/guest/tce-$v.bin" ]; then
        ${X}gcc -mbig -c -x assembler-with-cpp -o "$E2E/guest/tce-$v.o" "$here/guest/tce-$v.S"
        ${X}ld -EB -Ttext=0 -o "$E2E/guest/tce-$v.elf" "$E2E/guest/tce-$v.o"
        ${X}objcopy -O binary "$E2E/guest/tce-$v.elf" "$E2E/guest/tce-$v.bin"
    fi
done
# bench-move: one payload per window, WSHIFT 0 (the default window) or the
# log2 of a DDW's size (1, 16, 64 GiB)
MOVE_WINDOWS="0 30 34 36"
for s in $MOVE_WINDOWS; do
    if [ "$here/guest/tce-move.S" -nt "$E2E/guest/tce-move-$s.bin" ]; then
        ${X}gcc -mbig -DWSHIFT=$s -c -x assembler-with-cpp -o "$E2E/guest/tce-move-$s.o" "$here/guest/tce-move.S"
        ${X}ld -EB -Ttext=0 -o "$E2E/guest/tce-move-$s.elf" "$E2E/guest/tce-move-$s.o"
        ${X}objcopy -O binary "$E2E/guest/tce-move-$s.elf" "$E2E/guest/tce-move-$s.bin"
    fi
done

# strace for case diff: bookworm's, which needs only the sysroot's glibc
# (trixie's wants a newer one). Downloaded once with the private apt state.
E2E_CACHE=${E2E_CACHE:-$here/../build/cache/e2e}
STRACE_DEB=$(ls "$E2E_CACHE"/debs/strace_*_ppc64el.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$STRACE_DEB" ]; then
    mkdir -p "$E2E_CACHE/debs"
    (cd "$E2E_CACHE/debs" && E2E_CACHE=$E2E_CACHE "$here/apt.sh" bookworm download strace >/dev/null 2>&1) ||
        die "cannot download ppc64el strace (bookworm)"
    STRACE_DEB=$(ls "$E2E_CACHE"/debs/strace_*_ppc64el.deb | sort -V | tail -n 1)
fi

# DLPAR tooling for the L2 guest (rtas_errd runs drmgr on a hotplug event),
# from bookworm: its binaries run on the sysroot's glibc 2.36. Downloaded
# once with the private apt state.
DLPAR_PKGS="ppc64-diag powerpc-ibm-utils librtas2 librtasevent2 libservicelog-1.1-1 libnuma1"
dlpar_debs() { for p in $DLPAR_PKGS; do ls "$E2E_CACHE"/debs/${p}_*_ppc64el.deb 2>/dev/null | sort -V | tail -n 1; done; }
if [ "$(dlpar_debs | wc -l)" != "$(echo $DLPAR_PKGS | wc -w)" ]; then
    mkdir -p "$E2E_CACHE/debs"
    (cd "$E2E_CACHE/debs" && E2E_CACHE=$E2E_CACHE "$here/apt.sh" bookworm download $DLPAR_PKGS >/dev/null 2>&1) ||
        die "cannot download the ppc64el DLPAR tooling (bookworm): $DLPAR_PKGS"
fi

# add_modules ROOT MOD...: the modules and their dependencies, decompressed.
add_modules() {
    local root=$1; shift
    local todo="$*" done=" " m f deps
    todo=$(echo $todo)
    while [ -n "$todo" ]; do
        set -- $todo; m=$1; shift; todo="$*"
        case "$done" in *" $m "*) continue ;; esac
        done="$done$m "
        f=$(find "$KD/modules/kernel" -name "$m.ko*" -o -name "$(echo "$m" | tr _ -).ko*" -o -name "$(echo "$m" | tr - _).ko*" | head -n 1)
        if [ -z "$f" ]; then
            grep -qsE "/($m|$(echo "$m" | tr _ -)|$(echo "$m" | tr - _))\.ko" "$KD/modules/modules.builtin" && continue
            die "module $m not found for $KVER"
        fi
        local rel=${f#$KD/modules/}; rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
        mkdir -p "$root/lib/modules/$KVER/$(dirname "$rel")"
        case "$f" in
        *.xz) xz -dc "$f" > "$root/lib/modules/$KVER/$rel" ;;
        *.zst) zstd -qdc "$f" > "$root/lib/modules/$KVER/$rel" ;;
        *.gz) gzip -dc "$f" > "$root/lib/modules/$KVER/$rel" ;;
        *) cp "$f" "$root/lib/modules/$KVER/$rel" ;;
        esac
        deps=$(modinfo -F depends "$f" | tr ',' ' ')
        todo=$(echo $todo $deps)
    done
    for f in modules.builtin modules.order modules.builtin.modinfo; do
        if [ -f "$KD/modules/$f" ]; then cp "$KD/modules/$f" "$root/lib/modules/$KVER/"; else : > "$root/lib/modules/$KVER/$f"; fi
    done
    depmod -b "$root" "$KVER"
}

add_busybox() {
    mkdir -p "$1/bin" "$1/sbin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp"
    cp "$SYSROOT/bin/busybox" "$1/bin/busybox"
    ln -sf busybox "$1/bin/sh"
}

# add_elfs ROOT FILE...: into ROOT, the closure of the shared libraries the
# ELF files need, from the unpacked packages ($W/debs) and the sysroot.
add_elfs() {
    local root=$1 f l d need= seen=" "; shift
    local dirs="$W/debs/usr/lib/powerpc64le-linux-gnu $SYSROOT/lib/powerpc64le-linux-gnu $SYSROOT/usr/lib/powerpc64le-linux-gnu"
    for f in "$@"; do need="$need $(${X}readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"; done
    mkdir -p "$root/lib/powerpc64le-linux-gnu" "$root/lib64" "$root/etc"
    while [ -n "${need// /}" ]; do
        set -- $need; l=$1; shift; need="$*"
        case "$seen" in *" $l "*) continue ;; esac
        seen="$seen$l "
        f=
        for d in $dirs; do [ -e "$d/$l" ] && { f=$d/$l; break; }; done
        [ -n "$f" ] || die "library $l not in the sysroot or the packages"
        cp -L "$f" "$root/lib/powerpc64le-linux-gnu/$l"
        need="$need $(${X}readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
    done
    cp -L "$SYSROOT/lib/powerpc64le-linux-gnu/ld64.so.2" "$root/lib64/ld64.so.2"
    echo "/lib/powerpc64le-linux-gnu" > "$root/etc/ld.so.conf"
}

mkcpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$2.tmp" && mv "$2.tmp" "$2"; }

# Rebuild only when an input changed.
inputs() {
    ls -l --time-style=+%s "$KD/.stamp" "$SYSROOT/.stamp" "$here"/guest/* \
        "$E2E"/series-build/qemu-system-ppc64 "$E2E"/stock-build/qemu-system-ppc64 \
        "$E2E"/series-11-build/qemu-system-ppc64 "$E2E"/v19-build/qemu-system-ppc64 \
        "$E2E/guest/hide-cap.so" "$E2E/guest/l2view" "$E2E/guest/tce-stress.bin" "$E2E/guest/tce-keep.bin" "$E2E/guest/tce-fill.bin" "$E2E/guest/tce-flip.bin" "$E2E/guest/tce-reset.bin" "$STRACE_DEB" \
        "$E2E/guest/tce-race.bin" $(for s in $MOVE_WINDOWS; do echo "$E2E/guest/tce-move-$s.bin"; done) \
        $(dlpar_debs) "$0" 2>/dev/null | awk '{print $5, $6, $7}' || true
}
out=$E2E/l1-$SUITE.cpio
sum=$(inputs | sha256sum | cut -c1-16)
[ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$sum" ] && exit 0

W=$E2E/initramfs-$SUITE
rm -rf "$W"; mkdir -p "$W/l1" "$W/l2"

# L2 guest: busybox, the nvme driver, and the DLPAR tooling (rtas_errd,
# drmgr, the kernel's rpaphp and rpadlpar_io) so it completes unplugs.
add_busybox "$W/l2"
cp "$here/guest/l2-init" "$W/l2/init"
add_modules "$W/l2" nvme virtio_net rpaphp rpadlpar_io
mkdir -p "$W/debs" "$W/l2/usr/sbin" "$W/l2/etc" "$W/l2/var/log" "$W/l2/var/lib" "$W/l2/var/lock" "$W/l2/run"
for d in $(dlpar_debs); do dpkg -x "$d" "$W/debs"; done
cp "$W/debs/usr/sbin/rtas_errd" "$W/debs/usr/sbin/drmgr" "$W/l2/usr/sbin/"
cp -r "$W/debs/etc/ppc64-diag" "$W/l2/etc/"
add_elfs "$W/l2" "$W/l2/usr/sbin/rtas_errd" "$W/l2/usr/sbin/drmgr"
mkcpio "$W/l2" "$W/l2.cpio"

# L1.
R=$W/l1
add_busybox "$R"
cp "$here/guest/l1-init" "$R/init"
add_modules "$R" kvm-hv vfio-pci vfio_iommu_spapr_tce vhost_net tun
mkdir -p "$R/l2" "$R/opt/e2e" "$R/usr/share/qemu" "$R/lib64" "$R/lib/powerpc64le-linux-gnu"
cp "$(readlink -f "$KD/vmlinux")" "$R/l2/vmlinux"
cp "$W/l2.cpio" "$R/l2/initrd.cpio"
cp /usr/share/qemu/slof.bin /usr/share/qemu/vof.bin "$R/usr/share/qemu/"
cp "$E2E/guest/hide-cap.so" "$E2E/guest/l2view" "$E2E/guest/tce-stress.bin" "$E2E/guest/tce-keep.bin" \
    "$E2E/guest/tce-fill.bin" "$E2E/guest/tce-flip.bin" "$E2E/guest/tce-reset.bin" \
    "$E2E/guest/tce-race.bin" "$E2E"/guest/tce-move-*.bin "$R/opt/e2e/"
elfs="$E2E/guest/hide-cap.so $E2E/guest/l2view"
for b in series stock series-11 v19; do
    q=$E2E/$b-build/qemu-system-ppc64
    # A build not asked for (E2E_BUILDS) may be missing; one asked for may not.
    case " ${E2E_BUILDS:-series stock series-11} " in *" $b "*) ;; *) [ -f "$q" ] || continue ;; esac
    if [ ! -f "$q" ] && [ -n "${E2E_ALLOW_NO_QEMU:-}" ]; then continue; fi
    [ -f "$q" ] || die "$q missing (cross-build first)"
    mkdir -p "$R/opt/$b"; cp "$q" "$R/opt/$b/"
    elfs="$elfs $q"
done
mkdir -p "$R/usr/bin" "$W/strace"
dpkg -x "$STRACE_DEB" "$W/strace"
cp "$W/strace/usr/bin/strace" "$R/usr/bin/strace"
add_elfs "$R" $elfs "$R/usr/bin/strace"
mkcpio "$R" "$out"
echo "$sum" > "$out.stamp"
echo "e2e: $out ($(du -m "$out" | cut -f1) MiB, kernel $KVER)"
