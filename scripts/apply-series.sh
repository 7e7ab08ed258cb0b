#!/usr/bin/env bash
# Make TREE a git repository of the QEMU tarball (one baseline commit, tagged
# "baseline") with the series from PATCHES/series applied as commits.
#
# Re-applies only when patches/ changed since the last apply or export, and
# refuses to when the tree holds commits or edits made since then (work that
# is not in patches/ yet): run 'make export' first.
set -euo pipefail

TARBALL=${1:?usage: apply-series.sh TARBALL TREE PATCHES}
TREE=${2:?}
PATCHES=$(realpath "${3:?}")
STAMP=$TREE/.git/series-stamp     # "<hash of patches/> <HEAD after apply>"

die() { echo "apply: error: $*" >&2; exit 1; }
# git am and the baseline commit need an identity, even on a bare CI machine.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git config user.name || echo "spapr-vfio build")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git config user.email || echo "build@localhost")}
g() { git -C "$TREE" "$@"; }
[ -f "$PATCHES/series" ] || die "$PATCHES/series is missing"

. "$(dirname "$0")/series-lib.sh"

want=$(series_hash)
if [ -f "$STAMP" ]; then
    read -r had head < "$STAMP"
    if [ "$had" = "$want" ]; then
        exit 0                      # up to date; local edits are the user's
    fi
    if [ "$(g rev-parse HEAD)" != "$head" ] || [ -n "$(g status --porcelain)" ]; then
        echo "apply: error: patches/ changed, but $TREE holds work not in patches/:" >&2
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
    echo "apply: patches/ changed, re-applying the series"
    g am --abort >/dev/null 2>&1 || true
    g reset -q --hard baseline
fi

n=0
while read -r p; do
    [ -f "$PATCHES/$p" ] || die "patches/series lists '$p', which does not exist"
    if ! g am -q --keep-cr "$PATCHES/$p"; then
        g am --abort || true
        die "patch '$p' does not apply to $(g log -1 --format=%s baseline)"
    fi
    n=$((n + 1))
done < <(series_files)
echo "apply: $n patch(es) applied in $TREE"
echo "$want $(g rev-parse HEAD)" > "$STAMP"
