//! On-target fault injection: a TMU0 interrupt landed on every instruction
//! of the TLB-miss path (fast path, exception entry, Rust slow path with
//! vmalloc_fault, retry). `-icount` makes the landing point a deterministic
//! function of TCNT0's start value.

use crate::exc::IRQ_HOOK;
use crate::tests::{utlb_entries_for, Kmm, HW};
use alloc::collections::BTreeSet;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};
use sh4_mm::*;

use crate::tmu::{reg, IPRA, TCNT0, TCOR0, TCR0, TSTR};

/// Addresses the handler touches, and what it saw.
static X: AtomicU32 = AtomicU32::new(0);
static Y: AtomicU32 = AtomicU32::new(0);
static SEEN: [AtomicU32; 3] = [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)];
static IRQ_SPC: AtomicU32 = AtomicU32::new(0);
static IRQS: AtomicU32 = AtomicU32::new(0);

fn tmu0_irq(intevt: u32, spc: u32) {
    if intevt != 0x400 {
        println!("OOPS: unexpected interrupt {intevt:#x}");
        crate::qemu::exit(102);
    }
    reg::<u8>(TSTR).write(0);
    reg::<u16>(TCR0).update(|v| v & !0x0100); // clear UNF
    IRQ_SPC.store(spc, Ordering::Relaxed);
    IRQS.fetch_add(1, Ordering::Relaxed);
    let (x, y) = (X.load(Ordering::Relaxed), Y.load(Ordering::Relaxed));
    for (i, va) in [x, x + 4096, y].into_iter().enumerate() {
        // SAFETY: mapped kernel pages (in swapper); the active mm may lack
        // their first-level entries, which is the point.
        SEEN[i].store(unsafe { (va as *const u32).read_volatile() }, Ordering::Relaxed);
    }
}

extern "C" {
    fn sh4mm_irq_save() -> u32;
    fn sh4mm_irq_restore(imask: u32);
}

/// Runs the sweep; `ticks` start values 1..=ticks. Whatever happens, the
/// areas, the interrupt hook, TMU0, the interrupt priority, the active mm and
/// the frame count are restored before it returns.
pub fn interrupt_on_every_instruction(mm: &mut Kmm, ticks: u32) -> Result<(u32, usize), String> {
    let e = |e: MmError| alloc::format!("{e}");
    // Kernel PTE pages are never freed (every mm may hold a copy of their
    // first-level entries): everything else must come back.
    let held = |mm: &Kmm| mm.allocator().inner().live() - mm.kernel_pte_pages() as u32;
    let frames = held(mm);
    let x = mm.vmalloc(2 * 4096).map_err(e)?;
    let fill = match mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), 4 << 20, CacheAttr::Uncached) {
        Ok(f) => f,
        Err(err) => {
            let _ = mm.vfree(x);
            return Err(e(err));
        }
    };
    let y = match mm.vmalloc(4096) {
        Ok(y) => y,
        Err(err) => {
            let _ = mm.iounmap(fill);
            let _ = mm.vfree(x);
            return Err(e(err));
        }
    };
    let mut p_live: Option<MmId> = None;
    let r = sweep(mm, ticks, x, y, &mut p_live);
    // Cleanup, pass or fail: nothing of the sweep may outlive it.
    reg::<u8>(TSTR).write(0);
    // No underflow flag or enable left behind: an interrupt still asserted
    // at priority 0 is what GXemul aborts on ("SH interrupt 0x400, prio 0").
    reg::<u16>(TCR0).write(0);
    reg::<u16>(IPRA).write(0);
    *IRQ_HOOK.lock() = None;
    // SAFETY: masks interrupts again (the sweep may have failed with them on).
    unsafe { sh4mm_irq_save() };
    let mut undo: [Result<(), MmError>; 5] = [Ok(()), Ok(()), Ok(()), Ok(()), Ok(())];
    if mm.active() != INIT_MM {
        undo[0] = mm.switch_mm(INIT_MM);
    }
    if let Some(p) = p_live {
        undo[1] = mm.mm_put(p, |_, _| {});
    }
    undo[2] = mm.vfree(x);
    undo[3] = mm.vfree(y);
    undo[4] = mm.iounmap(fill);
    let r = r?;
    if let Some(Err(err)) = undo.iter().find(|u| u.is_err()) {
        return Err(alloc::format!("cleanup failed: {err}"));
    }
    if held(mm) != frames {
        return Err(alloc::format!("frames leaked: {} -> {}", frames, held(mm)));
    }
    Ok(r)
}

fn sweep(
    mm: &mut Kmm,
    ticks: u32,
    x: VirtAddr,
    y: VirtAddr,
    p_live: &mut Option<MmId>,
) -> Result<(u32, usize), String> {
    let e = |e: MmError| alloc::format!("{e}");
    if x.pgd_index() == y.pgd_index() {
        return Err("x and y must be in different first-level entries".into());
    }
    X.store(x.as_u32(), Ordering::Relaxed);
    Y.store(y.as_u32(), Ordering::Relaxed);
    for (va, v) in [(x.as_u32(), 0x11u32), (x.as_u32() + 4096, 0x22), (y.as_u32(), 0x33)] {
        let (pa, _) = mm.translate(INIT_MM, VirtAddr::new(va)).map_err(e)?;
        // SAFETY: the frame behind a page we just mapped, through P2.
        unsafe { (pa.to_p2().as_u32() as *mut u32).write_volatile(v) };
    }
    // The sweep is over the Rust vmalloc_fault: the fast path's own copy
    // (with SR.BL=1, where no interrupt can land) is switched off meanwhile
    // (the caller switches it back on, whatever the outcome).
    crate::exc::fast_path_pgd_copy(None);
    *IRQ_HOOK.lock() = Some(tmu0_irq);
    reg::<u16>(IPRA).write(0x8000); // TMU0 priority: 0 -> nonzero once (QEMU quirk)
    let mut spcs = BTreeSet::new();
    let frames = mm.allocator().inner().live();
    for k in 1..=ticks {
        let p = mm.mm_create().map_err(e)?;
        *p_live = Some(p);
        let t = crate::tests::table(mm.pgd(p).map_err(e)?);
        // p predates both areas.
        for idx in [x.pgd_index(), y.pgd_index()] {
            let pending = t.set_pgd_raw(idx, 0).map_err(e)?;
            // SAFETY: the three pages below are the only ones of these
            // regions the sweep touches, and they are flushed right here.
            unsafe { pending.discard() };
        }
        for va in [x.as_u32(), x.as_u32() + 4096, y.as_u32()] {
            sh4_mm::tlb::flush_page(&HW, Page::containing(VirtAddr::new(va)), 0);
        }
        mm.switch_mm(p).map_err(e)?;
        SEEN.iter().for_each(|s| s.store(0, Ordering::Relaxed));
        IRQ_SPC.store(0, Ordering::Relaxed);
        let before = IRQS.load(Ordering::Relaxed);
        reg::<u8>(TSTR).write(0);
        reg::<u32>(TCOR0).write(u32::MAX);
        reg::<u32>(TCNT0).write(k);
        reg::<u16>(TCR0).write(0x0020); // UNIE, UNF clear, Pφ/4
                                        // SAFETY: IMASK 0 around one access, then back to 15.
        let main = unsafe {
            sh4mm_irq_restore(0);
            reg::<u8>(TSTR).write(1);
            let v = (x.as_u32() as *const u32).read_volatile();
            // A placement past the end of the path lands here: wait for it
            // (volatile reads, so the loop stays), bounded.
            let mut spins = 0;
            while IRQS.load(Ordering::Relaxed) == before && spins < 100_000 {
                let _ = reg::<u32>(TCNT0).read();
                spins += 1;
            }
            sh4mm_irq_save();
            v
        };
        reg::<u8>(TSTR).write(0);
        let delivered = IRQS.load(Ordering::Relaxed) - before;
        let seen = [0, 1, 2].map(|i| SEEN[i].load(Ordering::Relaxed));
        if main != 0x11 || delivered != 1 || seen != [0x11, 0x22, 0x33] {
            return Err(alloc::format!(
                "k={k}: main read {main:#x}, {delivered} interrupt(s), handler saw {seen:x?} (SPC {:#x})",
                IRQ_SPC.load(Ordering::Relaxed)
            ));
        }
        spcs.insert(IRQ_SPC.load(Ordering::Relaxed));
        for va in [x.as_u32(), x.as_u32() + 4096, y.as_u32()] {
            let n = utlb_entries_for(va >> 10);
            if n > 1 {
                return Err(alloc::format!("k={k}: {n} UTLB entries for {va:#x}"));
            }
        }
        mm.switch_mm(INIT_MM).map_err(e)?;
        mm.mm_put(p, |_, _| {}).map_err(e)?;
        *p_live = None;
    }
    if mm.allocator().inner().live() != frames {
        return Err(alloc::format!("frames leaked in the sweep: {} -> {}", frames, mm.allocator().inner().live()));
    }
    Ok((ticks, spcs.len()))
}
