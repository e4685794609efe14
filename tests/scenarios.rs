//! The known failures, re-created on the model. Each scenario runs once as
//! written (must pass) and once with the mechanism deliberately broken
//! (a code mutation, `sh4_mm::mutation`, or hardware that loses an operation,
//! `sh4_mm::model::Mutant`), where it must fail: proof the test can fail.

mod common;
use common::*;
use sh4_mm::fault::FaultKind;
use sh4_mm::layout::CONSISTENT_START;
use sh4_mm::model::{Lost, Machine, MachineError, Sh4Model};
use sh4_mm::mutation::{self, Mutation};
use sh4_mm::*;
use std::cell::RefCell;
use std::rc::Rc;

/// A consistent (dma_alloc_coherent) mapping created after a process exists,
/// then touched from a kernel thread that borrowed that process's mm.
fn borrowed_mm_touches_new_consistent_mapping() -> Result<u32, MachineError> {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let p = mm.mm_create().unwrap();
    let mut boot = TaskMm::boot();
    let mut proc_a = TaskMm::user(p);
    let mut kthread = TaskMm::kernel_thread();
    mm.context_switch(&mut boot, &mut proc_a).unwrap();
    // The driver allocates after p was created: only swapper has the entry.
    let buf = mm.dma_alloc_coherent(8192).unwrap();
    assert_eq!(buf.va.as_u32(), CONSISTENT_START);
    let idx = buf.va.pgd_index();
    assert_eq!(table(&sys.mem, pgd_of(&mm, p)).pgd_raw(idx), 0);
    mm.context_switch(&mut proc_a, &mut kthread).unwrap();
    assert_eq!(mm.active(), p, "the kernel thread runs on p's tables");
    let m = sys.machine(&mm);
    m.write_u32(buf.va.as_u32() + 4096 + 8, 0xD1A)?;
    let got = m.read_u32(buf.va.as_u32() + 4096 + 8)?;
    // The entry was copied into the borrowed (active) mm, not into swapper only.
    assert_ne!(table(&sys.mem, pgd_of(&mm, p)).pgd_raw(idx), 0);
    assert_eq!(sys.model.multi_hits() + sys.model.latent_duplicates(), 0);
    assert_eq!(sys.model.bad_page_sizes(), 0, "4 KiB entries only");
    Ok(got)
}

#[test]
fn consistent_mapping_from_a_borrowed_mm() {
    assert_eq!(borrowed_mm_touches_new_consistent_mapping(), Ok(0xD1A));
    let broken = mutation::with(Mutation::VmallocFaultVmallocOnly, borrowed_mm_touches_new_consistent_mapping);
    match broken {
        Err(MachineError::Fault(i)) => {
            assert_eq!((i.kind, i.user, i.addr.as_u32()), (FaultKind::NotMapped, false, CONSISTENT_START + 4096 + 8));
        }
        other => panic!("a vmalloc_fault that ignores the consistent window must oops, got {other:?}"),
    }
}

/// Outcome of one interrupt placement.
#[derive(Debug)]
struct Run {
    main: Result<u32, MachineError>,
    irq: Vec<Result<u32, MachineError>>,
    delivered: bool,
    multi: u32,
    ops: u64,
    /// x's PTE has D (the handler's write must not be lost).
    x_dirty: bool,
}

/// A process whose mm predates two vmalloc areas (one sharing X's first-level
/// entry, one in another entry). The main flow reads X; an interrupt lands on
/// hardware operation `k` of the miss path and touches X, X+4K (same entry)
/// and Y (another unsynced entry).
fn nested_irq_during_vmalloc_fault(k: Option<u64>, lost: Lost) -> Run {
    let sys = Sys::new();
    let mut mm = sys.manager_losing(lost);
    let p = mm.mm_create().unwrap();
    mm.switch_mm(p).unwrap();
    let x = mm.vmalloc(2 * 4096).unwrap().as_u32();
    // Push Y into another 4 MiB region.
    let filler = mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), 4 << 20, CacheAttr::Uncached).unwrap();
    let y = mm.vmalloc(4096).unwrap().as_u32();
    assert_ne!(x >> 22, y >> 22);
    let ctx = mm.fault_context();
    {
        // Fill through swapper's view (P1), not through the TLB.
        let k = table(&sys.mem, mm.swapper_pg_dir());
        for (va, v) in [(x, 0x11), (x + 4096, 0x22), (y, 0x33)] {
            let (pa, _) = k.translate(VirtAddr::new(va)).unwrap();
            sys.mem.write_u32(pa, v);
        }
    }
    let _ = filler;
    let results = Rc::new(RefCell::new(Vec::new()));
    if let Some(k) = k {
        let (mem, r) = (sys.mem.clone(), results.clone());
        sys.model.schedule_irq(sys.model.ops() + k, move |hw: &Sh4Model| {
            let m = Machine::new(hw, &mem, ctx).losing(lost);
            for va in [x, x + 4096, y] {
                r.borrow_mut().push(m.read_u32(va));
            }
            // A write to the page the interrupted path is fixing: the PTE
            // must keep the D bit this sets.
            if let Err(e) = m.write_u32(x, 0x11) {
                r.borrow_mut().push(Err(e));
            }
        });
    }
    sys.model.set_imask(0); // interrupts on
    let ops0 = sys.model.ops();
    let main = sys.machine(&mm).read_u32(x);
    let ops = sys.model.ops() - ops0;
    let delivered = k.is_some() && !sys.model.irq_pending();
    let irq = results.borrow().clone();
    let x_dirty = mm.translate(INIT_MM, VirtAddr::new(x)).is_ok_and(|(_, pte)| pte.flags().contains(PteFlags::D));
    Run { main, irq, delivered, multi: sys.model.multi_hits() + sys.model.latent_duplicates(), ops, x_dirty }
}

fn run_ok(r: &Run) -> bool {
    r.main == Ok(0x11) && r.multi == 0 && (!r.delivered || (r.irq == vec![Ok(0x11), Ok(0x22), Ok(0x33)] && r.x_dirty))
}

#[test]
fn nested_interrupt_on_every_step_of_vmalloc_fault() {
    let base = nested_irq_during_vmalloc_fault(None, Lost::empty());
    assert!(run_ok(&base), "{base:?}");
    // Every hardware operation of the miss path (exception, fast path, slow
    // path with vmalloc_fault, retry): the interrupt must land on each.
    let n = base.ops;
    assert!(n > 10, "the miss path has {n} operations");
    for k in 1..=n {
        let r = nested_irq_during_vmalloc_fault(Some(k), Lost::empty());
        assert!(r.delivered, "interrupt at op {k} of {n} was never taken");
        assert!(run_ok(&r), "interrupt at op {k}: {r:?}");
    }
    let broken = |lost: Lost| (1..=n).filter(|&k| !run_ok(&nested_irq_during_vmalloc_fault(Some(k), lost))).count();
    // Broken: hardware that loses the invalidate before LDTLB. An interrupt
    // taken before the slow path masks interrupts loads the page; the slow
    // path then loads a second entry for it.
    assert!(broken(Lost::LOAD_INVALIDATE) > 0, "without the invalidate some placement must double-load the TLB");
    // Hardware that loses kernel flushes still carries out the invalidate
    // before each LDTLB (the Mutant tells them apart): no placement breaks.
    assert_eq!(broken(Lost::KERNEL_FLUSH), 0);
}

/// A kernel page is unmapped and its address handed out again while its
/// shared (SH=1) TLB entry may still be cached: a read between the unmap and
/// the remap, then the remap (which preloads the entry) and a read.
fn fixmap_remap(lost: Lost) -> (Result<u32, MachineError>, Result<u32, MachineError>, u32) {
    let sys = Sys::new();
    let mut mm = sys.manager_losing(lost);
    let (f1, f2) = (data_frame(&mut mm, 0xF1), data_frame(&mut mm, 0xF2));
    let slot = mm.fixmap_alloc().unwrap();
    let va = mm.fixmap_map(slot, f1, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
    let m = sys.machine(&mm);
    assert_eq!(m.read_u32(va.as_u32()), Ok(0xF1));
    mm.fixmap_unmap(slot).unwrap();
    let between = m.read_u32(va.as_u32());
    mm.fixmap_map(slot, f2, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
    let r = m.read_u32(va.as_u32());
    (between, r, sys.model.multi_hits() + sys.model.latent_duplicates())
}

fn vmalloc_reuse(lost: Lost) -> Result<u32, MachineError> {
    let sys = Sys::new();
    let mut mm = sys.manager_losing(lost);
    let m = sys.machine(&mm);
    let a = mm.vmalloc(4096).unwrap();
    m.write_u32(a.as_u32(), 0xDEAD)?;
    mm.vfree(a).unwrap();
    // Someone else gets the freed frame and writes to it.
    let reused = data_frame(&mut mm, 0x5EC);
    let b = mm.vmalloc(4096).unwrap();
    assert_ne!(mm.translate(INIT_MM, b).unwrap().0.as_u32(), reused.start().as_u32());
    assert_eq!(a, b, "best fit hands the same range out again");
    m.read_u32(b.as_u32()) // fresh vmalloc memory is zeroed
}

#[test]
fn kernel_unmap_remap_with_stale_shared_entry() {
    let (between, after, dups) = fixmap_remap(Lost::empty());
    assert!(matches!(between, Err(MachineError::Fault(i)) if i.kind == FaultKind::NotMapped), "{between:?}");
    assert_eq!((after, dups), (Ok(0xF2), 0));
    // The unmap's flush is lost: the stale entry still translates.
    let (between, after, dups) = fixmap_remap(Lost::KERNEL_FLUSH);
    assert!(matches!(between, Err(MachineError::StaleTranslation { .. })), "{between:?}");
    // The preload's own invalidate repairs the remap...
    assert_eq!((after, dups), (Ok(0xF2), 0));
    // ...and without it too, preloading over the stale entry is a multiple hit.
    let (_, after, dups) = fixmap_remap(Lost::KERNEL_FLUSH | Lost::LOAD_INVALIDATE);
    assert!(dups > 0, "preloading over a stale entry must be seen as a multiple hit");
    assert!(matches!(after, Err(MachineError::MultipleHit(_))), "{after:?}");

    assert_eq!(vmalloc_reuse(Lost::empty()), Ok(0));
    let r = vmalloc_reuse(Lost::KERNEL_FLUSH);
    assert!(matches!(r, Err(MachineError::StaleTranslation { .. })), "stale entry must be caught: {r:?}");
}

/// Process A runs with the first ASID of a generation and leaves a TLB entry;
/// 254 more address spaces exhaust the ASIDs; process B, created after the
/// rollover, gets A's old ASID and maps the same address to other data.
fn asid_rollover(lost: Lost) -> Result<u32, MachineError> {
    let sys = Sys::new();
    let mut mm = sys.manager_losing(lost);
    let va = 0x0010_0000;
    let pg = Page::containing(VirtAddr::new(va));
    let fa = data_frame(&mut mm, 0xAAAA);
    let fb = data_frame(&mut mm, 0xBBBB);
    let a = mm.mm_create().unwrap();
    mm.map_user(a, pg, fa, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(a).unwrap();
    assert_eq!(sys.model.pteh() & 0xFF, 1);
    assert_eq!(sys.machine(&mm).user().read_u32(va)?, 0xAAAA);
    let mut others = vec![];
    for _ in 0..254 {
        let o = mm.mm_create().unwrap();
        mm.switch_mm(o).unwrap();
        others.push(o);
    }
    assert_eq!(sys.model.pteh() & 0xFF, 255);
    let b = mm.mm_create().unwrap();
    mm.map_user(b, pg, fb, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(b).unwrap();
    assert_eq!(mm.asids().rollovers(), 1);
    assert_eq!(sys.model.pteh() & 0xFF, 1, "B reuses A's ASID in the new generation");
    let got = sys.machine(&mm).user().read_u32(va)?;
    // A is still alive and gets a fresh ASID when it runs again.
    mm.switch_mm(a).unwrap();
    assert_eq!(sys.machine(&mm).user().read_u32(va)?, 0xAAAA);
    Ok(got)
}

#[test]
fn asid_rollover_with_live_mms() {
    assert_eq!(asid_rollover(Lost::empty()), Ok(0xBBBB));
    // The rollover's MMUCR.TI is lost: B reads through A's entry.
    let r = asid_rollover(Lost::FLUSH_ALL);
    assert!(matches!(r, Err(MachineError::StaleTranslation { .. })), "{r:?}");
}

/// Without the kernel copy at mm creation every kernel access on a new mm
/// takes the vmalloc_fault path; it still works, but the copy is asserted.
#[test]
fn mm_create_copy_is_what_the_test_checks() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    mm.vmalloc(4096).unwrap();
    let a = mm.mm_create().unwrap();
    let b = mutation::with(Mutation::MmCreateNoKernelCopy, || mm.mm_create().unwrap());
    let (ta, tb) = (table(&sys.mem, pgd_of(&mm, a)), table(&sys.mem, pgd_of(&mm, b)));
    let idx = (sh4_mm::layout::VMALLOC_START >> 22) as usize;
    assert_ne!(ta.pgd_raw(idx), 0);
    assert_eq!(tb.pgd_raw(idx), 0, "the mutation really removes the copy");
}
