//! The fixmap window: 1024 fixed one-page slots below `FIXADDR_TOP`.
//!
//! Slots `0..KMAP_COHERENT_SLOTS` are reserved for kmap_coherent (two per
//! cache colour); the rest are handed out by
//! [`crate::MemoryManager::fixmap_alloc`]. Mapping a slot preloads its TLB
//! entry (the slot is about to be used); unmapping flushes it, which is what
//! makes the next preload safe. Io-mappings map their pages here.
//!
//! `Fixmap` owns which slots are claimed; what is mapped at a slot is the
//! slot's PTE in `swapper_pg_dir` (its PTE page exists from
//! `MemoryManager::new` on, so nothing here allocates a frame).

use crate::addr::{Frame, FrameRange, Page, PageRange, VirtAddr};
use crate::bits::Bits;
use crate::error::{Handle, MmError, MmResult};
use crate::frame::{FrameAllocator, NoFrames, PhysAccess};
use crate::hw::{IrqGuard, MmuHw};
use crate::kspace::KernelTable;
use crate::layout::{fix_to_virt, virt_to_fix, FIXMAP_SLOTS, KMAP_COHERENT_SLOTS};
use crate::manager::Platform;
use crate::memtype::{IoMapping, MemTypes};
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::tlb;

/// Which general-purpose slots are claimed.
pub(crate) struct Fixmap {
    used: Bits<{ (FIXMAP_SLOTS / 32) as usize }>,
}

fn bad_slot(slot: u32) -> MmError {
    MmError::BadHandle(Handle::FixmapSlot(slot))
}

impl Fixmap {
    /// No slot claimed.
    pub(crate) const fn new() -> Self {
        Fixmap { used: Bits::new() }
    }

    /// Claims a general-purpose slot.
    pub(crate) fn alloc(&mut self) -> MmResult<u32> {
        let slot = (KMAP_COHERENT_SLOTS..FIXMAP_SLOTS).find(|&s| !self.used.get(s)).ok_or(MmError::WindowExhausted)?;
        self.used.set(slot, true);
        Ok(slot)
    }

    /// Releases a claimed slot that is not mapped.
    pub(crate) fn free<M: PhysAccess>(&mut self, table: &KernelTable, mem: &M, slot: u32) -> MmResult<()> {
        if !self.claimed(slot) {
            return Err(bad_slot(slot));
        }
        if Self::entry(table, mem, slot).is_some() {
            return Err(MmError::Busy);
        }
        self.used.set(slot, false);
        Ok(())
    }

    /// Whether `slot` is a claimed general-purpose slot.
    pub(crate) fn claimed(&self, slot: u32) -> bool {
        (KMAP_COHERENT_SLOTS..FIXMAP_SLOTS).contains(&slot) && self.used.get(slot)
    }

    /// The PTE at `slot`, if something is mapped there.
    pub(crate) fn entry<M: PhysAccess>(table: &KernelTable, mem: &M, slot: u32) -> Option<Pte> {
        table.view(mem).get(fix_to_virt(slot)?).filter(|p| p.is_present())
    }

    /// Maps `frame` at `slot` after reserving its memtype (released again if
    /// the map fails). See [`crate::MemoryManager::fixmap_map`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        table: &KernelTable,
        p: &Platform<H, M, A>,
        memtypes: &mut MemTypes,
        slot: u32,
        frame: Frame,
        prot: Prot,
        attr: CacheAttr,
    ) -> MmResult<VirtAddr> {
        let mut undo = Undo::new();
        let r = (|| {
            memtypes.reserve_range(FrameRange::one(frame), attr)?;
            undo.push(Step::Memtype(FrameRange::one(frame), attr));
            self.map_pte(table, p, slot, frame, prot, attr, PteFlags::empty())
        })();
        undo.finish(r, |step| match step {
            Step::Memtype(frames, attr) => memtypes.release_range(frames, attr),
            other => not_recorded_here(other),
        })
    }

    /// Maps `frame` at `slot` with no memtype check (the caller accounts
    /// for it) and preloads the TLB entry. `slot` must be claimed (or a
    /// kmap_coherent slot) and not mapped.
    #[allow(clippy::too_many_arguments)]
    fn map_pte<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        table: &KernelTable,
        p: &Platform<H, M, A>,
        slot: u32,
        frame: Frame,
        prot: Prot,
        attr: CacheAttr,
        extra: PteFlags,
    ) -> MmResult<VirtAddr> {
        let va = fix_to_virt(slot).ok_or_else(|| bad_slot(slot))?;
        if slot >= KMAP_COHERENT_SLOTS && !self.used.get(slot) {
            return Err(bad_slot(slot));
        }
        if Self::entry(table, &p.mem, slot).is_some() {
            return Err(MmError::AlreadyMapped(va));
        }
        let page = Page::containing(va);
        let one = PageRange::new(page, 1)?;
        // The PTE store and the preload form one step with interrupts masked:
        // an interrupt handler touching the slot in between would load the
        // entry through a TLB miss (`tlb::load` would still invalidate it
        // first, but nothing should be able to observe a half-made slot).
        // The fixmap's PTE page exists from `new`, so nothing is allocated
        // (`NoFrames` would make that an error rather than an allocation).
        let _irq = IrqGuard::new(&p.hw);
        table.map(&p.mem, &mut NoFrames, one, prot, attr, extra, |_| frame)?;
        if let Some(pte) = table.view(&p.mem).get(va) {
            tlb::load(&p.hw, page, pte);
        }
        Ok(va)
    }

    /// Unmaps `slot`, purging its cache lines and flushing its TLB entry,
    /// and releases the frame's memtype (unless the PTE is SPECIAL: an
    /// io-mapping's page, accounted by the io-mapping); returns the frame.
    pub(crate) fn unmap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        table: &KernelTable,
        p: &Platform<H, M, A>,
        memtypes: &mut MemTypes,
        slot: u32,
    ) -> MmResult<Frame> {
        let va = fix_to_virt(slot).ok_or_else(|| bad_slot(slot))?;
        let pte = Self::entry(table, &p.mem, slot).ok_or(MmError::NotMapped(va))?;
        table.unmap(p, PageRange::new(Page::containing(va), 1)?, |_, _| {});
        memtypes.release_pte(pte);
        Ok(pte.frame())
    }

    /// Maps page `index` of `io` at a newly claimed slot (no memtype
    /// re-check: the io-mapping reserved its whole range). The PTE is marked
    /// SPECIAL so that unmapping it releases no memtype of its own.
    pub(crate) fn io_mapping_map<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &Platform<H, M, A>,
        io: &mut IoMapping,
        index: u32,
    ) -> MmResult<VirtAddr> {
        if io.is_freed() {
            return Err(MmError::BadHandle(Handle::Reservation(io.frames().first().start())));
        }
        let frame = io.frames().get(index).ok_or(MmError::Overflow)?;
        let mut undo = Undo::new();
        let r = (|| {
            let slot = self.alloc()?;
            undo.push(Step::FixmapClaim(slot));
            self.map_pte(table, p, slot, frame, Prot::KernelRw, io.attr(), PteFlags::SPECIAL)
        })();
        let va = undo.finish(r, |step| match step {
            Step::FixmapClaim(slot) => self.free(table, &p.mem, slot),
            other => not_recorded_here(other),
        })?;
        io.mapped_one();
        Ok(va)
    }

    /// Unmaps a page of `io` mapped by [`Self::io_mapping_map`] and releases
    /// its slot. Everything is checked before anything changes.
    pub(crate) fn io_mapping_unmap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &Platform<H, M, A>,
        memtypes: &mut MemTypes,
        io: &mut IoMapping,
        va: VirtAddr,
    ) -> MmResult<()> {
        let slot = virt_to_fix(va).ok_or(MmError::BadAddress(va))?;
        let pte = Self::entry(table, &p.mem, slot).ok_or(MmError::NotMapped(va))?;
        if !self.claimed(slot)
            || !pte.flags().contains(PteFlags::SPECIAL)
            || !io.frames().contains(pte.frame())
            || io.mapped() == 0
        {
            return Err(bad_slot(slot));
        }
        // Checked above: the slot is claimed and mapped, so neither can fail.
        Self::unmap(table, p, memtypes, slot)?;
        self.free(table, &p.mem, slot)?;
        io.unmapped_one();
        Ok(())
    }
}
