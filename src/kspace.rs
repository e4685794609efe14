//! Kernel space: `swapper_pg_dir` and the three P3 windows mapped in it.
//!
//! [`KernelTable`] owns the reference kernel table and the two primitives
//! every window maps with: map pages into it, and unmap them (purge their
//! cache lines while still mapped, clear the PTEs, flush the TLB). The
//! windows (`vmalloc.rs`, `consistent.rs`, `fixmap.rs`) each own their range
//! bookkeeping privately; [`KernelSpace`] holds the table and the windows and
//! is what the [`crate::MemoryManager`] façade calls.
//!
//! Kernel mappings go into `swapper_pg_dir` only; address spaces copy its P3
//! first-level entries when created and pick up later ones lazily through
//! `vmalloc_fault`. PTE pages of P3 are therefore never freed: any mm may
//! hold a copy of the first-level entry that points at them.

use crate::addr::{Frame, FrameRange, PageRange, PhysAddr, VirtAddr};
use crate::consistent::{ConsistentWindow, DmaBuffer};
use crate::error::{MmError, MmResult};
use crate::fixmap::Fixmap;
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::MmuHw;
use crate::layout::FIXMAP_START;
use crate::manager::Platform;
use crate::memtype::{IoMapping, MemTypes};
use crate::pgtable::{PageTable, KERNEL_PGDS};
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::vmalloc::{AreaKind, VmallocWindow};

/// `swapper_pg_dir`, the reference kernel table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelTable {
    swapper: Frame,
}

impl KernelTable {
    /// Allocates and clears `swapper_pg_dir` and the fixmap's PTE page.
    ///
    /// The fixmap's PTE page exists from the start, so that mapping a
    /// fixmap slot never allocates: the cache purges that unmapping needs
    /// (coherent.rs) then cannot fail halfway through a teardown.
    pub(crate) fn new<M: PhysAccess, A: FrameAllocator>(mem: &M, alloc: &mut A) -> MmResult<Self> {
        let mut undo = Undo::new();
        let r = (|| {
            let swapper = alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
            undo.push(Step::Frames(FrameRange::one(swapper)));
            let fix_table = alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
            Ok((swapper, fix_table))
        })();
        let (swapper, fix_table) = undo.finish(r, |step| match step {
            Step::Frames(f) => {
                alloc.free(f.first(), f.frames());
                Ok(())
            }
            other => not_recorded_here(other),
        })?;
        mem.zero_frame(swapper);
        mem.zero_frame(fix_table);
        let linked =
            PageTable::view(mem, swapper).set_pgd_raw(FIXMAP_START as usize >> 22, fix_table.start().to_p1().as_u32());
        debug_assert!(linked.is_ok(), "the fixmap's first-level index lies inside the table");
        if let Ok(p) = linked {
            // SAFETY: translation is not on yet and the table is new.
            unsafe { p.discard() };
        }
        Ok(KernelTable { swapper })
    }

    /// The frame of `swapper_pg_dir`.
    pub(crate) fn swapper(&self) -> Frame {
        self.swapper
    }

    /// The table, through `mem`.
    pub(crate) fn view<'m, M: PhysAccess>(&self, mem: &'m M) -> PageTable<'m, M> {
        PageTable::view(mem, self.swapper)
    }

    /// Maps `pages` (shared, dirty, accessed; `extra` added), page `i` to
    /// `frame_of(i)`. All or nothing (see [`PageTable::map`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map<M: PhysAccess>(
        &self,
        mem: &M,
        alloc: &mut dyn FrameAllocator,
        pages: PageRange,
        prot: Prot,
        attr: CacheAttr,
        extra: PteFlags,
        mut frame_of: impl FnMut(u32) -> Frame,
    ) -> MmResult<()> {
        let flags = extra | PteFlags::SH | PteFlags::D | PteFlags::ACCESSED;
        self.view(mem).map(alloc, pages.first(), pages.pages(), |i| Pte::new(frame_of(i), prot, attr, flags))
    }

    /// Unmaps `pages`, reporting each present PTE to `on_unmap`; returns how
    /// many were present. Their cache lines are purged first, through their
    /// own addresses while still mapped (coherent.rs says why), and the TLB
    /// is flushed before this returns.
    pub(crate) fn unmap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        p: &Platform<H, M, A>,
        pages: PageRange,
        on_unmap: impl FnMut(crate::addr::Page, Pte),
    ) -> u32 {
        self.purge_kernel_range(p, pages);
        let (n, pending) = self.view(&p.mem).unmap(pages.first(), pages.pages(), on_unmap);
        // Kernel pages are shared (SH=1): any ASID finds them.
        pending.for_asid(0).flush(&p.hw);
        n
    }

    /// Number of PTE pages in the table's P3 part.
    pub(crate) fn pte_pages<M: PhysAccess>(&self, mem: &M) -> usize {
        self.view(mem).count_tables(KERNEL_PGDS)
    }
}

/// Kernel space: the reference table and the three windows.
pub(crate) struct KernelSpace {
    table: KernelTable,
    vmalloc: VmallocWindow,
    consistent: ConsistentWindow,
    fixmap: Fixmap,
}

impl KernelSpace {
    /// Kernel space with `swapper_pg_dir` allocated (see [`KernelTable::new`])
    /// and empty windows.
    pub(crate) fn new<M: PhysAccess, A: FrameAllocator>(mem: &M, alloc: &mut A) -> MmResult<Self> {
        Ok(KernelSpace {
            table: KernelTable::new(mem, alloc)?,
            vmalloc: VmallocWindow::new(),
            consistent: ConsistentWindow::new(),
            fixmap: Fixmap::new(),
        })
    }

    /// The reference table.
    pub(crate) fn table(&self) -> &KernelTable {
        &self.table
    }

    /// See [`crate::MemoryManager::vmalloc`].
    pub(crate) fn vmalloc<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        size: usize,
    ) -> MmResult<VirtAddr> {
        self.vmalloc.vmalloc(&self.table, p, memtypes, size)
    }

    /// See [`crate::MemoryManager::ioremap`].
    pub(crate) fn ioremap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        phys: PhysAddr,
        size: usize,
        attr: CacheAttr,
    ) -> MmResult<VirtAddr> {
        self.vmalloc.ioremap(&self.table, p, memtypes, phys, size, attr)
    }

    /// Frees a vmalloc (`vmalloc == true`) or ioremap area.
    pub(crate) fn free_vm_area<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        va: VirtAddr,
        vmalloc: bool,
    ) -> MmResult<()> {
        self.vmalloc.free(&self.table, p, memtypes, va, vmalloc)
    }

    /// The vmalloc-window area containing `va`: (start, pages, kind).
    pub(crate) fn vm_area(&self, va: VirtAddr) -> Option<(VirtAddr, u32, AreaKind)> {
        self.vmalloc.area(va)
    }

    /// Live vmalloc/ioremap areas.
    pub(crate) fn vm_areas(&self) -> usize {
        self.vmalloc.live()
    }

    /// Whether `va` starts a live vmalloc (not ioremap) area.
    pub(crate) fn is_vmalloc_area(&self, va: VirtAddr) -> bool {
        self.vmalloc.is_vmalloc_start(va)
    }

    /// See [`crate::MemoryManager::dma_alloc_coherent`].
    pub(crate) fn dma_alloc<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        size: usize,
    ) -> MmResult<DmaBuffer> {
        self.consistent.alloc(&self.table, p, memtypes, size)
    }

    /// See [`crate::MemoryManager::dma_free_coherent`].
    pub(crate) fn dma_free<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        va: VirtAddr,
    ) -> MmResult<()> {
        self.consistent.free(&self.table, p, memtypes, va)
    }

    /// Whether `va` starts a live DMA-coherent buffer.
    pub(crate) fn is_dma_buffer(&self, va: VirtAddr) -> bool {
        self.consistent.is_start(va)
    }

    /// Live DMA-coherent buffers.
    pub(crate) fn dma_buffers(&self) -> usize {
        self.consistent.live()
    }

    /// The fixmap with the table it maps into, for the operations that
    /// change it.
    pub(crate) fn fixmap_mut(&mut self) -> (&mut Fixmap, &KernelTable) {
        (&mut self.fixmap, &self.table)
    }

    /// See [`crate::MemoryManager::io_mapping_map`].
    pub(crate) fn io_mapping_map<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        io: &mut IoMapping,
        index: u32,
    ) -> MmResult<VirtAddr> {
        self.fixmap.io_mapping_map(&self.table, p, io, index)
    }
}
