#!/usr/bin/env bash
# clean-room.sh BUILD_DIR RELEASE...: the README's two commands, `make check`
# then `make run`, in a fresh clone of this repository's HEAD inside a fresh
# Debian root per RELEASE (bookworm, trixie): debootstrap --variant=minbase
# from the machine's own apt mirror, plus git and make, nothing else. The
# clone is made under an unrelated git identity. Ends with a table per
# release (stage times, "N passed, N failed", whether make run printed its
# timeline); exits non-zero if any release failed.
#
# Needs root (debootstrap, chroot, mounts). The debootstrapped base of each
# release is cached in BUILD_DIR/clean-room/RELEASE/base.tar; every run
# extracts it afresh into BUILD_DIR/clean-room/RELEASE/root, which is removed
# after a passing run (kept after a failing one, or with CLEAN_ROOM_KEEP=1).
# Mounts under a root are removed on every exit path.
set -uo pipefail

usage="usage: clean-room.sh BUILD_DIR RELEASE... (bookworm, trixie)"
B=${1:?$usage}
shift
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
RELEASES=("$@")
REPO=$(cd "$(dirname "$0")/.." && pwd)
GIT_ID_NAME="Clean Room"
GIT_ID_EMAIL="clean@room.invalid"
SRC=/root/spapr-vfio-series          # the clone, inside each root

say() { printf 'clean-room: %s\n' "$*"; }
die() { printf 'clean-room: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    echo "clean-room: this needs root (debootstrap, chroot, mounting /proc, /sys" \
         "and /dev in the roots): run it as root, e.g. sudo make check-clean-room" >&2
    exit 1
fi
for r in "${RELEASES[@]}"; do
    case $r in bookworm|trixie) ;; *) die "release '$r' is not supported (bookworm, trixie)" ;; esac
done
mkdir -p "$B/clean-room" || die "cannot create $B/clean-room"
CR=$(realpath "$B/clean-room")
case $CR in *[[:space:]]*) die "'$CR' contains white space: the mount checks need a plain path" ;; esac
case $CR in /|/dev*|/proc*|/sys*) die "'$CR' is not a place for roots" ;; esac

# --- mounts: everything mounted under a root is listed in mountinfo --------

mounts_under() {    # mount points at or below $1, deepest (and latest) first
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r
}
mounted_under() { [ -n "$(mounts_under "$1")" ]; }

kill_inside() {     # end what still runs chrooted in $1 (only our own roots)
    local p pids= n
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && pids="$pids ${p#/proc/}"
    done
    [ -n "$pids" ] || return 0
    say "ending processes still running in $1:$pids"
    kill -TERM $pids 2>/dev/null
    for n in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 $pids 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL $pids 2>/dev/null
    sleep 0.5
}

unmount_under() {   # unmount everything at or below $1; lazily if busy
    local m try=0
    while mounted_under "$1"; do
        try=$((try + 1))
        if [ $try -gt 6 ]; then
            echo "clean-room: error: could not unmount under $1:" >&2
            mounts_under "$1" >&2
            return 1
        fi
        for m in $(mounts_under "$1"); do
            if [ $try -le 2 ]; then
                umount "$m" 2>/dev/null
            else
                umount -l "$m" 2>/dev/null
            fi
        done
        mounted_under "$1" && sleep 1
    done
    return 0
}

safe_rm() {         # rm -rf a root, never with a mount left inside
    [ -e "$1" ] || return 0
    case $1 in "$CR"/*) ;; *) die "refusing to remove '$1': not under $CR" ;; esac
    kill_inside "$1"
    unmount_under "$1" || die "mounts left under $1: not removing it"
    mounted_under "$1" && die "mounts left under $1: not removing it"
    rm -rf --one-file-system "$1"
}

ACTIVE=             # the root that may have mounts or processes right now
cleanup() {
    [ -n "$ACTIVE" ] || return 0
    kill_inside "$ACTIVE"
    unmount_under "$ACTIVE" || echo "clean-room: error: mounts are left under $ACTIVE" >&2
    ACTIVE=
}
trap cleanup EXIT
trap 'echo "clean-room: interrupted" >&2; exit 130' INT
trap 'echo "clean-room: terminated" >&2; exit 143' TERM

mount_root() {      # a private bind of the root itself, then /proc /sys /dev
    local r=$1
    ACTIVE=$r
    mount --bind "$r" "$r" && mount --make-private "$r" &&
    mount -t proc proc "$r/proc" &&
    { mount -t sysfs sysfs "$r/sys" 2>/dev/null || mount --bind /sys "$r/sys"; } &&
    mount --bind /dev "$r/dev" &&
    mount --bind /dev/pts "$r/dev/pts" &&
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm" ||
        die "mounting /proc, /sys, /dev in $r failed"
}

unmount_root() {
    kill_inside "$1"
    unmount_under "$1" || die "mounts left under $1"
    ACTIVE=
}

# Run a shell command line in root $1 as root, with a login-like clean
# environment and no terminal input.
inroot() {
    chroot "$1" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
        TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -c "$2" < /dev/null
}

# Run "$@" in the background and wait, so INT/TERM reach the traps at once.
bg_wait() { "$@" & wait $!; }

# logged ROOT CMDLINE LOG FILTER...: CMDLINE in ROOT, all its output in LOG,
# what FILTER lets through on the console; the status is CMDLINE's.
logged() {
    local root=$1 cmd=$2 log=$3
    shift 3
    ( inroot "$root" "$cmd" 2>&1 | tee "$log" | "$@"; exit "${PIPESTATUS[0]}" ) &
    wait $!
}

# --- the machine's mirror, as scripts/deps.sh finds it ---------------------

. /etc/os-release 2>/dev/null || true
HOST_SUITE=${VERSION_CODENAME:-}
[ -n "$HOST_SUITE" ] || die "no VERSION_CODENAME in /etc/os-release: this needs a Debian host"
mirror=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk -v s="$HOST_SUITE" '
        /^[[:space:]]*$/ { if (u && ok && deb) { print u; exit } u = ""; ok = 0; deb = 0; next }
        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
        tolower($1) == "uris:" { u = $2 }
        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        END { if (u && ok && deb) print u }' | head -n 1)
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(awk -v s="$HOST_SUITE" '
        $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {
            if ($(i + 1) == s) { print $i; exit } } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no apt source for '$HOST_SUITE' found in /etc/apt"
mirror=${mirror%/}

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends debootstrap; } ||
        die "could not install debootstrap"
fi

# --- per release ------------------------------------------------------------

secs() { echo $(($(date +%s) - $1)); }
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

base_info() {      # base_info REL: what base.tar is made of (first line of base.info)
    echo "mirror=$mirror release=$1 variant=minbase include=$(base_include)"
}
base_include() { echo "git,make$(case $mirror in https:*) echo ,ca-certificates ;; esac)"; }
base_ok() { [ -f "$1/base.tar" ] && [ "$(head -n 1 "$1/base.info" 2>/dev/null)" = "$(base_info "$2")" ]; }

# make_base REL DIR: debootstrap DIR/base.tar (minbase + git + make), once.
make_base() {
    local rel=$1 dir=$2 t0 boot=$2/bootstrap include
    include=$(base_include)
    say "$rel: debootstrap --variant=minbase --include=$include $rel from $mirror"
    safe_rm "$boot"
    rm -f "$dir/base.tar"
    mkdir -p "$boot"
    t0=$(date +%s)
    ACTIVE=$boot        # debootstrap mounts /proc and /sys in the target itself
    if ! bg_wait debootstrap --variant=minbase --include="$include" \
            "$rel" "$boot" "$mirror" > "$dir/logs/debootstrap.log" 2>&1; then
        tail -n 20 "$dir/logs/debootstrap.log"
        unmount_root "$boot"
        echo "clean-room: $rel: debootstrap failed (log: $dir/logs/debootstrap.log)" >&2
        return 1
    fi
    unmount_root "$boot"
    # The root's only apt source: the mirror, for its own suite.
    printf 'deb %s %s main\n' "$mirror" "$rel" > "$boot/etc/apt/sources.list"
    rm -f "$boot"/etc/apt/sources.list.d/* "$boot"/var/cache/apt/archives/*.deb
    rm -rf "$boot"/var/lib/apt/lists/*
    tar -C "$boot" --numeric-owner -cpf "$dir/base.tar.tmp" . ||
        { echo "clean-room: $rel: could not write $dir/base.tar" >&2; return 1; }
    mv "$dir/base.tar.tmp" "$dir/base.tar"
    { base_info "$rel"; echo "debootstrap_seconds=$(secs "$t0")"; echo "made=$(date -Is)"
      chroot "$boot" dpkg-query -W git make; } > "$dir/base.info"
    safe_rm "$boot"
}

declare -A R_BASE R_ROOT R_COMMIT R_CLONE R_CHECK R_STAGES R_RUN R_TESTS R_TIMELINE R_OK

# A timeline: make run's "== step" headings, plugging and unplugging the
# device, and the TCEs read back at the end.
timeline_ok() {
    grep -q '^== .*device_add' "$1" && grep -q '^== .*device_del' "$1" &&
        [ "$(grep -c '^== ' "$1")" -ge 4 ] && grep -q '^  H_GET_TCE .* -> ' "$1"
}

run_release() {
    local rel=$1 dir=$CR/$1 root=$CR/$1/root t0 rc line
    R_OK[$rel]=no
    mkdir -p "$dir/logs"
    rm -f "$dir"/logs/clone.log "$dir"/logs/check.log "$dir"/logs/run.log "$dir"/logs/test-results.txt

    # 1. A fresh root from the cached base (debootstrapped when missing).
    t0=$(date +%s)
    if base_ok "$dir" "$rel"; then
        R_BASE[$rel]="cached"
    else
        make_base "$rel" "$dir" || { R_BASE[$rel]="FAILED"; return 1; }
        R_BASE[$rel]=$(mmss "$(secs "$t0")")
    fi
    t0=$(date +%s)
    safe_rm "$root"
    mkdir -p "$root"
    tar -C "$root" --numeric-owner -xpf "$dir/base.tar" || { R_ROOT[$rel]="FAILED"; return 1; }
    R_ROOT[$rel]=$(mmss "$(secs "$t0")")
    rm -f "$root/etc/resolv.conf"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    [ -s "$root/etc/hosts" ] ||
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
    printf '[user]\n\tname = %s\n\temail = %s\n' "$GIT_ID_NAME" "$GIT_ID_EMAIL" > "$root/root/.gitconfig"
    mount_root "$root"

    # 2. The clone: committed work only (a bare copy of HEAD's refs, cloned by
    #    the root's own git).
    t0=$(date +%s)
    if ! { git clone -q --bare --no-hardlinks "$REPO" "$root/tmp/origin.git" &&
           inroot "$root" "git clone -q /tmp/origin.git $SRC"; } > "$dir/logs/clone.log" 2>&1; then
        cat "$dir/logs/clone.log"
        R_CLONE[$rel]="FAILED"; unmount_root "$root"; return 1
    fi
    R_CLONE[$rel]=$(mmss "$(secs "$t0")")
    R_COMMIT[$rel]=$(inroot "$root" "git -C $SRC log -1 --format=%h")
    say "$rel: cloned ${R_COMMIT[$rel]} ($(inroot "$root" "git -C $SRC log -1 --format=%s"))"

    # 3. make check: its stage lines, test lines and summary on the console,
    #    everything in logs/check.log.
    say "$rel: make check (log: $dir/logs/check.log)"
    t0=$(date +%s)
    logged "$root" "cd $SRC && make check" "$dir/logs/check.log" \
        grep --line-buffered -E '^(==>|<==|FAIL |[0-9]+ passed, [0-9]+ failed$)|: error:|^make(\[[0-9]+\])?: \*\*\*'
    rc=$?
    R_CHECK[$rel]="$(mmss "$(secs "$t0")")$([ $rc = 0 ] || echo " (exit $rc)")"
    R_STAGES[$rel]=$(sed -n 's/^<== \([^:]*\): \([0-9]*\)s.*/\1 \2s/p' "$dir/logs/check.log" |
        paste -sd, - | sed 's/,/, /g')
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/logs/check.log" | tail -n 1)
    R_TESTS[$rel]=${line:-"no summary line"}
    cp "$root$SRC/build/test-results.txt" "$dir/logs/" 2>/dev/null
    [ $rc = 0 ] || tail -n 30 "$dir/logs/check.log"

    # 4. make run, printed in full.
    say "$rel: make run (log: $dir/logs/run.log)"
    t0=$(date +%s)
    logged "$root" "cd $SRC && make run" "$dir/logs/run.log" cat
    rc=$?
    R_RUN[$rel]="$(mmss "$(secs "$t0")")$([ $rc = 0 ] || echo " (exit $rc)")"
    if [ $rc = 0 ] && timeline_ok "$dir/logs/run.log"; then
        R_TIMELINE[$rel]="yes ($(grep -c '^== ' "$dir/logs/run.log") steps)"
    else
        R_TIMELINE[$rel]=no
    fi

    unmount_root "$root"
    case ${R_TESTS[$rel]} in
    *" passed, 0 failed") [ "${R_TESTS[$rel]%% *}" -gt 0 ] && [[ ${R_CHECK[$rel]} != *exit* ]] &&
                          [ "${R_TIMELINE[$rel]%% *}" = yes ] && R_OK[$rel]=yes ;;
    esac
    if [ "${R_OK[$rel]}" = yes ] && [ -z "${CLEAN_ROOM_KEEP:-}" ]; then
        safe_rm "$root"
    else
        say "$rel: root kept for inspection in $root (chroot $root /bin/bash)"
    fi
}

say "mirror $mirror; releases: ${RELEASES[*]}; repository $REPO at $(git -C "$REPO" log -1 --format=%h)"
overall=0
for rel in "${RELEASES[@]}"; do
    say "=== $rel"
    start=$(date +%s)
    run_release "$rel" || true
    R_OK[$rel]=${R_OK[$rel]:-no}
    [ "${R_OK[$rel]}" = yes ] || overall=1
    say "=== $rel: $([ "${R_OK[$rel]}" = yes ] && echo passed || echo FAILED) in $(mmss "$(secs "$start")")"
done

{
    echo
    echo "clean-room summary ($(date -I), mirror $mirror)"
    fmt='%-9s %-8s %-11s %-10s %-6s %-15s %-15s %-22s %s\n'
    printf "$fmt" release commit debootstrap "fresh root" clone "make check" "make run" \
        tests "make run timeline"
    for rel in "${RELEASES[@]}"; do
        printf "$fmt" "$rel" "${R_COMMIT[$rel]:--}" "${R_BASE[$rel]:--}" "${R_ROOT[$rel]:--}" \
            "${R_CLONE[$rel]:--}" "${R_CHECK[$rel]:--}" "${R_RUN[$rel]:--}" \
            "${R_TESTS[$rel]:--}" "${R_TIMELINE[$rel]:--}"
    done
    for rel in "${RELEASES[@]}"; do
        [ -n "${R_STAGES[$rel]:-}" ] && echo "$rel make check stages: ${R_STAGES[$rel]}"
    done
    echo "logs: $CR/<release>/logs/"
} | tee "$CR/summary.txt"
exit $overall
