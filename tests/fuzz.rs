//! Randomized operation sequences against a shadow model (issue 9).
//!
//! Each "world" is a fresh model machine (MMU + operand cache + RAM) with a
//! memory manager. A deterministic PRNG drives the whole public API: address
//! spaces (create, share, exit while borrowed, kill), context switches between
//! user tasks and kernel threads, vmalloc/vfree, ioremap/iounmap with random
//! attributes over shared device frames, dma_alloc/free_coherent, user
//! map/unmap/protect (ranges straddling 4 MiB, more than 32 pages),
//! fixmap and io-mapping slots, copy/clear_user_page, loads and stores through
//! the CPU model in user and privileged mode, bad input, frame-allocation
//! failures, and interrupts landed inside operations whose handlers read P3.
//!
//! The shadow keeps what must be mapped where, what every frame must hold,
//! every reference count and every frame and memtype record. After every
//! operation: the result (value or exact error) is what the shadow predicts;
//! counts, frames, memtypes, areas and tasks match; a failed call changed
//! nothing; no multiple hit, latent duplicate, cache-op fault or stale
//! translation happened; every frame a mapping gave back has no cache line
//! left. Every few operations every shadow mapping is translated and its data
//! read back.
//!
//! `cargo test --test fuzz` runs the CI slice. The long run:
//! `SH4MM_FUZZ_OPS=10000000 cargo test --release --test fuzz -- --nocapture`
//! (`SH4MM_FUZZ_SEED` picks the seed). The summary line reports the ops run
//! and the invariant checks made.
//!
//! `mutants_are_caught` runs short worlds with each code mutation the crate
//! has (`sh4_mm::mutation`) and over hardware that loses each kind of
//! operation the manager relies on (`sh4_mm::model::Mutant`), and requires
//! every one to be detected.

mod common;
use common::*;
use sh4_mm::fault::FaultKind;
use sh4_mm::hw::CacheOp;
use sh4_mm::layout;
use sh4_mm::model::{FrameArena, Lost, Machine, MachineError, Mutant, PhysMemory, Sh4Model};
use sh4_mm::mutation::{self, Mutation};
use sh4_mm::pgtable::KERNEL_PGDS;
use sh4_mm::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

/// Frames at the top of RAM that the frame allocator never hands out.
const DEVICE_FRAMES: u32 = 16;
const WORLD_OPS: u64 = 10_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len() as u64) as usize])
        }
    }
}

/// What a frame must hold: a pattern (0 = zeroed) overridden by writes.
#[derive(Clone, Debug, Default)]
struct Content {
    seed: u32,
    over: HashMap<u32, u32>,
}
impl Content {
    fn pattern(seed: u32) -> Self {
        Content { seed, over: HashMap::new() }
    }
    fn word(&self, off: u32) -> u32 {
        self.over.get(&off).copied().unwrap_or(if self.seed == 0 {
            0
        } else {
            self.seed.wrapping_mul(0x9E37_79B9) ^ off
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct UPage {
    frame: Frame,
    prot: Prot,
    attr: CacheAttr,
}

#[derive(Debug)]
struct ShMm {
    users: u32,
    count: u32,
    pages: BTreeMap<u32, UPage>,
    regions: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
enum Vm {
    Vmalloc(Vec<Frame>),
    Io { first: Frame, attr: CacheAttr },
}

struct IoMap {
    io: sh4_mm::memtype::IoMapping,
    first: Frame,
    pages: u32,
    attr: CacheAttr,
    mapped: Vec<(u32, u32)>, // (va, index)
}

/// Counters for the summary.
#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    ops: u64,
    checks: u64,
    accesses: u64,
    expected_errors: u64,
    injected_failures: u64,
    interrupts: u64,
    worlds: u64,
    rollovers: u64,
    /// Reads of pages an address space lost while it was not running.
    inactive_probes: u64,
}

type Res = Result<(), String>;

/// The hardware a world's manager drives: the model through a [`Mutant`]
/// (faithful for the real runs, losing one kind of operation for the
/// mutants), or the bare model (to show the faithful wrapper changes
/// nothing).
enum WorldHw<'s> {
    Bare(&'s Sh4Model),
    Wrapped(Mutant<&'s Sh4Model>),
}

impl WorldHw<'_> {
    fn lost(&self) -> Lost {
        match self {
            WorldHw::Bare(_) => Lost::empty(),
            WorldHw::Wrapped(m) => m.lost(),
        }
    }
}

macro_rules! fwd {
    ($s:expr, $m:ident($($a:expr),*)) => {
        match $s {
            WorldHw::Bare(h) => h.$m($($a),*),
            WorldHw::Wrapped(h) => h.$m($($a),*),
        }
    };
}

// SAFETY: forwards every operation unchanged to the bare model or to the
// Mutant (test-only hardware: see its own SAFETY comment).
unsafe impl MmuHw for WorldHw<'_> {
    fn pteh(&self) -> u32 {
        fwd!(self, pteh())
    }
    fn set_pteh(&self, value: u32) {
        fwd!(self, set_pteh(value))
    }
    fn set_ptel(&self, value: u32) {
        fwd!(self, set_ptel(value))
    }
    fn ttb(&self) -> u32 {
        fwd!(self, ttb())
    }
    fn set_ttb(&self, value: u32) {
        fwd!(self, set_ttb(value))
    }
    fn mmucr(&self) -> u32 {
        fwd!(self, mmucr())
    }
    fn set_mmucr(&self, value: u32) {
        fwd!(self, set_mmucr(value))
    }
    fn ldtlb(&self) {
        fwd!(self, ldtlb())
    }
    fn utlb_addr_write(&self, offset: u32, value: u32) {
        fwd!(self, utlb_addr_write(offset, value))
    }
    fn utlb_data_write(&self, entry: u32, value: u32) {
        fwd!(self, utlb_data_write(entry, value))
    }
    fn cache_op(&self, op: CacheOp, va: u32, len: u32) {
        fwd!(self, cache_op(op, va, len))
    }
    unsafe fn copy_page(&self, dst: u32, src: u32) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { fwd!(self, copy_page(dst, src)) }
    }
    unsafe fn clear_page(&self, dst: u32) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { fwd!(self, clear_page(dst)) }
    }
    fn irq_save(&self) -> u32 {
        fwd!(self, irq_save())
    }
    fn irq_restore(&self, saved: u32) {
        fwd!(self, irq_restore(saved))
    }
    fn in_interrupt(&self) -> bool {
        fwd!(self, in_interrupt())
    }
}

struct World<'s> {
    sys: &'s Sys,
    mm: MemoryManager<WorldHw<'s>, Rc<PhysMemory>, FrameArena>,
    rng: Rng,
    tasks: Vec<TaskMm>,
    expect: Vec<TaskMm>,
    zombie: Vec<bool>,
    cur: usize,
    mms: BTreeMap<u64, ShMm>,
    dead: Vec<MmId>,
    vm: BTreeMap<u32, (u32, Vm)>,
    dma: BTreeMap<u32, (Frame, u32)>,
    fix: BTreeMap<u32, Option<(Frame, CacheAttr)>>,
    ios: Vec<IoMap>,
    /// Device frames: reservations by pfn.
    resv: HashMap<u32, Vec<CacheAttr>>,
    content: HashMap<u32, Content>,
    owned: u32,
    kregions: BTreeSet<usize>,
    memtypes: usize,
    freed_kernel: Vec<u32>,
    /// Recently unmapped user pages: (mm, va).
    freed_user: Vec<(MmId, u32)>,
    stats: Stats,
}

fn key(id: MmId) -> u64 {
    id.to_raw()
}

fn fail<T>(msg: String) -> Result<T, String> {
    Err(msg)
}

macro_rules! ensure {
    ($w:expr, $c:expr, $($fmt:tt)*) => {{
        $w.stats.checks += 1;
        if !$c {
            return fail(format!($($fmt)*));
        }
    }};
}

impl<'s> World<'s> {
    /// A world whose manager (and TLB-exception handler) drive hardware that
    /// loses the operations in `lost` (nothing, for the real runs); `None`:
    /// the bare model, without the wrapper.
    fn new(sys: &'s Sys, seed: u64, lost: Option<Lost>) -> Self {
        sys.model.attach_memory(sys.mem.clone(), true);
        let arena = FrameArena::new(RAM_BASE, RAM_FRAMES - DEVICE_FRAMES - 8);
        let hw = match lost {
            Some(lost) => WorldHw::Wrapped(Mutant::new(&sys.model, lost)),
            None => WorldHw::Bare(&sys.model),
        };
        let mm = MemoryManager::new(hw, sys.mem.clone(), arena).expect("manager");
        mm.enable_mmu();
        // Cache-block instructions take TLB misses through the kernel's handler.
        sys.model.attach_kernel(mm.fault_context());
        sys.model.set_imask(0);
        let mut w = World {
            sys,
            mm,
            rng: Rng(seed | 1),
            tasks: vec![TaskMm::boot()],
            expect: vec![TaskMm::boot()],
            zombie: vec![false],
            cur: 0,
            mms: BTreeMap::new(),
            dead: vec![],
            vm: BTreeMap::new(),
            dma: BTreeMap::new(),
            fix: BTreeMap::new(),
            ios: vec![],
            resv: HashMap::new(),
            content: HashMap::new(),
            owned: 0,
            kregions: [(layout::FIXMAP_START >> 22) as usize].into_iter().collect(),
            memtypes: 0,
            freed_kernel: vec![],
            freed_user: vec![],
            stats: Stats::default(),
        };
        w.mms.insert(key(INIT_MM), ShMm { users: 1, count: 1, pages: BTreeMap::new(), regions: BTreeSet::new() });
        for i in 0..DEVICE_FRAMES {
            let f = device(i);
            fill(sys, f, 0xD000 + i);
            w.content.insert(f.pfn(), Content::pattern(0xD000 + i));
        }
        w
    }

    fn machine(&self) -> Machine<'s> {
        Machine::new(&self.sys.model, &self.sys.mem, self.mm.fault_context()).losing(self.mm.hw().lost())
    }

    fn expected_at(&self, frame: Frame, off: u32) -> u32 {
        self.content.get(&frame.pfn()).map_or(0, |c| c.word(off))
    }

    // ---------------------------------------------------------------- checks

    fn check_counts(&mut self) -> Res {
        let s = &self.sys.model;
        let (mh, ld, cf, bs) = (s.multi_hits(), s.latent_duplicates(), s.cache_op_faults(), s.bad_page_sizes());
        ensure!(
            self,
            mh + ld + cf + bs == 0,
            "multi-hits {mh}, latent duplicates {ld}, cache-op faults {cf}, bad sizes {bs}"
        );
        let mut frames = self.owned + 1; // swapper
        frames += self.kregions.len() as u32;
        for (k, m) in &self.mms {
            if *k != key(INIT_MM) {
                frames += 1 + m.regions.len() as u32;
            }
        }
        for (_, v) in self.vm.values() {
            if let Vm::Vmalloc(f) = v {
                frames += f.len() as u32;
            }
        }
        frames += self.dma.values().map(|d| d.1).sum::<u32>();
        let live = self.mm.allocator().live();
        ensure!(self, live == frames, "frames: allocator has {live} live, shadow expects {frames}");
        ensure!(self, self.mm.allocator().bad_frees == 0, "bad frees");
        let mt = self.mm.memtypes().len();
        ensure!(self, mt == self.memtypes, "memtype records {mt}, shadow {}", self.memtypes);
        let kp = self.mm.kernel_pte_pages();
        ensure!(self, kp == self.kregions.len(), "kernel PTE pages {kp}, shadow {}", self.kregions.len());
        let (va, db) = (self.mm.vm_areas(), self.mm.dma_buffers());
        ensure!(
            self,
            va == self.vm.len() && db == self.dma.len(),
            "areas {va}/{db}, shadow {}/{}",
            self.vm.len(),
            self.dma.len()
        );
        ensure!(self, self.mm.live_mms() == self.mms.len(), "live mms {} vs {}", self.mm.live_mms(), self.mms.len());
        for (&k, m) in &self.mms {
            let id = MmId::from_raw(k);
            let rc = self.mm.refcounts(id);
            self.stats.checks += 1;
            if rc != Ok((m.users, m.count)) {
                return fail(format!("refcounts of {id:?}: {rc:?}, shadow ({}, {})", m.users, m.count));
            }
            if k != key(INIT_MM) {
                let up = self.mm.user_pte_pages(id);
                if up != Ok(m.regions.len()) {
                    return fail(format!("user PTE pages of {id:?}: {up:?}, shadow {}", m.regions.len()));
                }
            }
        }
        for &d in &self.dead {
            ensure!(
                self,
                self.mm.refcounts(d) == Err(MmError::BadHandle(Handle::Mm(Some(d)))),
                "freed mm {d:?} still answers"
            );
        }
        ensure!(self, self.tasks == self.expect, "tasks {:?} vs shadow {:?}", self.tasks, self.expect);
        let active = self.expect[self.cur].active_mm;
        ensure!(self, Some(self.mm.active()) == active, "active {:?}, shadow {:?}", self.mm.active(), active);
        Ok(())
    }

    /// Every shadow mapping translates as it should, and data reads back.
    fn check_all(&mut self) -> Res {
        let m = self.machine();
        let active = self.mm.active();
        let mut probes: Vec<(u32, Frame)> = vec![];
        for (&k, sm) in &self.mms {
            let id = MmId::from_raw(k);
            for (&vpn, p) in &sm.pages {
                let r = self.mm.translate(id, VirtAddr::new(vpn << 12));
                if r.map(|(pa, _)| pa.as_u32()) != Ok(p.frame.start().as_u32()) {
                    return fail(format!("{id:?} page {:#x}: {r:?}, shadow {:?}", vpn << 12, p.frame));
                }
                if id == active {
                    probes.push((vpn << 12, p.frame));
                }
            }
        }
        for (&va, (pages, v)) in &self.vm {
            for i in 0..*pages {
                let f = match v {
                    Vm::Vmalloc(fs) => fs[i as usize],
                    Vm::Io { first, .. } => first.offset(i).unwrap(),
                };
                probes.push((va + i * 4096, f));
            }
        }
        for (&va, &(first, pages)) in &self.dma {
            for i in 0..pages {
                probes.push((va + i * 4096, first.offset(i).unwrap()));
            }
        }
        for (&slot, e) in &self.fix {
            if let Some((f, _)) = e {
                probes.push((layout::fix_to_virt(slot).unwrap().as_u32(), *f));
            }
        }
        for io in &self.ios {
            for &(va, idx) in &io.mapped {
                probes.push((va, io.first.offset(idx).unwrap()));
            }
        }
        for (va, f) in probes {
            let off = (self.rng.below(1024) * 4) as u32;
            let want = self.expected_at(f, off);
            let got = m.read_u32(va + off);
            self.stats.accesses += 1;
            ensure!(self, got == Ok(want), "read {:#x} (frame {f:?}+{off:#x}): {got:?}, shadow {want:#x}", va + off);
        }
        for &va in &self.freed_kernel {
            if self.kernel_mapped(va) {
                continue;
            }
            let got = m.read_u32(va);
            ensure!(
                self,
                matches!(got, Err(MachineError::Fault(i)) if i.kind == FaultKind::NotMapped),
                "freed {va:#x}: {got:?}"
            );
        }
        Ok(())
    }

    fn kernel_mapped(&self, va: u32) -> bool {
        let in_area = |m: &BTreeMap<u32, u32>| m.range(..=va).next_back().is_some_and(|(&s, &n)| va < s + n * 4096);
        let vm: BTreeMap<u32, u32> = self.vm.iter().map(|(&k, v)| (k, v.0)).collect();
        let dma: BTreeMap<u32, u32> = self.dma.iter().map(|(&k, v)| (k, v.1)).collect();
        in_area(&vm) || in_area(&dma)
    }

    fn check_no_lines(&mut self, frames: &[Frame], what: &str) -> Res {
        for f in frames {
            let n = self.sys.model.with_cache(|c| c.lines_of(f.start().as_u32())).unwrap_or(0);
            ensure!(self, n == 0, "{what}: {n} cache line(s) of {f:?} outlived the mapping");
        }
        Ok(())
    }

    // ---------------------------------------------------------------- helpers

    fn own_frames(&mut self, n: u32, seed: u32) -> Option<Frame> {
        let f = self.mm.allocator_mut().alloc(n)?;
        self.owned += n;
        for i in 0..n {
            let fr = f.offset(i).unwrap();
            fill(self.sys, fr, seed.wrapping_add(i));
            self.content.insert(fr.pfn(), Content::pattern(seed.wrapping_add(i)));
        }
        Some(f)
    }

    fn release_frame(&mut self, f: Frame) {
        self.mm.allocator_mut().free(f, 1);
        self.owned -= 1;
        self.content.remove(&f.pfn());
    }

    fn mm_ids(&self, with_init: bool) -> Vec<MmId> {
        self.mms.keys().map(|&k| MmId::from_raw(k)).filter(|&id| with_init || id != INIT_MM).collect()
    }

    /// Applies the shadow of `mm_put` (users - 1; at 0 teardown and the
    /// users' count reference goes).
    fn shadow_put(&mut self, id: MmId, returned: &[(Page, Pte)]) -> Res {
        let sm = self.mms.get_mut(&key(id)).unwrap();
        sm.users -= 1;
        if sm.users > 0 {
            ensure!(self, returned.is_empty(), "mm_put with users left returned pages");
            return Ok(());
        }
        let pages = std::mem::take(&mut sm.pages);
        sm.regions.clear();
        let got: BTreeSet<u32> = returned.iter().map(|(p, _)| p.start().as_u32() >> 12).collect();
        let want: BTreeSet<u32> = pages.keys().copied().collect();
        ensure!(self, got == want, "teardown returned {} pages, shadow {}", got.len(), want.len());
        let frames: Vec<Frame> = pages.values().map(|p| p.frame).collect();
        self.check_no_lines(&frames, "mm teardown")?;
        self.memtypes -= frames.len();
        for f in frames {
            self.release_frame(f);
        }
        self.shadow_drop(id);
        Ok(())
    }

    fn shadow_drop(&mut self, id: MmId) {
        if id == INIT_MM {
            return; // static: its references are not counted
        }
        let sm = self.mms.get_mut(&key(id)).unwrap();
        sm.count -= 1;
        if sm.count == 0 && id != INIT_MM {
            self.mms.remove(&key(id));
            self.dead.push(id);
        }
    }

    /// A live kernel location (va, expected word) outside `exclude`.
    fn irq_target(&mut self, exclude: Option<u32>) -> Option<(u32, u32)> {
        let mut c: Vec<(u32, Frame)> = vec![];
        for (&va, (_, v)) in &self.vm {
            if Some(va) == exclude {
                continue;
            }
            let f = match v {
                Vm::Vmalloc(fs) => fs[0],
                Vm::Io { first, .. } => *first,
            };
            c.push((va, f));
        }
        for (&va, &(f, _)) in &self.dma {
            if Some(va) != exclude {
                c.push((va, f));
            }
        }
        let (va, f) = self.rng.pick(&c)?;
        let off = (self.rng.below(1024) * 4) as u32;
        Some((va + off, self.expected_at(f, off)))
    }

    // ---------------------------------------------------------------- ops

    fn step(&mut self) -> Res {
        self.stats.ops += 1;
        let before = (
            self.mm.allocator().live(),
            self.mm.memtypes().len(),
            self.mm.vm_areas(),
            self.mm.dma_buffers(),
            self.mm.live_mms(),
        );
        // Sometimes the Nth frame allocation of this op fails.
        let inject = self.rng.chance(12);
        if inject {
            let n = 1 + self.rng.below(3) as u32;
            self.mm.allocator_mut().fail_nth(Some(n));
        }
        let op = self.rng.below(100);
        let r = if self.rng.chance(400) {
            self.op_asid_burst()
        } else if self.rng.chance(40) {
            self.op_change_while_asleep()
        } else {
            self.op(op)
        };
        self.mm.allocator_mut().fail_nth(None);
        match r {
            Ok(Outcome::Done) => {}
            Ok(Outcome::Refused(e)) => {
                self.stats.expected_errors += 1;
                if e == MmError::OutOfFrames {
                    self.stats.injected_failures += 1;
                }
                let after = (
                    self.mm.allocator().live(),
                    self.mm.memtypes().len(),
                    self.mm.vm_areas(),
                    self.mm.dma_buffers(),
                    self.mm.live_mms(),
                );
                ensure!(
                    self,
                    before == after,
                    "op {op} failed with {e:?} but changed (frames, memtypes, areas, dma, mms) {before:?} -> {after:?}"
                );
            }
            Err(msg) => return fail(format!("op {op}: {msg}")),
        }
        self.check_counts()?;
        if self.stats.ops.is_multiple_of(16) {
            self.check_all()?;
        }
        Ok(())
    }

    /// An operation whose failure (with `OutOfFrames` allowed when a failure
    /// was injected) the shadow checks.
    fn op(&mut self, op: u64) -> Result<Outcome, String> {
        match op {
            0..=2 => self.op_mm_create(),
            3..=4 => self.op_short_lived(),
            5 => self.op_clone(),
            6..=15 => self.op_switch(),
            16..=17 => self.op_exit(),
            18 => self.op_kill(),
            19..=26 => self.op_map_user(),
            27..=30 => self.op_unmap_user(),
            31..=32 => self.op_protect_user(),
            33..=38 => self.op_vmalloc(),
            39..=42 => self.op_vfree(),
            43..=44 => self.op_ioremap(),
            45..=46 => self.op_iounmap(),
            47..=48 => self.op_dma_alloc(),
            49..=50 => self.op_dma_free(),
            51..=52 => self.op_fixmap(),
            53..=54 => self.op_io_mapping(),
            55..=57 => self.op_copy_clear(),
            58..=89 => self.op_access(),
            90..=94 => self.op_bad_input(),
            _ => self.op_kthread(),
        }
    }

    fn result<T: std::fmt::Debug>(&mut self, r: MmResult<T>, expect_ok: bool, what: &str) -> Result<Option<T>, String> {
        match r {
            Ok(v) if expect_ok => Ok(Some(v)),
            Err(MmError::OutOfFrames) if expect_ok => Ok(None),
            other => fail(format!("{what}: {other:?} (shadow expected {})", if expect_ok { "Ok" } else { "an error" })),
        }
    }

    fn op_mm_create(&mut self) -> Result<Outcome, String> {
        if self.mms.len() > 12 {
            return Ok(Outcome::Done);
        }
        match self.mm.mm_create() {
            Ok(id) => {
                // The new table starts with swapper_pg_dir's kernel part (what
                // vmalloc_fault would otherwise have to repair, invisibly).
                let pgd = self.mm.pgd(id).map_err(|e| format!("pgd of a new mm: {e:?}"))?;
                let (new, swapper) = (table(&self.sys.mem, pgd), table(&self.sys.mem, self.mm.swapper_pg_dir()));
                let differ = KERNEL_PGDS.filter(|&i| new.pgd_raw(i) != swapper.pgd_raw(i)).count();
                ensure!(self, differ == 0, "mm_create: {differ} kernel first-level entries are not swapper_pg_dir's");
                self.mms.insert(key(id), ShMm { users: 1, count: 1, pages: BTreeMap::new(), regions: BTreeSet::new() });
                self.tasks.push(TaskMm::user(id));
                self.expect.push(TaskMm::user(id));
                self.zombie.push(false);
                Ok(Outcome::Done)
            }
            Err(MmError::OutOfFrames) => Ok(Outcome::Refused(MmError::OutOfFrames)),
            Err(e) => fail(format!("mm_create: {e:?}")),
        }
    }

    fn op_kthread(&mut self) -> Result<Outcome, String> {
        if self.tasks.len() < 16 {
            self.tasks.push(TaskMm::kernel_thread());
            self.expect.push(TaskMm::kernel_thread());
            self.zombie.push(false);
        }
        Ok(Outcome::Done)
    }

    fn op_clone(&mut self) -> Result<Outcome, String> {
        let ids = self.mm_ids(false);
        let Some(id) = self.rng.pick(&ids) else { return Ok(Outcome::Done) };
        let users = self.mms[&key(id)].users;
        let r = self.mm.mm_get(id);
        if users == 0 {
            ensure!(self, r == Err(MmError::Exited), "mm_get of an exited mm: {r:?}");
            return Ok(Outcome::Refused(MmError::Exited));
        }
        ensure!(self, r == Ok(()), "mm_get: {r:?}");
        self.mms.get_mut(&key(id)).unwrap().users += 1;
        self.tasks.push(TaskMm::user(id));
        self.expect.push(TaskMm::user(id));
        self.zombie.push(false);
        Ok(Outcome::Done)
    }

    fn op_switch(&mut self) -> Result<Outcome, String> {
        let cands: Vec<usize> = (0..self.tasks.len()).filter(|&i| i != self.cur && !self.zombie[i]).collect();
        let Some(next) = self.rng.pick(&cands) else { return Ok(Outcome::Done) };
        self.switch_to(next)
    }

    /// A short-lived process: created, switched to (it takes an ASID), and
    /// exited; it leaves at the next switch. This is what drives the ASID
    /// allocator through its rollovers.
    fn op_short_lived(&mut self) -> Result<Outcome, String> {
        let n = self.tasks.len();
        match self.op_mm_create()? {
            Outcome::Done if self.tasks.len() > n => {}
            other => return Ok(other),
        }
        self.switch_to(n)?;
        // Mostly no access: the TLB keeps the entries of the long-lived
        // address spaces while the ASIDs run out.
        if self.rng.chance(16) {
            self.op_access()?;
        }
        self.op_exit()
    }

    /// Runs short-lived processes until the ASID space rolls over and one of
    /// them is given the ASID the current process had; that one then reads
    /// an address the current process had in the TLB and must fault: an entry
    /// of the old generation must not translate for it.
    fn op_asid_burst(&mut self) -> Result<Outcome, String> {
        let Some(a) = self.expect[self.cur].mm else { return Ok(Outcome::Done) };
        let Some((&vpn, _)) = self.mms[&key(a)].pages.iter().find(|(_, p)| p.prot.user()) else {
            return Ok(Outcome::Done);
        };
        let va = vpn << 12;
        let r = self.machine().user().read_u32(va);
        ensure!(self, r.is_ok(), "user read of its own page: {r:?}");
        let asid = self.sys.model.pteh() & 0xFF;
        let rollovers = self.mm.asids().rollovers();
        for _ in 0..600 {
            let n = self.tasks.len();
            match self.op_mm_create()? {
                Outcome::Done if self.tasks.len() > n => {}
                _ => return Ok(Outcome::Done),
            }
            self.switch_to(n)?;
            let reused = self.mm.asids().rollovers() > rollovers && self.sys.model.pteh() & 0xFF == asid;
            if reused {
                let r = self.machine().user().read_u32(va);
                ensure!(
                    self,
                    matches!(r, Err(MachineError::Fault(i)) if i.kind == FaultKind::NotMapped),
                    "a process with a reused ASID read {va:#x}: {r:?}"
                );
            }
            self.op_exit()?;
            if reused {
                break;
            }
        }
        Ok(Outcome::Done)
    }

    /// The current process touches one of its pages (the TLB holds it under
    /// its ASID); another process runs; the first one's page is unmapped or
    /// write-protected meanwhile; the first one runs again and must see the
    /// change (the flush had to reach an entry of an ASID not in PTEH).
    fn op_change_while_asleep(&mut self) -> Result<Outcome, String> {
        let a_task = self.cur;
        let Some(a) = self.expect[a_task].mm else { return Ok(Outcome::Done) };
        let Some((&vpn, &p)) = self.mms[&key(a)].pages.iter().find(|(_, p)| p.prot == Prot::UserRw) else {
            return Ok(Outcome::Done);
        };
        let va = vpn << 12;
        let r = self.machine().user().write_u32(va, 0x51EE9);
        ensure!(self, r == Ok(()), "user write of its own page: {r:?}");
        self.content.entry(p.frame.pfn()).or_default().over.insert(0, 0x51EE9);
        let others: Vec<usize> =
            (0..self.tasks.len()).filter(|&i| !self.zombie[i] && self.expect[i].mm.is_some_and(|m| m != a)).collect();
        let Some(b) = self.rng.pick(&others) else { return Ok(Outcome::Done) };
        self.switch_to(b)?;
        // switch_to removes only a zombie predecessor; A's task is none.
        let pg = Page::containing(VirtAddr::new(va));
        let unmap = self.rng.chance(2);
        if unmap {
            let mut returned = vec![];
            let r = self.mm.unmap_user(a, pg, 1, |_, pte| returned.push(pte.frame()));
            ensure!(self, r == Ok(1) && returned == vec![p.frame], "unmap_user: {r:?}");
            self.mms.get_mut(&key(a)).unwrap().pages.remove(&vpn);
            self.check_no_lines(&returned, "unmap_user of a sleeping mm")?;
            self.memtypes -= 1;
            self.release_frame(p.frame);
            self.freed_user.push((a, va));
        } else {
            let r = self.mm.protect_user(a, pg, 1, Prot::UserRead);
            ensure!(self, r == Ok(1), "protect_user: {r:?}");
            self.mms.get_mut(&key(a)).unwrap().pages.get_mut(&vpn).unwrap().prot = Prot::UserRead;
        }
        if self.tasks[a_task].mm != Some(a) {
            return Ok(Outcome::Done);
        }
        self.switch_to(a_task)?;
        if !unmap {
            let r = self.machine().user().write_u32(va, 1);
            ensure!(
                self,
                matches!(r, Err(MachineError::Fault(i)) if i.kind == FaultKind::Protection),
                "write to a page write-protected while its mm slept: {r:?}"
            );
        }
        Ok(Outcome::Done)
    }

    fn switch_to(&mut self, next: usize) -> Result<Outcome, String> {
        let prev = self.cur;
        // Shadow of the switch.
        let prev_active = self.expect[prev].active_mm.unwrap();
        match self.expect[next].mm {
            None => {
                if prev_active != INIT_MM {
                    self.mms.get_mut(&key(prev_active)).unwrap().count += 1;
                }
                self.expect[next].active_mm = Some(prev_active);
            }
            Some(m) => self.expect[next].active_mm = Some(m),
        }
        self.expect[prev].active_mm = None;
        if self.expect[prev].mm.is_none() {
            self.shadow_drop(prev_active);
        }
        let (a, b) = if prev < next {
            let (l, r) = self.tasks.split_at_mut(next);
            (&mut l[prev], &mut r[0])
        } else {
            let (l, r) = self.tasks.split_at_mut(prev);
            (&mut r[0], &mut l[next])
        };
        let r = self.mm.context_switch(a, b);
        ensure!(self, r == Ok(()), "context_switch {prev} -> {next}: {r:?}");
        self.cur = next;
        // Pages this address space lost while it was not running must fault
        // now (an entry left in the TLB under its ASID would still translate).
        if let Some(m) = self.expect[next].mm {
            let gone: Vec<u32> = self
                .freed_user
                .iter()
                .filter(|&&(id, va)| id == m && !self.mms[&key(m)].pages.contains_key(&(va >> 12)))
                .map(|&(_, va)| va)
                .collect();
            for va in gone {
                self.stats.inactive_probes += 1;
                let r = self.machine().user().read_u32(va);
                ensure!(
                    self,
                    matches!(r, Err(MachineError::Fault(i)) if i.kind == FaultKind::NotMapped),
                    "{m:?} read {va:#x}, unmapped while it was not running: {r:?}"
                );
            }
        }
        if self.zombie[prev] {
            self.tasks.remove(prev);
            self.expect.remove(prev);
            self.zombie.remove(prev);
            if self.cur > prev {
                self.cur -= 1;
            }
        }
        Ok(Outcome::Done)
    }

    fn op_exit(&mut self) -> Result<Outcome, String> {
        let Some(m) = self.expect[self.cur].mm else { return Ok(Outcome::Done) };
        let mut returned = vec![];
        let mut t = std::mem::replace(&mut self.tasks[self.cur], TaskMm::kernel_thread());
        let r = self.mm.exit_mm(&mut t, |p, pte| returned.push((p, pte)));
        self.tasks[self.cur] = t;
        ensure!(self, r == Ok(()), "exit_mm: {r:?}");
        self.mms.get_mut(&key(m)).unwrap().count += 1;
        self.shadow_put(m, &returned)?;
        self.expect[self.cur] = TaskMm { mm: None, active_mm: Some(m) };
        self.zombie[self.cur] = true;
        Ok(Outcome::Done)
    }

    fn op_kill(&mut self) -> Result<Outcome, String> {
        let cands: Vec<usize> =
            (0..self.tasks.len()).filter(|&i| i != self.cur && self.expect[i].mm.is_some()).collect();
        let Some(i) = self.rng.pick(&cands) else { return Ok(Outcome::Done) };
        let m = self.expect[i].mm.unwrap();
        let sm = &self.mms[&key(m)];
        let busy = sm.users == 1 && sm.count == 1 && self.mm.active() == m;
        let mut returned = vec![];
        let r = self.mm.mm_put(m, |p, pte| returned.push((p, pte)));
        if busy {
            ensure!(self, r == Err(MmError::Busy), "mm_put of the active mm: {r:?}");
            return Ok(Outcome::Refused(MmError::Busy));
        }
        ensure!(self, r == Ok(()), "mm_put: {r:?}");
        self.shadow_put(m, &returned)?;
        self.tasks.remove(i);
        self.expect.remove(i);
        self.zombie.remove(i);
        if self.cur > i {
            self.cur -= 1;
        }
        Ok(Outcome::Done)
    }

    fn user_range(&mut self) -> (u32, u32) {
        let count = match self.rng.below(8) {
            0 => 33 + self.rng.below(20) as u32,
            1 => 2 + self.rng.below(6) as u32,
            _ => 1,
        };
        // Mostly near a 4 MiB boundary, in a handful of regions.
        let region = 1 + self.rng.below(4) as u32;
        let start = (region << 22) - 8 * 4096 + (self.rng.below(16) as u32) * 4096;
        (start, count)
    }

    fn op_map_user(&mut self) -> Result<Outcome, String> {
        let ids = self.mm_ids(true);
        let Some(id) = self.rng.pick(&ids) else { return Ok(Outcome::Done) };
        let (start, count) = self.user_range();
        let prot = [Prot::UserRw, Prot::UserRead, Prot::KernelRw, Prot::UserRw][self.rng.below(4) as usize];
        let attr = [CacheAttr::WriteBack, CacheAttr::WriteThrough, CacheAttr::Uncached, CacheAttr::WriteBack]
            [self.rng.below(4) as usize];
        let seed = self.rng.next() as u32 | 1;
        let Some(first) = self.own_frames(count, seed) else { return Ok(Outcome::Done) };
        let sm = &self.mms[&key(id)];
        let clash = (0..count).any(|i| sm.pages.contains_key(&((start >> 12) + i)));
        let expect: Option<MmError> = if id == INIT_MM {
            Some(MmError::BadHandle(Handle::Mm(Some(INIT_MM))))
        } else if sm.users == 0 {
            Some(MmError::Exited)
        } else if clash {
            None // AlreadyMapped(first present page)
        } else {
            Some(MmError::OutOfFrames) // placeholder: Ok or OutOfFrames
        };
        let new_regions: BTreeSet<usize> =
            (0..count).map(|i| ((start >> 22) + ((start >> 12 & 0x3FF) + i) / 1024) as usize).collect();
        let r = self.mm.map_user(id, Page::containing(VirtAddr::new(start)), first, count, prot, attr);
        let ok = match (expect, r) {
            (Some(MmError::OutOfFrames), Ok(())) => true,
            (Some(MmError::OutOfFrames), Err(MmError::OutOfFrames)) => false,
            (None, Err(MmError::AlreadyMapped(_))) => false,
            (Some(e), Err(g)) if e == g && e != MmError::OutOfFrames => false,
            (e, g) => {
                return fail(format!("map_user({id:?}, {start:#x}, {count}): {g:?}, shadow {e:?} (clash {clash})"))
            }
        };
        if !ok {
            for i in 0..count {
                self.release_frame(first.offset(i).unwrap());
            }
            return Ok(Outcome::Refused(r.unwrap_err()));
        }
        let sm = self.mms.get_mut(&key(id)).unwrap();
        for i in 0..count {
            sm.pages.insert((start >> 12) + i, UPage { frame: first.offset(i).unwrap(), prot, attr });
        }
        sm.regions.extend(new_regions);
        self.memtypes += count as usize;
        Ok(Outcome::Done)
    }

    fn op_unmap_user(&mut self) -> Result<Outcome, String> {
        let ids = self.mm_ids(false);
        let Some(id) = self.rng.pick(&ids) else { return Ok(Outcome::Done) };
        let (start, count) = self.user_range();
        let mut returned = vec![];
        let r = self.mm.unmap_user(id, Page::containing(VirtAddr::new(start)), count, |p, pte| returned.push((p, pte)));
        let sm = self.mms.get_mut(&key(id)).unwrap();
        if sm.users == 0 {
            ensure!(self, r == Err(MmError::Exited), "unmap_user of an exited mm: {r:?}");
            return Ok(Outcome::Refused(MmError::Exited));
        }
        let gone: Vec<(u32, UPage)> =
            (0..count).filter_map(|i| sm.pages.remove(&((start >> 12) + i)).map(|p| ((start >> 12) + i, p))).collect();
        ensure!(self, r == Ok(gone.len() as u32), "unmap_user: {r:?}, shadow {}", gone.len());
        let got: Vec<u32> = returned.iter().map(|(p, pte)| (p.start().as_u32() >> 12) ^ pte.frame().pfn()).collect();
        let want: Vec<u32> = gone.iter().map(|(v, p)| v ^ p.frame.pfn()).collect();
        ensure!(self, got == want, "unmap_user reported other pages");
        let frames: Vec<Frame> = gone.iter().map(|(_, p)| p.frame).collect();
        self.check_no_lines(&frames, "unmap_user")?;
        if let Some((v, _)) = gone.last() {
            self.freed_user.push((id, v << 12));
            if self.freed_user.len() > 16 {
                self.freed_user.remove(0);
            }
        }
        // The unmapped pages fault now, if this mm runs.
        if self.mm.active() == id {
            if let Some((v, _)) = gone.first() {
                let got = self.machine().read_u32(v << 12);
                ensure!(
                    self,
                    matches!(got, Err(MachineError::Fault(i)) if i.kind == FaultKind::NotMapped),
                    "unmapped user page read: {got:?}"
                );
            }
        }
        self.memtypes -= frames.len();
        for f in frames {
            self.release_frame(f);
        }
        Ok(Outcome::Done)
    }

    fn op_protect_user(&mut self) -> Result<Outcome, String> {
        let ids = self.mm_ids(false);
        let Some(id) = self.rng.pick(&ids) else { return Ok(Outcome::Done) };
        let (start, count) = self.user_range();
        let prot = [Prot::UserRead, Prot::UserRw, Prot::KernelRead][self.rng.below(3) as usize];
        let r = self.mm.protect_user(id, Page::containing(VirtAddr::new(start)), count, prot);
        let sm = self.mms.get_mut(&key(id)).unwrap();
        if sm.users == 0 {
            ensure!(self, r == Err(MmError::Exited), "protect_user of an exited mm: {r:?}");
            return Ok(Outcome::Refused(MmError::Exited));
        }
        let mut changed = 0;
        for i in 0..count {
            if let Some(p) = sm.pages.get_mut(&((start >> 12) + i)) {
                if p.prot != prot {
                    changed += 1;
                }
                p.prot = prot;
            }
        }
        // protect_user counts PTEs whose bits changed: a D bit cleared on a
        // page already read-only counts too, so only bound it.
        let n = r.map_err(|e| format!("protect_user: {e:?}"))?;
        ensure!(self, n >= changed, "protect_user changed {n}, shadow at least {changed}");
        Ok(Outcome::Done)
    }

    fn op_vmalloc(&mut self) -> Result<Outcome, String> {
        if self.vm.len() > 24 {
            return Ok(Outcome::Done);
        }
        let size = match self.rng.below(6) {
            0 => 1,
            1 => 4096 * (33 + self.rng.below(30) as usize),
            _ => 1 + self.rng.below(8 * 4096) as usize,
        };
        let pages = size.div_ceil(4096) as u32;
        let r = self.mm.vmalloc(size);
        let Some(va) = self.result(r, true, "vmalloc")? else { return Ok(Outcome::Refused(MmError::OutOfFrames)) };
        let frames: Vec<Frame> = (0..pages)
            .map(|i| Frame::containing(self.mm.translate(INIT_MM, VirtAddr::new(va.as_u32() + i * 4096)).unwrap().0))
            .collect();
        for &f in &frames {
            self.content.insert(f.pfn(), Content::pattern(0));
        }
        self.memtypes += pages as usize;
        self.note_kregions(va.as_u32(), pages);
        self.vm.insert(va.as_u32(), (pages, Vm::Vmalloc(frames)));
        self.freed_kernel.retain(|&a| a >> 12 < va.as_u32() >> 12 || a >> 12 >= (va.as_u32() >> 12) + pages);
        Ok(Outcome::Done)
    }

    fn note_kregions(&mut self, va: u32, pages: u32) {
        for i in 0..pages {
            self.kregions.insert(((va >> 12) + i) as usize >> 10);
        }
    }

    /// Runs `f` with, sometimes, an interrupt landed inside it whose handler
    /// reads a live kernel location (not `exclude`) and checks the word.
    fn with_irq<T>(&mut self, exclude: Option<u32>, f: impl FnOnce(&mut Self) -> T) -> Result<T, String> {
        let target = if self.rng.chance(3) { self.irq_target(exclude) } else { None };
        let seen = Rc::new(RefCell::new(None));
        if let Some((va, _)) = target {
            let (mem, ctx, s, lost) =
                (self.sys.mem.clone(), self.mm.fault_context(), seen.clone(), self.mm.hw().lost());
            let at = self.sys.model.ops() + 1 + self.rng.below(400);
            self.sys.model.schedule_irq(at, move |hw: &Sh4Model| {
                *s.borrow_mut() = Some(Machine::new(hw, &mem, ctx).losing(lost).read_u32(va));
            });
        }
        let r = f(self);
        if let Some((va, want)) = target {
            if self.sys.model.irq_pending() {
                // The operation ended before the interrupt was due.
                self.sys.model.cancel_irq();
            } else {
                self.stats.interrupts += 1;
                let got = *seen.borrow();
                ensure!(self, got == Some(Ok(want)), "interrupt handler read {va:#x}: {got:?}, shadow {want:#x}");
            }
        }
        Ok(r)
    }

    fn op_vfree(&mut self) -> Result<Outcome, String> {
        let areas: Vec<u32> =
            self.vm.iter().filter(|(_, (_, v))| matches!(v, Vm::Vmalloc(_))).map(|(&k, _)| k).collect();
        let Some(va) = self.rng.pick(&areas) else { return Ok(Outcome::Done) };
        let r = self.with_irq(Some(va), |w| w.mm.vfree(VirtAddr::new(va)))?;
        ensure!(self, r == Ok(()), "vfree: {r:?}");
        let (pages, v) = self.vm.remove(&va).unwrap();
        let Vm::Vmalloc(frames) = v else { unreachable!() };
        self.check_no_lines(&frames, "vfree")?;
        for f in &frames {
            self.content.remove(&f.pfn());
        }
        self.memtypes -= pages as usize;
        self.freed_kernel.push(va + (self.rng.below(pages as u64) as u32) * 4096);
        if self.freed_kernel.len() > 16 {
            self.freed_kernel.remove(0);
        }
        Ok(Outcome::Done)
    }

    fn op_ioremap(&mut self) -> Result<Outcome, String> {
        let first_i = self.rng.below(DEVICE_FRAMES as u64) as u32;
        let pages = 1 + self.rng.below((DEVICE_FRAMES - first_i).min(4) as u64) as u32;
        let attr = [CacheAttr::Uncached, CacheAttr::WriteBack, CacheAttr::WriteThrough][self.rng.below(3) as usize];
        let first = device(first_i);
        let conflict =
            (0..pages).any(|i| self.resv.get(&(first.pfn() + i)).is_some_and(|v| v.iter().any(|&a| a != attr)));
        if !conflict && self.cached_alias(first, pages, attr) {
            return Ok(Outcome::Done);
        }
        let r = self.mm.ioremap(first.start(), pages as usize * 4096, attr);
        match r {
            Err(e @ MmError::AttrConflict { .. }) if conflict => Ok(Outcome::Refused(e)),
            Ok(va) if !conflict => {
                for i in 0..pages {
                    self.resv.entry(first.pfn() + i).or_default().push(attr);
                }
                self.memtypes += 1;
                self.note_kregions(va.as_u32(), pages);
                self.vm.insert(va.as_u32(), (pages, Vm::Io { first, attr }));
                Ok(Outcome::Done)
            }
            Err(MmError::OutOfFrames) if !conflict => Ok(Outcome::Refused(MmError::OutOfFrames)),
            other => fail(format!("ioremap {first:?}x{pages} {attr:?}: {other:?}, conflict expected: {conflict}")),
        }
    }

    fn op_iounmap(&mut self) -> Result<Outcome, String> {
        let areas: Vec<u32> =
            self.vm.iter().filter(|(_, (_, v))| matches!(v, Vm::Io { .. })).map(|(&k, _)| k).collect();
        let Some(va) = self.rng.pick(&areas) else { return Ok(Outcome::Done) };
        let r = self.with_irq(Some(va), |w| w.mm.iounmap(VirtAddr::new(va)))?;
        ensure!(self, r == Ok(()), "iounmap: {r:?}");
        let (pages, Vm::Io { first, attr }) = self.vm.remove(&va).unwrap() else { unreachable!() };
        let frames: Vec<Frame> = (0..pages).map(|i| first.offset(i).unwrap()).collect();
        if self.frames_unmapped_elsewhere(&frames) {
            self.check_no_lines(&frames, "iounmap")?;
        }
        for i in 0..pages {
            let v = self.resv.get_mut(&(first.pfn() + i)).unwrap();
            let k = v.iter().position(|&a| a == attr).unwrap();
            v.swap_remove(k);
        }
        self.memtypes -= 1;
        Ok(Outcome::Done)
    }

    /// Whether a second cached mapping of these device frames would be made:
    /// two cached kernel aliases of one frame at different colours are the
    /// caller's hazard (the memtype check only keeps attributes apart), so the
    /// fuzzer does not generate them.
    fn cached_alias(&self, first: Frame, pages: u32, attr: CacheAttr) -> bool {
        attr != CacheAttr::Uncached
            && (0..pages).any(|i| self.resv.get(&(first.pfn() + i)).is_some_and(|v| !v.is_empty()))
    }

    /// Whether no other live cached mapping covers these device frames (then
    /// none of their lines may survive).
    fn frames_unmapped_elsewhere(&self, frames: &[Frame]) -> bool {
        frames.iter().all(|f| self.resv.get(&f.pfn()).is_none_or(|v| v.len() <= 1))
    }

    fn op_dma_alloc(&mut self) -> Result<Outcome, String> {
        if self.dma.len() > 12 {
            return Ok(Outcome::Done);
        }
        let size = 1 + self.rng.below(6 * 4096) as usize;
        let pages = size.div_ceil(4096) as u32;
        let r = self.with_irq(None, |w| w.mm.dma_alloc_coherent(size))?;
        let Some(b) = self.result(r, true, "dma_alloc_coherent")? else {
            return Ok(Outcome::Refused(MmError::OutOfFrames));
        };
        ensure!(self, b.pages == pages, "dma pages {} vs {pages}", b.pages);
        let first = Frame::containing(b.phys);
        for i in 0..pages {
            self.content.insert(first.pfn() + i, Content::pattern(0));
        }
        self.memtypes += 1;
        self.note_kregions(b.va.as_u32(), pages);
        self.dma.insert(b.va.as_u32(), (first, pages));
        Ok(Outcome::Done)
    }

    fn op_dma_free(&mut self) -> Result<Outcome, String> {
        let bufs: Vec<u32> = self.dma.keys().copied().collect();
        let Some(va) = self.rng.pick(&bufs) else { return Ok(Outcome::Done) };
        let r = self.with_irq(Some(va), |w| w.mm.dma_free_coherent(VirtAddr::new(va)))?;
        ensure!(self, r == Ok(()), "dma_free_coherent: {r:?}");
        let (first, pages) = self.dma.remove(&va).unwrap();
        let frames: Vec<Frame> = (0..pages).map(|i| first.offset(i).unwrap()).collect();
        self.check_no_lines(&frames, "dma_free_coherent")?;
        for f in frames {
            self.content.remove(&f.pfn());
        }
        self.memtypes -= 1;
        self.freed_kernel.push(va);
        Ok(Outcome::Done)
    }

    fn op_fixmap(&mut self) -> Result<Outcome, String> {
        let mapped: Vec<u32> = self.fix.iter().filter(|(_, e)| e.is_some()).map(|(&k, _)| k).collect();
        if !mapped.is_empty() && self.rng.chance(2) {
            let slot = self.rng.pick(&mapped).unwrap();
            let (f, attr) = self.fix[&slot].unwrap();
            let r = self.mm.fixmap_unmap(slot);
            ensure!(self, r == Ok(f), "fixmap_unmap: {r:?}");
            let v = self.resv.get_mut(&f.pfn()).unwrap();
            let k = v.iter().position(|&a| a == attr).unwrap();
            v.swap_remove(k);
            if self.frames_unmapped_elsewhere(&[f]) && self.resv[&f.pfn()].is_empty() {
                self.check_no_lines(&[f], "fixmap_unmap")?;
            }
            let r = self.mm.fixmap_free(slot);
            ensure!(self, r == Ok(()), "fixmap_free: {r:?}");
            self.fix.remove(&slot);
            self.memtypes -= 1;
            return Ok(Outcome::Done);
        }
        let slot = match self.mm.fixmap_alloc() {
            Ok(s) => s,
            Err(e) => return fail(format!("fixmap_alloc: {e:?}")),
        };
        let f = device(self.rng.below(DEVICE_FRAMES as u64) as u32);
        let attr = [CacheAttr::Uncached, CacheAttr::WriteBack][self.rng.below(2) as usize];
        let conflict = self.resv.get(&f.pfn()).is_some_and(|v| v.iter().any(|&a| a != attr));
        if !conflict && self.cached_alias(f, 1, attr) {
            let r = self.mm.fixmap_free(slot);
            ensure!(self, r == Ok(()), "fixmap_free: {r:?}");
            return Ok(Outcome::Done);
        }
        let r = self.mm.fixmap_map(slot, f, Prot::KernelRw, attr);
        match r {
            Ok(_) if !conflict => {
                self.resv.entry(f.pfn()).or_default().push(attr);
                self.fix.insert(slot, Some((f, attr)));
                self.memtypes += 1;
                Ok(Outcome::Done)
            }
            Err(MmError::AttrConflict { .. }) if conflict => {
                let r = self.mm.fixmap_free(slot);
                ensure!(self, r == Ok(()), "fixmap_free: {r:?}");
                Ok(Outcome::Refused(MmError::AttrConflict { phys: f.start(), requested: attr, existing: attr }))
            }
            other => fail(format!("fixmap_map {f:?} {attr:?}: {other:?} (conflict {conflict})")),
        }
    }

    fn op_io_mapping(&mut self) -> Result<Outcome, String> {
        match self.rng.below(4) {
            0 if self.ios.len() < 3 => {
                let first_i = self.rng.below(DEVICE_FRAMES as u64 - 4) as u32;
                let pages = 1 + self.rng.below(4) as u32;
                let attr = [CacheAttr::Uncached, CacheAttr::WriteBack][self.rng.below(2) as usize];
                let first = device(first_i);
                let conflict =
                    (0..pages).any(|i| self.resv.get(&(first.pfn() + i)).is_some_and(|v| v.iter().any(|&a| a != attr)));
                if !conflict && self.cached_alias(first, pages, attr) {
                    return Ok(Outcome::Done);
                }
                match self.mm.io_mapping_create(first.start(), pages as usize * 4096, attr) {
                    Ok(io) if !conflict => {
                        for i in 0..pages {
                            self.resv.entry(first.pfn() + i).or_default().push(attr);
                        }
                        self.memtypes += 1;
                        self.ios.push(IoMap { io, first, pages, attr, mapped: vec![] });
                        Ok(Outcome::Done)
                    }
                    Err(e @ MmError::AttrConflict { .. }) if conflict => Ok(Outcome::Refused(e)),
                    other => fail(format!("io_mapping_create: {other:?} (conflict {conflict})")),
                }
            }
            1 if !self.ios.is_empty() => {
                let i = self.rng.below(self.ios.len() as u64) as usize;
                let idx = self.rng.below(self.ios[i].pages as u64 + 1) as u32;
                let io = &mut self.ios[i];
                let r = self.mm.io_mapping_map(&mut io.io, idx);
                if idx >= io.pages {
                    ensure!(self, r == Err(MmError::Overflow), "io_mapping_map past the end: {r:?}");
                    return Ok(Outcome::Refused(MmError::Overflow));
                }
                let va = r.map_err(|e| format!("io_mapping_map: {e:?}"))?;
                self.ios[i].mapped.push((va.as_u32(), idx));
                Ok(Outcome::Done)
            }
            2 if !self.ios.is_empty() => {
                let i = self.rng.below(self.ios.len() as u64) as usize;
                let Some((va, _)) = self.ios[i].mapped.pop() else { return Ok(Outcome::Done) };
                let io = &mut self.ios[i];
                let r = self.mm.io_mapping_unmap(&mut io.io, VirtAddr::new(va));
                ensure!(self, r == Ok(()), "io_mapping_unmap: {r:?}");
                Ok(Outcome::Done)
            }
            3 if !self.ios.is_empty() => {
                let i = self.rng.below(self.ios.len() as u64) as usize;
                let busy = !self.ios[i].mapped.is_empty();
                let r = self.mm.io_mapping_free(&mut self.ios[i].io);
                if busy {
                    ensure!(self, r == Err(MmError::Busy), "io_mapping_free with mapped pages: {r:?}");
                    return Ok(Outcome::Refused(MmError::Busy));
                }
                ensure!(self, r == Ok(()), "io_mapping_free: {r:?}");
                let io = self.ios.remove(i);
                for k in 0..io.pages {
                    let v = self.resv.get_mut(&(io.first.pfn() + k)).unwrap();
                    let j = v.iter().position(|&a| a == io.attr).unwrap();
                    v.swap_remove(j);
                }
                self.memtypes -= 1;
                Ok(Outcome::Done)
            }
            _ => Ok(Outcome::Done),
        }
    }

    /// copy_user_page / clear_user_page into a fresh frame for a page of a
    /// live mm; the copy must be in memory afterwards (the slots are purged).
    fn op_copy_clear(&mut self) -> Result<Outcome, String> {
        let mut cands = vec![];
        for sm in self.mms.values() {
            for (&vpn, p) in &sm.pages {
                // An uncached or write-through page cannot be mapped at a
                // write-back kmap slot (memtype); the OS copies those by hand.
                if p.attr == CacheAttr::WriteBack {
                    cands.push((vpn, p.frame));
                }
            }
        }
        let Some((vpn, src)) = self.rng.pick(&cands) else { return Ok(Outcome::Done) };
        let Some(dst) = self.own_frames(1, 0x7777) else { return Ok(Outcome::Done) };
        let uva = VirtAddr::new(vpn << 12);
        let clear = self.rng.chance(3);
        let r = if clear { self.mm.clear_user_page(dst, uva) } else { self.mm.copy_user_page(dst, src, uva) };
        ensure!(self, r == Ok(()), "copy/clear_user_page: {r:?}");
        let c = if clear { Content::pattern(0) } else { self.content[&src.pfn()].clone() };
        for off in (0..4096u32).step_by(4) {
            let got = self.sys.mem.read_u32(PhysAddr::new(dst.start().as_u32() + off).unwrap());
            ensure!(
                self,
                got == c.word(off),
                "{} at {off:#x}: memory {got:#x}, shadow {:#x}",
                if clear { "clear" } else { "copy" },
                c.word(off)
            );
        }
        self.check_no_lines(&[dst], "kunmap_coherent")?;
        self.release_frame(dst);
        Ok(Outcome::Done)
    }

    /// A load or store through the CPU model.
    fn op_access(&mut self) -> Result<Outcome, String> {
        let active = self.mm.active();
        let user_task = self.expect[self.cur].mm == Some(active) && active != INIT_MM;
        // (va, frame, user-mode?, may read, may write)
        let mut c: Vec<(u32, Frame, bool, bool, bool)> = vec![];
        if let Some(sm) = self.mms.get(&key(active)) {
            for (&vpn, p) in &sm.pages {
                if user_task {
                    c.push((vpn << 12, p.frame, true, p.prot.user(), p.prot == Prot::UserRw));
                }
                c.push((vpn << 12, p.frame, false, true, p.prot.writable()));
            }
        }
        for (&va, (pages, v)) in &self.vm {
            let i = self.rng.below(*pages as u64) as u32;
            let f = match v {
                Vm::Vmalloc(fs) => fs[i as usize],
                Vm::Io { first, .. } => first.offset(i).unwrap(),
            };
            c.push((va + i * 4096, f, false, true, true));
        }
        for (&va, &(first, pages)) in &self.dma {
            let i = self.rng.below(pages as u64) as u32;
            c.push((va + i * 4096, first.offset(i).unwrap(), false, true, true));
        }
        let Some((va, f, user, may_read, may_write)) = self.rng.pick(&c) else { return Ok(Outcome::Done) };
        let off = (self.rng.below(1024) * 4) as u32;
        let write = self.rng.chance(2);
        let base = self.machine();
        let m = if user { base.user() } else { base };
        self.stats.accesses += 1;
        if write {
            let v = self.rng.next() as u32;
            let r = m.write_u32(va + off, v);
            if may_write {
                ensure!(self, r == Ok(()), "write {va:#x}+{off:#x} (user {user}): {r:?}");
                self.content.entry(f.pfn()).or_default().over.insert(off, v);
            } else {
                ensure!(
                    self,
                    matches!(r, Err(MachineError::Fault(i)) if i.kind == FaultKind::Protection),
                    "write to a read-only page {va:#x} (user {user}): {r:?}"
                );
            }
        } else {
            let r = m.read_u32(va + off);
            if may_read {
                let want = self.expected_at(f, off);
                ensure!(
                    self,
                    r == Ok(want),
                    "read {va:#x}+{off:#x} (user {user}, frame {f:?}): {r:?}, shadow {want:#x}"
                );
            } else {
                ensure!(
                    self,
                    matches!(r, Err(MachineError::Fault(i)) if i.kind == FaultKind::Protection),
                    "user read of a kernel page {va:#x}: {r:?}"
                );
            }
        }
        Ok(Outcome::Done)
    }

    fn op_bad_input(&mut self) -> Result<Outcome, String> {
        let stale = self.rng.pick(&self.dead.clone());
        let e = match self.rng.below(10) {
            0 => (self.mm.vfree(VirtAddr::new(layout::VMALLOC_START + 0x10)), MmError::Unaligned),
            1 => (self.mm.vmalloc(0).map(|_| ()), MmError::ZeroSize),
            2 => (self.mm.vmalloc(usize::MAX).map(|_| ()), MmError::Overflow),
            3 => {
                let va = VirtAddr::new(layout::CONSISTENT_END - 4096);
                (self.mm.dma_free_coherent(va), MmError::BadHandle(Handle::Area(va)))
            }
            4 => {
                let va = VirtAddr::new(layout::VMALLOC_END - 4096);
                (self.mm.iounmap(va), MmError::BadHandle(Handle::Area(va)))
            }
            5 => match stale {
                Some(id) => (self.mm.mm_get(id), MmError::BadHandle(Handle::Mm(Some(id)))),
                None => return Ok(Outcome::Done),
            },
            7 => (
                self.mm.fixmap_free(layout::FIXMAP_SLOTS),
                MmError::BadHandle(Handle::FixmapSlot(layout::FIXMAP_SLOTS)),
            ),
            8 => (self.mm.fixmap_unmap(u32::MAX).map(|_| ()), MmError::BadHandle(Handle::FixmapSlot(u32::MAX))),
            _ => (
                self.mm.map_user(
                    INIT_MM,
                    Page::containing(VirtAddr::new(0x1000)),
                    device(0),
                    1,
                    Prot::UserRw,
                    CacheAttr::WriteBack,
                ),
                MmError::BadHandle(Handle::Mm(Some(INIT_MM))),
            ),
        };
        ensure!(self, e.0 == Err(e.1), "bad input: {:?}, expected {:?}", e.0, e.1);
        Ok(Outcome::Refused(e.1))
    }
}

enum Outcome {
    Done,
    Refused(MmError),
}

fn device(i: u32) -> Frame {
    Frame::from_pfn((RAM_BASE >> 12) + RAM_FRAMES - 8 - DEVICE_FRAMES + i).unwrap()
}

fn fill(sys: &Sys, f: Frame, seed: u32) {
    let c = Content::pattern(seed);
    for k in (0..4096).step_by(4) {
        sys.mem.write_u32(PhysAddr::new(f.start().as_u32() + k).unwrap(), c.word(k));
    }
}

/// Runs worlds of `WORLD_OPS` operations until `ops` ran, over hardware that
/// loses `lost`; the first failure is returned with its seed and operation
/// number.
fn run(seed: u64, ops: u64, lost: Lost) -> Result<Stats, String> {
    let mut total = Stats::default();
    let mut world_seed = seed;
    while total.ops < ops {
        let sys = Sys::new();
        let mut w = World::new(&sys, world_seed, Some(lost));
        let n = WORLD_OPS.min(ops - total.ops);
        for _ in 0..n {
            if let Err(e) = w.step() {
                return Err(format!("world seed {world_seed:#x}, op {}: {e}", w.stats.ops));
            }
        }
        w.check_all().map_err(|e| format!("world seed {world_seed:#x}, final check: {e}"))?;
        let s = w.stats;
        total.ops += s.ops;
        total.checks += s.checks;
        total.accesses += s.accesses;
        total.expected_errors += s.expected_errors;
        total.injected_failures += s.injected_failures;
        total.interrupts += s.interrupts;
        total.worlds += 1;
        total.rollovers += w.mm.asids().rollovers();
        total.inactive_probes += s.inactive_probes;
        world_seed = world_seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    Ok(total)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn randomized_operations_against_the_shadow() {
    let ops = env_u64("SH4MM_FUZZ_OPS", 30_000);
    let seed = env_u64("SH4MM_FUZZ_SEED", 0x5348_344D_4D21);
    let t = std::time::Instant::now();
    match run(seed, ops, Lost::empty()) {
        Ok(s) => println!(
            "fuzz: seed {seed:#x}: {} ops in {} worlds, {} invariant checks, {} data accesses, {} expected errors ({} injected allocation failures), {} interrupts inside operations, {} ASID rollovers, {} reads of pages unmapped while their mm slept, 0 failures ({:.1} s)",
            s.ops, s.worlds, s.checks, s.accesses, s.expected_errors, s.injected_failures, s.interrupts, s.rollovers, s.inactive_probes, t.elapsed().as_secs_f64()
        ),
        Err(e) => panic!("fuzz: {e}"),
    }
}

/// Each code mutation of the crate breaks one mechanism, and each hardware
/// mutant loses one kind of operation; a short run must catch every one of
/// them.
#[test]
fn mutants_are_caught() {
    let ops = env_u64("SH4MM_FUZZ_MUTANT_OPS", 20_000);
    for m in [
        Mutation::KmapIgnoresColour,
        Mutation::VmallocFaultVmallocOnly,
        Mutation::InactiveFlushDataAsid,
        Mutation::MmCreateNoKernelCopy,
    ] {
        match mutation::with(m, || run(0xFEED, ops, Lost::empty())) {
            Err(e) => println!("code mutation {m:?} caught: {e}"),
            Ok(s) => panic!("code mutation {m:?} survived {} ops", s.ops),
        }
    }
    for lost in [Lost::KERNEL_FLUSH, Lost::LOAD_INVALIDATE, Lost::FLUSH_ALL, Lost::PURGE] {
        match run(0xFEED, ops, lost) {
            Err(e) => println!("hardware mutant {lost:?} caught: {e}"),
            Ok(s) => panic!("hardware mutant {lost:?} survived {} ops", s.ops),
        }
    }
}

/// Everything a world leaves observable: its result and counters, the model's
/// operation count, event log and TLB, and the contents of all of RAM.
fn world_trace(seed: u64, ops: u64, lost: Option<Lost>) -> (String, u64, Vec<sh4_mm::model::HwEvent>, String, u64) {
    let sys = Sys::new();
    let mut w = World::new(&sys, seed, lost);
    let mut r = Ok(());
    for _ in 0..ops {
        r = w.step();
        if r.is_err() {
            break;
        }
    }
    let result = format!("{r:?} {:?}", w.stats);
    let mut ram = 0u64;
    for k in 0..RAM_FRAMES * 1024 {
        let word = sys.mem.read_u32(PhysAddr::new(RAM_BASE + k * 4).unwrap());
        ram = ram.wrapping_mul(0x100_0000_01B3).wrapping_add(word as u64);
    }
    (result, sys.model.ops(), sys.model.take_events(), format!("{:?}", sys.model.utlb()), ram)
}

/// The faithful wrapper the fuzzer's manager runs over is invisible: a whole
/// world over `Mutant::faithful(&model)` and over the bare `&model` leave
/// the same results, counters, hardware operation count, event log, TLB and
/// RAM. (A wrapper that loses something does not: the comparison can fail.)
#[test]
fn faithful_wrapper_is_invisible_for_a_whole_world() {
    let ops = env_u64("SH4MM_FUZZ_INVISIBLE_OPS", WORLD_OPS);
    let bare = world_trace(0x1D1E, ops, None);
    let wrapped = world_trace(0x1D1E, ops, Some(Lost::empty()));
    assert!(bare.0.starts_with("Ok(())"), "{}", bare.0);
    assert!(bare.2.len() > 1000, "the world did hardware work: {} events", bare.2.len());
    assert_eq!(bare.0, wrapped.0, "results and counters");
    assert_eq!(bare.1, wrapped.1, "hardware operations");
    assert!(bare.2 == wrapped.2, "event logs differ");
    assert_eq!(bare.3, wrapped.3, "UTLB");
    assert_eq!(bare.4, wrapped.4, "RAM");
    let lossy = world_trace(0x1D1E, ops, Some(Lost::PURGE));
    assert!(lossy.2 != bare.2, "a wrapper that loses purges must be visible");
}
