//! Deliberately broken variants of the code, for tests that must show they
//! can fail.
//!
//! With the `mutations` feature a test can switch on one mutation for the
//! current thread; every mechanism that has a mutation consults it. Without
//! the feature `enabled` is a constant `false` and the checks vanish.
//!
//! Only choices of the code live here: mutations that the hardware can
//! express (a lost flush, a lost invalidate before LDTLB, a lost MMUCR.TI, a
//! lost purge) are `model::Mutant`, an `MmuHw` wrapper the manager under
//! test is built over, with no hook in production code. The four left cannot
//! be expressed as lost hardware operations:
//! * [`Mutation::VmallocFaultVmallocOnly`]: which windows the slow path
//!   repairs is a decision of the fault handler; the hardware only reports
//!   the miss.
//! * [`Mutation::MmCreateNoKernelCopy`]: copying `swapper_pg_dir`'s kernel
//!   entries is a memory write to a page table, not an MMU operation.
//! * [`Mutation::KmapIgnoresColour`]: the slot choice is address arithmetic;
//!   every hardware operation still happens, just at the wrong colour.
//! * [`Mutation::InactiveFlushDataAsid`]: the code omits the PTEH.ASID
//!   switch around the write; the hardware executes every write it is given
//!   (and a wrapper dropping PTEH writes would lose those LDTLB needs too).

/// One deliberately broken mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Mutation {
    /// `vmalloc_fault` only handles the vmalloc window, not consistent/fixmap.
    VmallocFaultVmallocOnly = 1 << 0,
    /// Creating an mm does not copy the kernel part of swapper_pg_dir.
    MmCreateNoKernelCopy = 1 << 4,
    /// kmap_coherent picks a slot ignoring the user address's cache colour.
    KmapIgnoresColour = 1 << 5,
    /// A flush for another address space puts its ASID only in the data
    /// word of the associative write (QEMU's reading), not in PTEH.
    InactiveFlushDataAsid = 1 << 8,
}

#[cfg(feature = "mutations")]
mod imp {
    extern crate std;
    use core::cell::Cell;
    std::thread_local!(static ACTIVE: Cell<u32> = const { Cell::new(0) });

    pub fn enabled(m: super::Mutation) -> bool {
        ACTIVE.with(|a| a.get() & (m as u32) != 0)
    }
    pub fn set(m: super::Mutation, on: bool) {
        ACTIVE.with(|a| {
            let v = if on { a.get() | m as u32 } else { a.get() & !(m as u32) };
            a.set(v)
        })
    }
}

/// Whether mutation `m` is switched on for this thread.
#[cfg(feature = "mutations")]
pub fn enabled(m: Mutation) -> bool {
    imp::enabled(m)
}

/// Whether mutation `m` is switched on (never, without the feature).
#[cfg(not(feature = "mutations"))]
#[inline(always)]
pub const fn enabled(_m: Mutation) -> bool {
    false
}

/// Runs `f` with mutation `m` switched on for this thread.
#[cfg(feature = "mutations")]
pub fn with<R>(m: Mutation, f: impl FnOnce() -> R) -> R {
    struct Off(Mutation);
    impl Drop for Off {
        fn drop(&mut self) {
            imp::set(self.0, false)
        }
    }
    imp::set(m, true);
    let _off = Off(m);
    f()
}
