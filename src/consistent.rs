//! The consistent window: `dma_alloc_coherent` / `dma_free_coherent`.
//!
//! A buffer is physically contiguous and mapped uncached in P3. Before the
//! uncached mapping is returned, the frames' cached P1 alias is purged, so no
//! dirty line can later be written back over what the device wrote.
//! `ConsistentWindow` owns the window's areas and the frames behind each.

use crate::addr::{FrameRange, PhysAddr, VirtAddr};
use crate::error::{Handle, MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::kspace::KernelTable;
use crate::layout::{CONSISTENT_END, CONSISTENT_START};
use crate::manager::Platform;
use crate::memtype::MemTypes;
use crate::pte::{CacheAttr, Prot, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::vmalloc::area_pages;
use crate::window::RangeAllocator;

/// A DMA-coherent buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuffer {
    /// Uncached kernel address (consistent window).
    pub va: VirtAddr,
    /// Bus/physical address for the device.
    pub phys: PhysAddr,
    /// Size in pages.
    pub pages: u32,
}

/// The consistent window's areas, each with the frames it maps.
pub(crate) struct ConsistentWindow {
    areas: RangeAllocator<FrameRange>,
}

impl ConsistentWindow {
    /// An empty window.
    pub(crate) fn new() -> Self {
        ConsistentWindow { areas: RangeAllocator::new(CONSISTENT_START >> 12, CONSISTENT_END >> 12, 1) }
    }

    /// A zeroed, physically contiguous buffer of `size` bytes (rounded up
    /// to pages), mapped uncached; on any failure nothing stays allocated.
    pub(crate) fn alloc<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        size: usize,
    ) -> MmResult<DmaBuffer> {
        let pages = crate::addr::pages_for(size)?;
        let mut undo = Undo::new();
        let r = (|| {
            let first = p.alloc.alloc(pages).ok_or(MmError::OutOfFrames)?;
            let frames = FrameRange::new(first, pages).inspect_err(|_| {
                // Frames the allocator handed out lie in RAM: this is an
                // allocator bug, and the block still goes back to it.
                debug_assert!(false, "the allocator handed out {pages} frames from {first:?}");
                p.alloc.free(first, pages);
            })?;
            undo.push(Step::Frames(frames));
            memtypes.reserve_range(frames, CacheAttr::Uncached)?;
            undo.push(Step::Memtype(frames, CacheAttr::Uncached));
            let area = self.areas.alloc(pages, frames)?;
            undo.push(Step::ConsistentArea(area.start));
            // No dirty line of the cached P1 alias may survive to be written
            // back over what the device writes.
            p.zero_frames_purged(frames);
            let range = area_pages(area)?;
            table.map(&p.mem, &mut p.alloc, range, Prot::KernelRw, CacheAttr::Uncached, PteFlags::empty(), |i| {
                frames.get(i).unwrap_or(first)
            })?;
            Ok(DmaBuffer { va: range.first().start(), phys: first.start(), pages })
        })();
        undo.finish(r, |step| match step {
            Step::Frames(frames) => {
                p.alloc.free(frames.first(), frames.frames());
                Ok(())
            }
            Step::Memtype(frames, attr) => memtypes.release_range(frames, attr),
            Step::ConsistentArea(start) => self.areas.free(start).map(drop),
            other => not_recorded_here(other),
        })
    }

    /// Frees the buffer at `va`: unmap, TLB flush, then the frames and the
    /// range are released.
    pub(crate) fn free<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        va: VirtAddr,
    ) -> MmResult<()> {
        if !va.is_page_aligned() {
            return Err(MmError::Unaligned);
        }
        let key = va.as_u32() >> 12;
        let (area, &frames) = self.areas.get(key).ok_or(MmError::BadHandle(Handle::Area(va)))?;
        table.unmap(p, area_pages(area)?, |_, _| {});
        self.areas.free(key)?;
        let r = memtypes.release_range(frames, CacheAttr::Uncached);
        debug_assert!(r.is_ok(), "a DMA buffer holds its reservation: {r:?}");
        p.alloc.free(frames.first(), frames.frames());
        Ok(())
    }

    /// Whether a live buffer starts at `va`.
    pub(crate) fn is_start(&self, va: VirtAddr) -> bool {
        va.is_page_aligned() && self.areas.get(va.as_u32() >> 12).is_some()
    }

    /// Number of live buffers.
    pub(crate) fn live(&self) -> usize {
        self.areas.live()
    }
}
