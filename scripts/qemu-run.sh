#!/usr/bin/env bash
# Boot a raw kernel image on QEMU r2d and turn its console into an exit code.
#
#   scripts/qemu-run.sh KERNEL.bin [extra qemu args]
#
# The kernel prints "@@EXIT n@@" and powers the board off. Exit codes:
#   n   the kernel's own verdict (0 = all tests passed; 126 = TLB multiple hit,
#       reported by the flash image at 0xA0000000)
#   124 timed out (a hang)            125 QEMU ended without the sentinel (reset?)
# (the same for scripts/gxemul-run.sh; scripts/emu-run.sh picks the emulator).
# Timeout: $SH4MM_TIMEOUT seconds (default 120). Console copy: $SH4MM_LOG.
# -icount shift: $SH4MM_ICOUNT (default 7; "none" for none).
set -uo pipefail
bin=${1:?usage: qemu-run.sh KERNEL.bin [qemu args]}; shift
[ -f "$bin" ] || { echo "qemu-run: no such image: $bin" >&2; exit 2; }
# An ELF (cargo's runner protocol) is turned into the raw image QEMU loads.
if [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = "177ELF" ]; then
    sh4-linux-gnu-objcopy -O binary "$bin" "$bin.bin" || { echo "qemu-run: objcopy failed" >&2; exit 2; }
    bin="$bin.bin"
fi
command -v qemu-system-sh4 >/dev/null || { echo "qemu-run: qemu-system-sh4 not installed (scripts/bootstrap.sh apt)" >&2; exit 2; }
log=${SH4MM_LOG:-$(mktemp)}
# A flash image beside the kernel makes reset-type exceptions (TLB multiple
# hit) print a sentinel instead of silently resetting the board.
flash=()
if [ -f "$(dirname "$bin")/flash.img" ]; then
    flash=(-drive "if=pflash,file=$(dirname "$bin")/flash.img,format=raw,readonly=on")
fi
# SH4MM_ICOUNT=none: no -icount (an instruction trace then logs each
# instruction once; under -icount one doing I/O is logged twice).
icount=(-icount shift="${SH4MM_ICOUNT:-7}")
[ "${SH4MM_ICOUNT:-7}" = none ] && icount=()
timeout -k 3 "${SH4MM_TIMEOUT:-120}" qemu-system-sh4 -M r2d -kernel "$bin" \
    -display none -monitor none -serial null -serial stdio -nic none -no-reboot \
    "${icount[@]}" "${flash[@]}" "$@" < /dev/null | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "qemu-run: FAILED: timed out after ${SH4MM_TIMEOUT:-120}s (kernel hung)" >&2
    exit 124
fi
. "$(dirname "${BASH_SOURCE[0]}")/emu-verdict.sh"
emu_verdict qemu-run "$log"
