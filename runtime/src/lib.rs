//! `sh4-rt`: a board runtime for kernels built on `sh4-mm`, for QEMU's r2d
//! and GXemul's landisk (SH7751R, 64 MiB at phys 0x0c00_0000, image at
//! 0x8c80_0000). It is what the demo kernel, `examples/tiny_os` and the C
//! example share, and one way (not the only one: see README "Bring your own
//! boot code" and `examples/dreamcast-like`) to give the library what it
//! needs:
//!
//! - `asm/start.S`: `_start` (P2 to P1, SR, stack, .bss, VBR) then calls
//!   the kernel's `kmain`; the vectors (VBR+0x100 general, +0x400 TLB miss,
//!   +0x600 interrupts); `sh4mm_tlb_miss_vector`, the assembly TLB-miss
//!   fast path (documented there and in docs/ARCHITECTURE.md); `exc_common`,
//!   which pushes an [`exc::Frame`] and calls `sh4mm_exception`.
//! - `asm/user.S`: probes, user-mode entry/exit, calls on another stack.
//! - [`exc`]: the Rust `sh4mm_exception` (TLB exceptions to the MM's slow
//!   path, probes, user faults to the OS's hook, oopses).
//! - [`console`] (SCIF, `print!`/`println!`), [`qemu::exit`], [`heap`]
//!   (the `#[global_allocator]` over the linker script's heap).
//! - `linker.ld`: the r2d layout (dependents pass it with `-T`, from
//!   `DEP_SH4RT_LINKER_SCRIPT` in their build script).
//!
//! A kernel using it provides `kmain` (`extern "C" fn() -> !`) and a
//! `#[panic_handler]`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[macro_use]
pub mod console;
pub mod exc;
pub mod heap;
pub mod qemu;
