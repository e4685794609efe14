//! The two-level page table: a 1024-entry first level (pgd, indexed by
//! VA\[31:22\]) whose entries hold the P1 address of a 1024-entry PTE page
//! (indexed by VA\[21:12\]), or 0.
//!
//! The TLB-miss fast path walks this format directly:
//! `pte = ((u32*)pgd[va>>22])[(va>>12)&0x3ff]`. Entries are written with
//! single volatile stores, and a new PTE page is filled before it is linked,
//! so a walk that interrupts an update sees either the old or the new state.

use crate::addr::{Frame, Page, PhysAddr, VirtAddr, PAGE_SIZE};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::pte::Pte;
use crate::tlb::PendingFlush;

/// Entries per table level.
pub const ENTRIES: usize = 1024;
/// First-level indices of user space (P0/U0: 0x0000_0000..0x8000_0000).
pub const USER_PGDS: core::ops::Range<usize> = 0..512;
/// First-level indices of P3 (0xC000_0000..0xE000_0000): the part every mm
/// copies from `swapper_pg_dir`.
pub const KERNEL_PGDS: core::ops::Range<usize> = 768..896;

/// A first-level table and the memory it lives in.
pub struct PageTable<'m, M: PhysAccess + ?Sized> {
    mem: &'m M,
    pgd: Frame,
}

impl<'m, M: PhysAccess + ?Sized> PageTable<'m, M> {
    /// Views the first-level table in frame `pgd`.
    ///
    /// # Safety
    /// `pgd` must be a first-level table (zeroed, or holding only 0 and P1
    /// addresses of PTE pages) that `mem` reaches and that stays allocated
    /// while the view lives. The view writes page tables the MMU walks: a
    /// wrong frame is a write to arbitrary physical memory, and an entry
    /// pointing at a frame that is not a PTE page maps arbitrary memory.
    pub unsafe fn new(mem: &'m M, pgd: Frame) -> Self {
        PageTable { mem, pgd }
    }

    /// [`Self::new`] for the crate's own tables (swapper_pg_dir and the mms'
    /// first-level tables, which the memory manager allocated and owns).
    pub(crate) fn view(mem: &'m M, pgd: Frame) -> Self {
        PageTable { mem, pgd }
    }

    /// The table's frame.
    pub fn frame(&self) -> Frame {
        self.pgd
    }

    /// The word of first-level entry `idx`; `None` past the table's end
    /// (which would be the next physical frame).
    fn pgd_slot(&self, idx: usize) -> Option<PhysAddr> {
        if idx >= ENTRIES {
            return None;
        }
        PhysAddr::new(self.pgd.start().as_u32() + (idx as u32) * 4)
    }

    /// Raw first-level entry `idx` (P1 address of the PTE page, or 0; also 0
    /// for an index past the table, which has no entry).
    #[inline]
    pub fn pgd_raw(&self, idx: usize) -> u32 {
        self.pgd_slot(idx).map_or(0, |s| self.mem.read_u32(s))
    }

    /// Writes raw first-level entry `idx` (the P1 address of a PTE page, or
    /// 0); every translation of its 4 MiB may change, hence the flush.
    ///
    /// # Errors
    /// [`MmError::Overflow`] if `idx` is not below [`ENTRIES`] (nothing is written).
    pub fn set_pgd_raw(&self, idx: usize, raw: u32) -> MmResult<PendingFlush> {
        let slot = self.pgd_slot(idx).ok_or(MmError::Overflow)?;
        self.mem.write_u32(slot, raw);
        let first = Page::containing(VirtAddr::new((idx as u32) << 22));
        Ok(PendingFlush::new(first, ENTRIES as u32))
    }

    /// The PTE page linked at first-level index `idx`.
    #[inline]
    pub fn pte_table(&self, idx: usize) -> Option<Frame> {
        match self.pgd_raw(idx) {
            0 => None,
            raw => PhysAddr::from_p1_p2(VirtAddr::new(raw)).map(Frame::containing),
        }
    }

    #[inline]
    fn pte_slot(&self, va: VirtAddr) -> Option<PhysAddr> {
        let t = self.pte_table(va.pgd_index())?;
        PhysAddr::new(t.start().as_u32() + (va.pte_index() as u32) * 4)
    }

    /// The PTE for `va`; `None` if no PTE page covers it.
    #[inline]
    pub fn get(&self, va: VirtAddr) -> Option<Pte> {
        self.pte_slot(va).map(|s| Pte::from_raw(self.mem.read_u32(s)))
    }

    /// The slot of the PTE for `va` and the PTE in it; `None` if no PTE page
    /// covers it. With [`Self::set_slot`], a read-modify-write that walks
    /// the table once.
    #[inline]
    pub(crate) fn entry(&self, va: VirtAddr) -> Option<(PhysAddr, Pte)> {
        self.pte_slot(va).map(|s| (s, Pte::from_raw(self.mem.read_u32(s))))
    }

    /// Overwrites the PTE in `slot`, which [`Self::entry`] returned for `va`
    /// (of this table, still linked); the flush as for [`Self::set`].
    #[inline]
    pub(crate) fn set_slot(&self, slot: PhysAddr, va: VirtAddr, pte: Pte) -> PendingFlush {
        self.mem.write_u32(slot, pte.raw());
        PendingFlush::new(Page::containing(va), 1)
    }

    /// Overwrites the PTE for `va`; the old translation may still be in the
    /// TLB, hence the flush.
    ///
    /// # Errors
    /// [`MmError::NotMapped`] if no PTE page covers `va` (nothing written).
    pub fn set(&self, va: VirtAddr, pte: Pte) -> MmResult<PendingFlush> {
        let s = self.pte_slot(va).ok_or(MmError::NotMapped(va))?;
        self.mem.write_u32(s, pte.raw());
        Ok(PendingFlush::new(Page::containing(va), 1))
    }

    /// Physical address and PTE that `va` translates to, if mapped and valid.
    pub fn translate(&self, va: VirtAddr) -> Option<(PhysAddr, Pte)> {
        let pte = self.get(va)?;
        if !pte.is_valid() {
            return None;
        }
        let pa = PhysAddr::new(pte.frame().start().as_u32() | va.page_offset())?;
        Some((pa, pte))
    }

    /// Maps `count` pages from `start`, page `i` getting `pte_for(i)`.
    ///
    /// All-or-nothing: fails with [`MmError::AlreadyMapped`] before changing
    /// anything if a page is present, and with [`MmError::OutOfFrames`] after
    /// freeing every PTE page it allocated. PTE pages are allocated and zeroed
    /// first and only linked once all of them exist.
    pub fn map(
        &self,
        alloc: &mut dyn FrameAllocator,
        start: Page,
        count: u32,
        mut pte_for: impl FnMut(u32) -> Pte,
    ) -> MmResult<()> {
        if count == 0 {
            return Err(MmError::ZeroSize);
        }
        let last = start.offset(count - 1).ok_or(MmError::Overflow)?;
        for i in 0..count {
            let va = page_at(start, i);
            if let Some(p) = self.get(va) {
                if p.is_present() {
                    return Err(MmError::AlreadyMapped(va));
                }
            }
        }
        let (first_idx, last_idx) = (start.start().pgd_index(), last.start().pgd_index());
        // Phase 1: allocate the missing PTE pages, chained through word 0.
        let mut chain: u32 = 0;
        for idx in first_idx..=last_idx {
            if self.pte_table(idx).is_some() {
                continue;
            }
            match alloc.alloc(1) {
                Some(f) => {
                    self.mem.zero_frame(f);
                    self.mem.write_u32(f.start(), chain);
                    chain = f.start().to_p1().as_u32();
                }
                None => {
                    while let Some(f) = pop_chain(self.mem, &mut chain) {
                        alloc.free(f, 1);
                    }
                    return Err(MmError::OutOfFrames);
                }
            }
        }
        // Phase 2 (cannot fail): link the pages (last allocated is linked at
        // the highest missing index), then write the PTEs.
        for idx in (first_idx..=last_idx).rev() {
            if self.pte_table(idx).is_none() {
                if let Some(f) = pop_chain(self.mem, &mut chain) {
                    let linked = self.set_pgd_raw(idx, f.start().to_p1().as_u32());
                    debug_assert!(linked.is_ok(), "idx comes from a page address: below ENTRIES");
                    if let Ok(p) = linked {
                        // SAFETY: the entry was empty: no translation went
                        // through it, so the TLB holds none.
                        unsafe { p.discard() };
                    }
                }
            }
        }
        for i in 0..count {
            if let Ok(p) = self.set(page_at(start, i), pte_for(i)) {
                // SAFETY: checked above: none of these PTEs was present, and
                // every unmap flushed the page it cleared.
                unsafe { p.discard() };
            }
        }
        Ok(())
    }

    /// Clears every present PTE in `count` pages from `start`, calling
    /// `on_unmap` for each; returns how many were present (holes are
    /// skipped) and the flush the range needs.
    pub fn unmap(&self, start: Page, count: u32, mut on_unmap: impl FnMut(Page, Pte)) -> (u32, PendingFlush) {
        let mut n = 0;
        for i in 0..count {
            let va = page_at(start, i);
            if let Some(s) = self.pte_slot(va) {
                let p = Pte::from_raw(self.mem.read_u32(s));
                if p.is_present() {
                    self.mem.write_u32(s, Pte::NONE.raw());
                    on_unmap(Page::containing(va), p);
                    n += 1;
                }
            }
        }
        (n, if n == 0 { PendingFlush::none() } else { PendingFlush::new(start, count) })
    }

    /// Calls `f` for every present PTE in `count` pages from `start`, skipping
    /// whole 4 MiB regions that have no PTE page. Changes nothing.
    pub fn for_each_present(&self, start: Page, count: u32, mut f: impl FnMut(Page, Pte)) {
        let mut i = 0;
        while i < count {
            let va = page_at(start, i);
            let Some(t) = self.pte_table(va.pgd_index()) else {
                // Skip to the next first-level entry.
                let skip = ENTRIES as u32 - va.pte_index() as u32;
                i = i.saturating_add(skip);
                continue;
            };
            if let Some(s) = PhysAddr::new(t.start().as_u32() + (va.pte_index() as u32) * 4) {
                let p = Pte::from_raw(self.mem.read_u32(s));
                if p.is_present() {
                    f(Page::containing(va), p);
                }
            }
            i += 1;
        }
    }

    /// Replaces every present PTE in the range by `f(pte)`; returns how many
    /// were changed and the flush the range needs.
    pub fn update(&self, start: Page, count: u32, mut f: impl FnMut(Pte) -> Pte) -> (u32, PendingFlush) {
        let mut n = 0;
        for i in 0..count {
            let va = page_at(start, i);
            if let Some(p) = self.get(va) {
                if p.is_present() {
                    let q = f(p);
                    if q != p {
                        if let Some(s) = self.pte_slot(va) {
                            self.mem.write_u32(s, q.raw());
                        }
                        n += 1;
                    }
                }
            }
        }
        (n, if n == 0 { PendingFlush::none() } else { PendingFlush::new(start, count) })
    }

    /// Frees the PTE pages linked at `range` (after reporting every present
    /// PTE to `on_pte`) and clears those first-level entries.
    ///
    /// The TLB may still hold translations through them: the caller retires
    /// the address space's ASID (what `mm_put` does) or flushes.
    pub(crate) fn free_tables(
        &self,
        alloc: &mut dyn FrameAllocator,
        range: core::ops::Range<usize>,
        mut on_pte: impl FnMut(Page, Pte),
    ) {
        for idx in range {
            if let Some(t) = self.pte_table(idx) {
                for j in 0..ENTRIES as u32 {
                    let pte =
                        Pte::from_raw(self.mem.read_u32(PhysAddr::new(t.start().as_u32() + j * 4).unwrap_or_default()));
                    if pte.is_present() {
                        let va = VirtAddr::new(((idx as u32) << 22) | (j << 12));
                        on_pte(Page::containing(va), pte);
                    }
                }
                if let Some(slot) = self.pgd_slot(idx) {
                    self.mem.write_u32(slot, 0);
                }
                alloc.free(t, 1);
            }
        }
    }

    /// Number of PTE pages linked at `range`.
    pub fn count_tables(&self, range: core::ops::Range<usize>) -> usize {
        range.filter(|&i| self.pgd_raw(i) != 0).count()
    }
}

fn page_at(start: Page, i: u32) -> VirtAddr {
    VirtAddr::new(start.start().as_u32().wrapping_add(i.wrapping_mul(PAGE_SIZE)))
}

fn pop_chain<M: PhysAccess + ?Sized>(mem: &M, chain: &mut u32) -> Option<Frame> {
    if *chain == 0 {
        return None;
    }
    let pa = PhysAddr::from_p1_p2(VirtAddr::new(*chain))?;
    *chain = mem.read_u32(pa);
    mem.write_u32(pa, 0);
    Some(Frame::containing(pa))
}
