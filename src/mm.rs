//! Address spaces (mm) and the `mm` / `active_mm` protocol.
//!
//! * A user task has `mm == Some(id)` and runs on it.
//! * A kernel thread has `mm == None`; on a switch it borrows the previous
//!   task's `active_mm` (taking a reference with `mm_grab`, so the address
//!   space — at least its first-level table — stays alive while borrowed) and
//!   releases it when it is switched out.
//! * Two counts, as in Linux: `users` (tasks sharing the address space; at 0
//!   the user mappings are torn down) and `count` (references to the
//!   structure and its first-level table; the users together hold one).
//!
//! `AddressSpaces` owns all of it privately: the slots behind the
//! generation-checked [`MmId`] handles, the ASID allocator and the active mm,
//! and the user mappings (map, unmap, protect: each flushed under the mm's
//! own ASID, which need not be the running one).

use crate::addr::{Frame, Page, PageRange, PhysAddr, Region, VirtAddr};
use crate::asid::{AsidAllocator, Assigned, NO_CONTEXT};
use crate::error::{Handle, MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{IrqGuard, MmuHw};
use crate::kspace::KernelTable;
use crate::manager::Platform;
use crate::memtype::MemTypes;
use crate::mutation::{self, Mutation};
use crate::pgtable::{PageTable, ENTRIES, KERNEL_PGDS, USER_PGDS};
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::rollback::{not_recorded_here, Step, Undo};
use crate::tlb::{self, PendingFlush};
use alloc::vec::Vec;

/// Handle of an address space. Stale handles (of a freed mm) are detected
/// and rejected with [`crate::MmError::BadHandle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl MmId {
    /// The handle as one integer (for C callers): generation << 32 | index.
    pub const fn to_raw(self) -> u64 {
        ((self.gen as u64) << 32) | self.index as u64
    }
    /// A handle from [`MmId::to_raw`]; a forged or stale value is rejected
    /// later by every operation with [`crate::MmError::BadHandle`].
    pub const fn from_raw(raw: u64) -> Self {
        MmId { index: raw as u32, gen: (raw >> 32) as u32 }
    }
}

/// The kernel's own address space, whose first-level table is
/// `swapper_pg_dir`. It is never freed.
pub const INIT_MM: MmId = MmId { index: 0, gen: 0 };

/// The per-task part of the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskMm {
    /// The task's own address space (`None` for kernel threads).
    pub mm: Option<MmId>,
    /// The address space the task runs on while it is current.
    pub active_mm: Option<MmId>,
}

impl TaskMm {
    /// A user task that owns a reference (`users`) to `mm`.
    pub const fn user(mm: MmId) -> Self {
        TaskMm { mm: Some(mm), active_mm: None }
    }
    /// A kernel thread that has not run yet.
    pub const fn kernel_thread() -> Self {
        TaskMm { mm: None, active_mm: None }
    }
    /// The boot context: a kernel thread running on `init_mm`.
    pub const fn boot() -> Self {
        TaskMm { mm: None, active_mm: Some(INIT_MM) }
    }
}

/// Pages of user space (P0), all of which a teardown covers.
const USER_PAGES: u32 = (USER_PGDS.end * ENTRIES) as u32;

#[derive(Debug)]
struct MmData {
    pgd: Frame,
    context: u64,
    users: u32,
    count: u32,
}

#[derive(Debug)]
struct MmSlot {
    gen: u32,
    data: Option<MmData>,
}

fn bad(id: MmId) -> MmError {
    MmError::BadHandle(Handle::Mm(Some(id)))
}

/// Every address space, the ASIDs and which one is active: the table of
/// `MmId` handles (slot + generation), reference counts, contexts.
pub(crate) struct AddressSpaces {
    slots: Vec<MmSlot>,
    free: Vec<u32>,
    asids: AsidAllocator,
    active: MmId,
}

impl AddressSpaces {
    /// Only `init_mm`, on `swapper`, active.
    pub(crate) fn new(swapper: Frame) -> Self {
        AddressSpaces {
            slots: alloc::vec![MmSlot {
                gen: 0,
                data: Some(MmData { pgd: swapper, context: NO_CONTEXT, users: 1, count: 1 }),
            }],
            free: Vec::new(),
            asids: AsidAllocator::new(),
            active: INIT_MM,
        }
    }

    pub(crate) fn asids(&self) -> &AsidAllocator {
        &self.asids
    }

    pub(crate) fn active(&self) -> MmId {
        self.active
    }

    // The lookups return `Option` and the error is made by the caller: a
    // `Result` with the error's payload is returned through memory (and
    // copied with a call to memcpy by the SH-4 build) even on success.
    fn slot(&self, id: MmId) -> Option<&MmData> {
        self.slots.get(id.index as usize).filter(|s| s.gen == id.gen).and_then(|s| s.data.as_ref())
    }

    fn slot_mut(&mut self, id: MmId) -> Option<&mut MmData> {
        slot_in(&mut self.slots, id)
    }

    fn data(&self, id: MmId) -> MmResult<&MmData> {
        self.slot(id).ok_or_else(|| bad(id))
    }

    fn data_mut(&mut self, id: MmId) -> MmResult<&mut MmData> {
        self.slot_mut(id).ok_or_else(|| bad(id))
    }

    /// The first-level table of an address space that may hold user
    /// mappings: not `init_mm` (it has no ASID context of its own, so its user
    /// TLB entries could not be flushed) and not exited.
    fn user_pgd(&self, id: MmId) -> MmResult<Frame> {
        if id == INIT_MM {
            return Err(bad(id));
        }
        let d = self.data(id)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        Ok(d.pgd)
    }

    pub(crate) fn pgd(&self, id: MmId) -> MmResult<Frame> {
        Ok(self.data(id)?.pgd)
    }

    pub(crate) fn refcounts(&self, id: MmId) -> MmResult<(u32, u32)> {
        let d = self.data(id)?;
        Ok((d.users, d.count))
    }

    pub(crate) fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.data.is_some()).count()
    }

    /// A new address space whose P3 first-level part is copied from
    /// `kernel` (the PTE pages are shared, not copied).
    pub(crate) fn create<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        kernel: &KernelTable,
    ) -> MmResult<MmId> {
        // Room for the slot first: after the table is allocated nothing fails.
        if self.free.is_empty() {
            self.slots.try_reserve(1).map_err(|_| MmError::OutOfMemory)?;
        }
        let pgd = p.alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
        p.mem.zero_frame(pgd);
        if !mutation::enabled(Mutation::MmCreateNoKernelCopy) {
            let (src, dst) = (kernel.view(&p.mem), PageTable::view(&p.mem, pgd));
            for i in KERNEL_PGDS {
                let copied = dst.set_pgd_raw(i, src.pgd_raw(i));
                debug_assert!(copied.is_ok(), "KERNEL_PGDS lies inside the table");
                if let Ok(p) = copied {
                    // SAFETY: a new table with no ASID yet: the TLB holds
                    // nothing of it.
                    unsafe { p.discard() };
                }
            }
        }
        let data = Some(MmData { pgd, context: NO_CONTEXT, users: 1, count: 1 });
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.data = data;
                MmId { index, gen: slot.gen }
            }
            None => {
                self.slots.push(MmSlot { gen: 1, data });
                MmId { index: self.slots.len() as u32 - 1, gen: 1 }
            }
        };
        Ok(id)
    }

    /// See [`crate::MemoryManager::mm_get`].
    pub(crate) fn get(&mut self, id: MmId) -> MmResult<()> {
        let d = self.data_mut(id)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        d.users = d.users.checked_add(1).ok_or(MmError::Overflow)?;
        Ok(())
    }

    /// See [`crate::MemoryManager::mm_grab`].
    pub(crate) fn grab(&mut self, id: MmId) -> MmResult<()> {
        if id == INIT_MM {
            return Ok(());
        }
        let d = self.data_mut(id)?;
        d.count = d.count.checked_add(1).ok_or(MmError::Overflow)?;
        Ok(())
    }

    /// See [`crate::MemoryManager::mm_put`].
    pub(crate) fn put<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        kernel: &KernelTable,
        id: MmId,
        mut on_user_page: impl FnMut(Page, Pte),
    ) -> MmResult<()> {
        if id == INIT_MM {
            return Err(bad(id));
        }
        let active = self.active;
        let d = self.data_mut(id)?;
        if d.users == 0 {
            return Err(bad(id));
        }
        if d.users == 1 && d.count == 1 && id == active {
            // The last reference would go while TTB still points at it:
            // refuse before tearing anything down.
            return Err(MmError::Busy);
        }
        d.users -= 1;
        if d.users > 0 {
            return Ok(());
        }
        let pgd = d.pgd;
        // No cache line of the user pages may outlive their mappings: the
        // frames go back to the OS below.
        let all = PageRange::new(Page::containing(VirtAddr::new(0)), USER_PAGES)?;
        kernel.purge_user_range(p, pgd, all);
        PageTable::view(&p.mem, pgd).free_tables(&mut p.alloc, USER_PGDS, |pg, pte| {
            memtypes.release_pte(pte);
            on_user_page(pg, pte)
        });
        self.retire_context(p, id)?;
        self.drop_ref(p, id)
    }

    /// See [`crate::MemoryManager::mm_drop`].
    pub(crate) fn drop_ref<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        id: MmId,
    ) -> MmResult<()> {
        let active = self.active;
        let d = self.data_mut(id)?;
        if id == INIT_MM {
            return Ok(());
        }
        if d.count == 0 {
            return Err(bad(id));
        }
        if d.count == 1 && id == active {
            return Err(MmError::Busy);
        }
        d.count -= 1;
        if d.count > 0 {
            return Ok(());
        }
        if d.users != 0 {
            // users hold a count between them: cannot happen; refuse.
            d.count = 1;
            return Err(MmError::Busy);
        }
        let pgd = d.pgd;
        let slot = &mut self.slots[id.index as usize];
        slot.data = None;
        slot.gen = slot.gen.wrapping_add(1).max(1);
        self.free.push(id.index);
        p.alloc.free(pgd, 1);
        Ok(())
    }

    /// Makes sure no TLB entry tagged with `id`'s ASID can be used again:
    /// its context is dropped (ASIDs are not reused within a generation),
    /// and if it is active it gets a fresh ASID at once.
    fn retire_context<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        id: MmId,
    ) -> MmResult<()> {
        self.data_mut(id)?.context = NO_CONTEXT;
        if self.active == id {
            let a = self.assign_asid(id).ok_or_else(|| bad(id))?;
            if a.flush_all {
                tlb::flush_all(&p.hw);
            }
            p.hw.set_pteh(a.asid as u32);
        }
        Ok(())
    }

    /// `id`'s ASID, assigned now if its context is from an older generation
    /// (and whether the TLB must be flushed first): one slot lookup, no
    /// hardware access. Returns the small `Assigned` alone: a pair with the
    /// pgd would be returned through memory and copied with a call to memcpy
    /// in the SH-4 build (79 of switch_mm's instructions).
    fn assign_asid(&mut self, id: MmId) -> Option<Assigned> {
        // The slots alone are borrowed, so the ASID allocator stays free.
        let data = slot_in(&mut self.slots, id)?;
        Some(if id == INIT_MM { Assigned { asid: 0, flush_all: false } } else { self.asids.assign(&mut data.context) })
    }

    /// See [`crate::MemoryManager::switch_mm`].
    pub(crate) fn switch<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        next: MmId,
    ) -> MmResult<()> {
        let a = self.assign_asid(next).ok_or_else(|| bad(next))?;
        let Some(&MmData { pgd, .. }) = self.slot(next) else { return Err(bad(next)) };
        {
            let _irq = IrqGuard::new(&p.hw);
            p.hw.set_ttb(pgd.start().to_p1().as_u32());
            if a.flush_all {
                tlb::flush_all(&p.hw);
            }
            p.hw.set_pteh(a.asid as u32);
        }
        self.active = next;
        Ok(())
    }

    /// See [`crate::MemoryManager::context_switch`].
    pub(crate) fn context_switch<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        prev: &mut TaskMm,
        next: &mut TaskMm,
    ) -> MmResult<()> {
        let prev_active = prev.active_mm.ok_or(MmError::BadHandle(Handle::Mm(None)))?;
        match next.mm {
            None => {
                self.grab(prev_active)?;
                next.active_mm = Some(prev_active);
                if self.active != prev_active {
                    self.switch(p, prev_active)?;
                }
            }
            Some(m) => {
                self.data(m)?;
                if self.active != m {
                    self.switch(p, m)?;
                }
                next.active_mm = Some(m);
            }
        }
        prev.active_mm = None;
        if prev.mm.is_none() {
            // What the kernel thread borrowed (init_mm included: grab and drop
            // are symmetric, so its count does not creep up).
            self.drop_ref(p, prev_active)?;
        }
        Ok(())
    }

    /// See [`crate::MemoryManager::exit_mm`].
    pub(crate) fn exit<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        kernel: &KernelTable,
        task: &mut TaskMm,
        on_user_page: impl FnMut(Page, Pte),
    ) -> MmResult<()> {
        let mm = task.mm.ok_or(MmError::BadHandle(Handle::Mm(None)))?;
        if mm == INIT_MM {
            return Err(bad(mm));
        }
        let d = self.data(mm)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        d.count.checked_add(1).ok_or(MmError::Overflow)?;
        // Checked above: the grab cannot overflow, and with the grab held
        // (count >= 2) `put` cannot refuse with Busy.
        let mut undo = Undo::new();
        let r = (|| {
            self.grab(mm)?;
            undo.push(Step::MmReference(mm));
            let r = self.put(p, memtypes, kernel, mm, on_user_page);
            debug_assert!(r.is_ok(), "mm_put after a grab failed: {r:?}");
            r
        })();
        undo.finish(r, |step| match step {
            Step::MmReference(id) => self.drop_ref(p, id),
            other => not_recorded_here(other),
        })?;
        task.mm = None;
        task.active_mm = Some(mm);
        Ok(())
    }

    /// See [`crate::MemoryManager::map_user`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map_user<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &mut Platform<H, M, A>,
        memtypes: &mut MemTypes,
        mm: MmId,
        start: Page,
        first: Frame,
        count: u32,
        prot: Prot,
        attr: CacheAttr,
    ) -> MmResult<()> {
        let pages = user_range(start, count)?;
        let frames = crate::addr::FrameRange::new(first, count)?;
        let pgd = self.user_pgd(mm)?;
        let mut undo = Undo::new();
        let r = (|| {
            memtypes.reserve_each(frames.iter(), attr)?;
            undo.push(Step::FrameListMemtypes(attr));
            // Clean (D=0): the first write takes the initial-page-write path,
            // which is how the OS learns a page is dirty.
            PageTable::view(&p.mem, pgd).map(&mut p.alloc, pages.first(), pages.pages(), |i| {
                Pte::new(frames.get(i).unwrap_or(first), prot, attr, PteFlags::ACCESSED)
            })
        })();
        undo.finish(r, |step| match step {
            Step::FrameListMemtypes(attr) => memtypes.release_each(frames.iter(), attr),
            other => not_recorded_here(other),
        })
    }

    /// Carries out a user-page flush for `mm`, under its ASID (which need
    /// not be the one in PTEH: see `tlb::flush_page`).
    fn user_flush<H: MmuHw>(&self, hw: &H, mm: MmId, pending: PendingFlush) -> MmResult<()> {
        let ctx = self.data(mm)?.context;
        if self.asids.is_current(ctx) {
            pending.for_asid((ctx & 0xFF) as u8).flush(hw);
        } else {
            // SAFETY: `mm` has no ASID in the current generation: it never
            // ran since its ASID was retired or since the last rollover, and
            // both flushed (rollover) or orphaned (retire: the ASID is not
            // handed out again before a rollover) every entry it had. Its next
            // switch-in assigns a fresh ASID.
            unsafe { pending.discard() };
        }
        Ok(())
    }

    /// See [`crate::MemoryManager::unmap_user`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn unmap_user<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        memtypes: &mut MemTypes,
        kernel: &KernelTable,
        mm: MmId,
        start: Page,
        count: u32,
        mut on_unmap: impl FnMut(Page, Pte),
    ) -> MmResult<u32> {
        let pages = user_range(start, count)?;
        let pgd = self.user_pgd(mm)?;
        // Purge while the translation still exists: the frames go back to
        // the OS through `on_unmap` (see coherent.rs for why).
        kernel.purge_user_range(p, pgd, pages);
        let (n, pending) = PageTable::view(&p.mem, pgd).unmap(pages.first(), pages.pages(), |pg, pte| {
            memtypes.release_pte(pte);
            on_unmap(pg, pte)
        });
        self.user_flush(&p.hw, mm, pending)?;
        Ok(n)
    }

    /// See [`crate::MemoryManager::protect_user`].
    pub(crate) fn protect_user<H: MmuHw, M: PhysAccess, A: FrameAllocator>(
        &mut self,
        p: &Platform<H, M, A>,
        mm: MmId,
        start: Page,
        count: u32,
        prot: Prot,
    ) -> MmResult<u32> {
        let pages = user_range(start, count)?;
        let pgd = self.user_pgd(mm)?;
        // Dirty lines may stay: the mapping (same frame, same colour) stays,
        // and the unmap that finally removes it purges them.
        let (n, pending) = PageTable::view(&p.mem, pgd).update(pages.first(), pages.pages(), |q| {
            let q = q.with_prot(prot);
            if prot.writable() {
                q
            } else {
                q.without(PteFlags::D)
            }
        });
        self.user_flush(&p.hw, mm, pending)?;
        Ok(n)
    }

    /// See [`crate::MemoryManager::translate`].
    pub(crate) fn translate<M: PhysAccess>(
        &self,
        mem: &M,
        kernel: &KernelTable,
        mm: MmId,
        va: VirtAddr,
    ) -> MmResult<(PhysAddr, Pte)> {
        let t = PageTable::view(mem, self.data(mm)?.pgd);
        match va.region() {
            Region::P0 => t.translate(va),
            Region::P3 => t.translate(va).or_else(|| kernel.view(mem).translate(va)),
            Region::P1 | Region::P2 => PhysAddr::from_p1_p2(va).map(|pa| (pa, Pte::NONE)),
            Region::P4 => None,
        }
        .ok_or(MmError::NotMapped(va))
    }

    /// Number of user PTE pages of `mm`.
    pub(crate) fn user_pte_pages<M: PhysAccess>(&self, mem: &M, mm: MmId) -> MmResult<usize> {
        Ok(PageTable::view(mem, self.data(mm)?.pgd).count_tables(USER_PGDS))
    }
}

/// The live slot `id` names, if any.
fn slot_in(slots: &mut [MmSlot], id: MmId) -> Option<&mut MmData> {
    slots.get_mut(id.index as usize).filter(|s| s.gen == id.gen).and_then(|s| s.data.as_mut())
}

/// `count` user pages from `start`, all inside P0.
fn user_range(start: Page, count: u32) -> MmResult<PageRange> {
    let pages = PageRange::new(start, count)?;
    if start.start().region() != Region::P0 {
        return Err(MmError::BadAddress(start.start()));
    }
    if pages.last().start().region() != Region::P0 {
        return Err(MmError::Overflow);
    }
    Ok(pages)
}
