//! On-target randomized soak (issue 9): a deterministic pseudo-random mix of
//! MM operations on the CPU — vmalloc/vfree, dma_alloc/free_coherent,
//! ioremap/iounmap, fixmap map/unmap, address spaces created, switched to
//! (their first touch of every area goes through vmalloc_fault) and put —
//! with loads and stores checked against a pattern, while TMU0 interrupts
//! land at pseudo-random instructions. The interrupt handler reads a live
//! vmalloc/consistent word and checks it, and every few interrupts allocates
//! a DMA buffer, writes and reads it through P3 and frees it (queued).
//! Whatever happens, everything is undone before the test returns.

use crate::exc::IRQ_HOOK;
use crate::tests::{Kmm, MM};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use sh4_mm::*;

use crate::tmu::{reg, IPRA, TCNT0, TCOR0, TCR0, TSTR};

extern "C" {
    fn sh4mm_irq_save() -> u32;
    fn sh4mm_irq_restore(imask: u32);
}

/// Operations in the soak (the README's ">= 100k ops").
pub const OPS: u32 = 100_000;

/// Words the handler may check: (va, expected), 0 = empty. Written by the
/// main loop with interrupts masked.
static PROBES: [(AtomicU32, AtomicU32); 8] = [const { (AtomicU32::new(0), AtomicU32::new(0)) }; 8];
static IRQS: AtomicU32 = AtomicU32::new(0);
static CHECKS: AtomicU32 = AtomicU32::new(0);
static DMA_IN_IRQ: AtomicU32 = AtomicU32::new(0);
static BAD: AtomicU32 = AtomicU32::new(0);
static BAD_VA: AtomicU32 = AtomicU32::new(0);
static SEED: AtomicU32 = AtomicU32::new(1);
/// Set while the soak winds down: the handler no longer restarts TMU0.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn xorshift(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

fn rearm() {
    let mut s = SEED.load(Ordering::Relaxed);
    let t = 1 + xorshift(&mut s) % 3000;
    SEED.store(s, Ordering::Relaxed);
    reg::<u8>(TSTR).write(0);
    reg::<u32>(TCNT0).write(t);
    reg::<u16>(TCR0).write(0x0020); // UNIE, UNF clear, Pφ/4
    reg::<u8>(TSTR).write(1);
}

fn tmu0_irq(intevt: u32, _spc: u32) {
    if intevt != 0x400 {
        BAD.store(1, Ordering::Relaxed);
        return;
    }

    let n = IRQS.fetch_add(1, Ordering::Relaxed);
    let i = (n as usize) % PROBES.len();
    let (va, want) = (PROBES[i].0.load(Ordering::Relaxed), PROBES[i].1.load(Ordering::Relaxed));
    if va != 0 {
        // SAFETY: a live vmalloc/consistent word (the main loop removes a
        // probe, with interrupts masked, before it frees the area).
        let got = unsafe { (va as *const u32).read_volatile() };
        CHECKS.fetch_add(1, Ordering::Relaxed);
        if got != want {
            BAD.store(2, Ordering::Relaxed);
            BAD_VA.store(va, Ordering::Relaxed);
        }
    }
    if n.is_multiple_of(8) {
        // The interrupt-safe part of the API: a DMA buffer, touched through
        // P3, freed (the free is queued until task context).
        if let Ok(mut g) = MM.lock() {
            if let Some(mm) = g.as_mut() {
                if let Ok(b) = mm.dma_alloc_coherent(64) {
                    let p = b.va.as_u32() as *mut u32;
                    // SAFETY: the buffer just mapped, uncached.
                    let ok = unsafe {
                        p.write_volatile(0xD0A0_0000 | n);
                        p.read_volatile() == 0xD0A0_0000 | n
                    };
                    if !ok {
                        BAD.store(3, Ordering::Relaxed);
                    }
                    if mm.dma_free_coherent(b.va).is_err() {
                        BAD.store(4, Ordering::Relaxed);
                    }
                    DMA_IN_IRQ.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            BAD.store(5, Ordering::Relaxed); // the lock masks: never held here
        }
    }
    reg::<u16>(TCR0).update(|v| v & !0x0100); // clear UNF
    if !STOPPING.load(Ordering::Relaxed) {
        rearm();
    }
}

/// A live area and the eight words it holds (offset, value); other words 0.
struct Area {
    va: u32,
    pages: u32,
    dma: bool,
    words: [(u32, u32); 8],
}

fn e(e: MmError) -> String {
    alloc::format!("{e}")
}

fn with<R>(f: impl FnOnce(&mut Kmm) -> MmResult<R>) -> Result<R, String> {
    let mut g = MM.lock().map_err(|_| String::from("MM lock held"))?;
    let mm = g.as_mut().ok_or("MMU not brought up")?;
    f(mm).map_err(e)
}

fn set_probes(areas: &[Area], rng: &mut u32) {
    // SAFETY: masks interrupts around the update (restored below).
    let saved = unsafe { sh4mm_irq_save() };
    for p in PROBES.iter() {
        let (va, want) = match areas.get(xorshift(rng) as usize % areas.len().max(1)) {
            Some(a) => {
                let (off, v) = a.words[(xorshift(rng) % 8) as usize];
                (a.va + off, v)
            }
            None => (0, 0),
        };
        p.0.store(va, Ordering::Relaxed);
        p.1.store(want, Ordering::Relaxed);
    }
    // SAFETY: restores the level saved above.
    unsafe { sh4mm_irq_restore(saved) };
}

/// Runs the soak; returns (ops, interrupts, handler checks, DMA buffers
/// allocated in interrupt handlers).
pub fn run(ops: u32) -> Result<(u32, u32, u32, u32), String> {
    let mut areas: Vec<Area> = Vec::new();
    let mut mms: Vec<MmId> = Vec::new();
    [&IRQS, &CHECKS, &DMA_IN_IRQ, &BAD, &BAD_VA].iter().for_each(|a| a.store(0, Ordering::Relaxed));
    *IRQ_HOOK.lock() = Some(tmu0_irq);
    reg::<u16>(IPRA).write(0x8000); // TMU0 priority 8
    reg::<u32>(TCOR0).write(u32::MAX);
    SEED.store(0x50A6, Ordering::Relaxed);
    STOPPING.store(false, Ordering::Relaxed);
    rearm();
    // SAFETY: interrupts on for the main loop (the MM lock masks them while
    // an operation runs); masked again below, pass or fail.
    let saved = unsafe { sh4mm_irq_save() };
    // SAFETY: as above.
    unsafe { sh4mm_irq_restore(0) };
    let r = soak(ops, &mut areas, &mut mms);
    // Undo everything, pass or fail. First TMU0 stops, and an interrupt it
    // raised meanwhile is taken (the handler no longer rearms) before its
    // priority goes back to 0: GXemul raises TMU interrupts from a device
    // tick every 16384 instructions and aborts on one still asserted at
    // priority 0 ("SH interrupt 0x400, prio 0").
    STOPPING.store(true, Ordering::Relaxed);
    reg::<u8>(TSTR).write(0);
    for _ in 0..40_000 {
        let _ = reg::<u8>(TSTR).read();
    }
    // SAFETY: masks interrupts again.
    unsafe { sh4mm_irq_save() };
    reg::<u8>(TSTR).write(0);
    // No underflow flag or enable left behind.
    reg::<u16>(TCR0).write(0);
    reg::<u16>(IPRA).write(0);
    *IRQ_HOOK.lock() = None;
    set_probes(&[], &mut 1);
    let mut undo = Ok(());
    for a in areas.drain(..) {
        let u =
            with(|mm| if a.dma { mm.dma_free_coherent(VirtAddr::new(a.va)) } else { mm.vfree(VirtAddr::new(a.va)) });
        undo = undo.and(u);
    }
    if with(|mm| Ok(mm.active()))? != INIT_MM {
        undo = undo.and(with(|mm| mm.switch_mm(INIT_MM)));
    }
    for p in mms.drain(..) {
        undo = undo.and(with(|mm| mm.mm_put(p, |_, _| {})));
    }
    undo = undo.and(with(|mm| {
        mm.run_deferred();
        Ok(())
    }));
    // SAFETY: back to the level the test started with.
    unsafe { sh4mm_irq_restore(saved) };
    let n = r?;
    undo.map_err(|u| alloc::format!("cleanup: {u}"))?;
    Ok((n, IRQS.load(Ordering::Relaxed), CHECKS.load(Ordering::Relaxed), DMA_IN_IRQ.load(Ordering::Relaxed)))
}

fn soak(ops: u32, areas: &mut Vec<Area>, mms: &mut Vec<MmId>) -> Result<u32, String> {
    let mut rng: u32 = 0x1234_5678;
    for k in 0..ops {
        let bad = BAD.load(Ordering::Relaxed);
        if bad != 0 {
            return Err(alloc::format!(
                "op {k}: interrupt handler problem {bad} (va {:#x})",
                BAD_VA.load(Ordering::Relaxed)
            ));
        }
        let op = xorshift(&mut rng) % 100;
        // Never two UTLB entries for one page (QEMU would only notice when
        // its own soft TLB misses).
        if k % 64 == 0 {
            if let Some(d) = crate::tests::utlb_duplicate() {
                return Err(alloc::format!("before op {k}: two UTLB entries for one page: {d:x?}"));
            }
        }
        match op {
            // Loads and stores, checked.
            0..=49 if !areas.is_empty() => {
                let i = xorshift(&mut rng) as usize % areas.len();
                let a = &mut areas[i];
                let w = (xorshift(&mut rng) % 8) as usize;
                let (off, v) = a.words[w];
                // SAFETY: a live area; offsets lie inside it.
                let got = unsafe { ((a.va + off) as *const u32).read_volatile() };
                if got != v {
                    return Err(alloc::format!("op {k}: {:#x} holds {got:#x}, expected {v:#x}", a.va + off));
                }
                let nv = xorshift(&mut rng);
                // SAFETY: as above. The probe may name this word: masked.
                unsafe {
                    let s = sh4mm_irq_save();
                    ((a.va + off) as *mut u32).write_volatile(nv);
                    a.words[w].1 = nv;
                    for p in PROBES.iter() {
                        if p.0.load(Ordering::Relaxed) == a.va + off {
                            p.1.store(nv, Ordering::Relaxed);
                        }
                    }
                    sh4mm_irq_restore(s);
                }
                // An unwritten word reads as zero (fresh memory is zeroed).
                let zoff = (xorshift(&mut rng) % (a.pages * 1024)) * 4;
                if !a.words.iter().any(|&(o, _)| o == zoff) {
                    // SAFETY: inside the area.
                    let z = unsafe { ((a.va + zoff) as *const u32).read_volatile() };
                    if z != 0 {
                        let va = VirtAddr::new(a.va + zoff);
                        let ti = with(|mm| mm.translate(mm.active(), va));
                        // SAFETY: a RAM frame the MM just translated to, read
                        // through P2 (uncached, no TLB) for the diagnostic.
                        let phys =
                            ti.as_ref().map(|(pa, _)| unsafe { (pa.to_p2().as_u32() as *const u32).read_volatile() });
                        let tlb = crate::tests::utlb_dump((a.va + zoff) >> 10);
                        return Err(alloc::format!(
                            "op {k}: fresh word {:#x} holds {z:#x} (dma {}, pages {}, area {:#x}; tables {ti:x?}, memory {phys:x?}, UTLB {tlb:x?}, irqs {})",
                            a.va + zoff, a.dma, a.pages, a.va, IRQS.load(Ordering::Relaxed)
                        ));
                    }
                }
            }
            50..=64 if areas.len() < 24 => {
                let dma = op >= 60;
                let pages = 1 + xorshift(&mut rng) % 3;
                let size = (pages * 4096) as usize;
                let va = if dma { with(|mm| mm.dma_alloc_coherent(size))?.va } else { with(|mm| mm.vmalloc(size))? };
                let mut a = Area { va: va.as_u32(), pages, dma, words: [(0, 0); 8] };
                for (j, w) in a.words.iter_mut().enumerate() {
                    // Distinct offsets, one in each eighth of the area.
                    let span = pages * 1024 / 8; // words
                    let off = (j as u32 * span + xorshift(&mut rng) % span) * 4;
                    let v = xorshift(&mut rng);
                    let before = crate::tests::utlb_dump((a.va + off) >> 10);
                    // SAFETY: inside the area just mapped.
                    unsafe { ((a.va + off) as *mut u32).write_volatile(v) };
                    *w = (off, v);
                    if dma {
                        let pa = with(|mm| mm.translate(INIT_MM, VirtAddr::new(a.va + off)))?.0;
                        // SAFETY: the frame behind it, through P2.
                        let m = unsafe { (pa.to_p2().as_u32() as *const u32).read_volatile() };
                        if m != v {
                            let after = crate::tests::utlb_dump((a.va + off) >> 10);
                            return Err(alloc::format!(
                                "op {k}: write to {:#x} missed its frame {pa} (UTLB before {before:x?}, after {after:x?}, irqs {}, PTEH {:#x})",
                                a.va + off,
                                IRQS.load(Ordering::Relaxed),
                                with(|mm| Ok(mm.hw().pteh()))?
                            ));
                        }
                    }
                }
                areas.push(a);
                set_probes(areas, &mut rng);
            }
            65..=79 if !areas.is_empty() => {
                let i = xorshift(&mut rng) as usize % areas.len();
                let a = areas.swap_remove(i);
                set_probes(areas, &mut rng); // before the area goes
                for &(off, v) in &a.words {
                    // SAFETY: still mapped.
                    let got = unsafe { ((a.va + off) as *const u32).read_volatile() };
                    if got != v {
                        return Err(alloc::format!(
                            "op {k}: before free {:#x} holds {got:#x}, expected {v:#x}",
                            a.va + off
                        ));
                    }
                }
                let va = VirtAddr::new(a.va);
                with(|mm| if a.dma { mm.dma_free_coherent(va) } else { mm.vfree(va) })?;
            }
            80..=87 if mms.len() < 6 => {
                let p = with(|mm| mm.mm_create())?;
                mms.push(p);
            }
            88..=93 if !mms.is_empty() => {
                // Run on an address space: kernel accesses through its table
                // (vmalloc_fault copies what it lacks), then back.
                let p = mms[xorshift(&mut rng) as usize % mms.len()];
                with(|mm| mm.switch_mm(p))?;
                for a in areas.iter() {
                    let (off, v) = a.words[0];
                    // SAFETY: a live area.
                    let got = unsafe { ((a.va + off) as *const u32).read_volatile() };
                    if got != v {
                        let va = VirtAddr::new(a.va + off);
                        let tp = with(|mm| mm.translate(p, va));
                        let ti = with(|mm| mm.translate(INIT_MM, va));
                        // SAFETY: a RAM frame the MM just translated to, read
                        // through P2 (uncached, no TLB) for the diagnostic.
                        let phys =
                            tp.as_ref().map(|(pa, _)| unsafe { (pa.to_p2().as_u32() as *const u32).read_volatile() });
                        let n = crate::tests::utlb_entries_for((a.va + off) >> 10);
                        with(|mm| mm.switch_mm(INIT_MM))?;
                        return Err(alloc::format!(
                            "op {k}: on {p:?} {:#x} holds {got:#x}, expected {v:#x} (dma {}; in p {tp:?}, in init {ti:?}, memory {phys:x?}, {n} UTLB entries)",
                            a.va + off, a.dma
                        ));
                    }
                }
                with(|mm| mm.switch_mm(INIT_MM))?;
            }
            94..=96 if !mms.is_empty() => {
                let p = mms.swap_remove(xorshift(&mut rng) as usize % mms.len());
                with(|mm| mm.mm_put(p, |_, _| {}))?;
            }
            _ => {
                // An ioremap of a device range, or a fixmap slot: mapped and
                // unmapped at once (the cache attribute alternates).
                let attr = if k % 2 == 0 { CacheAttr::Uncached } else { CacheAttr::WriteThrough };
                with(|mm| {
                    let v = mm.ioremap(PhysAddr::new(0x1400_0000).unwrap(), 8192, attr)?;
                    mm.iounmap(v)
                })?;
            }
        }
    }
    Ok(ops)
}
