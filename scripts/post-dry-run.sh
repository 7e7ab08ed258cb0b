#!/usr/bin/env bash
# What posting a series would mail, without mailing it: git send-email
# --dry-run over PATCHES (its series file and cover letter), To qemu-devel,
# each patch Cc'd to what QEMU's scripts/get_maintainer.pl (from TREE, the
# series' base) says for it and to its Cc:/Suggested-by: trailers, the
# cover letter Cc'd to all of them. Prints each mail's To, Cc and Subject.
#   scripts/post-dry-run.sh TREE PATCHES [EXTRA_TO]
set -euo pipefail
TREE=$(realpath "${1:?usage: post-dry-run.sh TREE PATCHES [EXTRA_TO]}")
PATCHES=$(realpath "${2:?}")
EXTRA_TO=${3:-}
"$(dirname "$0")/install-packages.sh" post-dry-run git-email libmailtools-perl
. "$(dirname "$0")/series-lib.sh"

gm() {
    (cd "$TREE" && ./scripts/get_maintainer.pl --noroles --norolestats \
        --nogit --nogit-fallback "$1")
}
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
cp "$PATCHES/0000-cover-letter.patch" "$tmp/"
for p in $(series_files); do
    cp "$PATCHES/$p" "$tmp/"
    gm "$PATCHES/$p" >> "$tmp/all-cc"
    # and whom its own trailers Cc (send-email adds those to the patch)
    sed -n '/^---$/q; s/^\(Cc\|Suggested-by\): //p' "$PATCHES/$p" >> "$tmp/all-cc"
done
# The list itself is the To:, not a Cc.
grep -v -x -F 'qemu-devel@nongnu.org' "$tmp/all-cc" | sort -u > "$tmp/cover-cc" || true
cat > "$tmp/cc-cmd" <<CMD
#!/bin/sh
f=\$(realpath "\$1")
case "\$f" in
*/0000-cover-letter.patch) cat "$tmp/cover-cc" ;;
*) cd "$TREE" && ./scripts/get_maintainer.pl --noroles --norolestats --nogit --nogit-fallback "\$f" | grep -v -x -F qemu-devel@nongnu.org || true ;;
esac
CMD
chmod +x "$tmp/cc-cmd"
to=(--to=qemu-devel@nongnu.org)
[ -n "$EXTRA_TO" ] && to+=("--to=$EXTRA_TO")
echo "== $(basename "$(dirname "$PATCHES")")/$(basename "$PATCHES"): $(sed -n 's/^Subject: //p' "$PATCHES/0000-cover-letter.patch" | head -n 1)"
(cd "$tmp" && git -c sendemail.smtpserver=/bin/false send-email --dry-run \
    --confirm=never --no-chain-reply-to --suppress-cc=self \
    "${to[@]}" --cc-cmd="$tmp/cc-cmd" \
    0000-cover-letter.patch $(cd "$PATCHES" && series_files)) 2>&1 |
    awk '/^(To|Cc|Subject): /{h=1; print; next} h && /^\t/{print; next} {h=0}
         /^Result: /{print; print ""}'
