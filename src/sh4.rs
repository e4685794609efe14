//! The real SH-4: [`crate::MmuHw`] on the hardware registers.
//!
//! Registers are accessed with volatile loads and stores of their documented
//! width. What needs an instruction Rust cannot emit here (`ldtlb`, SR
//! access, `ocbp`/`ocbwb`/`ocbi`, array writes that must run from P2) is a
//! small assembly helper in `boot/mmu.S`. Only built for the bare-metal
//! target (`target_os = "none"`).

#[cfg(any(target_os = "none", doc))]
pub use imp::Sh4Hw;

#[cfg(any(target_os = "none", doc))]
mod imp {
    use crate::hw::{self, CacheOp, MmuHw};
    use core::ptr::NonNull;
    use volatile::VolatilePtr;

    extern "C" {
        fn sh4mm_ldtlb();
        fn sh4mm_irq_save() -> u32;
        fn sh4mm_irq_restore(saved: u32);
        fn sh4mm_utlb_addr_write(addr: u32, value: u32);
        fn sh4mm_utlb_data_write(addr: u32, value: u32);
        fn sh4mm_cache_op(op: u32, va: u32, len: u32);
        fn sh4mm_zero_page(va: u32);
    }

    /// The CPU's MMU. Zero-sized: the state is the hardware's.
    ///
    /// Whoever holds one can rewrite TTB, PTEH, MMUCR and the TLB, and so any
    /// translation: it is a capability, made only with the `unsafe`
    /// [`Sh4Hw::new`].
    #[derive(Clone, Copy, Debug)]
    pub struct Sh4Hw(());

    impl Sh4Hw {
        /// The CPU's MMU.
        ///
        /// # Safety
        /// The code runs in privileged mode on an SH-4 (SH7750/SH7751 MMU,
        /// `boot/mmu.S` linked in), and whoever uses the MMU through it
        /// keeps TTB the P1 address of a first-level table of this crate's
        /// format (the TLB-miss handlers walk it) — in practice: only the
        /// [`crate::MemoryManager`] and the exception path use it.
        pub const unsafe fn new() -> Self {
            Sh4Hw(())
        }
    }

    fn reg(addr: u32) -> VolatilePtr<'static, u32> {
        // SAFETY: `addr` is one of the MMU registers in P4 (hw::PTEH ..
        // hw::PTEA), always mapped, 4-byte aligned, accessed as 32 bits.
        unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as usize as *mut u32)) }
    }

    // SAFETY: every method is the one documented hardware operation on the
    // CPU's own registers and arrays (`boot/mmu.S` for what needs assembly).
    unsafe impl MmuHw for Sh4Hw {
        fn pteh(&self) -> u32 {
            reg(hw::PTEH).read()
        }
        fn set_pteh(&self, value: u32) {
            reg(hw::PTEH).write(value)
        }
        fn set_ptel(&self, value: u32) {
            reg(hw::PTEL).write(value)
        }
        fn ttb(&self) -> u32 {
            reg(hw::TTB).read()
        }
        fn set_ttb(&self, value: u32) {
            reg(hw::TTB).write(value)
        }
        fn mmucr(&self) -> u32 {
            reg(hw::MMUCR).read()
        }
        fn set_mmucr(&self, value: u32) {
            reg(hw::MMUCR).write(value)
        }
        fn ldtlb(&self) {
            // SAFETY: LDTLB only copies PTEH/PTEL into the UTLB slot URC;
            // the callers keep the no-duplicate invariant (see tlb.rs).
            unsafe { sh4mm_ldtlb() }
        }
        fn utlb_addr_write(&self, offset: u32, value: u32) {
            // SAFETY: the helper writes the UTLB address array from P2, as
            // the manual requires; `offset` selects an entry or the A bit.
            unsafe { sh4mm_utlb_addr_write(hw::UTLB_ADDR_ARRAY | (offset & 0x3F80), value) }
        }
        fn utlb_data_write(&self, entry: u32, value: u32) {
            // SAFETY: as above, for data array 1 of entry `entry` (0..64).
            unsafe { sh4mm_utlb_data_write(hw::UTLB_DATA_ARRAY | ((entry & 63) << 8), value) }
        }
        fn cache_op(&self, op: CacheOp, va: u32, len: u32) {
            let code = match op {
                CacheOp::Purge => 0,
                CacheOp::Writeback => 1,
                CacheOp::Invalidate => 2,
            };
            // SAFETY: cache-block operations on a range the caller owns;
            // they never fault on P1 addresses.
            unsafe { sh4mm_cache_op(code, va, len) }
        }
        unsafe fn copy_page(&self, dst: u32, src: u32) {
            // SAFETY: the caller guarantees both pages are mapped and distinct.
            unsafe { core::ptr::copy_nonoverlapping(src as usize as *const u32, dst as usize as *mut u32, 1024) }
        }
        unsafe fn clear_page(&self, dst: u32) {
            // SAFETY: the caller guarantees the page is mapped writable.
            unsafe { sh4mm_zero_page(dst) }
        }
        fn irq_save(&self) -> u32 {
            // SAFETY: sets SR.IMASK=15 and returns the old IMASK; no other
            // SR bit changes.
            unsafe { sh4mm_irq_save() }
        }
        fn irq_restore(&self, saved: u32) {
            // SAFETY: writes back an IMASK from `irq_save`.
            unsafe { sh4mm_irq_restore(saved) }
        }
        fn in_interrupt(&self) -> bool {
            crate::irqlock::irq_depth() > 0
        }
    }
}
