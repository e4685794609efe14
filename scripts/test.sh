#!/usr/bin/env bash
# The project's test command (README "Test"):
#   1. scripts/bootstrap.sh   (idempotent; installs/builds the toolchain on a fresh machine)
#   2. host: clippy (and clippy of the SH-4-only crates for the target), then
#      cargo test (unit, model scenarios, fault injection)
#   3. target: the demo kernel, the C kernel, examples/tiny_os and the
#      out-of-tree examples/dreamcast-like on QEMU r2d
#      and on GXemul landisk, and each runner's handling of deliberate failures
# Last line: "test: N passed, M failed" over both; exit non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

bash scripts/bootstrap.sh || { echo "test: FAILED: toolchain bootstrap"; exit 1; }

echo "== host: rustfmt (every workspace crate and examples/dreamcast-like; rustfmt.toml)"
cargo fmt --all --check || { echo "test: FAILED: rustfmt (run cargo fmt --all)"; exit 1; }
(cd examples/dreamcast-like && cargo fmt --check) || { echo "test: FAILED: rustfmt in examples/dreamcast-like"; exit 1; }

echo "== host: clippy"
cargo clippy --all-targets -- -D warnings || { echo "test: FAILED: clippy"; exit 1; }

# The SH-4 crates (demo kernel, tiny_os, runtime, C ABI, the out-of-tree
# example) only build for the target: clippy them there too, every unsafe
# block with its SAFETY comment.
echo "== target: clippy (sh4-mm-kernel, tiny_os, sh4-rt, sh4mm-capi, dreamcast-like)"
bash scripts/sh4-cargo clippy --release -p sh4-mm-kernel -p tiny_os -p sh4-rt -p sh4mm-capi -- -D warnings -D clippy::undocumented_unsafe_blocks \
    || { echo "test: FAILED: clippy (SH-4)"; exit 1; }
bash scripts/sh4-cargo --manifest-path examples/dreamcast-like/Cargo.toml clippy --release -- -D warnings -D clippy::undocumented_unsafe_blocks \
    || { echo "test: FAILED: clippy (dreamcast-like)"; exit 1; }

echo "== host: cargo doc (every public item documented, no broken links)"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -q || { echo "test: FAILED: cargo doc"; exit 1; }

echo "== host: cargo test"
cargo test --all-targets 2>&1 | tee "$log/host.txt"
host_rc=${PIPESTATUS[0]}
hp=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed/) s += $(i-1) } END { print s + 0 }' "$log/host.txt")
hf=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failed/) s += $(i-1) } END { print s + 0 }' "$log/host.txt")
[ "$host_rc" = 0 ] || hf=$(( ${hf:-0} > 0 ? hf : 1 ))

# Target suites: the Rust demo kernel's tests, the C kernel on the C ABI,
# and the example OS (examples/tiny_os), each on QEMU r2d and on GXemul
# landisk (scripts/emu-run.sh). A test meaningless on one emulator reports
# "skipped (why)" there and counts neither as passed nor as failed.
tp=0; tf=0; ts=0; target_rc=0
echo "== target: building the demo kernel, examples/tiny_os, the C kernel and examples/dreamcast-like"
kbin=$(bash scripts/kernel.sh build) || { echo "test: FAILED: kernel build"; exit 1; }
ebin=$(bash scripts/kernel.sh build-example) || { echo "test: FAILED: tiny_os build"; exit 1; }
cbin=$(bash scripts/capi.sh build) || { echo "test: FAILED: C kernel build"; exit 1; }
dbin=$(bash scripts/kernel.sh build-dreamcast) || { echo "test: FAILED: dreamcast-like build"; exit 1; }
for emu in qemu gxemul; do
    for suite in "kernel:$kbin" "capi:$cbin" "tiny_os:$ebin" "dreamcast-like:$dbin"; do
        name=${suite%%:*}; bin=${suite#*:}
        echo "== target: $name on $emu"
        t0=$SECONDS
        SH4MM_LOG="$log/$name-$emu.txt" bash scripts/emu-run.sh "$emu" "$bin"
        rc=$?
        line=$(grep '^target: [0-9]* passed, [0-9]* failed' "$log/$name-$emu.txt" 2>/dev/null | tail -n 1)
        p=$(sed -n 's/^target: \([0-9]*\) passed.*/\1/p' <<<"$line")
        f=$(sed -n 's/^target: [0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
        k=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$line")
        p=${p:-0}; f=${f:-0}; k=${k:-0}
        if [ "$rc" != 0 ]; then f=$(( f > 0 ? f : 1 )); target_rc=$rc; fi
        echo "== target: $name on $emu: exit $rc, $p passed, $f failed, $k skipped, $((SECONDS - t0)) s"
        tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + k))
    done
done

# The runners must catch every way a kernel can go wrong: same image, a
# command line that makes it fail on purpose, and the exit code we expect.
sp=0; sf=0
for emu in qemu gxemul; do
    echo "== target: the $emu runner catches deliberate failures"
    for case in "panic 101" "oops 102" "fail 1" "leak 1" "reset 125" "hang 124" "multihit 126"; do
        set -- $case
        # Only the hang case gets a short timeout; "fail" and "leak" run the
        # whole suite (plus one failing test).
        t=120; [ "$1" = hang ] && t=10
        SH4MM_TIMEOUT=$t SH4MM_LOG="$log/self-$1-$emu.txt" bash scripts/emu-run.sh "$emu" "$kbin" "selftest=$1" \
            > "$log/self-$1-$emu.out" 2>&1
        rc=$?
        if [ "$rc" = "$2" ]; then
            echo "selftest $1 on $emu ... ok (exit $rc)"; sp=$((sp + 1))
        else
            echo "selftest $1 on $emu ... FAILED: exit $rc, expected $2"; tail -n 5 "$log/self-$1-$emu.out"; sf=$((sf + 1))
        fi
    done
done

# Atomics must be interrupt-safe: an SH-4 build without
# -matomic-model=soft-imask,strict / -mno-usermode must be refused.
echo "== target: the build refuses SH-4 builds without the atomics flags"
bash scripts/atomics-flags-test.sh | tee "$log/flags.txt"
fp=$(grep -c '^flags .* ok$' "$log/flags.txt"); ff=$(grep -c '^flags .* FAILED' "$log/flags.txt")
[ "$fp" -gt 0 ] || ff=$((ff + 1))

[ "$ts" = 0 ] || echo "test: $ts skipped (not meaningful on that emulator; each says why above)"
echo "test: $(( ${hp:-0} + tp + sp + fp )) passed, $(( ${hf:-0} + tf + sf + ff )) failed"
[ "$host_rc" = 0 ] && [ "$target_rc" = 0 ] && [ "$sf" = 0 ] && [ "$ff" = 0 ]
