#!/usr/bin/env bash
# Build and run the sh4-mm demo kernel under QEMU r2d.
#
#   scripts/kernel.sh build        # -> target/sh4-unknown-none/release/sh4-mm-kernel{,.bin}
#   scripts/kernel.sh run          # build, boot, show the console; exit code from the kernel
#   scripts/kernel.sh test         # same as run, but "ran no test"/timeouts are failures
#   scripts/kernel.sh example      # build and boot examples/tiny_os
#   scripts/kernel.sh build-example  # build it only (prints the image path)
#   scripts/kernel.sh dreamcast    # build and boot examples/dreamcast-like (out of tree)
#   scripts/kernel.sh build-dreamcast  # build it only (prints the image path)
#
# SH4MM_EMU=gxemul boots on GXemul landisk instead of QEMU r2d (default
# qemu); both through scripts/emu-run.sh, with the same exit codes.
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
    bash "$ROOT/scripts/sh4-cargo" build --release -p sh4-mm-kernel "$@" >&2 \
        || fail "cargo build of the kernel failed"
    local elf="$ROOT/target/sh4-unknown-none/release/sh4-mm-kernel"
    rm -f "$elf.bin"
    sh4-linux-gnu-objcopy -O binary "$elf" "$elf.bin" || fail "objcopy failed"
    # 16 MiB flash image for 0xA0000000 (multi-hit/reset vector), see runtime/asm/flash.S.
    local fdir; fdir=$(dirname "$elf")
    "$GCC_PREFIX/bin/sh4-linux-gnu-gcc" -I"$ROOT/boot" -c "$ROOT/runtime/asm/flash.S" -o "$fdir/flash.o" || fail "flash.S"
    sh4-linux-gnu-objcopy -O binary -j .text "$fdir/flash.o" "$fdir/flash.bin" || fail "flash objcopy"
    # QEMU's r2d pflash wants the whole 16 MiB; GXemul loads flash.bin as is.
    cp "$fdir/flash.bin" "$fdir/flash.img"
    truncate -s 16M "$fdir/flash.img"
    echo "$elf.bin"
}

example() {
    bash "$ROOT/scripts/sh4-cargo" build --release -p tiny_os >&2 \
        || fail "cargo build of examples/tiny_os failed"
    local elf="$ROOT/target/sh4-unknown-none/release/tiny_os"
    sh4-linux-gnu-objcopy -O binary "$elf" "$elf.bin" || fail "objcopy failed"
    echo "$elf.bin"
}

# The out-of-tree example: its own package and target directory, built as a
# user builds their crate (sh4-cargo --manifest-path). Linked at 0x8c010000;
# our runners load it at 0x0c800000 and its _start copies it down.
dreamcast() {
    local m="$ROOT/examples/dreamcast-like"
    bash "$ROOT/scripts/sh4-cargo" --manifest-path "$m/Cargo.toml" build --release >&2 \
        || fail "cargo build of examples/dreamcast-like failed"
    local elf="$m/target/sh4-unknown-none/release/dreamcast-like"
    sh4-linux-gnu-objcopy -O binary "$elf" "$elf.bin" || fail "objcopy failed"
    echo "$elf.bin"
}

emu=${SH4MM_EMU:-qemu}
case "${1:-run}" in
    build) build ;;
    build-example) build > /dev/null; example ;;
    example)
        build > /dev/null
        bin=$(example) || exit 1
        exec bash "$ROOT/scripts/emu-run.sh" "$emu" "$bin" ;;
    build-dreamcast) dreamcast ;;
    dreamcast)
        bin=$(dreamcast) || exit 1
        exec bash "$ROOT/scripts/emu-run.sh" "$emu" "$bin" ;;
    run|test)
        bin=$(build) || exit 1
        exec bash "$ROOT/scripts/emu-run.sh" "$emu" "$bin" ;;
    *) fail "usage: $0 build|run|test|example|build-example|dreamcast|build-dreamcast" ;;
esac
