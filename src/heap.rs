//! A kernel heap for `#[global_allocator]`: `linked_list_allocator` behind
//! an [`IrqLock`], so that interrupt handlers may allocate and free: the lock
//! masks interrupts while an allocation runs, and a re-entry it cannot mask
//! (an exception inside the allocator) fails instead of deadlocking.

use crate::irqlock::{CpuIrq, IrqLock, IrqMask};
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU32, Ordering};
use linked_list_allocator::Heap;

/// A lock-protected first-fit heap.
pub struct KernelHeap<I: IrqMask = CpuIrq> {
    heap: IrqLock<Heap, I>,
    refused: AtomicU32,
}

impl KernelHeap<CpuIrq> {
    /// A heap with no memory yet (allocations fail until [`Self::init`]),
    /// masking the CPU's interrupts.
    pub const fn empty() -> Self {
        Self::with_irq(crate::irqlock::cpu_irq())
    }
}

impl<I: IrqMask> KernelHeap<I> {
    /// An empty heap whose lock masks interrupts through `irq`.
    pub const fn with_irq(irq: I) -> Self {
        KernelHeap { heap: IrqLock::new(irq, Heap::empty()), refused: AtomicU32::new(0) }
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    /// The memory must be unused by anything else from now on, and `init`
    /// must be called only once, from task context.
    pub unsafe fn init(&self, start: *mut u8, size: usize) {
        match self.heap.lock() {
            // SAFETY: forwarded from the caller.
            Ok(mut h) => unsafe { h.init(start, size) },
            Err(_) => self.refuse(),
        }
    }

    /// Bytes currently allocated (0 if the heap is locked by the
    /// interrupted code).
    pub fn used(&self) -> usize {
        self.heap.lock().map_or(0, |h| h.used())
    }

    /// Allocations and frees refused because the heap was locked by the
    /// code this context interrupted (an exception inside the allocator).
    /// A refused free leaks its block rather than deadlock.
    pub fn refused(&self) -> u32 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: all access goes through the lock; `Heap` hands out disjoint blocks
// that fit the requested layout.
unsafe impl<I: IrqMask> GlobalAlloc for KernelHeap<I> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.heap.lock() {
            Ok(mut h) => h.allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr()),
            Err(_) => {
                self.refuse();
                core::ptr::null_mut()
            }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(p) = core::ptr::NonNull::new(ptr) else { return };
        match self.heap.lock() {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
            Ok(mut h) => unsafe { h.deallocate(p, layout) },
            Err(_) => self.refuse(),
        }
    }
}
