//! Interrupt context on the model: for each of vmalloc, vfree,
//! dma_alloc_coherent, dma_free_coherent, mm_create, context_switch, the
//! TLB-miss slow path and a heap alloc/free, an interrupt is landed on every
//! hardware operation. Its handler uses what an interrupt handler may use:
//! the MM through its `IrqLock` (dma_alloc_coherent, then the buffer written
//! and read through P3 by a `Machine`, then dma_free_coherent, which is
//! queued), the heap, and checks that vmalloc / mm_create / vfree of a live
//! area give `InInterrupt` / are queued. Afterwards data, frames, memtypes,
//! areas and the heap must balance, and no lock may ever be found held (on one
//! CPU a spinning lock would hang right there). The same sweep with a lock
//! that does not mask interrupts (a plain spin lock's behaviour) must report
//! exactly that hang.

use sh4_mm::fault::FaultContext;
use sh4_mm::heap::KernelHeap;
use sh4_mm::irqlock::{IrqLock, IrqMask};
use sh4_mm::model::{FrameArena, Machine, PhysMemory, Sh4Model};
use sh4_mm::{Handle, MemoryManager, MmError, MmId, MmuHw, TaskMm, VirtAddr, INIT_MM};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::RefCell;
use std::rc::Rc;

type Mm = MemoryManager<&'static Sh4Model, Rc<PhysMemory>, FrameArena>;

/// A lock "mask" that leaves interrupts on: the lock then behaves like a
/// plain spin lock (the broken variant). Finding it held in a handler is
/// where a spin lock would spin forever.
#[derive(Clone, Copy)]
struct NoMask(&'static Sh4Model);
impl IrqMask for NoMask {
    fn irq_save(&self) -> u32 {
        self.0.imask()
    }
    fn irq_restore(&self, _saved: u32) {}
}

/// Interrupt masks the sweep can use: the real one (the model's SR.IMASK)
/// or the broken one.
trait Mask: IrqMask + Copy + 'static {
    fn of(hw: &'static Sh4Model) -> Self;
}
impl Mask for &'static Sh4Model {
    fn of(hw: &'static Sh4Model) -> Self {
        hw
    }
}
impl Mask for NoMask {
    fn of(hw: &'static Sh4Model) -> Self {
        NoMask(hw)
    }
}

struct World<K: Mask> {
    hw: &'static Sh4Model,
    mem: Rc<PhysMemory>,
    ctx: FaultContext,
    mm: Rc<IrqLock<Mm, K>>,
    heap: Rc<KernelHeap<K>>,
    /// What the interrupt handlers found wrong.
    problems: Rc<RefCell<Vec<String>>>,
    /// Interrupts delivered.
    irqs: Rc<RefCell<u32>>,
}

const RAM: u32 = 0x0C00_0000;
const FRAMES: u32 = 1024;

impl<K: Mask> World<K> {
    fn new() -> Self {
        let hw: &'static Sh4Model = Box::leak(Box::new(Sh4Model::new()));
        let mem = Rc::new(PhysMemory::new(RAM, FRAMES));
        let mm = MemoryManager::new(hw, mem.clone(), FrameArena::new(RAM, FRAMES)).expect("manager");
        mm.enable_mmu();
        let ctx = mm.fault_context();
        let heap = Rc::new(KernelHeap::with_irq(K::of(hw)));
        let arena: &'static mut [u8] = Box::leak(vec![0u8; 64 << 10].into_boxed_slice());
        // SAFETY: a leaked buffer only this heap uses; init once.
        unsafe { heap.init(arena.as_mut_ptr(), arena.len()) };
        let w = World {
            hw,
            mem,
            ctx,
            mm: Rc::new(IrqLock::new(K::of(hw), mm)),
            heap,
            problems: Rc::default(),
            irqs: Rc::default(),
        };
        // Kernel PTE pages are never freed: create the ones the sweep's
        // windows use before anything is counted.
        {
            let mut g = w.mm.lock().unwrap();
            let v = g.vmalloc(2 * 4096).unwrap();
            g.vfree(v).unwrap();
            let b = g.dma_alloc_coherent(4096).unwrap();
            g.dma_free_coherent(b.va).unwrap();
        }
        hw.set_imask(0); // task context, interrupts on
        w
    }

    /// (frames, memtypes, vmalloc areas, dma buffers, deferred, heap bytes)
    fn balance(&self) -> [usize; 6] {
        let g = self.mm.lock().unwrap();
        [
            g.allocator().live() as usize,
            g.memtypes().len(),
            g.vm_areas(),
            g.dma_buffers(),
            g.deferred_frees(),
            self.heap.used(),
        ]
    }

    /// The interrupt handler: only what interrupt context allows.
    fn handler(&self) -> impl FnOnce(&Sh4Model) + 'static {
        let (mm, heap, mem, ctx) = (self.mm.clone(), self.heap.clone(), self.mem.clone(), self.ctx);
        let (problems, irqs) = (self.problems.clone(), self.irqs.clone());
        move |hw: &Sh4Model| {
            *irqs.borrow_mut() += 1;
            let bad = |s: String| problems.borrow_mut().push(s);
            if !hw.in_interrupt() {
                return bad("handler not in interrupt context".into());
            }
            // The heap, from the handler.
            let layout = Layout::from_size_align(48, 4).unwrap();
            // SAFETY: a valid layout; freed below.
            let p = unsafe { heap.alloc(layout) };
            if p.is_null() {
                return bad(format!("heap refused the handler ({} refusals)", heap.refused()));
            }
            let buf = {
                let mut g = match mm.lock() {
                    Ok(g) => g,
                    Err(_) => {
                        // SAFETY: from `alloc` above.
                        unsafe { heap.dealloc(p, layout) };
                        return bad("MM lock held by the interrupted code: a spin lock deadlocks here".into());
                    }
                };
                if g.vmalloc(4096) != Err(MmError::InInterrupt) {
                    bad("vmalloc in an interrupt handler was not refused".into());
                }
                if g.mm_create() != Err(MmError::InInterrupt) {
                    bad("mm_create in an interrupt handler was not refused".into());
                }
                match g.dma_alloc_coherent(4096) {
                    Ok(b) => b,
                    Err(e) => {
                        // SAFETY: from `alloc` above.
                        unsafe { heap.dealloc(p, layout) };
                        return bad(format!("dma_alloc_coherent in the handler: {e}"));
                    }
                }
            };
            // Through P3 (TLB miss → fast or slow path, nested in whatever
            // the interrupted code was doing), lock not held.
            let m = Machine::new(hw, &mem, ctx);
            let va = buf.va.as_u32();
            for i in 0..4 {
                if let Err(e) = m.write_u32(va + i * 1024, 0xC0DE_0000 + i) {
                    bad(format!("handler write at {:#x}: {e:?}", va + i * 1024));
                }
            }
            for i in 0..4 {
                let got = m.read_u32(va + i * 1024);
                let phys =
                    sh4_mm::PhysAccess::read_u32(&*mem, sh4_mm::PhysAddr::new(buf.phys.as_u32() + i * 1024).unwrap());
                if got != Ok(0xC0DE_0000 + i) || phys != 0xC0DE_0000 + i {
                    bad(format!("handler read {got:x?} / memory {phys:#x}, wrote {:#x}", 0xC0DE_0000 + i));
                }
            }
            // SAFETY: `p` is 48 bytes from `alloc`.
            unsafe {
                p.write_bytes(0xAB, 48);
                if *p.add(47) != 0xAB {
                    bad("heap block".into());
                }
                heap.dealloc(p, layout);
            }
            match mm.lock() {
                Ok(mut g) => {
                    let before = g.deferred_frees();
                    if let Err(e) = g.dma_free_coherent(buf.va) {
                        bad(format!("dma_free_coherent in the handler: {e}"));
                    }
                    if g.deferred_frees() != before + 1 || g.dma_buffers() == 0 {
                        bad("dma_free_coherent in an interrupt handler must be queued, not done".into());
                    }
                    if g.dma_free_coherent(buf.va) != Err(MmError::BadHandle(Handle::Area(buf.va))) {
                        bad("a second free of a queued buffer must be BadHandle".into());
                    }
                }
                Err(_) => bad("MM lock held by the interrupted code: a spin lock deadlocks here".into()),
            }
        }
    }
}

/// One operation under test: `prep` (not swept) returns a state, `op` runs
/// the operation on it (swept), `check` verifies its result and undoes it.
struct Op<K: Mask, S> {
    name: &'static str,
    prep: fn(&World<K>) -> S,
    op: fn(&World<K>, &mut S),
    check: fn(&World<K>, S) -> Result<(), String>,
}

fn lock<K: Mask>(w: &World<K>) -> sh4_mm::irqlock::IrqLockGuard<'_, Mm, K> {
    w.mm.lock().expect("task context never finds the MM lock held")
}

fn run_all<K: Mask>() -> (Vec<String>, Vec<(&'static str, u64, u32)>) {
    let mut problems = Vec::new();
    let mut stats = Vec::new();
    macro_rules! run {
        ($name:expr, $prep:expr, $op:expr, $check:expr) => {{
            let w = World::<K>::new();
            let op = Op { name: $name, prep: $prep, op: $op, check: $check };
            let (p, d, n) = sweep(&w, &op);
            problems.extend(p);
            stats.push(($name, d, n));
        }};
    }
    // vmalloc: the area is mapped, zeroed and holds data.
    run!(
        "vmalloc",
        |_w| None,
        |w, s: &mut Option<Result<VirtAddr, MmError>>| *s = Some(lock(w).vmalloc(2 * 4096)),
        |w, s| {
            let v = s.unwrap().map_err(|e| format!("vmalloc: {e}"))?;
            let m = Machine::new(w.hw, &w.mem, w.ctx);
            m.write_u32(v.as_u32() + 4096, 0x1234).map_err(|e| format!("{e:?}"))?;
            let r = m.read_u32(v.as_u32() + 4096).map_err(|e| format!("{e:?}"))?;
            let z = m.read_u32(v.as_u32() + 8).map_err(|e| format!("{e:?}"))?;
            if (r, z) != (0x1234, 0) {
                return Err(format!("vmalloc data {r:#x} / zero {z:#x}"));
            }
            lock(w).vfree(v).map_err(|e| format!("vfree: {e}"))
        }
    );
    run!(
        "vfree",
        |w| Some((lock(w).vmalloc(4096).unwrap(), Ok(()))),
        |w, s: &mut Option<(VirtAddr, Result<(), MmError>)>| {
            let (v, r) = s.as_mut().unwrap();
            *r = lock(w).vfree(*v);
        },
        |w, s| {
            let (v, r) = s.unwrap();
            r.map_err(|e| format!("vfree: {e}"))?;
            match Machine::new(w.hw, &w.mem, w.ctx).read_u32(v.as_u32()) {
                Err(_) => Ok(()),
                Ok(x) => Err(format!("read after vfree gave {x:#x}")),
            }
        }
    );
    run!(
        "dma_alloc_coherent",
        |_w| None,
        |w, s: &mut Option<Result<sh4_mm::consistent::DmaBuffer, MmError>>| *s = Some(lock(w).dma_alloc_coherent(4096)),
        |w, s| {
            let b = s.unwrap().map_err(|e| format!("dma_alloc_coherent: {e}"))?;
            let m = Machine::new(w.hw, &w.mem, w.ctx);
            m.write_u32(b.va.as_u32() + 12, 0x5A5A).map_err(|e| format!("{e:?}"))?;
            let phys = sh4_mm::PhysAccess::read_u32(&*w.mem, sh4_mm::PhysAddr::new(b.phys.as_u32() + 12).unwrap());
            if phys != 0x5A5A {
                return Err(format!("dma buffer reads {phys:#x}"));
            }
            lock(w).dma_free_coherent(b.va).map_err(|e| format!("dma_free_coherent: {e}"))
        }
    );
    run!(
        "dma_free_coherent",
        |w| Some((lock(w).dma_alloc_coherent(4096).unwrap().va, Ok(()))),
        |w, s: &mut Option<(VirtAddr, Result<(), MmError>)>| {
            let (v, r) = s.as_mut().unwrap();
            *r = lock(w).dma_free_coherent(*v);
        },
        |_w, s| s.unwrap().1.map_err(|e| format!("dma_free_coherent: {e}"))
    );
    run!("mm_create", |_w| None, |w, s: &mut Option<Result<MmId, MmError>>| *s = Some(lock(w).mm_create()), |w, s| {
        let p = s.unwrap().map_err(|e| format!("mm_create: {e}"))?;
        lock(w).mm_put(p, |_, _| {}).map_err(|e| format!("mm_put: {e}"))
    });
    run!(
        "context_switch",
        |w| {
            let p = lock(w).mm_create().unwrap();
            Some((p, TaskMm::boot(), TaskMm::user(p), Ok(())))
        },
        |w, s: &mut Option<(MmId, TaskMm, TaskMm, Result<(), MmError>)>| {
            let (_, a, b, r) = s.as_mut().unwrap();
            *r = lock(w).context_switch(a, b);
        },
        |w, s| {
            let (p, mut a, mut b, r) = s.unwrap();
            r.map_err(|e| format!("context_switch: {e}"))?;
            let mut g = lock(w);
            if g.active() != p {
                return Err("not switched".into());
            }
            g.context_switch(&mut b, &mut a).map_err(|e| format!("{e}"))?;
            g.switch_mm(INIT_MM).map_err(|e| format!("{e}"))?;
            g.mm_drop(p).map_err(|e| format!("mm_drop: {e}"))?; // boot's borrow
            g.mm_put(p, |_, _| {}).map_err(|e| format!("mm_put: {e}"))
        }
    );
    // The TLB-miss slow path: an mm created before the area lacks its
    // first-level entry, so the access goes through vmalloc_fault.
    run!(
        "tlb_miss_slow_path",
        |w| {
            let mut g = lock(w);
            let p = g.mm_create().unwrap();
            let v = g.vmalloc(4096).unwrap();
            let pa = g.translate(INIT_MM, v).unwrap().0;
            sh4_mm::PhysAccess::write_u32(&*w.mem, pa, 0x0FA1_u32);
            // SAFETY: p's first-level table, from the manager, in the model's RAM.
            let t = unsafe { sh4_mm::pgtable::PageTable::new(&*w.mem, g.pgd(p).unwrap()) };
            // SAFETY: p never ran: the TLB holds nothing of its table.
            unsafe { t.set_pgd_raw(v.pgd_index(), 0).unwrap().discard() };
            g.switch_mm(p).unwrap();
            Some((p, v, Err(MmError::Busy)))
        },
        |w, s: &mut Option<(MmId, VirtAddr, Result<u32, MmError>)>| {
            let (_, v, r) = s.as_mut().unwrap();
            *r = Machine::new(w.hw, &w.mem, w.ctx).read_u32(v.as_u32()).map_err(|_| MmError::NotMapped(*v));
        },
        |w, s| {
            let (p, v, r) = s.unwrap();
            let got = r.map_err(|e| format!("read through the slow path: {e}"))?;
            let mut g = lock(w);
            g.switch_mm(INIT_MM).map_err(|e| format!("{e}"))?;
            g.mm_put(p, |_, _| {}).map_err(|e| format!("{e}"))?;
            g.vfree(v).map_err(|e| format!("{e}"))?;
            if got != 0x0FA1 {
                return Err(format!("slow path read {got:#x}"));
            }
            Ok(())
        }
    );
    run!(
        "heap_alloc_free",
        |_w| None,
        |w, s: &mut Option<bool>| {
            let layout = Layout::from_size_align(200, 8).unwrap();
            // SAFETY: valid layout; freed right away.
            let p = unsafe { w.heap.alloc(layout) };
            let ok = !p.is_null();
            if ok {
                // SAFETY: 200 bytes from alloc.
                unsafe {
                    p.write_bytes(0x77, 200);
                    *s = Some(*p.add(199) == 0x77);
                    w.heap.dealloc(p, layout);
                }
            } else {
                *s = Some(false);
            }
        },
        |_w, s| if s == Some(true) { Ok(()) } else { Err("heap alloc in task context failed".into()) }
    );
    (problems, stats)
}

/// Lands an interrupt on each hardware operation of `op` (offset 0, 1, ...
/// until it lands after the operation). Returns the problems found, the
/// longest delay (in model operations) between where an interrupt was due
/// and where it was taken, and the number of placements.
fn sweep<K: Mask, S>(w: &World<K>, op: &Op<K, S>) -> (Vec<String>, u64, u32) {
    let mut problems = Vec::new();
    let base = w.balance();
    let mut max_delay = 0;
    let mut k = 0u64;
    loop {
        let mut state = (op.prep)(w);
        let irqs = *w.irqs.borrow();
        let due = w.hw.ops() + k;
        let landed = Rc::new(RefCell::new(0u64));
        let (l, h) = (landed.clone(), w.handler());
        w.hw.schedule_irq(due, move |hw| {
            *l.borrow_mut() = hw.ops();
            h(hw)
        });
        (op.op)(w, &mut state);
        let late = w.hw.irq_pending();
        w.hw.set_imask(0); // one more unmasked operation delivers a late one
        let n = *w.irqs.borrow() - irqs;
        if n != 1 {
            problems.push(format!("{}: k={k}: {n} interrupts", op.name));
        }
        if w.hw.imask() != 0 {
            problems.push(format!("{}: k={k}: IMASK left at {}", op.name, w.hw.imask()));
        }
        max_delay = max_delay.max(landed.borrow().saturating_sub(due));
        for p in w.problems.borrow_mut().drain(..) {
            problems.push(format!("{}: k={k}: {p}", op.name));
        }
        if let Err(e) = (op.check)(w, state) {
            problems.push(format!("{}: k={k}: {e}", op.name));
        }
        if problems.len() > 3 || late || k > 5000 {
            break;
        }
        k += 1;
    }
    w.mm.lock().unwrap().run_deferred();
    let after = w.balance();
    if after != base {
        problems.push(format!(
            "{}: not balanced: {base:?} -> {after:?} (frames, memtypes, areas, dma, deferred, heap)",
            op.name
        ));
    }
    if w.hw.multi_hits() + w.hw.latent_duplicates() != 0 {
        problems.push(format!("{}: duplicate TLB entries", op.name));
    }
    (problems, max_delay, k as u32)
}

#[test]
fn interrupt_at_every_operation_with_the_irq_safe_lock() {
    let (problems, stats) = run_all::<&'static Sh4Model>();
    for (name, delay, n) in &stats {
        println!("{name}: {n} placements, longest masked stretch {delay} model operations");
        assert!(*n >= 2, "{name}: the sweep must place interrupts before and after");
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_lock_that_does_not_mask_would_deadlock() {
    let (problems, _) = run_all::<NoMask>();
    let hangs = problems.iter().filter(|p| p.contains("deadlocks here")).count();
    assert!(hangs > 0, "the broken variant must be caught: {problems:#?}");
    // (mm_create does no hardware operation while it holds the lock, so the
    // model has nowhere inside it to land an interrupt.)
    for op in ["vmalloc", "dma_alloc_coherent", "vfree", "dma_free_coherent", "context_switch"] {
        assert!(
            problems.iter().any(|p| p.starts_with(op) && p.contains("deadlocks here")),
            "{op}: an interrupt inside it must find the plain lock held: {problems:#?}"
        );
    }
}

#[test]
fn a_full_queue_frees_at_once() {
    let w = World::<&'static Sh4Model>::new();
    let n = sh4_mm::irqlock::DEFERRED_MAX + 2;
    let bufs: Vec<VirtAddr> = (0..n).map(|_| lock(&w).dma_alloc_coherent(4096).unwrap().va).collect();
    let mm = w.mm.clone();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    w.hw.schedule_irq(w.hw.ops(), move |_hw| {
        let mut g = mm.lock().unwrap();
        for b in bufs {
            let r = g.dma_free_coherent(b);
            s.borrow_mut().push((r, g.deferred_frees(), g.dma_buffers()));
        }
    });
    w.hw.set_imask(0);
    let r = seen.borrow().clone();
    let max = sh4_mm::irqlock::DEFERRED_MAX;
    assert_eq!(r.len(), n);
    assert!(r.iter().all(|(res, _, _)| res.is_ok()), "{r:?}");
    assert_eq!(r[max - 1].1, max, "the first {max} are queued");
    assert_eq!((r[max].1, r[max].2), (max, n - 1), "then freed at once");
    assert_eq!((r[max + 1].1, r[max + 1].2), (max, n - 2));
    assert_eq!(lock(&w).run_deferred(), max);
    assert_eq!(lock(&w).dma_buffers(), 0, "all freed");
}

#[test]
fn task_context_ops_refused_in_interrupt_and_frees_queued() {
    let w = World::<&'static Sh4Model>::new();
    let (v, b, p) = {
        let mut g = lock(&w);
        (g.vmalloc(4096).unwrap(), g.dma_alloc_coherent(4096).unwrap(), g.mm_create().unwrap())
    };
    let base = w.balance();
    let mm = w.mm.clone();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    w.hw.schedule_irq(w.hw.ops(), move |_hw| {
        let mut g = mm.lock().unwrap();
        let mut r = s.borrow_mut();
        r.push(format!(
            "{:?}",
            g.ioremap(sh4_mm::PhysAddr::new(0x1000_0000).unwrap(), 4096, sh4_mm::CacheAttr::Uncached)
        ));
        r.push(format!("{:?}", g.mm_put(p, |_, _| {})));
        r.push(format!("{:?}", g.switch_mm(p)));
        r.push(format!("{:?}", g.vfree(v)));
        r.push(format!("{:?}", g.vfree(v)));
        r.push(format!("{:?}", g.vfree(VirtAddr::new(0xC300_0000))));
        r.push(format!("{:?}", g.dma_free_coherent(b.va)));
        r.push(format!("{}", g.deferred_frees()));
    });
    w.hw.set_imask(0);
    let r = seen.borrow().clone();
    assert_eq!(
        r,
        [
            "Err(InInterrupt)",
            "Err(InInterrupt)",
            "Err(InInterrupt)",
            "Ok(())",
            format!("Err(BadHandle(Area({v:?})))").as_str(),
            "Err(BadHandle(Area(VirtAddr(0xc3000000))))",
            "Ok(())",
            "2"
        ],
    );
    let queued = w.balance();
    assert_eq!((&queued[..4], queued[4]), (&base[..4], 2), "queued, nothing freed yet");
    // The next task-context call does the frees.
    lock(&w).mm_put(p, |_, _| {}).unwrap();
    let after = w.balance();
    assert_eq!((after[2], after[3], after[4]), (base[2] - 1, base[3] - 1, 0));
    assert_eq!(lock(&w).vfree(v), Err(MmError::BadHandle(Handle::Area(v))), "freed once, by the queue");
}
