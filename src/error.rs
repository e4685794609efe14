//! The one error type of the crate. Every fallible operation returns it; no
//! operation panics on bad input.

use crate::addr::{PhysAddr, VirtAddr};
use crate::pte::CacheAttr;
use core::fmt;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The frame allocator had no frame (nothing was changed).
    OutOfFrames,
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
    /// The handle (mm, area, slot) is stale or was freed already.
    BadHandle,
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
            MmError::WindowExhausted => write!(f, "address window exhausted"),
            MmError::ZeroSize => write!(f, "zero size"),
            MmError::Unaligned => write!(f, "address or size not page aligned"),
            MmError::Overflow => write!(f, "range overflows its region"),
            MmError::BadAddress(va) => write!(f, "address {va} is outside the allowed region"),
            MmError::NotMapped(va) => write!(f, "nothing mapped at {va}"),
            MmError::AlreadyMapped(va) => write!(f, "already mapped at {va}"),
            MmError::BadHandle => write!(f, "stale or freed handle"),
            MmError::AttrConflict { phys, requested, existing } => {
                write!(f, "cache attribute conflict at {phys}: requested {requested:?}, live mapping is {existing:?}")
            }
            MmError::Busy => write!(f, "busy"),
            MmError::Exited => write!(f, "address space has exited (no users left)"),
            MmError::InInterrupt => write!(f, "not allowed in interrupt context"),
        }
    }
}

/// Result with [`MmError`].
pub type MmResult<T> = Result<T, MmError>;
