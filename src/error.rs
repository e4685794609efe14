//! The one error type of the crate. Every fallible operation returns it; no
//! operation panics on bad input.

use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::MmId;
use crate::pte::CacheAttr;
use core::fmt;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The frame allocator had no frame (nothing was changed).
    OutOfFrames,
    /// The heap this crate keeps its bookkeeping in (the OS's
    /// `#[global_allocator]`) could not grow (nothing was changed).
    OutOfMemory,
    /// The window (consistent, vmalloc or fixmap) has no free range this big.
    WindowExhausted,
    /// A size of zero was asked for.
    ZeroSize,
    /// An address or size is not page aligned.
    Unaligned,
    /// `start + size` overflows or leaves the allowed region.
    Overflow,
    /// The address is not in the region this operation works on.
    BadAddress(VirtAddr),
    /// Nothing is mapped at the address.
    NotMapped(VirtAddr),
    /// Something is already mapped at the address.
    AlreadyMapped(VirtAddr),
    /// The handle is stale, was freed already, or names nothing this
    /// operation accepts (e.g. `vfree` of an ioremap area).
    BadHandle(Handle),
    /// A physical range would be mapped with a cache attribute that conflicts
    /// with a live mapping of the same range.
    AttrConflict {
        /// Physical address where the ranges overlap.
        phys: PhysAddr,
        /// The attribute asked for.
        requested: CacheAttr,
        /// The attribute of the live mapping.
        existing: CacheAttr,
    },
    /// The operation is not allowed in the current state (e.g. destroying the
    /// active mm, or a slot that is in use).
    Busy,
    /// The address space has no users left (its tasks exited, `mm_put` tore
    /// its user mappings down); it lives on only while borrowed.
    Exited,
    /// The operation may not run in interrupt context (see
    /// [`crate::irqlock`] for what an interrupt handler may call), or an
    /// interrupt-safe lock was already held by the interrupted code.
    InInterrupt,
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmError::OutOfFrames => write!(f, "out of physical frames"),
            MmError::OutOfMemory => write!(f, "out of heap memory for bookkeeping"),
            MmError::WindowExhausted => write!(f, "address window exhausted"),
            MmError::ZeroSize => write!(f, "zero size"),
            MmError::Unaligned => write!(f, "address or size not page aligned"),
            MmError::Overflow => write!(f, "range overflows its region"),
            MmError::BadAddress(va) => write!(f, "address {va} is outside the allowed region"),
            MmError::NotMapped(va) => write!(f, "nothing mapped at {va}"),
            MmError::AlreadyMapped(va) => write!(f, "already mapped at {va}"),
            MmError::BadHandle(h) => write!(f, "stale, freed or wrong handle: {h}"),
            MmError::AttrConflict { phys, requested, existing } => {
                write!(f, "cache attribute conflict at {phys}: requested {requested:?}, live mapping is {existing:?}")
            }
            MmError::Busy => write!(f, "busy"),
            MmError::Exited => write!(f, "address space has exited (no users left)"),
            MmError::InInterrupt => write!(f, "not allowed in interrupt context"),
        }
    }
}

/// Which handle an [`MmError::BadHandle`] is about: the value the caller
/// passed, so a log says which one was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handle {
    /// An address space (a task's `mm`/`active_mm`, or an id passed in).
    /// `None`: the task had no address space where one was needed.
    Mm(Option<MmId>),
    /// A vmalloc, ioremap or DMA-coherent area, by the address passed.
    Area(VirtAddr),
    /// A fixmap slot number.
    FixmapSlot(u32),
    /// A memtype reservation or an io-mapping, by its first physical address.
    Reservation(PhysAddr),
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::Mm(Some(id)) => write!(f, "mm {:#x}", id.to_raw()),
            Handle::Mm(None) => write!(f, "no mm"),
            Handle::Area(va) => write!(f, "area at {va}"),
            Handle::FixmapSlot(s) => write!(f, "fixmap slot {s}"),
            Handle::Reservation(pa) => write!(f, "reservation at {pa}"),
        }
    }
}

/// Result with [`MmError`].
pub type MmResult<T> = Result<T, MmError>;
