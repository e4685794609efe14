#!/usr/bin/env bash
# Build and run the sh4-mm demo kernel under QEMU r2d.
#
#   scripts/kernel.sh build        # -> target/sh4-unknown-none/release/sh4-mm-kernel{,.bin}
#   scripts/kernel.sh run          # build, boot, show the console; exit code from the kernel
#   scripts/kernel.sh test         # same as run, but "ran no test"/timeouts are failures
#
# Needs the toolchain from scripts/bootstrap.sh (checked here).
set -euo pipefail
shopt -s inherit_errexit
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/toolchain.env"
fail() { printf 'kernel: FAILED: %s\n' "$*" >&2; exit 1; }

[ -f "$CG_BACKEND" ] || fail "rustc_codegen_gcc missing ($CG_BACKEND): run scripts/bootstrap.sh"
[ -x "$GCC_PREFIX/bin/sh4-linux-gnu-gcc" ] || fail "sh4 GCC missing ($GCC_PREFIX): run scripts/bootstrap.sh"

build() {
    cd "$ROOT"
    # -m4-nofpu is the libgccjit's configured default; soft-imask makes every
    # atomic read-modify-write an interrupt-masked sequence (no CAS on SH-4).
    # -mno-usermode: privileged code (soft-imask needs it). The cfg names the
    # libgccjit recipe so that a new libgccjit rebuilds everything.
    RUSTFLAGS="-Zcodegen-backend=$CG_BACKEND -Clinker=$ROOT/scripts/sh4-ld -Cllvm-args=-mno-usermode -Cllvm-args=-matomic-model=soft-imask,strict -Cpanic=abort --cfg sh4mm_gcc_r$GCC_RECIPE" \
    SH4_CC="$GCC_PREFIX/bin/sh4-linux-gnu-gcc" \
    RUSTUP_TOOLCHAIN="$RUST_TOOLCHAIN" \
        cargo build --release --target sh4-unknown-none.json -Zjson-target-spec \
            -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem \
            --features kernel --bin sh4-mm-kernel "$@" >&2 || fail "cargo build of the kernel failed"
    local elf="$ROOT/target/sh4-unknown-none/release/sh4-mm-kernel"
    rm -f "$elf.bin"
    sh4-linux-gnu-objcopy -O binary "$elf" "$elf.bin" || fail "objcopy failed"
    # 16 MiB flash image for 0xA0000000 (multi-hit/reset vector), see boot/flash.S.
    local fdir; fdir=$(dirname "$elf")
    "$GCC_PREFIX/bin/sh4-linux-gnu-gcc" -c "$ROOT/boot/flash.S" -o "$fdir/flash.o" || fail "flash.S"
    sh4-linux-gnu-objcopy -O binary -j .text "$fdir/flash.o" "$fdir/flash.img" || fail "flash objcopy"
    truncate -s 16M "$fdir/flash.img"
    echo "$elf.bin"
}

case "${1:-run}" in
    build) build ;;
    run|test)
        bin=$(build) || exit 1
        exec bash "$ROOT/scripts/qemu-run.sh" "$bin" ;;
    *) fail "usage: $0 build|run|test" ;;
esac
