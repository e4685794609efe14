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

	/* u32 sh4mm_call_with_t(u32 (*f)(u32, u32), u32 a, u32 b, u32 t):
	   calls f(a, b) with SR.T = t on entry (GCC wrong-code regression). */
	.global	sh4mm_call_with_t
sh4mm_call_with_t:
	sts.l	pr, @-r15
	mov	r4, r1
	mov	r5, r4
	mov	r6, r5
	jsr	@r1
	cmp/pl	r7		/* delay slot: T = (t > 0) */
	lds.l	@r15+, pr
	rts
	nop

	.balign	4
.Lno_imask:	.long	0xffffff0f

	/* Probes: one load/store at a known address. If it faults and the MM
	   cannot fix it, the exception handler records the fault and resumes
	   after the access instead of oopsing (like an exception-table fixup). */
	.text
	.balign	2
	.global	sh4mm_probe_read
	.global	sh4mm_probe_read_insn
sh4mm_probe_read:
sh4mm_probe_read_insn:
	mov.l	@r4, r0
	rts
	nop

	.global	sh4mm_probe_write
	.global	sh4mm_probe_write_insn
sh4mm_probe_write:
sh4mm_probe_write_insn:
	mov.l	r5, @r4
	rts
	nop

	/* Self-test of the host runner: an exception with SR.BL = 1, which
	   QEMU turns into a reset (with -no-reboot: an exit without sentinel). */
	.global	sh4mm_selftest_bl_exception
sh4mm_selftest_bl_exception:
	stc	sr, r0
	mov.l	.Lbl_bit, r1
	or	r1, r0
	ldc	r0, sr
	trapa	#0
	rts
	nop
	.balign	4
.Lbl_bit:	.long	0x10000000

	/* u32 sh4mm_bench_mark(void): TCNT0. Benchmark regions lie between two
	   calls (scripts/bench.sh finds this address in the instruction trace,
	   and under -icount the two values count the region a second way). */
	.global	sh4mm_bench_mark
sh4mm_bench_mark:
	mov.l	.Ltcnt0, r1
	mov.l	@r1, r0
	rts
	nop

	/* void sh4mm_bench_spin(u32 n), n >= 1: exactly 2n + 2 instructions
	   from entry to return (a hand-countable reference for the counter). */
	.global	sh4mm_bench_spin
sh4mm_bench_spin:
1:	dt	r4
	bf	1b
	rts
	nop
	.balign	4
.Ltcnt0:	.long	0xffd8000c

/* ------------------------------------------------------------ user mode
 * u32 sh4mm_user_call(u32 entry, u32 user_sp, u32 arg)
 *   Saves the kernel's callee-saved state, enters user mode (SR.MD=0,
 *   IMASK kept) at `entry` with r15=user_sp and r4=arg. Comes back through
 *   sh4mm_user_return(value), called by the exception handler when the user
 *   code traps (TRAPA) or is killed by a fault.
 */
	.text
	.balign	4
	.global	sh4mm_user_call
sh4mm_user_call:
	mov.l	.Lkctx, r0
	mov.l	r8, @(0, r0)
	mov.l	r9, @(4, r0)
	mov.l	r10, @(8, r0)
	mov.l	r11, @(12, r0)
	mov.l	r12, @(16, r0)
	mov.l	r13, @(20, r0)
	mov.l	r14, @(24, r0)
	mov.l	r15, @(28, r0)
	sts	pr, r1
	mov.l	r1, @(32, r0)
	mov.l	.Lkstack_ptr, r1	/* exceptions from user mode use this stack */
	mov.l	r15, @r1
	ldc	r4, spc
	stc	sr, r1
	mov.l	.Lno_md, r2
	and	r2, r1
	ldc	r1, ssr
	mov	r5, r15
	mov	r6, r4
	rte
	nop

	/* void sh4mm_user_return(u32 value) -- does not return to its caller */
	.global	sh4mm_user_return
sh4mm_user_return:
	mov.l	.Lkctx, r1
	mov.l	@(0, r1), r8
	mov.l	@(4, r1), r9
	mov.l	@(8, r1), r10
	mov.l	@(12, r1), r11
	mov.l	@(16, r1), r12
	mov.l	@(20, r1), r13
	mov.l	@(24, r1), r14
	mov.l	@(28, r1), r15
	mov.l	@(32, r1), r2
	lds	r2, pr
	rts
	mov	r4, r0

	/* A user program that writes: ++*(u32 *)r4, then TRAPA #1 (r0 = new value). */
	.global	sh4mm_user_prog_inc
	.balign	4
sh4mm_user_prog_inc:
	mov.l	@r4, r0
	add	#1, r0
	mov.l	r0, @r4
	trapa	#1

	/* The user program: r0 = *(u32 *)r4, then TRAPA #1 (return r0). */
	.global	sh4mm_user_prog
	.global	sh4mm_user_prog_end
	.balign	4
sh4mm_user_prog:
	mov.l	@r4, r0
	trapa	#1
	nop
	nop
sh4mm_user_prog_end:

	.balign	4
.Lkctx:		.long	sh4mm_kctx
.Lkstack_ptr:	.long	sh4mm_kernel_stack
.Lno_md:	.long	0xbfffffff

	.bss
	.balign	4
sh4mm_kctx:	.space	36

	/* u32 sh4mm_call_on_stack(u32 (*f)(u32), u32 arg, u32 stack_top):
	   runs f(arg) on another stack (a kernel thread's), then comes back. */
	.text
	.balign	2
	.global	sh4mm_call_on_stack
sh4mm_call_on_stack:
	mov.l	r14, @-r15
	sts.l	pr, @-r15
	mov	r15, r14
	mov	r6, r15
	mov	r4, r1
	jsr	@r1
	mov	r5, r4
	mov	r14, r15
	lds.l	@r15+, pr
	rts
	mov.l	@r15+, r14
