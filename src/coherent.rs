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

use crate::addr::{Frame, Page, VirtAddr, PAGE_SIZE};
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{CacheOp, IrqGuard, MmuHw};
use crate::layout::{fix_to_virt, kmap_coherent_slot, CACHE_COLOURS};
use crate::manager::MemoryManager;
use crate::mutation::{self, Mutation};
use crate::pgtable::PageTable;
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::tlb;

/// Which of the two slots of a colour.
const SRC: u32 = 0;
const DST: u32 = 1;

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// The kmap_coherent slot used for `user_va` (bank 0: source, 1: destination).
    ///
    /// # Errors
    /// [`MmError::Overflow`] for a bank other than 0 or 1.
    pub fn kmap_coherent_slot_for(&self, user_va: VirtAddr, bank: u32) -> MmResult<u32> {
        let mut colour = user_va.colour();
        if mutation::enabled(Mutation::KmapIgnoresColour) {
            colour = (colour + 1) % CACHE_COLOURS;
        }
        kmap_coherent_slot(colour, bank).ok_or(MmError::Overflow)
    }

    fn kmap_coherent(&mut self, frame: Frame, user_va: VirtAddr, bank: u32) -> MmResult<(u32, VirtAddr)> {
        let slot = self.kmap_coherent_slot_for(user_va, bank)?;
        let va = self.fixmap_map(slot, frame, Prot::KernelRw, CacheAttr::WriteBack)?;
        Ok((slot, va))
    }

    /// Unmaps a kmap_coherent slot (`fixmap_unmap` purges its lines and
    /// flushes its TLB entry).
    fn kunmap_coherent(&mut self, slot: u32) {
        let r = self.fixmap_unmap(slot);
        debug_assert!(r.is_ok(), "kmap_coherent slot {slot} was mapped by this call: {r:?}");
    }

    /// Writes back and invalidates every operand-cache line of the cached
    /// kernel pages in `count` pages from `start` (kernel mappings live in
    /// `swapper_pg_dir`), through their own addresses, while they are still
    /// mapped. Called before a kernel range is unmapped: its frames are about
    /// to be freed, and a dirty line evicted later would overwrite the next
    /// owner's data (a DMA buffer, another process's page), while a clean
    /// one would hand stale data to the next mapping of the same colour.
    /// Linux/SH does the same in `flush_cache_vunmap`.
    pub(crate) fn purge_kernel_range(&self, start: Page, count: u32) {
        // The current run of cached pages: first va and length (0: none).
        // Two plain words, not an Option of a pair: the SH-4 build copies
        // such an aggregate with an out-of-line memcpy on every page.
        let (mut run_va, mut run_len) = (0u32, 0u32);
        let hw = &self.hw;
        self.kernel_table().for_each_present(start, count, |page, pte| {
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
    pub(crate) fn purge_user_range(&self, pgd: Frame, start: Page, count: u32) {
        PageTable::view(&self.mem, pgd).for_each_present(start, count, |page, pte| {
            if pte.cache_attr() != CacheAttr::Uncached {
                self.purge_frame_at_colour(pte.frame(), page.start().colour());
            }
        });
    }

    /// Purges `frame`'s lines of cache colour `colour` through the
    /// destination kmap_coherent slot of that colour. Never allocates (the
    /// fixmap's PTE page exists from `MemoryManager::new` on) and runs with
    /// interrupts masked, so the slot is free: its only other users,
    /// `copy_user_page`/`clear_user_page`, hold it only with interrupts masked
    /// inside one call.
    fn purge_frame_at_colour(&self, frame: Frame, colour: u32) {
        let Some(va) = kmap_coherent_slot(colour, DST).and_then(fix_to_virt) else { return };
        let page = Page::containing(va);
        let table = self.kernel_table();
        let _irq = IrqGuard::new(&self.hw);
        debug_assert!(table.get(va).is_some_and(|p| !p.is_present()), "kmap slot busy or fixmap table missing");
        let pte =
            Pte::new(frame, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::SH | PteFlags::D | PteFlags::ACCESSED);
        let Ok(mapped) = table.set(va, pte) else { return };
        // SAFETY: `tlb::load` invalidates the page before it loads it.
        unsafe { mapped.discard() };
        tlb::load(&self.hw, page, pte);
        self.hw.cache_op(CacheOp::Purge, va.as_u32(), PAGE_SIZE);
        if let Ok(unmapped) = table.set(va, Pte::NONE) {
            unmapped.for_asid(0).flush(&self.hw);
        }
    }

    /// Copies user page `src` to `dst` (copy-on-write, fork) for a page that
    /// will live at `user_va`: both are mapped at slots congruent with
    /// `user_va`, so dirty lines the user left in the cache are read, and the
    /// copy is written back before the slots go away. `dst`'s own P1 alias is
    /// purged first, so no stale kernel line can later overwrite the copy.
    pub fn copy_user_page(&mut self, dst: Frame, src: Frame, user_va: VirtAddr) -> MmResult<()> {
        self.hw.cache_op(CacheOp::Purge, dst.start().to_p1().as_u32(), PAGE_SIZE);
        let saved = self.hw.irq_save();
        let r = (|| {
            let (s_slot, s_va) = self.kmap_coherent(src, user_va, SRC)?;
            let (d_slot, d_va) = match self.kmap_coherent(dst, user_va, DST) {
                Ok(x) => x,
                Err(e) => {
                    self.kunmap_coherent(s_slot);
                    return Err(e);
                }
            };
            // SAFETY: both slots were just mapped (and their TLB entries
            // preloaded) to distinct frames; interrupts are masked.
            unsafe { self.hw.copy_page(d_va.as_u32(), s_va.as_u32()) };
            self.kunmap_coherent(d_slot);
            self.kunmap_coherent(s_slot);
            Ok(())
        })();
        self.hw.irq_restore(saved);
        r
    }

    /// Zeroes user page `dst` that will live at `user_va`, through a slot
    /// congruent with `user_va` (and purges `dst`'s P1 alias first).
    pub fn clear_user_page(&mut self, dst: Frame, user_va: VirtAddr) -> MmResult<()> {
        self.hw.cache_op(CacheOp::Purge, dst.start().to_p1().as_u32(), PAGE_SIZE);
        let saved = self.hw.irq_save();
        let r = (|| {
            let (slot, va) = self.kmap_coherent(dst, user_va, DST)?;
            // SAFETY: the slot was just mapped writable; interrupts are masked.
            unsafe { self.hw.clear_page(va.as_u32()) };
            self.kunmap_coherent(slot);
            Ok(())
        })();
        self.hw.irq_restore(saved);
        r
    }
}
