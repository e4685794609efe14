//! TLB maintenance: loading entries, flushing them, and flush tokens.
//!
//! Invariants kept here:
//! * an entry is only loaded for a VPN that has no valid entry (a miss, or
//!   right after that VPN was flushed), so the UTLB never holds two matching
//!   entries (a multiple hit resets the CPU);
//! * every operation that removes or weakens a translation returns a
//!   [`TlbFlush`] that is `#[must_use]`; the high-level API flushes itself.

use crate::addr::{Page, VirtAddr, PAGE_SIZE};
use crate::hw::{self, MmuHw};
use crate::pte::Pte;

/// Above this many pages a range flush invalidates the whole TLB instead.
pub const FLUSH_ALL_THRESHOLD: u32 = 32;

/// Current ASID (PTEH\[7:0\]).
pub fn current_asid<H: MmuHw + ?Sized>(hw: &H) -> u8 {
    (hw.pteh() & 0xFF) as u8
}

/// Loads `pte` for `page` under the current ASID. The caller guarantees no
/// valid entry matches `page` — it flushed the page with interrupts masked
/// (the exception path), or the page's last unmap flushed it and nothing has
/// touched it since (fixmap preload) — and keeps interrupts masked, so
/// nothing can load the same VPN in between.
pub fn load<H: MmuHw + ?Sized>(hw: &H, page: Page, pte: Pte) {
    let asid = hw.pteh() & 0xFF;
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

/// Invalidates the UTLB (and, via the associative write, ITLB) entry for
/// `page` under `asid`; shared (SH=1) entries match any ASID.
pub fn flush_page<H: MmuHw + ?Sized>(hw: &H, page: Page, asid: u8) {
    hw.utlb_addr_write(hw::UTLB_ASSOC, page.start().as_u32() | asid as u32);
}

/// Invalidates every UTLB and ITLB entry (MMUCR.TI, keeping AT set).
pub fn flush_all<H: MmuHw + ?Sized>(hw: &H) {
    let m = hw.mmucr();
    hw.set_mmucr((m & !hw::MMUCR_URC_MASK) | hw::MMUCR_TI | hw::MMUCR_AT);
}

/// Which entries a pending flush must remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Nothing,
    /// Pages of one address space (`asid`) or shared kernel pages (SH=1,
    /// flushed with any ASID).
    Range { start: VirtAddr, pages: u32, asid: u8 },
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
            Scope::Range { start, pages, asid } => {
                for i in 0..pages {
                    let va = VirtAddr::new(start.as_u32().wrapping_add(i * PAGE_SIZE));
                    flush_page(hw, Page::containing(va), asid);
                }
            }
        }
    }
    /// Drops the obligation without flushing. Only correct when the caller
    /// knows no entry can exist (e.g. the ASID was retired).
    pub fn ignore(self) {}
}
