//! The Rust side of `asm/start.S`: TLB exceptions go to the MM's slow path
//! (`sh4_mm::fault`), probes turn unfixable faults into results, anything
//! else is an oops line and a failed run.

use core::sync::atomic::{AtomicU32, Ordering};
use sh4_mm::fault::{self, Exception, FaultContext, FaultInfo, FaultOutcome};
use sh4_mm::frame::P1Access;
use sh4_mm::hw::expevt;
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::VirtAddr;
use spin::Once;

/// The frame `asm/start.S` builds (from the final r15 upwards): bank-0
/// r0..r7, r8..r14, then the saved control registers and r15. The handler
/// may edit it (e.g. `spc`) before it is restored.
#[repr(C)]
pub struct Frame {
    pub r: [u32; 15],
    pub gbr: u32,
    pub macl: u32,
    pub mach: u32,
    pub pr: u32,
    pub spc: u32,
    pub ssr: u32,
    pub r15: u32,
}

// The layout `exc_common` (asm/start.S) pushes: 22 words, r15 last pushed
// first. A field moved here without the assembly (or the reverse) breaks
// these at compile time.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Frame>() == 22 * 4);
    assert!(offset_of!(Frame, gbr) == 15 * 4);
    assert!(offset_of!(Frame, pr) == 18 * 4);
    assert!(offset_of!(Frame, spc) == 19 * 4);
    assert!(offset_of!(Frame, ssr) == 20 * 4);
    assert!(offset_of!(Frame, r15) == 21 * 4);
};

/// Kernel stack top used when an exception comes from user mode.
#[no_mangle]
pub static sh4mm_kernel_stack: AtomicU32 = AtomicU32::new(0);

static FAULT_CTX: Once<FaultContext> = Once::new();

/// Called once the memory manager exists: the slow path gets the context,
/// the assembly fast path swapper_pg_dir's address (so that it copies a
/// missing P3 first-level entry itself).
pub fn set_fault_context(ctx: FaultContext) {
    FAULT_CTX.call_once(|| ctx);
    if let Some(ctx) = FAULT_CTX.get() {
        fast_path_pgd_copy(Some(ctx.swapper().start().to_p1().as_u32()));
    }
}

extern "C" {
    static mut sh4mm_swapper_pgd: u32;
    static sh4mm_no_swapper: u8;
}

/// Gives the fast path swapper_pg_dir's P1 address, or (`None`) takes it
/// away: the fast path then leaves every missing first-level entry to the
/// Rust slow path (its `vmalloc_fault`), as before the kernel set it.
pub fn fast_path_pgd_copy(swapper_p1: Option<u32>) {
    // 0xC00 bytes before the zero table: every P3 index reads 0 there.
    let v = swapper_p1.unwrap_or((&raw const sh4mm_no_swapper as u32).wrapping_sub(0xC00));
    // SAFETY: one aligned 32-bit store to a word only the TLB-miss vector
    // reads (with SR.BL=1, so it sees the old or the new value, both valid).
    unsafe { (&raw mut sh4mm_swapper_pgd).write_volatile(v) }
}

/// `sh4mm_user_call` result when the user program was killed by a fault
/// (or'ed with EXPEVT).
pub const USER_KILLED: u32 = 0xFFFF_0000;
/// The OS's page-fault hook for user addresses: returns `true` if it fixed
/// the fault (the access is retried). Runs in the exception handler: it must
/// not wait for a lock the interrupted code holds.
pub static USER_FAULT_HOOK: spin::Mutex<Option<UserFaultHook>> = spin::Mutex::new(None);
/// See [`USER_FAULT_HOOK`].
pub type UserFaultHook = fn(&FaultInfo) -> bool;
/// The fault that killed the last user program.
pub static USER_FAULT: spin::Mutex<Option<FaultInfo>> = spin::Mutex::new(None);

extern "C" {
    fn sh4mm_user_return(value: u32) -> !;
    fn sh4mm_probe_read_insn();
    fn sh4mm_probe_write_insn();
    fn sh4mm_probe_read(addr: u32) -> u32;
    fn sh4mm_probe_write(addr: u32, value: u32);
}

static PROBE_FAULT: spin::Mutex<Option<FaultInfo>> = spin::Mutex::new(None);
/// TLB exceptions handled (misses, initial writes) since boot.
pub static TLB_EXCEPTIONS: AtomicU32 = AtomicU32::new(0);

/// Reads `addr`; an unfixable fault comes back as `Err`.
pub fn probe_read(addr: u32) -> Result<u32, FaultInfo> {
    *PROBE_FAULT.lock() = None;
    // SAFETY: the probe is one load; a fault on it is caught by the handler.
    let v = unsafe { sh4mm_probe_read(addr) };
    PROBE_FAULT.lock().take().map_or(Ok(v), Err)
}

/// Writes `addr`; an unfixable fault comes back as `Err`.
pub fn probe_write(addr: u32, value: u32) -> Result<(), FaultInfo> {
    *PROBE_FAULT.lock() = None;
    // SAFETY: as for `probe_read`.
    unsafe { sh4mm_probe_write(addr, value) };
    PROBE_FAULT.lock().take().map_or(Ok(()), Err)
}

fn is_tlb_code(code: u32) -> bool {
    matches!(
        code,
        expevt::TLB_MISS_READ
            | expevt::TLB_MISS_WRITE
            | expevt::INITIAL_PAGE_WRITE
            | expevt::PROT_READ
            | expevt::PROT_WRITE
            | expevt::ADDR_ERR_READ
            | expevt::ADDR_ERR_WRITE
    )
}

/// Interrupt hook (TMU0 etc.), set by tests: called with INTEVT and the
/// interrupted PC.
pub static IRQ_HOOK: spin::Mutex<Option<IrqHook>> = spin::Mutex::new(None);
/// See [`IRQ_HOOK`]: `(INTEVT, SPC)`.
pub type IrqHook = fn(u32, u32);

// SAFETY: the exception path of a privileged SH-4 kernel: it walks and
// fixes the tables the memory manager owns, nothing else.
const HW: Sh4Hw = unsafe { Sh4Hw::new() };
// SAFETY: as for `HW`.
const PHYS: P1Access = unsafe { P1Access::new() };

/// The entry from `boot/start.S`. TLB exceptions the MM fixes (the common
/// case: a miss the assembly fast path left, an initial page write) take a
/// short path here; everything else (interrupts, traps, faults the MM
/// cannot fix, oopses) is in the out-of-line [`exception_slow`], so that
/// this function saves few registers.
#[no_mangle]
extern "C" fn sh4mm_exception(kind: u32, frame: *mut Frame, code: u32, tea: u32) {
    if kind != 2 && is_tlb_code(code) {
        if let Some(ctx) = FAULT_CTX.get() {
            TLB_EXCEPTIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `frame` points to the frame the assembly stub just
            // pushed on this stack; nothing else references it until we return.
            let from_user = unsafe { (*frame).ssr } & 0x4000_0000 == 0;
            let exc = Exception { expevt: code, tea: VirtAddr::new(tea), user: from_user };
            match fault::handle_tlb_exception(&HW, &PHYS, ctx, &exc) {
                FaultOutcome::Retry => return,
                outcome => return tlb_unfixed(frame, code, from_user, outcome),
            }
        }
    }
    exception_slow(kind, frame, code, tea)
}

/// A TLB exception the MM could not fix: the OS's user-fault hook, a probe,
/// or an oops.
#[cold]
#[inline(never)]
fn tlb_unfixed(frame: *mut Frame, code: u32, from_user: bool, outcome: FaultOutcome) {
    // SAFETY: as in `sh4mm_exception`.
    let frame = unsafe { &mut *frame };
    match outcome {
        FaultOutcome::Retry => {}
        FaultOutcome::User(info) | FaultOutcome::Oops(info) if from_user => {
            // The OS's part: its page-fault hook (copy-on-write,
            // demand paging) may fix it; otherwise the program dies.
            let hook = USER_FAULT_HOOK.try_lock().and_then(|g| *g);
            if hook.is_some_and(|h| h(&info)) {
                return;
            }
            *USER_FAULT.lock() = Some(info);
            // SAFETY: a user_call is in progress (only it enters user mode).
            unsafe { sh4mm_user_return(USER_KILLED | code) };
        }
        FaultOutcome::User(info) | FaultOutcome::Oops(info) => {
            let probe = [sh4mm_probe_read_insn as *const () as u32, sh4mm_probe_write_insn as *const () as u32];
            if probe.contains(&frame.spc) {
                *PROBE_FAULT.lock() = Some(info);
                frame.spc += 2;
                frame.r[0] = 0xDEAD_BEEF;
                return;
            }
            println!(
                "OOPS: {:?} fault at {} EXPEVT={:#05x} SPC={:#010x} user={}",
                info.kind, info.addr, info.expevt, frame.spc, info.user
            );
            crate::qemu::exit(102);
        }
    }
}

/// Interrupts, the user program's TRAPA, and exceptions nothing handles.
#[cold]
#[inline(never)]
fn exception_slow(kind: u32, frame: *mut Frame, code: u32, tea: u32) {
    // SAFETY: as in `sh4mm_exception`.
    let frame = unsafe { &mut *frame };
    if kind == 2 {
        // try_lock: the interrupted code may be installing the hook.
        let hook = IRQ_HOOK.try_lock().and_then(|g| *g);
        match hook {
            Some(h) => {
                // Interrupt context for the MM (Sh4Hw::in_interrupt) while
                // the handler runs.
                let _irq = sh4_mm::irqlock::InterruptScope::enter();
                return h(code, frame.spc);
            }
            None => {
                println!("OOPS: unexpected interrupt INTEVT={code:#05x} SPC={:#010x}", frame.spc);
                crate::qemu::exit(102);
            }
        }
    }
    let from_user = frame.ssr & 0x4000_0000 == 0;
    if from_user && code == 0x160 {
        // TRAPA from the user program: back to sh4mm_user_call's caller.
        // SAFETY: a user_call is in progress (only it enters user mode).
        unsafe { sh4mm_user_return(frame.r[0]) };
    }
    println!("OOPS: exception EXPEVT={code:#05x} TEA={tea:#010x} SPC={:#010x} SSR={:#010x}", frame.spc, frame.ssr);
    crate::qemu::exit(102)
}
