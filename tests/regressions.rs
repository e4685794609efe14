//! One regression test per defect that independent testing found (issue 9,
//! numbered as there). Each fails on the code before its fix (fdc405f) with
//! the manual-conformant model.

mod common;
use common::*;
use sh4_mm::fault::FaultKind;
use sh4_mm::hw;
use sh4_mm::layout::{self, FIXMAP_SLOTS};
use sh4_mm::model::{MachineError, Sh4Model};
use sh4_mm::pgtable::ENTRIES;
use sh4_mm::window::RangeAllocator;
use sh4_mm::*;
use std::cell::RefCell;
use std::rc::Rc;

/// A sys whose model has the RAM and the operand cache.
fn cached() -> Sys {
    let sys = Sys::new();
    sys.model.attach_memory(sys.mem.clone(), true);
    sys
}

fn phys(sys: &Sys, pa: u32) -> u32 {
    sys.mem.read_u32(PhysAddr::new(pa).unwrap())
}

fn fill_phys(sys: &Sys, frame: Frame, word: u32) {
    for k in (0..4096).step_by(4) {
        sys.mem.write_u32(PhysAddr::new(frame.start().as_u32() + k).unwrap(), word);
    }
}

/// Reads, through P1 (cached), a frame far from every test frame whose
/// lines have the cache indices of colour `colour`: every line of that
/// colour is replaced, and a dirty one is written back to its frame.
fn evict_colour(m: &sh4_mm::model::Machine<'_>, colour: u32) {
    let p1 = 0x8000_0000 | (RAM_BASE + (RAM_FRAMES - 8) * 4096) | (colour << 12);
    for k in (0..4096).step_by(32) {
        m.read_u32(p1 + k).unwrap();
    }
}

/// The frame's 1024 words as the device (or the frame's next owner) sees
/// them in memory, after every line that could still be written back over
/// them was evicted.
fn after_eviction(sys: &Sys, mm: &Mm<'_>, frame: Frame) -> Vec<u32> {
    let m = sys.machine(mm);
    for c in 0..4 {
        evict_colour(&m, c);
    }
    (0..1024).map(|k| phys(sys, frame.start().as_u32() + k * 4)).collect()
}

// ------------------------------------------------------------ defect 1

/// vfree: the area's dirty lines are written back and gone before the frame
/// is freed, so the frame's next owner (here: a device writing a DMA
/// buffer) is never overwritten by an eviction.
#[test]
fn d1_vfree_leaves_no_cache_line() {
    let sys = cached();
    let mut mm = sys.manager();
    let m = sys.machine(&mm);
    let v = mm.vmalloc(3 * 4096).unwrap().as_u32();
    let frames: Vec<Frame> =
        (0..3).map(|i| Frame::containing(mm.translate(INIT_MM, VirtAddr::new(v + i * 4096)).unwrap().0)).collect();
    for k in (0..3 * 4096).step_by(4) {
        m.write_u32(v + k, 0xBAD0_0000 | k).unwrap();
    }
    mm.vfree(VirtAddr::new(v)).unwrap();
    for &f in &frames {
        assert_eq!(
            sys.model.with_cache(|c| c.lines_of(f.start().as_u32())),
            Some(0),
            "no line of {f:?} survives vfree"
        );
        fill_phys(&sys, f, 0x600D); // the next owner's data
    }
    for &f in &frames {
        assert!(after_eviction(&sys, &mm, f).iter().all(|&w| w == 0x600D), "old vmalloc data written back over {f:?}");
    }
    assert_eq!(sys.model.cache_op_faults(), 0);
}

/// A user page of an address space that is not running is unmapped; the
/// frame goes back to the OS, whose next use must not be overwritten.
#[test]
fn d1_unmap_user_of_an_inactive_mm_leaves_no_cache_line() {
    let sys = cached();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 0);
    let a = mm.mm_create().unwrap();
    let va = 0x0040_1000; // colour 1
    mm.map_user(a, Page::containing(VirtAddr::new(va)), f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(a).unwrap();
    let mu = sys.machine(&mm).user();
    for k in (0..4096).step_by(4) {
        mu.write_u32(va + k, 0xDEAD_0000 | k).unwrap();
    }
    let b = mm.mm_create().unwrap();
    mm.switch_mm(b).unwrap();
    let mut given_back = vec![];
    mm.unmap_user(a, Page::containing(VirtAddr::new(va)), 1, |_, pte| given_back.push(pte.frame())).unwrap();
    assert_eq!(given_back, vec![f]);
    assert_eq!(sys.model.with_cache(|c| c.lines_of(f.start().as_u32())), Some(0));
    fill_phys(&sys, f, 0x600D);
    assert!(after_eviction(&sys, &mm, f).iter().all(|&w| w == 0x600D), "the dead mapping's lines overwrote the frame");
}

/// mm teardown (the last user exits) hands every user frame back: none may
/// keep a line, even though the mm is not the running one.
#[test]
fn d1_mm_teardown_leaves_no_cache_line() {
    let sys = cached();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 0);
    let a = mm.mm_create().unwrap();
    let va = 0x0040_2000; // colour 2
    mm.map_user(a, Page::containing(VirtAddr::new(va)), f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(a).unwrap();
    sys.machine(&mm).user().write_u32(va + 0x80, 0x5EC2E7).unwrap();
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(a, |_, _| {}).unwrap();
    assert_eq!(sys.model.with_cache(|c| c.lines_of(f.start().as_u32())), Some(0));
    fill_phys(&sys, f, 0);
    assert!(after_eviction(&sys, &mm, f).iter().all(|&w| w == 0), "a dead process's data reappeared");
}

/// iounmap of a cached ioremap and fixmap_unmap of a cached slot.
#[test]
fn d1_iounmap_and_fixmap_unmap_leave_no_cache_line() {
    let sys = cached();
    let mut mm = sys.manager();
    let (f, g) = (data_frame(&mut mm, 0), data_frame(&mut mm, 0));
    let io = mm.ioremap(f.start(), 4096, CacheAttr::WriteBack).unwrap();
    let slot = mm.fixmap_alloc().unwrap();
    let fx = mm.fixmap_map(slot, g, Prot::KernelRw, CacheAttr::WriteThrough).unwrap();
    let m = sys.machine(&mm);
    m.write_u32(io.as_u32() + 8, 0x10).unwrap();
    assert_eq!(m.read_u32(fx.as_u32() + 8).unwrap(), 0, "a write-through line is allocated by the read");
    mm.iounmap(io).unwrap();
    mm.fixmap_unmap(slot).unwrap();
    for fr in [f, g] {
        assert_eq!(sys.model.with_cache(|c| c.lines_of(fr.start().as_u32())), Some(0), "{fr:?}");
    }
    assert_eq!(phys(&sys, f.start().as_u32() + 8), 0x10, "written back, not dropped");
}

/// protect_user to read-only keeps the data (dirty lines may stay: the
/// mapping stays), and the later unmap purges them.
#[test]
fn d1_protect_then_unmap() {
    let sys = cached();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 0);
    let a = mm.mm_create().unwrap();
    let va = 0x0040_3000;
    let pg = Page::containing(VirtAddr::new(va));
    mm.map_user(a, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(a).unwrap();
    let mu = sys.machine(&mm).user();
    mu.write_u32(va, 0xAB).unwrap();
    assert_eq!(mm.protect_user(a, pg, 1, Prot::UserRead), Ok(1));
    assert_eq!(mu.read_u32(va), Ok(0xAB));
    assert!(matches!(mu.write_u32(va, 1), Err(MachineError::Fault(i)) if i.kind == FaultKind::Protection));
    mm.unmap_user(a, pg, 1, |_, _| {}).unwrap();
    assert_eq!(sys.model.with_cache(|c| c.lines_of(f.start().as_u32())), Some(0));
    assert_eq!(phys(&sys, f.start().as_u32()), 0xAB);
}

// ------------------------------------------------------------ defect 2

#[test]
fn d2_init_mm_takes_no_user_mappings() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 1);
    let pg = Page::containing(VirtAddr::new(0x1000));
    let live = (mm.allocator().live(), mm.memtypes().len());
    let init = Err(MmError::BadHandle(Handle::Mm(Some(INIT_MM))));
    assert_eq!(mm.map_user(INIT_MM, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack), init);
    assert_eq!(mm.unmap_user(INIT_MM, pg, 1, |_, _| {}), init.map(|()| 0));
    assert_eq!(mm.protect_user(INIT_MM, pg, 1, Prot::UserRead), init.map(|()| 0));
    assert_eq!((mm.allocator().live(), mm.memtypes().len()), live, "nothing allocated or reserved");
}

// ------------------------------------------------------------ defect 3

#[test]
fn d3_init_mm_count_is_stable_across_kernel_thread_switches() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let before = mm.refcounts(INIT_MM).unwrap();
    let mut boot = TaskMm::boot();
    let (mut k1, mut k2) = (TaskMm::kernel_thread(), TaskMm::kernel_thread());
    for _ in 0..100 {
        mm.context_switch(&mut boot, &mut k1).unwrap();
        mm.context_switch(&mut k1, &mut k2).unwrap();
        mm.context_switch(&mut k2, &mut boot).unwrap();
    }
    assert_eq!(mm.refcounts(INIT_MM).unwrap(), before, "grab and drop of init_mm are symmetric");
    // A user task in between: the borrow of init_mm is returned too.
    let p = mm.mm_create().unwrap();
    let mut a = TaskMm::user(p);
    mm.context_switch(&mut boot, &mut a).unwrap();
    mm.switch_mm(INIT_MM).unwrap();
    let mut k3 = TaskMm::kernel_thread();
    mm.context_switch(&mut a, &mut k3).unwrap();
    assert_eq!(mm.refcounts(p).unwrap(), (1, 2), "k3 borrows p");
}

// ------------------------------------------------------------ defects 4, 5, 6

/// Process A exits (mm_put) while kernel thread K still borrows its mm.
fn exited_but_borrowed(mm: &mut Mm<'_>) -> (MmId, TaskMm, TaskMm) {
    let p = mm.mm_create().unwrap();
    let mut boot = TaskMm::boot();
    let mut a = TaskMm::user(p);
    let mut k = TaskMm::kernel_thread();
    mm.context_switch(&mut boot, &mut a).unwrap();
    mm.context_switch(&mut a, &mut k).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
    assert_eq!(mm.refcounts(p).unwrap(), (0, 1));
    (p, TaskMm::user(p), k)
}

#[test]
fn d4_mm_get_does_not_resurrect_an_exited_mm() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let (p, _, mut k) = exited_but_borrowed(&mut mm);
    assert_eq!(mm.mm_get(p), Err(MmError::Exited));
    assert_eq!(mm.refcounts(p).unwrap(), (0, 1));
    // The borrower's switch-out works and frees p.
    mm.switch_mm(INIT_MM).unwrap();
    let q = mm.mm_create().unwrap();
    let mut b = TaskMm::user(q);
    mm.context_switch(&mut k, &mut b).unwrap();
    assert_eq!(mm.pgd(p), Err(MmError::BadHandle(Handle::Mm(Some(p)))), "freed with the borrow");
}

#[test]
fn d5_map_user_into_an_exited_mm_is_refused() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let (p, _, _) = exited_but_borrowed(&mut mm);
    let f = data_frame(&mut mm, 1);
    let live = (mm.allocator().live(), mm.memtypes().len());
    let pg = Page::containing(VirtAddr::new(0x0080_0000));
    assert_eq!(mm.map_user(p, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack), Err(MmError::Exited));
    assert_eq!((mm.allocator().live(), mm.memtypes().len()), live, "no PTE page, no memtype record");
    assert_eq!(mm.user_pte_pages(p), Ok(0));
}

#[test]
fn d6_failed_exit_mm_changes_nothing() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let (p, mut a, _) = exited_but_borrowed(&mut mm);
    // A second task still names p as its mm although p has no users.
    assert_eq!(mm.exit_mm(&mut a, |_, _| {}), Err(MmError::Exited));
    assert_eq!(a, TaskMm::user(p), "task unchanged");
    assert_eq!(mm.refcounts(p).unwrap(), (0, 1), "counts unchanged");
    let mut boot = TaskMm::boot();
    assert_eq!(mm.exit_mm(&mut boot, |_, _| {}), Err(MmError::BadHandle(Handle::Mm(None))), "no mm of its own");
    assert_eq!(boot, TaskMm::boot());
}

// ------------------------------------------------------------ defect 7

#[test]
fn d7_out_of_range_input_is_an_error() {
    assert_eq!(layout::fix_to_virt(FIXMAP_SLOTS), None);
    assert_eq!(layout::fix_to_virt(u32::MAX), None);
    let sys = Sys::new();
    let mm = sys.manager();
    assert_eq!(mm.kmap_coherent_slot_for(VirtAddr::new(0x1000), 2), Err(MmError::Overflow));
    assert_eq!(mm.kmap_coherent_slot_for(VirtAddr::new(0x1000), u32::MAX), Err(MmError::Overflow));
    let mut r: RangeAllocator<()> = RangeAllocator::new(100, 50, 1);
    assert_eq!(r.alloc(1, ()), Err(MmError::WindowExhausted));
    // The word after the first-level table belongs to the next frame.
    let pgd = mm.swapper_pg_dir();
    let next = PhysAddr::new(pgd.start().as_u32() + 4096).unwrap();
    sys.mem.write_u32(next, 0x1234_5678);
    let t = table(&sys.mem, pgd);
    assert_eq!(t.pgd_raw(ENTRIES), 0);
    assert_eq!(t.set_pgd_raw(ENTRIES, 0xDEAD_BEEF), Err(MmError::Overflow));
    assert_eq!(sys.mem.read_u32(next), 0x1234_5678, "next frame untouched");
}

// ------------------------------------------------------------ defect 8

#[test]
fn d8_flushes_before_enable_mmu_leave_translation_off() {
    let sys = Sys::new();
    let mut mm =
        MemoryManager::new(&sys.model, sys.mem.clone(), sh4_mm::model::FrameArena::new(RAM_BASE, RAM_FRAMES)).unwrap();
    let v = mm.vmalloc(40 * 4096).unwrap(); // > FLUSH_ALL_THRESHOLD pages
    mm.vfree(v).unwrap();
    assert_eq!(sys.model.mmucr() & hw::MMUCR_AT, 0, "a whole-TLB flush turned translation on");
    mm.enable_mmu();
    assert_ne!(sys.model.mmucr() & hw::MMUCR_AT, 0);
}

// ------------------------------------------------------------ defects 9, 10

#[test]
fn d9_io_mapping_unmap_checks_before_it_unmaps() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 7);
    let mut io = mm.io_mapping_create(PhysAddr::new(0x1000_0000).unwrap(), 4 * 4096, CacheAttr::Uncached).unwrap();
    // A kmap_coherent slot (not a claimed general slot) mapped directly.
    let va = mm.fixmap_map(0, f, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
    assert_eq!(mm.io_mapping_unmap(&mut io, va), Err(MmError::BadHandle(Handle::FixmapSlot(0))));
    assert!(mm.translate(INIT_MM, va).is_ok(), "the error left the mapping in place");
    // A claimed slot holding a page that is not the io-mapping's.
    let s = mm.fixmap_alloc().unwrap();
    let g = data_frame(&mut mm, 8);
    let va2 = mm.fixmap_map(s, g, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
    assert_eq!(mm.io_mapping_unmap(&mut io, va2), Err(MmError::BadHandle(Handle::FixmapSlot(s))));
    assert!(mm.translate(INIT_MM, va2).is_ok());
    mm.fixmap_unmap(0).unwrap();
    mm.fixmap_unmap(s).unwrap();
    mm.fixmap_free(s).unwrap();
    mm.io_mapping_free(&mut io).unwrap();
}

#[test]
fn d10_io_mapping_free_waits_for_its_pages() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let base = PhysAddr::new(0x1000_0000).unwrap();
    let mut io = mm.io_mapping_create(base, 4 * 4096, CacheAttr::Uncached).unwrap();
    let va = mm.io_mapping_map(&mut io, 1).unwrap();
    assert_eq!(io.mapped(), 1);
    assert_eq!(mm.io_mapping_free(&mut io), Err(MmError::Busy));
    // The reservation still keeps a cached alias of the mapped page out.
    let page1 = PhysAddr::new(0x1000_1000).unwrap();
    assert!(matches!(mm.ioremap(page1, 4096, CacheAttr::WriteBack), Err(MmError::AttrConflict { .. })));
    mm.io_mapping_unmap(&mut io, va).unwrap();
    mm.io_mapping_free(&mut io).unwrap();
    let freed = Err(MmError::BadHandle(Handle::Reservation(base)));
    assert_eq!(mm.io_mapping_free(&mut io), freed, "freed once");
    assert_eq!(mm.io_mapping_map(&mut io, 0), freed.map(|()| VirtAddr::new(0)));
    assert!(mm.memtypes().is_empty());
}

// ------------------------------------------------------------ defect 12

/// Process A runs and leaves a TLB entry; then another mm runs while A's
/// page is write-protected or unmapped; then A runs again. The SH7750
/// manual compares PTEH.ASID in an associative UTLB write, so a flush that
/// only puts A's ASID in the data word misses A's entry.
fn inactive_mm_change(unmap: bool) -> Result<(), MachineError> {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 0x77);
    let a = mm.mm_create().unwrap();
    let va = 0x0050_0000;
    let pg = Page::containing(VirtAddr::new(va));
    mm.map_user(a, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(a).unwrap();
    sys.machine(&mm).user().write_u32(va, 0x78)?; // A's entry: writable, dirty
    let b = mm.mm_create().unwrap();
    mm.switch_mm(b).unwrap(); // another ASID in PTEH
    if unmap {
        mm.unmap_user(a, pg, 1, |_, _| {}).unwrap();
    } else {
        mm.protect_user(a, pg, 1, Prot::UserRead).unwrap();
    }
    mm.switch_mm(a).unwrap();
    let m = sys.machine(&mm).user();
    if unmap {
        m.read_u32(va).map(|_| ())
    } else {
        m.write_u32(va, 0x79)
    }
}

#[test]
fn d12_flushes_of_an_inactive_mm_reach_its_entries() {
    match inactive_mm_change(false) {
        Err(MachineError::Fault(i)) => assert_eq!(i.kind, FaultKind::Protection),
        other => panic!("write to a write-protected page must fault, got {other:?}"),
    }
    match inactive_mm_change(true) {
        Err(MachineError::Fault(i)) => assert_eq!(i.kind, FaultKind::NotMapped),
        other => panic!("read of an unmapped page must fault, got {other:?}"),
    }
}

// ------------------------------------------------------------ defect 13

/// An interrupt lands on every hardware operation of `fixmap_map` and its
/// handler reads the slot: never two UTLB entries for it.
#[test]
fn d13_fixmap_map_with_an_interrupt_on_every_step() {
    let run = |k: Option<u64>| {
        let sys = Sys::new();
        let mut mm = sys.manager();
        let f = data_frame(&mut mm, 0xF00D);
        let slot = mm.fixmap_alloc().unwrap();
        let va = layout::fix_to_virt(slot).unwrap().as_u32();
        let (mem, ctx) = (sys.mem.clone(), mm.fault_context());
        let seen = Rc::new(RefCell::new(None));
        if let Some(k) = k {
            let s = seen.clone();
            sys.model.schedule_irq(sys.model.ops() + k, move |hw: &Sh4Model| {
                *s.borrow_mut() = Some(sh4_mm::model::Machine::new(hw, &mem, ctx).read_u32(va));
            });
        }
        sys.model.set_imask(0);
        let ops0 = sys.model.ops();
        mm.fixmap_map(slot, f, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
        let ops = sys.model.ops() - ops0;
        let main = sys.machine(&mm).read_u32(va);
        let dups = sys.model.multi_hits() + sys.model.latent_duplicates();
        let irq = *seen.borrow();
        (ops, main, dups, irq, sys.model.irq_pending())
    };
    let (n, main, dups, _, _) = run(None);
    assert_eq!((main, dups), (Ok(0xF00D), 0));
    for k in 1..=n {
        let (_, main, dups, irq, pending) = run(Some(k));
        assert!(!pending, "interrupt at op {k} delivered");
        assert_eq!((main, dups), (Ok(0xF00D), 0), "interrupt at op {k} of {n}: handler saw {irq:?}");
        // The handler either found the slot unmapped (before the store) or
        // read the frame.
        assert!(matches!(irq, Some(Ok(0xF00D)) | Some(Err(MachineError::Fault(_)))), "op {k}: {irq:?}");
    }
}
