//! The hardware access trait: the only way MM code touches the MMU.
//!
//! Two implementations exist: [`crate::sh4::Sh4Hw`] drives the real registers
//! (volatile accesses plus small assembly helpers in `boot/`), and the
//! software model (`model` feature) simulates them for host tests. The same
//! MM code runs on both.

/// PTEH: VPN\[31:10\] | ASID\[7:0\].
pub const PTEH: u32 = 0xFF00_0000;
/// PTEL: the PTE image loaded by LDTLB.
pub const PTEL: u32 = 0xFF00_0004;
/// TTB: free for software; holds the P1 address of the active first-level table.
pub const TTB: u32 = 0xFF00_0008;
/// TEA: faulting address of the last TLB/address exception.
pub const TEA: u32 = 0xFF00_000C;
/// MMUCR: MMU control.
pub const MMUCR: u32 = 0xFF00_0010;
/// EXPEVT: exception code.
pub const EXPEVT: u32 = 0xFF00_0024;
/// INTEVT: interrupt event code.
pub const INTEVT: u32 = 0xFF00_0028;
/// PTEA: PCMCIA assistance bits (write only under QEMU: reading it aborts QEMU).
pub const PTEA: u32 = 0xFF00_0034;
/// Memory-mapped UTLB address array.
pub const UTLB_ADDR_ARRAY: u32 = 0xF600_0000;
/// Memory-mapped UTLB data array 1.
pub const UTLB_DATA_ARRAY: u32 = 0xF700_0000;
/// Address-array "associative" bit: the write searches instead of indexing.
pub const UTLB_ASSOC: u32 = 1 << 7;

/// MMUCR.AT: address translation on.
pub const MMUCR_AT: u32 = 1 << 0;
/// MMUCR.TI: invalidate every UTLB and ITLB entry (reads as 0).
pub const MMUCR_TI: u32 = 1 << 2;
/// MMUCR.SV: single virtual memory mode (never used here).
pub const MMUCR_SV: u32 = 1 << 8;
/// MMUCR.URC field shift.
pub const MMUCR_URC_SHIFT: u32 = 10;
/// MMUCR.URC field mask.
pub const MMUCR_URC_MASK: u32 = 0x3F << MMUCR_URC_SHIFT;
/// Number of UTLB entries.
pub const UTLB_ENTRIES: u32 = 64;
/// Number of ITLB entries.
pub const ITLB_ENTRIES: u32 = 4;

/// Exception codes (EXPEVT) the MM handles.
pub mod expevt {
    /// TLB miss on a read (or instruction fetch).
    pub const TLB_MISS_READ: u32 = 0x040;
    /// TLB miss on a write.
    pub const TLB_MISS_WRITE: u32 = 0x060;
    /// Initial page write: write to an entry with D=0.
    pub const INITIAL_PAGE_WRITE: u32 = 0x080;
    /// TLB protection violation on a read.
    pub const PROT_READ: u32 = 0x0A0;
    /// TLB protection violation on a write.
    pub const PROT_WRITE: u32 = 0x0C0;
    /// Address error on a read (e.g. user access to P1..P4).
    pub const ADDR_ERR_READ: u32 = 0x0E0;
    /// Address error on a write.
    pub const ADDR_ERR_WRITE: u32 = 0x100;
    /// TLB multiple hit (reset-type: never recoverable).
    pub const TLB_MULTI_HIT: u32 = 0x140;
}

/// Operand-cache line operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// `ocbp`: write back if dirty, then invalidate.
    Purge,
    /// `ocbwb`: write back if dirty, keep the line.
    Writeback,
    /// `ocbi`: invalidate without writing back.
    Invalidate,
}

/// Access to the SH-4 MMU registers and interrupt masking.
///
/// Every method is one hardware operation. Implementations take `&self`
/// because the registers are global machine state (and because the software
/// model must stay usable from a nested "interrupt").
///
/// # Safety
/// The memory manager's guarantees (never two TLB entries for one page,
/// flushed before frames are reused, interrupts masked where it says) hold
/// only if each method does exactly the documented operation: an
/// implementation that, say, ignores `irq_save` or an associative write breaks
/// memory safety of everything mapped through the MMU. Implement it only for
/// the CPU (`sh4::Sh4Hw`) or a faithful model. (The model's test-only
/// `Mutant` breaks this on purpose, to show the tests catch it.)
pub unsafe trait MmuHw {
    /// Reads PTEH.
    fn pteh(&self) -> u32;
    /// Writes PTEH (this also sets the current ASID).
    fn set_pteh(&self, value: u32);
    /// Writes PTEL.
    fn set_ptel(&self, value: u32);
    /// Reads TTB.
    fn ttb(&self) -> u32;
    /// Writes TTB.
    fn set_ttb(&self, value: u32);
    /// Reads MMUCR.
    fn mmucr(&self) -> u32;
    /// Writes MMUCR.
    fn set_mmucr(&self, value: u32);
    /// Executes LDTLB: UTLB\[MMUCR.URC\] ← PTEH/PTEL.
    fn ldtlb(&self);
    /// Writes the memory-mapped UTLB address array. `offset` is relative to
    /// [`UTLB_ADDR_ARRAY`]: entry index << 8, optionally | [`UTLB_ASSOC`].
    fn utlb_addr_write(&self, offset: u32, value: u32);
    /// Writes the memory-mapped UTLB data array 1 for entry `entry`.
    fn utlb_data_write(&self, entry: u32, value: u32);
    /// Applies an operand-cache operation to every 32-byte line of
    /// `[va, va + len)` (`ocbp`, `ocbwb` or `ocbi`).
    fn cache_op(&self, op: CacheOp, va: u32, len: u32);
    /// Copies one 4 KiB page from virtual address `src` to `dst` with CPU
    /// loads and stores (so through the operand cache, as the mappings say).
    ///
    /// # Safety
    /// Both pages must be mapped (and, in P3, loaded in the TLB or fixable by
    /// the TLB-miss handler) and must not overlap.
    unsafe fn copy_page(&self, dst: u32, src: u32);
    /// Zeroes one 4 KiB page at virtual address `dst` with CPU stores.
    ///
    /// # Safety
    /// The page must be mapped writable.
    unsafe fn clear_page(&self, dst: u32);
    /// Masks all interrupts (SR.IMASK = 15) and returns the previous SR.IMASK.
    fn irq_save(&self) -> u32;
    /// Restores SR.IMASK to a value returned by [`MmuHw::irq_save`].
    fn irq_restore(&self, saved: u32);
    /// Whether the CPU is running an interrupt handler. The SH-4 keeps no
    /// such state (SR.IMASK is also raised by ordinary masked sections), so
    /// it is a nesting count the OS's interrupt entry maintains
    /// ([`crate::irqlock::irq_enter`]); the model counts the interrupts it
    /// delivers. The default says "never", for hardware without interrupts.
    fn in_interrupt(&self) -> bool {
        false
    }
}

// SAFETY: forwards every operation unchanged to `T`, which upholds the contract.
unsafe impl<T: MmuHw + ?Sized> MmuHw for &T {
    fn pteh(&self) -> u32 {
        (**self).pteh()
    }
    fn set_pteh(&self, value: u32) {
        (**self).set_pteh(value)
    }
    fn set_ptel(&self, value: u32) {
        (**self).set_ptel(value)
    }
    fn ttb(&self) -> u32 {
        (**self).ttb()
    }
    fn set_ttb(&self, value: u32) {
        (**self).set_ttb(value)
    }
    fn mmucr(&self) -> u32 {
        (**self).mmucr()
    }
    fn set_mmucr(&self, value: u32) {
        (**self).set_mmucr(value)
    }
    fn ldtlb(&self) {
        (**self).ldtlb()
    }
    fn utlb_addr_write(&self, offset: u32, value: u32) {
        (**self).utlb_addr_write(offset, value)
    }
    fn utlb_data_write(&self, entry: u32, value: u32) {
        (**self).utlb_data_write(entry, value)
    }
    fn cache_op(&self, op: CacheOp, va: u32, len: u32) {
        (**self).cache_op(op, va, len)
    }
    unsafe fn copy_page(&self, dst: u32, src: u32) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).copy_page(dst, src) }
    }
    unsafe fn clear_page(&self, dst: u32) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { (**self).clear_page(dst) }
    }
    fn irq_save(&self) -> u32 {
        (**self).irq_save()
    }
    fn irq_restore(&self, saved: u32) {
        (**self).irq_restore(saved)
    }
    fn in_interrupt(&self) -> bool {
        (**self).in_interrupt()
    }
}

/// Interrupts masked for the guard's lifetime (restored on drop).
#[must_use = "interrupts are unmasked again as soon as the guard is dropped"]
pub struct IrqGuard<'a, H: MmuHw + ?Sized> {
    hw: &'a H,
    saved: u32,
}

impl<'a, H: MmuHw + ?Sized> IrqGuard<'a, H> {
    /// Masks interrupts.
    pub fn new(hw: &'a H) -> Self {
        let saved = hw.irq_save();
        IrqGuard { hw, saved }
    }
}

impl<H: MmuHw + ?Sized> Drop for IrqGuard<'_, H> {
    fn drop(&mut self) {
        self.hw.irq_restore(self.saved);
    }
}

/// The constants the assembly (`boot/mmu.S`, sh4-rt's `runtime/asm/*.S`,
/// an OS's own vectors) shares with this crate, by the name
/// `boot/sh4mm_asm.h` gives them (`SH4MM_` + name). That header is generated
/// from this table (`SH4MM_UPDATE_ASM_H=1 cargo test --test asm_constants`)
/// and the test fails while it differs, or while an assembly file spells one
/// of the register addresses or the PTEL mask as a literal instead.
pub const ASM_CONSTANTS: &[(&str, u32, &str)] = &[
    ("PTEH", PTEH, "page table entry high: VPN | ASID"),
    ("PTEL", PTEL, "page table entry low: what LDTLB loads"),
    ("TTB", TTB, "translation table base (the fast path's pgd, P1)"),
    ("TEA", TEA, "TLB exception address"),
    ("MMUCR", MMUCR, "MMU control"),
    ("EXPEVT", EXPEVT, "exception event code"),
    ("INTEVT", INTEVT, "interrupt event code"),
    ("PTEL_MASK", crate::pte::PTEL_MASK, "PTE bits LDTLB may see (software bits cleared)"),
    ("PTE_V", crate::pte::PteFlags::V.bits(), "PTE valid bit: the fast path loads only these"),
];
