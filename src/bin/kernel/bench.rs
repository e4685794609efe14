//! Instruction-count benchmarks (`-append bench`, run under `-icount`):
//! TMU0 counts Pφ/4 ticks of QEMU's virtual clock, which advances a fixed
//! amount per guest instruction; ticks are converted with a nop-sled
//! calibration. Deterministic: same image and command line, same numbers.

use crate::tests::{mmu_bringup, MM};
use core::ptr::NonNull;
use sh4_mm::{MmId, INIT_MM};
use volatile::VolatilePtr;

extern "C" {
    fn sh4mm_timed_load(addr: u32) -> u32;
    fn sh4mm_timed_sled0() -> u32;
    fn sh4mm_timed_sled100() -> u32;
}

fn reg<T>(addr: usize) -> VolatilePtr<'static, T> {
    // SAFETY: TMU0 registers in P4, accessed at their documented widths.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut T)) }
}

fn tmu_start() {
    reg::<u8>(0xFFD8_0004).write(0); // TSTR: stop
    reg::<u16>(0xFFD8_0010).write(0); // TCR0: Pφ/4, no interrupt
    reg::<u32>(0xFFD8_0008).write(u32::MAX); // TCOR0
    reg::<u32>(0xFFD8_000C).write(u32::MAX); // TCNT0
    reg::<u8>(0xFFD8_0004).write(1); // start
}

fn tcnt() -> u32 {
    reg::<u32>(0xFFD8_000C).read()
}

/// Ticks per 100 instructions, and the harness's own overhead in ticks.
struct Cal {
    per100: u32,
    rust_overhead: u32,
}

impl Cal {
    fn insns(&self, ticks: u32) -> u32 {
        (ticks * 100 + self.per100 / 2) / self.per100
    }
}

fn time(f: impl FnOnce()) -> u32 {
    let t0 = tcnt();
    f();
    t0.wrapping_sub(tcnt())
}

pub fn run() {
    tmu_start();
    // SAFETY: helpers only read TCNT0 and execute nops.
    let (s0, s100) = unsafe { (sh4mm_timed_sled0(), sh4mm_timed_sled100()) };
    let mut cal = Cal { per100: s100 - s0, rust_overhead: 0 };
    cal.rust_overhead = time(|| {});
    println!("bench: calibration = {} ticks per 100 instructions", cal.per100);
    if mmu_bringup().is_err() {
        println!("bench: MMU bring-up failed");
        return;
    }
    let Ok(mut g) = MM.lock() else { return };
    let Some(mm) = g.as_mut() else { return };
    let report = |name: &str, ticks: u32| {
        println!("bench: {name} = {} instructions", cal.insns(ticks.saturating_sub(cal.rust_overhead)));
    };

    // TLB miss, fast path: cold minus warm access to a page in swapper.
    let v = mm.vmalloc(4096).expect("vmalloc");
    // SAFETY: timed single loads from a mapped page.
    let (cold, warm) = unsafe { (sh4mm_timed_load(v.as_u32()), sh4mm_timed_load(v.as_u32())) };
    println!("bench: tlb_miss_fast_path = {} instructions (vector to rte, incl. delay slot)", cal.insns(cold - warm));

    // vmalloc_fault: an mm created before a new 4 MiB region got its PTE page.
    let p = mm.mm_create().expect("mm");
    mm.switch_mm(p).expect("switch");
    let _fill = mm.ioremap(sh4_mm::PhysAddr::new(0x1000_0000).unwrap(), 4 << 20, sh4_mm::CacheAttr::Uncached);
    let w = mm.vmalloc(4096).expect("vmalloc");
    // SAFETY: as above; the first load takes the slow path (vmalloc_fault).
    let (cold, warm) = unsafe { (sh4mm_timed_load(w.as_u32()), sh4mm_timed_load(w.as_u32())) };
    println!("bench: tlb_miss_vmalloc_fault = {} instructions (exception to rte, Rust slow path)", cal.insns(cold - warm));

    // Context switch (switch_mm), without and with ASID rollover.
    let q = mm.mm_create().expect("mm");
    mm.switch_mm(q).expect("switch");
    mm.switch_mm(p).expect("switch");
    report("switch_mm (ASID still valid)", time(|| mm.switch_mm(q).expect("switch")));
    let mut extra: alloc::vec::Vec<MmId> = alloc::vec::Vec::new();
    let before = mm.asids().rollovers();
    let mut rollover_ticks = 0;
    while mm.asids().rollovers() == before {
        let m = mm.mm_create().expect("mm");
        let t = time(|| mm.switch_mm(m).expect("switch"));
        if mm.asids().rollovers() != before {
            rollover_ticks = t;
        } else if extra.is_empty() {
            report("switch_mm (new ASID, no rollover)", t);
        }
        extra.push(m);
    }
    report("switch_mm (ASID rollover: TLB flush)", rollover_ticks);
    mm.switch_mm(INIT_MM).expect("switch");
    for m in extra {
        let _ = mm.mm_put(m, |_, _| {});
    }

    // map/unmap of 1, 16, 256 pages (vmalloc = frames + PTEs; vfree = unmap + flush + free).
    for n in [1usize, 16, 256] {
        let mut a = None;
        report(&alloc::format!("vmalloc {n} pages"), time(|| a = mm.vmalloc(n * 4096).ok()));
        let a = a.expect("vmalloc");
        report(&alloc::format!("vfree {n} pages"), time(|| mm.vfree(a).expect("vfree")));
    }
}
