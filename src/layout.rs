//! Where everything lives in P3 (0xC000_0000..0xE000_0000).
//!
//! ```text
//! 0xC000_0000 ┌────────────────────────┐ CONSISTENT: dma_alloc_coherent, uncached (32 MiB)
//! 0xC200_0000 ├────────────────────────┤ VMALLOC: vmalloc / ioremap, guard page after
//!             │                        │          every area (476 MiB)
//! 0xDFC0_0000 ├────────────────────────┤ FIXMAP: 1024 fixed slots (4 MiB); the top 8
//!             │                        │        are kmap_coherent (2 per cache colour)
//! 0xE000_0000 └────────────────────────┘ = FIXADDR_TOP (P4 starts here)
//! ```
//! Every window covers whole first-level entries, so a PTE page never
//! serves two windows.

use crate::addr::VirtAddr;

/// Start of P3.
pub const P3_START: u32 = 0xC000_0000;
/// End of P3 (exclusive).
pub const P3_END: u32 = 0xE000_0000;
/// Consistent (DMA-coherent, uncached) window start.
pub const CONSISTENT_START: u32 = 0xC000_0000;
/// Consistent window end (exclusive).
pub const CONSISTENT_END: u32 = 0xC200_0000;
/// vmalloc/ioremap window start.
pub const VMALLOC_START: u32 = 0xC200_0000;
/// vmalloc/ioremap window end (exclusive).
pub const VMALLOC_END: u32 = 0xDFC0_0000;
/// Fixmap window start.
pub const FIXMAP_START: u32 = 0xDFC0_0000;
/// One past the highest fixmap slot.
pub const FIXADDR_TOP: u32 = 0xE000_0000;
/// Number of fixmap slots.
pub const FIXMAP_SLOTS: u32 = (FIXADDR_TOP - FIXMAP_START) >> 12;
/// Operand-cache colours (16 KiB direct-mapped cache / 4 KiB pages).
pub const CACHE_COLOURS: u32 = 4;
/// kmap_coherent slots per colour (source and destination of a copy).
pub const KMAP_SLOTS_PER_COLOUR: u32 = 2;
/// Fixmap slots reserved for kmap_coherent (indices 0..KMAP_COHERENT_SLOTS).
pub const KMAP_COHERENT_SLOTS: u32 = CACHE_COLOURS * KMAP_SLOTS_PER_COLOUR;

static_assertions::const_assert!(CONSISTENT_END == VMALLOC_START);
static_assertions::const_assert!(VMALLOC_END == FIXMAP_START);
static_assertions::const_assert!(CONSISTENT_START.is_multiple_of(4 << 20));
static_assertions::const_assert!(VMALLOC_START.is_multiple_of(4 << 20));
static_assertions::const_assert!(FIXMAP_START.is_multiple_of(4 << 20));

/// The P3 window an address belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// dma_alloc_coherent.
    Consistent,
    /// vmalloc and ioremap.
    Vmalloc,
    /// Fixed slots, kmap_coherent.
    Fixmap,
}

impl Window {
    /// Which window `va` lies in, if any.
    pub const fn of(va: VirtAddr) -> Option<Window> {
        let a = va.as_u32();
        if a >= CONSISTENT_START && a < CONSISTENT_END {
            Some(Window::Consistent)
        } else if a >= VMALLOC_START && a < VMALLOC_END {
            Some(Window::Vmalloc)
        } else if a >= FIXMAP_START && a < FIXADDR_TOP {
            Some(Window::Fixmap)
        } else {
            None
        }
    }
}

/// Virtual address of fixmap slot `idx` (slot 0 is the highest page);
/// `None` if there is no such slot (`idx >= FIXMAP_SLOTS`).
pub const fn fix_to_virt(idx: u32) -> Option<VirtAddr> {
    if idx >= FIXMAP_SLOTS {
        return None;
    }
    Some(VirtAddr::new(FIXADDR_TOP - (idx + 1) * 4096))
}

/// The fixmap slot of address `va`, if it is in the fixmap window.
pub const fn virt_to_fix(va: VirtAddr) -> Option<u32> {
    let a = va.as_u32();
    if a >= FIXMAP_START && a < FIXADDR_TOP {
        Some((FIXADDR_TOP - (a & !0xFFF)) / 4096 - 1)
    } else {
        None
    }
}

/// The kmap_coherent slot for cache colour `colour` (0..4) and `bank`
/// (0..[`KMAP_SLOTS_PER_COLOUR`]): a slot whose address has that colour.
/// `None` for a bank that does not exist (it would name a general slot).
pub const fn kmap_coherent_slot(colour: u32, bank: u32) -> Option<u32> {
    if bank >= KMAP_SLOTS_PER_COLOUR {
        return None;
    }
    // fix_to_virt(i) has colour (3 - i) & 3.
    Some(bank * CACHE_COLOURS + ((3 - (colour & 3)) & 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmap_slots_have_their_colour() {
        for c in 0..CACHE_COLOURS {
            for b in 0..KMAP_SLOTS_PER_COLOUR {
                let s = kmap_coherent_slot(c, b).unwrap();
                assert!(s < KMAP_COHERENT_SLOTS);
                assert_eq!(fix_to_virt(s).unwrap().colour(), c);
                assert_eq!(Window::of(fix_to_virt(s).unwrap()), Some(Window::Fixmap));
            }
            assert_eq!(kmap_coherent_slot(c, KMAP_SLOTS_PER_COLOUR), None, "no third bank");
        }
        assert_eq!(fix_to_virt(FIXMAP_SLOTS - 1), Some(VirtAddr::new(FIXMAP_START)));
        assert_eq!(fix_to_virt(FIXMAP_SLOTS), None);
        assert_eq!(fix_to_virt(u32::MAX), None, "no overflow");
        assert_eq!(Window::of(VirtAddr::new(0xC1FF_FFFF)), Some(Window::Consistent));
        assert_eq!(Window::of(VirtAddr::new(0xC200_0000)), Some(Window::Vmalloc));
        assert_eq!(Window::of(VirtAddr::new(0xE000_0000)), None);
        assert_eq!(FIXMAP_SLOTS, 1024);
    }
}
