#!/usr/bin/env bash
# The ppc64el sysroot (bookworm, matching the host's cross glibc 2.36) that
# L2's QEMU is cross-built against and whose libraries go into L1, plus the
# Debian ppc64el kernels for L1 and the L2 guest.
#   e2e/sysroot.sh OUT_DIR   (OUT_DIR/sysroot, OUT_DIR/kernel-SUITE)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: sysroot.sh OUT_DIR}
export E2E_CACHE=${E2E_CACHE:-$here/../build/cache/e2e}
APT=$here/apt.sh
SYSROOT_SUITE=bookworm
SYSROOT_PKGS="libc6-dev libglib2.0-dev libfdt-dev zlib1g-dev libpixman-1-dev busybox-static"
KERNEL_SUITES=${E2E_KERNEL_SUITES:-"trixie sid"}
die() { echo "e2e/sysroot: error: $*" >&2; exit 1; }

# Indexes: refreshed when older than a day (or missing).
for s in $SYSROOT_SUITE $(for k in $KERNEL_SUITES; do echo "${k%-4k}"; done | sort -u); do
    l=$E2E_CACHE/apt/$s/state/lists
    if [ -z "$(find "$l" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
        "$APT" "$s" update >/dev/null || die "apt-get update of $s (ppc64el) failed"
    fi
done

# Sysroot: the closure of SYSROOT_PKGS, unpacked with dpkg -x.
arch=$E2E_CACHE/apt/$SYSROOT_SUITE/cache/archives
if ! "$APT" $SYSROOT_SUITE install --download-only -y --no-install-recommends $SYSROOT_PKGS >"$E2E_CACHE/sysroot-apt.log" 2>&1; then
    # The index can be ahead of the pool: retry with whatever can be had.
    for p in $SYSROOT_PKGS; do
        "$APT" $SYSROOT_SUITE install --download-only -y --no-install-recommends "$p" >>"$E2E_CACHE/sysroot-apt.log" 2>&1 ||
            die "cannot download ppc64el package '$p' ($SYSROOT_SUITE) or its dependencies: see $E2E_CACHE/sysroot-apt.log"
    done
fi
sum=$(ls "$arch"/*.deb | sort | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/sysroot/.stamp" 2>/dev/null)" != "$sum" ]; then
    echo "e2e: unpacking the ppc64el sysroot ($(ls "$arch"/*.deb | wc -l) packages)"
    rm -rf "$OUT/sysroot"; mkdir -p "$OUT/sysroot"
    for d in "$arch"/*.deb; do dpkg -x "$d" "$OUT/sysroot"; done
    # Absolute symlinks would point into the host: make them relative.
    find "$OUT/sysroot" -type l -lname '/*' | while read -r l; do
        t=$(readlink "$l"); ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$OUT/sysroot$t")" "$l"
    done
    echo "$sum" > "$OUT/sysroot/.stamp"
fi

# Kernels: the newest -powerpc64le-64k image of each suite that downloads;
# for SUITE-4k, SUITE's -powerpc64le image (Debian's 4K-page flavour).
for s in $KERNEL_SUITES; do
    kd=$OUT/kernel-$s
    flavour=powerpc64le-64k
    case $s in *-4k) flavour=powerpc64le ;; esac
    s=${s%-4k}
    cands=$("$APT" "$s" pkgnames linux-image- | grep -E "^linux-image-[0-9][^ ]*-$flavour\$" | sort -rV)
    [ -n "$cands" ] || die "no linux-image-*-$flavour package in $s (ppc64el)"
    got=
    for p in $cands; do
        if [ -f "$kd/.stamp" ] && [ "$(cat "$kd/.stamp")" = "$p" ]; then got=$p; break; fi
        mkdir -p "$E2E_CACHE/debs"
        # Newer kernels split the image into linux-binary-* and linux-modules-*.
        parts=$p
        for x in binary modules; do
            q=${p/linux-image-/linux-$x-}
            "$APT" "$s" show "$q" >/dev/null 2>&1 && parts="$parts $q"
        done
        ok=1
        for q in $parts; do
            (cd "$E2E_CACHE/debs" && { ls "${q}"_*.deb >/dev/null 2>&1 ||
                "$APT" "$s" download "$q" >/dev/null 2>&1; }) || { ok=; break; }
        done
        if [ -n "$ok" ]; then
            echo "e2e: kernel for $s: $parts"
            rm -rf "$kd"; mkdir -p "$kd"
            for q in $parts; do dpkg -x "$(ls "$E2E_CACHE/debs/${q}"_*.deb | head -n 1)" "$kd"; done
            # Normalized: kd/vmlinux (the image), kd/modules (its modules).
            img=$(ls "$kd"/boot/vmlinux-* "$kd"/usr/lib/modules/*/vmlinu[xz] 2>/dev/null | head -n 1 || true)
            [ -n "$img" ] || die "$parts: no kernel image (boot/vmlinux-* or lib/modules/*/vmlinu[xz])"
            ln -sfn "${img#$kd/}" "$kd/vmlinux"
            ln -sfn "$(cd "$kd" && ls -d usr/lib/modules/*/ lib/modules/*/ 2>/dev/null | head -n 1 || true)" "$kd/modules"
            echo "$p" > "$kd/.stamp"; got=$p; break
        fi
        echo "e2e: WARNING: $p ($s) is in the index but does not download; trying an older one" >&2
    done
    [ -n "$got" ] || die "no linux-image-*-$flavour of $s downloads: tried $(echo $cands)"
done
