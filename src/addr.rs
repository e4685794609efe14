//! Typed addresses: virtual and physical addresses, pages and frames, and
//! the fixed SH-4 address-space regions (P0/U0, P1, P2, P3, P4).
//!
//! ```text
//! 0x0000_0000 ┌──────────────┐ P0 / U0: translated, user accessible (2 GiB)
//! 0x8000_0000 ├──────────────┤ P1: phys + 0x8000_0000, cached, untranslated
//! 0xA000_0000 ├──────────────┤ P2: phys + 0xA000_0000, uncached, untranslated
//! 0xC000_0000 ├──────────────┤ P3: translated, privileged only (see `layout`)
//! 0xE000_0000 ├──────────────┤ P4: control registers, store queues
//! 0xFFFF_FFFF └──────────────┘
//! ```

use crate::error::{MmError, MmResult};
use core::fmt;

/// Size of the only page size this crate maps (4 KiB).
pub const PAGE_SIZE: u32 = 4096;
/// Frames in the 29-bit physical address space (every frame number is below).
pub const PHYS_FRAMES: u32 = 1 << (29 - PAGE_SHIFT);
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Physical addresses are 29 bits wide on the SH-4.
pub const PHYS_MASK: u32 = 0x1FFF_FFFF;

/// The fixed regions of the SH-4 32-bit virtual address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// 0x0000_0000..0x8000_0000: translated; the only region user mode may touch.
    P0,
    /// 0x8000_0000..0xA000_0000: physical memory, cached, never translated.
    P1,
    /// 0xA000_0000..0xC000_0000: physical memory, uncached, never translated.
    P2,
    /// 0xC000_0000..0xE000_0000: translated, privileged mode only.
    P3,
    /// 0xE000_0000..: control space (store queues, MMU/cache registers).
    P4,
}

/// A 32-bit virtual address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(u32);

/// A 29-bit physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(u32);

/// A 4 KiB-aligned virtual page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Page(VirtAddr);

/// A 4 KiB-aligned physical frame.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Frame(PhysAddr);

impl VirtAddr {
    /// Wraps a raw 32-bit virtual address.
    pub const fn new(addr: u32) -> Self {
        VirtAddr(addr)
    }
    /// The raw value.
    pub const fn as_u32(self) -> u32 {
        self.0
    }
    /// Which fixed region the address lies in.
    pub const fn region(self) -> Region {
        match self.0 >> 29 {
            0..=3 => Region::P0,
            4 => Region::P1,
            5 => Region::P2,
            6 => Region::P3,
            _ => Region::P4,
        }
    }
    /// Whether the MMU translates this address (P0 and P3).
    pub const fn is_translated(self) -> bool {
        matches!(self.region(), Region::P0 | Region::P3)
    }
    /// Index into the first-level table (VA\[31:22\]).
    pub const fn pgd_index(self) -> usize {
        (self.0 >> 22) as usize
    }
    /// Index into a second-level (PTE) table (VA\[21:12\]).
    pub const fn pte_index(self) -> usize {
        ((self.0 >> PAGE_SHIFT) & 0x3FF) as usize
    }
    /// Offset inside the 4 KiB page.
    pub const fn page_offset(self) -> u32 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// Operand-cache colour (VA\[13:12\]) of this address: 16 KiB direct-mapped
    /// cache / 4 KiB pages = 4 colours.
    pub const fn colour(self) -> u32 {
        (self.0 >> PAGE_SHIFT) & 3
    }
    /// Whether the address is page aligned.
    pub const fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }
    /// `self + bytes`, or `None` on 32-bit overflow.
    pub const fn checked_add(self, bytes: u32) -> Option<Self> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(VirtAddr(v)),
            None => None,
        }
    }
}

impl PhysAddr {
    /// Wraps a raw physical address; `None` if it has bits above bit 28.
    pub const fn new(addr: u32) -> Option<Self> {
        if addr & !PHYS_MASK == 0 {
            Some(PhysAddr(addr))
        } else {
            None
        }
    }
    /// Takes the physical address out of a P1 or P2 address.
    pub const fn from_p1_p2(va: VirtAddr) -> Option<Self> {
        match va.region() {
            Region::P1 | Region::P2 => Some(PhysAddr(va.0 & PHYS_MASK)),
            _ => None,
        }
    }
    /// The raw value.
    pub const fn as_u32(self) -> u32 {
        self.0
    }
    /// The cached, untranslated alias of this address.
    pub const fn to_p1(self) -> VirtAddr {
        VirtAddr(self.0 | 0x8000_0000)
    }
    /// The uncached, untranslated alias of this address.
    pub const fn to_p2(self) -> VirtAddr {
        VirtAddr(self.0 | 0xA000_0000)
    }
    /// Whether the address is page aligned.
    pub const fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }
}

impl Page {
    /// The page starting at `va`; `None` unless `va` is page aligned.
    pub const fn from_start(va: VirtAddr) -> Option<Self> {
        if va.is_page_aligned() {
            Some(Page(va))
        } else {
            None
        }
    }
    /// The page that contains `va`.
    pub const fn containing(va: VirtAddr) -> Self {
        Page(VirtAddr(va.0 & !(PAGE_SIZE - 1)))
    }
    /// First address of the page.
    pub const fn start(self) -> VirtAddr {
        self.0
    }
    /// The page `n` pages further on, or `None` on overflow.
    pub const fn offset(self, n: u32) -> Option<Self> {
        match n.checked_mul(PAGE_SIZE) {
            Some(b) => match self.0.checked_add(b) {
                Some(v) => Some(Page(v)),
                None => None,
            },
            None => None,
        }
    }
}

impl Frame {
    /// The frame starting at `pa`; `None` unless `pa` is page aligned.
    pub const fn from_start(pa: PhysAddr) -> Option<Self> {
        if pa.is_page_aligned() {
            Some(Frame(pa))
        } else {
            None
        }
    }
    /// The frame that contains `pa`.
    pub const fn containing(pa: PhysAddr) -> Self {
        Frame(PhysAddr(pa.0 & !(PAGE_SIZE - 1)))
    }
    /// The frame with physical frame number `pfn`; `None` if beyond 29 bits.
    pub const fn from_pfn(pfn: u32) -> Option<Self> {
        if pfn < PHYS_FRAMES {
            Some(Frame(PhysAddr(pfn << PAGE_SHIFT)))
        } else {
            None
        }
    }
    /// First address of the frame.
    pub const fn start(self) -> PhysAddr {
        self.0
    }
    /// Physical frame number.
    pub const fn pfn(self) -> u32 {
        self.0 .0 >> PAGE_SHIFT
    }
    /// The frame `n` frames further on, or `None` past the 29-bit space.
    pub const fn offset(self, n: u32) -> Option<Self> {
        match self.pfn().checked_add(n) {
            Some(p) => Frame::from_pfn(p),
            None => None,
        }
    }
}

/// `pages` consecutive virtual pages from `first`: never empty, and its
/// last page lies inside the 32-bit address space (so iterating it cannot
/// wrap). Made only by [`PageRange::new`], which checks both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageRange {
    first: Page,
    pages: u32,
}

impl PageRange {
    /// The range of `pages` pages from `first`.
    ///
    /// # Errors
    /// [`MmError::ZeroSize`] for no pages, [`MmError::Overflow`] if the last
    /// page would lie past 4 GiB.
    pub const fn new(first: Page, pages: u32) -> MmResult<Self> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        match first.offset(pages - 1) {
            Some(_) => Ok(PageRange { first, pages }),
            None => Err(MmError::Overflow),
        }
    }
    /// The pages of `size` bytes (rounded up) from `first`.
    ///
    /// # Errors
    /// As [`PageRange::new`], and [`MmError::Overflow`] for a size whose page
    /// count does not fit 32 bits.
    pub fn covering(first: Page, size: usize) -> MmResult<Self> {
        PageRange::new(first, pages_for(size)?)
    }
    /// First page.
    pub const fn first(self) -> Page {
        self.first
    }
    /// Number of pages (at least 1).
    pub const fn pages(self) -> u32 {
        self.pages
    }
    /// Last page.
    pub const fn last(self) -> Page {
        Page(VirtAddr(self.first.0 .0 + (self.pages - 1) * PAGE_SIZE))
    }
    /// Page `i` of the range, if `i < pages`.
    pub const fn get(self, i: u32) -> Option<Page> {
        if i < self.pages {
            Some(Page(VirtAddr(self.first.0 .0 + i * PAGE_SIZE)))
        } else {
            None
        }
    }
    /// Whether `page` is one of the range's pages.
    pub const fn contains(self, page: Page) -> bool {
        page.0 .0.wrapping_sub(self.first.0 .0) / PAGE_SIZE < self.pages
    }
    /// The pages, in order.
    pub fn iter(self) -> impl Iterator<Item = Page> + Clone {
        (0..self.pages).map(move |i| Page(VirtAddr(self.first.0 .0 + i * PAGE_SIZE)))
    }
}

/// `frames` physically consecutive frames from `first`: never empty, and
/// inside the 29-bit physical address space. Made only by
/// [`FrameRange::new`], which checks both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRange {
    first: Frame,
    frames: u32,
}

impl FrameRange {
    /// The range of `frames` frames from `first`.
    ///
    /// # Errors
    /// [`MmError::ZeroSize`] for no frames, [`MmError::Overflow`] if the last
    /// frame would lie past the 29-bit physical address space.
    pub const fn new(first: Frame, frames: u32) -> MmResult<Self> {
        if frames == 0 {
            return Err(MmError::ZeroSize);
        }
        match first.offset(frames - 1) {
            Some(_) => Ok(FrameRange { first, frames }),
            None => Err(MmError::Overflow),
        }
    }
    /// The frames of `size` bytes (rounded up) from `phys`, which must be
    /// page aligned.
    ///
    /// # Errors
    /// [`MmError::Unaligned`] for an unaligned `phys`, otherwise as
    /// [`FrameRange::new`].
    pub fn covering(phys: PhysAddr, size: usize) -> MmResult<Self> {
        let first = Frame::from_start(phys).ok_or(MmError::Unaligned)?;
        FrameRange::new(first, pages_for(size)?)
    }
    /// One frame.
    pub const fn one(frame: Frame) -> Self {
        FrameRange { first: frame, frames: 1 }
    }
    /// First frame.
    pub const fn first(self) -> Frame {
        self.first
    }
    /// Number of frames (at least 1).
    pub const fn frames(self) -> u32 {
        self.frames
    }
    /// Frame `i` of the range, if `i < frames`.
    pub const fn get(self, i: u32) -> Option<Frame> {
        if i < self.frames {
            Frame::from_pfn(self.first.pfn() + i)
        } else {
            None
        }
    }
    /// Whether `frame` is one of the range's frames.
    pub const fn contains(self, frame: Frame) -> bool {
        frame.pfn().wrapping_sub(self.first.pfn()) < self.frames
    }
    /// The frames, in order.
    pub fn iter(self) -> impl Iterator<Item = Frame> + Clone {
        (0..self.frames).map(move |i| Frame(PhysAddr((self.first.pfn() + i) << PAGE_SHIFT)))
    }
}

/// Pages needed for `size` bytes.
///
/// # Errors
/// [`MmError::ZeroSize`] for 0, [`MmError::Overflow`] if the count does not
/// fit 32 bits.
pub(crate) fn pages_for(size: usize) -> MmResult<u32> {
    if size == 0 {
        return Err(MmError::ZeroSize);
    }
    let pages = size.checked_add(PAGE_SIZE as usize - 1).ok_or(MmError::Overflow)? / PAGE_SIZE as usize;
    u32::try_from(pages).map_err(|_| MmError::Overflow)
}

macro_rules! hex_debug {
    ($($t:ty => $name:literal, $get:expr;)*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($name, "({:#010x})"), $get(self))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#010x}", $get(self))
            }
        }
    )*};
}
hex_debug! {
    VirtAddr => "VirtAddr", |a: &VirtAddr| a.0;
    PhysAddr => "PhysAddr", |a: &PhysAddr| a.0;
    Page => "Page", |p: &Page| p.0 .0;
    Frame => "Frame", |f: &Frame| f.0 .0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_indices() {
        assert_eq!(VirtAddr::new(0x7FFF_FFFF).region(), Region::P0);
        assert_eq!(VirtAddr::new(0x8C80_0000).region(), Region::P1);
        assert_eq!(VirtAddr::new(0xAC80_0000).region(), Region::P2);
        assert_eq!(VirtAddr::new(0xC000_0000).region(), Region::P3);
        assert_eq!(VirtAddr::new(0xDFFF_FFFF).region(), Region::P3);
        assert_eq!(VirtAddr::new(0xE000_0000).region(), Region::P4);
        let va = VirtAddr::new(0xC040_3123);
        assert_eq!(va.pgd_index(), 0x301);
        assert_eq!(va.pte_index(), 3);
        assert_eq!(va.page_offset(), 0x123);
        assert_eq!(VirtAddr::new(0x3000).colour(), 3);
        assert_eq!(VirtAddr::new(0x4000).colour(), 0);
    }

    #[test]
    fn phys_conversions() {
        assert!(PhysAddr::new(0x2000_0000).is_none());
        let pa = PhysAddr::new(0x0C80_0000).unwrap();
        assert_eq!(pa.to_p1().as_u32(), 0x8C80_0000);
        assert_eq!(pa.to_p2().as_u32(), 0xAC80_0000);
        assert_eq!(PhysAddr::from_p1_p2(VirtAddr::new(0xAC80_0010)).unwrap().as_u32(), 0x0C80_0010);
        assert!(PhysAddr::from_p1_p2(VirtAddr::new(0xC000_0000)).is_none());
        assert!(Frame::from_pfn(1 << 17).is_none());
        assert_eq!(Frame::from_pfn(0xC800).unwrap().start().as_u32(), 0x0C80_0000);
        assert!(Page::from_start(VirtAddr::new(0x1001)).is_none());
        assert!(Page::containing(VirtAddr::new(0xFFFF_F000)).offset(1).is_none());
    }

    #[test]
    fn ranges_are_never_empty_and_never_wrap() {
        let top = Page::containing(VirtAddr::new(0xFFFF_F000));
        assert_eq!(PageRange::new(top, 0), Err(MmError::ZeroSize));
        assert_eq!(PageRange::new(top, 2), Err(MmError::Overflow));
        let r = PageRange::new(top, 1).unwrap();
        assert_eq!((r.last(), r.iter().count()), (top, 1));
        let r = PageRange::covering(Page::containing(VirtAddr::new(0x1000)), 0x2001).unwrap();
        assert_eq!((r.pages(), r.last().start().as_u32()), (3, 0x3000));
        assert!(r.contains(Page::containing(VirtAddr::new(0x3FFF))));
        assert!(!r.contains(Page::containing(VirtAddr::new(0x4000))));
        assert!(!r.contains(Page::containing(VirtAddr::new(0))));
        assert_eq!(r.get(3), None);
        let last = Frame::from_pfn(PHYS_FRAMES - 1).unwrap();
        assert_eq!(FrameRange::new(last, 2), Err(MmError::Overflow));
        assert_eq!(FrameRange::covering(PhysAddr::new(0x1001).unwrap(), 1), Err(MmError::Unaligned));
        let f = FrameRange::covering(PhysAddr::new(0x1000).unwrap(), 8192).unwrap();
        assert_eq!(f.iter().map(Frame::pfn).collect::<alloc::vec::Vec<_>>(), [1, 2]);
        assert!(f.contains(Frame::from_pfn(2).unwrap()) && !f.contains(Frame::from_pfn(3).unwrap()));
        assert_eq!(pages_for(usize::MAX), Err(MmError::Overflow));
    }
}
