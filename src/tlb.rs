//! TLB maintenance: loading entries, flushing them, and flush tokens.
//!
//! Invariants kept here:
//! * an entry is only loaded for a VPN that has no valid entry (a miss, or
//!   right after that VPN was flushed), so the UTLB never holds two matching
//!   entries (a multiple hit resets the CPU);
//! * every operation that removes or weakens a translation returns a
//!   [`TlbFlush`] that is `#[must_use]`; the high-level API flushes itself.

use crate::addr::{Page, VirtAddr, PAGE_SIZE};
use crate::hw::{self, IrqGuard, MmuHw};
use crate::mutation::{self, Mutation};
use crate::pte::Pte;

/// Above this many pages a range flush invalidates the whole TLB instead.
pub const FLUSH_ALL_THRESHOLD: u32 = 32;

/// Current ASID (PTEH\[7:0\]).
pub fn current_asid<H: MmuHw + ?Sized>(hw: &H) -> u8 {
    (hw.pteh() & 0xFF) as u8
}

/// Loads `pte` for `page` under the current ASID.
///
/// Any entry that could match `page` under the current ASID is invalidated
/// first (NetBSD's `sh4_tlb_update` does the same before every LDTLB): an
/// interrupt handler may have faulted the page in since the caller decided to
/// load it, and a second matching entry would be a TLB multiple hit (a
/// reset-type exception). The invalidate and the LDTLB run with interrupts
/// masked, so nothing can load the same VPN in between.
pub fn load<H: MmuHw + ?Sized>(hw: &H, page: Page, pte: Pte) {
    let _irq = IrqGuard::new(hw);
    let asid = hw.pteh() & 0xFF;
    flush_page_current(hw, page, asid as u8);
    // QEMU advances MMUCR.URC irregularly (not on every UTLB access), so the
    // slot is chosen explicitly: one past the current URC. Consecutive loads
    // never reuse a slot, whatever the hardware did in between.
    let mmucr = hw.mmucr();
    let slot = (((mmucr & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT) + 1) % hw::UTLB_ENTRIES;
    hw.set_mmucr((mmucr & !(hw::MMUCR_URC_MASK | hw::MMUCR_TI)) | (slot << hw::MMUCR_URC_SHIFT));
    hw.set_pteh(page.start().as_u32() | asid);
    hw.set_ptel(pte.ptel());
    hw.ldtlb();
}

/// Invalidates the entry for `page` under `asid`, which the caller has put
/// in PTEH.ASID (shared entries match any ASID).
fn flush_page_current<H: MmuHw + ?Sized>(hw: &H, page: Page, asid: u8) {
    // The manual compares PTEH.ASID; QEMU compares the data word's ASID. With
    // both equal the write means the same on either.
    hw.utlb_addr_write(hw::UTLB_ASSOC, page.start().as_u32() | asid as u32);
}

/// Invalidates the UTLB (and ITLB) entry for `page` tagged with `asid`;
/// shared (SH=1) entries match any ASID.
///
/// The SH7750/SH7751 manual (UTLB address array, associative write): "the
/// comparison of all the UTLB entries is carried out using the VPN specified
/// in the data field and PTEH.ASID". The ASID bits of the data word take no
/// part (QEMU compares them instead, which hides the difference). So to hit
/// an entry of an address space that is not running, PTEH.ASID is switched to
/// `asid` for the one write, with interrupts masked so that no TLB miss can
/// be taken (and load an entry under the wrong ASID) in between; this is what
/// Linux's `local_flush_tlb_page` does for another mm.
pub fn flush_page<H: MmuHw + ?Sized>(hw: &H, page: Page, asid: u8) {
    under_asid(hw, asid, || flush_page_current(hw, page, asid));
}

/// Runs `f` with interrupts masked and PTEH.ASID = `asid` (switched only if
/// it is not the current one, and restored afterwards).
fn under_asid<H: MmuHw + ?Sized>(hw: &H, asid: u8, f: impl FnOnce()) {
    let _irq = IrqGuard::new(hw);
    let saved = hw.pteh();
    if saved & 0xFF == asid as u32 || mutation::enabled(Mutation::InactiveFlushDataAsid) {
        f();
    } else {
        hw.set_pteh((saved & !0xFF) | asid as u32);
        f();
        hw.set_pteh(saved);
    }
}

/// Invalidates every UTLB and ITLB entry (MMUCR.TI). MMUCR.AT is left as it
/// is: a flush before `enable_mmu` must not turn translation on.
pub fn flush_all<H: MmuHw + ?Sized>(hw: &H) {
    let m = hw.mmucr();
    hw.set_mmucr((m & !hw::MMUCR_URC_MASK) | hw::MMUCR_TI);
}

/// Which entries a pending flush must remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Nothing,
    /// Pages of one address space (`asid`) or shared kernel pages (SH=1,
    /// flushed with any ASID).
    Range {
        start: VirtAddr,
        pages: u32,
        asid: u8,
    },
    All,
}

/// A TLB flush that must still be carried out.
#[must_use = "the TLB may still hold the old translation: call .flush(hw)"]
#[derive(Debug, PartialEq, Eq)]
pub struct TlbFlush(Scope);

impl TlbFlush {
    /// Nothing to flush.
    pub const fn none() -> Self {
        TlbFlush(Scope::Nothing)
    }
    /// Flush `pages` pages from `start` tagged with `asid` (or shared).
    pub fn range(start: Page, pages: u32, asid: u8) -> Self {
        if pages == 0 {
            TlbFlush(Scope::Nothing)
        } else {
            TlbFlush(Scope::Range { start: start.start(), pages, asid })
        }
    }
    /// Flush everything.
    pub const fn all() -> Self {
        TlbFlush(Scope::All)
    }
    /// Whether this token still has work to do.
    pub fn is_needed(&self) -> bool {
        self.0 != Scope::Nothing
    }
    /// Carries out the flush.
    pub fn flush<H: MmuHw + ?Sized>(self, hw: &H) {
        match self.0 {
            Scope::Nothing => {}
            Scope::All => flush_all(hw),
            Scope::Range { pages, .. } if pages > FLUSH_ALL_THRESHOLD => flush_all(hw),
            // One mask and one PTEH.ASID switch for the whole range.
            Scope::Range { start, pages, asid } => under_asid(hw, asid, || {
                for i in 0..pages {
                    let va = VirtAddr::new(start.as_u32().wrapping_add(i * PAGE_SIZE));
                    flush_page_current(hw, Page::containing(va), asid);
                }
            }),
        }
    }
    /// Drops the obligation without flushing.
    ///
    /// # Safety
    /// No TLB entry may hold the old translation: e.g. the address space's
    /// ASID was retired (it is not handed out again before a rollover, which
    /// flushes everything), or the caller invalidated the pages itself.
    /// Otherwise the TLB keeps translating to frames that may be reused.
    pub unsafe fn ignore(self) {}
}

/// Translations a page-table mutation changed that the TLB may still hold:
/// the pages, not yet the address space (ASID) they were loaded under, which
/// the table does not know. It must become a [`TlbFlush`] (or be discarded
/// with a reason, `unsafe`): like `x86_64`'s `MapperFlush`, a mutation of a
/// live table cannot forget its flush.
#[must_use = "the TLB may still hold the old translation: call .for_asid(asid).flush(hw)"]
#[derive(Debug, PartialEq, Eq)]
pub struct PendingFlush {
    start: VirtAddr,
    pages: u32,
}

impl PendingFlush {
    /// `pages` pages from `start` changed.
    pub(crate) fn new(start: Page, pages: u32) -> Self {
        PendingFlush { start: start.start(), pages }
    }
    /// Nothing changed.
    pub const fn none() -> Self {
        PendingFlush { start: VirtAddr::new(0), pages: 0 }
    }
    /// Pages covered.
    pub fn pages(&self) -> u32 {
        self.pages
    }
    /// The flush for the table's address space, whose ASID is `asid` (kernel
    /// pages are shared: any ASID finds them).
    pub fn for_asid(self, asid: u8) -> TlbFlush {
        TlbFlush::range(Page::containing(self.start), self.pages, asid)
    }
    /// Drops the obligation without flushing.
    ///
    /// # Safety
    /// As [`TlbFlush::ignore`]: no TLB entry may hold any of the old
    /// translations (the table has no live ASID, the entries were absent, or
    /// the caller invalidates the pages itself before they can be used).
    pub unsafe fn discard(self) {}
}
