//! The kernel heap: `sh4_mm::heap::KernelHeap` over the linker script's
//! `[__heap_start, __heap_end)`.

use sh4_mm::heap::KernelHeap;

#[global_allocator]
static HEAP: KernelHeap = KernelHeap::empty();

extern "C" {
    static mut __heap_start: u8;
    static mut __heap_end: u8;
}

/// Hands the linker script's heap to the allocator (once, before any
/// allocation).
pub fn init() {
    let start = &raw mut __heap_start;
    let end = &raw mut __heap_end;
    let size = end as usize - start as usize;
    // SAFETY: [__heap_start, __heap_end) is reserved by runtime/linker.ld for the
    // heap and used by nothing else; init runs once, before any allocation.
    unsafe { HEAP.init(start, size) }
}

/// Bytes currently allocated.
pub fn used() -> usize {
    HEAP.used()
}
