/* Code for the reset vector 0xA0000000 (P2 of phys 0: the r2d NOR flash
 * under QEMU, the boot-ROM RAM of GXemul landisk). Reset-type exceptions
 * come here: a TLB multiple hit (EXPEVT 0x140) and, on hardware and
 * GXemul, any exception taken while SR.BL=1 (a manual reset; GXemul
 * cpu_sh.c:644-651,699-701 gives it EXPEVT 0). QEMU resets the whole board
 * on the latter instead, and without this code it would execute erased
 * flash with BL=1 and reset silently on a multiple hit.
 *
 * Prints EXPEVT, SPC and TEA, then "@@EXIT 126@@" for a multiple hit or
 * "@@RESET@@" for anything else (the runners turn that into exit 125),
 * then writes the r2d power-off register (QEMU ends; GXemul has none, its
 * runner stops it on the sentinel). Runs with BL=1 and an unknown r15:
 * touches only registers (SCIF, EXPEVT, power-off), no memory. Position
 * independent; scripts/kernel.sh pads it to the 16 MiB QEMU's flash needs.
 */
#include "sh4mm_asm.h"	/* register addresses: from sh4_mm::hw */
	.text
	.global	flash_reset_vector
flash_reset_vector:
	mov.l	.Lexpevt, r1
	mov.l	@r1, r8			/* EXPEVT */
	stc	spc, r9
	mov.l	.Ltea, r1
	mov.l	@r1, r10
	mova	.Lmsg_head, r0
	bsr	puts
	mov	r0, r4
	bsr	puthex
	mov	r8, r4
	mova	.Lmsg_spc, r0
	bsr	puts
	mov	r0, r4
	bsr	puthex
	mov	r9, r4
	mova	.Lmsg_tea, r0
	bsr	puts
	mov	r0, r4
	bsr	puthex
	mov	r10, r4
	mov.w	.Lmultihit, r1
	cmp/eq	r1, r8
	bt	1f
	mova	.Lmsg_reset, r0
	bra	2f
	nop
1:	mova	.Lmsg_multihit, r0
2:	bsr	puts
	mov	r0, r4
	mov.l	.Lpowoff, r1
	mov	#1, r0
	mov.w	r0, @r1
3:	bra	3b
	nop

/* Waits for room in the 16-byte SCIF TX FIFO (SCFDR2 bits 12:8), then
 * queues r0. Not a TDFE poll: GXemul resets SCFSR2 to 0. Clobbers r5, r6. */
putc:
	mov.l	.Lscfdr2, r5
	mov.w	@r5, r5
	shlr8	r5
	mov	#0x1f, r6
	and	r6, r5
	mov	#16, r6
	cmp/hs	r6, r5			/* count >= 16: full */
	bt	putc
	mov.l	.Lscftdr2, r5
	rts
	mov.b	r0, @r5

/* Prints the NUL-terminated string at r4. Clobbers r0, r4-r7. */
puts:
	sts	pr, r7
1:	mov.b	@r4+, r0
	tst	r0, r0
	bt	2f
	bsr	putc
	nop
	bra	1b
	nop
2:	lds	r7, pr
	rts
	nop

/* Prints r4 as 0x%08x. Clobbers r0-r7. */
puthex:
	sts	pr, r7
	mov	r4, r2
	mov	#'0', r0
	bsr	putc
	nop
	mov	#'x', r0
	bsr	putc
	nop
	mov	#8, r3
1:	mov	r2, r0
	shlr16	r0
	shlr8	r0
	shlr2	r0
	shlr2	r0			/* top nibble */
	shll2	r2
	shll2	r2
	mov	#10, r1
	cmp/hs	r1, r0
	bf	2f
	add	#('a' - '0' - 10), r0
2:	add	#'0', r0
	bsr	putc
	nop
	dt	r3
	bf	1b
	lds	r7, pr
	rts
	nop

	.balign	4
.Lexpevt:	.long	SH4MM_EXPEVT
.Ltea:		.long	SH4MM_TEA
.Lscfdr2:	.long	0xffe8001c
.Lscftdr2:	.long	0xffe8000c
.Lpowoff:	.long	0xa4000030
.Lmultihit:	.word	0x140
	.balign	4
.Lmsg_head:	.asciz	"\r\nFLASH: reset-type exception EXPEVT="
	.balign	4
.Lmsg_spc:	.asciz	" SPC="
	.balign	4
.Lmsg_tea:	.asciz	" TEA="
	.balign	4
.Lmsg_multihit:	.asciz	" (TLB multiple hit)\r\n@@EXIT 126@@\r\n"
	.balign	4
.Lmsg_reset:	.asciz	" (reset)\r\n@@RESET@@\r\n"
