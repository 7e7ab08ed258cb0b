# Shared by apply-series.sh and export-series.sh. Needs $PATCHES (absolute).

# The patch files patches/series lists, in order (comments and blanks skipped).
series_files() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCHES/series"
}

# A short hash of the series as listed: its order and every patch's content.
series_hash() {
    (cd "$PATCHES" && { cat series; series_files | xargs -r cat; } |
        sha256sum | cut -c1-16)
}
