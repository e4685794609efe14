//! What the OS provides: physical frames and a way to touch them.

use crate::addr::{Frame, PhysAddr, PAGE_SIZE, PHYS_FRAMES};
use crate::bits::Bits;

/// The OS's physical frame allocator.
///
/// The MM asks for page-table pages (one frame), vmalloc backing (one frame
/// each) and DMA-coherent buffers (`count` physically contiguous frames).
/// Returning `None` is always allowed: every operation then fails with
/// [`crate::MmError::OutOfFrames`] and leaves everything as it was.
pub trait FrameAllocator {
    /// Allocates `count` physically contiguous frames (count ≥ 1).
    fn alloc(&mut self, count: u32) -> Option<Frame>;
    /// Frees frames returned by [`FrameAllocator::alloc`] with the same `count`.
    fn free(&mut self, first: Frame, count: u32);
}

/// An allocator with no frames, for a mapping that must not allocate (the
/// fixmap: its PTE page exists from `MemoryManager::new` on). A call that
/// would need a frame fails with [`crate::MmError::OutOfFrames`] instead.
pub(crate) struct NoFrames;

impl FrameAllocator for NoFrames {
    fn alloc(&mut self, _count: u32) -> Option<Frame> {
        None
    }
    fn free(&mut self, first: Frame, count: u32) {
        debug_assert!(false, "NoFrames never handed out {count} frames at {first:?}");
    }
}

impl<A: FrameAllocator + ?Sized> FrameAllocator for &mut A {
    fn alloc(&mut self, count: u32) -> Option<Frame> {
        (**self).alloc(count)
    }
    fn free(&mut self, first: Frame, count: u32) {
        (**self).free(first, count)
    }
}

/// How MM code reads and writes physical memory (page tables, page contents).
///
/// # Safety
/// `ptr(pa)` must return a pointer valid for reads and writes of the whole
/// frame containing `pa` for as long as that frame is allocated, and the
/// pointer for `pa` must be the frame's pointer plus the offset of `pa`.
pub unsafe trait PhysAccess {
    /// A pointer through which physical address `pa` can be accessed.
    fn ptr(&self, pa: PhysAddr) -> *mut u8;

    /// Reads the aligned 32-bit word at `pa` (volatile).
    fn read_u32(&self, pa: PhysAddr) -> u32 {
        let p = self.ptr(pa) as *const u32;
        // SAFETY: the trait contract makes `p` valid; page-table words are
        // 4-byte aligned because `pa` is (callers only pass aligned slots).
        unsafe { p.read_volatile() }
    }
    /// Writes the aligned 32-bit word at `pa` (volatile, one store: a
    /// concurrent TLB-miss handler sees the old or the new value).
    fn write_u32(&self, pa: PhysAddr, value: u32) {
        let p = self.ptr(pa) as *mut u32;
        // SAFETY: as in `read_u32`.
        unsafe { p.write_volatile(value) }
    }
    /// Fills a frame with zeros.
    fn zero_frame(&self, frame: Frame) {
        let p = self.ptr(frame.start());
        // SAFETY: the whole frame is valid for writes by the trait contract.
        unsafe { core::ptr::write_bytes(p, 0, PAGE_SIZE as usize) }
    }
    /// Zeroes a frame through the cached P1 alias and leaves no line of that
    /// alias in the operand cache (the zeros in memory), in one pass; false
    /// if this accessor has no such routine, and then the caller purges the
    /// P1 alias around [`Self::zero_frame`] itself.
    fn zero_frame_purged(&self, frame: Frame) -> bool {
        let _ = frame;
        false
    }
    /// Copies one whole frame to another.
    fn copy_frame(&self, from: Frame, to: Frame) {
        let s = self.ptr(from.start());
        let d = self.ptr(to.start());
        // SAFETY: both frames are valid and distinct frames never overlap.
        unsafe { core::ptr::copy_nonoverlapping(s, d, PAGE_SIZE as usize) }
    }
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: PhysAccess + ?Sized> PhysAccess for &T {
    fn ptr(&self, pa: PhysAddr) -> *mut u8 {
        (**self).ptr(pa)
    }
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: PhysAccess + ?Sized> PhysAccess for alloc::rc::Rc<T> {
    fn ptr(&self, pa: PhysAddr) -> *mut u8 {
        (**self).ptr(pa)
    }
}

/// Physical memory seen through P1 (the kernel's own view on target).
///
/// It reads and writes any physical address below 512 MiB: a capability,
/// made only with the `unsafe` [`P1Access::new`].
#[derive(Clone, Copy, Debug)]
pub struct P1Access(());

impl P1Access {
    /// Physical memory through P1.
    ///
    /// # Safety
    /// The code runs in privileged mode on an SH-4 (P1 is then the cached,
    /// untranslated view of physical memory), and the memory manager using it
    /// is the only one that writes the frames it allocates (page tables, the
    /// frames it zeroes): nothing else may hold them.
    pub const unsafe fn new() -> Self {
        P1Access(())
    }
}

// SAFETY: on the SH-4 every physical address below 512 MiB is reachable at
// P1 = pa | 0x8000_0000 without translation; whether RAM is there is the
// caller's concern (only allocated frames are ever passed in).
unsafe impl PhysAccess for P1Access {
    fn ptr(&self, pa: PhysAddr) -> *mut u8 {
        pa.to_p1().as_u32() as usize as *mut u8
    }
    /// On the SH-4: an unrolled store loop (boot/mmu.S), a quarter of the
    /// generic memset's instructions.
    #[cfg(target_os = "none")]
    fn zero_frame(&self, frame: Frame) {
        extern "C" {
            fn sh4mm_zero_page(va: u32);
        }
        // SAFETY: the frame's P1 alias, a whole page the caller owns.
        unsafe { sh4mm_zero_page(frame.start().to_p1().as_u32()) }
    }
    /// On the SH-4: zeroes through P1 and purges each line after its stores
    /// in one loop (boot/mmu.S).
    #[cfg(target_os = "none")]
    fn zero_frame_purged(&self, frame: Frame) -> bool {
        extern "C" {
            fn sh4mm_zero_page_purged(va: u32);
        }
        // SAFETY: the frame's P1 alias, a whole page the caller owns;
        // purging its lines only writes back what the stores just wrote.
        unsafe { sh4mm_zero_page_purged(frame.start().to_p1().as_u32()) }
        true
    }
}

/// A simple first-fit bitmap allocator over `[first, first + 32 * WORDS)`
/// frames, for kernels that have nothing better yet (and the demo kernel).
pub struct BitmapFrames<const WORDS: usize> {
    first: u32,
    frames: u32,
    used: Bits<WORDS>,
    live: u32,
    /// Where the next search starts (next fit), so single-frame allocations
    /// do not rescan the allocated prefix every time.
    hint: u32,
}

impl<const WORDS: usize> BitmapFrames<WORDS> {
    /// Manages `frames` frames starting at `first`: at most `32 * WORDS`,
    /// and never past the end of the 29-bit physical address space (frames
    /// beyond either limit are not managed; [`Self::frames`] says how many are).
    pub const fn new(first: Frame, frames: u32) -> Self {
        let cap = (WORDS * 32) as u32;
        let frames = if frames < cap { frames } else { cap };
        // Frame numbers are below PHYS_FRAMES (Frame's invariant), so this
        // cannot underflow.
        let room = PHYS_FRAMES - first.pfn();
        let frames = if frames < room { frames } else { room };
        BitmapFrames { first: first.pfn(), frames, used: Bits::new(), live: 0, hint: 0 }
    }
    /// How many frames are managed.
    pub fn frames(&self) -> u32 {
        self.frames
    }
    /// Frames currently allocated.
    pub fn live(&self) -> u32 {
        self.live
    }
}

impl<const WORDS: usize> FrameAllocator for BitmapFrames<WORDS> {
    /// Next fit from the last allocation, then first fit from the start.
    fn alloc(&mut self, count: u32) -> Option<Frame> {
        if count == 0 || count > self.frames {
            return None;
        }
        for start in [self.hint, 0] {
            let mut i = start;
            while i + count <= self.frames {
                if self.used.word_full(i) {
                    i = (i / 32 + 1) * 32; // whole word in use
                    continue;
                }
                match (i..i + count).rev().find(|&j| self.used.get(j)) {
                    Some(j) => i = j + 1,
                    None => {
                        // `new` keeps every managed frame inside the physical
                        // space; checked before anything is marked anyway.
                        let frame = Frame::from_pfn(self.first + i)?;
                        for j in i..i + count {
                            self.used.set(j, true);
                        }
                        self.live += count;
                        self.hint = i + count;
                        return Some(frame);
                    }
                }
            }
        }
        None
    }
    fn free(&mut self, first: Frame, count: u32) {
        let start = first.pfn().wrapping_sub(self.first);
        for j in start..start.saturating_add(count) {
            if j < self.frames && self.used.get(j) {
                self.used.set(j, false);
                self.live -= 1;
            }
        }
    }
}

/// Wraps an allocator so that the Nth `alloc` call fails: fault injection
/// for an OS's own tests (the demo kernel uses it on target).
pub struct FailNth<A> {
    inner: A,
    calls: u32,
    fail_at: Option<u32>,
}

impl<A: FrameAllocator> FailNth<A> {
    /// Passes everything through until armed.
    pub const fn new(inner: A) -> Self {
        FailNth { inner, calls: 0, fail_at: None }
    }
    /// Makes the `n`-th `alloc` call from now (1-based) fail; `None` disarms.
    pub fn fail_nth(&mut self, n: Option<u32>) {
        self.fail_at = n.map(|n| self.calls.wrapping_add(n));
    }
    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: FrameAllocator> FrameAllocator for FailNth<A> {
    fn alloc(&mut self, count: u32) -> Option<Frame> {
        self.calls = self.calls.wrapping_add(1);
        if Some(self.calls) == self.fail_at {
            return None;
        }
        self.inner.alloc(count)
    }
    fn free(&mut self, first: Frame, count: u32) {
        self.inner.free(first, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_nth_fails_exactly_once() {
        let mut f = FailNth::new(BitmapFrames::<1>::new(Frame::from_pfn(0x10).unwrap(), 8));
        f.fail_nth(Some(2));
        assert!(f.alloc(1).is_some());
        assert!(f.alloc(1).is_none());
        assert!(f.alloc(1).is_some());
        assert_eq!(f.inner().live(), 2);
    }

    #[test]
    fn bitmap_frames_stay_inside_the_physical_space() {
        // 0x1FFFE is the second-to-last frame of the 29-bit space: only two
        // of the eight frames asked for exist.
        let mut b: BitmapFrames<1> = BitmapFrames::new(Frame::from_pfn(PHYS_FRAMES - 2).unwrap(), 8);
        assert_eq!(b.frames(), 2);
        assert_eq!(b.alloc(1).unwrap().pfn(), PHYS_FRAMES - 2);
        assert_eq!(b.alloc(1).unwrap().pfn(), PHYS_FRAMES - 1);
        assert!(b.alloc(1).is_none());
        assert_eq!(b.live(), 2, "a failed allocation marks nothing");
    }

    #[test]
    fn bitmap_frames_contiguous_next_fit_and_exhaustion() {
        let mut b: BitmapFrames<2> = BitmapFrames::new(Frame::from_pfn(0x100).unwrap(), 40);
        let a = b.alloc(1).unwrap();
        let c = b.alloc(3).unwrap();
        assert_eq!((a.pfn(), c.pfn()), (0x100, 0x101));
        b.free(a, 1);
        // Next fit continues after the last allocation...
        assert_eq!(b.alloc(1).unwrap().pfn(), 0x104);
        // ...and wraps around to the hole at the start.
        assert_eq!(b.alloc(35).unwrap().pfn(), 0x105);
        assert_eq!(b.alloc(1).unwrap().pfn(), 0x100);
        assert_eq!(b.live(), 40);
        assert!(b.alloc(1).is_none(), "exhausted");
        b.free(c, 3);
        assert!(b.alloc(4).is_none(), "no 4 contiguous frames");
        assert_eq!(b.alloc(3).unwrap().pfn(), 0x101);
        assert!(b.alloc(0).is_none());
    }
}
