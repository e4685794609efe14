//! TMU0 and the interrupt controller's priority register, for the tests that
//! land timer interrupts (inject.rs, irqsweep.rs, soak.rs): one definition of
//! the registers they program.

use core::ptr::NonNull;
use volatile::VolatilePtr;

/// A TMU0 / INTC register.
pub fn reg<T>(addr: usize) -> VolatilePtr<'static, T> {
    // SAFETY: TMU0 / INTC registers in P4, accessed at their documented widths.
    unsafe { VolatilePtr::new(NonNull::new_unchecked(addr as *mut T)) }
}
/// Timer start register (bit 0: TMU0 counts).
pub const TSTR: usize = 0xFFD8_0004;
/// TMU0 constant (reload) register.
pub const TCOR0: usize = 0xFFD8_0008;
/// TMU0 counter.
pub const TCNT0: usize = 0xFFD8_000C;
/// TMU0 control: UNIE (bit 5), UNF (bit 8), clock select.
pub const TCR0: usize = 0xFFD8_0010;
/// INTC priority A (TMU0 in bits 15:12).
pub const IPRA: usize = 0xFFD0_0004;
