//! Address spaces (mm) and the `mm` / `active_mm` protocol.
//!
//! * A user task has `mm == Some(id)` and runs on it.
//! * A kernel thread has `mm == None`; on a switch it borrows the previous
//!   task's `active_mm` (taking a reference with `mm_grab`, so the address
//!   space — at least its first-level table — stays alive while borrowed) and
//!   releases it when it is switched out.
//! * Two counts, as in Linux: `users` (tasks sharing the address space; at 0
//!   the user mappings are torn down) and `count` (references to the
//!   structure and its first-level table; the users together hold one).

use crate::addr::Frame;

/// Handle of an address space. Stale handles (of a freed mm) are detected
/// and rejected with [`crate::MmError::BadHandle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl MmId {
    /// The handle as one integer (for C callers): generation << 32 | index.
    pub const fn to_raw(self) -> u64 {
        ((self.gen as u64) << 32) | self.index as u64
    }
    /// A handle from [`MmId::to_raw`]; a forged or stale value is rejected
    /// later by every operation with [`crate::MmError::BadHandle`].
    pub const fn from_raw(raw: u64) -> Self {
        MmId { index: raw as u32, gen: (raw >> 32) as u32 }
    }
}

/// The kernel's own address space, whose first-level table is
/// `swapper_pg_dir`. It is never freed.
pub const INIT_MM: MmId = MmId { index: 0, gen: 0 };

/// The per-task part of the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskMm {
    /// The task's own address space (`None` for kernel threads).
    pub mm: Option<MmId>,
    /// The address space the task runs on while it is current.
    pub active_mm: Option<MmId>,
}

impl TaskMm {
    /// A user task that owns a reference (`users`) to `mm`.
    pub const fn user(mm: MmId) -> Self {
        TaskMm { mm: Some(mm), active_mm: None }
    }
    /// A kernel thread that has not run yet.
    pub const fn kernel_thread() -> Self {
        TaskMm { mm: None, active_mm: None }
    }
    /// The boot context: a kernel thread running on `init_mm`.
    pub const fn boot() -> Self {
        TaskMm { mm: None, active_mm: Some(INIT_MM) }
    }
}

#[derive(Debug)]
pub(crate) struct MmData {
    pub(crate) pgd: Frame,
    pub(crate) context: u64,
    pub(crate) users: u32,
    pub(crate) count: u32,
}

#[derive(Debug)]
pub(crate) struct MmSlot {
    pub(crate) gen: u32,
    pub(crate) data: Option<MmData>,
}
