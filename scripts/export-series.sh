#!/usr/bin/env bash
# export: write the commits baseline..HEAD of TREE to PATCHES as
#         git format-patch files and list them in PATCHES/series.
# check:  fail, naming the commits, if TREE holds commits or edits that are
#         not in PATCHES.
# The output is stable: no version signature and zeroed "From <sha>" lines,
# so re-exporting an unchanged series changes no file.
set -euo pipefail

MODE=${1:?usage: export-series.sh export|check TREE PATCHES}
TREE=${2:?}
PATCHES=$(realpath "${3:?}")
COVER=0000-cover-letter.patch
# The subject prefix ("PATCH v1", "PATCH stable-10.0 v1") is the cover
# letter's, written by hand: change it there when a new version is posted.
PREFIX=$(sed -n 's/^Subject: \[\(PATCH[^]]*\) 0\+\/[0-9]\+\].*/\1/p' \
    "$PATCHES/$COVER" 2>/dev/null | head -n 1)
PREFIX=${PREFIX:-PATCH}

die() { echo "$MODE: error: $*" >&2; exit 1; }
# format-patch --cover-letter wants an identity; the check must not depend
# on who runs it, so the cover letter's From: is kept from the committed one.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git config user.name || echo "spapr-vfio build")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git config user.email || echo "build@localhost")}
g() { git -C "$TREE" "$@"; }
[ -d "$TREE/.git" ] || die "no QEMU tree at $TREE (run 'make tree')"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g format-patch -q --zero-commit --no-signature --full-index \
    --subject-prefix="$PREFIX" -o "$tmp" baseline..HEAD
(cd "$tmp" && ls) > "$tmp.list"
mv "$tmp.list" "$tmp/series"
. "$(dirname "$0")/series-lib.sh"

dirty=$(g status --porcelain)

# The cover letter with its shortlog and diffstat made from the tree; its
# sender, subject, text and date come from the current one (written by hand).
cover_letter() {
    local cur=$PATCHES/$COVER dir
    dir=$(mktemp -d)
    g format-patch -q --cover-letter --zero-commit --no-signature \
        --full-index --subject-prefix="$PREFIX" -o "$dir" baseline..HEAD
    if [ -f "$cur" ]; then
        awk -v cur="$cur" '
            BEGIN {
                while ((getline l < cur) > 0) {
                    if (l ~ /^From: / && !from) { from = l; infrom = 1 }
                    else if (infrom && l ~ /^[ \t]/) from = from "\n" l
                    else infrom = 0
                    if (l ~ /^Date: / && !date) date = l
                    else if (l ~ /^Subject: \[PATCH[^]]* 0+\//) { sub(/^Subject: \[PATCH[^]]* 0+\/[0-9]+\] /, "", l); subj = l }
                    else if (!body && l == "") body = 1
                    else if (body == 1 && l ~ / \([0-9]+\):$/) body = 2
                    else if (body == 1) blurb = blurb l "\n"
                }
            }
            /^From: / && !seen++ { print from; skip = 1; next }
            skip && /^[ \t]/ { next }
            { skip = 0 }
            /^Date: / { print date; next }
            /\*\*\* SUBJECT HERE \*\*\*/ { sub(/\*\*\* SUBJECT HERE \*\*\*/, subj) }
            /^\*\*\* BLURB HERE \*\*\*$/ { sub(/\n+$/, "", blurb); print blurb; next }
            { print }' "$dir/$COVER"
    else
        cat "$dir/$COVER"
    fi
    rm -rf "$dir"
}

unnumbered() { sed 's/^Subject: \[PATCH[^]]* [0-9]*\/[0-9]*\]/Subject: [PATCH]/' "$1" 2>/dev/null; }

if [ "$MODE" = check ]; then
    bad=0
    if [ -n "$dirty" ]; then
        echo "uncommitted edits in $TREE:"; echo "$dirty"; bad=1
    fi
    if ! cmp -s "$tmp/series" <(series_files); then
        echo "the tree's commits differ from patches/series:"
        diff <(series_files) "$tmp/series" | sed -n 's/^[<>] /  /p'  || true
        bad=1
    fi
    n=0
    while read -r f; do
        n=$((n + 1))
        # "[PATCH n/m]" changes with the length of the series: not a change.
        if ! cmp -s <(unnumbered "$tmp/$f") <(unnumbered "$PATCHES/$f"); then
            echo "not exported: $(g log -1 --format='%h %s' "$(g rev-list --reverse baseline..HEAD | sed -n "${n}p")")"
            bad=1
        fi
    done < "$tmp/series"
    if [ -n "$(series_files)" ] && ! cmp -s <(cover_letter) "$PATCHES/$COVER"; then
        echo "the cover letter's shortlog or diffstat is out of date"; bad=1
    fi
    [ "$bad" = 0 ] || exit 1
    exit 0
fi

[ -z "$dirty" ] || die "$TREE has uncommitted edits; commit them first:
$dirty"
# Replace the exported patches; the cover letter is written by hand.
find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name "$COVER" \
    -exec rm -f {} +
cp "$tmp/series" "$PATCHES/series"
while read -r f; do cp "$tmp/$f" "$PATCHES/$f"; done < "$PATCHES/series"
if [ -s "$PATCHES/series" ]; then
    cover_letter > "$tmp/cover" && mv "$tmp/cover" "$PATCHES/$COVER"
fi
# The tree now matches patches/: record it so 'make' does not re-apply.
echo "$(series_hash) $(g rev-parse HEAD)" > "$TREE/.git/series-stamp"
echo "export: $(wc -l < "$PATCHES/series") patch(es) in $PATCHES"
