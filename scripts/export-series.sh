#!/usr/bin/env bash
# export: write the commits baseline..HEAD of TREE to the series
#         directories DIR... (a stack: see series-lib.sh) as git
#         format-patch files, each listed in its DIR/series. Each DIR but
#         the last takes as many commits as its series file lists now; the
#         last takes the rest.
# check:  fail, naming the commits, if TREE holds commits or edits that are
#         not in the DIRs.
# The output is stable: no version signature and zeroed "From <sha>" lines,
# so re-exporting an unchanged series changes no file.
set -euo pipefail

MODE=${1:?usage: export-series.sh export|check TREE DIR...}
TREE=${2:?}
shift 2
[ $# -gt 0 ] || { echo "usage: export-series.sh export|check TREE DIR..." >&2; exit 2; }
DIRS=()
for d in "$@"; do DIRS+=("$(realpath "$d")"); done
COVER=0000-cover-letter.patch

die() { echo "$MODE: error: $*" >&2; exit 1; }
# format-patch --cover-letter wants an identity; the check must not depend
# on who runs it, so the cover letter's From: is kept from the committed one.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$(git config user.name || echo "spapr-vfio build")}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$(git config user.email || echo "build@localhost")}
g() { git -C "$TREE" "$@"; }
[ -d "$TREE/.git" ] || die "no QEMU tree at $TREE (run 'make tree')"
. "$(dirname "$0")/series-lib.sh"

# The subject prefix ("PATCH v1", "RFC PATCH v1", "PATCH 10.0 v1")
# is the cover letter's, written by hand: change it there when a new
# version is posted.
prefix() {
    local p
    p=$(sed -n 's/^Subject: \[\([^]]*PATCH[^]]*\) 0\+\/[0-9]\+\].*/\1/p' \
        "$1/$COVER" 2>/dev/null | head -n 1)
    echo "${p:-PATCH}"
}

# The cover letter of range $2 with its shortlog and diffstat made from the
# tree; its sender, subject, text and date come from DIR $1's current one
# (written by hand).
cover_letter() {
    local cur=$1/$COVER dir
    dir=$(mktemp -d)
    g format-patch -q --cover-letter --zero-commit --no-signature \
        --full-index --subject-prefix="$(prefix "$1")" -o "$dir" "$2"
    if [ -f "$cur" ]; then
        awk -v cur="$cur" '
            BEGIN {
                while ((getline l < cur) > 0) {
                    if (l ~ /^From: / && !from) { from = l; infrom = 1 }
                    else if (infrom && l ~ /^[ \t]/) from = from "\n" l
                    else infrom = 0
                    if (l ~ /^Date: / && !date) date = l
                    else if (l ~ /^Subject: \[[^]]*PATCH[^]]* 0+\//) { sub(/^Subject: \[[^]]*PATCH[^]]* 0+\/[0-9]+\] /, "", l); subj = l }
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

unnumbered() { sed 's/^Subject: \[[^]]*PATCH[^]]* [0-9]*\/[0-9]*\]/Subject: [PATCH]/' "$1" 2>/dev/null; }

# The commit range of each DIR, in order.
commits=$(g rev-list --reverse baseline..HEAD)
total=$(wc -w <<<"$commits")
ranges=()
from=baseline
used=0
for i in "${!DIRS[@]}"; do
    if [ "$i" -lt $((${#DIRS[@]} - 1)) ]; then
        n=$(PATCHES=${DIRS[$i]} series_files 2>/dev/null | wc -l)
        used=$((used + n))
        [ "$used" -le "$total" ] || die "the tree has $total commits, fewer than ${DIRS[$i]} and the series before it list"
        to=$(sed -n "${used}p" <<<"$commits")
    else
        to=HEAD
    fi
    ranges+=("$from..$to")
    from=$to
done

dirty=$(g status --porcelain)
tmps=()
trap 'rm -rf "${tmps[@]}"' EXIT
bad=0
for i in "${!DIRS[@]}"; do
    PATCHES=${DIRS[$i]}
    range=${ranges[$i]}
    tmp=$(mktemp -d)
    tmps+=("$tmp")
    g format-patch -q --zero-commit --no-signature --full-index \
        --subject-prefix="$(prefix "$PATCHES")" -o "$tmp" "$range"
    (cd "$tmp" && ls) > "$tmp.list"
    mv "$tmp.list" "$tmp/series"

    if [ "$MODE" = check ]; then
        if ! cmp -s "$tmp/series" <(series_files); then
            echo "the tree's commits differ from $PATCHES/series:"
            diff <(series_files) "$tmp/series" | sed -n 's/^[<>] /  /p'  || true
            bad=1
        fi
        n=0
        while read -r f; do
            n=$((n + 1))
            # "[PATCH n/m]" changes with the length of the series: not a change.
            if ! cmp -s <(unnumbered "$tmp/$f") <(unnumbered "$PATCHES/$f"); then
                echo "not exported: $(g log -1 --format='%h %s' "$(g rev-list --reverse "$range" | sed -n "${n}p")")"
                bad=1
            fi
        done < "$tmp/series"
        if [ -s "$PATCHES/series" ] && ! cmp -s <(cover_letter "$PATCHES" "$range") "$PATCHES/$COVER"; then
            echo "$PATCHES: the cover letter's shortlog or diffstat is out of date"; bad=1
        fi
        continue
    fi

    [ -z "$dirty" ] || die "$TREE has uncommitted edits; commit them first:
$dirty"
    # Replace the exported patches; the cover letter is written by hand.
    mkdir -p "$PATCHES"
    find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name "$COVER" \
        -exec rm -f {} +
    cp "$tmp/series" "$PATCHES/series"
    while read -r f; do cp "$tmp/$f" "$PATCHES/$f"; done < "$PATCHES/series"
    if [ -s "$PATCHES/series" ]; then
        cover_letter "$PATCHES" "$range" > "$tmp/cover" && mv "$tmp/cover" "$PATCHES/$COVER"
    fi
    echo "export: $(wc -l < "$PATCHES/series") patch(es) in $PATCHES"
done

if [ "$MODE" = check ]; then
    if [ -n "$dirty" ]; then
        echo "uncommitted edits in $TREE:"; echo "$dirty"; bad=1
    fi
    exit $bad
fi
# The tree now matches the DIRs: record it so 'make' does not re-apply.
echo "$(series_hash "${DIRS[@]}") $(g rev-parse HEAD)" > "$TREE/.git/series-stamp"
