//! Hardware that loses one kind of operation: the mutations the hardware can
//! express, as an [`MmuHw`] wrapper instead of hooks in production code.
//!
//! A [`Mutant`] forwards every operation to the hardware it wraps (normally
//! `&Sh4Model`) except the ones its [`Lost`] set names. The memory manager
//! under test is built over it; the CPU side of the model (translation,
//! caches, exceptions: [`super::Machine`]) stays the true model, so what the
//! lost operation leaves behind (a stale TLB entry, a second entry for one
//! page, a dirty line of a freed frame) is seen by the model's checks.
//! With [`Lost::empty`] the wrapper is transparent: every call is forwarded
//! unchanged, with no extra hardware operation.
//!
//! An associative UTLB write cannot tell by itself whether the kernel meant it
//! as a flush or as the invalidate [`crate::tlb::load`] issues right before
//! its LDTLB. So while an associative write can be lost, it is treated as a
//! posted write: held until the next operation that can observe the TLB. If
//! that operation is LDTLB, the write was a load's invalidate; otherwise it
//! was a flush. Reads of PTEH and MMUCR, writes of PTEH and PTEL and MMUCR
//! writes that change only URC do not observe the TLB; every other operation
//! (including masking and unmasking interrupts, which may let a handler in)
//! does. A held write that is not lost is replayed under the PTEH.ASID that
//! was current when it was issued, because the associative write compares
//! PTEH.ASID, not the data word's ASID (SH7750/SH7751 manual, UTLB address
//! array): the inner PTEH is switched for the replay and restored.

use crate::hw::{self, CacheOp, MmuHw};
use core::cell::Cell;

bitflags::bitflags! {
    /// The operations a [`Mutant`] loses.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Lost: u8 {
        /// Associative UTLB invalidations of P3 (kernel) pages that are
        /// flushes, i.e. not followed by LDTLB: a kernel unmap whose TLB flush
        /// never happens. The invalidate before a load still works.
        const KERNEL_FLUSH = 1 << 0;
        /// The associative invalidate an LDTLB follows: `tlb::load` loading
        /// over a possible match.
        const LOAD_INVALIDATE = 1 << 1;
        /// MMUCR.TI (flush everything); AT and URC are still written. The
        /// ASID rollover (and range flushes over 32 pages) flush nothing.
        const FLUSH_ALL = 1 << 2;
        /// `ocbp` (`CacheOp::Purge`): lines of an unmapped page survive.
        const PURGE = 1 << 3;
    }
}

/// An associative UTLB write not yet carried out.
#[derive(Clone, Copy, Debug)]
struct Posted {
    offset: u32,
    value: u32,
    /// PTEH.ASID when the write was issued.
    asid: u32,
}

/// `H` with the operations in a [`Lost`] set dropped; see the module docs.
pub struct Mutant<H: MmuHw> {
    inner: H,
    lost: Lost,
    posted: Cell<Option<Posted>>,
    /// The last MMUCR value read through the wrapper.
    mmucr_seen: Cell<Option<u32>>,
    dropped: Cell<u64>,
}

impl<H: MmuHw> Mutant<H> {
    /// `inner` losing the operations in `lost`.
    pub fn new(inner: H, lost: Lost) -> Self {
        Mutant { inner, lost, posted: Cell::new(None), mmucr_seen: Cell::new(None), dropped: Cell::new(0) }
    }

    /// `inner` with nothing lost: a transparent wrapper.
    pub fn faithful(inner: H) -> Self {
        Self::new(inner, Lost::empty())
    }

    /// What this wrapper loses.
    pub fn lost(&self) -> Lost {
        self.lost
    }

    /// The wrapped hardware.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// Operations dropped so far (a mutant that never dropped anything was
    /// not exercised).
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Whether an associative write is being held.
    pub fn holds_write(&self) -> bool {
        self.posted.get().is_some()
    }

    fn drop_one(&self) {
        self.dropped.set(self.dropped.get() + 1);
    }

    fn posts(&self) -> bool {
        self.lost.intersects(Lost::KERNEL_FLUSH | Lost::LOAD_INVALIDATE)
    }

    /// Carries out (or loses) a held associative write before an operation
    /// that can observe the TLB; `before_ldtlb` says whether that operation
    /// is LDTLB (the write was a load's invalidate) or not (a flush).
    fn settle(&self, before_ldtlb: bool) {
        let Some(p) = self.posted.take() else { return };
        let p3 = p.value >> 29 == 6;
        let lose = if before_ldtlb {
            self.lost.contains(Lost::LOAD_INVALIDATE)
        } else {
            self.lost.contains(Lost::KERNEL_FLUSH) && p3
        };
        if lose {
            self.drop_one();
            return;
        }
        let now = self.inner.pteh();
        if now & 0xFF == p.asid {
            self.inner.utlb_addr_write(p.offset, p.value);
        } else {
            self.inner.set_pteh((now & !0xFF) | p.asid);
            self.inner.utlb_addr_write(p.offset, p.value);
            self.inner.set_pteh(now);
        }
    }
}

// SAFETY: NOT a faithful implementation, on purpose: a Mutant with a
// non-empty `Lost` set drops operations the memory manager relies on, so that
// tests can show their checks catch the consequences. It exists only in the
// `model` feature (host tests, simulated RAM; never in a target build), and
// everything it breaks is confined to the model's simulated machine. With
// `Lost::empty()` it forwards every operation unchanged to `H`, which
// upholds the contract.
unsafe impl<H: MmuHw> MmuHw for Mutant<H> {
    fn pteh(&self) -> u32 {
        self.inner.pteh()
    }
    fn set_pteh(&self, value: u32) {
        self.inner.set_pteh(value)
    }
    fn set_ptel(&self, value: u32) {
        self.inner.set_ptel(value)
    }
    fn ttb(&self) -> u32 {
        self.settle(false);
        self.inner.ttb()
    }
    fn set_ttb(&self, value: u32) {
        self.settle(false);
        self.inner.set_ttb(value)
    }
    fn mmucr(&self) -> u32 {
        let v = self.inner.mmucr();
        if self.posts() {
            self.mmucr_seen.set(Some(v));
        }
        v
    }
    fn set_mmucr(&self, mut value: u32) {
        let urc_only =
            value & hw::MMUCR_TI == 0 && self.mmucr_seen.get().is_some_and(|m| (m ^ value) & !hw::MMUCR_URC_MASK == 0);
        if !urc_only {
            self.settle(false);
        }
        if value & hw::MMUCR_TI != 0 && self.lost.contains(Lost::FLUSH_ALL) {
            self.drop_one();
            value &= !hw::MMUCR_TI;
        }
        self.mmucr_seen.set(None);
        self.inner.set_mmucr(value)
    }
    fn ldtlb(&self) {
        self.settle(true);
        self.inner.ldtlb()
    }
    fn utlb_addr_write(&self, offset: u32, value: u32) {
        self.settle(false);
        if offset & hw::UTLB_ASSOC != 0 && self.posts() {
            let asid = self.inner.pteh() & 0xFF;
            self.posted.set(Some(Posted { offset, value, asid }));
        } else {
            self.inner.utlb_addr_write(offset, value)
        }
    }
    fn utlb_data_write(&self, entry: u32, value: u32) {
        self.settle(false);
        self.inner.utlb_data_write(entry, value)
    }
    fn cache_op(&self, op: CacheOp, va: u32, len: u32) {
        self.settle(false);
        if op == CacheOp::Purge && self.lost.contains(Lost::PURGE) {
            self.drop_one();
            return;
        }
        self.inner.cache_op(op, va, len)
    }
    unsafe fn copy_page(&self, dst: u32, src: u32) {
        self.settle(false);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.copy_page(dst, src) }
    }
    unsafe fn clear_page(&self, dst: u32) {
        self.settle(false);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.clear_page(dst) }
    }
    fn irq_save(&self) -> u32 {
        self.settle(false);
        self.inner.irq_save()
    }
    fn irq_restore(&self, saved: u32) {
        self.settle(false);
        self.inner.irq_restore(saved)
    }
    fn in_interrupt(&self) -> bool {
        self.inner.in_interrupt()
    }
}
