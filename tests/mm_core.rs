//! Page tables, swapper_pg_dir, mm/active_mm and the windows, on the model.

mod common;
use common::*;
use sh4_mm::fault::{FaultKind, FaultOutcome};
use sh4_mm::layout::{CONSISTENT_START, VMALLOC_END, VMALLOC_START};
use sh4_mm::model::MachineError;
use sh4_mm::pgtable::KERNEL_PGDS;
use sh4_mm::*;

#[test]
fn new_mm_copies_kernel_entries_and_shares_pte_pages() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let v = mm.vmalloc(3 * 4096).unwrap();
    let d = mm.dma_alloc_coherent(100).unwrap();
    let before = mm.allocator().live();
    let p = mm.mm_create().unwrap();
    assert_eq!(mm.allocator().live(), before + 1, "only the first-level table is new");
    let (k, u) = (table(&sys.mem, mm.swapper_pg_dir()), table(&sys.mem, pgd_of(&mm, p)));
    for i in KERNEL_PGDS {
        assert_eq!(k.pgd_raw(i), u.pgd_raw(i), "pgd index {i}");
    }
    for i in 0..768 {
        assert_eq!(u.pgd_raw(i), 0);
    }
    assert_eq!(u.pte_table(v.pgd_index()), k.pte_table(v.pgd_index()));
    assert_eq!(u.pte_table(d.va.pgd_index()), k.pte_table(d.va.pgd_index()));
    assert!(mm.translate(p, v).is_ok());
    mm.mm_put(p, |_, _| {}).unwrap();
    assert_eq!(mm.allocator().live(), before);
}

#[test]
fn map_translate_protect_unmap_user_pages() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let p = mm.mm_create().unwrap();
    let f = data_frame(&mut mm, 0x1234_5678);
    let base = mm.allocator().live();
    let page = Page::from_start(VirtAddr::new(0x0040_0000)).unwrap();
    mm.map_user(p, page, f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    assert_eq!(mm.allocator().live(), base + 1, "one PTE page");
    assert_eq!(
        mm.map_user(p, page, f, 1, Prot::UserRw, CacheAttr::WriteBack),
        Err(MmError::AlreadyMapped(page.start()))
    );
    let (pa, pte) = mm.translate(p, VirtAddr::new(0x0040_0010)).unwrap();
    assert_eq!(pa.as_u32(), f.start().as_u32() + 0x10);
    assert_eq!(pte.prot(), Prot::UserRw);
    assert!(!pte.flags().contains(PteFlags::SH), "user pages are per-ASID");
    mm.switch_mm(p).unwrap();
    let m = sys.machine(&mm).user();
    assert_eq!(m.read_u32(0x0040_0010).unwrap(), 0x1234_5678);
    // First write: initial-page-write path marks the PTE dirty.
    m.write_u32(0x0040_0010, 7).unwrap();
    assert!(mm.translate(p, page.start()).unwrap().1.flags().contains(PteFlags::D));
    assert_eq!(sys.model.latent_duplicates(), 0);
    // Read-only now: the cached writable entry must have been flushed.
    assert_eq!(mm.protect_user(p, page, 1, Prot::UserRead).unwrap(), 1);
    match m.write_u32(0x0040_0010, 8) {
        Err(MachineError::Fault(i)) => assert_eq!(i.kind, FaultKind::Protection),
        other => panic!("write to a read-only page: {other:?}"),
    }
    let mut seen = vec![];
    assert_eq!(mm.unmap_user(p, page, 4, |pg, pte| seen.push((pg, pte.frame()))).unwrap(), 1);
    assert_eq!(mm.allocator().live(), base + 1, "PTE pages stay until the mm goes");
    assert_eq!(seen, vec![(page, f)]);
    match m.read_u32(0x0040_0010) {
        Err(MachineError::Fault(i)) => assert_eq!((i.kind, i.user), (FaultKind::NotMapped, true)),
        other => panic!("read after unmap: {other:?}"),
    }
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(p, |_, _| panic!("nothing left mapped")).unwrap();
    assert_eq!(mm.allocator().live(), base - 1, "PTE page and first-level table freed");
    assert_eq!(sys.model.multi_hits(), 0);
    assert_eq!(sys.model.bad_page_sizes(), 0, "every LDTLB loaded a 4 KiB entry");
}

#[test]
fn kernel_thread_borrows_active_mm_and_keeps_it_alive() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let base = mm.allocator().live();
    let p = mm.mm_create().unwrap();
    let f = data_frame(&mut mm, 5);
    mm.map_user(p, Page::containing(VirtAddr::new(0x1000)), f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    let mut boot = TaskMm::boot();
    let mut proc_a = TaskMm::user(p);
    let mut kthread = TaskMm::kernel_thread();
    mm.context_switch(&mut boot, &mut proc_a).unwrap();
    assert_eq!(mm.active(), p);
    assert_eq!(sys.model.ttb(), pgd_of(&mm, p).start().to_p1().as_u32());
    // A -> kernel thread: borrows p.
    mm.context_switch(&mut proc_a, &mut kthread).unwrap();
    assert_eq!(kthread.active_mm, Some(p));
    assert_eq!(mm.active(), p, "no TTB change for a kernel thread");
    assert_eq!(mm.refcounts(p).unwrap(), (1, 2));
    // The process exits while the kernel thread still borrows its mm.
    let mut freed = vec![];
    mm.mm_put(p, |_, pte| freed.push(pte.frame())).unwrap();
    assert_eq!(freed, vec![f]);
    assert_eq!(mm.refcounts(p).unwrap(), (0, 1), "pgd kept alive by the borrow");
    assert_eq!(mm.user_pte_pages(p).unwrap(), 0, "user tables already gone");
    assert_eq!(mm.mm_drop(p), Err(MmError::Busy), "cannot free the active mm");
    // Kernel thread -> another kernel thread: the borrow is handed on.
    let mut kthread2 = TaskMm::kernel_thread();
    mm.context_switch(&mut kthread, &mut kthread2).unwrap();
    assert_eq!((kthread.active_mm, kthread2.active_mm), (None, Some(p)));
    assert_eq!(mm.refcounts(p).unwrap(), (0, 1));
    // Kernel thread -> a user process: the borrow is returned, p is freed.
    let q = mm.mm_create().unwrap();
    let mut proc_b = TaskMm::user(q);
    mm.context_switch(&mut kthread2, &mut proc_b).unwrap();
    assert_eq!(mm.active(), q);
    assert_eq!(mm.pgd(p), Err(MmError::BadHandle(Handle::Mm(Some(p)))), "freed with the last reference");
    // Switching to a kernel thread would lend q to it; go to init_mm directly.
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(q, |_, _| {}).unwrap();
    mm.allocator_mut().free(f, 1);
    assert_eq!(mm.allocator().live(), base);
    assert_eq!(mm.allocator().bad_frees, 0);
    assert_eq!(mm.mm_put(p, |_, _| {}), Err(MmError::BadHandle(Handle::Mm(Some(p)))), "stale handle");
}

#[test]
fn exit_mm_then_switch_frees_everything() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let base = mm.allocator().live();
    let p = mm.mm_create().unwrap();
    let mut boot = TaskMm::boot();
    let mut a = TaskMm::user(p);
    mm.context_switch(&mut boot, &mut a).unwrap();
    mm.exit_mm(&mut a, |_, _| {}).unwrap();
    assert_eq!(a, TaskMm { mm: None, active_mm: Some(p) });
    let q = mm.mm_create().unwrap();
    let mut b = TaskMm::user(q);
    mm.context_switch(&mut a, &mut b).unwrap();
    assert_eq!(mm.live_mms(), 2, "p freed at the switch");
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(q, |_, _| {}).unwrap();
    assert_eq!(mm.allocator().live(), base);
}

#[test]
fn windows_reject_bad_input_with_errors() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let base = mm.allocator().live();
    let kernel_tables = mm.kernel_pte_pages() as u32;
    assert_eq!(mm.vmalloc(0), Err(MmError::ZeroSize));
    assert_eq!(mm.dma_alloc_coherent(0), Err(MmError::ZeroSize));
    assert_eq!(mm.vmalloc(usize::MAX), Err(MmError::Overflow));
    assert_eq!(mm.vmalloc(VMALLOC_END as usize - VMALLOC_START as usize), Err(MmError::WindowExhausted));
    assert_eq!(mm.dma_alloc_coherent(64 << 20), Err(MmError::OutOfFrames));
    let pa = PhysAddr::new(0x0400_0000).unwrap();
    assert_eq!(mm.ioremap(PhysAddr::new(0x0400_0004).unwrap(), 4, CacheAttr::Uncached), Err(MmError::Unaligned));
    assert_eq!(mm.ioremap(PhysAddr::new(0x1FFF_F000).unwrap(), 8192, CacheAttr::Uncached), Err(MmError::Overflow));
    let io = mm.ioremap(pa, 0x100, CacheAttr::Uncached).unwrap();
    assert_eq!(mm.vfree(io), Err(MmError::BadHandle(Handle::Area(io))), "vfree of an ioremap area");
    let v = mm.vmalloc(5000).unwrap();
    assert_eq!(mm.iounmap(v), Err(MmError::BadHandle(Handle::Area(v))));
    assert_eq!(mm.vfree(VirtAddr::new(v.as_u32() + 4)), Err(MmError::Unaligned));
    let inside = VirtAddr::new(v.as_u32() + 4096);
    assert_eq!(mm.vfree(inside), Err(MmError::BadHandle(Handle::Area(inside))));
    mm.vfree(v).unwrap();
    assert_eq!(mm.vfree(v), Err(MmError::BadHandle(Handle::Area(v))), "double free");
    mm.iounmap(io).unwrap();
    let nothing = VirtAddr::new(CONSISTENT_START);
    assert_eq!(mm.dma_free_coherent(nothing), Err(MmError::BadHandle(Handle::Area(nothing))));
    let p = mm.mm_create().unwrap();
    let f = Frame::from_pfn(0xC000).unwrap();
    assert_eq!(
        mm.map_user(p, Page::containing(VirtAddr::new(0xC000_0000)), f, 1, Prot::UserRw, CacheAttr::WriteBack),
        Err(MmError::BadAddress(VirtAddr::new(0xC000_0000)))
    );
    assert_eq!(
        mm.map_user(p, Page::containing(VirtAddr::new(0x7FFF_F000)), f, 2, Prot::UserRw, CacheAttr::WriteBack),
        Err(MmError::Overflow)
    );
    assert_eq!(
        mm.map_user(p, Page::containing(VirtAddr::new(0)), f, 0, Prot::UserRw, CacheAttr::WriteBack),
        Err(MmError::ZeroSize)
    );
    assert_eq!(mm.fixmap_free(3), Err(MmError::BadHandle(Handle::FixmapSlot(3))));
    let s = mm.fixmap_alloc().unwrap();
    mm.fixmap_map(s, f, Prot::KernelRw, CacheAttr::WriteBack).unwrap();
    assert_eq!(mm.fixmap_free(s), Err(MmError::Busy));
    assert_eq!(mm.fixmap_unmap(s).unwrap(), f);
    assert_eq!(mm.fixmap_unmap(s), Err(MmError::NotMapped(layout::fix_to_virt(s).unwrap())));
    mm.fixmap_free(s).unwrap();
    assert_eq!(
        mm.fixmap_map(s, f, Prot::KernelRw, CacheAttr::WriteBack),
        Err(MmError::BadHandle(Handle::FixmapSlot(s)))
    );
    mm.mm_put(p, |_, _| {}).unwrap();
    // Kernel PTE pages stay (other mms may hold copies of their pgd entries).
    assert_eq!(mm.allocator().live(), base + mm.kernel_pte_pages() as u32 - kernel_tables);
    assert_eq!(mm.vm_areas() + mm.dma_buffers(), 0);
}

#[test]
fn kernel_and_user_faults_are_reported_not_hung() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let m = sys.machine(&mm);
    // Unmapped kernel address: an oops with the address and EXPEVT.
    match m.read_u32(0xC300_0000) {
        Err(MachineError::Fault(i)) => {
            assert_eq!((i.addr.as_u32(), i.expevt, i.kind), (0xC300_0000, 0x040, FaultKind::NotMapped));
        }
        other => panic!("{other:?}"),
    }
    // User access to P3 is an address error.
    let v = mm.vmalloc(4096).unwrap();
    match m.user().read_u32(v.as_u32()) {
        Err(MachineError::Fault(i)) => assert_eq!(i.kind, FaultKind::AddressError),
        other => panic!("{other:?}"),
    }
    // The slow path classifies too.
    let ctx = mm.fault_context();
    let exc = sh4_mm::fault::Exception { expevt: 0x0C0, tea: VirtAddr::new(0x1000), user: true };
    assert!(matches!(
        sh4_mm::fault::handle_tlb_exception(&sys.model, &*sys.mem, &ctx, &exc),
        FaultOutcome::User(i) if i.kind == FaultKind::Protection
    ));
    let exc = sh4_mm::fault::Exception { expevt: 0x1E0, tea: VirtAddr::new(0xC000_0000), user: false };
    assert!(matches!(
        sh4_mm::fault::handle_tlb_exception(&sys.model, &*sys.mem, &ctx, &exc),
        FaultOutcome::Oops(i) if i.kind == FaultKind::Unexpected
    ));
    // A PROT_NONE page is present but faults as a protection error.
    let p = mm.mm_create().unwrap();
    let f = data_frame(&mut mm, 1);
    let pg = Page::containing(VirtAddr::new(0x2000));
    mm.map_user(p, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    let t = table(&sys.mem, pgd_of(&mm, p));
    let pending = t.set(pg.start(), t.get(pg.start()).unwrap().toggled_prot_none()).unwrap();
    // SAFETY: p has not run yet: no TLB entry of it exists.
    unsafe { pending.discard() };
    mm.switch_mm(p).unwrap();
    match sys.machine(&mm).user().read_u32(0x2000) {
        Err(MachineError::Fault(i)) => assert_eq!(i.kind, FaultKind::Protection),
        other => panic!("{other:?}"),
    }
}

#[test]
fn destroying_the_active_mm_is_refused_without_side_effects() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let p = mm.mm_create().unwrap();
    let f = data_frame(&mut mm, 9);
    let pg = Page::containing(VirtAddr::new(0x0040_0000));
    mm.map_user(p, pg, f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(p).unwrap();
    let live = mm.allocator().live();
    assert_eq!(mm.mm_put(p, |_, _| panic!("nothing may be torn down")), Err(MmError::Busy));
    assert_eq!(mm.refcounts(p).unwrap(), (1, 1));
    assert_eq!(mm.allocator().live(), live);
    assert!(mm.translate(p, pg.start()).is_ok(), "still mapped");
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
}

#[test]
fn model_detects_a_multiple_hit() {
    // The detector itself can fire: two entries for one VPN.
    let sys = Sys::new();
    let mm = sys.manager();
    let f = Frame::from_pfn(0xC100).unwrap();
    let pte = Pte::new(f, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::SH | PteFlags::D);
    let page = Page::containing(VirtAddr::new(0xC000_0000));
    // Raw LDTLBs into two slots (`tlb::load` would invalidate the first).
    for urc in [5u32, 6] {
        sys.model.set_mmucr(sys.model.mmucr() & !hw::MMUCR_URC_MASK | urc << hw::MMUCR_URC_SHIFT);
        sys.model.set_pteh(page.start().as_u32());
        sys.model.set_ptel(pte.ptel());
        sys.model.ldtlb();
    }
    assert_eq!(sys.model.latent_duplicates(), 1);
    assert_eq!(sys.machine(&mm).read_u32(0xC000_0000), Err(MachineError::MultipleHit(page.start())));
    assert_eq!(sys.model.multi_hits(), 1);
}
