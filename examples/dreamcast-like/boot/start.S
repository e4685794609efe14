/* dreamcast-like: the whole boot code an OS on sh4-mm needs.
 *
 * _start: copy the image to its link address if it was loaded elsewhere,
 * then SR, stack, .bss, VBR, and call dc_main. Our runners (QEMU r2d's
 * -kernel, GXemul via scripts/gxemul-run.sh) load raw images at phys
 * 0x0c800000 and enter at 0xac800000; a Dreamcast-style loader puts the
 * image at 0x8c010000 and the copy is skipped.
 *
 * Vectors: every exception, the TLB miss at VBR+0x400 included, goes to
 * dc_exc, which calls sh4-mm's slow path through dc_exception (src/main.rs)
 * with SR.BL = 1 (no frame needed: no nested exception is possible, so SPC
 * and SSR survive; bank-1 r0..r7 are the handler's own). This is the
 * simplest correct vector; sh4-rt's sh4mm_tlb_miss_vector is the fast one.
 */
#include "sh4mm_asm.h"		/* SH4MM_EXPEVT, SH4MM_TEA, ... from sh4_mm::hw */

	.section .text.entry, "ax"
	.global	_start
_start:
	mova	.Lhere, r0		/* where .Lhere is now */
	mov.l	.Lhere, r1		/* where it was linked */
	sub	r1, r0			/* r0 = load address - link address */
	mov.l	.Lstart, r2
	add	r2, r0			/* r0 = _start as loaded */
	mov.l	.Lp2, r3
	or	r3, r0			/* source, uncached (P2) */
	or	r3, r2			/* destination: link address in P2 */
	cmp/eq	r0, r2
	bt	2f
	mov.l	.Lend, r1
	mov.l	.Lstart, r4
	sub	r4, r1			/* bytes to copy (a multiple of 4) */
1:	mov.l	@r0+, r4
	mov.l	r4, @r2
	add	#4, r2
	add	#-4, r1
	cmp/pl	r1
	bt	1b
2:	mov.l	.Lp1_entry, r0		/* the copy is in RAM, not in the caches */
	jmp	@r0
	nop
	.balign	4
.Lhere:		.long	.Lhere
.Lstart:	.long	_start
.Lp2:		.long	0x20000000
.Lend:		.long	__image_end
.Lp1_entry:	.long	start_p1

start_p1:
	mov.l	.Lsr_boot, r0
	ldc	r0, sr
	mov.l	.Lstack_top, r15	/* P1: exceptions push on it */
	mov.l	.Lbss_start, r1
	mov.l	.Lbss_end, r2
	mov	#0, r0
3:	cmp/hs	r2, r1
	bt	4f
	mov.l	r0, @r1
	bra	3b
	add	#4, r1
4:	mov.l	.Lvbr, r0
	ldc	r0, vbr
	mov.l	.Lsr_run, r0
	ldc	r0, sr
	mov.l	.Lmain, r0
	jsr	@r0
	nop
5:	bra	5b
	nop

	.balign	4
.Lsr_boot:	.long	0x500080f0	/* MD | BL | FD | IMASK=15 */
.Lsr_run:	.long	0x400080f0	/* MD | FD | IMASK=15: no interrupts */
.Lstack_top:	.long	__stack_top
.Lbss_start:	.long	__bss_start
.Lbss_end:	.long	__bss_end
.Lvbr:		.long	vbr_base
.Lmain:		.long	dc_main

	/* Debug builds call abort (core's panic paths); defining it in Rust
	   crashes the GCC backend, so it lives here. */
	.global	abort
abort:
	bra	abort
	nop

	.section .text.vectors, "ax"
	.balign	4
vbr_base:
	.org	vbr_base + 0x100	/* general exceptions */
	bra	dc_exc
	nop
	.org	vbr_base + 0x400	/* TLB miss: sh4-mm's slow path */
	bra	dc_exc
	nop
	.org	vbr_base + 0x600	/* interrupts (masked: never taken) */
	bra	dc_exc
	nop

/* dc_exception(EXPEVT, TEA, SPC). r8..r14 are callee-saved in the SH ABI;
 * PR, MACH, MACL and GBR are saved here; SR.T is in SSR. */
dc_exc:
	sts.l	pr, @-r15
	sts.l	mach, @-r15
	sts.l	macl, @-r15
	stc.l	gbr, @-r15
	mov.l	.Lexpevt, r4
	mov.l	@r4, r4
	mov.l	.Ltea, r5
	mov.l	@r5, r5
	stc	spc, r6
	mov.l	.Lhandler, r0
	jsr	@r0
	nop
	ldc.l	@r15+, gbr
	lds.l	@r15+, macl
	lds.l	@r15+, mach
	lds.l	@r15+, pr
	rte
	nop
	.balign	4
.Lexpevt:	.long	SH4MM_EXPEVT
.Ltea:		.long	SH4MM_TEA
.Lhandler:	.long	dc_exception
