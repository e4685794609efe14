//! Interrupt context: a lock an interrupt handler cannot deadlock on, the
//! interrupt nesting count, and what a handler may call.
//!
//! # The lock
//!
//! On one CPU a plain spin lock deadlocks as soon as an interrupt handler
//! wants a lock the interrupted code holds: the handler spins, and the holder
//! never runs again. [`IrqLock`] masks interrupts (SR.IMASK = 15, through
//! [`IrqMask`]) for as long as it is held and restores the level it found, so
//! an interrupt can never arrive while the lock is held; locks nest (the inner
//! one finds IMASK 15 and restores 15). Something IMASK does not hold off can
//! still re-enter: a TLB exception or an OS page-fault hook that calls back
//! into the memory manager, an NMI. Such a re-entry gets
//! [`WouldDeadlock`] ([`MmError::InInterrupt`]) at once instead of spinning.
//! Single CPU only: the flag is not a multiprocessor lock.
//!
//! What this costs is interrupt latency: every memory-manager operation runs
//! masked from start to end (`scripts/test.sh` reports the longest masked
//! section it measured on the target).
//!
//! # Interrupt context
//!
//! The SH-4 has no "in interrupt" state, so the OS's interrupt entry counts
//! nesting with [`irq_enter`] / [`irq_exit`] (or an [`InterruptScope`]) and
//! [`MmuHw::in_interrupt`] reads it
//! (the model counts the interrupts it delivers). As in Linux:
//!
//! | operation | in an interrupt handler |
//! |---|---|
//! | `dma_alloc_coherent` | allowed (bounded: its frames are zeroed) |
//! | `dma_free_coherent`, `vfree` | queued (checked at once, done at the next task-context call, or [`MemoryManager::run_deferred`](crate::MemoryManager::run_deferred)); with [`DEFERRED_MAX`] queued already, done at once |
//! | TLB-exception path (`fault::handle_tlb_exception`) | allowed (takes no lock) |
//! | `translate`, `mm_get`, `mm_grab`, `copy_user_page`, `clear_user_page`, fixmap / io-mapping map and unmap | allowed |
//! | `vmalloc`, `ioremap`, `iounmap`, `mm_create`, `mm_put`, `mm_drop`, `exit_mm`, `switch_mm`, `context_switch`, `map_user`, `unmap_user`, `protect_user` | [`MmError::InInterrupt`] |
//! | heap (`alloc`, [`crate::heap::KernelHeap`]) | allowed |
//!
//! A scheduler that switches tasks on the way out of a timer interrupt calls
//! `context_switch` after [`irq_exit`], as Linux calls `schedule()` after
//! `irq_exit()`.

use crate::addr::VirtAddr;
use crate::error::{MmError, MmResult};
use crate::hw::MmuHw;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Interrupt masking, without the rest of [`MmuHw`] (the heap needs only this).
pub trait IrqMask {
    /// Masks all interrupts (SR.IMASK = 15); returns the previous IMASK.
    fn irq_save(&self) -> u32;
    /// Restores an IMASK returned by [`IrqMask::irq_save`].
    fn irq_restore(&self, saved: u32);
}

impl<H: MmuHw + ?Sized> IrqMask for H {
    fn irq_save(&self) -> u32 {
        MmuHw::irq_save(self)
    }
    fn irq_restore(&self, saved: u32) {
        MmuHw::irq_restore(self, saved)
    }
}

/// No interrupts to mask (host builds: the heap of a host program).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIrq;

impl IrqMask for NoIrq {
    fn irq_save(&self) -> u32 {
        0
    }
    fn irq_restore(&self, _saved: u32) {}
}

/// The CPU's interrupt mask: [`crate::sh4::Sh4Hw`] on the SH-4, [`NoIrq`] on
/// the host.
#[cfg(target_os = "none")]
pub type CpuIrq = crate::sh4::Sh4Hw;
/// The CPU's interrupt mask: [`crate::sh4::Sh4Hw`] on the SH-4, [`NoIrq`] on
/// the host.
#[cfg(not(target_os = "none"))]
pub type CpuIrq = NoIrq;

/// The CPU's interrupt mask, for locks that only mask interrupts.
#[cfg(target_os = "none")]
pub(crate) const fn cpu_irq() -> CpuIrq {
    // SAFETY: the value is used only through `IrqMask` (SR.IMASK save and
    // restore), never to reach the MMU; the crate is built for the SH-4 only
    // to run privileged there.
    unsafe { crate::sh4::Sh4Hw::new() }
}

/// The CPU's interrupt mask, for locks that only mask interrupts.
#[cfg(not(target_os = "none"))]
pub(crate) const fn cpu_irq() -> CpuIrq {
    NoIrq
}

/// [`IrqLock::lock`] found the lock held: the caller interrupted (or was
/// called back from inside) the holder on this CPU, and waiting would never end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WouldDeadlock;

impl From<WouldDeadlock> for MmError {
    fn from(_: WouldDeadlock) -> Self {
        MmError::InInterrupt
    }
}

impl core::fmt::Display for WouldDeadlock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "lock held by the interrupted code")
    }
}

/// A lock that masks interrupts while held and never spins.
pub struct IrqLock<T, I: IrqMask> {
    irq: I,
    held: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `held` (set with an atomic swap;
// on the SH-4 an interrupt-masked sequence) and, on one CPU, by the interrupt
// mask; `T: Send` because the holder may be any context of this CPU.
unsafe impl<T: Send, I: IrqMask + Sync> Sync for IrqLock<T, I> {}

impl<T, I: IrqMask> IrqLock<T, I> {
    /// An unlocked lock around `value`, masking through `irq`.
    pub const fn new(irq: I, value: T) -> Self {
        IrqLock { irq, held: AtomicBool::new(false), data: UnsafeCell::new(value) }
    }

    /// Masks interrupts and takes the lock, or restores the mask and returns
    /// [`WouldDeadlock`] if it is held (by the code this handler interrupted,
    /// or by a caller further up this call chain). Never waits.
    pub fn lock(&self) -> Result<IrqLockGuard<'_, T, I>, WouldDeadlock> {
        let saved = self.irq.irq_save();
        if self.held.swap(true, Ordering::Acquire) {
            self.irq.irq_restore(saved);
            return Err(WouldDeadlock);
        }
        Ok(IrqLockGuard { lock: self, saved })
    }

    /// Whether the lock is held right now.
    pub fn is_locked(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// The mask this lock uses.
    pub fn irq(&self) -> &I {
        &self.irq
    }
}

/// The lock is held (and interrupts masked) while this lives.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct IrqLockGuard<'a, T, I: IrqMask> {
    lock: &'a IrqLock<T, I>,
    saved: u32,
}

impl<T, I: IrqMask> Deref for IrqLockGuard<'_, T, I> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock: no other reference to `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, I: IrqMask> DerefMut for IrqLockGuard<'_, T, I> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T, I: IrqMask> Drop for IrqLockGuard<'_, T, I> {
    fn drop(&mut self) {
        // Release before unmasking: an interrupt taken right after the
        // restore must find the lock free.
        self.lock.held.store(false, Ordering::Release);
        self.lock.irq.irq_restore(self.saved);
    }
}

static IRQ_DEPTH: AtomicU32 = AtomicU32::new(0);

/// The OS's interrupt entry calls this before its handlers run (nesting
/// allowed). [`crate::sh4::Sh4Hw`] then reports
/// [`MmuHw::in_interrupt`] until the matching
/// [`irq_exit`].
pub fn irq_enter() {
    IRQ_DEPTH.fetch_add(1, Ordering::Relaxed);
}

/// Ends what [`irq_enter`] began (an unmatched call is ignored).
pub fn irq_exit() {
    let _ = IRQ_DEPTH.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1));
}

/// Current interrupt nesting depth (0: task context).
pub fn irq_depth() -> u32 {
    IRQ_DEPTH.load(Ordering::Relaxed)
}

/// [`irq_enter`] now, [`irq_exit`] when dropped.
#[must_use = "the interrupt context ends as soon as the scope is dropped"]
pub struct InterruptScope(());

impl InterruptScope {
    /// Enters interrupt context.
    pub fn enter() -> Self {
        irq_enter();
        InterruptScope(())
    }
}

impl Drop for InterruptScope {
    fn drop(&mut self) {
        irq_exit();
    }
}

/// Capacity of the deferred-free queue.
pub const DEFERRED_MAX: usize = 32;

/// A free an interrupt handler asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deferred {
    /// `vfree(va)`.
    Vfree(VirtAddr),
    /// `dma_free_coherent(va)`.
    DmaFree(VirtAddr),
}

/// Frees asked for in interrupt context, done at the next task-context
/// call. Fixed capacity: queuing never allocates.
#[derive(Debug)]
pub(crate) struct DeferredFrees {
    items: [Option<Deferred>; DEFERRED_MAX],
    /// Entries in use (every operation's entry check reads only this).
    len: usize,
}

/// The deferred-free queue is full (the free is done at once instead).
pub(crate) struct QueueFull;

impl DeferredFrees {
    pub(crate) const fn new() -> Self {
        DeferredFrees { items: [None; DEFERRED_MAX], len: 0 }
    }

    /// Queues `item`, whose area the caller found live. A second request
    /// for the same area is refused, as the second of two frees would be.
    pub(crate) fn queue(&mut self, item: Deferred) -> Result<MmResult<()>, QueueFull> {
        let va = match item {
            Deferred::Vfree(va) | Deferred::DmaFree(va) => va,
        };
        if self.items.contains(&Some(item)) {
            return Ok(Err(MmError::BadHandle(crate::error::Handle::Area(va))));
        }
        let slot = self.items.iter_mut().find(|s| s.is_none()).ok_or(QueueFull)?;
        *slot = Some(item);
        self.len += 1;
        Ok(Ok(()))
    }

    /// Takes every queued free, in the order they were queued into slots.
    pub(crate) fn take(&mut self) -> impl Iterator<Item = Deferred> {
        self.len = 0;
        core::mem::replace(&mut self.items, [None; DEFERRED_MAX]).into_iter().flatten()
    }

    /// Queued frees.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Mask(Cell<u32>);
    impl IrqMask for Mask {
        fn irq_save(&self) -> u32 {
            self.0.replace(15)
        }
        fn irq_restore(&self, saved: u32) {
            self.0.set(saved)
        }
    }

    #[test]
    fn masks_while_held_restores_and_nests() {
        let a = IrqLock::new(Mask(Cell::new(0)), 1u32);
        {
            let mut g = a.lock().unwrap();
            *g += 1;
            assert_eq!(a.irq().0.get(), 15);
            // Re-entry (a handler or a callback on this CPU): an error, no spin.
            assert_eq!(a.lock().err(), Some(WouldDeadlock));
            assert_eq!(a.irq().0.get(), 15, "the failed attempt keeps the holder's mask");
        }
        assert_eq!(a.irq().0.get(), 0, "level restored");
        assert!(!a.is_locked());
        // Nested locks through the same mask: inner restores 15, outer 3.
        a.irq().0.set(3);
        let b = IrqLock::new(NoIrq, ());
        let g = a.lock().unwrap();
        {
            let inner = IrqLock::new(Mask(Cell::new(a.irq().0.get())), ());
            let _h = inner.lock().unwrap();
            assert_eq!(inner.irq().0.get(), 15);
            drop(_h);
            assert_eq!(inner.irq().0.get(), 15, "inner restores the level it found (15)");
        }
        let _ = b.lock().unwrap();
        drop(g);
        assert_eq!(a.irq().0.get(), 3);
        assert_eq!(*a.lock().unwrap(), 2);
    }

    #[test]
    fn nesting_count() {
        // The global count is only read by Sh4Hw (target); here just its rules.
        let d = irq_depth();
        let s = InterruptScope::enter();
        irq_enter();
        assert_eq!(irq_depth(), d + 2);
        irq_exit();
        drop(s);
        assert_eq!(irq_depth(), d);
    }
}
