//! SCIF (channel 2, 0xFFE8_0000) polling console: QEMU's second serial port.

use core::fmt::{self, Write};
use core::ptr::NonNull;
use volatile::VolatilePtr;

const SCIF: usize = 0xFFE8_0000;
const SCSCR2: usize = SCIF + 0x08;
const SCFTDR2: usize = SCIF + 0x0C;
const SCFSR2: usize = SCIF + 0x10;
const TDFE: u16 = 0x20;

fn reg16(addr: usize) -> VolatilePtr<'static, u16> {
    // SAFETY: SCIF registers are in P4, always mapped, 16-bit aligned.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut u16)) }
}

fn reg8(addr: usize) -> VolatilePtr<'static, u8> {
    // SAFETY: SCFTDR2 is an 8-bit register in P4.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut u8)) }
}

/// TE|RE: polling on TDFE only works with TE set.
pub fn init() {
    reg16(SCSCR2).write(0x0030);
}

fn putc(c: u8) {
    while reg16(SCFSR2).read() & TDFE == 0 {}
    reg8(SCFTDR2).write(c);
    reg16(SCFSR2).update(|v| v & !0x60);
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

pub fn print(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
