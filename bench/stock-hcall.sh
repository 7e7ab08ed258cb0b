#!/usr/bin/env bash
# The benchmark's baseline: stock QEMU from TARBALL plus only the series'
# qtest "hcall" patch (the scenarios put TCEs from qtest, which stock cannot).
# Extracts into SRC once, re-extracts if the patch changed, configures into
# BUILD and builds qemu-system-ppc64 at nice 10 (the build shares the machine).
set -euo pipefail

TARBALL=${1:?usage: stock-hcall.sh TARBALL PATCH SRC BUILD}
[ -f "${2:-}" ] || { echo "stock-hcall: the qtest hcall patch '${2:-}' is missing" >&2; exit 1; }
PATCH=$(realpath "$2")
SRC=${3:?}
BUILD=${4:?}
HERE=$(dirname "$0")

# The source is "done" when it holds the patch with this hash, of its diff
# only (a re-export that renumbers the series changes the mail header): a
# changed patch (or a half-extracted tree) starts again from the tarball.
stamp="$SRC/.hcall-patch.sha256"
want=$(sed -n '/^diff --git /,$p' "$PATCH" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "stock-hcall: extracting $TARBALL into $SRC, applying $(basename "$PATCH")"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    tar -xf "$TARBALL" -C "$SRC" --strip-components=1
    # Dry run first so a patch that does not apply leaves no half-patched tree.
    if ! (cd "$SRC" && patch -p1 --dry-run -s < "$PATCH" && patch -p1 -s < "$PATCH"); then
        echo "stock-hcall: $(basename "$PATCH") does not apply to the stock tarball" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

nice -n 10 "$HERE/../scripts/configure-qemu.sh" "$SRC" "$BUILD"
nice -n 10 ninja -C "$BUILD" qemu-system-ppc64
