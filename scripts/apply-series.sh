#!/usr/bin/env bash
# Make TREE a git repository of the QEMU tarball (one baseline commit, tagged
# "baseline") with the series of the directories DIR... (a stack, in order:
# see series-lib.sh) applied as commits.
#
# Re-applies only when a DIR changed since the last apply or export, and
# refuses to when the tree holds commits or edits made since then (work that
# is not in the DIRs yet): run 'make export' first.
set -euo pipefail

TARBALL=${1:?usage: apply-series.sh TARBALL TREE DIR...}
TREE=${2:?}
shift 2
[ $# -gt 0 ] || { echo "usage: apply-series.sh TARBALL TREE DIR..." >&2; exit 2; }
DIRS=()
for d in "$@"; do DIRS+=("$(realpath "$d")"); done
STAMP=$TREE/.git/series-stamp     # "<hash of the DIRs> <HEAD after apply>"

die() { echo "apply: error: $*" >&2; exit 1; }
# git am and the baseline commit need an identity, even on a bare CI machine.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git config user.name || echo "spapr-vfio build")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git config user.email || echo "build@localhost")}
g() { git -C "$TREE" "$@"; }
for d in "${DIRS[@]}"; do [ -f "$d/series" ] || die "$d/series is missing"; done

. "$(dirname "$0")/series-lib.sh"

want=$(series_hash "${DIRS[@]}")
if [ -f "$STAMP" ]; then
    read -r had head < "$STAMP"
    if [ "$had" = "$want" ]; then
        exit 0                      # up to date; local edits are the user's
    fi
    if [ "$(g rev-parse HEAD)" != "$head" ] || [ -n "$(g status --porcelain)" ]; then
        echo "apply: error: the series changed, but $TREE holds work not in them:" >&2
        g log --oneline "$head..HEAD" >&2 || true
        g status --short >&2
        die "run 'make export' (or discard that work), then make again"
    fi
fi

if [ ! -d "$TREE/.git" ]; then
    echo "apply: extracting $(basename "$TARBALL")"
    rm -rf "$TREE.tmp"
    mkdir -p "$TREE.tmp"
    tar -xf "$TARBALL" -C "$TREE.tmp" --strip-components=1
    git -C "$TREE.tmp" init -q
    # A background auto-gc after the big baseline commit would hold
    # HEAD.lock while git am runs.
    git -C "$TREE.tmp" config gc.auto 0
    git -C "$TREE.tmp" add -A
    GIT_AUTHOR_NAME=$GIT_COMMITTER_NAME GIT_AUTHOR_EMAIL=$GIT_COMMITTER_EMAIL \
        git -C "$TREE.tmp" commit -q -m "Baseline: $(basename "$(realpath "$TARBALL")")" \
        -m "Upstream QEMU from Debian's orig tarball, without Debian's patches."
    git -C "$TREE.tmp" tag baseline
    mv "$TREE.tmp" "$TREE"
else
    echo "apply: the series changed, re-applying them"
    g am --abort >/dev/null 2>&1 || true
    g reset -q --hard baseline
fi

n=0
for PATCHES in "${DIRS[@]}"; do
    while read -r p; do
        [ -f "$PATCHES/$p" ] || die "$PATCHES/series lists '$p', which does not exist"
        if ! g am -q --keep-cr "$PATCHES/$p"; then
            g am --abort || true
            die "$PATCHES/$p does not apply to $(g log -1 --format=%s baseline) and the series before it"
        fi
        n=$((n + 1))
    done < <(series_files)
done
echo "apply: $n patch(es) applied in $TREE"
echo "$want $(g rev-parse HEAD)" > "$STAMP"
