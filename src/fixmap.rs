//! The fixmap window: 1024 fixed one-page slots below `FIXADDR_TOP`.
//!
//! Slots `0..KMAP_COHERENT_SLOTS` are reserved for kmap_coherent (two per
//! cache colour); the rest are handed out by [`MemoryManager::fixmap_alloc`].
//! Mapping a slot preloads its TLB entry (the slot is about to be used);
//! unmapping flushes it, which is what makes the next preload safe.

use crate::addr::{Frame, Page, VirtAddr};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{IrqGuard, MmuHw};
use crate::layout::{fix_to_virt, FIXMAP_SLOTS, KMAP_COHERENT_SLOTS};
use crate::manager::MemoryManager;
use crate::pte::{CacheAttr, Prot, PteFlags};
use crate::tlb;

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Claims a general-purpose fixmap slot.
    pub fn fixmap_alloc(&mut self) -> MmResult<u32> {
        let slot = (KMAP_COHERENT_SLOTS..FIXMAP_SLOTS)
            .find(|&s| !self.fixmap_used.get(s))
            .ok_or(MmError::WindowExhausted)?;
        self.fixmap_used.set(slot, true);
        Ok(slot)
    }

    /// Releases a slot from [`Self::fixmap_alloc`]; it must be unmapped.
    pub fn fixmap_free(&mut self, slot: u32) -> MmResult<()> {
        if !(KMAP_COHERENT_SLOTS..FIXMAP_SLOTS).contains(&slot) || !self.fixmap_used.get(slot) {
            return Err(MmError::BadHandle);
        }
        if self.fixmap_pte(slot).is_some() {
            return Err(MmError::Busy);
        }
        self.fixmap_used.set(slot, false);
        Ok(())
    }

    fn fixmap_pte(&self, slot: u32) -> Option<crate::pte::Pte> {
        self.kernel_table().get(fix_to_virt(slot)).filter(|p| p.is_present())
    }

    /// Maps `frame` at fixmap slot `slot` and preloads the TLB entry.
    /// `slot` must be claimed (or a kmap_coherent slot) and not mapped. The
    /// frame's memtype is checked against its live mappings.
    pub fn fixmap_map(&mut self, slot: u32, frame: Frame, prot: Prot, attr: CacheAttr) -> MmResult<VirtAddr> {
        self.memtypes.reserve(frame.pfn(), 1, attr)?;
        let r = self.fixmap_map_inner(slot, frame, prot, attr, PteFlags::empty());
        if r.is_err() {
            let _ = self.memtypes.release(frame.pfn(), 1, attr);
        }
        r
    }

    /// [`Self::fixmap_map`] without the memtype check (the range was reserved
    /// as a whole, e.g. by an io-mapping). The PTE is marked SPECIAL.
    pub(crate) fn fixmap_map_unchecked(&mut self, slot: u32, frame: Frame, prot: Prot, attr: CacheAttr) -> MmResult<VirtAddr> {
        self.fixmap_map_inner(slot, frame, prot, attr, PteFlags::SPECIAL)
    }

    fn fixmap_map_inner(&mut self, slot: u32, frame: Frame, prot: Prot, attr: CacheAttr, extra: PteFlags) -> MmResult<VirtAddr> {
        if slot >= FIXMAP_SLOTS || (slot >= KMAP_COHERENT_SLOTS && !self.fixmap_used.get(slot)) {
            return Err(MmError::BadHandle);
        }
        let va = fix_to_virt(slot);
        if self.fixmap_pte(slot).is_some() {
            return Err(MmError::AlreadyMapped(va));
        }
        let page = Page::containing(va);
        self.map_kernel(page, 1, prot, attr, extra, |_| frame)?;
        if let Some(pte) = self.kernel_table().get(va) {
            let _irq = IrqGuard::new(&self.hw);
            tlb::load(&self.hw, page, pte);
        }
        Ok(va)
    }

    /// Unmaps fixmap slot `slot` and flushes its TLB entry.
    pub fn fixmap_unmap(&mut self, slot: u32) -> MmResult<Frame> {
        if slot >= FIXMAP_SLOTS {
            return Err(MmError::BadHandle);
        }
        let va = fix_to_virt(slot);
        let pte = self.fixmap_pte(slot).ok_or(MmError::NotMapped(va))?;
        self.unmap_kernel(Page::containing(va), 1, |_, _| {});
        Self::release_pte(&mut self.memtypes, pte);
        Ok(pte.frame())
    }
}
