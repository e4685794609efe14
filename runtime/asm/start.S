/* sh4-mm demo kernel: entry, exception vectors and the exception frame.
 *
 * QEMU r2d loads the raw image at phys 0x0c800000 and starts at 0xac800000
 * (P2) with SR = 0x700000f0 (MD, RB, BL set, IMASK 15) and VBR = 0. We are
 * linked for P1 (0x8c800000).
 */
#include "sh4mm_asm.h"	/* register addresses, PTE bits: from sh4_mm::hw */
	.section .text.entry, "ax"
	.global	_start
_start:
	mov.l	.Lp1_entry, r0
	jmp	@r0
	nop
	.balign	4
.Lp1_entry:
	.long	start_p1

start_p1:
	/* Bank 0, still blocked (BL), IMASK 15, FPU disabled (FD): the kernel
	   is built with -m4-nofpu, so any FPU instruction is a bug (0x800). */
	mov.l	.Lsr_boot, r0
	ldc	r0, sr
	mov.l	.Lstack_top, r15
	/* Clear .bss */
	mov.l	.Lbss_start, r1
	mov.l	.Lbss_end, r2
	mov	#0, r0
1:	cmp/hs	r2, r1
	bt	2f
	mov.l	r0, @r1
	bra	1b
	add	#4, r1
2:	mov.l	.Lvbr, r0
	ldc	r0, vbr
	/* Exceptions may now be taken: clear BL, keep IMASK 15. */
	mov.l	.Lsr_run, r0
	ldc	r0, sr
	mov.l	.Lkmain, r0
	jsr	@r0
	nop
3:	bra	3b
	nop

	.balign	4
.Lsr_boot:	.long	0x500080f0	/* MD | BL | FD | IMASK=15 */
.Lsr_run:	.long	0x400080f0	/* MD | FD | IMASK=15 */
.Lstack_top:	.long	__stack_top
.Lbss_start:	.long	__bss_start
.Lbss_end:	.long	__bss_end
.Lvbr:		.long	vbr_base
.Lkmain:	.long	kmain

/* ------------------------------------------------------------------ vectors
 * Entry state: SR.MD = SR.RB = SR.BL = 1, SPC/SSR/SGR hold PC/SR/r15.
 * r0..r7 here are bank 1: free to use while BL = 1.
 */
	.section .text.vectors, "ax"
	.balign	4096
	.global	vbr_base
vbr_base:
	.org	vbr_base + 0x100	/* general exceptions */
	bra	exc_common
	mov	#0, r0
	.org	vbr_base + 0x400	/* TLB miss: the fast path */
/* Walks TTB's tables with bank-1 registers only (no frame, BL=1 throughout,
 * touching only P1 and P4). A P3 address whose first-level entry is missing
 * in TTB's table but present in swapper_pg_dir gets it copied first: this is
 * vmalloc_fault (src/fault.rs, fast_path_p3_copy is its Rust twin), atomic
 * because BL=1 holds off interrupts. It needs swapper's P1 address in
 * sh4mm_swapper_pgd (set by the kernel; until then it points at a zero table,
 * and the Rust slow path does the copy). Any other missing entry or an
 * invalid PTE goes to the Rust slow path. A write to a clean (D=0) page is
 * loaded as is: the write then raises an initial-page-write exception
 * (0x080), which the slow path handles. PTEH's VPN is cut to the 4 KiB page
 * before LDTLB: the exception leaves the faulting address's bits 11:10 in it,
 * and QEMU stores and compares all 22 VPN bits in an associative UTLB write
 * (the manual compares by page size), so a page-aligned flush would miss such
 * an entry (docs/EMULATORS.md row 21). 28 instructions from the vector to
 * RTE; 41 with the first-level copy.
 */
	.global	sh4mm_tlb_miss_vector
sh4mm_tlb_miss_vector:
	mov.l	.Lmmu_regs, r1		/* PTEH; PTEL, TTB, TEA above it */
	mov.l	@(SH4MM_TEA - SH4MM_PTEH, r1), r2	/* va = TEA */
	mov.l	@(SH4MM_TTB - SH4MM_PTEH, r1), r6	/* pgd (P1) = TTB */
	mov	#-22, r4
	mov	r2, r0
	shld	r4, r0
	shll2	r0			/* (va >> 22) * 4 */
	mov.l	@(r0, r6), r3		/* PTE page (P1) or 0 */
	tst	r3, r3
	bt	.Lpgd_copy
.Lwalk:	mov	r2, r0
	shlr8	r0
	shlr2	r0
	mov.w	.Lpte_off_mask, r5
	and	r5, r0			/* ((va >> 12) & 0x3ff) * 4 */
	mov.l	@(r0, r3), r3		/* pte */
	mov.w	.Lv_bit, r5
	tst	r5, r3
	bt	.Lslow			/* not valid (empty or PROT_NONE) */
	mov.l	.Lptel_mask, r4
	and	r4, r3			/* drop the software bits */
	mov.l	r3, @(SH4MM_PTEL - SH4MM_PTEH, r1)	/* PTEL */
	mov.l	@r1, r4			/* PTEH = fault VPN (1 KiB units) | ASID */
	mov.w	.Lvpn_4k_mask, r5	/* 0xfffff3ff */
	and	r5, r4
	mov.l	r4, @r1			/* PTEH = 4 KiB VPN | ASID */
	ldtlb
	rte
	nop
.Lslow:
	bra	exc_common
	mov	#1, r0
.Lpgd_copy:
	mov	r0, r7
	shlr8	r7
	shlr	r7			/* va >> 29 */
	mov	#6, r5
	cmp/eq	r5, r7
	bf	.Lslow			/* not P3 (0xC0000000..0xDFFFFFFF) */
	mov.l	.Lswapper_pgd, r5
	mov.l	@r5, r5			/* swapper_pg_dir (P1), or the zero table */
	mov.l	@(r0, r5), r3
	tst	r3, r3
	bt	.Lslow			/* not mapped in swapper either */
	bra	.Lwalk
	mov.l	r3, @(r0, r6)		/* copy it into TTB's table */
	.balign	4
.Lswapper_pgd:	.long	sh4mm_swapper_pgd
.Lmmu_regs:	.long	SH4MM_PTEH
.Lptel_mask:	.long	SH4MM_PTEL_MASK
.Lpte_off_mask:	.word	0x0ffc
.Lv_bit:	.word	SH4MM_PTE_V
.Lvpn_4k_mask:	.word	0xf3ff		/* sign-extended: ~0x00000c00 */
	.org	vbr_base + 0x600	/* interrupts */
	bra	exc_common
	mov	#2, r0

/* Frame (from the final r15 upwards, 22 words):
 *   r0..r7 (bank 0), r8..r14, gbr, macl, mach, pr, spc, ssr, r15
 * The Rust handler gets (kind, frame, code, tea) in bank-0 r4..r7 and may
 * edit the frame (e.g. spc) before it is restored.
 */
exc_common:
	/* code = EXPEVT (exceptions) or INTEVT (interrupts); TEA. Read them
	   now, while BL = 1: a nested exception would overwrite them. */
	mov.l	.Lexpevt, r2
	mov	#2, r1
	cmp/eq	r1, r0
	bf	1f
	mov.l	.Lintevt, r2
1:	mov.l	@r2, r2
	mov.l	.Ltea, r3
	mov.l	@r3, r3
	/* Kernel stack: keep r15 if we came from privileged mode, otherwise
	   switch to the kernel stack of the current task. */
	/* r15 (the interrupted stack pointer, = SGR): nothing from the
	   vector to here touches r15. Not `stc sgr`: GXemul 0.7.0 does not
	   implement it (cpu_sh_instr.c has no STC SGR case) and stops. */
	mov	r15, r1
	stc	ssr, r4
	mov.l	.Lmd_bit, r5
	tst	r5, r4
	bf	2f
	mov.l	.Lkstack, r5
	mov.l	@r5, r15
2:	mov.l	r1, @-r15
	stc.l	ssr, @-r15
	stc.l	spc, @-r15
	sts.l	pr, @-r15
	sts.l	mach, @-r15
	sts.l	macl, @-r15
	stc.l	gbr, @-r15
	mov.l	r14, @-r15
	mov.l	r13, @-r15
	mov.l	r12, @-r15
	mov.l	r11, @-r15
	mov.l	r10, @-r15
	mov.l	r9, @-r15
	mov.l	r8, @-r15
	stc.l	r7_bank, @-r15
	stc.l	r6_bank, @-r15
	stc.l	r5_bank, @-r15
	stc.l	r4_bank, @-r15
	stc.l	r3_bank, @-r15
	stc.l	r2_bank, @-r15
	stc.l	r1_bank, @-r15
	stc.l	r0_bank, @-r15
	/* Arguments into bank 0. */
	ldc	r0, r4_bank
	ldc	r15, r5_bank
	ldc	r2, r6_bank
	ldc	r3, r7_bank
	/* New SR: bank 0, BL clear; IMASK as interrupted for exceptions,
	   15 for interrupts. */
	stc	sr, r1
	mov.l	.Lclear_rb_bl_imask, r5
	and	r5, r1
	mov	#2, r5
	cmp/eq	r5, r0
	bt	3f
	mov	#0xf0, r5
	extu.b	r5, r5
	and	r5, r4		/* r4 = SSR & IMASK */
	bra	4f
	or	r4, r1
3:	mov	#0xf0, r5
	extu.b	r5, r5
	or	r5, r1
4:	ldc	r1, sr		/* now bank 0: r0..r7 below are bank 0 */
	mov.l	.Lhandler, r0
	jsr	@r0
	nop
	/* Back to bank 1 and blocked before restoring. */
	mov.l	.Lset_rb_bl, r1
	stc	sr, r0
	or	r1, r0
	ldc	r0, sr
	ldc.l	@r15+, r0_bank
	ldc.l	@r15+, r1_bank
	ldc.l	@r15+, r2_bank
	ldc.l	@r15+, r3_bank
	ldc.l	@r15+, r4_bank
	ldc.l	@r15+, r5_bank
	ldc.l	@r15+, r6_bank
	ldc.l	@r15+, r7_bank
	mov.l	@r15+, r8
	mov.l	@r15+, r9
	mov.l	@r15+, r10
	mov.l	@r15+, r11
	mov.l	@r15+, r12
	mov.l	@r15+, r13
	mov.l	@r15+, r14
	ldc.l	@r15+, gbr
	lds.l	@r15+, macl
	lds.l	@r15+, mach
	lds.l	@r15+, pr
	ldc.l	@r15+, spc
	ldc.l	@r15+, ssr
	mov.l	@r15, r15
	rte
	nop

	.balign	4
.Lexpevt:	.long	SH4MM_EXPEVT
.Lintevt:	.long	SH4MM_INTEVT
.Ltea:		.long	SH4MM_TEA
.Lmd_bit:	.long	0x40000000
.Lkstack:	.long	sh4mm_kernel_stack
.Lclear_rb_bl_imask: .long	0xcfffff0f
.Lset_rb_bl:	.long	0x30000000
.Lhandler:	.long	sh4mm_exception

/* swapper_pg_dir's P1 address for the fast path's first-level copy, set by
 * the kernel once the memory manager exists. Until then it points 0xC00
 * bytes before a zeroed 512-byte table, so the lookup of any P3 index
 * (byte offsets 0xC00..0xDFC) reads 0 and the miss goes to the slow path. */
	.section .data
	.balign	4
	.global	sh4mm_swapper_pgd
sh4mm_swapper_pgd:
	.long	sh4mm_no_swapper - 0xc00
	.section .bss
	.balign	4
	.global	sh4mm_no_swapper
sh4mm_no_swapper:
	.space	512
