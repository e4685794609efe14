//! The on-target tests. Each runs inside the booted kernel under QEMU.

use crate::exc::{probe_read, probe_write, TLB_EXCEPTIONS};
use crate::harness::TestFn;
use crate::{check, check_eq};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use sh4_mm::fault::FaultKind;
use sh4_mm::frame::{BitmapFrames, FailNth, P1Access};
use sh4_mm::pgtable::PageTable;
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::*;

/// The CPU's MMU and physical memory through P1: the capabilities the memory
/// manager and the exception path use.
// SAFETY: privileged code on the SH-4 (this kernel), and the memory manager
// (with the exception path it serves) is the only user of the MMU and of the
// frames it allocates.
pub const HW: Sh4Hw = unsafe { Sh4Hw::new() };
/// See [`HW`].
// SAFETY: as for `HW`.
pub const PHYS: P1Access = unsafe { P1Access::new() };

/// A view of one of the manager's first-level tables.
pub fn table(pgd: Frame) -> PageTable<'static, P1Access> {
    // SAFETY: callers pass frames the manager returned as first-level tables
    // (`swapper_pg_dir()`, `pgd()`), live while they use the view.
    unsafe { PageTable::new(&PHYS, pgd) }
}

pub static TESTS: &[(&str, TestFn)] = &[
    ("gcc_treg_combine_if_load_nonzero", gcc_if_load_nonzero),
    ("gcc_treg_combine_neighbours", gcc_neighbours),
    ("abi_layout_matches_c", abi_layout_matches_c),
    ("alloc_on_target", alloc_on_target),
    ("spin_mutex_soft_imask", spin_mutex_soft_imask),
    ("int64_int128_arithmetic", int_arithmetic),
    ("mmu_bringup", mmu_bringup),
    ("vmalloc_through_tlb_miss", vmalloc_through_tlb_miss),
    ("borrowed_mm_consistent_mapping", borrowed_mm_consistent_mapping),
    ("bad_input_is_an_error_not_a_hang", bad_input),
    ("tmu0_interrupt_on_every_instruction_of_the_miss_path", interrupt_sweep),
    ("vmalloc_fault_copy_in_the_fast_path", fast_path_pgd_copy),
    ("frame_allocation_failure_at_every_point", allocation_failures),
    ("fixmap_unmap_remap_never_multi_hits", fixmap_unmap_remap),
    ("user_mode_asids_and_faults", user_mode),
    ("initial_page_write_sets_dirty", initial_page_write),
    ("kmap_coherent_copy_user_page", kmap_coherent_copy),
    ("unmap_protect_of_an_inactive_mm_reaches_the_tlb", crate::inactive_mm::unmap_protect_inactive_mm),
    ("interrupt_handler_uses_the_mm_during_every_operation", crate::irqsweep::test),
    ("randomized_soak_with_interrupts", soak),
];

/// The randomized soak (soak.rs).
fn soak() -> Result<(), String> {
    let (ops, irqs, checks, dma) = crate::soak::run(crate::soak::OPS)?;
    println!("  ({ops} ops, {irqs} TMU0 interrupts, {checks} checked reads in handlers, {dma} DMA buffers allocated in handlers)");
    check!(irqs > 1000 && checks > 1000 && dma > 100, "interrupts must land throughout the soak");
    Ok(())
}

/// copy_user_page / clear_user_page on the CPU: the slots used have the user
/// address's colour, the data arrives, the slots' TLB entries are gone
/// afterwards and SR.IMASK is as before. (QEMU has no cache, so the colour
/// argument itself is proven on the host model.)
fn kmap_coherent_copy() -> Result<(), String> {
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let (src, dst, zero) = (filled_frame(mm, 0x5EED)?, filled_frame(mm, 0)?, filled_frame(mm, 0xFFFF)?);
        // SAFETY: reads SR.
        let sr0 = unsafe { sh4mm_get_sr() };
        for colour in 0..4u32 {
            let uva = VirtAddr::new(0x0040_0000 + colour * 4096);
            for bank in 0..2 {
                let slot = mm.kmap_coherent_slot_for(uva, bank).map_err(e)?;
                let va = layout::fix_to_virt(slot).ok_or("kmap slot outside the fixmap")?;
                check_eq!(va.colour(), colour, "slot colour for bank {bank}");
            }
            mm.copy_user_page(dst, src, uva).map_err(e)?;
            mm.clear_user_page(zero, uva).map_err(e)?;
            for bank in 0..2 {
                let va = layout::fix_to_virt(mm.kmap_coherent_slot_for(uva, bank).map_err(e)?)
                    .ok_or("kmap slot outside the fixmap")?;
                check_eq!(utlb_entries_for(va.as_u32() >> 10), 0, "slot {va} flushed after use");
            }
        }
        for off in [0u32, 0x400, 0xFFC] {
            // SAFETY: P2 views of our frames.
            let (d, z) = unsafe {
                (
                    ((dst.start().to_p2().as_u32() + off) as *const u32).read_volatile(),
                    ((zero.start().to_p2().as_u32() + off) as *const u32).read_volatile(),
                )
            };
            check_eq!((d, z), (0x5EED, 0), "copied / cleared at {off:#x}");
        }
        // SAFETY: reads SR.
        check_eq!(unsafe { sh4mm_get_sr() } & 0xF0, sr0 & 0xF0, "IMASK restored");
        check!(mm.memtypes().lookup(src.pfn()).is_none(), "kmap slots left no memtype record");
        for f in [src, dst, zero] {
            mm.allocator_mut().free(f, 1);
        }
        Ok(())
    })
}

extern "C" {
    fn sh4mm_user_call(entry: u32, user_sp: u32, arg: u32) -> u32;
    static sh4mm_user_prog: u8;
    static sh4mm_user_prog_end: u8;
}

/// A frame we own filled with `word`.
pub(crate) fn filled_frame(mm: &mut Kmm, word: u32) -> Result<Frame, String> {
    let f = mm.allocator_mut().alloc(1).ok_or("no frame")?;
    for k in 0..1024u32 {
        // SAFETY: our frame, through P2.
        unsafe { ((f.start().to_p2().as_u32() + k * 4) as *mut u32).write_volatile(word) };
    }
    Ok(f)
}

const UCODE: u32 = 0x0040_0000;
pub(crate) const USTACK: u32 = 0x0080_0000;
pub(crate) const UDATA: u32 = 0x0060_0000;
const UKERNEL_ONLY: u32 = 0x0050_0000;

/// A process: program page, stack page, a data page holding `word`, and a
/// P0 page only the kernel may touch.
pub(crate) fn make_process(mm: &mut Kmm, word: u32) -> Result<(MmId, [Frame; 4]), String> {
    let e = |e: MmError| alloc::format!("{e}");
    let code = mm.allocator_mut().alloc(1).ok_or("no frame")?;
    // SAFETY: copies the user program (a few bytes of text) into our frame.
    unsafe {
        let (s, end) = (&sh4mm_user_prog as *const u8, &sh4mm_user_prog_end as *const u8);
        core::ptr::copy_nonoverlapping(s, code.start().to_p2().as_u32() as *mut u8, end as usize - s as usize);
    }
    let (stack, data, konly) = (filled_frame(mm, 0)?, filled_frame(mm, word)?, filled_frame(mm, 0xCC)?);
    let p = mm.mm_create().map_err(e)?;
    let page = |a: u32| Page::containing(VirtAddr::new(a));
    mm.map_user(p, page(UCODE), code, 1, Prot::UserRead, CacheAttr::WriteBack).map_err(e)?;
    mm.map_user(p, page(USTACK), stack, 1, Prot::UserRw, CacheAttr::WriteBack).map_err(e)?;
    mm.map_user(p, page(UDATA), data, 1, Prot::UserRead, CacheAttr::WriteBack).map_err(e)?;
    mm.map_user(p, page(UKERNEL_ONLY), konly, 1, Prot::KernelRw, CacheAttr::WriteBack).map_err(e)?;
    Ok((p, [code, stack, data, konly]))
}

pub(crate) fn run_user(mm: &mut Kmm, p: MmId, arg: u32) -> Result<u32, String> {
    mm.switch_mm(p).map_err(|e| alloc::format!("{e}"))?;
    *crate::exc::USER_FAULT.lock() = None;
    // SAFETY: p maps the user program, stack and data; the program traps back.
    Ok(unsafe { sh4mm_user_call(UCODE, USTACK + 4096, arg) })
}

fn user_mode() -> Result<(), String> {
    use crate::exc::USER_KILLED;
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let live = mm.allocator().inner().live();
        let (a, fa) = make_process(mm, 0xAAAA)?;
        let (b, fb) = make_process(mm, 0xBBBB)?;
        check_eq!(run_user(mm, a, UDATA)?, 0xAAAA, "process A reads its page from user mode");
        check_eq!(run_user(mm, b, UDATA)?, 0xBBBB, "process B, same address, own ASID");
        check_eq!(run_user(mm, a, UDATA + 8)?, 0xAAAA, "A again (its ASID entries survive)");
        let v = mm.vmalloc(4096).map_err(e)?;
        // The SH7750 raises an address error (0x0E0) for any user access
        // above 0x8000_0000; QEMU looks P3 up in the TLB instead, so the fast
        // path loads the kernel entry and the access is a protection
        // violation (0x0A0). Either way the program is killed.
        let r = run_user(mm, a, v.as_u32())?;
        check!(r == USER_KILLED | 0x0E0 || r == USER_KILLED | 0x0A0, "user access to P3 must be refused: {r:#x}");
        let f = crate::exc::USER_FAULT.lock().take().ok_or("no fault recorded")?;
        check!(f.user && matches!(f.kind, FaultKind::AddressError | FaultKind::Protection), "P3 fault info {f:?}");
        check_eq!(run_user(mm, a, 0x0070_0000)?, USER_KILLED | 0x040, "unmapped user page");
        let f = crate::exc::USER_FAULT.lock().take().ok_or("no fault recorded")?;
        check_eq!((f.kind, f.user, f.addr.as_u32()), (FaultKind::NotMapped, true, 0x0070_0000), "fault info");
        check_eq!(run_user(mm, a, UKERNEL_ONLY)?, USER_KILLED | 0x0A0, "user read of a kernel-only page");
        check_eq!(run_user(mm, b, UDATA)?, 0xBBBB, "B still fine after A's faults");
        mm.vfree(v).map_err(e)?;
        mm.switch_mm(INIT_MM).map_err(e)?;
        for (p, frames) in [(a, fa), (b, fb)] {
            mm.mm_put(p, |_, _| {}).map_err(e)?;
            for f in frames {
                mm.allocator_mut().free(f, 1);
            }
        }
        check_eq!(mm.allocator().inner().live(), live, "processes freed");
        Ok(())
    })
}

fn initial_page_write() -> Result<(), String> {
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let f = filled_frame(mm, 0)?;
        let p = mm.mm_create().map_err(e)?;
        let va = VirtAddr::new(0x0090_0000);
        mm.map_user(p, Page::containing(va), f, 1, Prot::UserRw, CacheAttr::WriteBack).map_err(e)?;
        check!(!mm.translate(p, va).map_err(e)?.1.flags().contains(PteFlags::D), "mapped clean");
        mm.switch_mm(p).map_err(e)?;
        let slow = TLB_EXCEPTIONS.load(Ordering::Relaxed);
        // SAFETY: privileged write to a mapped user page: miss, then 0x080.
        unsafe { ((va.as_u32() + 4) as *mut u32).write_volatile(0x1D) };
        check_eq!(TLB_EXCEPTIONS.load(Ordering::Relaxed) - slow, 1, "one initial-page-write exception");
        check!(mm.translate(p, va).map_err(e)?.1.flags().contains(PteFlags::D), "dirty now");
        check_eq!(utlb_entries_for(va.as_u32() >> 10), 1, "the clean entry was replaced, not duplicated");
        // SAFETY: P2 view of our frame.
        check_eq!(unsafe { ((f.start().to_p2().as_u32() + 4) as *const u32).read_volatile() }, 0x1D, "data");
        mm.switch_mm(INIT_MM).map_err(e)?;
        mm.mm_put(p, |_, _| {}).map_err(e)?;
        mm.allocator_mut().free(f, 1);
        Ok(())
    })
}

/// Maps frame 1 at a fixmap slot (preloading the TLB), reads it, unmaps it
/// and maps frame 2 (preloading again) — through `fixmap_unmap`/`fixmap_map`
/// (which flush, and invalidate before loading) or, with `forget_flush`,
/// straight in the table and with a bare LDTLB as a buggy kernel would —
/// makes QEMU drop its own TLB (ASID bounce, so a duplicate is detected) and
/// reads. Without the flush the UTLB holds two entries for the slot: a
/// multiple hit, which the flash image reports (exit 126).
pub fn fixmap_remap_sequence(mm: &mut Kmm, forget_flush: bool) -> Result<u32, String> {
    let e = |e: MmError| alloc::format!("{e}");
    let f1 = mm.allocator_mut().alloc(1).ok_or("no frame")?;
    let f2 = mm.allocator_mut().alloc(1).ok_or("no frame")?;
    for (f, v) in [(f1, 0xF1u32), (f2, 0xF2)] {
        // SAFETY: frames we own, through P2.
        unsafe { (f.start().to_p2().as_u32() as *mut u32).write_volatile(v) };
    }
    let slot = mm.fixmap_alloc().map_err(e)?;
    let va = mm.fixmap_map(slot, f1, Prot::KernelRw, CacheAttr::WriteBack).map_err(e)?;
    // SAFETY: the slot is mapped.
    let first = unsafe { (va.as_u32() as *const u32).read_volatile() };
    check_eq!(first, 0xF1, "first mapping");
    if forget_flush {
        // A buggy kernel: unmaps in the table without the flush, then maps
        // and preloads with a bare LDTLB, without invalidating first (what
        // `fixmap_unmap` and `tlb::load` each do).
        let t = crate::tests::table(mm.swapper_pg_dir());
        let (_, unmapped) = t.unmap(Page::containing(va), 1, |_, _| {});
        let pte = Pte::new(f2, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::SH | PteFlags::D | PteFlags::ACCESSED);
        let remapped = t.set(va, pte).map_err(e)?;
        // SAFETY: not safe: this is the buggy kernel whose multiple hit the
        // runner must report (selftest=multihit); the machine stops there.
        unsafe {
            unmapped.discard();
            remapped.discard();
        }
        let hw = mm.hw();
        let m = hw.mmucr();
        let urc = (((m & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT) + 1) % hw::UTLB_ENTRIES;
        hw.set_mmucr((m & !(hw::MMUCR_URC_MASK | hw::MMUCR_TI)) | (urc << hw::MMUCR_URC_SHIFT));
        hw.set_pteh(va.as_u32() | (hw.pteh() & 0xFF));
        hw.set_ptel(pte.ptel());
        hw.ldtlb();
    } else {
        mm.fixmap_unmap(slot).map_err(e)?;
        mm.fixmap_map(slot, f2, Prot::KernelRw, CacheAttr::WriteBack).map_err(e)?;
    }
    let pteh = mm.hw().pteh();
    mm.hw().set_pteh(pteh ^ 1);
    mm.hw().set_pteh(pteh);
    // SAFETY: the slot is mapped (to f2).
    let second = unsafe { (va.as_u32() as *const u32).read_volatile() };
    let entries = utlb_entries_for(va.as_u32() >> 10);
    mm.fixmap_unmap(slot).map_err(e)?;
    mm.fixmap_free(slot).map_err(e)?;
    mm.allocator_mut().free(f1, 1);
    mm.allocator_mut().free(f2, 1);
    check_eq!(entries, 1, "UTLB entries for the slot");
    Ok(second)
}

fn fixmap_unmap_remap() -> Result<(), String> {
    with_mm(|mm| {
        let v = fixmap_remap_sequence(mm, false)?;
        check_eq!(v, 0xF2, "the remapped frame");
        Ok(())
    })
}

/// Sum of swapper_pg_dir's first-level words and of the PTEs they reach:
/// a cheap fingerprint of the kernel tables.
fn swapper_fingerprint(mm: &Kmm) -> u32 {
    let t = crate::tests::table(mm.swapper_pg_dir());
    let mut sum = 0u32;
    for i in 0..1024 {
        sum = sum.wrapping_mul(31).wrapping_add(t.pgd_raw(i));
        if let Some(pt) = t.pte_table(i) {
            for j in 0..1024u32 {
                let w = PHYS.read_u32(PhysAddr::new(pt.start().as_u32() + j * 4).unwrap());
                sum = sum.wrapping_mul(31).wrapping_add(w);
            }
        }
    }
    sum
}

/// Frame allocation fails at the 1st, 2nd, ... call of mm creation, vmalloc,
/// ioremap and dma_alloc_coherent: every failure leaves the kernel tables and
/// the frame count as they were; then the operation succeeds and is undone.
///
/// Every failure point is tried, except for the 6 MiB vmalloc: its 1536+
/// points are one loop over data frames (the same code at each index), then
/// the page-table pages the area still lacks (none if earlier tests created
/// them), so it tries the first 8, every 40th, and every point of the final
/// stretch (the last data frames and any page-table allocation); a 5-page
/// vmalloc is then swept at every point. (Trying all ~1540, each redoing up
/// to 1540 allocations, was 98% of the on-target run: 16 s of 16.6 on QEMU.)
fn allocation_failures() -> Result<(), String> {
    with_mm(|mm| {
        type Op = fn(&mut Kmm) -> Result<(), MmError>;
        let ops: [(&str, Op, u32); 5] = [
            ("mm_create", |mm| mm.mm_create().and_then(|p| mm.mm_put(p, |_, _| {})), 1),
            ("vmalloc 6 MiB", |mm| mm.vmalloc(6 << 20).and_then(|v| mm.vfree(v)), 40),
            ("vmalloc 5 pages", |mm| mm.vmalloc(5 << 12).and_then(|v| mm.vfree(v)), 1),
            (
                "ioremap",
                |mm| {
                    mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), 9 << 20, CacheAttr::Uncached)
                        .and_then(|v| mm.iounmap(v))
                },
                1,
            ),
            ("dma_alloc_coherent", |mm| mm.dma_alloc_coherent(5 * 4096).and_then(|b| mm.dma_free_coherent(b.va)), 1),
        ];
        for (name, op, stride) in ops {
            let (points, tried) = failure_sweep(mm, name, op, stride)?;
            println!("  ({name}: {points} failure points, {tried} tried, each clean)");
            check!(points > 0, "{name}: allocates at least once");
        }
        Ok(())
    })
}

/// Makes the `n`-th frame allocation of `op` fail: `Ok(true)` if `op` failed
/// and left frames, kernel tables and areas as they were, `Ok(false)` if it
/// made fewer than `n` allocations (it succeeded and undid itself).
fn fail_at(mm: &mut Kmm, name: &str, op: fn(&mut Kmm) -> Result<(), MmError>, n: u32) -> Result<bool, String> {
    let (live, fp, areas) = (mm.allocator().inner().live(), swapper_fingerprint(mm), mm.vm_areas() + mm.dma_buffers());
    mm.allocator_mut().fail_nth(Some(n));
    let r = op(mm);
    mm.allocator_mut().fail_nth(None);
    match r {
        Err(MmError::OutOfFrames) => {
            check_eq!(mm.allocator().inner().live(), live, "{name}: frames leaked by failure #{n}");
            check_eq!(swapper_fingerprint(mm), fp, "{name}: swapper_pg_dir changed by failure #{n}");
            check_eq!(mm.vm_areas() + mm.dma_buffers(), areas, "{name}: areas leaked by failure #{n}");
            Ok(true)
        }
        Err(e) => Err(alloc::format!("{name}: failure #{n} gave {e}")),
        Ok(()) => Ok(false),
    }
}

/// Tries failure points 1, 2, ... (with `stride` > 1: 1..=8, then every
/// `stride`-th, then every point between the last failing sample and the
/// first success) until `op` succeeds. Returns (failure points, points tried).
fn failure_sweep(
    mm: &mut Kmm,
    name: &str,
    op: fn(&mut Kmm) -> Result<(), MmError>,
    stride: u32,
) -> Result<(u32, u32), String> {
    let (mut n, mut last_failed, mut tried) = (1u32, 0u32, 0u32);
    loop {
        tried += 1;
        if !fail_at(mm, name, op, n)? {
            break;
        }
        last_failed = n;
        n += if n < 8 { 1 } else { stride };
        check!(n < 5000, "{name}: never succeeds");
    }
    // `op` makes fewer than n allocations and at least last_failed: try
    // every point in between.
    for m in last_failed + 1..n {
        tried += 1;
        if !fail_at(mm, name, op, m)? {
            return Ok((m - 1, tried));
        }
    }
    Ok((n - 1, tried))
}

/// A P3 page whose first-level entry the active mm lacks (the mm predates
/// its 4 MiB region): the assembly fast path copies swapper's entry and
/// loads the PTE, with no trip through the Rust slow path; the copied entry
/// is swapper's, and the data is right.
fn fast_path_pgd_copy() -> Result<(), String> {
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let p = mm.mm_create().map_err(e)?;
        let fill = mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), 4 << 20, CacheAttr::Uncached).map_err(e)?;
        let v = mm.vmalloc(4096).map_err(e)?;
        let r = (|| {
            let idx = v.pgd_index();
            let (active, swapper) = (table(mm.pgd(p).map_err(e)?), table(mm.swapper_pg_dir()));
            // As if p predated the region.
            let pending = active.set_pgd_raw(idx, 0).map_err(e)?;
            // SAFETY: p never ran: the TLB holds nothing of its table.
            unsafe { pending.discard() };
            check!(swapper.pgd_raw(idx) != 0, "swapper maps the region");
            let (pa, _) = mm.translate(INIT_MM, v).map_err(e)?;
            // SAFETY: the frame behind the page just mapped, through P2.
            unsafe { (pa.to_p2().as_u32() as *mut u32).write_volatile(0xFA57) };
            mm.switch_mm(p).map_err(e)?;
            let slow = TLB_EXCEPTIONS.load(Ordering::Relaxed);
            // SAFETY: mapped in swapper; p's table lacks the entry.
            let got = unsafe { (v.as_u32() as *const u32).read_volatile() };
            let slow = TLB_EXCEPTIONS.load(Ordering::Relaxed) - slow;
            mm.switch_mm(INIT_MM).map_err(e)?;
            check_eq!(got, 0xFA57, "data through the copied entry");
            check_eq!(slow, 0, "no slow-path exception: the fast path copied the entry");
            check_eq!(active.pgd_raw(idx), swapper.pgd_raw(idx), "the active table now has swapper's entry");
            check_eq!(utlb_entries_for(v.as_u32() >> 10), 1, "one UTLB entry for the page");
            Ok(())
        })();
        mm.switch_mm(INIT_MM).map_err(e)?;
        mm.mm_put(p, |_, _| {}).map_err(e)?;
        mm.vfree(v).map_err(e)?;
        mm.iounmap(fill).map_err(e)?;
        r
    })
}

fn interrupt_sweep() -> Result<(), String> {
    with_mm(|mm| {
        // ~600 instructions from the miss to the retried load (benchmarks),
        // about 1.9 TMU ticks each under -icount shift=7: sweep past the end.
        // Every placement inside the masked section (IrqGuard to LDTLB) is
        // taken at the one PC that unmasks, so the distinct PCs are about the
        // unmasked instructions of the path (~100 since the lean dispatch).
        let r = crate::inject::interrupt_on_every_instruction(mm, 1200);
        crate::exc::fast_path_pgd_copy(Some(mm.swapper_pg_dir().start().to_p1().as_u32()));
        let (n, distinct) = r?;
        println!("  ({n} placements, interrupt taken at {distinct} distinct PCs)");
        check!(distinct > 80, "the interrupt must land all along the path ({distinct} PCs)");
        Ok(())
    })
}

// ------------------------------------------------------------ GCC bug
//
// GCC 12.2's sh_treg_combine pass deleted the load and `tst` in front of a
// conditional branch, so the branch used whatever T held before the call.
// Each function is called with T preset to 0 and to 1 (sh4mm_call_with_t).

type Probe = extern "C" fn(*const u32, *mut u32) -> u32;

extern "C" {
    fn sh4mm_call_with_t(f: Probe, a: *const u32, b: *mut u32, t: u32) -> u32;
    fn sh4mm_get_sr() -> u32;
    static sh4mm_abi_probe: [u32; 10];
}

/// `int g(int *q, int *p) { if (*q) *p = 5; return 1; }`
#[inline(never)]
#[no_mangle]
extern "C" fn treg_if_nonzero(q: *const u32, p: *mut u32) -> u32 {
    // SAFETY: the test passes valid pointers to locals.
    unsafe {
        if *q != 0 {
            *p = 5;
        }
    }
    1
}

#[inline(never)]
#[no_mangle]
extern "C" fn treg_if_zero(q: *const u32, p: *mut u32) -> u32 {
    // SAFETY: as above.
    unsafe {
        if *q == 0 {
            *p = 7;
        }
    }
    1
}

#[inline(never)]
#[no_mangle]
extern "C" fn treg_if_u8(q: *const u32, p: *mut u32) -> u32 {
    // SAFETY: as above; reads the low byte.
    unsafe {
        if *(q as *const u8) != 0 {
            *p = 5;
        }
    }
    1
}

#[inline(never)]
#[no_mangle]
extern "C" fn treg_if_u16_eq(q: *const u32, p: *mut u32) -> u32 {
    // SAFETY: as above; reads the low half-word.
    unsafe {
        if *(q as *const u16) == 0 {
            *p = 7;
        }
    }
    1
}

#[inline(never)]
#[no_mangle]
extern "C" fn treg_if_volatile(q: *const u32, p: *mut u32) -> u32 {
    // SAFETY: as above.
    unsafe {
        if q.read_volatile() != 0 {
            p.write_volatile(5);
        }
    }
    1
}

/// Calls `f(&q, &p)` for several `q` with T preset both ways; `mask` is the
/// width `f` loads (little endian: the low bytes) and `expect` what it must
/// store into `p` (0xAA = untouched).
fn check_probe(name: &str, f: Probe, mask: u32, expect: fn(u32) -> Option<u32>) -> Result<(), String> {
    for q in [0u32, 1, 0x100, 0x1_0000] {
        for t in [0u32, 1] {
            let mut p = 0xAAu32;
            // SAFETY: `f` only touches the two locals passed.
            let r = unsafe { sh4mm_call_with_t(f, &q, &mut p, t) };
            check_eq!(r, 1, "{name}: return value");
            check_eq!(p, expect(q & mask).unwrap_or(0xAA), "{name} with *q={q:#x}, T={t} beforehand");
        }
    }
    Ok(())
}

fn gcc_if_load_nonzero() -> Result<(), String> {
    check_probe("if (*q) *p = 5", treg_if_nonzero, u32::MAX, |q| (q != 0).then_some(5))
}

fn gcc_neighbours() -> Result<(), String> {
    check_probe("if (*q == 0) *p = 7", treg_if_zero, u32::MAX, |q| (q == 0).then_some(7))?;
    check_probe("u8: if (*q) *p = 5", treg_if_u8, 0xFF, |q| (q != 0).then_some(5))?;
    check_probe("u16: if (*q == 0) *p = 7", treg_if_u16_eq, 0xFFFF, |q| (q == 0).then_some(7))?;
    check_probe("volatile: if (*q) *p = 5", treg_if_volatile, u32::MAX, |q| (q != 0).then_some(5))
}

// ------------------------------------------------------------ ABI

#[repr(C)]
struct AbiProbe {
    a: u8,
    b: u64,
    c: f64,
    d: u16,
    e: u32,
}

fn abi_layout_matches_c() -> Result<(), String> {
    // SAFETY: a constant array defined in kernel/asm/abi_probe.c.
    let c = unsafe { sh4mm_abi_probe };
    let rust = [
        core::mem::size_of::<AbiProbe>() as u32,
        core::mem::align_of::<AbiProbe>() as u32,
        core::mem::offset_of!(AbiProbe, b) as u32,
        core::mem::offset_of!(AbiProbe, c) as u32,
        core::mem::offset_of!(AbiProbe, d) as u32,
        core::mem::offset_of!(AbiProbe, e) as u32,
        core::mem::align_of::<u64>() as u32,
        core::mem::align_of::<f64>() as u32,
        core::mem::size_of::<core::ffi::c_long>() as u32,
        core::mem::size_of::<*const u8>() as u32,
    ];
    check_eq!(rust, c, "Rust layout vs sh4-linux-gnu-gcc");
    check_eq!(c[2], 4, "u64 is 4-byte aligned in the SH ABI");
    Ok(())
}

// ------------------------------------------------------------ runtime

fn alloc_on_target() -> Result<(), String> {
    let before = crate::heap::used();
    {
        let v: Vec<u32> = (0..1000).collect();
        check_eq!(v.iter().sum::<u32>(), 499_500, "Vec sum");
        let b = Box::new([7u8; 3000]);
        check_eq!(b[2999], 7, "Box");
        let mut m = BTreeMap::new();
        for i in 0..200u32 {
            m.insert(i * 7 % 200, i);
        }
        check_eq!(m.len(), 200, "BTreeMap");
        check!(crate::heap::used() > before, "heap in use");
    }
    check_eq!(crate::heap::used(), before, "everything freed");
    Ok(())
}

fn spin_mutex_soft_imask() -> Result<(), String> {
    static M: spin::Mutex<u32> = spin::Mutex::new(0);
    // SAFETY: reads SR.
    let sr0 = unsafe { sh4mm_get_sr() };
    for _ in 0..100 {
        *M.lock() += 1;
    }
    check_eq!(*M.lock(), 100, "counter");
    check!(M.try_lock().is_some(), "unlocked after use");
    let g = M.lock();
    check!(M.try_lock().is_none(), "try_lock fails while held");
    drop(g);
    // SAFETY: reads SR.
    let sr1 = unsafe { sh4mm_get_sr() };
    check_eq!(sr0 & 0xF0, sr1 & 0xF0, "IMASK restored after the atomic sequences");
    let a = core::sync::atomic::AtomicU32::new(5);
    check_eq!(a.compare_exchange(5, 9, Ordering::SeqCst, Ordering::SeqCst), Ok(5), "CAS");
    check_eq!(a.fetch_add(3, Ordering::SeqCst), 9, "fetch_add");
    check_eq!(a.load(Ordering::SeqCst), 12, "load");
    Ok(())
}

#[inline(never)]
fn black_box<T>(x: T) -> T {
    core::hint::black_box(x)
}

fn int_arithmetic() -> Result<(), String> {
    let (a, b) = (black_box(0x1234_5678_9ABC_DEF0u64), black_box(0x1_0000_0001u64));
    check_eq!(a / b, 0x1234_5678, "u64 div");
    check_eq!(a % b, 0x1234_5678_9ABC_DEF0 - 0x1234_5678 * 0x1_0000_0001, "u64 rem");
    check_eq!(black_box(1000u32) / black_box(7u32), 142, "u32 div (libgcc)");
    check_eq!(black_box(-1000i32) / black_box(7i32), -142, "i32 div (libgcc)");
    let w = black_box(u64::MAX as u128) * black_box(3u128);
    check_eq!((w >> 64) as u64, 2, "u128 mul high");
    check_eq!(alloc::format!("{}", black_box(123_456_789_012u64)), "123456789012", "formatting u64");
    Ok(())
}

// ------------------------------------------------------------ MM on target

/// RAM above the kernel image and heap: 0x0d00_0000..0x1000_0000.
pub type Kmm = MemoryManager<Sh4Hw, P1Access, FailNth<BitmapFrames<384>>>;
/// The kernel's memory manager: interrupt handlers may use it too (the lock
/// masks interrupts while held and never spins; see `sh4_mm::irqlock`).
pub static MM: sh4_mm::irqlock::IrqLock<Option<Kmm>, Sh4Hw> = sh4_mm::irqlock::IrqLock::new(HW, None);

/// What every test must leave as it found it: frames held (kernel PTE pages
/// aside: they are never freed), areas, buffers, address spaces, memtype
/// records, deferred frees, the active mm, SR.IMASK, the interrupt hook and
/// TMU0's start bit.
pub fn system_state() -> String {
    let imask = (unsafe_sr() >> 4) & 0xF;
    let hook = crate::exc::IRQ_HOOK.try_lock().map(|h| h.is_some());
    // SAFETY: TMU TSTR, a P4 register read at its width.
    let tstr = unsafe { (0xFFD8_0004usize as *const u8).read_volatile() };
    let mm = match MM.lock() {
        Ok(g) => match g.as_ref() {
            Some(mm) => alloc::format!(
                "frames {} areas {} dma {} mms {} memtypes {} deferred {} active {:?}",
                mm.allocator().inner().live() - mm.kernel_pte_pages() as u32,
                mm.vm_areas(),
                mm.dma_buffers(),
                mm.live_mms(),
                mm.memtypes().len(),
                mm.deferred_frees(),
                mm.active()
            ),
            None => String::from("no mm"),
        },
        Err(_) => String::from("MM locked"),
    };
    alloc::format!("{mm}, IMASK {imask}, irq hook {hook:?}, TSTR {tstr}")
}

fn unsafe_sr() -> u32 {
    // SAFETY: reads SR.
    unsafe { sh4mm_get_sr() }
}

/// Selftest (`selftest=leak`): a test that passes but leaves a vmalloc area
/// behind; the harness must fail it.
pub fn leaky() -> Result<(), String> {
    with_mm(|mm| mm.vmalloc(4096).map(|_| ()).map_err(|e| alloc::format!("{e}")))
}

pub(crate) fn with_mm<R>(f: impl FnOnce(&mut Kmm) -> Result<R, String>) -> Result<R, String> {
    let mut g = MM.lock().map_err(|_| String::from("MM lock held by the interrupted code"))?;
    let mm = g.as_mut().ok_or_else(|| String::from("MMU not brought up"))?;
    f(mm)
}

pub fn mmu_bringup() -> Result<(), String> {
    let frames = FailNth::new(BitmapFrames::new(Frame::from_pfn(0x0D000).unwrap(), 12288));
    let mm = MemoryManager::new(HW, PHYS, frames).map_err(|e| alloc::format!("{e}"))?;
    crate::exc::set_fault_context(mm.fault_context());
    mm.enable_mmu();
    check_eq!(mm.hw().mmucr() & 1, 1, "MMUCR.AT");
    check_eq!(mm.hw().ttb(), mm.swapper_pg_dir().start().to_p1().as_u32(), "TTB = swapper_pg_dir");
    println!("  (console still works with translation on)");
    *MM.lock().map_err(|_| String::from("MM lock held"))? = Some(mm);
    Ok(())
}

fn vmalloc_through_tlb_miss() -> Result<(), String> {
    with_mm(|mm| {
        let (live, ptes) = (mm.allocator().inner().live(), mm.kernel_pte_pages() as u32);
        let v = mm.vmalloc(3 * 4096).map_err(|e| alloc::format!("{e}"))?;
        let misses = TLB_EXCEPTIONS.load(Ordering::Relaxed);
        for i in 0..3u32 {
            let p = (v.as_u32() + i * 4096 + 16) as *mut u32;
            // SAFETY: inside the area just mapped.
            unsafe { p.write_volatile(0x5A00 + i) };
        }
        for i in 0..3u32 {
            let p = (v.as_u32() + i * 4096 + 16) as *const u32;
            // SAFETY: as above.
            check_eq!(unsafe { p.read_volatile() }, 0x5A00 + i, "page {i}");
        }
        let slow = TLB_EXCEPTIONS.load(Ordering::Relaxed) - misses;
        check_eq!(slow, 0, "swapper has the entries: the assembly fast path served every miss");
        for i in 0..3u32 {
            let vpn = (v.as_u32() + i * 4096) >> 10;
            check_eq!(utlb_entries_for(vpn), 1, "page {i}: exactly one valid UTLB entry");
        }
        // The data really is in the frame the page table names.
        let (pa, _) = mm.translate(INIT_MM, VirtAddr::new(v.as_u32() + 4096)).map_err(|e| alloc::format!("{e}"))?;
        // SAFETY: P2 alias of a frame we own.
        check_eq!(unsafe { ((pa.to_p2().as_u32() + 16) as *const u32).read_volatile() }, 0x5A01, "P2 alias");
        mm.vfree(v).map_err(|e| alloc::format!("{e}"))?;
        // Flushed on vfree: the stale TLB entry must not satisfy this read.
        match probe_read(v.as_u32() + 16) {
            Err(i) => check_eq!(i.kind, FaultKind::NotMapped, "read after vfree"),
            Ok(x) => return Err(alloc::format!("read after vfree returned {x:#x}: stale TLB entry")),
        }
        let new_ptes = mm.kernel_pte_pages() as u32 - ptes;
        check_eq!(mm.allocator().inner().live(), live + new_ptes, "frames returned (kernel PTE pages are kept)");
        Ok(())
    })
}

extern "C" {
    fn sh4mm_array_read(addr: u32) -> u32;
}

/// Valid UTLB entries whose VPN (VA\[31:10\]) is `vpn` (address array, read from P2).
pub fn utlb_entries_for(vpn: u32) -> u32 {
    (0..64u32)
        .filter(|i| {
            // SAFETY: reads one UTLB address-array word through the P2 helper.
            let a = unsafe { sh4mm_array_read(0xF600_0000 | (i << 8)) };
            a & 0x100 != 0 && a >> 10 == vpn
        })
        .count() as u32
}

/// The valid UTLB entries for `vpn` (VA >> 10): (index, address word, data word).
pub fn utlb_dump(vpn: u32) -> Vec<(u32, u32, u32)> {
    let _masked = sh4_mm::hw::IrqGuard::new(&HW);
    (0..64u32)
        .filter_map(|i| {
            // SAFETY: reads UTLB address/data-array words through the P2 helper.
            let (a, d) =
                unsafe { (sh4mm_array_read(0xF600_0000 | (i << 8)), sh4mm_array_read(0xF700_0000 | (i << 8))) };
            (a & 0x100 != 0 && a >> 10 == vpn).then_some((i, a, d))
        })
        .collect()
}

/// Two valid UTLB entries that one access could match (same VPN, and shared
/// or the same ASID): a latent TLB multiple hit. QEMU only notices one when
/// its own soft TLB misses, so the suite looks for them itself.
pub fn utlb_duplicate() -> Option<((u32, u32), (u32, u32))> {
    let mut e: Vec<(u32, u32)> = Vec::with_capacity(64);
    // One snapshot: an interrupt in the middle of the scan could move an
    // entry from a slot already read to one not read yet.
    let _masked = sh4_mm::hw::IrqGuard::new(&HW);
    for i in 0..64u32 {
        // SAFETY: reads UTLB address/data-array words through the P2 helper.
        let (a, d) = unsafe { (sh4mm_array_read(0xF600_0000 | (i << 8)), sh4mm_array_read(0xF700_0000 | (i << 8))) };
        if a & 0x100 != 0 {
            e.push((a, d));
        }
    }
    for (i, &(a, d)) in e.iter().enumerate() {
        for &(b, f) in &e[i + 1..] {
            let shared = d & 2 != 0 || f & 2 != 0;
            if a >> 10 == b >> 10 && (shared || a & 0xFF == b & 0xFF) {
                return Some(((a, d), (b, f)));
            }
        }
    }
    None
}

extern "C" {
    fn sh4mm_call_on_stack(f: extern "C" fn(u32) -> u32, arg: u32, stack_top: u32) -> u32;
}

/// The kernel thread's body: runs on its own stack, on the mm it borrowed.
extern "C" fn kthread_touch(addr: u32) -> u32 {
    // SAFETY: `addr` is inside the DMA buffer the test allocated.
    unsafe {
        (addr as *mut u32).write_volatile(0xD1A);
        (addr as *const u32).read_volatile()
    }
}

/// Process A runs in user mode; a driver then allocates a consistent buffer
/// (only swapper_pg_dir gets the new first-level entry); the scheduler
/// switches to a kernel thread, which borrows A's mm and touches the buffer
/// on its own stack: the TLB miss must go through vmalloc_fault into A's
/// table. Then A runs again.
fn borrowed_mm_consistent_mapping() -> Result<(), String> {
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let live = mm.allocator().inner().live();
        let (p, frames) = make_process(mm, 0xA11CE)?;
        let mut boot = TaskMm::boot();
        let mut proc_a = TaskMm::user(p);
        let mut kthread = TaskMm::kernel_thread();
        mm.context_switch(&mut boot, &mut proc_a).map_err(e)?;
        check_eq!(run_user(mm, p, UDATA)?, 0xA11CE, "A runs in user mode");
        let buf = mm.dma_alloc_coherent(8192).map_err(e)?;
        let idx = buf.va.pgd_index();
        let table = |mm: &Kmm| crate::tests::table(mm.pgd(p).unwrap()).pgd_raw(idx);
        check_eq!(table(mm), 0, "p predates the consistent mapping");
        mm.context_switch(&mut proc_a, &mut kthread).map_err(e)?;
        check_eq!(kthread.active_mm, Some(p), "the kernel thread borrowed A's mm");
        check_eq!(mm.hw().ttb(), mm.pgd(p).map_err(e)?.start().to_p1().as_u32(), "TTB is still A's table");
        // The thread's stack is P1 memory: the exception entry pushes its frame
        // with SR.BL=1, so a kernel stack must never take a TLB miss.
        let kstack = mm.allocator_mut().alloc(2).ok_or("no frames for the stack")?;
        let slow = TLB_EXCEPTIONS.load(Ordering::Relaxed);
        // SAFETY: runs kthread_touch on a stack we own; it returns.
        let got = unsafe {
            sh4mm_call_on_stack(kthread_touch, buf.va.as_u32() + 4096 + 8, kstack.start().to_p1().as_u32() + 2 * 4096)
        };
        check_eq!(got, 0xD1A, "the kernel thread reads what it wrote through P3");
        // The assembly fast path does vmalloc_fault's copy itself (SR.BL=1).
        check_eq!(
            TLB_EXCEPTIONS.load(Ordering::Relaxed),
            slow,
            "no slow-path exception: the fast path copied the entry"
        );
        check_eq!(
            table(mm),
            crate::tests::table(mm.swapper_pg_dir()).pgd_raw(idx),
            "swapper's entry was copied into the borrowed mm"
        );
        // SAFETY: uncached alias of the buffer's second frame.
        let via_p2 = unsafe { ((buf.phys.to_p2().as_u32() + 4096 + 8) as *const u32).read_volatile() };
        check_eq!(via_p2, 0xD1A, "the device sees it (uncached)");
        mm.context_switch(&mut kthread, &mut proc_a).map_err(e)?;
        check_eq!(kthread.active_mm, None, "the borrow is returned");
        check_eq!(run_user(mm, p, UDATA)?, 0xA11CE, "A runs again");
        mm.context_switch(&mut proc_a, &mut boot).map_err(e)?;
        mm.switch_mm(INIT_MM).map_err(e)?;
        mm.allocator_mut().free(kstack, 2);
        mm.dma_free_coherent(buf.va).map_err(e)?;
        // boot (a kernel thread) holds a borrow of p now: mm_drop gives it back
        // (a TaskMm has no Drop of its own).
        mm.mm_drop(p).map_err(e)?;
        mm.mm_put(p, |_, _| {}).map_err(e)?;
        check!(mm.pgd(p).is_err(), "p freed");
        for f in frames {
            mm.allocator_mut().free(f, 1);
        }
        check!(mm.allocator().inner().live() >= live, "only kernel PTE pages may remain");
        Ok(())
    })
}

fn bad_input() -> Result<(), String> {
    with_mm(|mm| {
        match probe_read(0xC300_0000) {
            Err(i) => {
                check_eq!(
                    (i.kind, i.expevt, i.addr.as_u32()),
                    (FaultKind::NotMapped, 0x040, 0xC300_0000),
                    "unmapped read"
                );
            }
            Ok(v) => return Err(alloc::format!("unmapped P3 read returned {v:#x}")),
        }
        match probe_write(0xDF00_0000, 1) {
            Err(i) => check_eq!((i.kind, i.expevt), (FaultKind::NotMapped, 0x060), "unmapped write"),
            Ok(()) => return Err("unmapped P3 write succeeded".into()),
        }
        check_eq!(mm.vmalloc(0), Err(MmError::ZeroSize), "vmalloc(0)");
        check_eq!(mm.dma_alloc_coherent(0), Err(MmError::ZeroSize), "dma(0)");
        check_eq!(mm.vfree(VirtAddr::new(0xC200_0010)), Err(MmError::Unaligned), "vfree unaligned");
        let v = mm.vmalloc(100).map_err(|e| alloc::format!("{e}"))?;
        mm.vfree(v).map_err(|e| alloc::format!("{e}"))?;
        check_eq!(mm.vfree(v), Err(MmError::BadHandle(Handle::Area(v))), "double vfree");
        check_eq!(mm.vmalloc(usize::MAX), Err(MmError::Overflow), "overflowing size");
        Ok(())
    })
}

/// Selftest: an unmapped kernel access outside a probe must print one OOPS
/// line and end the run (exit 102), never hang or reset.
pub fn oops_selftest() {
    let _ = mmu_bringup();
    // SAFETY: deliberately faults; the exception handler ends the run.
    let v = unsafe { (0xC3F0_0000usize as *const u32).read_volatile() };
    println!("selftest: unmapped read returned {v:#x}");
}
