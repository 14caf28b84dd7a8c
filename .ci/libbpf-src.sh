#!/usr/bin/env bash
# Build a static libbpf from Debian's newest source package (sid) into PREFIX_DIR:
#   .ci/libbpf-src.sh /tmp/lbn-cache/libbpf-1.7.0
#   .ci/libbpf-src.sh --version     # just print the upstream version sid has
# It leaves PREFIX_DIR/{include/bpf,lib/libbpf.a,lib/pkgconfig/libbpf.pc}, for
# LIBBPF_PREFIX=PREFIX_DIR node-gyp rebuild (not under build/: node-gyp rebuild
# deletes build/ first); a PREFIX_DIR that has them is left as it is. The
# machine's apt sources are untouched: apt runs on a private state under
# ${LBN_CACHE:-/tmp/lbn-cache}/apt-sid-src, which also keeps the download, so a
# second run (or a second prefix) costs no network. Nothing goes to /usr.
# LIBBPF_SRC_SUITE picks another suite (default sid).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 PREFIX_DIR | --version" >&2; exit 2; }
prefix=$1
only_version=false
if [ "$prefix" = --version ]; then only_version=true; prefix=/nonexistent; fi
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
case ${prefix%/} in /usr|/usr/*|/|"") echo "libbpf-src: refusing to install into $prefix" >&2; exit 2 ;; esac

have() { ls "$prefix"/lib*/libbpf.a >/dev/null 2>&1 && ls "$prefix"/lib*/pkgconfig/libbpf.pc >/dev/null 2>&1; }
if ! $only_version && have; then
  echo "libbpf-src: $(PKG_CONFIG_PATH=$(echo "$prefix"/lib*/pkgconfig) pkg-config --modversion libbpf) already in $prefix"
  exit 0
fi

suite=${LIBBPF_SRC_SUITE:-sid}
cache=${LBN_CACHE:-/tmp/lbn-cache}
d=$cache/apt-$suite-src
mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/src"
exec 9> "$d/.lock"   # one fetcher at a time (parallel CI jobs share the cache)
flock 9
if ! $only_version && have; then exec "$0" "$prefix"; fi   # another run made it meanwhile
echo "deb-src http://deb.debian.org/debian $suite main" > "$d/sources.list"
o="-o Dir::Etc::sourcelist=$d/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::lists=$d/lists -o Dir::Cache=$d/cache"

# Index at most once a day; the source files themselves are kept below.
if [ -z "$(find "$d/updated" -mmin -1440 2>/dev/null)" ]; then
  apt-get $o update -qq >&2 || { echo "libbpf-src: apt-get update for $suite failed" >&2; exit 1; }
  touch "$d/updated"
fi
ver=$(apt-cache $o showsrc libbpf | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[ -n "$ver" ] || { echo "libbpf-src: no libbpf source in $suite" >&2; exit 1; }
upver=${ver#*:}; upver=${upver%-*}
if $only_version; then echo "$upver"; exit 0; fi
echo "libbpf-src: Debian $suite source libbpf $ver"

dsc=$d/src/libbpf_${ver#*:}.dsc
if [ ! -e "$dsc" ]; then
  # apt drops root to _apt for downloads; let it write here
  chown _apt "$d/src" 2>/dev/null || true
  ( cd "$d/src" && apt-get $o source -qq --download-only "libbpf=$ver" )
fi
[ -e "$dsc" ] || { echo "libbpf-src: $dsc not downloaded" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/libbpf-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-source --no-check -x "$dsc" "$work/libbpf" >/dev/null
# -fPIC: the archive is linked into a shared object (the addon)
make -s -C "$work/libbpf/src" -j"$(nproc)" BUILD_STATIC_ONLY=1 EXTRA_CFLAGS=-fPIC \
  OBJDIR="$work/obj" DESTDIR="$work/stage" PREFIX="$prefix" LIBDIR="$prefix/lib" \
  INCLUDEDIR="$prefix/include" install >/dev/null
# staged, then moved into place whole: an interrupted run leaves no half prefix
rm -rf "$prefix"; mkdir -p "$(dirname "$prefix")"
mv "$work/stage$prefix" "$prefix"
have || { echo "libbpf-src: install into $prefix incomplete" >&2; exit 1; }

built=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion libbpf)
hv=$(awk '/define LIBBPF_MAJOR_VERSION/ {M=$3} /define LIBBPF_MINOR_VERSION/ {m=$3} END {print M "." m}' "$prefix/include/bpf/libbpf_version.h")
echo "libbpf-src: built libbpf $built (headers say $hv, Debian $ver) into $prefix"
[ "${built%.*}" = "$hv" ] && [ "$built" = "$upver" ] || echo "libbpf-src: warning: version mismatch ($built vs $hv vs $upver)" >&2
