//! An out-of-tree OS on sh4-mm with a Dreamcast-like memory map (16 MiB at
//! phys 0x0c00_0000, linked at 0x8c01_0000): its own boot code
//! (`boot/start.S`), vectors and linker script (`link.x`), a
//! `#[global_allocator]`, and nothing else from the sh4-mm repository but
//! the library. It brings up the MM, vmallocs 64 KiB, touches every page
//! through TLB misses, checks what it reads, and prints one result line.
//!
//! Build: `scripts/sh4-cargo --manifest-path examples/dreamcast-like/Cargo.toml build --release`.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use sh4_mm::fault::{self, Exception, FaultContext, FaultOutcome};
use sh4_mm::frame::{BitmapFrames, P1Access};
use sh4_mm::heap::KernelHeap;
use sh4_mm::sh4::Sh4Hw;
use sh4_mm::{Frame, MemoryManager, VirtAddr};

// SAFETY: this OS runs privileged on the SH-4 and gives the MMU, and the
// frames handed to the allocator below, to the memory manager alone.
const HW: Sh4Hw = unsafe { Sh4Hw::new() };
// SAFETY: as for `HW`.
const PHYS: P1Access = unsafe { P1Access::new() };

/// The MM allocates its bookkeeping (area lists, ASID maps): a heap is an
/// obligation of every OS using it. 256 KiB of .bss here.
#[global_allocator]
static HEAP: KernelHeap = KernelHeap::empty();
static mut HEAP_SPACE: [u8; 256 * 1024] = [0; 256 * 1024];

/// What the TLB-exception path needs; set once, before the MMU is on.
static FAULT_CTX: spin::Once<FaultContext> = spin::Once::new();
static TLB_EXCEPTIONS: AtomicU32 = AtomicU32::new(0);

/// Frames for the MM: phys 0x0c20_0000 up to the end of the 16 MiB
/// (link.x asserts the image ends below). Under our runners the raw image
/// was loaded at 0x0c80_0000 and copied down by `_start`; that copy is free
/// memory now.
const FIRST_FREE_PFN: u32 = 0x0C200;
const FREE_FRAMES: u32 = 0x0D000 - 0x0C200;

/// SCIF (channel 2), as on the Dreamcast: poll the TX FIFO count.
struct Scif;
impl Write for Scif {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        const SCFTDR2: usize = 0xFFE8_000C;
        const SCFSR2: usize = 0xFFE8_0010;
        const SCFDR2: usize = 0xFFE8_001C;
        for b in s.bytes() {
            // SAFETY: P4 SCIF registers, always mapped.
            unsafe {
                while ((SCFDR2 as *const u16).read_volatile() >> 8) & 0x1F >= 16 {}
                (SCFTDR2 as *mut u8).write_volatile(b);
                let sr = (SCFSR2 as *const u16).read_volatile();
                (SCFSR2 as *mut u16).write_volatile(sr & !0x60);
            }
        }
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{ let _ = writeln!(Scif, $($arg)*); }};
}

/// Ends the run: the runners' sentinel, then the emulated r2d/landisk
/// power-off register (a Dreamcast would return to its loader instead).
fn exit(code: u32) -> ! {
    println!("@@EXIT {code}@@");
    // SAFETY: 0xA400_0030 is the r2d FPGA power-off register (P2, 16 bit).
    unsafe { (0xA400_0030usize as *mut u16).write_volatile(1) };
    loop {
        core::hint::spin_loop();
    }
}

/// Called by `dc_exc` (boot/start.S) for every exception, with SR.BL = 1.
/// The OS's obligations for each outcome: `Retry` returns (RTE re-runs the
/// access); `User` would be a signal for a user task (none here); `Oops` is
/// a kernel bug or a bad kernel access: stop.
#[no_mangle]
extern "C" fn dc_exception(expevt: u32, tea: u32, spc: u32) {
    if let Some(ctx) = FAULT_CTX.get() {
        TLB_EXCEPTIONS.fetch_add(1, Ordering::Relaxed);
        let exc = Exception { expevt, tea: VirtAddr::new(tea), user: false };
        match fault::handle_tlb_exception(&HW, &PHYS, ctx, &exc) {
            FaultOutcome::Retry => return,
            FaultOutcome::User(info) | FaultOutcome::Oops(info) => {
                println!("OOPS: {:?} at {} EXPEVT={expevt:#05x} SPC={spc:#010x}", info.kind, info.addr);
                exit(102)
            }
        }
    }
    println!("OOPS: exception EXPEVT={expevt:#05x} TEA={tea:#010x} SPC={spc:#010x} before the MM");
    exit(102)
}

#[no_mangle]
extern "C" fn dc_main() -> ! {
    // SAFETY: TE|RE on the SCIF: the transmitter must be on to drain.
    unsafe { (0xFFE8_0008usize as *mut u16).write_volatile(0x0030) };
    // SAFETY: HEAP_SPACE is used by nothing else; init runs once, first.
    unsafe { HEAP.init((&raw mut HEAP_SPACE).cast(), 256 * 1024) };
    println!("dreamcast-like: sh4-mm with its own boot code, linked at 0x8c010000");
    println!("running 1 tests");
    let frames =
        BitmapFrames::<{ FREE_FRAMES as usize / 32 }>::new(Frame::from_pfn(FIRST_FREE_PFN).unwrap(), FREE_FRAMES);
    let mut mm = MemoryManager::new(HW, PHYS, frames).expect("MemoryManager::new");
    FAULT_CTX.call_once(|| mm.fault_context());
    mm.enable_mmu();
    const SIZE: usize = 64 * 1024;
    let va = mm.vmalloc(SIZE).expect("vmalloc");
    let before = TLB_EXCEPTIONS.load(Ordering::Relaxed);
    let words = (0..SIZE).step_by(4096).map(|off| va.as_u32() + off as u32);
    for (i, a) in words.clone().enumerate() {
        // SAFETY: [va, va + SIZE) is ours, just vmalloc'ed.
        unsafe { (a as *mut u32).write_volatile(0xDC00_0000 | i as u32) };
    }
    let ok = words.enumerate().all(|(i, a)| {
        // SAFETY: as above.
        unsafe { (a as *const u32).read_volatile() == 0xDC00_0000 | i as u32 }
    });
    let misses = TLB_EXCEPTIONS.load(Ordering::Relaxed) - before;
    let pages = SIZE / 4096;
    mm.vfree(va).expect("vfree");
    let pass = ok && misses as usize >= pages;
    println!(
        "test vmalloc_pages_through_tlb_misses ... {} ({pages} pages at {va}, {misses} TLB exceptions)",
        if pass { "ok" } else { "FAILED" }
    );
    println!("{} passed, {} failed", pass as u32, !pass as u32);
    exit(if pass { 0 } else { 1 })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("KERNEL PANIC: {info}");
    exit(101)
}
