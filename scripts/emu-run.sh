#!/usr/bin/env bash
# One interface for both emulators:
#
#   scripts/emu-run.sh qemu|gxemul KERNEL.bin [KERNEL COMMAND LINE]
#
# Boots KERNEL.bin on QEMU r2d (scripts/qemu-run.sh) or GXemul landisk
# (scripts/gxemul-run.sh) with the command line (plus "emu=<name>", which
# tells the kernel where it runs) and exits with the same codes on both:
# the kernel's verdict n from "@@EXIT n@@", 124 hang, 125 no sentinel
# (reset), 126 TLB multiple hit.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
emu=${1:?usage: emu-run.sh qemu|gxemul KERNEL.bin [command line]}; shift
bin=${1:?usage: emu-run.sh qemu|gxemul KERNEL.bin [command line]}; shift
case "$emu" in
    qemu) exec bash "$here/qemu-run.sh" "$bin" -append "$(echo "$* emu=qemu" | sed 's/^ //')" ;;
    gxemul) exec bash "$here/gxemul-run.sh" "$bin" "$@" ;;
    *) echo "emu-run: unknown emulator '$emu' (qemu, gxemul)" >&2; exit 2 ;;
esac
