#!/usr/bin/env bash
# Benchmarks (README "Benchmarks"): writes results/bench.txt.
#   target: instruction counts under QEMU -icount shift=10 (deterministic)
#   host:   criterion, window allocator alloc+free at 10 / 1k / 100k live areas
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
out=results/bench.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$(bash scripts/kernel.sh build) || { echo "bench: FAILED: kernel build"; exit 1; }
SH4MM_ICOUNT=10 SH4MM_TIMEOUT=600 SH4MM_LOG="$tmp/target.txt" \
    bash scripts/qemu-run.sh "$bin" -append bench > /dev/null
cargo bench --bench window_alloc -- --warm-up-time 1 --measurement-time 3 > "$tmp/host.txt" 2>&1
{
    echo "# sh4-mm benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores"
    echo "# target: QEMU r2d, -icount shift=10, TMU0 ticks / nop-sled calibration (instructions, not cycles)"
    grep '^bench: ' "$tmp/target.txt" | tr -d '\r'
    echo "# host (criterion): one vmalloc-window allocation + free with N live areas"
    awk '/^window_alloc_free\// { name = $1 } /time:/ && name { sub(/.*time:/, "time:"); print name, $0; name = "" }' \
        "$tmp/host.txt" | tr -s ' '
} > "$out"
cat "$out"
