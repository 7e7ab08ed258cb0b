#!/usr/bin/env bash
# apt-get for ppc64el packages of one Debian suite, with a private state dir
# under build/cache/e2e/apt/SUITE: the host's architectures and package state
# are never touched. The mirror is the machine's own (from /etc/apt).
#   e2e/apt.sh SUITE update
#   e2e/apt.sh SUITE <any apt-get / apt-cache command...>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUITE=${1:?usage: apt.sh SUITE apt-get-args...}; shift
D=${E2E_CACHE:-$here/../build/cache/e2e}/apt/$SUITE
mkdir -p "$D/state/lists/partial" "$D/cache/archives/partial" "$D/etc/preferences.d" "$D/etc/apt.conf.d"
: > "$D/status.empty"   # refreshed: nothing is ever installed here
if [ ! -s "$D/etc/sources.list" ]; then
    mirror=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        awk 'tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }')
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++)
        if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || { echo "e2e/apt: no Debian mirror in /etc/apt" >&2; exit 1; }
    echo "deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main" > "$D/etc/sources.list"
fi
opts=(-o Dir::State="$D/state" -o Dir::Cache="$D/cache"
      -o Dir::State::status="$D/status.empty"
      -o Dir::Etc::SourceList="$D/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::Etc::Preferences="$D/etc/preferences" -o Dir::Etc::PreferencesParts="$D/etc/preferences.d"
      -o Dir::Etc::Parts="$D/etc/apt.conf.d"
      -o APT::Architecture=ppc64el -o APT::Architectures=ppc64el
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root
      -o Acquire::Languages=none -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
      -o Acquire::Check-Valid-Until=false)   # a frozen sid's Release is expired: see scripts/fetch-qemu.sh
cmd=$1; shift
case "$cmd" in
update|download|install|source) exec apt-get -q "${opts[@]}" "$cmd" "$@" ;;
*) exec apt-cache "${opts[@]}" "$cmd" "$@" ;;
esac
