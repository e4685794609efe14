//! SCIF (channel 2, 0xFFE8_0000) polling console: QEMU's second serial port,
//! GXemul landisk's console.

use core::fmt::{self, Write};
use core::ptr::NonNull;
use volatile::VolatilePtr;

const SCIF: usize = 0xFFE8_0000;
const SCSCR2: usize = SCIF + 0x08;
const SCFTDR2: usize = SCIF + 0x0C;
const SCFSR2: usize = SCIF + 0x10;
/// SCFSR2.TDFE | SCFSR2.TEND.
const TDFE_TEND: u16 = 0x60;
const SCFDR2: usize = SCIF + 0x1C;
/// SCFDR2 bits 12:8: bytes waiting in the 16-byte transmit FIFO.
const TX_COUNT_SHIFT: u32 = 8;
const TX_COUNT_MASK: u16 = 0x1F;
const TX_FIFO_SIZE: u16 = 16;

fn reg16(addr: usize) -> VolatilePtr<'static, u16> {
    // SAFETY: SCIF registers are in P4, always mapped, 16-bit aligned.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut u16)) }
}

fn reg8(addr: usize) -> VolatilePtr<'static, u8> {
    // SAFETY: SCFTDR2 is an 8-bit register in P4.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut u8)) }
}

/// TE|RE: the transmitter must be enabled for the FIFO to drain.
/// Enables the SCIF transmitter (call once, first).
pub fn init() {
    reg16(SCSCR2).write(0x0030);
}

/// Waits for room in the transmit FIFO (the count in SCFDR2), then queues
/// `c`. Polling the count rather than SCFSR2.TDFE works on all three SH-4s
/// we know: on hardware TDFE only means "at most the trigger level left"
/// and must be cleared by software; GXemul resets SCFSR2 to 0, so TDFE
/// stays clear until the first byte has gone out (a TDFE poll before the
/// first byte waits forever); QEMU sends at once and reads the count as 0.
fn putc(c: u8) {
    while (reg16(SCFDR2).read() >> TX_COUNT_SHIFT) & TX_COUNT_MASK >= TX_FIFO_SIZE {}
    reg8(SCFTDR2).write(c);
    // Acknowledge TDFE/TEND as the manual asks after queueing data (they
    // are interrupt sources; nothing here waits on them).
    reg16(SCFSR2).update(|v| v & !TDFE_TEND);
}

/// The console as a `fmt::Write`.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

/// Writes `args` to the console.
pub fn print(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Prints to the SCIF console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the SCIF console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
