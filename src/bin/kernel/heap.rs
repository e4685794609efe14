//! The kernel heap: linked_list_allocator behind a spin::Mutex. spin's
//! compare-and-swap is compiled by GCC's `-matomic-model=soft-imask`: an
//! interrupt-masking critical section (the SH-4 has no CAS instruction).

use core::alloc::{GlobalAlloc, Layout};
use linked_list_allocator::Heap;
use spin::Mutex;

struct KernelHeap(Mutex<Heap>);

// SAFETY: all access goes through the mutex; `Heap` hands out disjoint blocks.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with the same layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

extern "C" {
    static mut __heap_start: u8;
    static mut __heap_end: u8;
}

pub fn init() {
    let start = &raw mut __heap_start;
    let end = &raw mut __heap_end;
    let size = end as usize - start as usize;
    // SAFETY: [__heap_start, __heap_end) is reserved by linker.ld for the
    // heap and used by nothing else; init runs once, before any allocation.
    unsafe { HEAP.0.lock().init(start, size) }
}

/// Bytes currently allocated.
pub fn used() -> usize {
    HEAP.0.lock().used()
}
