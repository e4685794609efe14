//! Simulated RAM and a counting frame allocator.

extern crate std;
use crate::addr::{Frame, PhysAddr, PAGE_SIZE};
use crate::frame::{FrameAllocator, PhysAccess};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::vec::Vec;

/// Simulated physical RAM at `[base, base + size)`.
pub struct PhysMemory {
    base: u32,
    size: u32,
    ptr: *mut u8,
}

impl PhysMemory {
    /// Zeroed RAM of `frames` frames starting at physical `base`.
    pub fn new(base: u32, frames: u32) -> Self {
        let size = frames * PAGE_SIZE;
        let layout = Layout::from_size_align(size as usize, PAGE_SIZE as usize).expect("layout");
        // SAFETY: the layout has a non-zero size (callers ask for ≥ 1 frame).
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "host out of memory");
        PhysMemory { base, size, ptr }
    }
    /// First physical address.
    pub fn base(&self) -> u32 {
        self.base
    }
    /// Size in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }
    /// Whether `pa` is inside the RAM.
    pub fn contains(&self, pa: u32) -> bool {
        pa >= self.base && pa - self.base < self.size
    }
}

impl Drop for PhysMemory {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size as usize, PAGE_SIZE as usize).expect("layout");
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.ptr, layout) }
    }
}

// SAFETY: every address inside the RAM maps to the matching byte of one live
// allocation that is at least a whole number of frames long.
unsafe impl PhysAccess for PhysMemory {
    fn ptr(&self, pa: PhysAddr) -> *mut u8 {
        let a = pa.as_u32();
        assert!(self.contains(a), "model: physical address {a:#x} is outside simulated RAM");
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add((a - self.base) as usize) }
    }
}

/// A first-fit frame allocator over a range of frames that counts what is
/// live, detects double frees, and can be told to fail the Nth call.
pub struct FrameArena {
    first: u32,
    used: Vec<bool>,
    live: u32,
    calls: u32,
    fail_at: Option<u32>,
    /// Frees of frames that were not allocated (double or bogus frees).
    pub bad_frees: u32,
}

impl FrameArena {
    /// Manages `frames` frames from physical address `base`.
    pub fn new(base: u32, frames: u32) -> Self {
        FrameArena {
            first: base >> 12,
            used: std::vec![false; frames as usize],
            live: 0,
            calls: 0,
            fail_at: None,
            bad_frees: 0,
        }
    }
    /// Frames currently allocated.
    pub fn live(&self) -> u32 {
        self.live
    }
    /// `alloc` calls so far.
    pub fn calls(&self) -> u32 {
        self.calls
    }
    /// Makes the `n`-th `alloc` call from now (1-based) fail; `None` disarms.
    pub fn fail_nth(&mut self, n: Option<u32>) {
        self.fail_at = n.map(|n| self.calls + n);
    }
}

impl FrameAllocator for FrameArena {
    fn alloc(&mut self, count: u32) -> Option<Frame> {
        self.calls += 1;
        if Some(self.calls) == self.fail_at {
            return None;
        }
        let n = count as usize;
        if n == 0 || n > self.used.len() {
            return None;
        }
        let mut i = 0;
        while i + n <= self.used.len() {
            match self.used[i..i + n].iter().rposition(|&u| u) {
                Some(j) => i += j + 1,
                None => {
                    self.used[i..i + n].iter_mut().for_each(|u| *u = true);
                    self.live += count;
                    return Frame::from_pfn(self.first + i as u32);
                }
            }
        }
        None
    }

    fn free(&mut self, first: Frame, count: u32) {
        for k in 0..count {
            let idx = (first.pfn() + k).wrapping_sub(self.first) as usize;
            match self.used.get_mut(idx) {
                Some(u) if *u => {
                    *u = false;
                    self.live -= 1;
                }
                _ => self.bad_frees += 1,
            }
        }
    }
}
