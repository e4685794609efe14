//! TLB exceptions: the fast path (mirrored here; the real one is assembly at
//! VBR+0x400), the slow path, and `vmalloc_fault`.
//!
//! The slow path never takes the memory manager's lock: it only needs TTB
//! (the active first-level table), `swapper_pg_dir` and the page tables,
//! which are updated with single stores.

use crate::addr::{Frame, PhysAddr};
use crate::addr::{Page, Region, VirtAddr};
use crate::frame::PhysAccess;
use crate::hw::{expevt, IrqGuard, MmuHw};
use crate::layout::{Window, P3_END, P3_START};
use crate::mutation::{self, Mutation};
use crate::pgtable::PageTable;
use crate::pte::PteFlags;
use crate::tlb;

/// What the exception path needs to know about the kernel's tables. Only
/// [`crate::MemoryManager::fault_context`] makes one: the exception path
/// writes the tables it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultContext {
    pub(crate) swapper: Frame,
}

impl FaultContext {
    /// `swapper_pg_dir`.
    pub fn swapper(&self) -> Frame {
        self.swapper
    }
}

/// One TLB-related exception as the CPU reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// EXPEVT.
    pub expevt: u32,
    /// TEA: the faulting address.
    pub tea: VirtAddr,
    /// SSR.MD was 0: the access came from user mode.
    pub user: bool,
}

/// Why an access could not be satisfied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing mapped (or not present) at the address.
    NotMapped,
    /// Mapped, but the access is not allowed (PR, PROT_NONE, write to RO).
    Protection,
    /// Address error (user access outside P0, misalignment).
    AddressError,
    /// Any other exception code.
    Unexpected,
}

/// Details of a fault the MM could not fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// Faulting address (TEA).
    pub addr: VirtAddr,
    /// Exception code.
    pub expevt: u32,
    /// Classification.
    pub kind: FaultKind,
    /// Whether the access came from user mode.
    pub user: bool,
}

/// What the exception path decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Fixed: return from the exception and re-execute the access.
    Retry,
    /// A fault on a user address (from user or kernel mode): the OS's
    /// page-fault handler (demand paging, copy-on-write, signal) decides.
    User(FaultInfo),
    /// A fault on a kernel address, or an address error: a kernel oops when
    /// it came from kernel mode.
    Oops(FaultInfo),
}

fn active_pgd<H: MmuHw + ?Sized>(hw: &H) -> Option<Frame> {
    PhysAddr::from_p1_p2(VirtAddr::new(hw.ttb())).map(Frame::containing)
}

/// The assembly fast path, in Rust (for the model and as its specification):
/// walk TTB's tables; if the PTE is valid, and the access is a read or the
/// page is dirty, load it and return `true`. Otherwise the slow path runs.
pub fn fast_path<H: MmuHw + ?Sized, M: PhysAccess + ?Sized>(hw: &H, mem: &M, va: VirtAddr, write: bool) -> bool {
    let Some(pgd) = active_pgd(hw) else { return false };
    let Some(pte) = PageTable::view(mem, pgd).get(va) else { return false };
    if !pte.is_valid() || (write && !pte.flags().contains(PteFlags::D)) {
        return false;
    }
    hw.set_ptel(pte.ptel());
    hw.ldtlb();
    true
}

/// The assembly fast path once the kernel has given it `swapper_pg_dir`
/// (`sh4mm_swapper_pgd` in runtime/asm/start.S), in Rust (its specification): a P3
/// address whose first-level entry is missing in the active table but
/// present in `swapper` gets it copied — `vmalloc_fault`, atomic there
/// because SR.BL=1 holds interrupts off — and the walk goes on as in
/// [`fast_path`]. Anything else is left to the slow path unchanged.
pub fn fast_path_with_pgd_copy<H: MmuHw + ?Sized, M: PhysAccess + ?Sized>(
    hw: &H,
    mem: &M,
    ctx: &FaultContext,
    va: VirtAddr,
    write: bool,
) -> bool {
    let Some(active) = active_pgd(hw) else { return false };
    let (idx, table) = (va.pgd_index(), PageTable::view(mem, active));
    if va.region() == Region::P3 && table.pgd_raw(idx) == 0 {
        match PageTable::view(mem, ctx.swapper).pgd_raw(idx) {
            0 => return false,
            raw => match table.set_pgd_raw(idx, raw) {
                // SAFETY: the entry was empty: the TLB holds no translation
                // through it.
                Ok(p) => unsafe { p.discard() },
                Err(_) => return false,
            },
        }
    }
    fast_path(hw, mem, va, write)
}

/// `vmalloc_fault`: if `va` is a P3 address whose first-level entry is
/// missing in the active table but present in `swapper_pg_dir`, copy it.
/// Must be called with interrupts masked (it is one check-and-set).
/// Returns whether the active table now has the entry.
fn vmalloc_fault<M: PhysAccess + ?Sized>(mem: &M, active: Frame, swapper: Frame, va: VirtAddr) -> bool {
    if va.region() != Region::P3 {
        return false;
    }
    if mutation::enabled(Mutation::VmallocFaultVmallocOnly) && Window::of(va) != Some(Window::Vmalloc) {
        return false;
    }
    let idx = va.pgd_index();
    let (act, reference) = (PageTable::view(mem, active), PageTable::view(mem, swapper));
    if act.pgd_raw(idx) != 0 {
        return true; // somebody (a nested fault) already copied it
    }
    match reference.pgd_raw(idx) {
        0 => false,
        // idx = VA[31:22] < ENTRIES, so the write cannot be refused.
        raw => match act.set_pgd_raw(idx, raw) {
            Ok(p) => {
                // SAFETY: the entry was empty: no translation went through
                // it, so the TLB holds none (kernel entries are never cleared
                // once copied).
                unsafe { p.discard() };
                true
            }
            Err(_) => false,
        },
    }
}

fn fault(exc: &Exception, kind: FaultKind) -> FaultOutcome {
    let info = FaultInfo { addr: exc.tea, expevt: exc.expevt, kind, user: exc.user };
    if exc.tea.region() == Region::P0 && kind != FaultKind::AddressError {
        FaultOutcome::User(info)
    } else {
        FaultOutcome::Oops(info)
    }
}

/// The slow path of every TLB exception (miss, initial page write,
/// protection, address error).
///
/// For a miss: a missing first-level entry of a P3 address is repaired by
/// `vmalloc_fault`; a valid PTE is checked against the access (user/kernel,
/// read/write), marked accessed (and dirty on a permitted write) and loaded.
/// For an initial page write, the PTE is marked dirty and the TLB entry is
/// replaced (flushed, then loaded: never two entries for one page). The
/// whole check-and-set runs with interrupts masked.
pub fn handle_tlb_exception<H: MmuHw + ?Sized, M: PhysAccess + ?Sized>(
    hw: &H,
    mem: &M,
    ctx: &FaultContext,
    exc: &Exception,
) -> FaultOutcome {
    let va = exc.tea;
    let write = match exc.expevt {
        expevt::TLB_MISS_READ => false,
        expevt::TLB_MISS_WRITE | expevt::INITIAL_PAGE_WRITE => true,
        expevt::PROT_READ | expevt::PROT_WRITE => return fault(exc, FaultKind::Protection),
        expevt::ADDR_ERR_READ | expevt::ADDR_ERR_WRITE => return fault(exc, FaultKind::AddressError),
        _ => return fault(exc, FaultKind::Unexpected),
    };
    if exc.user && va.region() != Region::P0 {
        return fault(exc, FaultKind::AddressError);
    }
    if !va.is_translated() {
        return fault(exc, FaultKind::Unexpected);
    }
    let Some(active) = active_pgd(hw) else { return fault(exc, FaultKind::Unexpected) };
    // Masked from here to the LDTLB: the PTE read-modify-write below must not
    // lose an A/D bit that an interrupt handler's access sets in between
    // (on the CPU a handler can run between any two instructions; the model
    // lands interrupts only on MMU operations, so it cannot show this
    // window). The duplicate-entry protection is `tlb::load`'s own.
    let _irq = IrqGuard::new(hw);
    let table = PageTable::view(mem, active);
    if va.as_u32() >= P3_START
        && va.as_u32() < P3_END
        && table.pgd_raw(va.pgd_index()) == 0
        && !vmalloc_fault(mem, active, ctx.swapper, va)
    {
        return fault(exc, FaultKind::NotMapped);
    }
    let (slot, pte) = match table.entry(va) {
        Some((s, p)) if p.is_valid() => (s, p),
        Some((_, p)) if p.is_present() => return fault(exc, FaultKind::Protection),
        _ => return fault(exc, FaultKind::NotMapped),
    };
    let prot = pte.prot();
    if (exc.user && !prot.user()) || (write && !prot.writable()) {
        return fault(exc, FaultKind::Protection);
    }
    let mut new = pte.with(PteFlags::ACCESSED);
    if write {
        new = new.with(PteFlags::D);
    }
    if new != pte {
        let p = table.set_slot(slot, va, new);
        // SAFETY: `tlb::load` below invalidates this page (under the
        // current ASID, the one it was loaded under) before it loads it.
        unsafe { p.discard() };
    }
    // `load` invalidates before it loads, under the mask: for an initial page
    // write the clean entry is still in the UTLB; for a miss, an interrupt
    // taken between the exception and the mask may have faulted the same page
    // in already. Either way a plain LDTLB would leave two matching entries.
    tlb::load(hw, Page::containing(va), new);
    FaultOutcome::Retry
}
