/* The demo kernel's test helpers (not part of the library or the runtime):
 * a GCC wrong-code regression probe, the runner self-test, and the
 * benchmark markers scripts/bench.sh looks for in the instruction trace.
 * Calling convention: args r4..r7, result r0.
 */
	.text
	.balign	4
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
