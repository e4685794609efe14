/* Helpers for what Rust cannot emit on this target (no asm! here):
 * LDTLB, SR.IMASK, UTLB array writes (run from P2) and cache-block ops.
 * Calling convention: args r4..r7, result r0, r0..r7 clobbered.
 */
	.text
	.balign	4

	.global	sh4mm_ldtlb
sh4mm_ldtlb:
	ldtlb
	nop
	rts
	nop

	/* u32 sh4mm_irq_save(void): IMASK = 15, returns the old IMASK. */
	.global	sh4mm_irq_save
sh4mm_irq_save:
	stc	sr, r1
	mov	r1, r0
	or	#0xf0, r0
	ldc	r0, sr
	mov	r1, r0
	shlr2	r0
	shlr2	r0
	rts
	and	#15, r0

	/* void sh4mm_irq_restore(u32 imask) */
	.global	sh4mm_irq_restore
sh4mm_irq_restore:
	stc	sr, r0
	mov.l	.Lno_imask, r1
	and	r1, r0
	mov	#15, r1
	and	r1, r4
	shll2	r4
	shll2	r4
	or	r4, r0
	ldc	r0, sr
	rts
	nop

	/* u32 sh4mm_get_sr(void) */
	.global	sh4mm_get_sr
sh4mm_get_sr:
	rts
	stc	sr, r0

	/* Runs one TLB-array access from P2, as the manual requires, then
	   waits a few instructions before returning to cached code. */
	.macro	IN_P2 access
	mova	1f, r0
	mov.l	2f, r1
	or	r1, r0
	jmp	@r0
	nop
	.balign	4
2:	.long	0x20000000
1:	\access
	.rept	7
	nop
	.endr
	rts
	nop
	.endm

	/* void sh4mm_utlb_addr_write(u32 addr, u32 value)
	   void sh4mm_utlb_data_write(u32 addr, u32 value) */
	.global	sh4mm_utlb_addr_write
	.global	sh4mm_utlb_data_write
sh4mm_utlb_addr_write:
sh4mm_utlb_data_write:
	IN_P2	"mov.l	r5, @r4"

	/* u32 sh4mm_array_read(u32 addr) */
	.global	sh4mm_array_read
sh4mm_array_read:
	IN_P2	"mov.l	@r4, r0"

	/* void sh4mm_cache_op(u32 op, u32 va, u32 len): 0 ocbp, 1 ocbwb, 2 ocbi
	   over every 32-byte line of [va, va+len). */
	.global	sh4mm_cache_op
sh4mm_cache_op:
	add	r5, r6		/* r6 = va + len */
	mov	#-32, r1
	and	r1, r5		/* first line */
	mov	r4, r0
	cmp/eq	#0, r0
	bt	.Lpurge
	cmp/eq	#1, r0
	bt	.Lwb
.Linv:	cmp/hs	r6, r5
	bt	.Ldone
	ocbi	@r5
	bra	.Linv
	add	#32, r5
.Lwb:	cmp/hs	r6, r5
	bt	.Ldone
	ocbwb	@r5
	bra	.Lwb
	add	#32, r5
.Lpurge:
	/* Whole 256-byte blocks (every page-sized purge): 8 lines per loop,
	   19 instructions instead of 40. */
	mov	r5, r0
	or	r6, r0
	tst	#255, r0
	bf	.Lpurge1
.Lpurge8: cmp/hs r6, r5
	bt	.Ldone
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	add	#32, r5
	ocbp	@r5
	bra	.Lpurge8
	add	#32, r5
.Lpurge1: cmp/hs r6, r5
	bt	.Ldone
	ocbp	@r5
	bra	.Lpurge1
	add	#32, r5
.Ldone:	rts
	nop

	/* void sh4mm_zero_page(u32 va): zeroes the 4 KiB page at va (4-byte
	   aligned) with 16 stores per loop: 1 158 instructions, where the
	   generic memset takes about 4 100. */
	.global	sh4mm_zero_page
sh4mm_zero_page:
	mov.w	.Lpage_size, r1
	add	r1, r4		/* stores go downwards from the end */
	mov	#64, r1		/* 64 x 64 bytes */
	mov	#0, r0
1:	.rept	16
	mov.l	r0, @-r4
	.endr
	dt	r1
	bf	1b
	rts
	nop
.Lpage_size:	.word	4096
	.balign	4

	/* void sh4mm_zero_page_purged(u32 va): zeroes the 4 KiB page at va (a
	   P1 address, 32-byte aligned) and purges each line right after its
	   8 stores, so memory holds the zeros and no line of the page stays in
	   the operand cache: 22 instructions per 64 bytes, where zeroing and a
	   separate purge loop take about 28. A line of the page that was
	   already cached at this address is overwritten in full by the stores
	   before its purge, so no stale data survives either. (No MOVCA.L:
	   GXemul treats it as a no-op, which would leave a word unzeroed.) */
	.global	sh4mm_zero_page_purged
sh4mm_zero_page_purged:
	mov	#64, r1		/* 64 x 64 bytes */
	mov	#0, r0
1:
	mov.l	r0, @(0, r4)
	mov.l	r0, @(4, r4)
	mov.l	r0, @(8, r4)
	mov.l	r0, @(12, r4)
	mov.l	r0, @(16, r4)
	mov.l	r0, @(20, r4)
	mov.l	r0, @(24, r4)
	mov.l	r0, @(28, r4)
	ocbp	@r4
	add	#32, r4
	mov.l	r0, @(0, r4)
	mov.l	r0, @(4, r4)
	mov.l	r0, @(8, r4)
	mov.l	r0, @(12, r4)
	mov.l	r0, @(16, r4)
	mov.l	r0, @(20, r4)
	mov.l	r0, @(24, r4)
	mov.l	r0, @(28, r4)
	ocbp	@r4
	add	#32, r4
	dt	r1
	bf	1b
	rts
	nop

	.balign	4
.Lno_imask:	.long	0xffffff0f
