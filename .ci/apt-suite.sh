#!/usr/bin/env bash
# Prints apt options for a private apt state of one Debian suite (bullseye,
# sid, ...), so that kernels and modules of other suites can be looked up
# and downloaded without touching the machine's apt sources. The index is
# refreshed at most once a day. An empty SUITE prints nothing: the machine's
# own apt.
#   o=$(.ci/apt-suite.sh bullseye); apt-cache $o search ...
set -euo pipefail
suite=${1:-}
[ -n "$suite" ] || exit 0
d=${LBN_CACHE:-/tmp/lbn-cache}/apt-$suite
mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
o="-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::lists=$d/lists -o Dir::Cache=$d/cache"
exec 9> "$d/.lock"
flock 9
if [ -z "$(find "$d/updated" -mmin -1440 2>/dev/null)" ]; then
  mirror=http://deb.debian.org/debian
  { echo "deb $mirror $suite main"
    case $suite in bullseye|bookworm|trixie) echo "deb $mirror-security $suite-security main" ;; esac; } > "$d/sources.list"
  apt-get $o update -qq >&2 || { echo "apt-suite: apt-get update for $suite failed" >&2; exit 1; }
  touch "$d/updated"
fi
echo "$o"
