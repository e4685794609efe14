/* Generated from sh4_mm::hw::ASM_CONSTANTS by tests/asm_constants.rs
 * (SH4MM_UPDATE_ASM_H=1 cargo test --test asm_constants); do not edit. */
#ifndef SH4MM_ASM_H
#define SH4MM_ASM_H
/* page table entry high: VPN | ASID */
#define SH4MM_PTEH 0xff000000
/* page table entry low: what LDTLB loads */
#define SH4MM_PTEL 0xff000004
/* translation table base (the fast path's pgd, P1) */
#define SH4MM_TTB 0xff000008
/* TLB exception address */
#define SH4MM_TEA 0xff00000c
/* MMU control */
#define SH4MM_MMUCR 0xff000010
/* exception event code */
#define SH4MM_EXPEVT 0xff000024
/* interrupt event code */
#define SH4MM_INTEVT 0xff000028
/* PTE bits LDTLB may see (software bits cleared) */
#define SH4MM_PTEL_MASK 0x1ffffdff
/* PTE valid bit: the fast path loads only these */
#define SH4MM_PTE_V 0x00000100
#endif
