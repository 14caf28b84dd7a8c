#!/usr/bin/env bash
# A short run of the object fuzzer (test/fuzz/fuzz.ts, issue 11): mutants of
# the objects in bpf/ opened (and some loaded) in child processes for 120 s
# with a fixed seed. Fails on any crash (saved in test/fuzz/crashes/) or any
# rejection that is not a BpfError naming its cause. Compiles the project
# first; needs root, like the test suite.
#   .ci/fuzz-smoke.sh [SECONDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
seed=${2:-smoke-1}
npx tsc -p tsconfig.json
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
exec node dist/test/fuzz/fuzz.js --seconds "$seconds" --seed "$seed"
