//! # sh4-mm
//!
//! Memory management for bare-metal SH-4 (SH7750/SH7751R) kernels.
//!
//! * [`pgtable`]: two-level page tables whose PTEs are the PTEL image.
//! * [`MemoryManager`]: `swapper_pg_dir`, address spaces with `mm` /
//!   `active_mm` borrowing, 8-bit ASIDs with generations, user mappings, and
//!   the three P3 windows ([`layout`]): consistent (`dma_alloc_coherent`),
//!   vmalloc/ioremap, fixmap.
//! * [`fault`]: the TLB-exception slow path including `vmalloc_fault`.
//! * [`MmuHw`]: the only door to the hardware; [`sh4::Sh4Hw`] for the CPU,
//!   `model::Sh4Model` (feature `model`) for host tests.
//!
//! The same code runs on the host against the model and on the target.
//! See `docs/ARCHITECTURE.md` for the design and the address map.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod addr;
pub mod asid;
mod bits;
pub mod coherent;
pub mod consistent;
pub mod error;
pub mod fault;
pub mod fixmap;
pub mod frame;
pub mod heap;
pub mod hw;
pub mod irqlock;
mod kspace;
pub mod layout;
pub mod manager;
pub mod memtype;
pub mod mm;
pub mod mutation;
pub mod pgtable;
pub mod pte;
mod rollback;
pub mod sh4;
pub mod tlb;
pub mod vmalloc;
pub mod window;

#[cfg(feature = "model")]
pub mod model;

pub use addr::{Frame, FrameRange, Page, PageRange, PhysAddr, VirtAddr, PAGE_SIZE};
pub use error::{Handle, MmError, MmResult};
pub use frame::{FrameAllocator, PhysAccess};
pub use hw::MmuHw;
pub use manager::MemoryManager;
pub use mm::{MmId, TaskMm, INIT_MM};
pub use pte::{CacheAttr, Prot, Pte, PteFlags};
