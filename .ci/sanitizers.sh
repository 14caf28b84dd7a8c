#!/usr/bin/env bash
# The bad-input and lifetime tests (and the object, map and buffer tests they
# lean on) with the addon built with AddressSanitizer and UBSan, in a scratch
# copy of the work tree, so this clone's build/ and dist/ are left alone.
#   .ci/sanitizers.sh [extra mocha args]
# Exit status: mocha's; 1 when mocha passed but a sanitizer reported anything
# (an ASan or UBSan error in any process, a leak of the addon's or libbpf's
# memory); 124 when the whole job ran out of time (LBN_SANITIZERS_TIMEOUT
# seconds, default 900: a hang under ASan ends here, not in CI's own limit).
# LBN_KEEP=1 keeps the scratch copy and the sanitizer logs (path printed);
# LBN_SANITIZER_TESTS replaces the list of test files; LBN_CACHE (default
# /tmp/lbn-cache) keeps the instrumented addon, by a hash of what it is built
# from, so a run with native/ unchanged skips the compile.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test files, compiled (dist/); one that is not in this tree (91 is
# being written) is skipped with a note.
TESTS=${LBN_SANITIZER_TESTS:-"dist/test/10.object.test.js dist/test/20.map.ops.test.js dist/test/50.ring_buffer.test.js dist/test/51.ring_buffer.edges.test.js dist/test/55.perf_buffer.test.js dist/test/90.errors.bad-input.test.js dist/test/91.errors.malformed.test.js dist/test/92.lifetime.hostile.test.js"}

# The whole job, build included, runs under timeout(1): it puts itself and
# everything below in a process group of their own and signals the group, so
# mocha, its test children and node-gyp's compilers all go.
if [ -z "${LBN_SANITIZERS_BOUNDED:-}" ]; then
  limit=${LBN_SANITIZERS_TIMEOUT:-900}
  rc=0
  LBN_SANITIZERS_BOUNDED=1 timeout -k 30 "$limit" "$PWD/.ci/sanitizers.sh" "$@" || rc=$?
  [ "$rc" -eq 124 ] && echo "sanitizers: stopped after ${limit}s" >&2
  exit "$rc"
fi
trap 'exit 143' TERM   # the timeout's SIGTERM runs the EXIT trap below
root=$PWD
started=$(date +%s)
export LBN_CACHE=${LBN_CACHE:-/tmp/lbn-cache}
unset LIBBPF_PREFIX   # the system libbpf (binding.gyp's default)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lbn-sanitizers.XXXXXX")
chmod 755 "$scratch"   # 92's unprivileged child (uid 65534) loads the library from here
if [ "${LBN_KEEP:-0}" = 1 ]; then echo "sanitizers: scratch copy kept in $scratch"
else trap 'rm -rf "$scratch"' EXIT; fi
# The tracked files and the new ones not ignored, as they are in the work tree
# (build/, dist/, node_modules/ are ignored, so none of them is copied; the
# BPF objects are tracked, so .ci/run's fresh ones come along).
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$scratch"
cd "$scratch"
if [ -d "$root/node_modules" ]; then ln -sfn "$root/node_modules" node_modules
else npm ci --no-audit --no-fund --ignore-scripts; fi

# ------------------------------------------------------------------- build
# The gyp-made Makefile appends $CFLAGS/$CXXFLAGS to every compile and
# $LDFLAGS to the link (after common.gypi's -O3, so -O1 wins), so binding.gyp
# is untouched.
#   -fsanitize=address,undefined  ASan (heap/stack/global overflows, use after
#       free, double free) and UBSan (-fsanitize=vptr excepted: node-gyp builds
#       with -fno-rtti); linking with it adds DT_NEEDED libasan.so and
#       libubsan.so to the addon.
#   -fno-sanitize-recover=all  every UBSan check is fatal, whatever
#       UBSAN_OPTIONS a child process ends up with.
#   -fno-omit-frame-pointer -g  whole stacks (ASan's fast unwinder walks frame
#       pointers) with file:line in native/.
#   -O1  what the sanitizers' authors advise: fewer frames inlined away than
#       -O3, much faster than -O0 (and a faster build).
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
SAN_LD="-fsanitize=address,undefined"
addon=build/Release/bpf_glue.node
key=$({ find native binding.gyp -type f -print0 | sort -z | xargs -0 cat
        echo "$SAN $SAN_LD"; node --version; gcc --version | head -1
        pkg-config --modversion libbpf; cat node_modules/node-addon-api/package.json
      } | sha256sum | cut -c1-16)
cached=$LBN_CACHE/sanitizers/bpf_glue-$key.node
if [ -f "$cached" ]; then
  mkdir -p build/Release && cp "$cached" "$addon"
  echo "sanitizers: the instrumented addon of this native/ is cached ($cached)"
else
  # Node's headers ship with this machine's node; node-gyp must not download them.
  [ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr
  CFLAGS="$SAN" CXXFLAGS="$SAN" LDFLAGS="$SAN_LD" \
    node_modules/.bin/node-gyp rebuild -j "$(nproc)" >build.log 2>&1 ||
    { cat build.log; echo "sanitizers: the addon did not build" >&2; exit 1; }
  grep -E 'warning:|error:' build.log || true   # compiler diagnostics, if any
  mkdir -p "${cached%/*}" && cp "$addon" "$cached.$$" && mv -f "$cached.$$" "$cached"
  ls -t "${cached%/*}"/bpf_glue-*.node | tail -n +4 | xargs -r rm -f   # the newest 3 stay
fi
# The ASan runtime the addon was linked against (the same file as
# `gcc -print-file-name=libasan.so`).
asan_rt=$(ldd "$addon" | awk '$1 ~ /^libasan\.so/ {print $3}')
if [ ! -f "$asan_rt" ]; then
  echo "sanitizers: $addon is not linked against libasan; ldd:" >&2; ldd "$addon" >&2; exit 1
fi
node_modules/.bin/tsc -p tsconfig.json
echo "sanitizers: built in $(( $(date +%s) - started ))s"

echo "sanitizers: node $(node --version), libbpf $(pkg-config --modversion libbpf 2>/dev/null || echo '?'), $(gcc --version | head -1), runtime $asan_rt"
files=()
for f in $TESTS; do
  if [ -f "$f" ]; then files+=("$f"); else echo "sanitizers: $f is not in this tree, skipped"; fi
done

# bpffs for pins, tracefs for tracepoint ids (as .ci/run).
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[ -e /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing

# ------------------------------------------------------------- environment
# Every process from here on inherits these: mocha, the node children the
# tests spawn (which load the addon too), and the other children (ip,
# bpftool, taskset, setpriv, mount): those get the ASan runtime as well;
# uninstrumented, they only have their malloc and libc calls checked, and
# they run fine (their leaks at exit are in the logs, ignored below; their
# exit status is theirs).
logs=$scratch/sanitizer-logs
# Writable by all: a process that cannot open its log file dies ("Can't open
# file"), and 92 runs one child as uid 65534.
mkdir -p "$logs" && chmod 1777 "$logs"
# node is not instrumented: the ASan runtime must be in the process before
# anything else (it replaces malloc), hence LD_PRELOAD; without it, loading
# the addon stops with "ASan runtime does not come first in initial library
# list". libubsan needs no preload: the addon's DT_NEEDED loads it and UBSan
# does not replace malloc.
export LD_PRELOAD=$asan_rt
# ASAN_OPTIONS:
#   allow_user_segv_handler=0  (handle_segv=1 stays, the default) node
#       puts its own SIGSEGV handler (V8's WebAssembly trap handler) in place
#       of ASan's, and hands a fault that is not WebAssembly's to the default
#       action: a bare "Segmentation fault", no report. With this, ASan's
#       sigaction() ignores anyone else's SIGSEGV/SIGBUS handler, and a wild
#       pointer in the addon gets a full report (handle_segv=0 would leave
#       the bare crash). What it costs: an out-of-bounds WebAssembly access
#       would be a crash instead of a RuntimeError, so the test process also
#       gets --wasm-enforce-bounds-checks (explicit checks; no test here uses
#       WebAssembly anyway).
#   abort_on_error=1  a report ends in abort(), so the process dies of SIGABRT
#       (mocha's status then says so) rather than exiting with 1.
#   halt_on_error=1  stop at the first error (the default without
#       -fsanitize-recover=address; said for clarity).
#   detect_leaks=1  LeakSanitizer at each process's exit; see LSAN_OPTIONS and
#       the filter below for what counts.
#   intercept_tls_get_addr=0  GCC 12's runtime (up to GCC 13) can take a
#       dynamic TLS block for a glibc 2.19 one and hand LeakSanitizer a bogus
#       range: "Tracer caught signal 11 ... LeakSanitizer has encountered a
#       fatal error" and an aborted process (seen, every time, in
#       50.ring_buffer's child that exits by itself). Static TLS is still
#       scanned; the addon's one thread_local points at the stack only.
#   allocator_may_return_null=1  an impossible allocation returns NULL (or
#       throws bad_alloc) as it does without ASan, so the addon's ENOMEM paths
#       run as in production instead of ASan stopping the process.
#   log_path, log_exe_name  reports go to $logs/asan.EXE.PID, one file a
#       process, not to stderr: tests that read a child's stderr are not
#       disturbed, and the files are read below once mocha is done.
export ASAN_OPTIONS="allow_user_segv_handler=0:abort_on_error=1:halt_on_error=1:detect_leaks=1:intercept_tls_get_addr=0:allocator_may_return_null=1:log_path=$logs/asan:log_exe_name=1"
# LSAN_OPTIONS: exitcode=0: a leak report does not change a process's exit
# status (node and V8 leave memory behind at exit by design, and bpftool
# does too), so no test fails over one; the filter below decides. Suppression
# files cannot do that job: node is one static binary (no libnode.so) and a
# suppression matches any frame of the allocation stack, so `leak:node` or
# `leak:v8::` also hides every leak of the addon, whose stacks all go through
# node's N-API frames.
export LSAN_OPTIONS="exitcode=0"
# UBSAN_OPTIONS (libubsan is a runtime of its own, with its own options):
# print_stacktrace=1 for where the undefined behaviour came from;
# halt_on_error=1 and abort_on_error=1 as for ASan; report_error_type=1 names
# the check. No log_path: GCC's libubsan ignores it when libasan is loaded
# too, and writes to the process's stderr (see mocha.stderr below).
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:report_error_type=1"

# mocha's stderr (and that of the children that share it) is also kept, for
# UBSan's reports. A child whose stderr a test reads keeps its report to
# itself, but it dies of SIGABRT all the same, and the test that ran it fails.
set +e
{ LBN_PLACE=asan node_modules/.bin/mocha --no-config --reporter ./test/summary-reporter.js \
    --node-option expose-gc --node-option wasm-enforce-bounds-checks --timeout 60000 \
    "${files[@]}" "$@" 2>&1 1>&3 3>&- | tee "$logs/mocha.stderr" >&2; } 3>&1
rc=${PIPESTATUS[0]}
set -e
unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

# ------------------------------------------------------------------ reports
# Errors: any ASan or UBSan report, from any process, fails the job (a child
# that died of one may have been a test's expected failure).
errors=$(grep -lE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer has encountered a fatal error' "$logs"/* 2>/dev/null || true)
for f in $errors; do
  [ "${f##*/}" = mocha.stderr ] && continue   # already on the terminal
  echo "================ sanitizers: ${f##*/}" >&2
  head -200 "$f" >&2
done
# Leaks, in node processes only (ip links libbpf.so too): the ones whose
# allocation was made by the addon (native/, the node-addon-api headers
# compiled into it) or by libbpf, before the stack enters node. What node
# allocates for its own bookkeeping when the addon calls it, and leaves at
# exit, is node's and not counted: napi_create_external's wrapper (freed by
# a GC callback that exit does not run), the napi_deferred of a loadAsync()
# whose Worker was terminated, V8's remembered sets.
nodebin=$(readlink -f "$(command -v node)")
leaks=$(awk -v nodebin="$nodebin" '
  function flush() {
    if (blk != "" && ours && ++n <= 10) printf "================ sanitizers: %s\n%s\n", file, blk
    blk = ""; ours = 0; innode = 0
  }
  FNR == 1 { flush(); file = FILENAME }
  /^(Direct|Indirect) leak of / { flush(); blk = $0 "\n"; next }
  blk != "" && /^ +#[0-9]+ / {
    blk = blk $0 "\n"
    if ($1 == "#0" || innode) next          # #0: the allocator itself
    if (index($0, "(" nodebin "+0x") || /<unknown module>/ || / \.\.\/deps\//) { innode = 1; next }
    if (/native\/[^ :]+:[0-9]+/ || /bpf_glue\.node/ || /node-addon-api\// || /libbpf\.so/) ours = 1
    next
  }
  { flush() }
  END { flush(); if (n > 10) printf "================ sanitizers: %d more not shown\n", n - 10; printf "%d\n", n }
' "$logs"/asan.node.* 2>/dev/null || echo 0)
nleaks=${leaks##*$'\n'}
[ "$nleaks" -gt 0 ] && printf '%s\n' "${leaks%$'\n'*}" >&2
nerrors=$(printf '%s' "$errors" | grep -c . || true)
other=$(cat "$logs"/* 2>/dev/null | grep -cE '^(Direct|Indirect) leak of ' || true)
echo "sanitizers: $nerrors log(s) with an ASan/UBSan report, $nleaks leak(s) of the addon's or libbpf's memory ($(( other - nleaks )) leak record(s) of node's or other programs' own, ignored); $(( $(date +%s) - started ))s in all"
if [ "$rc" -eq 0 ] && [ $(( nerrors + nleaks )) -gt 0 ]; then rc=1; fi
if [ "$rc" -ne 0 ] && [ "${LBN_KEEP:-0}" != 1 ]; then
  echo "sanitizers: (LBN_KEEP=1 keeps the scratch copy and every log)" >&2
fi
exit "$rc"
