//! A kernel heap for `#[global_allocator]`: `linked_list_allocator` behind a
//! `spin::Mutex`. On the SH-4 the mutex's compare-and-swap is an
//! interrupt-masked sequence (GCC `-matomic-model=soft-imask`).

use core::alloc::{GlobalAlloc, Layout};
use linked_list_allocator::Heap;
use spin::Mutex;

/// A lock-protected first-fit heap.
pub struct KernelHeap(Mutex<Heap>);

impl KernelHeap {
    /// A heap with no memory yet (allocations fail until [`Self::init`]).
    pub const fn empty() -> Self {
        KernelHeap(Mutex::new(Heap::empty()))
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// The memory must be unused by anything else from now on, and `init`
    /// must be called only once.
    pub unsafe fn init(&self, start: *mut u8, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.lock().init(start, size) }
    }

    /// Bytes currently allocated.
    pub fn used(&self) -> usize {
        self.0.lock().used()
    }
}

// SAFETY: all access goes through the mutex; `Heap` hands out disjoint blocks
// that fit the requested layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}
