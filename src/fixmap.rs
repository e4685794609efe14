//! The fixmap window: 1024 fixed one-page slots below `FIXADDR_TOP`.
//!
//! Slots `0..KMAP_COHERENT_SLOTS` are reserved for kmap_coherent (two per
//! cache colour); the rest are handed out by [`MemoryManager::fixmap_alloc`].
//! Mapping a slot preloads its TLB entry (the slot is about to be used);
//! unmapping flushes it, which is what makes the next preload safe.

use crate::addr::{Frame, Page, VirtAddr};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::layout::{fix_to_virt, FIXMAP_SLOTS, KMAP_COHERENT_SLOTS};
use crate::manager::MemoryManager;
use crate::pte::{CacheAttr, Prot, PteFlags};
use crate::tlb;

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Claims a general-purpose fixmap slot.
    pub fn fixmap_alloc(&mut self) -> MmResult<u32> {
        let slot =
            (KMAP_COHERENT_SLOTS..FIXMAP_SLOTS).find(|&s| !self.fixmap_used.get(s)).ok_or(MmError::WindowExhausted)?;
        self.fixmap_used.set(slot, true);
        Ok(slot)
    }

    /// Releases a slot from [`Self::fixmap_alloc`]; it must be unmapped.
    pub fn fixmap_free(&mut self, slot: u32) -> MmResult<()> {
        if !self.fixmap_claimed(slot) {
            return Err(MmError::BadHandle);
        }
        if self.fixmap_pte(slot).is_some() {
            return Err(MmError::Busy);
        }
        self.fixmap_used.set(slot, false);
        Ok(())
    }

    fn fixmap_pte(&self, slot: u32) -> Option<crate::pte::Pte> {
        self.kernel_table().get(fix_to_virt(slot)?).filter(|p| p.is_present())
    }

    /// Maps `frame` at fixmap slot `slot` and preloads the TLB entry.
    /// `slot` must be claimed (or a kmap_coherent slot) and not mapped. The
    /// frame's memtype is checked against its live mappings.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a slot that does not exist or is not
    /// claimed, [`MmError::AlreadyMapped`], or the memtype conflict.
    pub fn fixmap_map(&mut self, slot: u32, frame: Frame, prot: Prot, attr: CacheAttr) -> MmResult<VirtAddr> {
        self.memtypes.reserve(frame.pfn(), 1, attr)?;
        let r = self.fixmap_map_inner(slot, frame, prot, attr, PteFlags::empty());
        if r.is_err() {
            let undone = self.memtypes.release(frame.pfn(), 1, attr);
            debug_assert!(undone.is_ok());
        }
        r
    }

    /// [`Self::fixmap_map`] without the memtype check (the range was reserved
    /// as a whole, e.g. by an io-mapping). The PTE is marked SPECIAL.
    pub(crate) fn fixmap_map_unchecked(
        &mut self,
        slot: u32,
        frame: Frame,
        prot: Prot,
        attr: CacheAttr,
    ) -> MmResult<VirtAddr> {
        self.fixmap_map_inner(slot, frame, prot, attr, PteFlags::SPECIAL)
    }

    fn fixmap_map_inner(
        &mut self,
        slot: u32,
        frame: Frame,
        prot: Prot,
        attr: CacheAttr,
        extra: PteFlags,
    ) -> MmResult<VirtAddr> {
        let va = fix_to_virt(slot).ok_or(MmError::BadHandle)?;
        if slot >= KMAP_COHERENT_SLOTS && !self.fixmap_used.get(slot) {
            return Err(MmError::BadHandle);
        }
        if self.fixmap_pte(slot).is_some() {
            return Err(MmError::AlreadyMapped(va));
        }
        let page = Page::containing(va);
        // The PTE store and the preload form one step with interrupts masked:
        // an interrupt handler touching the slot in between would load the
        // entry through a TLB miss (`tlb::load` would still invalidate it
        // first, but nothing should be able to observe a half-made slot).
        // The fixmap's PTE page exists from `new`, so nothing is allocated.
        let saved = self.hw.irq_save();
        let r = self.map_kernel(page, 1, prot, attr, extra, |_| frame);
        if r.is_ok() {
            if let Some(pte) = self.kernel_table().get(va) {
                tlb::load(&self.hw, page, pte);
            }
        }
        self.hw.irq_restore(saved);
        r.map(|()| va)
    }

    /// Unmaps fixmap slot `slot`, purging its cache lines and flushing its
    /// TLB entry; returns the frame that was mapped.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a slot that does not exist,
    /// [`MmError::NotMapped`] if nothing is mapped there.
    pub fn fixmap_unmap(&mut self, slot: u32) -> MmResult<Frame> {
        let va = fix_to_virt(slot).ok_or(MmError::BadHandle)?;
        let pte = self.fixmap_pte(slot).ok_or(MmError::NotMapped(va))?;
        self.unmap_kernel(Page::containing(va), 1, |_, _| {});
        Self::release_pte(&mut self.memtypes, pte);
        Ok(pte.frame())
    }

    /// Whether `slot` is a claimed general-purpose slot (what
    /// [`Self::fixmap_free`] accepts).
    pub(crate) fn fixmap_claimed(&self, slot: u32) -> bool {
        (KMAP_COHERENT_SLOTS..FIXMAP_SLOTS).contains(&slot) && self.fixmap_used.get(slot)
    }

    /// The PTE at fixmap slot `slot`, if something is mapped there.
    pub(crate) fn fixmap_entry(&self, slot: u32) -> Option<crate::pte::Pte> {
        self.fixmap_pte(slot)
    }
}
