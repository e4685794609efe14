#!/usr/bin/env bash
# The C ABI: build libsh4mm.a + the cbindgen header, check the committed
# header is current, build the C example kernel and boot it. The C kernel
# links sh4-rt's objects (runtime/asm: entry, vectors, fast path, exception
# frame; probes and user mode) and linker script; libsh4mm.a carries the
# library's assembly helpers and libgcc's SH helpers.
#   scripts/capi.sh build | test
set -euo pipefail
shopt -s inherit_errexit
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/toolchain.env"
fail() { printf 'capi: FAILED: %s\n' "$*" >&2; exit 1; }
OUT="$ROOT/target/sh4-unknown-none/release"

build() {
    bash "$ROOT/scripts/sh4-cargo" build --release -p sh4mm-capi >&2 || fail "cargo build of the C ABI failed"
    local hdr; hdr=$(ls -t "$OUT"/build/sh4mm-capi-*/out/sh4mm.h 2>/dev/null | head -n 1)
    [ -n "$hdr" ] || fail "cbindgen produced no header"
    cmp -s "$hdr" "$ROOT/capi/include/sh4mm.h" \
        || fail "capi/include/sh4mm.h is out of date: cp $hdr capi/include/sh4mm.h"
    local cc="$GCC_PREFIX/bin/sh4-linux-gnu-gcc" d="$OUT/c-kernel"
    mkdir -p "$d"
    for src in runtime/asm/start.S runtime/asm/user.S examples/c-kernel/main.c; do
        "$cc" -m4-nofpu -ml -O2 -ffreestanding -fno-pic -Wall -Werror -I"$ROOT/capi/include" -I"$ROOT/boot" \
            -c "$ROOT/$src" -o "$d/$(basename "$src").o" || fail "compiling $src"
    done
    sh4-linux-gnu-ld -T "$ROOT/runtime/linker.ld" --gc-sections --no-warn-rwx-segments -z noexecstack -o "$d/c-kernel" \
        "$d"/start.S.o "$d"/user.S.o "$d"/main.c.o "$OUT/libsh4mm.a" \
        "$(sh4-linux-gnu-gcc -print-libgcc-file-name)" >&2 || fail "linking the C kernel"
    sh4-linux-gnu-objcopy -O binary "$d/c-kernel" "$d/c-kernel.bin"
    cp "$OUT/flash.img" "$OUT/flash.bin" "$d/" 2>/dev/null || true
    echo "$d/c-kernel.bin"
}

case "${1:-test}" in
    build) build ;;
    # SH4MM_EMU=gxemul: boot on GXemul landisk instead of QEMU r2d.
    test) bin=$(build) || exit 1; exec bash "$ROOT/scripts/emu-run.sh" "${SH4MM_EMU:-qemu}" "$bin" ;;
    *) fail "usage: $0 build|test" ;;
esac
