//! Cache-attribute ("memtype") tracking.
//!
//! Every mapping of a physical range records its attribute (write-back,
//! write-through, uncached). A new mapping whose attribute differs from a live
//! one on any overlapping frame is refused with [`MmError::AttrConflict`],
//! naming both: two aliases with different cacheability would let a cached
//! alias hold stale data or write back over what the uncached one wrote. Ranges
//! used through P1 (cached) — the kernel image, heaps, DMA pools the OS drives
//! by hand — are declared with [`MemoryManager::memtype_reserve`]; P2 is
//! always uncached and needs no entry.

use crate::addr::{Frame, PhysAddr};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::manager::MemoryManager;
use crate::pte::CacheAttr;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Live reservations: start pfn -> list of (pages, attr). Overlapping
/// reservations with the same attribute are allowed and counted.
#[derive(Debug, Default)]
pub struct MemTypes {
    by_start: BTreeMap<u32, Vec<(u32, CacheAttr)>>,
    longest: u32,
}

impl MemTypes {
    /// No reservations.
    pub const fn new() -> Self {
        MemTypes { by_start: BTreeMap::new(), longest: 0 }
    }

    /// The attribute of a live reservation overlapping `[pfn, pfn+pages)`
    /// that differs from `attr`, with the first conflicting pfn.
    pub fn conflict(&self, pfn: u32, pages: u32, attr: CacheAttr) -> Option<(u32, CacheAttr)> {
        let end = pfn.saturating_add(pages);
        let lo = pfn.saturating_sub(self.longest);
        for (&s, list) in self.by_start.range(lo..end) {
            for &(n, a) in list {
                if s.saturating_add(n) > pfn && a != attr {
                    return Some((s.max(pfn), a));
                }
            }
        }
        None
    }

    /// Records `[pfn, pfn+pages)` as mapped with `attr`, or refuses it.
    pub fn reserve(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        if let Some((at, existing)) = self.conflict(pfn, pages, attr) {
            return Err(MmError::AttrConflict {
                phys: Frame::from_pfn(at).map(|f| f.start()).unwrap_or_default(),
                requested: attr,
                existing,
            });
        }
        self.by_start.entry(pfn).or_default().push((pages, attr));
        self.longest = self.longest.max(pages);
        Ok(())
    }

    /// Drops one reservation made with exactly these arguments.
    pub fn release(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        let list = self.by_start.get_mut(&pfn).ok_or(MmError::BadHandle)?;
        let i = list.iter().position(|&e| e == (pages, attr)).ok_or(MmError::BadHandle)?;
        list.swap_remove(i);
        if list.is_empty() {
            self.by_start.remove(&pfn);
        }
        Ok(())
    }

    /// The attribute frame `pfn` is mapped with, if any mapping is live.
    pub fn lookup(&self, pfn: u32) -> Option<CacheAttr> {
        let lo = pfn.saturating_sub(self.longest);
        self.by_start
            .range(lo..=pfn)
            .flat_map(|(&s, l)| l.iter().map(move |&(n, a)| (s, n, a)))
            .find(|&(s, n, _)| s.saturating_add(n) > pfn)
            .map(|(_, _, a)| a)
    }

    /// Number of live reservations.
    pub fn len(&self) -> usize {
        self.by_start.values().map(Vec::len).sum()
    }

    /// Whether nothing is reserved.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

/// A physical range reserved once with one attribute, whose pages are then
/// mapped and unmapped one at a time without re-checking (like Linux's
/// io-mapping, for a driver that touches a large aperture page by page).
///
/// It counts its mapped pages: the reservation is what keeps a conflicting
/// alias out, so it cannot end while a page is still mapped.
#[derive(Debug, PartialEq, Eq)]
pub struct IoMapping {
    first: Frame,
    pages: u32,
    attr: CacheAttr,
    mapped: u32,
    freed: bool,
}

impl IoMapping {
    /// Pages in the range.
    pub fn pages(&self) -> u32 {
        self.pages
    }
    /// Pages currently mapped through [`MemoryManager::io_mapping_map`].
    pub fn mapped(&self) -> u32 {
        self.mapped
    }
    fn contains(&self, frame: Frame) -> bool {
        frame.pfn().wrapping_sub(self.first.pfn()) < self.pages
    }
}

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Declares `[phys, phys+size)` as used with `attr` outside this crate's
    /// mappings (e.g. the kernel image through P1 = write-back).
    pub fn memtype_reserve(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<()> {
        let (pfn, pages) = phys_range(phys, size)?;
        self.memtypes.reserve(pfn, pages, attr)
    }

    /// Undoes [`Self::memtype_reserve`] with the same arguments.
    pub fn memtype_release(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<()> {
        let (pfn, pages) = phys_range(phys, size)?;
        self.memtypes.release(pfn, pages, attr)
    }

    /// The attribute live mappings give physical address `phys`.
    pub fn memtype_of(&self, phys: PhysAddr) -> Option<CacheAttr> {
        self.memtypes.lookup(Frame::containing(phys).pfn())
    }

    /// Live memtype reservations.
    pub fn memtypes(&self) -> &MemTypes {
        &self.memtypes
    }

    /// Reserves a range for page-by-page mapping with `attr`.
    ///
    /// # Errors
    /// [`MmError::Unaligned`], [`MmError::ZeroSize`], [`MmError::Overflow`]
    /// for a bad range; [`MmError::AttrConflict`] if a live mapping of the
    /// range has another attribute.
    pub fn io_mapping_create(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<IoMapping> {
        let (pfn, pages) = phys_range(phys, size)?;
        let first = Frame::from_pfn(pfn).ok_or(MmError::Overflow)?;
        self.memtypes.reserve(pfn, pages, attr)?;
        Ok(IoMapping { first, pages, attr, mapped: 0, freed: false })
    }

    /// Maps page `index` of `io` at a fixmap slot (no memtype re-check).
    ///
    /// # Errors
    /// [`MmError::BadHandle`] if `io` was freed, [`MmError::Overflow`] for an
    /// index past its end, [`MmError::WindowExhausted`] if no fixmap slot is
    /// free.
    pub fn io_mapping_map(&mut self, io: &mut IoMapping, index: u32) -> MmResult<crate::addr::VirtAddr> {
        if io.freed {
            return Err(MmError::BadHandle);
        }
        if index >= io.pages {
            return Err(MmError::Overflow);
        }
        let frame = io.first.offset(index).ok_or(MmError::Overflow)?;
        let slot = self.fixmap_alloc()?;
        match self.fixmap_map_unchecked(slot, frame, crate::pte::Prot::KernelRw, io.attr) {
            Ok(va) => {
                io.mapped += 1;
                Ok(va)
            }
            Err(e) => {
                let undone = self.fixmap_free(slot);
                debug_assert!(undone.is_ok());
                Err(e)
            }
        }
    }

    /// Unmaps a page of `io` mapped by [`Self::io_mapping_map`]. Everything
    /// is checked before anything changes.
    ///
    /// # Errors
    /// [`MmError::BadAddress`] outside the fixmap, [`MmError::BadHandle`] for
    /// a slot that is not a claimed general slot or holds no page of `io`,
    /// [`MmError::NotMapped`] if nothing is mapped there.
    pub fn io_mapping_unmap(&mut self, io: &mut IoMapping, va: crate::addr::VirtAddr) -> MmResult<()> {
        let slot = crate::layout::virt_to_fix(va).ok_or(MmError::BadAddress(va))?;
        let pte = self.fixmap_entry(slot).ok_or(MmError::NotMapped(va))?;
        if !self.fixmap_claimed(slot) || !pte.flags().contains(crate::pte::PteFlags::SPECIAL) || !io.contains(pte.frame()) || io.mapped == 0 {
            return Err(MmError::BadHandle);
        }
        // Checked above: the slot is claimed and mapped, so neither can fail.
        self.fixmap_unmap(slot)?;
        self.fixmap_free(slot)?;
        io.mapped -= 1;
        Ok(())
    }

    /// Ends the reservation. `io` can no longer map pages afterwards.
    ///
    /// # Errors
    /// [`MmError::Busy`] while pages of it are still mapped (unmap them
    /// first: the reservation is what keeps a conflicting alias out);
    /// [`MmError::BadHandle`] if it was freed already.
    pub fn io_mapping_free(&mut self, io: &mut IoMapping) -> MmResult<()> {
        if io.freed {
            return Err(MmError::BadHandle);
        }
        if io.mapped != 0 {
            return Err(MmError::Busy);
        }
        self.memtypes.release(io.first.pfn(), io.pages, io.attr)?;
        io.freed = true;
        Ok(())
    }
}

fn phys_range(phys: PhysAddr, size: usize) -> MmResult<(u32, u32)> {
    if !phys.is_page_aligned() {
        return Err(MmError::Unaligned);
    }
    let pages = crate::vmalloc::pages_for(size)?;
    let pfn = Frame::containing(phys).pfn();
    Frame::from_pfn(pfn).and_then(|f| f.offset(pages - 1)).ok_or(MmError::Overflow)?;
    Ok((pfn, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_overlaps_and_release() {
        let mut m = MemTypes::new();
        m.reserve(100, 10, CacheAttr::WriteBack).unwrap();
        m.reserve(105, 2, CacheAttr::WriteBack).unwrap(); // same attribute: fine
        let e = m.reserve(108, 4, CacheAttr::Uncached).unwrap_err();
        assert_eq!(
            e,
            MmError::AttrConflict { phys: Frame::from_pfn(108).unwrap().start(), requested: CacheAttr::Uncached, existing: CacheAttr::WriteBack }
        );
        m.reserve(110, 1, CacheAttr::Uncached).unwrap(); // adjacent, not overlapping
        assert_eq!(m.lookup(109), Some(CacheAttr::WriteBack));
        assert_eq!(m.lookup(110), Some(CacheAttr::Uncached));
        assert_eq!(m.release(100, 9, CacheAttr::WriteBack), Err(MmError::BadHandle));
        m.release(100, 10, CacheAttr::WriteBack).unwrap();
        assert_eq!(m.lookup(104), None);
        assert_eq!(m.lookup(106), Some(CacheAttr::WriteBack));
        assert_eq!(m.len(), 2);
    }
}
