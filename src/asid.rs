//! 8-bit ASIDs with a generation counter.
//!
//! A context is `generation << 8 | asid`. An mm whose context belongs to an
//! older generation gets a new ASID when it is next switched in. When the 255
//! ASIDs of a generation are used up the generation advances and the whole TLB
//! is flushed, because entries tagged with recycled ASIDs would otherwise
//! translate for the wrong address space. ASID 0 belongs to `init_mm`
//! (`swapper_pg_dir`) and is never handed out.

/// Number of ASID bits.
pub const ASID_BITS: u32 = 8;
const ASID_MASK: u64 = (1 << ASID_BITS) - 1;
/// Context value meaning "no ASID yet".
pub const NO_CONTEXT: u64 = 0;

/// Hands out ASIDs.
#[derive(Debug)]
pub struct AsidAllocator {
    /// Last context handed out.
    last: u64,
    rollovers: u64,
}

/// Result of [`AsidAllocator::assign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The ASID to put in PTEH.
    pub asid: u8,
    /// The TLB must be flushed completely before the ASID is used.
    pub flush_all: bool,
}

impl Default for AsidAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl AsidAllocator {
    /// Starts at generation 1 (ASID 0 reserved).
    pub const fn new() -> Self {
        AsidAllocator { last: 1 << ASID_BITS, rollovers: 0 }
    }

    /// Current generation.
    pub fn generation(&self) -> u64 {
        self.last >> ASID_BITS
    }

    /// How many times the ASID space rolled over.
    pub fn rollovers(&self) -> u64 {
        self.rollovers
    }

    /// Whether `context` is still valid in the current generation.
    pub fn is_current(&self, context: u64) -> bool {
        context != NO_CONTEXT && (context >> ASID_BITS) == self.generation()
    }

    /// Makes `context` valid, assigning a fresh ASID if it is stale.
    pub fn assign(&mut self, context: &mut u64) -> Assigned {
        if self.is_current(*context) {
            return Assigned { asid: (*context & ASID_MASK) as u8, flush_all: false };
        }
        let mut next = self.last + 1;
        let mut flush_all = false;
        if next & ASID_MASK == 0 {
            // Generation exhausted: every live ASID is now stale.
            next += 1; // skip ASID 0
            self.rollovers += 1;
            flush_all = true;
        }
        self.last = next;
        *context = next;
        Assigned { asid: (next & ASID_MASK) as u8, flush_all }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollover_flushes_and_restarts() {
        let mut a = AsidAllocator::new();
        let mut ctxs = [NO_CONTEXT; 255];
        for (i, c) in ctxs.iter_mut().enumerate() {
            let r = a.assign(c);
            assert_eq!(r.asid as usize, i + 1);
            assert!(!r.flush_all);
        }
        // Still valid: same ASID, no flush.
        assert_eq!(a.assign(&mut ctxs[3]), Assigned { asid: 4, flush_all: false });
        let mut fresh = NO_CONTEXT;
        let r = a.assign(&mut fresh);
        assert_eq!(r, Assigned { asid: 1, flush_all: true });
        assert_eq!(a.rollovers(), 1);
        // Old contexts are stale now and get new ASIDs without a flush.
        assert!(!a.is_current(ctxs[0]));
        assert_eq!(a.assign(&mut ctxs[0]), Assigned { asid: 2, flush_all: false });
    }
}
