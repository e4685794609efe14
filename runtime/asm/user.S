/* sh4-rt: probes and user-mode entry/exit, kernel-thread stacks.
 * Calling convention: args r4..r7, result r0 (the SH-4 GCC ABI).
 */
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

