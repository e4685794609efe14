//! A tiny SH-4 OS on sh4-mm: two user tasks in separate address spaces, a
//! kernel thread that borrows an mm, and a fork whose data page is shared
//! copy-on-write until one side writes. Boots on QEMU r2d:
//! `scripts/kernel.sh example`.
//!
//! Entry, vectors, console, heap, exception glue and the exit are the board
//! runtime's (`sh4-rt`, runtime/); what is here is what an OS adds on top of
//! the crates: processes, a scheduler's mm bookkeeping, and a page-fault hook.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[macro_use]
extern crate sh4_rt;

use sh4_rt::{console, exc, heap, qemu};

use alloc::collections::BTreeMap;
use sh4_mm::fault::{FaultInfo, FaultKind};
use sh4_mm::frame::{BitmapFrames, P1Access};
use sh4_mm::irqlock::IrqLock;
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::*;
use spin::Mutex;

type Mm = MemoryManager<Sh4Hw, P1Access, BitmapFrames<384>>;
// SAFETY: tiny_os runs privileged on the SH-4 and hands the MMU and the frames
// above its image to the memory manager alone.
const HW: Sh4Hw = unsafe { Sh4Hw::new() };
// SAFETY: as for `HW`.
const PHYS: P1Access = unsafe { P1Access::new() };
/// The manager, behind the interrupt-safe lock the crate provides: held, it
/// masks interrupts, and a re-entry (a fault taken while it is held) gets an
/// error instead of spinning forever.
static MM: IrqLock<Option<Mm>, Sh4Hw> = IrqLock::new(HW, None);

const CODE: u32 = 0x0040_0000;
const STACK: u32 = 0x0080_0000;
const DATA: u32 = 0x0060_0000;

extern "C" {
    fn sh4mm_user_call(entry: u32, user_sp: u32, arg: u32) -> u32;
    fn sh4mm_call_on_stack(f: extern "C" fn(u32) -> u32, arg: u32, stack_top: u32) -> u32;
    static sh4mm_user_prog_inc: u8;
    static sh4mm_user_prog: u8;
    static sh4mm_user_prog_end: u8;
}

/// The OS's bookkeeping for copy-on-write: pages mapped read-only because
/// their frame is shared, and how many mms share each frame.
struct Cow {
    pages: BTreeMap<(u64, u32), ()>,
    sharers: BTreeMap<u32, u32>,
}
static COW: Mutex<Cow> = Mutex::new(Cow { pages: BTreeMap::new(), sharers: BTreeMap::new() });

struct Process {
    mm: MmId,
    task: usize,
}

/// The scheduler's part of the mm protocol: every task's `TaskMm`, and which
/// one is on the CPU.
struct Sched {
    tasks: alloc::vec::Vec<TaskMm>,
    current: usize,
}

impl Sched {
    fn add(&mut self, t: TaskMm) -> usize {
        self.tasks.push(t);
        self.tasks.len() - 1
    }

    /// Context switch (the mm half): `current` -> `next`.
    fn switch_to(&mut self, mm: &mut Mm, next: usize) {
        if next == self.current {
            return;
        }
        let (lo, hi) = (self.current.min(next), self.current.max(next));
        let (a, b) = self.tasks.split_at_mut(hi);
        let (prev, next_t) = if self.current < next { (&mut a[lo], &mut b[0]) } else { (&mut b[0], &mut a[lo]) };
        mm.context_switch(prev, next_t).expect("context switch");
        self.current = next;
    }
}

fn page(a: u32) -> Page {
    Page::containing(VirtAddr::new(a))
}

fn frame_with(mm: &mut Mm, word: u32) -> Frame {
    let f = mm.allocator_mut().alloc(1).expect("frame");
    for k in 0..1024u32 {
        // SAFETY: a frame we own, through P2.
        unsafe { ((f.start().to_p2().as_u32() + k * 4) as *mut u32).write_volatile(word) };
    }
    f
}

/// A process: the two user programs, a stack, and a data page holding `word`.
fn spawn(mm: &mut Mm, word: u32) -> Process {
    let code = mm.allocator_mut().alloc(1).expect("frame");
    // SAFETY: copies the user programs (a few instructions) into our frame.
    unsafe {
        let (s, e) = (&sh4mm_user_prog_inc as *const u8, &sh4mm_user_prog_end as *const u8);
        core::ptr::copy_nonoverlapping(s, code.start().to_p2().as_u32() as *mut u8, e as usize - s as usize);
    }
    let (stack, data) = (frame_with(mm, 0), frame_with(mm, word));
    let id = mm.mm_create().expect("mm");
    mm.map_user(id, page(CODE), code, 1, Prot::UserRead, CacheAttr::WriteBack).expect("map");
    mm.map_user(id, page(STACK), stack, 1, Prot::UserRw, CacheAttr::WriteBack).expect("map");
    mm.map_user(id, page(DATA), data, 1, Prot::UserRw, CacheAttr::WriteBack).expect("map");
    Process { mm: id, task: usize::MAX }
}

/// fork(): the child gets the code page shared, a fresh stack, and the data
/// page shared read-only on both sides (copy-on-write).
fn fork(mm: &mut Mm, parent: &Process) -> Process {
    let child = mm.mm_create().expect("mm");
    let (code, _) = mm.translate(parent.mm, VirtAddr::new(CODE)).expect("code");
    let (data, _) = mm.translate(parent.mm, VirtAddr::new(DATA)).expect("data");
    let stack = frame_with(mm, 0);
    mm.map_user(child, page(CODE), Frame::containing(code), 1, Prot::UserRead, CacheAttr::WriteBack).expect("map");
    mm.map_user(child, page(STACK), stack, 1, Prot::UserRw, CacheAttr::WriteBack).expect("map");
    mm.protect_user(parent.mm, page(DATA), 1, Prot::UserRead).expect("protect");
    mm.map_user(child, page(DATA), Frame::containing(data), 1, Prot::UserRead, CacheAttr::WriteBack).expect("map");
    let mut cow = COW.lock();
    cow.pages.insert((parent.mm.to_raw(), DATA), ());
    cow.pages.insert((child.to_raw(), DATA), ());
    cow.sharers.insert(Frame::containing(data).pfn(), 2);
    Process { mm: child, task: usize::MAX }
}

/// The page-fault hook: a write to a copy-on-write page gets a private copy
/// (copied colour-correctly), or the page back if this mm is the last sharer.
fn cow_fault(info: &FaultInfo) -> bool {
    if info.kind != FaultKind::Protection || info.expevt != 0x0C0 {
        return false;
    }
    let (Ok(mut g), Some(mut cow)) = (MM.lock(), COW.try_lock()) else { return false };
    let Some(mm) = g.as_mut() else { return false };
    let id = mm.active();
    let va = info.addr.as_u32() & !0xFFF;
    if cow.pages.remove(&(id.to_raw(), va)).is_none() {
        return false;
    }
    let Ok((pa, _)) = mm.translate(id, VirtAddr::new(va)) else { return false };
    let old = Frame::containing(pa);
    let n = cow.sharers.get(&old.pfn()).copied().unwrap_or(1);
    if n <= 1 {
        cow.sharers.remove(&old.pfn());
        return mm.protect_user(id, page(va), 1, Prot::UserRw).is_ok();
    }
    let Some(new) = mm.allocator_mut().alloc(1) else { return false };
    if mm.copy_user_page(new, old, VirtAddr::new(va)).is_err() {
        mm.allocator_mut().free(new, 1);
        return false;
    }
    if mm.unmap_user(id, page(va), 1, |_, _| {}).is_err() {
        mm.allocator_mut().free(new, 1);
        return false;
    }
    cow.sharers.insert(old.pfn(), n - 1);
    mm.map_user(id, page(va), new, 1, Prot::UserRw, CacheAttr::WriteBack).is_ok()
}

/// Schedules `p` and runs a user program on it; the MM lock is not held
/// while user code runs (its page faults need it).
fn run(sched: &mut Sched, p: &Process, program: &u8, arg: u32) -> u32 {
    sched.switch_to(MM.lock().expect("mm lock").as_mut().expect("mm"), p.task);
    let entry = CODE + (program as *const u8 as u32 - (&raw const sh4mm_user_prog_inc) as u32);
    // SAFETY: the process maps its programs, stack and data; they trap back.
    unsafe { sh4mm_user_call(entry, STACK + 4096, arg) }
}

extern "C" fn kthread_body(addr: u32) -> u32 {
    // SAFETY: `addr` is in the vmalloc area the OS just made.
    unsafe {
        (addr as *mut u32).write_volatile(0x7E11);
        (addr as *const u32).read_volatile()
    }
}

#[no_mangle]
pub extern "C" fn kmain() -> ! {
    console::init();
    heap::init();
    println!("tiny_os: two tasks, a kernel thread, a copy-on-write fork");
    println!("running 5 tests");
    let frames = BitmapFrames::new(Frame::from_pfn(0x0D000).unwrap(), 12288);
    let mm = MemoryManager::new(HW, PHYS, frames).expect("mm");
    exc::set_fault_context(mm.fault_context());
    mm.enable_mmu();
    *MM.lock().expect("mm lock") = Some(mm);
    *exc::USER_FAULT_HOOK.lock() = Some(cow_fault);
    let (mut passed, mut failed) = (0, 0);
    let mut report = |name: &str, ok: bool| {
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1
        } else {
            failed += 1
        }
    };
    // SAFETY: addresses of the user programs (link-time symbols).
    let (read, inc) = unsafe { (&sh4mm_user_prog, &sh4mm_user_prog_inc) };

    let mut sched = Sched { tasks: alloc::vec![TaskMm::boot()], current: 0 };
    let (a, b) = {
        let mut g = MM.lock().expect("mm lock");
        let mm = g.as_mut().expect("mm");
        let (mut a, mut b) = (spawn(mm, 0xAAAA), spawn(mm, 0xBBBB));
        a.task = sched.add(TaskMm::user(a.mm));
        b.task = sched.add(TaskMm::user(b.mm));
        (a, b)
    };
    let ra = run(&mut sched, &a, read, DATA);
    let rb = run(&mut sched, &b, read, DATA);
    report("two_tasks_same_address_own_data", ra == 0xAAAA && rb == 0xBBBB);

    // A kernel thread is scheduled after b: it borrows b's mm and uses
    // memory vmalloc'ed after b was created (vmalloc_fault into b's table).
    let kthread = sched.add(TaskMm::kernel_thread());
    let ok = {
        let mut g = MM.lock().expect("mm lock");
        let mm = g.as_mut().expect("mm");
        sched.switch_to(mm, kthread);
        let buf = mm.vmalloc(4096).expect("vmalloc");
        let stack = mm.allocator_mut().alloc(2).expect("stack");
        let borrowed = sched.tasks[kthread].active_mm == Some(b.mm);
        drop(g);
        // SAFETY: runs the thread body on its own (P1) stack.
        let v = unsafe { sh4mm_call_on_stack(kthread_body, buf.as_u32(), stack.start().to_p1().as_u32() + 8192) };
        let mut g = MM.lock().expect("mm lock");
        let mm = g.as_mut().expect("mm");
        mm.allocator_mut().free(stack, 2);
        let freed = mm.vfree(buf).is_ok();
        freed && borrowed && v == 0x7E11
    };
    report("kernel_thread_borrows_mm", ok);

    let c = {
        let mut g = MM.lock().expect("mm lock");
        let mm = g.as_mut().expect("mm");
        let mut c = fork(mm, &a);
        c.task = sched.add(TaskMm::user(c.mm));
        c
    };
    let rc = run(&mut sched, &c, read, DATA);
    report("fork_child_sees_parent_data", rc == 0xAAAA);
    let c1 = run(&mut sched, &c, inc, DATA);
    let a1 = run(&mut sched, &a, read, DATA);
    report("child_write_gets_a_private_copy", c1 == 0xAAAB && a1 == 0xAAAA);
    let a2 = run(&mut sched, &a, inc, DATA);
    let c2 = run(&mut sched, &c, read, DATA);
    report("parent_write_after_child_copied", a2 == 0xAAAB && c2 == 0xAAAB && COW.lock().pages.is_empty());

    println!("{passed} passed, {failed} failed");
    qemu::exit(if failed == 0 { 0 } else { 1 })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("KERNEL PANIC: {info}");
    qemu::exit(101)
}
