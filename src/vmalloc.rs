//! The vmalloc window: `vmalloc`/`vfree` (page-backed, cached) and
//! `ioremap`/`iounmap` (device or reserved memory, with a cache attribute).
//!
//! `VmallocWindow` owns the window's areas; the mappings go into
//! `swapper_pg_dir` only (`KernelTable`), and address spaces pick up new
//! first-level entries lazily through `vmalloc_fault`.

use crate::addr::{Frame, FrameRange, Page, PageRange, PhysAddr, VirtAddr};
use crate::error::{Handle, MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::kspace::KernelTable;
use crate::layout::{VMALLOC_END, VMALLOC_START};
use crate::manager::Platform;
use crate::memtype::MemTypes;
use crate::pte::{CacheAttr, Prot, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::window::{Area, RangeAllocator};
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

/// The vmalloc window's areas (one guard page after each).
pub(crate) struct VmallocWindow {
    areas: RangeAllocator<AreaKind>,
}

impl VmallocWindow {
    /// An empty window.
    pub(crate) fn new() -> Self {
        VmallocWindow { areas: RangeAllocator::new(VMALLOC_START >> 12, VMALLOC_END >> 12, 1) }
    }

    /// `size` bytes (rounded up to pages) of virtually contiguous, cached,
    /// zeroed kernel memory; on any failure nothing stays allocated.
    pub(crate) fn vmalloc<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        size: usize,
    ) -> MmResult<VirtAddr> {
        let pages = crate::addr::pages_for(size)?;
        // The frames come one at a time (they need not be contiguous): the
        // list is the record the undo steps `FrameList`/`FrameListMemtypes`
        // refer to.
        let mut frames: Vec<Frame> = Vec::new();
        let mut undo = Undo::new();
        let r = (|| {
            let area = self.areas.alloc(pages, AreaKind::Vmalloc)?;
            undo.push(Step::VmallocArea(area.start));
            frames.try_reserve_exact(pages as usize).map_err(|_| MmError::OutOfMemory)?;
            let alloc_all: MmResult<()> = (0..pages).try_for_each(|_| {
                let f = p.alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
                p.zero_frames_purged(FrameRange::one(f));
                frames.push(f);
                Ok(())
            });
            undo.push(Step::FrameList);
            alloc_all?;
            memtypes.reserve_each(frames.iter().copied(), CacheAttr::WriteBack)?;
            undo.push(Step::FrameListMemtypes(CacheAttr::WriteBack));
            let range = area_pages(area)?;
            table.map(&p.mem, &mut p.alloc, range, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::empty(), |i| {
                frames[i as usize]
            })?;
            Ok(range.first().start())
        })();
        undo.finish(r, |step| match step {
            Step::VmallocArea(start) => self.areas.free(start).map(drop),
            Step::FrameList => {
                frames.iter().for_each(|&f| p.alloc.free(f, 1));
                Ok(())
            }
            Step::FrameListMemtypes(attr) => memtypes.release_each(frames.iter().copied(), attr),
            other => not_recorded_here(other),
        })
    }

    /// Maps `size` bytes of physical range `phys` (page aligned) with
    /// cache attribute `attr`; on any failure nothing stays reserved.
    pub(crate) fn ioremap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        phys: PhysAddr,
        size: usize,
        attr: CacheAttr,
    ) -> MmResult<VirtAddr> {
        let frames = FrameRange::covering(phys, size)?;
        let mut undo = Undo::new();
        let r = (|| {
            memtypes.reserve_range(frames, attr)?;
            undo.push(Step::Memtype(frames, attr));
            let area = self.areas.alloc(frames.frames(), AreaKind::Ioremap { phys, attr })?;
            undo.push(Step::VmallocArea(area.start));
            let range = area_pages(area)?;
            table.map(&p.mem, &mut p.alloc, range, Prot::KernelRw, attr, PteFlags::SPECIAL, |i| {
                frames.get(i).unwrap_or(frames.first())
            })?;
            Ok(range.first().start())
        })();
        undo.finish(r, |step| match step {
            Step::Memtype(frames, attr) => memtypes.release_range(frames, attr),
            Step::VmallocArea(start) => self.areas.free(start).map(drop),
            other => not_recorded_here(other),
        })
    }

    /// Frees the area starting at `va`: a vmalloc area (`vmalloc`) or an
    /// ioremap one. It is unmapped and flushed before its frames and its
    /// range can be handed out again.
    pub(crate) fn free<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        table: &KernelTable,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        va: VirtAddr,
        vmalloc: bool,
    ) -> MmResult<()> {
        if !va.is_page_aligned() {
            return Err(MmError::Unaligned);
        }
        let key = va.as_u32() >> 12;
        let bad = || MmError::BadHandle(Handle::Area(va));
        let (area, &kind) = self.areas.get(key).ok_or_else(bad)?;
        if vmalloc != (kind == AreaKind::Vmalloc) {
            return Err(bad());
        }
        let range = area_pages(area)?;
        if let AreaKind::Ioremap { phys, attr } = kind {
            let frames = FrameRange::new(Frame::containing(phys), area.pages)?;
            let r = memtypes.release_range(frames, attr);
            debug_assert!(r.is_ok(), "an ioremap area holds its reservation: {r:?}");
        }
        let mut owned: Vec<Frame> = Vec::new();
        if vmalloc {
            // One allocation instead of a growing vector's copies. If it
            // fails, pushing grows the vector as before.
            let _ = owned.try_reserve_exact(area.pages as usize);
        }
        table.unmap(p, range, |_, pte| {
            if !pte.flags().contains(PteFlags::SPECIAL) {
                owned.push(pte.frame());
            }
        });
        for f in owned {
            let r = memtypes.release(f.pfn(), 1, CacheAttr::WriteBack);
            debug_assert!(r.is_ok(), "a vmalloc page holds its reservation: {r:?}");
            p.alloc.free(f, 1);
        }
        self.areas.free(key).map(drop)
    }

    /// The area containing `va`: (start, pages, kind).
    pub(crate) fn area(&self, va: VirtAddr) -> Option<(VirtAddr, u32, AreaKind)> {
        self.areas.find(va.as_u32() >> 12).map(|(a, k)| (page_of(a.start).start(), a.pages, *k))
    }

    /// Whether a live vmalloc (not ioremap) area starts at `va`.
    pub(crate) fn is_vmalloc_start(&self, va: VirtAddr) -> bool {
        va.is_page_aligned() && matches!(self.areas.get(va.as_u32() >> 12), Some((_, AreaKind::Vmalloc)))
    }

    /// Number of live areas.
    pub(crate) fn live(&self) -> usize {
        self.areas.live()
    }
}

/// The page with page number `page_number`.
pub(crate) fn page_of(page_number: u32) -> Page {
    Page::containing(VirtAddr::new(page_number << 12))
}

/// The pages of a window area.
pub(crate) fn area_pages(area: Area) -> MmResult<PageRange> {
    PageRange::new(page_of(area.start), area.pages)
}
