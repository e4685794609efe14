//! Deliberately broken variants, for tests that must show they can fail.
//!
//! With the `mutations` feature a test can switch on one mutation for the
//! current thread; every mechanism that has a mutation consults it. Without
//! the feature `enabled` is a constant `false` and the checks vanish.

/// One deliberately broken mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Mutation {
    /// `vmalloc_fault` only handles the vmalloc window, not consistent/fixmap.
    VmallocFaultVmallocOnly = 1 << 0,
    /// Kernel unmaps (vfree, iounmap, fixmap unmap, dma free) skip the TLB flush.
    KernelUnmapNoFlush = 1 << 2,
    /// ASID rollover does not flush the TLB.
    AsidRolloverNoFlush = 1 << 3,
    /// Creating an mm does not copy the kernel part of swapper_pg_dir.
    MmCreateNoKernelCopy = 1 << 4,
    /// kmap_coherent picks a slot ignoring the user address's cache colour.
    KmapIgnoresColour = 1 << 5,
    /// `tlb::load` does not invalidate a possible match before LDTLB.
    TlbLoadNoInvalidate = 1 << 6,
    /// Unmapping a cached mapping leaves its operand-cache lines behind.
    UnmapNoCachePurge = 1 << 7,
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
