//! [`MemoryManager`]: the façade of the crate.
//!
//! It owns the parts and nothing else; each part keeps its state private and
//! is changed only through its own methods:
//!
//! | part | file | state |
//! |---|---|---|
//! | `Platform` | here | the MMU ([`MmuHw`]), physical memory, the OS's frame allocator |
//! | `AddressSpaces` | `mm.rs` | mm handles, reference counts, ASIDs, the active mm |
//! | `KernelSpace` | `kspace.rs` | `swapper_pg_dir`; the vmalloc (`vmalloc.rs`), consistent (`consistent.rs`) and fixmap (`fixmap.rs`) windows |
//! | [`MemTypes`] | `memtype.rs` | the cache attribute of every mapped frame |
//! | `DeferredFrees` | `irqlock.rs` | frees queued by interrupt handlers |
//!
//! A public method here checks the calling context (see [`crate::irqlock`])
//! and hands the parts it needs to one part's method. Multi-step operations
//! roll back through one mechanism, `rollback.rs`.

use crate::addr::{Frame, FrameRange, Page, PhysAddr, VirtAddr};
use crate::asid::AsidAllocator;
use crate::coherent::Kmap;
use crate::consistent::DmaBuffer;
use crate::error::{Handle, MmError, MmResult};
use crate::fault::FaultContext;
use crate::fixmap::Fixmap;
use crate::frame::{FrameAllocator, PhysAccess};
use crate::hw::{self, MmuHw};
use crate::irqlock::{Deferred, DeferredFrees};
use crate::kspace::KernelSpace;
use crate::memtype::{IoMapping, MemTypes};
use crate::mm::{AddressSpaces, MmId, TaskMm};
use crate::pte::{CacheAttr, Prot, Pte};
use crate::vmalloc::AreaKind;

/// What the memory manager runs on: the MMU, physical memory and the OS's
/// frame allocator. The façade owns it and lends it to a part per call.
pub(crate) struct Platform<H, M, A> {
    /// The MMU and interrupt masking.
    pub(crate) hw: H,
    /// Physical memory.
    pub(crate) mem: M,
    /// The OS's frame allocator.
    pub(crate) alloc: A,
}

/// The memory manager of one SH-4 CPU.
///
/// `H` drives the MMU, `M` reaches physical memory, `A` is the OS's frame
/// allocator. All methods that remove or weaken a translation flush the TLB
/// before they return; a method that fails has changed nothing.
///
/// Which methods an interrupt handler may call (as in Linux:
/// `dma_alloc_coherent` yes, `vfree`/`dma_free_coherent` queued, `vmalloc`
/// and mm setup/teardown no, [`MmError::InInterrupt`]) is listed in
/// [`crate::irqlock`]; share the manager through an [`crate::irqlock::IrqLock`].
pub struct MemoryManager<H: MmuHw, M: PhysAccess, A: FrameAllocator> {
    p: Platform<H, M, A>,
    spaces: AddressSpaces,
    kernel: KernelSpace,
    memtypes: MemTypes,
    deferred: DeferredFrees,
}

impl<H: MmuHw, M: PhysAccess, A: FrameAllocator> MemoryManager<H, M, A> {
    /// Allocates and clears `swapper_pg_dir`, makes `init_mm` active (TTB,
    /// ASID 0). Translation is turned on separately by [`Self::enable_mmu`].
    ///
    /// # Errors
    /// [`MmError::OutOfFrames`] if the allocator cannot give the two frames
    /// (`swapper_pg_dir` and the fixmap's PTE page); none is kept then.
    pub fn new(hw: H, mem: M, mut alloc: A) -> MmResult<Self> {
        let kernel = KernelSpace::new(&mem, &mut alloc)?;
        let swapper = kernel.table().swapper();
        let mm = MemoryManager {
            p: Platform { hw, mem, alloc },
            spaces: AddressSpaces::new(swapper),
            kernel,
            memtypes: MemTypes::new(),
            deferred: DeferredFrees::new(),
        };
        mm.p.hw.set_ttb(swapper.start().to_p1().as_u32());
        mm.p.hw.set_pteh(0);
        Ok(mm)
    }

    /// Turns address translation on (MMUCR = AT|TI: TI together with AT,
    /// so nothing translated before survives).
    pub fn enable_mmu(&self) {
        self.p.hw.set_mmucr(hw::MMUCR_AT | hw::MMUCR_TI);
    }

    /// The reference kernel table.
    pub fn swapper_pg_dir(&self) -> Frame {
        self.kernel.table().swapper()
    }

    /// What the TLB-exception path needs (it never takes the manager's lock).
    pub fn fault_context(&self) -> FaultContext {
        FaultContext { swapper: self.swapper_pg_dir() }
    }

    /// The MMU interface.
    pub fn hw(&self) -> &H {
        &self.p.hw
    }
    /// Physical memory access.
    pub fn mem(&self) -> &M {
        &self.p.mem
    }
    /// The frame allocator.
    pub fn allocator(&self) -> &A {
        &self.p.alloc
    }
    /// The frame allocator, mutably.
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.p.alloc
    }
    /// The ASID allocator (for statistics).
    pub fn asids(&self) -> &AsidAllocator {
        self.spaces.asids()
    }
    /// The address space currently in TTB/PTEH.
    pub fn active(&self) -> MmId {
        self.spaces.active()
    }

    // ----- calling context (see irqlock.rs) -----

    /// Entry check of an operation an interrupt handler may not call:
    /// [`MmError::InInterrupt`] there; in task context, the queued frees
    /// are done first.
    fn task_context(&mut self) -> MmResult<()> {
        if self.p.hw.in_interrupt() {
            return Err(MmError::InInterrupt);
        }
        // The common case (nothing queued) without a call.
        if self.deferred.len() != 0 {
            self.run_deferred();
        }
        Ok(())
    }

    /// Entry of an operation allowed everywhere: in task context the queued
    /// frees are done first (in an interrupt handler they wait).
    fn any_context(&mut self) {
        if !self.p.hw.in_interrupt() && self.deferred.len() != 0 {
            self.run_deferred();
        }
    }

    /// Entry of `vfree` / `dma_free_coherent`: in an interrupt handler the
    /// free is checked and queued (`Some(result)`); in task context the
    /// queue is run and `None` says "free it now". With the queue full, an
    /// interrupt handler frees at once too (a longer masked section rather
    /// than a leak or an error the handler could only leak on).
    fn defer_free(&mut self, item: Deferred) -> Option<MmResult<()>> {
        if !self.p.hw.in_interrupt() {
            if self.deferred.len() != 0 {
                self.run_deferred();
            }
            return None;
        }
        let (va, live) = match item {
            Deferred::Vfree(va) => (va, self.kernel.is_vmalloc_area(va)),
            Deferred::DmaFree(va) => (va, self.kernel.is_dma_buffer(va)),
        };
        if !va.is_page_aligned() {
            return Some(Err(MmError::Unaligned));
        }
        if !live {
            return Some(Err(MmError::BadHandle(Handle::Area(va))));
        }
        // Err(QueueFull): free it now.
        self.deferred.queue(item).ok()
    }

    /// Does the frees queued by interrupt handlers; returns how many. Task
    /// context only (in an interrupt handler it does nothing). Every
    /// task-context operation calls it on entry; an OS may also call it from
    /// its idle loop.
    pub fn run_deferred(&mut self) -> usize {
        if self.deferred.len() == 0 || self.p.hw.in_interrupt() {
            return 0;
        }
        let mut done = 0;
        for item in self.deferred.take() {
            // Checked when queued, and nothing else frees in between
            // without running this queue first: these cannot fail.
            let r = match item {
                Deferred::Vfree(va) => self.kernel.free_vm_area(&mut self.p, &mut self.memtypes, va, true),
                Deferred::DmaFree(va) => self.kernel.dma_free(&mut self.p, &mut self.memtypes, va),
            };
            debug_assert!(r.is_ok(), "a queued free was checked when queued: {r:?}");
            done += usize::from(r.is_ok());
        }
        done
    }

    /// Frees queued by interrupt handlers and not done yet.
    pub fn deferred_frees(&self) -> usize {
        self.deferred.len()
    }

    // ----- address spaces (mm.rs) -----

    /// The first-level table of `id`.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle.
    pub fn pgd(&self, id: MmId) -> MmResult<Frame> {
        self.spaces.pgd(id)
    }

    /// `(users, count)` of `id`.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle.
    pub fn refcounts(&self, id: MmId) -> MmResult<(u32, u32)> {
        self.spaces.refcounts(id)
    }

    /// Number of live address spaces, `init_mm` included.
    pub fn live_mms(&self) -> usize {
        self.spaces.live()
    }

    /// Creates an address space: a new first-level table whose P3 part is
    /// copied from `swapper_pg_dir` (the PTE pages are shared, not copied).
    /// `users = count = 1`.
    ///
    /// # Errors
    /// [`MmError::OutOfFrames`] without a frame for the table,
    /// [`MmError::OutOfMemory`] if the handle table cannot grow,
    /// [`MmError::InInterrupt`] in an interrupt handler.
    pub fn mm_create(&mut self) -> MmResult<MmId> {
        self.task_context()?;
        self.spaces.create(&mut self.p, self.kernel.table())
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
        self.spaces.get(id)
    }

    /// A reference to the structure and first-level table (lazy borrow):
    /// `count += 1` (not counted for `init_mm`, which is never freed).
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle; [`MmError::Overflow`] if
    /// the count would overflow.
    pub fn mm_grab(&mut self, id: MmId) -> MmResult<()> {
        self.spaces.grab(id)
    }

    /// Drops a task's share of `id`. When the last user goes, every user
    /// mapping is torn down (each present PTE is passed to `on_user_page` so
    /// the OS can release the frame), its PTE pages are freed, its TLB entries
    /// are retired, and the users' reference to the structure is dropped.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for `init_mm`, a stale handle or an mm with no
    /// users; [`MmError::Busy`] if this would drop the last reference of the
    /// active mm; [`MmError::InInterrupt`] in an interrupt handler.
    pub fn mm_put(&mut self, id: MmId, on_user_page: impl FnMut(Page, Pte)) -> MmResult<()> {
        self.task_context()?;
        self.spaces.put(&mut self.p, &mut self.memtypes, self.kernel.table(), id, on_user_page)
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
        self.spaces.drop_ref(&mut self.p, id)
    }

    /// Loads `next` into TTB and PTEH.ASID (assigning an ASID, and flushing
    /// the TLB on ASID rollover). Interrupts are masked meanwhile so TTB and
    /// the ASID never disagree when a TLB miss is taken. (The ASID choice is
    /// bookkeeping under `&mut self` and is made before masking.)
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle, [`MmError::InInterrupt`]
    /// in an interrupt handler.
    pub fn switch_mm(&mut self, next: MmId) -> MmResult<()> {
        self.task_context()?;
        self.spaces.switch(&self.p, next)
    }

    /// The address-space half of a context switch from `prev` to `next`.
    ///
    /// A kernel thread (`next.mm == None`) borrows `prev.active_mm` and
    /// grabs it; a user task switches to its own mm. A kernel thread being
    /// switched out returns what it borrowed.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] if `prev` is not running on an address space
    /// or a handle is stale, [`MmError::Overflow`] if a count would
    /// overflow, [`MmError::InInterrupt`] in an interrupt handler.
    pub fn context_switch(&mut self, prev: &mut TaskMm, next: &mut TaskMm) -> MmResult<()> {
        self.task_context()?;
        self.spaces.context_switch(&mut self.p, prev, next)
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
        self.spaces.exit(&mut self.p, &mut self.memtypes, self.kernel.table(), task, on_user_page)
    }

    /// Maps `count` pages at user address `start` of `mm` to the physically
    /// contiguous frames from `first`. Nothing is changed on failure.
    ///
    /// # Errors
    /// [`MmError::ZeroSize`], [`MmError::BadAddress`] or
    /// [`MmError::Overflow`] for a range that is empty or leaves P0 (or
    /// frames past the physical address space); [`MmError::BadHandle`] for
    /// `init_mm` or a stale handle; [`MmError::Exited`];
    /// [`MmError::AttrConflict`]; [`MmError::AlreadyMapped`];
    /// [`MmError::OutOfFrames`] for a PTE page.
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
        self.spaces.map_user(&mut self.p, &mut self.memtypes, mm, start, first, count, prot, attr)
    }

    /// Unmaps user pages (holes allowed), reporting each present PTE to
    /// `on_unmap`, and flushes them from the TLB. Returns how many were mapped.
    ///
    /// # Errors
    /// As [`Self::map_user`] for the range and the handle.
    pub fn unmap_user(&mut self, mm: MmId, start: Page, count: u32, on_unmap: impl FnMut(Page, Pte)) -> MmResult<u32> {
        self.task_context()?;
        self.spaces.unmap_user(&self.p, &mut self.memtypes, self.kernel.table(), mm, start, count, on_unmap)
    }

    /// Changes the protection of present user pages and flushes them.
    ///
    /// # Errors
    /// As [`Self::map_user`] for the range and the handle.
    pub fn protect_user(&mut self, mm: MmId, start: Page, count: u32, prot: Prot) -> MmResult<u32> {
        self.task_context()?;
        self.spaces.protect_user(&self.p, mm, start, count, prot)
    }

    /// What `va` translates to in `mm` (kernel addresses through the mm's
    /// copy of the kernel entries, falling back to `swapper_pg_dir`).
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle, [`MmError::NotMapped`].
    pub fn translate(&self, mm: MmId, va: VirtAddr) -> MmResult<(PhysAddr, Pte)> {
        self.spaces.translate(&self.p.mem, self.kernel.table(), mm, va)
    }

    /// Number of PTE pages in `swapper_pg_dir`'s P3 part.
    pub fn kernel_pte_pages(&self) -> usize {
        self.kernel.table().pte_pages(&self.p.mem)
    }

    /// Number of user PTE pages of `mm`.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a stale handle.
    pub fn user_pte_pages(&self, mm: MmId) -> MmResult<usize> {
        self.spaces.user_pte_pages(&self.p.mem, mm)
    }

    // ----- the vmalloc window (vmalloc.rs) -----

    /// Allocates `size` bytes (rounded up to pages) of virtually contiguous,
    /// cached, zeroed kernel memory, followed by an unmapped guard page.
    /// On any failure nothing stays allocated.
    ///
    /// # Errors
    /// [`MmError::ZeroSize`], [`MmError::Overflow`],
    /// [`MmError::WindowExhausted`], [`MmError::OutOfFrames`],
    /// [`MmError::OutOfMemory`], [`MmError::AttrConflict`],
    /// [`MmError::InInterrupt`].
    pub fn vmalloc(&mut self, size: usize) -> MmResult<VirtAddr> {
        self.task_context()?;
        self.kernel.vmalloc(&mut self.p, &mut self.memtypes, size)
    }

    /// Frees a `vmalloc` area: unmaps it, flushes the TLB for it (before the
    /// range can be handed out again), then frees the frames and the range.
    /// In an interrupt handler it is checked and queued (see [`crate::irqlock`]).
    ///
    /// # Errors
    /// [`MmError::Unaligned`]; [`MmError::BadHandle`] if no vmalloc area
    /// starts at `va` (or it is queued for freeing already).
    pub fn vfree(&mut self, va: VirtAddr) -> MmResult<()> {
        if let Some(queued) = self.defer_free(Deferred::Vfree(va)) {
            return queued;
        }
        self.kernel.free_vm_area(&mut self.p, &mut self.memtypes, va, true)
    }

    /// Maps `size` bytes of physical range `phys` (page aligned) into the
    /// vmalloc window with cache attribute `attr`.
    ///
    /// # Errors
    /// [`MmError::Unaligned`], [`MmError::ZeroSize`], [`MmError::Overflow`]
    /// for a bad range; [`MmError::AttrConflict`];
    /// [`MmError::WindowExhausted`]; [`MmError::OutOfFrames`] for a PTE
    /// page; [`MmError::InInterrupt`].
    pub fn ioremap(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<VirtAddr> {
        self.task_context()?;
        self.kernel.ioremap(&mut self.p, &mut self.memtypes, phys, size, attr)
    }

    /// Unmaps an `ioremap` area and flushes it.
    ///
    /// # Errors
    /// [`MmError::Unaligned`]; [`MmError::BadHandle`] if no ioremap area
    /// starts at `va`; [`MmError::InInterrupt`].
    pub fn iounmap(&mut self, va: VirtAddr) -> MmResult<()> {
        self.task_context()?;
        self.kernel.free_vm_area(&mut self.p, &mut self.memtypes, va, false)
    }

    /// The vmalloc/ioremap area containing `va`: (start, pages, kind).
    pub fn vm_area(&self, va: VirtAddr) -> Option<(VirtAddr, u32, AreaKind)> {
        self.kernel.vm_area(va)
    }

    /// Number of live vmalloc/ioremap areas.
    pub fn vm_areas(&self) -> usize {
        self.kernel.vm_areas()
    }

    // ----- the consistent window (consistent.rs) -----

    /// Allocates a zeroed, physically contiguous buffer of `size` bytes
    /// (rounded up to pages), mapped uncached in the consistent window.
    /// Allowed in an interrupt handler.
    ///
    /// # Errors
    /// [`MmError::ZeroSize`], [`MmError::Overflow`],
    /// [`MmError::OutOfFrames`], [`MmError::AttrConflict`],
    /// [`MmError::WindowExhausted`].
    pub fn dma_alloc_coherent(&mut self, size: usize) -> MmResult<DmaBuffer> {
        self.any_context();
        self.kernel.dma_alloc(&mut self.p, &mut self.memtypes, size)
    }

    /// Frees a buffer from [`Self::dma_alloc_coherent`]: unmap, TLB flush,
    /// then the frames and the range are released. In an interrupt handler
    /// it is checked and queued.
    ///
    /// # Errors
    /// [`MmError::Unaligned`]; [`MmError::BadHandle`] if no buffer starts at
    /// `va` (or it is queued for freeing already).
    pub fn dma_free_coherent(&mut self, va: VirtAddr) -> MmResult<()> {
        if let Some(queued) = self.defer_free(Deferred::DmaFree(va)) {
            return queued;
        }
        self.kernel.dma_free(&mut self.p, &mut self.memtypes, va)
    }

    /// Number of live DMA-coherent buffers.
    pub fn dma_buffers(&self) -> usize {
        self.kernel.dma_buffers()
    }

    // ----- the fixmap window (fixmap.rs) and kmap_coherent (coherent.rs) -----

    /// Claims a general-purpose fixmap slot.
    ///
    /// # Errors
    /// [`MmError::WindowExhausted`] if every slot is claimed.
    pub fn fixmap_alloc(&mut self) -> MmResult<u32> {
        self.kernel.fixmap_mut().0.alloc()
    }

    /// Releases a slot from [`Self::fixmap_alloc`]; it must be unmapped.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a slot that is not claimed,
    /// [`MmError::Busy`] while it is mapped.
    pub fn fixmap_free(&mut self, slot: u32) -> MmResult<()> {
        let (fixmap, table) = self.kernel.fixmap_mut();
        fixmap.free(table, &self.p.mem, slot)
    }

    /// Maps `frame` at fixmap slot `slot` and preloads the TLB entry.
    /// `slot` must be claimed (or a kmap_coherent slot) and not mapped. The
    /// frame's memtype is checked against its live mappings.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a slot that does not exist or is not
    /// claimed, [`MmError::AlreadyMapped`], or the memtype conflict.
    pub fn fixmap_map(&mut self, slot: u32, frame: Frame, prot: Prot, attr: CacheAttr) -> MmResult<VirtAddr> {
        let (fixmap, table) = self.kernel.fixmap_mut();
        fixmap.map(table, &self.p, &mut self.memtypes, slot, frame, prot, attr)
    }

    /// Unmaps fixmap slot `slot`, purging its cache lines and flushing its
    /// TLB entry; returns the frame that was mapped.
    ///
    /// # Errors
    /// [`MmError::BadHandle`] for a slot that does not exist,
    /// [`MmError::NotMapped`] if nothing is mapped there.
    pub fn fixmap_unmap(&mut self, slot: u32) -> MmResult<Frame> {
        Fixmap::unmap(self.kernel.table(), &self.p, &mut self.memtypes, slot)
    }

    /// The kmap_coherent slot used for `user_va` (bank 0: source, 1: destination).
    ///
    /// # Errors
    /// [`MmError::Overflow`] for a bank other than 0 or 1.
    pub fn kmap_coherent_slot_for(&self, user_va: VirtAddr, bank: u32) -> MmResult<u32> {
        crate::coherent::kmap_coherent_slot_for(user_va, bank)
    }

    /// Copies user page `src` to `dst` (copy-on-write, fork) for a page that
    /// will live at `user_va`, through kmap_coherent slots of `user_va`'s
    /// colour (see [`crate::coherent`]).
    ///
    /// # Errors
    /// [`MmError::AttrConflict`] if either frame is mapped with another
    /// attribute; [`MmError::AlreadyMapped`] if a slot is in use.
    pub fn copy_user_page(&mut self, dst: Frame, src: Frame, user_va: VirtAddr) -> MmResult<()> {
        let (fixmap, table) = self.kernel.fixmap_mut();
        Kmap::new(fixmap, table, &mut self.memtypes).copy_user_page(&self.p, dst, src, user_va)
    }

    /// Zeroes user page `dst` that will live at `user_va`, through a slot
    /// congruent with `user_va` (and purges `dst`'s P1 alias first).
    ///
    /// # Errors
    /// As [`Self::copy_user_page`].
    pub fn clear_user_page(&mut self, dst: Frame, user_va: VirtAddr) -> MmResult<()> {
        let (fixmap, table) = self.kernel.fixmap_mut();
        Kmap::new(fixmap, table, &mut self.memtypes).clear_user_page(&self.p, dst, user_va)
    }

    // ----- memtypes (memtype.rs) -----

    /// Declares `[phys, phys+size)` as used with `attr` outside this crate's
    /// mappings (e.g. the kernel image through P1 = write-back).
    ///
    /// # Errors
    /// [`MmError::Unaligned`], [`MmError::ZeroSize`], [`MmError::Overflow`]
    /// for a bad range; [`MmError::AttrConflict`].
    pub fn memtype_reserve(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<()> {
        self.memtypes.reserve_range(FrameRange::covering(phys, size)?, attr)
    }

    /// Undoes [`Self::memtype_reserve`] with the same arguments.
    ///
    /// # Errors
    /// As [`Self::memtype_reserve`] for the range; [`MmError::BadHandle`] if
    /// no such reservation is live.
    pub fn memtype_release(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<()> {
        self.memtypes.release_range(FrameRange::covering(phys, size)?, attr)
    }

    /// The attribute live mappings give physical address `phys`.
    pub fn memtype_of(&self, phys: PhysAddr) -> Option<CacheAttr> {
        self.memtypes.lookup(Frame::containing(phys).pfn())
    }

    /// Live memtype reservations.
    pub fn memtypes(&self) -> &MemTypes {
        &self.memtypes
    }

    /// Reserves a range for page-by-page mapping with `attr`.
    ///
    /// # Errors
    /// [`MmError::Unaligned`], [`MmError::ZeroSize`], [`MmError::Overflow`]
    /// for a bad range; [`MmError::AttrConflict`] if a live mapping of the
    /// range has another attribute.
    pub fn io_mapping_create(&mut self, phys: PhysAddr, size: usize, attr: CacheAttr) -> MmResult<IoMapping> {
        let frames = FrameRange::covering(phys, size)?;
        self.memtypes.reserve_range(frames, attr)?;
        Ok(IoMapping::new(frames, attr))
    }

    /// Maps page `index` of `io` at a fixmap slot (no memtype re-check).
    ///
    /// # Errors
    /// [`MmError::BadHandle`] if `io` was freed, [`MmError::Overflow`] for an
    /// index past its end, [`MmError::WindowExhausted`] if no fixmap slot is
    /// free.
    pub fn io_mapping_map(&mut self, io: &mut IoMapping, index: u32) -> MmResult<VirtAddr> {
        self.kernel.io_mapping_map(&self.p, io, index)
    }

    /// Unmaps a page of `io` mapped by [`Self::io_mapping_map`]. Everything
    /// is checked before anything changes.
    ///
    /// # Errors
    /// [`MmError::BadAddress`] outside the fixmap, [`MmError::BadHandle`] for
    /// a slot that is not a claimed general slot or holds no page of `io`,
    /// [`MmError::NotMapped`] if nothing is mapped there.
    pub fn io_mapping_unmap(&mut self, io: &mut IoMapping, va: VirtAddr) -> MmResult<()> {
        let (fixmap, table) = self.kernel.fixmap_mut();
        fixmap.io_mapping_unmap(table, &self.p, &mut self.memtypes, io, va)
    }

    /// Ends the reservation. `io` can no longer map pages afterwards.
    ///
    /// # Errors
    /// [`MmError::Busy`] while pages of it are still mapped (unmap them
    /// first: the reservation is what keeps a conflicting alias out);
    /// [`MmError::BadHandle`] if it was freed already.
    pub fn io_mapping_free(&mut self, io: &mut IoMapping) -> MmResult<()> {
        if io.is_freed() {
            return Err(MmError::BadHandle(Handle::Reservation(io.frames().first().start())));
        }
        if io.mapped() != 0 {
            return Err(MmError::Busy);
        }
        self.memtypes.release_range(io.frames(), io.attr())?;
        io.set_freed();
        Ok(())
    }
}
