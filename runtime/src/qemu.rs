//! Ending the run: a sentinel line for the host runner, then the r2d FPGA
//! power-off register (QEMU exits 0; the runner reads the sentinel).

use core::ptr::NonNull;
use volatile::VolatilePtr;

/// Prints `@@EXIT code@@` and powers the board off.
pub fn exit(code: u32) -> ! {
    println!("@@EXIT {code}@@");
    // SAFETY: 0xA400_0030 is the r2d FPGA POWOFF register (P2, 16-bit).
    let powoff = unsafe { VolatilePtr::new(NonNull::new_unchecked(0xA400_0030usize as *mut u16)) };
    powoff.write(1);
    loop {
        core::hint::spin_loop();
    }
}
