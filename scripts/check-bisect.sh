#!/usr/bin/env bash
# Prove the series bisectable: apply the stack one patch at a time to a
# clean tree of its own, and after each patch build, run the qtests that
# exist at that point and checkpatch that patch. Slow (it builds every
# prefix); not part of 'make check'. BISECT_PATCHES (default: the 10.0.13
# stack, series/*/10.0 in series/order) lists the series directories, in
# order; the trees go to BUILD_DIR/$BISECT_NAME (default bisect).
# BISECT_FROM=N applies the stack's patches 1..N-1 without building (when
# only later ones changed since a full run).
set -uo pipefail

B=$(realpath "${1:?usage: check-bisect.sh BUILD_DIR TARBALL QTEST...}")
TARBALL=$(realpath "${2:?}")
shift 2
cd "$(dirname "$0")/.."
. scripts/series-lib.sh
read -r -a DIRS <<<"${BISECT_PATCHES:-$(stack_dirs 10.0 | tr '\n' ' ')}"
dir=$B/${BISECT_NAME:-bisect}
TREE=$dir/qemu
BUILD=$dir/qemu-build
# Once the series has the VFIO model, meson passes its path to the qtest.
unset QTEST_VFIO_MODEL
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git config user.name || echo "spapr-vfio build")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git config user.email || echo "build@localhost")}

rm -rf "$TREE"
mkdir -p "$TREE"
tar -xf "$TARBALL" -C "$TREE" --strip-components=1
git -C "$TREE" init -q && git -C "$TREE" config gc.auto 0 && git -C "$TREE" add -A &&
    git -C "$TREE" commit -qm baseline --author "$GIT_COMMITTER_NAME <$GIT_COMMITTER_EMAIL>"
scripts/configure-qemu.sh "$TREE" "$BUILD" || exit 1

passed=0
failed=0
n=0
while read -r PATCHES p; do
    n=$((n + 1))
    echo "==> $(basename "$(dirname "$PATCHES")")/$p"
    ok=1
    git -C "$TREE" am -q "$PATCHES/$p" || { echo "does not apply"; exit 1; }
    if [ "$n" -lt "${BISECT_FROM:-1}" ]; then
        echo "(applied only: BISECT_FROM=$BISECT_FROM)"
        continue
    fi
    tests=()
    targets=(qemu-system-ppc64 qemu-img)
    if [ -f "$TREE/tests/qtest/vfio-spapr-model/meson.build" ]; then
        targets+=(tests/qtest/vfio-spapr-model/libvfio-spapr-model.so)
    fi
    for t in "$@"; do
        if [ -f "$TREE/tests/qtest/$t.c" ]; then
            tests+=("qtest-ppc64/$t")
            targets+=("tests/qtest/$t")
        fi
    done
    if ! ninja -C "$BUILD" "${targets[@]}" > "$BUILD/bisect-build.log" 2>&1; then
        tail -n 20 "$BUILD/bisect-build.log"
        ok=0
    elif ! meson test -C "$BUILD" --no-rebuild "${tests[@]}" > "$BUILD/bisect-test.log" 2>&1; then
        grep -E '^ *[0-9]+/[0-9]+ ' "$BUILD/bisect-test.log" | grep -v ' OK '
        ok=0
    elif ! (cd "$TREE" && ./scripts/checkpatch.pl -q "$PATCHES/$p"); then
        ok=0
    fi
    if [ $ok = 1 ]; then
        echo "PASS bisect/$(basename "$(dirname "$PATCHES")")/$p (${#tests[@]} qtests)"
        passed=$((passed + 1))
    else
        echo "FAIL bisect/$(basename "$(dirname "$PATCHES")")/$p"
        failed=$((failed + 1))
    fi
done < <(for d in "${DIRS[@]}"; do d=$(realpath "$d"); PATCHES=$d series_files | sed "s#^#$d #"; done)
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
