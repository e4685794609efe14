//! The vmalloc window: `vmalloc`/`vfree` (page-backed, cached) and
//! `ioremap`/`iounmap` (device or reserved memory, with a cache attribute).
//!
//! Mappings go into `swapper_pg_dir` only; address spaces pick up new
//! first-level entries lazily through `vmalloc_fault`.

use crate::addr::{Frame, Page, PhysAddr, VirtAddr, PAGE_SIZE};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::manager::MemoryManager;
use crate::pte::{CacheAttr, Prot, PteFlags};
use alloc::vec::Vec;

/// What a vmalloc-window area holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// Frames owned by the area (freed by `vfree`).
    Vmalloc,
    /// A device or reserved physical range (not owned).
    Ioremap {
        /// First physical address mapped (page aligned).
        phys: PhysAddr,
        /// Cache attribute.
        attr: CacheAttr,
    },
}

/// Pages needed for `size` bytes, with the crate's errors for 0 and overflow.
pub(crate) fn pages_for(size: usize) -> MmResult<u32> {
    if size == 0 {
        return Err(MmError::ZeroSize);
    }
    let pages = size.checked_add(PAGE_SIZE as usize - 1).ok_or(MmError::Overflow)? / PAGE_SIZE as usize;
    u32::try_from(pages).map_err(|_| MmError::Overflow)
}

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Allocates `size` bytes (rounded up to pages) of virtually contiguous,
    /// cached, zeroed kernel memory, followed by an unmapped guard page.
    /// On any failure nothing stays allocated.
    pub fn vmalloc(&mut self, size: usize) -> MmResult<VirtAddr> {
        self.task_context()?;
        let pages = pages_for(size)?;
        let area = self.vmalloc.alloc(pages, AreaKind::Vmalloc)?;
        let mut frames: Vec<Frame> = Vec::new();
        if frames.try_reserve_exact(pages as usize).is_err() {
            let _ = self.vmalloc.free(area.start);
            return Err(MmError::OutOfFrames);
        }
        let start = page_of(area.start);
        let mut result = Ok(());
        for _ in 0..pages {
            match self.alloc.alloc(1) {
                Some(f) => {
                    self.zero_frames_purged(f, 1);
                    frames.push(f);
                }
                None => {
                    result = Err(MmError::OutOfFrames);
                    break;
                }
            }
        }
        let reserved = result.is_ok() && {
            result = self.reserve_frames(frames.iter().copied(), CacheAttr::WriteBack);
            result.is_ok()
        };
        if result.is_ok() {
            result = self.map_kernel(start, pages, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::empty(), |i| {
                frames[i as usize]
            });
        }
        match result {
            Ok(()) => Ok(start.start()),
            Err(e) => {
                if reserved {
                    self.release_frames(frames.iter().copied(), CacheAttr::WriteBack);
                }
                for f in frames {
                    self.alloc.free(f, 1);
                }
                let _ = self.vmalloc.free(area.start);
                Err(e)
            }
        }
    }

    /// Frees a `vmalloc` area: unmaps it, flushes the TLB for it (before the
    /// range can be handed out again), then frees the frames and the range.
    pub fn vfree(&mut self, va: VirtAddr) -> MmResult<()> {
        if let Some(queued) = self.defer_free(crate::irqlock::FreeKind::Vfree, va) {
            return queued;
        }
        self.free_vm_area(va, true)
    }

    /// Maps `size` bytes of physical range `phys` (page aligned) into the
    /// vmalloc window with cache attribute `attr`.
    pub fn ioremap(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<VirtAddr> {
        self.task_context()?;
        if !phys.is_page_aligned() {
            return Err(MmError::Unaligned);
        }
        let pages = pages_for(size)?;
        let first = Frame::containing(phys);
        first.offset(pages - 1).ok_or(MmError::Overflow)?;
        self.memtypes.reserve(first.pfn(), pages, attr)?;
        let area = match self.vmalloc.alloc(pages, AreaKind::Ioremap { phys, attr }) {
            Ok(a) => a,
            Err(e) => {
                let _ = self.memtypes.release(first.pfn(), pages, attr);
                return Err(e);
            }
        };
        let start = page_of(area.start);
        match self
            .map_kernel(start, pages, Prot::KernelRw, attr, PteFlags::SPECIAL, |i| first.offset(i).unwrap_or(first))
        {
            Ok(()) => Ok(start.start()),
            Err(e) => {
                let _ = self.vmalloc.free(area.start);
                let _ = self.memtypes.release(first.pfn(), pages, attr);
                Err(e)
            }
        }
    }

    /// Unmaps an `ioremap` area and flushes it.
    pub fn iounmap(&mut self, va: VirtAddr) -> MmResult<()> {
        self.task_context()?;
        self.free_vm_area(va, false)
    }

    fn free_vm_area(&mut self, va: VirtAddr, vmalloc: bool) -> MmResult<()> {
        if !va.is_page_aligned() {
            return Err(MmError::Unaligned);
        }
        let key = va.as_u32() >> 12;
        let (area, &kind) = self.vmalloc.get(key).ok_or(MmError::BadHandle)?;
        if vmalloc != (kind == AreaKind::Vmalloc) {
            return Err(MmError::BadHandle);
        }
        if let AreaKind::Ioremap { phys, attr } = kind {
            let _ = self.memtypes.release(Frame::containing(phys).pfn(), area.pages, attr);
        }
        let mut owned: Vec<Frame> = Vec::new();
        if vmalloc {
            // One allocation instead of a growing vector's copies. If it
            // fails, pushing grows the vector as before.
            let _ = owned.try_reserve_exact(area.pages as usize);
        }
        self.unmap_kernel(page_of(area.start), area.pages, |_, pte| {
            if !pte.flags().contains(PteFlags::SPECIAL) {
                owned.push(pte.frame());
            }
        });
        for f in owned {
            let _ = self.memtypes.release(f.pfn(), 1, CacheAttr::WriteBack);
            self.alloc.free(f, 1);
        }
        self.vmalloc.free(key).map(|_| ())
    }

    /// The vmalloc/ioremap area containing `va`: (start, pages, kind).
    pub fn vm_area(&self, va: VirtAddr) -> Option<(VirtAddr, u32, AreaKind)> {
        self.vmalloc.find(va.as_u32() >> 12).map(|(a, k)| (page_of(a.start).start(), a.pages, *k))
    }

    /// Number of live vmalloc/ioremap areas.
    pub fn vm_areas(&self) -> usize {
        self.vmalloc.live()
    }
}

pub(crate) fn page_of(page_number: u32) -> Page {
    Page::containing(VirtAddr::new(page_number << 12))
}
