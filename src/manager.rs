//! [`MemoryManager`]: swapper_pg_dir, the mm table, ASIDs, switching, and
//! user mappings. The P3 windows live in `vmalloc.rs`, `consistent.rs` and
//! `fixmap.rs`; TLB exceptions in `fault.rs`.

use crate::addr::{Frame, Page, PhysAddr, Region, VirtAddr};
use crate::asid::{AsidAllocator, NO_CONTEXT};
use crate::bits::Bits;
use crate::error::{MmError, MmResult};
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{self, CacheOp, MmuHw};
use crate::layout::{CONSISTENT_END, CONSISTENT_START, FIXMAP_SLOTS, FIXMAP_START, VMALLOC_END, VMALLOC_START};
use crate::memtype::MemTypes;
use crate::mm::{MmData, MmId, MmSlot, TaskMm, INIT_MM};
use crate::mutation::{self, Mutation};
use crate::pgtable::{PageTable, ENTRIES, KERNEL_PGDS, USER_PGDS};

/// Pages of user space (P0), all of which a teardown covers.
const USER_PAGES: u32 = (USER_PGDS.end * ENTRIES) as u32;
use crate::fault::FaultContext;
use crate::pte::{CacheAttr, Prot, Pte, PteFlags};
use crate::tlb::{self, PendingFlush};
use crate::vmalloc::AreaKind;
use crate::window::RangeAllocator;
use alloc::vec::Vec;

/// The memory manager of one SH-4 CPU.
///
/// `H` drives the MMU, `M` reaches physical memory, `A` is the OS's frame
/// allocator. All methods that remove or weaken a translation flush the TLB
/// before they return.
///
/// Which methods an interrupt handler may call (as in Linux:
/// `dma_alloc_coherent` yes, `vfree`/`dma_free_coherent` queued, `vmalloc`
/// and mm setup/teardown no, [`MmError::InInterrupt`]) is listed in
/// [`crate::irqlock`]; share the manager through an [`crate::irqlock::IrqLock`].
pub struct MemoryManager<H: MmuHw, M: PhysAccess, A: FrameAllocator> {
    pub(crate) hw: H,
    pub(crate) mem: M,
    pub(crate) alloc: A,
    pub(crate) swapper: Frame,
    mms: Vec<MmSlot>,
    free_slots: Vec<u32>,
    asids: AsidAllocator,
    active: MmId,
    pub(crate) vmalloc: RangeAllocator<AreaKind>,
    pub(crate) consistent: RangeAllocator<(Frame, u32)>,
    pub(crate) fixmap_used: Bits<{ (FIXMAP_SLOTS / 32) as usize }>,
    pub(crate) memtypes: MemTypes,
    pub(crate) deferred: crate::irqlock::DeferredFrees,
}

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Allocates and clears `swapper_pg_dir`, makes `init_mm` active (TTB,
    /// ASID 0). Translation is turned on separately by [`Self::enable_mmu`].
    pub fn new(hw: H, mem: M, mut alloc: A) -> MmResult<Self> {
        let swapper = alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
        mem.zero_frame(swapper);
        // The fixmap's PTE page exists from the start, so that mapping a
        // fixmap slot never allocates: the cache purges that unmapping needs
        // (coherent.rs) then cannot fail halfway through a teardown.
        let Some(fix_table) = alloc.alloc(1) else {
            alloc.free(swapper, 1);
            return Err(MmError::OutOfFrames);
        };
        mem.zero_frame(fix_table);
        let linked =
            PageTable::view(&mem, swapper).set_pgd_raw(FIXMAP_START as usize >> 22, fix_table.start().to_p1().as_u32());
        debug_assert!(linked.is_ok());
        if let Ok(p) = linked {
            // SAFETY: translation is not on yet and the table is new.
            unsafe { p.discard() };
        }
        let mm = MemoryManager {
            hw,
            mem,
            alloc,
            swapper,
            mms: alloc::vec![MmSlot {
                gen: 0,
                data: Some(MmData { pgd: swapper, context: NO_CONTEXT, users: 1, count: 1 }),
            }],
            free_slots: Vec::new(),
            asids: AsidAllocator::new(),
            active: INIT_MM,
            vmalloc: RangeAllocator::new(VMALLOC_START >> 12, VMALLOC_END >> 12, 1),
            consistent: RangeAllocator::new(CONSISTENT_START >> 12, CONSISTENT_END >> 12, 1),
            fixmap_used: Bits::new(),
            memtypes: MemTypes::new(),
            deferred: crate::irqlock::DeferredFrees::new(),
        };
        mm.hw.set_ttb(swapper.start().to_p1().as_u32());
        mm.hw.set_pteh(0);
        Ok(mm)
    }

    /// Turns address translation on (MMUCR = AT|TI: TI together with AT,
    /// so nothing translated before survives).
    pub fn enable_mmu(&self) {
        self.hw.set_mmucr(hw::MMUCR_AT | hw::MMUCR_TI);
    }

    /// The reference kernel table.
    pub fn swapper_pg_dir(&self) -> Frame {
        self.swapper
    }

    /// What the TLB-exception path needs (it never takes the manager's lock).
    pub fn fault_context(&self) -> FaultContext {
        FaultContext { swapper: self.swapper }
    }

    /// The MMU interface.
    pub fn hw(&self) -> &H {
        &self.hw
    }
    /// Physical memory access.
    pub fn mem(&self) -> &M {
        &self.mem
    }
    /// The frame allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }
    /// The frame allocator, mutably.
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }
    /// The ASID allocator (for statistics).
    pub fn asids(&self) -> &AsidAllocator {
        &self.asids
    }
    /// The address space currently in TTB/PTEH.
    pub fn active(&self) -> MmId {
        self.active
    }

    pub(crate) fn kernel_table(&self) -> PageTable<'_, M> {
        PageTable::view(&self.mem, self.swapper)
    }

    fn data(&self, id: MmId) -> MmResult<&MmData> {
        self.mms
            .get(id.index as usize)
            .filter(|s| s.gen == id.gen)
            .and_then(|s| s.data.as_ref())
            .ok_or(MmError::BadHandle)
    }

    fn data_mut(&mut self, id: MmId) -> MmResult<&mut MmData> {
        self.mms
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
            .and_then(|s| s.data.as_mut())
            .ok_or(MmError::BadHandle)
    }

    /// The first-level table of an address space that may hold user
    /// mappings: not `init_mm` (it has no ASID context of its own, so its user
    /// TLB entries could not be flushed) and not exited.
    fn user_pgd(&self, id: MmId) -> MmResult<Frame> {
        if id == INIT_MM {
            return Err(MmError::BadHandle);
        }
        let d = self.data(id)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        Ok(d.pgd)
    }

    /// The first-level table of `id`.
    pub fn pgd(&self, id: MmId) -> MmResult<Frame> {
        Ok(self.data(id)?.pgd)
    }

    /// `(users, count)` of `id`.
    pub fn refcounts(&self, id: MmId) -> MmResult<(u32, u32)> {
        let d = self.data(id)?;
        Ok((d.users, d.count))
    }

    /// Number of live address spaces, `init_mm` included.
    pub fn live_mms(&self) -> usize {
        self.mms.iter().filter(|s| s.data.is_some()).count()
    }

    /// Creates an address space: a new first-level table whose P3 part is
    /// copied from `swapper_pg_dir` (the PTE pages are shared, not copied).
    /// `users = count = 1`.
    pub fn mm_create(&mut self) -> MmResult<MmId> {
        self.task_context()?;
        if self.free_slots.is_empty() {
            self.mms.try_reserve(1).map_err(|_| MmError::OutOfFrames)?;
        }
        let pgd = self.alloc.alloc(1).ok_or(MmError::OutOfFrames)?;
        self.mem.zero_frame(pgd);
        if !mutation::enabled(Mutation::MmCreateNoKernelCopy) {
            let (src, dst) = (self.kernel_table(), PageTable::view(&self.mem, pgd));
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
        let id = match self.free_slots.pop() {
            Some(index) => {
                let slot = &mut self.mms[index as usize];
                slot.data = data;
                MmId { index, gen: slot.gen }
            }
            None => {
                self.mms.push(MmSlot { gen: 1, data });
                MmId { index: self.mms.len() as u32 - 1, gen: 1 }
            }
        };
        Ok(id)
    }

    /// Another task shares `id` (CLONE_VM): `users += 1`.
    ///
    /// Like Linux's `mmget_not_zero`, an address space whose users are all
    /// gone is not brought back: its user mappings were torn down, and the
    /// borrower that keeps it alive will drop it as if nothing happened.
    ///
    /// # Errors
    /// [`MmError::Exited`] if `users` is 0; [`MmError::BadHandle`] for a
    /// stale handle; [`MmError::Overflow`] if the count would overflow.
    pub fn mm_get(&mut self, id: MmId) -> MmResult<()> {
        let d = self.data_mut(id)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        d.users = d.users.checked_add(1).ok_or(MmError::Overflow)?;
        Ok(())
    }

    /// A reference to the structure and first-level table (lazy borrow):
    /// `count += 1` (not counted for `init_mm`, which is never freed).
    pub fn mm_grab(&mut self, id: MmId) -> MmResult<()> {
        if id == INIT_MM {
            return Ok(());
        }
        let d = self.data_mut(id)?;
        d.count = d.count.checked_add(1).ok_or(MmError::Overflow)?;
        Ok(())
    }

    /// Drops a task's share of `id`. When the last user goes, every user
    /// mapping is torn down (each present PTE is passed to `on_user_page` so
    /// the OS can release the frame), its PTE pages are freed, its TLB entries
    /// are retired, and the users' reference to the structure is dropped.
    pub fn mm_put(&mut self, id: MmId, on_user_page: impl FnMut(Page, Pte)) -> MmResult<()> {
        self.task_context()?;
        if id == INIT_MM {
            return Err(MmError::BadHandle);
        }
        let active = self.active;
        let d = self.data_mut(id)?;
        if d.users == 0 {
            return Err(MmError::BadHandle);
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
        self.purge_user_range(pgd, Page::containing(VirtAddr::new(0)), USER_PAGES);
        let mut on_user_page = on_user_page;
        let memtypes = &mut self.memtypes;
        PageTable::view(&self.mem, pgd).free_tables(&mut self.alloc, USER_PGDS, |pg, pte| {
            Self::release_pte(memtypes, pte);
            on_user_page(pg, pte)
        });
        self.retire_context(id)?;
        self.mm_drop(id)
    }

    /// Drops a structure reference. At zero the first-level table is freed;
    /// an mm cannot reach zero while it is active (it returns
    /// [`MmError::Busy`] instead, and nothing changes). `init_mm` is static
    /// and never freed: its references are not counted (grab and drop are
    /// both no-ops, so no number of switches can saturate its count).
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle or a reference nobody holds;
    /// [`MmError::Busy`] for the last reference of the active mm.
    pub fn mm_drop(&mut self, id: MmId) -> MmResult<()> {
        self.task_context()?;
        let active = self.active;
        let d = self.data_mut(id)?;
        if id == INIT_MM {
            return Ok(());
        }
        if d.count == 0 {
            return Err(MmError::BadHandle);
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
        let slot = &mut self.mms[id.index as usize];
        slot.data = None;
        slot.gen = slot.gen.wrapping_add(1).max(1);
        self.free_slots.push(id.index);
        self.alloc.free(pgd, 1);
        Ok(())
    }

    /// Makes sure no TLB entry tagged with `id`'s ASID can be used again:
    /// its context is dropped (ASIDs are not reused within a generation),
    /// and if it is active it gets a fresh ASID at once.
    fn retire_context(&mut self, id: MmId) -> MmResult<()> {
        self.data_mut(id)?.context = NO_CONTEXT;
        if self.active == id {
            self.activate_asid(id)?;
        }
        Ok(())
    }

    fn activate_asid(&mut self, id: MmId) -> MmResult<u8> {
        let (_, a) = self.assign_asid(id)?;
        if a.flush_all {
            tlb::flush_all(&self.hw);
        }
        self.hw.set_pteh(a.asid as u32);
        Ok(a.asid)
    }

    /// `id`'s first-level table and its ASID (assigned now if its context
    /// is from an older generation): one slot lookup, no hardware access.
    fn assign_asid(&mut self, id: MmId) -> MmResult<(Frame, crate::asid::Assigned)> {
        let data = self
            .mms
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
            .and_then(|s| s.data.as_mut())
            .ok_or(MmError::BadHandle)?;
        let a = if id == INIT_MM {
            crate::asid::Assigned { asid: 0, flush_all: false }
        } else {
            self.asids.assign(&mut data.context)
        };
        Ok((data.pgd, a))
    }

    /// Loads `next` into TTB and PTEH.ASID (assigning an ASID, and flushing
    /// the TLB on ASID rollover). Interrupts are masked meanwhile so TTB and
    /// the ASID never disagree when a TLB miss is taken. (The ASID choice is
    /// bookkeeping under `&mut self` and is made before masking.)
    pub fn switch_mm(&mut self, next: MmId) -> MmResult<()> {
        self.task_context()?;
        let (pgd, a) = self.assign_asid(next)?;
        let saved = self.hw.irq_save();
        self.hw.set_ttb(pgd.start().to_p1().as_u32());
        if a.flush_all {
            tlb::flush_all(&self.hw);
        }
        self.hw.set_pteh(a.asid as u32);
        self.hw.irq_restore(saved);
        self.active = next;
        Ok(())
    }

    /// The address-space half of a context switch from `prev` to `next`.
    ///
    /// A kernel thread (`next.mm == None`) borrows `prev.active_mm` and
    /// grabs it; a user task switches to its own mm. A kernel thread being
    /// switched out returns what it borrowed.
    pub fn context_switch(&mut self, prev: &mut TaskMm, next: &mut TaskMm) -> MmResult<()> {
        self.task_context()?;
        let prev_active = prev.active_mm.ok_or(MmError::BadHandle)?;
        match next.mm {
            None => {
                self.mm_grab(prev_active)?;
                next.active_mm = Some(prev_active);
                if self.active != prev_active {
                    self.switch_mm(prev_active)?;
                }
            }
            Some(m) => {
                self.data(m)?;
                if self.active != m {
                    self.switch_mm(m)?;
                }
                next.active_mm = Some(m);
            }
        }
        prev.active_mm = None;
        if prev.mm.is_none() {
            // What the kernel thread borrowed (init_mm included: grab and drop
            // are symmetric, so its count does not creep up).
            self.mm_drop(prev_active)?;
        }
        Ok(())
    }

    /// The current task gives up its mm (exit/exec): it keeps running on it
    /// lazily, like a kernel thread, until it is switched out.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] if the task has no mm of its own (or it is
    /// `init_mm` or stale), [`MmError::Exited`] if the mm has no users,
    /// [`MmError::Overflow`] if its count is saturated. On error neither the
    /// task nor any count has changed.
    pub fn exit_mm(&mut self, task: &mut TaskMm, on_user_page: impl FnMut(Page, Pte)) -> MmResult<()> {
        self.task_context()?;
        let mm = task.mm.ok_or(MmError::BadHandle)?;
        if mm == INIT_MM {
            return Err(MmError::BadHandle);
        }
        let d = self.data(mm)?;
        if d.users == 0 {
            return Err(MmError::Exited);
        }
        d.count.checked_add(1).ok_or(MmError::Overflow)?;
        // Checked above: the grab cannot overflow, and with the grab held
        // (count >= 2) `mm_put` cannot refuse with Busy.
        self.mm_grab(mm)?;
        if let Err(e) = self.mm_put(mm, on_user_page) {
            debug_assert!(false, "mm_put after a grab failed: {e:?}");
            let undone = self.mm_drop(mm);
            debug_assert!(undone.is_ok());
            return Err(e);
        }
        task.mm = None;
        task.active_mm = Some(mm);
        Ok(())
    }

    fn user_range(start: Page, count: u32) -> MmResult<()> {
        if count == 0 {
            return Err(MmError::ZeroSize);
        }
        let last = start.offset(count - 1).ok_or(MmError::Overflow)?;
        if start.start().region() != Region::P0 {
            return Err(MmError::BadAddress(start.start()));
        }
        if last.start().region() != Region::P0 {
            return Err(MmError::Overflow);
        }
        Ok(())
    }

    /// Maps `count` pages at user address `start` of `mm` to the physically
    /// contiguous frames from `first`. Nothing is changed on failure.
    pub fn map_user(
        &mut self,
        mm: MmId,
        start: Page,
        first: Frame,
        count: u32,
        prot: Prot,
        attr: CacheAttr,
    ) -> MmResult<()> {
        self.task_context()?;
        Self::user_range(start, count)?;
        first.offset(count - 1).ok_or(MmError::Overflow)?;
        let pgd = self.user_pgd(mm)?;
        let frames = (0..count).filter_map(|i| first.offset(i));
        self.reserve_frames(frames.clone(), attr)?;
        // Clean (D=0): the first write takes the initial-page-write path,
        // which is how the OS learns a page is dirty.
        let r = PageTable::view(&self.mem, pgd).map(&mut self.alloc, start, count, |i| {
            let f = first.offset(i).unwrap_or(first);
            Pte::new(f, prot, attr, PteFlags::ACCESSED)
        });
        if r.is_err() {
            self.release_frames(frames, attr);
        }
        r
    }

    /// One memtype entry per frame (so that pages can be released one by
    /// one); all or nothing.
    pub(crate) fn reserve_frames(
        &mut self,
        frames: impl Iterator<Item = Frame> + Clone,
        attr: CacheAttr,
    ) -> MmResult<()> {
        // One conflict check for the span from the lowest to the highest
        // frame: when nothing of another attribute overlaps it (the usual
        // case: RAM frames, I/O ranges elsewhere), no frame needs its own.
        let (lo, hi) = frames.clone().fold((u32::MAX, 0), |(lo, hi), f| (lo.min(f.pfn()), hi.max(f.pfn())));
        if lo <= hi && self.memtypes.conflict(lo, hi - lo + 1, attr).is_none() {
            for (i, f) in frames.clone().enumerate() {
                if let Err(e) = self.memtypes.reserve_unchecked(f.pfn(), 1, attr) {
                    self.release_frames(frames.take(i), attr);
                    return Err(e);
                }
            }
            return Ok(());
        }
        for (i, f) in frames.clone().enumerate() {
            if let Err(e) = self.memtypes.reserve(f.pfn(), 1, attr) {
                self.release_frames(frames.take(i), attr);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(crate) fn release_frames(&mut self, frames: impl Iterator<Item = Frame>, attr: CacheAttr) {
        for f in frames {
            let _ = self.memtypes.release(f.pfn(), 1, attr);
        }
    }

    /// Zeroes `pages` frames from `first` through P1 with no line of their P1
    /// alias left in the cache: purged before (a stale dirty line written
    /// back later would undo the zeros) and after (the frames are about to
    /// be mapped at another colour, or uncached).
    pub(crate) fn zero_frames_purged(&self, first: Frame, pages: u32) {
        if self.mem.zero_frame_purged(first) {
            // The accessor zeroes through the same P1 address and purges
            // each line right after: a stale line is overwritten before it
            // is written back (see boot/mmu.S), so no purge is needed here.
            for f in (1..pages).filter_map(|i| first.offset(i)) {
                self.mem.zero_frame_purged(f);
            }
            return;
        }
        let p1 = first.start().to_p1().as_u32();
        // Kept although every unmap purges its lines: P1 is no mapping that
        // is ever torn down, so the OS may hand in a frame with dirty P1
        // lines of its own. On the target the zeroing below overwrites such
        // lines in full through the same P1 address, but `zero_frame` need
        // not write through the cache (the host model's writes memory
        // directly), and then the purge after zeroing would write the stale
        // lines back over the zeros (tests/cache.rs:
        // vmalloc_memory_reads_zero_through_its_own_colour and
        // dma_alloc_coherent_purges_the_cached_alias fail without it).
        self.hw.cache_op(CacheOp::Purge, p1, pages * crate::addr::PAGE_SIZE);
        for f in (0..pages).filter_map(|i| first.offset(i)) {
            self.mem.zero_frame(f);
        }
        self.hw.cache_op(CacheOp::Purge, p1, pages * crate::addr::PAGE_SIZE);
    }

    /// Releases the memtype entry of a PTE that is going away (I/O and
    /// io-mapping PTEs, marked SPECIAL, are accounted by their area).
    pub(crate) fn release_pte(memtypes: &mut MemTypes, pte: Pte) {
        if !pte.flags().contains(PteFlags::SPECIAL) {
            let _ = memtypes.release(pte.frame().pfn(), 1, pte.cache_attr());
        }
    }

    /// Carries out a user-page flush for `mm`, under its ASID (which need
    /// not be the one in PTEH: see `tlb::flush_page`).
    fn user_flush(&self, mm: MmId, pending: PendingFlush) -> MmResult<()> {
        let ctx = self.data(mm)?.context;
        if self.asids.is_current(ctx) {
            pending.for_asid((ctx & 0xFF) as u8).flush(&self.hw);
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

    /// Unmaps user pages (holes allowed), reporting each present PTE to
    /// `on_unmap`, and flushes them from the TLB. Returns how many were mapped.
    pub fn unmap_user(&mut self, mm: MmId, start: Page, count: u32, on_unmap: impl FnMut(Page, Pte)) -> MmResult<u32> {
        self.task_context()?;
        Self::user_range(start, count)?;
        let pgd = self.user_pgd(mm)?;
        // Purge while the translation still exists: the frames go back to
        // the OS through `on_unmap` (see coherent.rs for why).
        self.purge_user_range(pgd, start, count);
        let mut on_unmap = on_unmap;
        let memtypes = &mut self.memtypes;
        let (n, pending) = PageTable::view(&self.mem, pgd).unmap(start, count, |pg, pte| {
            Self::release_pte(memtypes, pte);
            on_unmap(pg, pte)
        });
        self.user_flush(mm, pending)?;
        Ok(n)
    }

    /// Changes the protection of present user pages and flushes them.
    pub fn protect_user(&mut self, mm: MmId, start: Page, count: u32, prot: Prot) -> MmResult<u32> {
        self.task_context()?;
        Self::user_range(start, count)?;
        let pgd = self.user_pgd(mm)?;
        // Dirty lines may stay: the mapping (same frame, same colour) stays,
        // and the unmap that finally removes it purges them.
        let (n, pending) = PageTable::view(&self.mem, pgd).update(start, count, |p| {
            let q = p.with_prot(prot);
            if prot.writable() {
                q
            } else {
                q.without(PteFlags::D)
            }
        });
        self.user_flush(mm, pending)?;
        Ok(n)
    }

    /// What `va` translates to in `mm` (kernel addresses through the mm's
    /// copy of the kernel entries, falling back to `swapper_pg_dir`).
    pub fn translate(&self, mm: MmId, va: VirtAddr) -> MmResult<(PhysAddr, Pte)> {
        let pgd = self.data(mm)?.pgd;
        let t = PageTable::view(&self.mem, pgd);
        match va.region() {
            Region::P0 => t.translate(va),
            Region::P3 => t.translate(va).or_else(|| self.kernel_table().translate(va)),
            Region::P1 | Region::P2 => PhysAddr::from_p1_p2(va).map(|pa| (pa, Pte::NONE)),
            Region::P4 => None,
        }
        .ok_or(MmError::NotMapped(va))
    }

    /// Maps kernel pages into `swapper_pg_dir` (shared, dirty, accessed).
    pub(crate) fn map_kernel(
        &mut self,
        start: Page,
        count: u32,
        prot: Prot,
        attr: CacheAttr,
        extra: PteFlags,
        frame_of: impl FnMut(u32) -> Frame,
    ) -> MmResult<()> {
        let mut frame_of = frame_of;
        let swapper = self.swapper;
        PageTable::view(&self.mem, swapper).map(&mut self.alloc, start, count, |i| {
            Pte::new(frame_of(i), prot, attr, extra | PteFlags::SH | PteFlags::D | PteFlags::ACCESSED)
        })
    }

    /// Unmaps kernel pages from `swapper_pg_dir` and flushes them. PTE pages
    /// are never freed: other mms may hold copies of the first-level entries.
    pub(crate) fn unmap_kernel(&mut self, start: Page, count: u32, on_unmap: impl FnMut(Page, Pte)) -> u32 {
        // Purged while still mapped (the purge goes through the mapping).
        self.purge_kernel_range(start, count);
        let swapper = self.swapper;
        let (n, pending) = PageTable::view(&self.mem, swapper).unmap(start, count, on_unmap);
        // Kernel pages are shared (SH=1): any ASID finds them.
        pending.for_asid(0).flush(&self.hw);
        n
    }

    /// Number of PTE pages in `swapper_pg_dir`'s P3 part.
    pub fn kernel_pte_pages(&self) -> usize {
        self.kernel_table().count_tables(KERNEL_PGDS)
    }

    /// Number of user PTE pages of `mm`.
    pub fn user_pte_pages(&self, mm: MmId) -> MmResult<usize> {
        Ok(PageTable::view(&self.mem, self.data(mm)?.pgd).count_tables(USER_PGDS))
    }
}
