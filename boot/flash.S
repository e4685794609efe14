/* Code for the r2d NOR flash at 0xA0000000: where a TLB multiple hit
 * (EXPEVT 0x140, a reset-type exception) sends the CPU under QEMU. Without
 * it QEMU executes erased flash with BL=1 and silently resets. Runs in P2 with
 * BL=1: touches only the SCIF and the power-off register. Position
 * independent; scripts/kernel.sh pads it to the 16 MiB the board expects. */
	.text
	.global	flash_reset_vector
flash_reset_vector:
	mov.l	.Lftdr, r1
	mova	.Lmsg, r0
	mov	r0, r2
1:	mov.b	@r2+, r0
	tst	r0, r0
	bt	2f
	mov.b	r0, @r1		/* SCFTDR2: QEMU sends it at once */
	bra	1b
	nop
2:	mov.l	.Lpowoff, r1
	mov	#1, r0
	mov.w	r0, @r1
3:	bra	3b
	nop
	.balign	4
.Lftdr:		.long	0xffe8000c
.Lpowoff:	.long	0xa4000030
.Lmsg:		.asciz	"\r\nFLASH: reset-type exception (TLB multiple hit, EXPEVT 0x140)\r\n@@EXIT 126@@\r\n"
