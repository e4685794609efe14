//! Benchmarks (`-append bench`), counted exactly by `scripts/bench.sh`.
//!
//! Every measured operation runs between two calls of `sh4mm_bench_mark`
//! (kernel/asm/testhelpers.S: one TCNT0 load). The script boots this kernel under
//! `qemu-system-sh4 -singlestep -d exec,nochain`, where every executed
//! instruction is one trace line, cuts the trace at the markers (region k =
//! the k-th pair) and counts, per region, what the `bench-region:` line
//! printed at the end says:
//!
//! * `fn ADDR`: from the first execution of the function at ADDR to the
//!   return to its caller (the instruction after the call's delay slot);
//! * `exc ADDR`: from the first instruction at the exception vector ADDR to
//!   the retry of the instruction that raised the exception;
//! * `region`: every instruction between the two markers.
//!
//! The same image is also run under `-icount shift=10`, where the two TCNT0
//! values each marker returns give a second, independent count of every
//! region (QEMU's virtual clock advances a fixed amount per instruction).
//! Nothing is printed while measuring, so both runs execute the same
//! instruction stream; results are printed at the end.

use crate::tests::{mmu_bringup, Kmm, HW, MM};
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;
use sh4_mm::{CacheAttr, FrameAllocator, MmError, MmId, MmResult, Page, PhysAddr, Prot, VirtAddr, INIT_MM};
use volatile::VolatilePtr;

extern "C" {
    fn sh4mm_bench_mark() -> u32;
    fn sh4mm_bench_spin(n: u32);
    static vbr_base: u8;
    static sh4mm_tlb_miss_vector: u8;
}

fn reg<T>(addr: usize) -> VolatilePtr<'static, T> {
    // SAFETY: TMU0 registers in P4, accessed at their documented widths.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut T)) }
}

/// TMU0 free-running from 0xFFFF_FFFF at Pφ/4 (counts down).
fn tmu_start() {
    reg::<u8>(0xFFD8_0004).write(0); // TSTR: stop
    reg::<u16>(0xFFD8_0010).write(0); // TCR0: Pφ/4, no interrupt
    reg::<u32>(0xFFD8_0008).write(u32::MAX); // TCOR0
    reg::<u32>(0xFFD8_000C).write(u32::MAX); // TCNT0
    reg::<u8>(0xFFD8_0004).write(1); // start
}

#[derive(Clone, Copy)]
enum Count {
    Fn(usize),
    Exc(usize),
    Region,
}

struct Rec {
    name: String,
    count: Count,
    /// Printed in results/bench.txt (otherwise only cut from the trace).
    report: bool,
    ticks: u32,
}

struct Bench {
    recs: Vec<Rec>,
}

impl Bench {
    /// Runs `f` between two markers. `name` is built before the region.
    fn measure<R>(&mut self, name: String, count: Count, report: bool, f: impl FnOnce() -> R) -> R {
        // SAFETY: the marker only reads TCNT0.
        let t0 = unsafe { sh4mm_bench_mark() };
        let r = f();
        // SAFETY: as above.
        let t1 = unsafe { sh4mm_bench_mark() };
        self.recs.push(Rec { name, count, report, ticks: t0.wrapping_sub(t1) });
        r
    }
}

fn fn_addr(f: usize) -> Count {
    Count::Fn(f)
}

const PAGE: usize = 4096;

pub fn run() {
    tmu_start();
    if mmu_bringup().is_err() {
        println!("bench: MMU bring-up failed");
        return;
    }
    let Ok(mut g) = MM.lock() else { return };
    let Some(mm) = g.as_mut() else { return };
    let mut b = Bench { recs: Vec::with_capacity(600) };
    if let Err(e) = run_all(mm, &mut b) {
        println!("bench: FAILED: {e}");
        return;
    }
    let vbr = &raw const vbr_base as usize;
    println!("bench-vectors: {:#x} {:#x} {:#x}", vbr + 0x100, vbr + 0x400, vbr + 0x600);
    for (k, r) in b.recs.iter().enumerate() {
        let count = match r.count {
            Count::Fn(a) => alloc::format!("fn {a:#010x}"),
            Count::Exc(a) => alloc::format!("exc {a:#010x}"),
            Count::Region => String::from("region"),
        };
        let shown = if r.report { "report" } else { "-" };
        println!("bench-region: {k} | {count} | {shown} | {} | {}", r.ticks, r.name);
    }
}

fn run_all(mm: &mut Kmm, b: &mut Bench) -> MmResult<()> {
    let (tlb_vector, general_vector) =
        (&raw const sh4mm_tlb_miss_vector as usize, &raw const vbr_base as usize + 0x100);
    let vmalloc = fn_addr(Kmm::vmalloc as fn(&mut Kmm, usize) -> MmResult<VirtAddr> as usize);
    // vfree and iounmap are counted as the public calls (entry to return):
    // GCC may inline them or tail-call free_vm_area, so no inner function
    // is a reliable entry-to-return region.
    let vfree = fn_addr(Kmm::vfree as fn(&mut Kmm, VirtAddr) -> MmResult<()> as usize);
    let switch_mm = fn_addr(Kmm::switch_mm as fn(&mut Kmm, MmId) -> MmResult<()> as usize);

    b.measure("empty region (markers only)".into(), Count::Region, true, || ());
    // The reference: 2n + 2 instructions by construction; its TMU ticks also
    // give the -icount run its ticks per instruction.
    let spin = fn_addr(sh4mm_bench_spin as unsafe extern "C" fn(u32) as usize);
    // SAFETY: a counted loop, no memory access.
    b.measure("calibration: sh4mm_bench_spin(2 000 000)".into(), spin, true, || unsafe { sh4mm_bench_spin(2_000_000) });

    // TLB miss, fast path: first touch of a page swapper maps.
    let v = mm.vmalloc(PAGE)?;
    // SAFETY: a mapped page; the first access takes the fast path.
    b.measure("TLB miss, fast path (exception to retry)".into(), Count::Exc(tlb_vector), true, || unsafe {
        (v.as_u32() as *const u32).read_volatile()
    });

    // vmalloc_fault: an mm created before a new 4 MiB region got its PTE page.
    let p = mm.mm_create()?;
    mm.switch_mm(p)?;
    let fill = mm.ioremap(PhysAddr::new(0x1000_0000).ok_or(MmError::Overflow)?, 4 << 20, CacheAttr::Uncached)?;
    let w = mm.vmalloc(PAGE)?;
    // SAFETY: mapped in swapper only: the fast path copies the entry.
    b.measure(
        "TLB miss needing the P3 first-level copy, assembly fast path (exception to retry)".into(),
        Count::Exc(tlb_vector),
        true,
        || unsafe { (w.as_u32() as *const u32).read_volatile() },
    );
    // The same with the copy left to the Rust slow path (as for a kernel
    // that does not set sh4mm_swapper_pgd): p loses the entry and the TLB
    // entry again.
    let pending = crate::tests::table(mm.pgd(p)?).set_pgd_raw(w.pgd_index(), 0)?;
    // SAFETY: the one page of the region the bench touches is flushed below.
    unsafe { pending.discard() };
    sh4_mm::tlb::flush_page(&HW, Page::containing(w), sh4_mm::tlb::current_asid(&HW));
    crate::exc::fast_path_pgd_copy(None);
    // SAFETY: as above; now the slow path's vmalloc_fault copies it.
    b.measure(
        "TLB miss needing the P3 first-level copy, Rust vmalloc_fault (exception to retry)".into(),
        Count::Exc(tlb_vector),
        true,
        || unsafe { (w.as_u32() as *const u32).read_volatile() },
    );
    crate::exc::fast_path_pgd_copy(Some(mm.swapper_pg_dir().start().to_p1().as_u32()));
    mm.switch_mm(INIT_MM)?;

    // Initial page write: a clean user page written by the kernel (the miss
    // loads the clean entry through the fast path; the retried write raises
    // 0x080 at VBR+0x100, handled by the Rust slow path).
    let f = mm.allocator_mut().alloc(1).ok_or(MmError::OutOfFrames)?;
    let uva = VirtAddr::new(0x0090_0000);
    mm.map_user(p, Page::containing(uva), f, 1, Prot::UserRw, CacheAttr::WriteBack)?;
    mm.switch_mm(p)?;
    // SAFETY: privileged write to a mapped user page.
    b.measure("initial page write (0x080, exception to retry)".into(), Count::Exc(general_vector), true, || unsafe {
        ((uva.as_u32() + 4) as *mut u32).write_volatile(0x1D)
    });
    mm.switch_mm(INIT_MM)?;

    // Context switch (switch_mm), without and with ASID rollover.
    let q = mm.mm_create()?;
    mm.switch_mm(q)?;
    mm.switch_mm(p)?;
    b.measure("switch_mm, ASID still valid".into(), switch_mm, true, || mm.switch_mm(q))?;
    let mut extra: Vec<MmId> = Vec::new();
    let before = mm.asids().rollovers();
    while mm.asids().rollovers() == before && extra.len() < 300 {
        let m = mm.mm_create()?;
        let name = String::from("switch_mm, new ASID");
        let first = extra.is_empty();
        b.measure(name, switch_mm, first, || mm.switch_mm(m))?;
        if mm.asids().rollovers() != before {
            if let Some(r) = b.recs.last_mut() {
                r.name = String::from("switch_mm, ASID rollover (TLB flush)");
                r.report = true;
            }
        }
        extra.push(m);
    }
    mm.switch_mm(INIT_MM)?;
    for m in extra {
        mm.mm_put(m, |_, _| {})?;
    }

    map_unmap(mm, b, "", vmalloc, vfree)?;

    // Consistent (DMA) buffers and ioremap at 1 and 256 pages.
    let dma_alloc = fn_addr(Kmm::dma_alloc_coherent as fn(&mut Kmm, usize) -> _ as usize);
    let dma_free = fn_addr(Kmm::dma_free_coherent as fn(&mut Kmm, VirtAddr) -> MmResult<()> as usize);
    let ioremap = fn_addr(Kmm::ioremap as fn(&mut Kmm, PhysAddr, usize, CacheAttr) -> _ as usize);
    let iounmap = fn_addr(Kmm::iounmap as fn(&mut Kmm, VirtAddr) -> MmResult<()> as usize);
    for n in [1usize, 256] {
        let d = b.measure(alloc::format!("dma_alloc_coherent {n} pages"), dma_alloc, true, || {
            mm.dma_alloc_coherent(n * PAGE)
        })?;
        b.measure(alloc::format!("dma_free_coherent {n} pages"), dma_free, true, || mm.dma_free_coherent(d.va))?;
        let phys = PhysAddr::new(0x1100_0000).ok_or(MmError::Overflow)?;
        let r = b.measure(alloc::format!("ioremap {n} pages"), ioremap, true, || {
            mm.ioremap(phys, n * PAGE, CacheAttr::Uncached)
        })?;
        b.measure(alloc::format!("iounmap {n} pages"), iounmap, true, || mm.iounmap(r))?;
    }

    // The same with 10 000 live one-page ioremap areas: 10 000 window areas
    // and 10 000 memtype reservations (left in place: the bench exits next).
    for i in 0..10_000u32 {
        let phys = PhysAddr::new(0x1200_0000 + i * PAGE as u32).ok_or(MmError::Overflow)?;
        mm.ioremap(phys, PAGE, CacheAttr::Uncached)?;
    }
    map_unmap(mm, b, ", 10 000 live areas", vmalloc, vfree)?;

    mm.iounmap(fill)?;
    mm.vfree(w)?;
    mm.vfree(v)?;
    mm.mm_put(p, |_, _| {})?;
    mm.mm_put(q, |_, _| {})?;
    mm.allocator_mut().free(f, 1);
    Ok(())
}

/// vmalloc + vfree of 1, 16, 256 and 1024 pages.
fn map_unmap(mm: &mut Kmm, b: &mut Bench, tag: &str, vmalloc: Count, vfree: Count) -> MmResult<()> {
    for n in [1usize, 16, 256, 1024] {
        let a = b.measure(alloc::format!("vmalloc {n} pages{tag}"), vmalloc, true, || mm.vmalloc(n * PAGE))?;
        b.measure(alloc::format!("vfree {n} pages{tag}"), vfree, true, || mm.vfree(a))?;
    }
    Ok(())
}
