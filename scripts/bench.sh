#!/usr/bin/env bash
# Benchmarks (README "Benchmarks"): writes results/bench.txt.
#
# target: exact instruction counts. The bench kernel (-append bench, see
#   kernel/src/bench.rs) runs each operation between two calls of
#   sh4mm_bench_mark. Run 1 boots it under `-singlestep -d exec,nochain`
#   without -icount: QEMU logs one line per executed instruction, streamed
#   through a FIFO into scripts/trace_count.rs, which cuts the trace at the
#   markers and counts each operation from its function's entry to the
#   return to its caller (or from the exception vector to the retried
#   instruction). Run 2 boots the same image under -icount shift=10, where
#   TMU0 ticks count every region a second, independent way; the two must
#   agree for every region or the script fails.
#   results/bench-profile.txt: where the instructions of the large ones go
#   (per function, from the same trace).
# host: criterion, window allocator and memtype structure at 10 / 1k / 100k.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
out=results/bench.txt
tmp=$(mktemp -d)
rec=
cleanup() { [ -n "$rec" ] && kill "$rec" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "bench: FAILED: $*" >&2; exit 1; }

bin=$(bash scripts/kernel.sh build) || fail "kernel build"
elf=${bin%.bin}
rustc --edition 2021 -O scripts/trace_count.rs -o "$tmp/trace_count" || fail "building scripts/trace_count.rs"
marker=$(sh4-linux-gnu-nm "$elf" | awk '$3 == "sh4mm_bench_mark" { print $1 }')
[ -n "$marker" ] || fail "no sh4mm_bench_mark in $elf"
sh4-linux-gnu-nm -C "$elf" > "$tmp/nm.txt"

# Run 1: the instruction trace (never written to disk: ~10^8 lines).
mkfifo "$tmp/trace"
"$tmp/trace_count" record "$tmp/trace" "$tmp/regions.bin" "$marker" 2> "$tmp/record.txt" &
rec=$!
SH4MM_ICOUNT=none SH4MM_TIMEOUT=${SH4MM_BENCH_TIMEOUT:-3600} SH4MM_LOG="$tmp/traced.txt" \
    bash scripts/qemu-run.sh "$bin" -append bench -singlestep -d exec,nochain -D "$tmp/trace" > /dev/null \
    || fail "traced run (console: $(tail -n 3 "$tmp/traced.txt" | tr '\r\n' '  '))"
wait "$rec" || fail "trace_count record: $(cat "$tmp/record.txt")"
rec=

# Run 2: the same image under -icount, TMU0 ticks per region.
SH4MM_ICOUNT=10 SH4MM_TIMEOUT=600 SH4MM_LOG="$tmp/icount.txt" \
    bash scripts/qemu-run.sh "$bin" -append bench > /dev/null || fail "icount run"
tr -d '\r' < "$tmp/icount.txt" > "$tmp/console.txt"
# Both runs must have measured the same regions in the same order.
diff <(tr -d '\r' < "$tmp/traced.txt" | sed -n 's/^bench-region: \([0-9]*\) | \([^|]*\) | \([^|]*\) | [0-9]* | /\1 \2 \3 /p') \
     <(sed -n 's/^bench-region: \([0-9]*\) | \([^|]*\) | \([^|]*\) | [0-9]* | /\1 \2 \3 /p' "$tmp/console.txt") > /dev/null \
    || fail "the traced and the icount runs measured different regions"

"$tmp/trace_count" report "$tmp/regions.bin" "$tmp/console.txt" "$bin" 0x8c800000 "$tmp/nm.txt" \
    results/bench-profile.txt > "$tmp/target.txt" 2> "$tmp/report.txt" || { cat "$tmp/target.txt" "$tmp/report.txt" >&2; fail "trace_count report"; }

cargo bench --bench window_alloc --bench memtype -- --warm-up-time 1 --measurement-time 3 > "$tmp/host.txt" 2>&1 \
    || fail "cargo bench"
{
    echo "# sh4-mm benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores"
    echo "# target: exact guest instruction counts (QEMU r2d, one trace line per executed instruction;"
    echo "# not cycles), $(cat "$tmp/record.txt" | sed 's/^trace_count: //')"
    cat "$tmp/target.txt"
    echo "# host (criterion): window = one vmalloc-window allocation + free with N live areas;"
    echo "# memtype = one 1-frame reserve + release (incl. the conflict check), or one lookup, with N live reservations"
    awk '/^(window_alloc_free|memtype_[a-z_]*)\// { name = $1 } /time:/ && name { sub(/.*time:/, "time:"); print name, $0; name = "" }' \
        "$tmp/host.txt" | tr -s ' '
} > "$out"
cat "$out"
