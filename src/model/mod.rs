//! A software model of the SH-4 MMU and a simulated machine, for host tests.
//!
//! * [`Sh4Model`] implements [`crate::MmuHw`]: PTEH/PTEL/TTB/MMUCR, LDTLB at
//!   MMUCR.URC, a 64-entry UTLB and a 4-entry ITLB with ASIDs, the SH bit and
//!   SV, the memory-mapped (and associative) UTLB array writes, SR.IMASK and
//!   SR.BL, and one-shot "interrupts" that land on the Nth hardware operation.
//!   A lookup that matches two entries is a multiple hit (EXPEVT 0x140); an
//!   LDTLB that creates a duplicate is counted as a latent multiple hit.
//! * [`PhysMemory`] is simulated RAM; [`FrameArena`] a frame allocator over
//!   it that counts frames and can fail on the Nth call.
//! * [`Machine`] executes loads, stores and fetches like the CPU: TLB miss →
//!   fast path with BL=1 → slow path ([`crate::fault::handle_tlb_exception`])
//!   → retry, and checks that every translation the TLB produced agrees with
//!   the page tables (a stale entry is reported, not silently used).
//! * [`Mutant`] wraps the model (or any [`crate::MmuHw`]) and loses one kind
//!   of operation (a flush, a load's invalidate, MMUCR.TI, a purge): the
//!   mutations the hardware can express, for tests that must show they fail.
//! * [`OpCache`] (attached with [`Sh4Model::attach_memory`]) models the
//!   virtually indexed operand cache, so that aliasing bugs become visible.

extern crate std;

mod cache;
mod machine;
mod mem;
mod mmu;
mod mutant;

pub use cache::{Caching, OpCache};
pub use machine::{Machine, MachineError};
pub use mem::{FrameArena, PhysMemory};
pub use mmu::{HwEvent, Sh4Model, TlbEntry};
pub use mutant::{Lost, Mutant};
