//! C ABI for sh4-mm: what a C kernel links (`libsh4mm.a` + `include/sh4mm.h`).
//!
//! The OS gives the library its frame allocator and a heap at
//! [`sh4mm_init`]; everything after that is a call with plain integers and
//! out-pointers (no structs by value: GCC's SH ABI and rustc disagree on how
//! those travel). Every function returns 0 or a negative `SH4MM_E_*` code and
//! never panics on bad input. One memory manager per system, behind an
//! interrupt-masking lock (`sh4_mm::irqlock::IrqLock`) that the
//! TLB-exception entry never takes; interrupt handlers may call what
//! `sh4_mm::irqlock` allows (`sh4mm_dma_alloc_coherent`; frees are queued)
//! between `sh4mm_irq_enter` and `sh4mm_irq_exit`. A bug inside the library
//! (a panic) reaches the OS through its `panic` hook with the message.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

use core::ffi::c_char;
use core::fmt::Write;
use sh4_mm::fault::{self, Exception, FaultContext, FaultOutcome};
use sh4_mm::frame::{FrameAllocator, P1Access};
use sh4_mm::heap::KernelHeap;
use sh4_mm::irqlock::{self, IrqLock};
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::*;
use spin::Once;

/// Error codes (negative) returned by every function.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sh4mmError {
    /// Success.
    Ok = 0,
    /// `sh4mm_init` was not called (or failed).
    NotInitialised = -1,
    /// The frame allocator had no frame.
    OutOfFrames = -2,
    /// The address window is full.
    WindowExhausted = -3,
    /// Zero size.
    ZeroSize = -4,
    /// Unaligned address or size.
    Unaligned = -5,
    /// Range overflows its region.
    Overflow = -6,
    /// Address outside the allowed region.
    BadAddress = -7,
    /// Nothing mapped there.
    NotMapped = -8,
    /// Something already mapped there.
    AlreadyMapped = -9,
    /// Stale or freed handle, double free.
    BadHandle = -10,
    /// Cache-attribute conflict with a live mapping.
    AttrConflict = -11,
    /// Not allowed now (e.g. destroying the active mm).
    Busy = -12,
    /// A bad argument (prot / attr value, NULL pointer).
    BadArgument = -13,
    /// Not allowed in an interrupt handler (between `sh4mm_irq_enter` and
    /// `sh4mm_irq_exit`), or the library was re-entered from an exception
    /// taken inside it.
    InInterrupt = -14,
    /// The address space has no users left (its tasks exited).
    Exited = -15,
    /// The library's bookkeeping heap could not grow (the frame allocator
    /// may still have frames).
    OutOfMemory = -16,
}

fn code(e: MmError) -> i32 {
    (match e {
        MmError::OutOfFrames => Sh4mmError::OutOfFrames,
        MmError::OutOfMemory => Sh4mmError::OutOfMemory,
        MmError::WindowExhausted => Sh4mmError::WindowExhausted,
        MmError::ZeroSize => Sh4mmError::ZeroSize,
        MmError::Unaligned => Sh4mmError::Unaligned,
        MmError::Overflow => Sh4mmError::Overflow,
        MmError::BadAddress(_) => Sh4mmError::BadAddress,
        MmError::NotMapped(_) => Sh4mmError::NotMapped,
        MmError::AlreadyMapped(_) => Sh4mmError::AlreadyMapped,
        MmError::BadHandle(_) => Sh4mmError::BadHandle,
        MmError::AttrConflict { .. } => Sh4mmError::AttrConflict,
        MmError::Busy => Sh4mmError::Busy,
        MmError::Exited => Sh4mmError::Exited,
        MmError::InInterrupt => Sh4mmError::InInterrupt,
    }) as i32
}

/// Page protections for [`sh4mm_map_user`] (the SH-4 PR field).
pub const SH4MM_PROT_KERNEL_READ: i32 = 0;
/// Privileged read/write.
pub const SH4MM_PROT_KERNEL_RW: i32 = 1;
/// User (and privileged) read-only.
pub const SH4MM_PROT_USER_READ: i32 = 2;
/// User (and privileged) read/write.
pub const SH4MM_PROT_USER_RW: i32 = 3;
/// Cache attribute: cached, copy-back.
pub const SH4MM_ATTR_WRITE_BACK: i32 = 0;
/// Cache attribute: cached, write-through.
pub const SH4MM_ATTR_WRITE_THROUGH: i32 = 1;
/// Cache attribute: uncached.
pub const SH4MM_ATTR_UNCACHED: i32 = 2;
/// [`sh4mm_tlb_exception`]: fixed, return from the exception.
pub const SH4MM_FAULT_RETRY: i32 = 0;
/// [`sh4mm_tlb_exception`]: a fault on a user address, for the OS to handle.
pub const SH4MM_FAULT_USER: i32 = 1;
/// [`sh4mm_tlb_exception`]: a kernel fault (oops).
pub const SH4MM_FAULT_OOPS: i32 = 2;

/// What the OS provides.
#[repr(C)]
pub struct Sh4mmOs {
    /// Allocates `count` physically contiguous frames; returns the first
    /// frame number (physical address >> 12), or 0 when out of memory.
    pub alloc_frames: Option<extern "C" fn(count: u32) -> u32>,
    /// Frees frames from `alloc_frames` (same count).
    pub free_frames: Option<extern "C" fn(pfn: u32, count: u32)>,
    /// Called if the library hits a bug (a Rust panic) with the message,
    /// `len` bytes, not NUL-terminated; the library then stops (it loops
    /// if this returns). May be NULL.
    pub panic: Option<extern "C" fn(msg: *const c_char, len: usize)>,
}

struct OsFrames {
    alloc: extern "C" fn(u32) -> u32,
    free: extern "C" fn(u32, u32),
}

impl FrameAllocator for OsFrames {
    fn alloc(&mut self, count: u32) -> Option<Frame> {
        match (self.alloc)(count) {
            0 => None,
            pfn => Frame::from_pfn(pfn),
        }
    }
    fn free(&mut self, first: Frame, count: u32) {
        (self.free)(first.pfn(), count)
    }
}

type Manager = MemoryManager<Sh4Hw, P1Access, OsFrames>;
// SAFETY: the C ABI is linked into a privileged SH-4 kernel (its contract),
// and this library is the only user of the MMU and of the frames it gets
// from the OS's allocator.
const HW: Sh4Hw = unsafe { Sh4Hw::new() };
// SAFETY: as for `HW`.
const PHYS: P1Access = unsafe { P1Access::new() };
static MM: IrqLock<Option<Manager>, Sh4Hw> = IrqLock::new(HW, None);
/// Set once by `sh4mm_init`; read without a lock by the TLB-exception path.
static FAULT_CTX: Once<FaultContext> = Once::new();
static PANIC_HOOK: Once<extern "C" fn(*const c_char, usize)> = Once::new();

#[global_allocator]
static HEAP: KernelHeap = KernelHeap::empty();

/// The panic message, formatted without the heap (which may be what broke).
struct MsgBuf {
    buf: [u8; 256],
    len: usize,
}

impl Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Not reachable from bad input (every entry point validates); a panic is
    // a bug in the library (or its heap ran out). Tell the OS why, then stop
    // here rather than corrupt it.
    let mut m = MsgBuf { buf: [0; 256], len: 0 };
    let _ = write!(m, "sh4mm: {info}");
    if let Some(hook) = PANIC_HOOK.get() {
        hook(m.buf.as_ptr().cast(), m.len);
    }
    loop {
        core::hint::spin_loop();
    }
}

fn with_mm(f: impl FnOnce(&mut Manager) -> Result<i32, MmError>) -> i32 {
    match MM.lock() {
        Err(_) => Sh4mmError::InInterrupt as i32,
        Ok(mut g) => match g.as_mut() {
            None => Sh4mmError::NotInitialised as i32,
            Some(mm) => f(mm).unwrap_or_else(code),
        },
    }
}

fn prot(p: i32) -> Option<Prot> {
    Some(match p {
        SH4MM_PROT_KERNEL_READ => Prot::KernelRead,
        SH4MM_PROT_KERNEL_RW => Prot::KernelRw,
        SH4MM_PROT_USER_READ => Prot::UserRead,
        SH4MM_PROT_USER_RW => Prot::UserRw,
        _ => return None,
    })
}

fn attr(a: i32) -> Option<CacheAttr> {
    Some(match a {
        SH4MM_ATTR_WRITE_BACK => CacheAttr::WriteBack,
        SH4MM_ATTR_WRITE_THROUGH => CacheAttr::WriteThrough,
        SH4MM_ATTR_UNCACHED => CacheAttr::Uncached,
        _ => return None,
    })
}

fn out<T>(p: *mut T, v: T) -> Result<i32, MmError> {
    if !p.is_null() {
        // SAFETY: the caller passes a valid pointer or NULL (documented).
        unsafe { p.write(v) };
    }
    Ok(0)
}

/// Sets the library up: `os` hooks, a heap of `heap_size` bytes at `heap`
/// (P1 memory the library owns from now on), `swapper_pg_dir`, TTB, ASID 0.
/// Then call [`sh4mm_enable_mmu`].
///
/// # Safety
/// `os` points to valid hooks; `heap` is `heap_size` bytes of unused memory.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_init(os: *const Sh4mmOs, heap: *mut u8, heap_size: u32) -> i32 {
    // SAFETY: the caller guarantees `os` is valid or NULL.
    let Some(os) = (unsafe { os.as_ref() }) else { return Sh4mmError::BadArgument as i32 };
    let (Some(alloc), Some(free)) = (os.alloc_frames, os.free_frames) else {
        return Sh4mmError::BadArgument as i32;
    };
    if heap.is_null() || heap_size < 4096 {
        return Sh4mmError::BadArgument as i32;
    }
    let Ok(mut guard) = MM.lock() else { return Sh4mmError::InInterrupt as i32 };
    if guard.is_some() {
        return Sh4mmError::Busy as i32;
    }
    if let Some(hook) = os.panic {
        PANIC_HOOK.call_once(|| hook);
    }
    // SAFETY: the caller hands over `heap_size` bytes at `heap`; init runs once.
    unsafe { HEAP.init(heap, heap_size as usize) };
    match MemoryManager::new(HW, PHYS, OsFrames { alloc, free }) {
        Ok(mm) => {
            let ctx = mm.fault_context();
            FAULT_CTX.call_once(|| ctx);
            *guard = Some(mm);
            0
        }
        Err(e) => code(e),
    }
}

/// Turns address translation on (MMUCR = AT|TI).
#[no_mangle]
pub extern "C" fn sh4mm_enable_mmu() -> i32 {
    with_mm(|mm| {
        mm.enable_mmu();
        Ok(0)
    })
}

/// The TLB-exception slow path, for the OS's exception handler (the
/// assembly fast path at VBR+0x400 falls back to the OS, which calls this
/// for EXPEVT 0x040/0x060/0x080/0x0A0/0x0C0/0x0E0/0x100). Returns
/// `SH4MM_FAULT_RETRY`, `SH4MM_FAULT_USER` or `SH4MM_FAULT_OOPS`. Takes no
/// lock the interrupted code might hold.
#[no_mangle]
pub extern "C" fn sh4mm_tlb_exception(expevt: u32, tea: u32, user: i32) -> i32 {
    let Some(ctx) = FAULT_CTX.get() else { return SH4MM_FAULT_OOPS };
    let exc = Exception { expevt, tea: VirtAddr::new(tea), user: user != 0 };
    match fault::handle_tlb_exception(&HW, &PHYS, ctx, &exc) {
        FaultOutcome::Retry => SH4MM_FAULT_RETRY,
        FaultOutcome::User(_) => SH4MM_FAULT_USER,
        FaultOutcome::Oops(_) => SH4MM_FAULT_OOPS,
    }
}

/// The OS's interrupt entry calls this before running interrupt handlers
/// (nesting allowed): until the matching [`sh4mm_irq_exit`], operations an
/// interrupt handler may not call return `SH4MM_ERROR_IN_INTERRUPT`, and
/// `sh4mm_vfree` / `sh4mm_dma_free_coherent` are queued.
#[no_mangle]
pub extern "C" fn sh4mm_irq_enter() {
    irqlock::irq_enter();
}

/// Ends what [`sh4mm_irq_enter`] began.
#[no_mangle]
pub extern "C" fn sh4mm_irq_exit() {
    irqlock::irq_exit();
}

/// Does the frees interrupt handlers queued (every task-context call does
/// them too); returns how many, or a negative error.
#[no_mangle]
pub extern "C" fn sh4mm_run_deferred() -> i32 {
    with_mm(|mm| Ok(mm.run_deferred() as i32))
}

/// Creates an address space; its handle goes to `*mm_out`.
///
/// # Safety
/// `mm_out` is valid for a write or NULL.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_mm_create(mm_out: *mut u64) -> i32 {
    with_mm(|mm| out(mm_out, mm.mm_create()?.to_raw()))
}

/// Drops a task's share of an address space (its user mappings go with the
/// last one; the OS gets no callback for the frames: unmap them first if it
/// must free them).
#[no_mangle]
pub extern "C" fn sh4mm_mm_destroy(mm_handle: u64) -> i32 {
    with_mm(|mm| mm.mm_put(MmId::from_raw(mm_handle), |_, _| {}).map(|_| 0))
}

/// Makes `mm_handle` the active address space (TTB, ASID).
#[no_mangle]
pub extern "C" fn sh4mm_switch_mm(mm_handle: u64) -> i32 {
    with_mm(|mm| mm.switch_mm(MmId::from_raw(mm_handle)).map(|_| 0))
}

/// Switches back to the kernel's own address space (`swapper_pg_dir`).
#[no_mangle]
pub extern "C" fn sh4mm_switch_kernel() -> i32 {
    with_mm(|mm| mm.switch_mm(INIT_MM).map(|_| 0))
}

/// Maps `pages` pages at user address `va` to physical `pa` (contiguous).
#[no_mangle]
pub extern "C" fn sh4mm_map_user(mm_handle: u64, va: u32, pa: u32, pages: u32, prot_: i32, attr_: i32) -> i32 {
    let (Some(p), Some(a)) = (prot(prot_), attr(attr_)) else { return Sh4mmError::BadArgument as i32 };
    let (Some(page), Some(frame)) =
        (Page::from_start(VirtAddr::new(va)), PhysAddr::new(pa).and_then(Frame::from_start))
    else {
        return Sh4mmError::Unaligned as i32;
    };
    with_mm(|mm| mm.map_user(MmId::from_raw(mm_handle), page, frame, pages, p, a).map(|_| 0))
}

/// Unmaps user pages (and flushes them); returns how many were mapped.
#[no_mangle]
pub extern "C" fn sh4mm_unmap_user(mm_handle: u64, va: u32, pages: u32) -> i32 {
    let Some(page) = Page::from_start(VirtAddr::new(va)) else { return Sh4mmError::Unaligned as i32 };
    with_mm(|mm| mm.unmap_user(MmId::from_raw(mm_handle), page, pages, |_, _| {}).map(|n| n as i32))
}

/// Allocates `size` bytes of virtually contiguous kernel memory.
///
/// # Safety
/// `va_out` is valid for a write or NULL.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_vmalloc(size: u32, va_out: *mut u32) -> i32 {
    with_mm(|mm| out(va_out, mm.vmalloc(size as usize)?.as_u32()))
}

/// Frees a `sh4mm_vmalloc` area.
#[no_mangle]
pub extern "C" fn sh4mm_vfree(va: u32) -> i32 {
    with_mm(|mm| mm.vfree(VirtAddr::new(va)).map(|_| 0))
}

/// Maps `size` bytes of physical `pa` (page aligned) with `attr`.
///
/// # Safety
/// `va_out` is valid for a write or NULL.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_ioremap(pa: u32, size: u32, attr_: i32, va_out: *mut u32) -> i32 {
    let Some(a) = attr(attr_) else { return Sh4mmError::BadArgument as i32 };
    let Some(pa) = PhysAddr::new(pa) else { return Sh4mmError::Overflow as i32 };
    with_mm(|mm| out(va_out, mm.ioremap(pa, size as usize, a)?.as_u32()))
}

/// Unmaps an `sh4mm_ioremap` area.
#[no_mangle]
pub extern "C" fn sh4mm_iounmap(va: u32) -> i32 {
    with_mm(|mm| mm.iounmap(VirtAddr::new(va)).map(|_| 0))
}

/// Allocates a zeroed, physically contiguous, uncached buffer.
///
/// # Safety
/// `va_out` and `phys_out` are valid for a write or NULL.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_dma_alloc_coherent(size: u32, va_out: *mut u32, phys_out: *mut u32) -> i32 {
    with_mm(|mm| {
        let b = mm.dma_alloc_coherent(size as usize)?;
        out(phys_out, b.phys.as_u32())?;
        out(va_out, b.va.as_u32())
    })
}

/// Frees a `sh4mm_dma_alloc_coherent` buffer.
#[no_mangle]
pub extern "C" fn sh4mm_dma_free_coherent(va: u32) -> i32 {
    with_mm(|mm| mm.dma_free_coherent(VirtAddr::new(va)).map(|_| 0))
}

/// Physical address `va` maps to in `mm_handle` (kernel addresses too).
///
/// # Safety
/// `pa_out` is valid for a write or NULL.
#[no_mangle]
pub unsafe extern "C" fn sh4mm_translate(mm_handle: u64, va: u32, pa_out: *mut u32) -> i32 {
    with_mm(|mm| out(pa_out, mm.translate(MmId::from_raw(mm_handle), VirtAddr::new(va))?.0.as_u32()))
}

/// Colour-correct copy of a user page for `user_va` (fork, copy-on-write).
#[no_mangle]
pub extern "C" fn sh4mm_copy_user_page(dst_pa: u32, src_pa: u32, user_va: u32) -> i32 {
    let (Some(d), Some(s)) =
        (PhysAddr::new(dst_pa).and_then(Frame::from_start), PhysAddr::new(src_pa).and_then(Frame::from_start))
    else {
        return Sh4mmError::Unaligned as i32;
    };
    with_mm(|mm| mm.copy_user_page(d, s, VirtAddr::new(user_va)).map(|_| 0))
}

/// Calls the OS's `panic` hook (from `sh4mm_init`) with the message
/// "sh4mm_check_panic_hook: the panic hook is wired", the way a bug in the
/// library would reach it, so that an OS can check its hook once. It does not
/// return (the hook must not either); before `sh4mm_init` there is no hook and
/// the library stops in a loop.
#[no_mangle]
pub extern "C" fn sh4mm_check_panic_hook() -> ! {
    panic!("sh4mm_check_panic_hook: the panic hook is wired")
}

/// A short description of an error code.
#[no_mangle]
pub extern "C" fn sh4mm_strerror(err: i32) -> *const u8 {
    let s: &'static [u8] = match err {
        0 => b"ok\0",
        -1 => b"not initialised\0",
        -2 => b"out of frames\0",
        -3 => b"window exhausted\0",
        -4 => b"zero size\0",
        -5 => b"unaligned\0",
        -6 => b"overflow\0",
        -7 => b"bad address\0",
        -8 => b"not mapped\0",
        -9 => b"already mapped\0",
        -10 => b"bad handle\0",
        -11 => b"cache attribute conflict\0",
        -12 => b"busy\0",
        -13 => b"bad argument\0",
        -14 => b"not allowed in interrupt context\0",
        -15 => b"address space exited\0",
        -16 => b"out of heap memory\0",
        _ => b"unknown error\0",
    };
    s.as_ptr()
}
