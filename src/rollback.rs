//! The one rollback mechanism: an operation that takes several steps
//! (allocate frames, reserve their memtype, claim a window range, map)
//! records each completed step in an [`Undo`] log; if a later step fails,
//! [`Undo::finish`] undoes the recorded ones in reverse order, so a failed
//! call leaves everything as it was ("nothing leaked on failure").
//!
//! An undo step reverses something the same call did a moment ago, with
//! nothing in between that could have changed it, so it cannot fail: each
//! one is `debug_assert!`ed (a failure is a bug in the manager, and the host
//! tests and the fuzzer run with debug assertions). A release build skips a
//! failed undo step rather than panicking in the middle of an error path.

use crate::addr::FrameRange;
use crate::error::{MmError, MmResult};
use crate::pte::CacheAttr;

/// Most steps any operation records (vmalloc: window range, frames,
/// memtypes).
const MAX_STEPS: usize = 4;

/// A completed step of a multi-step operation, with what undoing it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Frames taken from the frame allocator: give them back.
    Frames(FrameRange),
    /// Frames taken one at a time and listed by the operation itself (its
    /// list is what the undo reads): give each back.
    FrameList,
    /// One-frame memtype reservations, one per frame of the operation's
    /// list: release each.
    FrameListMemtypes(CacheAttr),
    /// A memtype reservation of a whole range: release it.
    Memtype(FrameRange, CacheAttr),
    /// A vmalloc-window range, by its first page number: free it.
    VmallocArea(u32),
    /// A consistent-window range, by its first page number: free it.
    ConsistentArea(u32),
    /// A claimed general-purpose fixmap slot: release the claim.
    FixmapClaim(u32),
    /// A mapped fixmap slot: unmap it (purge, flush, release its memtype).
    FixmapMapping(u32),
    /// A structure reference (`mm_grab`) on an address space: drop it.
    MmReference(crate::mm::MmId),
}

/// The undo log of one operation (see the module documentation). Fixed
/// capacity: recording a step never allocates.
#[must_use = "an undo log must be settled with .finish(result, undo)"]
pub(crate) struct Undo {
    steps: [Option<Step>; MAX_STEPS],
    len: usize,
}

impl Undo {
    /// An empty log.
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Undo { steps: [None; MAX_STEPS], len: 0 }
    }

    /// Records a completed step.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn push(&mut self, step: Step) {
        debug_assert!(self.len < MAX_STEPS, "undo log full: raise MAX_STEPS");
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = Some(step);
            self.len += 1;
        }
    }

    /// Settles the operation: on success the steps stay done; on failure
    /// `undo` reverses each recorded step, the last one first, and the
    /// original error is returned.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn finish<T>(mut self, result: MmResult<T>, undo: impl FnMut(Step) -> MmResult<()>) -> MmResult<T> {
        let len = core::mem::replace(&mut self.len, 0);
        if result.is_err() {
            self.unwind(len, undo);
        }
        result
    }

    /// Undoes the first `len` steps, last first (the error path: kept out of
    /// line, so that the success path of every operation stays short).
    #[cold]
    #[track_caller]
    fn unwind(&mut self, len: usize, mut undo: impl FnMut(Step) -> MmResult<()>) {
        for slot in self.steps.iter_mut().take(len).rev() {
            if let Some(step) = slot.take() {
                let undone = undo(step);
                debug_assert!(undone.is_ok(), "undoing {step:?} failed: {undone:?}");
            }
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        // Every log is settled by `finish` (which empties it); one dropped
        // with steps in it would leak them on an error path.
        debug_assert!(self.len == 0, "undo log dropped unsettled: {:?}", &self.steps[..self.len]);
    }
}

/// Undoes one step that a single call made a moment ago (a one-step
/// rollback, without a log). `debug_assert!`ed like every undo step.
#[track_caller]
pub(crate) fn undo_one(undone: MmResult<()>) {
    debug_assert!(undone.is_ok(), "undo failed: {undone:?}");
}

/// The undo of a step kind that the operation never records: reported as
/// a failed undo (so the `debug_assert!` in [`Undo::finish`] names it).
pub(crate) fn not_recorded_here(_step: Step) -> MmResult<()> {
    Err(MmError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Frame;
    use alloc::vec::Vec;

    fn frames(pfn: u32, n: u32) -> FrameRange {
        FrameRange::new(Frame::from_pfn(pfn).unwrap(), n).unwrap()
    }

    #[test]
    fn failure_undoes_every_step_last_first_success_none() {
        let mut seen = Vec::new();
        let mut u = Undo::new();
        u.push(Step::Frames(frames(1, 2)));
        u.push(Step::VmallocArea(7));
        let r: MmResult<()> = u.finish(Err(MmError::OutOfFrames), |s| {
            seen.push(s);
            Ok(())
        });
        assert_eq!(r, Err(MmError::OutOfFrames));
        assert_eq!(seen, [Step::VmallocArea(7), Step::Frames(frames(1, 2))]);
        let mut u = Undo::new();
        u.push(Step::FixmapClaim(9));
        assert_eq!(u.finish(Ok(5), |_| panic!("nothing to undo on success")), Ok(5));
    }

    #[test]
    #[should_panic(expected = "undoing FixmapClaim(3) failed")]
    fn a_failing_undo_step_is_a_bug() {
        let mut u = Undo::new();
        u.push(Step::FixmapClaim(3));
        let _ = u.finish::<()>(Err(MmError::Busy), |_| Err(MmError::Busy));
    }

    #[test]
    #[should_panic(expected = "dropped unsettled")]
    fn an_unsettled_log_is_a_bug() {
        let mut u = Undo::new();
        u.push(Step::ConsistentArea(1));
        drop(u);
    }
}
