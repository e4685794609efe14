#!/usr/bin/env bash
# Boot a raw kernel image on GXemul's landisk (SH7751R, 64 MiB at phys
# 0x0c000000, SCIF console) and turn its console into an exit code.
#
#   scripts/gxemul-run.sh KERNEL.bin [KERNEL COMMAND LINE]
#
# Exit codes as scripts/qemu-run.sh: the kernel's "@@EXIT n@@" verdict,
# 124 hang (timeout), 125 no sentinel (reset, emulator stop), 126 TLB
# multiple hit. Timeout: $SH4MM_TIMEOUT seconds (default 300). Console copy:
# $SH4MM_LOG. Why each step is needed (GXemul 0.7.0 source lines):
# docs/EMULATORS.md.
#
# The image is loaded where QEMU r2d loads it (phys 0x0c800000) and started
# at its P2 address, like QEMU. GXemul has no -append: the command line
# (plus "emu=gxemul", so the kernel can say which tests are meaningless
# here) is written as a NUL-terminated file loaded at 0x8c010100, the
# Linux/SH boot-parameter page QEMU fills. runtime/asm/flash.S is loaded at the
# reset vector 0xA0000000. GXemul has no power-off register: the run ends
# when the console shows "@@EXIT n@@" or "@@RESET@@".
set -uo pipefail
bin=${1:?usage: gxemul-run.sh KERNEL.bin [command line]}; shift
[ -f "$bin" ] || { echo "gxemul-run: no such image: $bin" >&2; exit 2; }
if [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = "177ELF" ]; then
    sh4-linux-gnu-objcopy -O binary "$bin" "$bin.bin" || { echo "gxemul-run: objcopy failed" >&2; exit 2; }
    bin="$bin.bin"
fi
command -v gxemul >/dev/null || { echo "gxemul-run: gxemul not installed (scripts/bootstrap.sh apt)" >&2; exit 2; }
cmdline="$* emu=gxemul"
cmdline=${cmdline# }
[ ${#cmdline} -lt 256 ] || { echo "gxemul-run: command line longer than 255 bytes" >&2; exit 2; }
log=${SH4MM_LOG:-$(mktemp)}
: > "$log"
work=$(mktemp -d)
gx=""; feeder=""
cleanup() {
    [ -n "$gx" ] && kill -9 "$gx" 2>/dev/null
    [ -n "$feeder" ] && kill "$feeder" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
printf '%s\0' "$cmdline" > "$work/cmdline.bin"
files=("0x8c010100:$work/cmdline.bin")
flash="$(dirname "$bin")/flash.bin"
[ -f "$flash" ] && files=("0xa0000000:$flash" "${files[@]}")
# stdin: a pipe that stays open. At EOF (/dev/null) GXemul's console input
# check loops on the closed descriptor (select says readable, read gives 0)
# and the guest makes no progress.
mkfifo "$work/stdin"
sleep 100000 > "$work/stdin" & feeder=$!
# stdout through stdbuf: GXemul's console uses putchar(), fully buffered
# on a pipe, and we kill it (no power-off), which would lose the tail.
# -Q: no PROM emulation (it would set VBR and patch RAM at 0x8c000100).
stdbuf -oL -eL gxemul -q -Q -E landisk "${files[@]}" "0xac800000:$bin" \
    < "$work/stdin" > "$log" 2>&1 &
gx=$!
tail -s 0.2 -n +1 -f --pid="$gx" "$log" 2>/dev/null &
viewer=$!
deadline=$((SECONDS + ${SH4MM_TIMEOUT:-300}))
rc=""
while kill -0 "$gx" 2>/dev/null; do
    if grep -q -e '@@EXIT [0-9]*@@' -e '@@RESET@@' "$log"; then
        sleep 0.2   # let the rest of the sentinel line arrive
        kill -9 "$gx" 2>/dev/null; rc=stopped; break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        kill -9 "$gx" 2>/dev/null; rc=timeout; break
    fi
    sleep 0.2
done
wait "$gx" 2>/dev/null; gx=""
wait "$viewer" 2>/dev/null
if [ "$rc" = timeout ]; then
    echo "gxemul-run: FAILED: timed out after ${SH4MM_TIMEOUT:-300}s (kernel hung)" >&2
    exit 124
fi
# GXemul detects a multiple hit only on an associative UTLB write and then
# stops (sh_exception(): "exception 0x140 is not yet implemented").
if grep -q 'exception 0x140 is not yet implemented' "$log"; then
    echo "gxemul-run: TLB multiple hit (GXemul stopped on EXPEVT 0x140)" >&2
    echo "@@EXIT 126@@" >> "$log"
fi
. "$(dirname "${BASH_SOURCE[0]}")/emu-verdict.sh"
emu_verdict gxemul-run "$log"
