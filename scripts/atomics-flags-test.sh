#!/usr/bin/env bash
# The SH-4 build must refuse to compile without the flags that make atomics
# interrupt-safe (build.rs, check_atomic_flags): without
# -matomic-model=soft-imask,strict and -mno-usermode GCC emits gUSA atomic
# sequences (r15 = small negative number while they run; an exception inside
# one pushes its frame at 0xFFFFFFF8).
#   1. a real `cargo check` of the crate for the SH-4 with both flags left out
#      must fail with the message naming them;
#   2. the same build script, run directly, must refuse each flag missing on
#      its own (and soft-imask without strict), and accept both flags.
# Prints one "flags ... ok|FAILED" line per case; exit status = failures.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/toolchain.env"
cd "$ROOT"
TD="$ROOT/target/flagcheck"
base="-Zcodegen-backend=$CG_BACKEND -Clinker=$ROOT/scripts/sh4-ld -Cpanic=abort --cfg sh4mm_gcc_r$GCC_RECIPE"
fails=0
report() { if [ "$2" = ok ]; then echo "flags $1 ... ok"; else echo "flags $1 ... FAILED: $3"; fails=$((fails + 1)); fi; }

out=$(RUSTFLAGS="$base" SH4_CC="$GCC_PREFIX/bin/sh4-linux-gnu-gcc" RUSTUP_TOOLCHAIN="$RUST_TOOLCHAIN" \
    cargo check --target sh4-unknown-none.json -Zjson-target-spec \
        -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem \
        --target-dir "$TD" -p sh4-mm --lib 2>&1)
rc=$?
if [ $rc != 0 ] && grep -q -- "-matomic-model=soft-imask,strict" <<<"$out" && grep -q -- "-mno-usermode" <<<"$out"; then
    report cargo_check_without_both ok
else
    report cargo_check_without_both bad "exit $rc; $(tail -n 3 <<<"$out")"
fi

bs=$(ls -t "$TD"/debug/build/sh4-mm-*/build-script-build 2>/dev/null | head -n 1)
if [ -z "$bs" ]; then
    report build_script_found bad "no build-script-build under $TD"
else
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    us=$'\x1f'
    run_bs() {
        CARGO_CFG_TARGET_OS=none OUT_DIR="$tmp" CARGO_MANIFEST_DIR="$ROOT" SH4_CC="$GCC_PREFIX/bin/sh4-linux-gnu-gcc" \
            CARGO_ENCODED_RUSTFLAGS="$1" "$bs" > "$tmp/out.txt" 2>&1
    }
    for case in "no_usermode:-Cllvm-args=-matomic-model=soft-imask,strict" \
                "no_atomic_model:-Cllvm-args=-mno-usermode" \
                "soft_imask_without_strict:-Cllvm-args=-mno-usermode${us}-Cllvm-args=-matomic-model=soft-imask" \
                "gusa_last_wins:-Cllvm-args=-mno-usermode${us}-Cllvm-args=-matomic-model=soft-imask,strict${us}-C${us}llvm-args=-matomic-model=soft-gusa"; do
        name=${case%%:*}; flags=${case#*:}
        if run_bs "$flags"; then report "$name" bad "accepted"
        elif grep -q "refusing to build" "$tmp/out.txt"; then report "$name" ok
        else report "$name" bad "$(tail -n 2 "$tmp/out.txt")"; fi
    done
    if run_bs "-Cpanic=abort${us}-C${us}llvm-args=-mno-usermode${us}-Cllvm-args=-matomic-model=soft-imask,strict"; then
        report both_present_accepted ok
    else
        report both_present_accepted bad "$(tail -n 2 "$tmp/out.txt")"
    fi
fi
exit $fails
