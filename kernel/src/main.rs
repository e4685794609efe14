//! The sh4-mm demo kernel: boots on QEMU r2d, brings up the MMU and runs
//! the on-target test suite. Output: one line per test, then
//! `N passed, M failed` and `@@EXIT n@@`, then QEMU is powered off.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
// The board runtime: entry, vectors, exception frame and handler, console
// (`println!`), exit, heap.
#[macro_use]
extern crate sh4_rt;

use sh4_rt::{console, exc, heap, qemu};

mod bench;
mod emu;
mod harness;
mod inactive_mm;
mod inject;
mod irqsweep;
mod soak;
mod tests;
mod tmu;

/// Called by sh4-rt's `_start` (runtime/asm/start.S) on the boot stack, bank 0, IMASK 15, BL clear.
#[no_mangle]
pub extern "C" fn kmain() -> ! {
    console::init();
    println!("sh4-mm kernel: booted at P1, VBR set");
    heap::init();
    selftest(cmdline());
    if cmdline().windows(5).any(|w| w == b"bench") {
        bench::run();
        qemu::exit(0);
    }
    let (passed, failed) = harness::run_all();
    println!("{passed} passed, {failed} failed");
    qemu::exit(if failed == 0 { 0 } else { 1 })
}

/// The kernel command line (see `emu::cmdline`).
fn cmdline() -> &'static [u8] {
    emu::cmdline()
}

extern "C" {
    fn sh4mm_selftest_bl_exception();
}

/// `-append selftest=X` makes the kernel fail in one specific way, so the
/// host runner can be shown to catch it (scripts/test.sh).
fn selftest(cmdline: &[u8]) {
    let has = |w: &[u8]| cmdline.windows(w.len()).any(|x| x == w);
    if has(b"selftest=panic") {
        panic!("deliberate panic (selftest)");
    }
    if has(b"selftest=hang") {
        println!("selftest: hanging");
        #[allow(clippy::empty_loop)]
        loop {}
    }
    if has(b"selftest=reset") {
        println!("selftest: exception with SR.BL=1");
        // SAFETY: deliberately resets the (emulated) machine.
        unsafe { sh4mm_selftest_bl_exception() };
    }
    if has(b"selftest=oops") {
        println!("selftest: unmapped P3 access without a probe");
        tests::oops_selftest();
    }
    if has(b"selftest=multihit") {
        println!("selftest: fixmap remap with the unmap flush forgotten");
        let _ = tests::mmu_bringup();
        let r = tests::MM.lock().ok().and_then(|mut g| g.as_mut().map(|mm| tests::fixmap_remap_sequence(mm, true)));
        println!("selftest: no multiple hit was raised: {r:?}");
    }
    if has(b"selftest=fail") {
        harness::fail_one_more();
    }
    if has(b"selftest=leak") {
        harness::leak_one_more();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("KERNEL PANIC: {info}");
    qemu::exit(101)
}
