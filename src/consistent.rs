//! The consistent window: `dma_alloc_coherent` / `dma_free_coherent`.
//!
//! A buffer is physically contiguous and mapped uncached in P3. Before the
//! uncached mapping is returned, the frames' cached P1 alias is purged, so no
//! dirty line can later be written back over what the device wrote.

use crate::addr::{PhysAddr, VirtAddr};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::manager::MemoryManager;
use crate::pte::{CacheAttr, Prot, PteFlags};
use crate::vmalloc::{page_of, pages_for};

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

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Allocates a zeroed, physically contiguous buffer of `size` bytes
    /// (rounded up to pages), mapped uncached in the consistent window.
    pub fn dma_alloc_coherent(&mut self, size: usize) -> MmResult<DmaBuffer> {
        self.any_context();
        let pages = pages_for(size)?;
        let first = self.alloc.alloc(pages).ok_or(MmError::OutOfFrames)?;
        if let Err(e) = self.memtypes.reserve(first.pfn(), pages, CacheAttr::Uncached) {
            self.alloc.free(first, pages);
            return Err(e);
        }
        let area = match self.consistent.alloc(pages, (first, pages)) {
            Ok(a) => a,
            Err(e) => {
                let _ = self.memtypes.release(first.pfn(), pages, CacheAttr::Uncached);
                self.alloc.free(first, pages);
                return Err(e);
            }
        };
        // No dirty line of the cached P1 alias may survive to be written
        // back over what the device writes.
        self.zero_frames_purged(first, pages);
        let start = page_of(area.start);
        if let Err(e) = self.map_kernel(start, pages, Prot::KernelRw, CacheAttr::Uncached, PteFlags::empty(), |i| {
            first.offset(i).unwrap_or(first)
        }) {
            let _ = self.consistent.free(area.start);
            let _ = self.memtypes.release(first.pfn(), pages, CacheAttr::Uncached);
            self.alloc.free(first, pages);
            return Err(e);
        }
        Ok(DmaBuffer { va: start.start(), phys: first.start(), pages })
    }

    /// Frees a buffer from [`Self::dma_alloc_coherent`]: unmap, TLB flush,
    /// then the frames and the range are released.
    pub fn dma_free_coherent(&mut self, va: VirtAddr) -> MmResult<()> {
        if let Some(queued) = self.defer_free(crate::irqlock::FreeKind::DmaFree, va) {
            return queued;
        }
        if !va.is_page_aligned() {
            return Err(MmError::Unaligned);
        }
        let key = va.as_u32() >> 12;
        let (area, &(first, pages)) = self.consistent.get(key).ok_or(MmError::BadHandle)?;
        self.unmap_kernel(page_of(area.start), area.pages, |_, _| {});
        self.consistent.free(key)?;
        let _ = self.memtypes.release(first.pfn(), pages, CacheAttr::Uncached);
        self.alloc.free(first, pages);
        Ok(())
    }

    /// Number of live DMA-coherent buffers.
    pub fn dma_buffers(&self) -> usize {
        self.consistent.live()
    }
}
