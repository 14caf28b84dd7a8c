#!/usr/bin/env bash
# The host test suite against the newest libbpf Debian has (sid's source
# package, built static by .ci/libbpf-src.sh), in a scratch copy of the work
# tree, so this clone's build/ and dist/ are left alone. Exit status: mocha's.
#   .ci/host-suite-newest-libbpf.sh [extra mocha args]
# LBN_CACHE (default /tmp/lbn-cache) keeps the apt state, the source and the
# built libbpf; LBN_KEEP=1 keeps the scratch copy (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export LBN_CACHE=${LBN_CACHE:-/tmp/lbn-cache}

ver=$(.ci/libbpf-src.sh --version)
prefix=$LBN_CACHE/libbpf-$ver
.ci/libbpf-src.sh "$prefix"

# The tracked files and the new ones not ignored, as they are in the work tree
# (build/, dist/, node_modules/ are ignored, so none of them is copied).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lbn-libbpf-$ver.XXXXXX")
if [ "${LBN_KEEP:-0}" = 1 ]; then echo "newest-libbpf: scratch copy kept in $scratch"
else trap 'rm -rf "$scratch"' EXIT; fi
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$scratch"
# mktemp made it 0700: the examples' test runs them as nobody too.
chmod 755 "$scratch"
cd "$scratch"
if [ -d "$root/node_modules" ]; then ln -s "$root/node_modules" node_modules
else npm ci --no-audit --no-fund --ignore-scripts; fi

# Node's headers ship with this machine's node; node-gyp must not download them.
[ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr
LIBBPF_PREFIX=$prefix node_modules/.bin/node-gyp rebuild -j "$(nproc)" >build.log 2>&1 ||
  { cat build.log; echo "newest-libbpf: the addon did not build against libbpf $ver" >&2; exit 1; }
grep -E 'warning:|error:' build.log || true   # compiler diagnostics, if any

# The addon must carry libbpf $ver itself, not load the system's libbpf.so.
addon=build/Release/bpf_glue.node
got=$(node -p "require('./$addon').libbpfVersion")
if [ "$got" != "${ver%.*}" ] || ldd "$addon" | grep -q 'libbpf\.so'; then
  echo "newest-libbpf: the addon reports libbpf $got (wanted ${ver%.*}); ldd:" >&2; ldd "$addon" >&2; exit 1
fi
node_modules/.bin/tsc -p tsconfig.json
# BPF objects that use usdt.bpf.h must be built with the headers of the
# libbpf that loads them (1.7 changed the USDT argument records).
make -C bpf -B LIBBPF_PREFIX="$prefix" >/dev/null

# bpffs for pins, tracefs for tracepoint ids (as .ci/run).
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[ -e /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing

echo "newest-libbpf: node $(node --version), libbpf $ver (static, from Debian sid), kernel $(uname -r)"
rc=0
LBN_PLACE=libbpf-$ver node_modules/.bin/mocha --exclude dist/test/95.package.test.js "$@" || rc=$?
exit "$rc"
