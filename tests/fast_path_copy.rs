//! The fast path's first-level copy (`fault::fast_path_with_pgd_copy`, the
//! specification of runtime/asm/start.S's TLB-miss vector once the kernel has set
//! `sh4mm_swapper_pgd`): it does what the slow path's `vmalloc_fault` does,
//! and nothing for addresses `vmalloc_fault` would not touch.

mod common;
use common::*;
use sh4_mm::fault::{fast_path, fast_path_with_pgd_copy};
use sh4_mm::*;

#[test]
fn copies_a_missing_p3_entry_from_swapper_then_loads_the_pte() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let p = mm.mm_create().unwrap();
    let v = mm.vmalloc(4096).unwrap();
    let idx = v.pgd_index();
    let active = table(&sys.mem, mm.pgd(p).unwrap());
    // p predates the region.
    let pending = active.set_pgd_raw(idx, 0).unwrap();
    // SAFETY: p has not run: the TLB holds nothing of its table.
    unsafe { pending.discard() };
    mm.switch_mm(p).unwrap();
    let swapper = mm.swapper_pg_dir();
    let ctx = mm.fault_context();
    let want = table(&sys.mem, swapper).pgd_raw(idx);
    assert_ne!(want, 0);
    // Without the copy, the fast path gives up (the slow path would copy).
    assert!(!fast_path(mm.hw(), mm.mem(), v, false));
    assert_eq!(active.pgd_raw(idx), 0);
    assert!(fast_path_with_pgd_copy(mm.hw(), mm.mem(), &ctx, v, false));
    assert_eq!(active.pgd_raw(idx), want, "swapper's entry copied");
    let (pa, _) = mm.translate(INIT_MM, v).unwrap();
    assert!(sys.machine(&mm).read_u32(v.as_u32()).is_ok());
    assert_eq!(mm.translate(p, v).unwrap().0, pa, "p now reaches the same frame");
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
    mm.vfree(v).unwrap();
}

#[test]
fn leaves_everything_else_to_the_slow_path() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let p = mm.mm_create().unwrap();
    mm.switch_mm(p).unwrap();
    let ctx = mm.fault_context();
    let before = snapshot(&sys.mem, mm.pgd(p).unwrap());
    // A user (P0) address nobody mapped, and a P3 address swapper lacks too.
    for va in [VirtAddr::new(0x0040_0000), VirtAddr::new(0xD000_0000)] {
        assert!(!fast_path_with_pgd_copy(mm.hw(), mm.mem(), &ctx, va, false), "{va}");
    }
    assert_eq!(snapshot(&sys.mem, mm.pgd(p).unwrap()), before, "nothing copied");
    mm.switch_mm(INIT_MM).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
}
