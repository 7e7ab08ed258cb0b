# Shared by the scripts that apply, export and check the series.
#
# The series are applied as one stack per QEMU base, in the order
# series/order lists them: series/NAME/BASE/ holds one series (its
# patches, its series file and its cover letter) for BASE (10.0 or 11.1).

# The patch files $PATCHES/series lists, in order (comments and blanks
# skipped). Needs $PATCHES (absolute).
series_files() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCHES/series"
}

# The directories of BASE's stack, in order (paths relative to the top).
stack_dirs() {
    local top
    top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$top/series/order" |
        while read -r name; do echo "$top/series/$name/$1"; done
}

# A short hash of the series in the directories given: their order, their
# series files and every patch's content.
series_hash() {
    local d
    for d in "$@"; do
        (cd "$d" && cat series && PATCHES=$d series_files | xargs -r cat)
    done | sha256sum | cut -c1-16
}
