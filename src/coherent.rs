//! Colour-correct access to user pages: `kmap_coherent`, `copy_user_page`,
//! `clear_user_page`.
//!
//! The operand cache is indexed by virtual address bits 13:5, so data a user
//! wrote through its mapping sits in lines of that mapping's colour (VA\[13:12\]).
//! The kernel therefore reads and writes user pages through a fixmap slot of
//! the *same* colour as the user address: it then hits exactly those lines.
//! Interrupts are masked while a slot is in use (an interrupt handler could
//! otherwise reuse it); on unmap the slot's lines are purged (written back and
//! invalidated) and its TLB entry flushed.

use crate::addr::{Frame, FrameRange, Page, PageRange, VirtAddr, PAGE_SIZE};
use crate::error::{MmError, MmResult};
use crate::fixmap::Fixmap;
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{CacheOp, IrqGuard, MmuHw};
use crate::kspace::KernelTable;
use crate::layout::{fix_to_virt, kmap_coherent_slot, CACHE_COLOURS};
use crate::manager::Platform;
use crate::memtype::MemTypes;
use crate::mutation::{self, Mutation};
use crate::pgtable::PageTable;
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::tlb;

/// Which of the two slots of a colour.
const SRC: u32 = 0;
const DST: u32 = 1;

/// The kmap_coherent slot used for `user_va` (bank 0: source, 1:
/// destination).
///
/// # Errors
/// [`MmError::Overflow`] for a bank other than 0 or 1.
pub(crate) fn kmap_coherent_slot_for(user_va: VirtAddr, bank: u32) -> MmResult<u32> {
    let mut colour = user_va.colour();
    if mutation::enabled(Mutation::KmapIgnoresColour) {
        colour = (colour + 1) % CACHE_COLOURS;
    }
    kmap_coherent_slot(colour, bank).ok_or(MmError::Overflow)
}

/// The fixmap, the table it maps into and the memtypes it accounts in:
/// what kmap_coherent needs.
pub(crate) struct Kmap<'k> {
    /// The fixmap (kmap_coherent slots are never claimed, only mapped).
    fixmap: &'k Fixmap,
    /// `swapper_pg_dir`.
    table: &'k KernelTable,
    /// The memtypes.
    memtypes: &'k mut MemTypes,
}

impl<'k> Kmap<'k> {
    /// Borrows what kmap_coherent needs.
    pub(crate) fn new(fixmap: &'k Fixmap, table: &'k KernelTable, memtypes: &'k mut MemTypes) -> Self {
        Kmap { fixmap, table, memtypes }
    }

    fn map<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        frame: Frame,
        user_va: VirtAddr,
        bank: u32,
    ) -> MmResult<(u32, VirtAddr)> {
        let slot = kmap_coherent_slot_for(user_va, bank)?;
        let va = self.fixmap.map(self.table, p, self.memtypes, slot, frame, Prot::KernelRw, CacheAttr::WriteBack)?;
        Ok((slot, va))
    }

    /// Unmaps a kmap_coherent slot (`Fixmap::unmap` purges its lines and
    /// flushes its TLB entry).
    fn unmap<H: MmuHw, M: PhysAccess, A: FrameAllocator>(&mut self, p: &Platform<H, M, A>, slot: u32) {
        let r = Fixmap::unmap(self.table, p, self.memtypes, slot);
        debug_assert!(r.is_ok(), "kmap_coherent slot {slot} was mapped by this call: {r:?}");
    }

    /// Copies user page `src` to `dst` (copy-on-write, fork) for a page that
    /// will live at `user_va`: both are mapped at slots congruent with
    /// `user_va`, so dirty lines the user left in the cache are read, and the
    /// copy is written back before the slots go away. `dst`'s own P1 alias is
    /// purged first, so no stale kernel line can later overwrite the copy.
    pub(crate) fn copy_user_page<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        dst: Frame,
        src: Frame,
        user_va: VirtAddr,
    ) -> MmResult<()> {
        p.hw.cache_op(CacheOp::Purge, dst.start().to_p1().as_u32(), PAGE_SIZE);
        let _irq = IrqGuard::new(&p.hw);
        let mut undo = Undo::new();
        let r = (|| {
            let (s_slot, s_va) = self.map(p, src, user_va, SRC)?;
            undo.push(Step::FixmapMapping(s_slot));
            let (d_slot, d_va) = self.map(p, dst, user_va, DST)?;
            // SAFETY: both slots were just mapped (and their TLB entries
            // preloaded) to distinct frames; interrupts are masked.
            unsafe { p.hw.copy_page(d_va.as_u32(), s_va.as_u32()) };
            self.unmap(p, d_slot);
            Ok(s_slot)
        })();
        let r = undo.finish(r, |step| match step {
            Step::FixmapMapping(slot) => Fixmap::unmap(self.table, p, self.memtypes, slot).map(drop),
            other => not_recorded_here(other),
        });
        if let Ok(s_slot) = r {
            self.unmap(p, s_slot);
        }
        r.map(drop)
    }

    /// Zeroes user page `dst` that will live at `user_va`, through a slot
    /// congruent with `user_va` (and purges `dst`'s P1 alias first).
    pub(crate) fn clear_user_page<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        dst: Frame,
        user_va: VirtAddr,
    ) -> MmResult<()> {
        p.hw.cache_op(CacheOp::Purge, dst.start().to_p1().as_u32(), PAGE_SIZE);
        let _irq = IrqGuard::new(&p.hw);
        let (slot, va) = self.map(p, dst, user_va, DST)?;
        // SAFETY: the slot was just mapped writable; interrupts are masked.
        unsafe { p.hw.clear_page(va.as_u32()) };
        self.unmap(p, slot);
        Ok(())
    }
}

impl KernelTable {
    /// Writes back and invalidates every operand-cache line of the cached
    /// kernel pages in `pages` (kernel mappings live in `swapper_pg_dir`),
    /// through their own addresses, while they are still mapped. Called
    /// before a kernel range is unmapped: its frames are about to be freed,
    /// and a dirty line evicted later would overwrite the next owner's data
    /// (a DMA buffer, another process's page), while a clean one would hand
    /// stale data to the next mapping of the same colour. Linux/SH does the
    /// same in `flush_cache_vunmap`.
    pub(crate) fn purge_kernel_range<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        p: &Platform<H, M, A>,
        pages: PageRange,
    ) {
        // The current run of cached pages: first va and length (0: none).
        // Two plain words, not an Option of a pair: the SH-4 build copies
        // such an aggregate with an out-of-line memcpy on every page.
        let (mut run_va, mut run_len) = (0u32, 0u32);
        let hw = &p.hw;
        self.view(&p.mem).for_each_present(pages.first(), pages.pages(), |page, pte| {
            if pte.cache_attr() == CacheAttr::Uncached {
                return;
            }
            let va = page.start().as_u32();
            if run_len != 0 && run_va.wrapping_add(run_len * PAGE_SIZE) == va {
                run_len += 1;
                return;
            }
            if run_len != 0 {
                hw.cache_op(CacheOp::Purge, run_va, run_len * PAGE_SIZE);
            }
            (run_va, run_len) = (va, 1);
        });
        if run_len != 0 {
            hw.cache_op(CacheOp::Purge, run_va, run_len * PAGE_SIZE);
        }
    }

    /// [`Self::purge_kernel_range`] for user pages of address space `pgd`,
    /// which need not be the running one: each cached frame is purged through
    /// a kmap_coherent slot of its user address's colour, which indexes
    /// exactly the cache lines the user mapping filled (the cache is indexed
    /// by VA\[13:5\] and tagged by the physical address). Linux/SH's
    /// `flush_cache_page` uses kmap_coherent for another mm's page the same way.
    pub(crate) fn purge_user_range<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        p: &Platform<H, M, A>,
        pgd: Frame,
        pages: PageRange,
    ) {
        PageTable::view(&p.mem, pgd).for_each_present(pages.first(), pages.pages(), |page, pte| {
            if pte.cache_attr() != CacheAttr::Uncached {
                self.purge_frame_at_colour(p, pte.frame(), page.start().colour());
            }
        });
    }

    /// Purges `frame`'s lines of cache colour `colour` through the
    /// destination kmap_coherent slot of that colour. Never allocates (the
    /// fixmap's PTE page exists from `MemoryManager::new` on) and runs with
    /// interrupts masked, so the slot is free: its only other users,
    /// `copy_user_page`/`clear_user_page`, hold it only with interrupts masked
    /// inside one call.
    fn purge_frame_at_colour<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &self,
        p: &Platform<H, M, A>,
        frame: Frame,
        colour: u32,
    ) {
        let Some(va) = kmap_coherent_slot(colour, DST).and_then(fix_to_virt) else { return };
        let page = Page::containing(va);
        let table = self.view(&p.mem);
        let _irq = IrqGuard::new(&p.hw);
        debug_assert!(table.get(va).is_some_and(|p| !p.is_present()), "kmap slot busy or fixmap table missing");
        let pte =
            Pte::new(frame, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::SH | PteFlags::D | PteFlags::ACCESSED);
        let Ok(mapped) = table.set(va, pte) else { return };
        // SAFETY: `tlb::load` invalidates the page before it loads it.
        unsafe { mapped.discard() };
        tlb::load(&p.hw, page, pte);
        p.hw.cache_op(CacheOp::Purge, va.as_u32(), PAGE_SIZE);
        if let Ok(unmapped) = table.set(va, Pte::NONE) {
            unmapped.for_asid(0).flush(&p.hw);
        }
    }
}

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> Platform<H, M, A> {
    /// Zeroes `frames` through P1 with no line of their P1 alias left in the
    /// cache: purged before (a stale dirty line written back later would
    /// undo the zeros) and after (the frames are about to be mapped at
    /// another colour, or uncached).
    pub(crate) fn zero_frames_purged(&self, frames: FrameRange) {
        if self.mem.zero_frame_purged(frames.first()) {
            // The accessor zeroes through the same P1 address and purges
            // each line right after: a stale line is overwritten before it
            // is written back (see boot/mmu.S), so no purge is needed here.
            for f in frames.iter().skip(1) {
                self.mem.zero_frame_purged(f);
            }
            return;
        }
        let p1 = frames.first().start().to_p1().as_u32();
        let bytes = frames.frames() * PAGE_SIZE;
        // Kept although every unmap purges its lines: P1 is no mapping that
        // is ever torn down, so the OS may hand in a frame with dirty P1
        // lines of its own. On the target the zeroing below overwrites such
        // lines in full through the same P1 address, but `zero_frame` need
        // not write through the cache (the host model's writes memory
        // directly), and then the purge after zeroing would write the stale
        // lines back over the zeros (tests/cache.rs:
        // vmalloc_memory_reads_zero_through_its_own_colour and
        // dma_alloc_coherent_purges_the_cached_alias fail without it).
        self.hw.cache_op(CacheOp::Purge, p1, bytes);
        for f in frames.iter() {
            self.mem.zero_frame(f);
        }
        self.hw.cache_op(CacheOp::Purge, p1, bytes);
    }
}
