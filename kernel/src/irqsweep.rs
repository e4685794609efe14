//! On-target interrupt context: a TMU0 interrupt landed (under `-icount`) at
//! every few instructions of vmalloc, vfree, dma_alloc_coherent,
//! dma_free_coherent, mm_create, context_switch, a heap alloc/free and the
//! TLB-miss slow path. Its handler uses the MM through its `IrqLock`
//! (dma_alloc_coherent; vmalloc must be refused), writes and reads the buffer
//! through P3, allocates from the heap, frees both (the DMA free is queued).
//! No hang (the lock never spins; the runner's timeout would catch one),
//! data right, everything balanced afterwards. The handler reads TCNT0 first:
//! how long the interrupt waited after it was due is the masked section it
//! hit, in instructions.

use crate::exc::IRQ_HOOK;
use crate::tests::{Kmm, HW, MM};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::*;

use crate::tmu::{reg, IPRA, TCNT0, TCOR0, TCR0, TSTR};

extern "C" {
    fn sh4mm_irq_save() -> u32;
    fn sh4mm_irq_restore(imask: u32);
}

static IRQS: AtomicU32 = AtomicU32::new(0);
/// TCNT0 ticks between the underflow and the handler's first read.
static WAITED: AtomicU32 = AtomicU32::new(0);
/// Set by the main code once the operation returned.
static OP_DONE: AtomicBool = AtomicBool::new(false);
static LATE: AtomicBool = AtomicBool::new(false);
/// First thing the handler found wrong (0 = nothing).
static PROBLEM: AtomicU32 = AtomicU32::new(0);
static PROBLEM_VALUE: AtomicU32 = AtomicU32::new(0);

const P_LOCK_HELD: u32 = 1;
const P_VMALLOC_ALLOWED: u32 = 2;
const P_DMA_ALLOC: u32 = 3;
const P_DATA: u32 = 4;
const P_HEAP: u32 = 5;
const P_DMA_FREE: u32 = 6;
const P_NOT_QUEUED: u32 = 7;
const P_CONTEXT: u32 = 8;

fn problem(p: u32, v: u32) {
    if PROBLEM.load(Ordering::Relaxed) == 0 {
        PROBLEM.store(p, Ordering::Relaxed);
        PROBLEM_VALUE.store(v, Ordering::Relaxed);
    }
}

fn handler(intevt: u32, _spc: u32) {
    let tcnt = reg::<u32>(TCNT0).read();
    reg::<u8>(TSTR).write(0);
    reg::<u16>(TCR0).update(|v| v & !0x0100); // clear UNF
    if intevt != 0x400 {
        return problem(P_CONTEXT, intevt);
    }
    WAITED.store(u32::MAX - tcnt, Ordering::Relaxed);
    LATE.store(OP_DONE.load(Ordering::Relaxed), Ordering::Relaxed);
    IRQS.fetch_add(1, Ordering::Relaxed);
    if !HW.in_interrupt() {
        return problem(P_CONTEXT, 0);
    }
    let buf = {
        let Ok(mut g) = MM.lock() else {
            return problem(P_LOCK_HELD, 0);
        };
        let Some(mm) = g.as_mut() else {
            return problem(P_LOCK_HELD, 1);
        };
        if mm.vmalloc(4096) != Err(MmError::InInterrupt) {
            problem(P_VMALLOC_ALLOWED, 0);
        }
        match mm.dma_alloc_coherent(4096) {
            Ok(b) => b,
            Err(_) => return problem(P_DMA_ALLOC, 0),
        }
    };
    // Through P3 (a TLB miss, possibly through vmalloc_fault, nested in
    // whatever was interrupted), without the lock.
    let p = buf.va.as_u32() as *mut u32;
    for i in 0..4usize {
        // SAFETY: inside the 4 KiB buffer just mapped.
        unsafe { p.add(i * 256).write_volatile(0xC0DE_0000 + i as u32) };
    }
    for i in 0..4usize {
        // SAFETY: as above; and the uncached P2 alias of its frame.
        let (v, d) = unsafe {
            (
                p.add(i * 256).read_volatile(),
                ((buf.phys.to_p2().as_u32() + i as u32 * 1024) as *const u32).read_volatile(),
            )
        };
        if v != 0xC0DE_0000 + i as u32 || d != v {
            problem(P_DATA, v);
        }
    }
    let mut v: Vec<u32> = Vec::new();
    if v.try_reserve(64).is_err() {
        problem(P_HEAP, 0);
    }
    v.extend(0..64u32);
    if v.iter().sum::<u32>() != 2016 {
        problem(P_HEAP, 1);
    }
    drop(v);
    let Ok(mut g) = MM.lock() else {
        return problem(P_LOCK_HELD, 2);
    };
    let Some(mm) = g.as_mut() else { return };
    let (q, n) = (mm.deferred_frees(), mm.dma_buffers());
    if mm.dma_free_coherent(buf.va).is_err() {
        problem(P_DMA_FREE, 0);
    }
    // Queued; or, with the queue full, freed at once.
    let full = q == sh4_mm::irqlock::DEFERRED_MAX;
    if (!full && (mm.deferred_frees(), mm.dma_buffers()) != (q + 1, n)) || (full && mm.dma_buffers() != n - 1) {
        problem(P_NOT_QUEUED, q as u32);
    }
}

fn e(e: MmError) -> String {
    alloc::format!("{e}")
}

fn lock() -> Result<sh4_mm::irqlock::IrqLockGuard<'static, Option<Kmm>, Sh4Hw>, String> {
    MM.lock().map_err(|_| String::from("MM lock held in task context"))
}

fn with<R>(f: impl FnOnce(&mut Kmm) -> Result<R, MmError>) -> Result<R, String> {
    let mut g = lock()?;
    let mm = g.as_mut().ok_or("MMU not brought up")?;
    f(mm).map_err(e)
}

/// frames, memtypes, vmalloc areas, DMA buffers, queued frees, heap bytes.
fn balance() -> Result<[usize; 6], String> {
    let used = crate::heap::used();
    with(|mm| {
        Ok([
            mm.allocator().inner().live() as usize,
            mm.memtypes().len(),
            mm.vm_areas(),
            mm.dma_buffers(),
            mm.deferred_frees(),
            used,
        ])
    })
}

/// One operation: `prep` (not swept), `op` (swept, interrupts on),
/// `finish` (checks the result and undoes it).
struct Op {
    name: &'static str,
    step: u32,
    prep: fn() -> Result<[u32; 4], String>,
    op: fn(&mut [u32; 4]) -> Result<(), String>,
    finish: fn([u32; 4]) -> Result<(), String>,
}

/// Per operation: placements, placements that landed inside it,
/// smallest and largest wait (TMU ticks).
pub struct Stats {
    pub name: &'static str,
    pub placements: u32,
    pub min_wait: u32,
    pub max_wait: u32,
    /// The TCNT0 start value of the longest wait.
    pub max_k: u32,
}

fn sweep(op: &Op) -> Result<Stats, String> {
    // Warm-up: one run of the operation with as many DMA buffers live across
    // it as the handlers can leave queued (a full deferred-free queue, plus
    // one), so that the capacity the structures keep once grown (the memtype
    // node arena, the window B-trees) is reached before the baseline. The
    // sweep then checks that nothing more is held.
    let mut s = (op.prep)()?;
    let mut bufs = Vec::new();
    for _ in 0..=sh4_mm::irqlock::DEFERRED_MAX {
        bufs.push(with(|mm| mm.dma_alloc_coherent(64))?.va);
    }
    (op.op)(&mut s)?;
    (op.finish)(s)?;
    for va in bufs {
        with(|mm| mm.dma_free_coherent(va))?;
    }
    let base = balance()?;
    let mut st = Stats { name: op.name, placements: 0, min_wait: u32::MAX, max_wait: 0, max_k: 0 };
    let mut k = 1;
    let mut fine = false;
    loop {
        let mut s = (op.prep)()?;
        OP_DONE.store(false, Ordering::Relaxed);
        LATE.store(false, Ordering::Relaxed);
        let before = IRQS.load(Ordering::Relaxed);
        reg::<u8>(TSTR).write(0);
        reg::<u32>(TCOR0).write(u32::MAX);
        reg::<u32>(TCNT0).write(k);
        reg::<u16>(TCR0).write(0x0020); // UNIE, UNF clear, Pφ/4
                                        // SAFETY: interrupts on around the operation only.
        unsafe { sh4mm_irq_restore(0) };
        reg::<u8>(TSTR).write(1);
        let r = (op.op)(&mut s);
        OP_DONE.store(true, Ordering::Relaxed);
        let mut spins = 0;
        while IRQS.load(Ordering::Relaxed) == before && spins < 200_000 {
            let _ = reg::<u32>(TCNT0).read();
            spins += 1;
        }
        // SAFETY: back to IMASK 15 (the suite's level).
        unsafe { sh4mm_irq_save() };
        reg::<u8>(TSTR).write(0);
        let n = IRQS.load(Ordering::Relaxed) - before;
        let p = PROBLEM.swap(0, Ordering::Relaxed);
        if n != 1 || p != 0 {
            return Err(alloc::format!(
                "{} k={k}: {n} interrupt(s), handler problem {p} ({:#x})",
                op.name,
                PROBLEM_VALUE.load(Ordering::Relaxed)
            ));
        }
        r.map_err(|w| alloc::format!("{} k={k}: {w}", op.name))?;
        (op.finish)(s).map_err(|w| alloc::format!("{} k={k}: {w}", op.name))?;
        let w = WAITED.load(Ordering::Relaxed);
        st.min_wait = st.min_wait.min(w);
        if w > st.max_wait {
            st.max_wait = w;
            st.max_k = k;
        }
        st.placements += 1;
        // Every instruction (2 ticks) near both ends, where the unmasked
        // stretches are; `op.step` across the masked middle. The first late
        // placement after a coarse step goes back and redoes the tail finely.
        let late = LATE.load(Ordering::Relaxed);
        if late && (fine || k <= op.step) {
            break;
        }
        if late {
            fine = true;
            k -= op.step;
        }
        k += if fine || k < 256 { 2 } else { op.step };
        if k > 200_000 {
            return Err(alloc::format!("{}: never ends", op.name));
        }
    }
    // The queued frees are done by the next task-context call.
    with(|mm| Ok(mm.run_deferred()))?;
    let after = balance()?;
    if after != base {
        return Err(alloc::format!(
            "{}: not balanced (frames, memtypes, areas, dma, queued, heap): {base:?} -> {after:?}",
            op.name
        ));
    }
    Ok(st)
}

const P3_WORD: u32 = 0x0FA1;

fn ops() -> [Op; 8] {
    [
        Op {
            name: "vmalloc",
            step: 16,
            prep: || Ok([0; 4]),
            op: |s| {
                s[0] = with(|mm| mm.vmalloc(4096))?.as_u32();
                Ok(())
            },
            finish: |s| {
                let p = s[0] as *mut u32;
                // SAFETY: the page just vmalloc'ed.
                let (z, v) = unsafe {
                    let z = p.add(5).read_volatile();
                    p.write_volatile(0x1234);
                    (z, p.read_volatile())
                };
                if (z, v) != (0, 0x1234) {
                    return Err(alloc::format!("vmalloc'ed page reads {z:#x}/{v:#x}"));
                }
                with(|mm| mm.vfree(VirtAddr::new(s[0])))
            },
        },
        Op {
            name: "vfree",
            step: 16,
            prep: || Ok([with(|mm| mm.vmalloc(4096))?.as_u32(), 0, 0, 0]),
            op: |s| with(|mm| mm.vfree(VirtAddr::new(s[0]))),
            finish: |s| match crate::exc::probe_read(s[0]) {
                Err(_) => Ok(()),
                Ok(v) => Err(alloc::format!("read after vfree returned {v:#x}")),
            },
        },
        Op {
            name: "dma_alloc_coherent",
            step: 16,
            prep: || Ok([0; 4]),
            op: |s| {
                let b = with(|mm| mm.dma_alloc_coherent(4096))?;
                *s = [b.va.as_u32(), b.phys.as_u32(), 0, 0];
                Ok(())
            },
            finish: |s| {
                // SAFETY: the buffer just allocated, and its P2 alias.
                let v = unsafe {
                    ((s[0] + 64) as *mut u32).write_volatile(0x5A5A);
                    ((PhysAddr::new(s[1]).unwrap().to_p2().as_u32() + 64) as *const u32).read_volatile()
                };
                if v != 0x5A5A {
                    return Err(alloc::format!("DMA buffer reads {v:#x} through P2"));
                }
                with(|mm| mm.dma_free_coherent(VirtAddr::new(s[0])))
            },
        },
        Op {
            name: "dma_free_coherent",
            step: 16,
            prep: || Ok([with(|mm| mm.dma_alloc_coherent(4096))?.va.as_u32(), 0, 0, 0]),
            op: |s| with(|mm| mm.dma_free_coherent(VirtAddr::new(s[0]))),
            finish: |_| Ok(()),
        },
        Op {
            name: "mm_create",
            step: 16,
            prep: || Ok([0; 4]),
            op: |s| {
                let id = with(|mm| mm.mm_create())?.to_raw();
                *s = [id as u32, (id >> 32) as u32, 0, 0];
                Ok(())
            },
            finish: |s| with(|mm| mm.mm_put(MmId::from_raw(s[0] as u64 | (s[1] as u64) << 32), |_, _| {})),
        },
        Op {
            name: "context_switch",
            step: 2,
            prep: || {
                let id = with(|mm| mm.mm_create())?.to_raw();
                Ok([id as u32, (id >> 32) as u32, 0, 0])
            },
            op: |s| {
                let p = MmId::from_raw(s[0] as u64 | (s[1] as u64) << 32);
                let (mut boot, mut user) = (TaskMm::boot(), TaskMm::user(p));
                with(|mm| mm.context_switch(&mut boot, &mut user))?;
                s[2] = 1;
                Ok(())
            },
            finish: |s| {
                let p = MmId::from_raw(s[0] as u64 | (s[1] as u64) << 32);
                with(|mm| {
                    if mm.active() != p {
                        return Err(MmError::Busy);
                    }
                    mm.switch_mm(INIT_MM)?;
                    mm.mm_put(p, |_, _| {})
                })
            },
        },
        Op {
            name: "heap_alloc_free",
            step: 2,
            prep: || Ok([0; 4]),
            op: |s| {
                let v: Vec<u32> = (0..32).collect();
                s[0] = v.iter().sum();
                Ok(())
            },
            finish: |s| {
                if s[0] == 496 {
                    Ok(())
                } else {
                    Err(alloc::format!("heap data {}", s[0]))
                }
            },
        },
        Op {
            name: "tlb_miss_slow_path",
            step: 2,
            // An mm created before the area: its first-level entry is
            // missing, so the read goes through vmalloc_fault.
            prep: || {
                with(|mm| {
                    let p = mm.mm_create()?;
                    let v = mm.vmalloc(4096)?;
                    let (pa, _) = mm.translate(INIT_MM, v)?;
                    // SAFETY: the new page's frame through P2.
                    unsafe { (pa.to_p2().as_u32() as *mut u32).write_volatile(P3_WORD) };
                    let pending = crate::tests::table(mm.pgd(p)?).set_pgd_raw(v.pgd_index(), 0)?;
                    // SAFETY: p never ran (no entry under its ASID), and the
                    // one shared page of the region is flushed right below.
                    unsafe { pending.discard() };
                    sh4_mm::tlb::flush_page(&HW, Page::containing(v), 0);
                    mm.switch_mm(p)?;
                    let id = p.to_raw();
                    Ok([id as u32, (id >> 32) as u32, v.as_u32(), 0])
                })
            },
            op: |s| {
                // SAFETY: mapped in swapper_pg_dir; the active mm lacks it.
                s[3] = unsafe { (s[2] as *const u32).read_volatile() };
                Ok(())
            },
            finish: |s| {
                let p = MmId::from_raw(s[0] as u64 | (s[1] as u64) << 32);
                with(|mm| {
                    mm.switch_mm(INIT_MM)?;
                    mm.mm_put(p, |_, _| {})?;
                    mm.vfree(VirtAddr::new(s[2]))
                })?;
                if s[3] != P3_WORD {
                    return Err(alloc::format!("slow-path read {:#x}", s[3]));
                }
                Ok(())
            },
        },
    ]
}

/// The on-target test: every sweep, then the masked sections it measured.
pub fn test() -> Result<(), String> {
    let stats = run()?;
    let mut longest = (0, "");
    for s in &stats {
        // Under -icount shift=7 one instruction is 1.92 TMU ticks (Pφ/4);
        // the shortest wait is the interrupt entry itself.
        let masked = (s.max_wait - s.min_wait) * 100 / 192;
        println!(
            "  ({}: {} placements, longest masked section {} instructions, due at tick {})",
            s.name, s.placements, masked, s.max_k
        );
        if masked > longest.0 {
            longest = (masked, s.name);
        }
        if s.placements < 2 {
            return Err(alloc::format!("{}: the interrupt must land before and after it", s.name));
        }
    }
    println!("  (longest masked section: {} instructions, in {})", longest.0, longest.1);
    Ok(())
}

/// Runs every sweep; the system is as before afterwards (hook, IPRA, TMU,
/// active mm), pass or fail.
pub fn run() -> Result<Vec<Stats>, String> {
    // Kernel PTE pages are never freed: make the ones the sweep uses first.
    with(|mm| {
        let v = mm.vmalloc(4096)?;
        mm.vfree(v)?;
        let b = mm.dma_alloc_coherent(4096)?;
        mm.dma_free_coherent(b.va)
    })?;
    *IRQ_HOOK.lock() = Some(handler);
    reg::<u16>(IPRA).write(0x8000); // TMU0 priority: 0 -> nonzero once (QEMU quirk)
    let mut out = Vec::new();
    let mut r = Ok(());
    for op in ops().iter() {
        match sweep(op) {
            Ok(s) => out.push(s),
            Err(w) => {
                r = Err(w);
                break;
            }
        }
    }
    reg::<u8>(TSTR).write(0);
    reg::<u16>(TCR0).write(0);
    reg::<u16>(IPRA).write(0);
    *IRQ_HOOK.lock() = None;
    // SAFETY: the suite runs at IMASK 15.
    unsafe { sh4mm_irq_save() };
    let _ = with(|mm| {
        mm.run_deferred();
        if mm.active() != INIT_MM {
            mm.switch_mm(INIT_MM)?;
        }
        Ok(())
    });
    r.map(|_| out)
}
