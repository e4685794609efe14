//! Page-table entries.
//!
//! A PTE is 32 bits. Its hardware bits are exactly the PTEL image the TLB-miss
//! handler loads (after masking with [`PTEL_MASK`]):
//!
//! ```text
//!  31  30  29  28 ........ 10   9   8   7   6:5  4   3   2   1   0
//! SW  SPC ACC      PPN        PNA  V  SZ1  PR  SZ0  C   D   SH  WT
//! ```
//! Bits 9 and 29..31 are ignored by the hardware and used by software:
//! `PROT_NONE` (present but inaccessible, V=0), `ACCESSED`, `SPECIAL`
//! (no struct-page behind it, e.g. I/O) and one bit left to the OS.

use crate::addr::{Frame, PhysAddr};
use bitflags::bitflags;

bitflags! {
    /// The bits of a [`Pte`] other than the PPN and PR fields.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PteFlags: u32 {
        /// Write-through (with C=1).
        const WT = 1 << 0;
        /// Shared: the entry matches every ASID (kernel mappings).
        const SH = 1 << 1;
        /// Dirty: writes allowed without an initial-page-write exception.
        const D = 1 << 2;
        /// Cacheable.
        const C = 1 << 3;
        /// Page size bit 0. SZ1:SZ0 = 01 is a 4 KiB page, the only size used.
        const SZ0 = 1 << 4;
        /// Page size bit 1 (10 = 64 KiB, 11 = 1 MiB, 00 = 1 KiB: never used).
        const SZ1 = 1 << 7;
        /// Valid: the TLB-miss fast path loads the entry.
        const V = 1 << 8;
        /// Software: present but inaccessible (PROT_NONE); V is clear.
        const PROT_NONE = 1 << 9;
        /// Software: the page has been referenced.
        const ACCESSED = 1 << 29;
        /// Software: special mapping (I/O, no ownership of the frame).
        const SPECIAL = 1 << 30;
        /// Software: free for the OS (e.g. copy-on-write marker).
        const OS = 1 << 31;
    }
}

/// Hardware bits of PTEL: everything but the software bits.
pub const PTEL_MASK: u32 = 0x1FFF_FDFF;
/// PPN field (PTEL\[28:10\]).
pub const PPN_MASK: u32 = 0x1FFF_FC00;
const PR_SHIFT: u32 = 5;
const PR_MASK: u32 = 3 << PR_SHIFT;

/// Access rights (the PR field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prot {
    /// PR=00: privileged read-only, no user access.
    KernelRead = 0,
    /// PR=01: privileged read/write, no user access.
    KernelRw = 1,
    /// PR=10: read-only for privileged and user mode.
    UserRead = 2,
    /// PR=11: read/write for privileged and user mode.
    UserRw = 3,
}

impl Prot {
    /// Whether a write is allowed.
    pub const fn writable(self) -> bool {
        matches!(self, Prot::KernelRw | Prot::UserRw)
    }
    /// Whether user mode may access the page.
    pub const fn user(self) -> bool {
        matches!(self, Prot::UserRead | Prot::UserRw)
    }
    const fn from_bits(b: u32) -> Self {
        match b & 3 {
            0 => Prot::KernelRead,
            1 => Prot::KernelRw,
            2 => Prot::UserRead,
            _ => Prot::UserRw,
        }
    }
}

/// How the operand cache treats a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheAttr {
    /// C=1, WT=0: cached, copy-back.
    WriteBack,
    /// C=1, WT=1: cached, write-through.
    WriteThrough,
    /// C=0: uncached (device memory, DMA-coherent buffers).
    Uncached,
}

impl CacheAttr {
    /// The PTE bits for this attribute.
    pub const fn flags(self) -> PteFlags {
        match self {
            CacheAttr::WriteBack => PteFlags::C,
            CacheAttr::WriteThrough => PteFlags::C.union(PteFlags::WT),
            CacheAttr::Uncached => PteFlags::empty(),
        }
    }
}

/// A page-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Pte(u32);

static_assertions::assert_eq_size!(Pte, u32);

impl Pte {
    /// The empty (not present) entry.
    pub const NONE: Pte = Pte(0);

    /// A valid 4 KiB entry mapping `frame`. `extra` may add SH, D, ACCESSED,
    /// SPECIAL or OS; cache and size bits come from `attr`.
    pub fn new(frame: Frame, prot: Prot, attr: CacheAttr, extra: PteFlags) -> Pte {
        let keep = PteFlags::SH | PteFlags::D | PteFlags::ACCESSED | PteFlags::SPECIAL | PteFlags::OS;
        let flags = (extra & keep) | attr.flags() | PteFlags::SZ0 | PteFlags::V;
        Pte(frame.start().as_u32() | ((prot as u32) << PR_SHIFT) | flags.bits())
    }
    /// Rebuilds an entry from its raw value.
    pub const fn from_raw(raw: u32) -> Pte {
        Pte(raw)
    }
    /// The raw value.
    pub const fn raw(self) -> u32 {
        self.0
    }
    /// The image written to PTEL.
    pub const fn ptel(self) -> u32 {
        self.0 & PTEL_MASK
    }
    /// Whether the entry is empty.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
    /// Whether the hardware may use it (V set).
    pub fn is_valid(self) -> bool {
        self.flags().contains(PteFlags::V)
    }
    /// Present: valid or PROT_NONE.
    pub fn is_present(self) -> bool {
        self.flags().intersects(PteFlags::V | PteFlags::PROT_NONE)
    }
    /// The flag bits.
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0 & !(PPN_MASK | PR_MASK))
    }
    /// The mapped frame.
    pub fn frame(self) -> Frame {
        Frame::containing(PhysAddr::new(self.0 & PPN_MASK).unwrap_or_default())
    }
    /// The PR field.
    pub const fn prot(self) -> Prot {
        Prot::from_bits(self.0 >> PR_SHIFT)
    }
    /// The cache attribute.
    pub fn cache_attr(self) -> CacheAttr {
        let f = self.flags();
        if !f.contains(PteFlags::C) {
            CacheAttr::Uncached
        } else if f.contains(PteFlags::WT) {
            CacheAttr::WriteThrough
        } else {
            CacheAttr::WriteBack
        }
    }
    /// The same entry with `flags` added.
    pub fn with(self, flags: PteFlags) -> Pte {
        Pte(self.0 | flags.bits())
    }
    /// The same entry with `flags` removed.
    pub fn without(self, flags: PteFlags) -> Pte {
        Pte(self.0 & !flags.bits())
    }
    /// The same entry with another PR field.
    pub const fn with_prot(self, prot: Prot) -> Pte {
        Pte((self.0 & !PR_MASK) | ((prot as u32) << PR_SHIFT))
    }
    /// PROT_NONE version of a valid entry (V cleared, PROT_NONE set), or the
    /// valid version of a PROT_NONE entry.
    pub fn toggled_prot_none(self) -> Pte {
        Pte(self.0 ^ (PteFlags::V | PteFlags::PROT_NONE).bits())
    }
}

impl core::fmt::Debug for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pte({:#010x} {:?} {:?} {:?})", self.0 & PPN_MASK, self.prot(), self.cache_attr(), self.flags())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_ptel() {
        let f = Frame::from_pfn(0xC900).unwrap();
        let p = Pte::new(f, Prot::KernelRw, CacheAttr::WriteBack, PteFlags::D | PteFlags::ACCESSED);
        // V | SZ0 (4 KiB) | PR=01 | C | D  = 0x100 | 0x10 | 0x20 | 0x8 | 0x4
        assert_eq!(p.ptel(), 0x0C90_0000 | 0x13C);
        assert_eq!(p.raw() & (1 << 29), 1 << 29);
        assert_eq!(p.frame(), f);
        assert_eq!(p.prot(), Prot::KernelRw);
        assert_eq!(p.cache_attr(), CacheAttr::WriteBack);
        let u = Pte::new(f, Prot::UserRead, CacheAttr::Uncached, PteFlags::SH);
        assert_eq!(u.ptel(), 0x0C90_0000 | 0x100 | 0x10 | 0x40 | 0x2);
        assert_eq!(u.cache_attr(), CacheAttr::Uncached);
        let wt = Pte::new(f, Prot::UserRw, CacheAttr::WriteThrough, PteFlags::empty());
        assert_eq!(wt.cache_attr(), CacheAttr::WriteThrough);
        let pn = wt.toggled_prot_none();
        assert!(!pn.is_valid() && pn.is_present());
        assert_eq!(pn.ptel() & 0x100, 0);
        assert!(!Pte::NONE.is_present());
    }
}
