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

use crate::addr::{Frame, VirtAddr, PAGE_SIZE};
use crate::error::MmResult;
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{CacheOp, MmuHw};
use crate::layout::{kmap_coherent_slot, CACHE_COLOURS};
use crate::manager::MemoryManager;
use crate::mutation::{self, Mutation};
use crate::pte::{CacheAttr, Prot};

/// Which of the two slots of a colour.
const SRC: u32 = 0;
const DST: u32 = 1;

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// The kmap_coherent slot used for `user_va` (bank 0: source, 1: destination).
    pub fn kmap_coherent_slot_for(&self, user_va: VirtAddr, bank: u32) -> u32 {
        let mut colour = user_va.colour();
        if mutation::enabled(Mutation::KmapIgnoresColour) {
            colour = (colour + 1) % CACHE_COLOURS;
        }
        kmap_coherent_slot(colour, bank)
    }

    fn kmap_coherent(&mut self, frame: Frame, user_va: VirtAddr, bank: u32) -> MmResult<(u32, VirtAddr)> {
        let slot = self.kmap_coherent_slot_for(user_va, bank);
        let va = self.fixmap_map(slot, frame, Prot::KernelRw, CacheAttr::WriteBack)?;
        Ok((slot, va))
    }

    fn kunmap_coherent(&mut self, slot: u32, va: VirtAddr) {
        self.hw.cache_op(CacheOp::Purge, va.as_u32(), PAGE_SIZE);
        let _ = self.fixmap_unmap(slot);
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
                    self.kunmap_coherent(s_slot, s_va);
                    return Err(e);
                }
            };
            // SAFETY: both slots were just mapped (and their TLB entries
            // preloaded) to distinct frames; interrupts are masked.
            unsafe { self.hw.copy_page(d_va.as_u32(), s_va.as_u32()) };
            self.kunmap_coherent(d_slot, d_va);
            self.kunmap_coherent(s_slot, s_va);
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
            self.kunmap_coherent(slot, va);
            Ok(())
        })();
        self.hw.irq_restore(saved);
        r
    }
}
