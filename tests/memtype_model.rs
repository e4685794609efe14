//! `MemTypes` (an interval tree) against a naive reference model: a plain
//! list of reservations scanned in full for every question. Random
//! reserve/release/lookup/conflict sequences from fixed seeds; every answer,
//! error included, must be the same.

use sh4_mm::memtype::MemTypes;
use sh4_mm::{CacheAttr, Frame, Handle, MmError, MmResult, PhysAddr};

/// The specification: every reservation in a list.
#[derive(Default)]
struct Naive {
    list: Vec<(u32, u32, CacheAttr)>,
}

impl Naive {
    fn end(pfn: u32, pages: u32) -> u32 {
        pfn.saturating_add(pages)
    }

    /// First pfn of `[pfn, pfn+pages)` that a reservation of another
    /// attribute covers, and that attribute.
    fn conflict(&self, pfn: u32, pages: u32, attr: CacheAttr) -> Option<(u32, CacheAttr)> {
        let end = Self::end(pfn, pages);
        self.list
            .iter()
            .filter(|&&(s, n, a)| a != attr && s < end && Self::end(s, n) > pfn)
            .map(|&(s, _, a)| (s.max(pfn), a))
            .min_by_key(|&(at, _)| at)
    }

    fn reserve(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        if let Some((at, existing)) = self.conflict(pfn, pages, attr) {
            let phys = Frame::from_pfn(at).map(|f| f.start()).unwrap_or_default();
            return Err(MmError::AttrConflict { phys, requested: attr, existing });
        }
        self.list.push((pfn, pages, attr));
        Ok(())
    }

    fn release(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        let i = self.list.iter().position(|&e| e == (pfn, pages, attr)).ok_or(MmError::BadHandle(
            Handle::Reservation(Frame::from_pfn(pfn).map(Frame::start).unwrap_or_default()),
        ))?;
        self.list.swap_remove(i);
        Ok(())
    }

    fn lookup(&self, pfn: u32) -> Option<CacheAttr> {
        self.list.iter().find(|&&(s, n, _)| s <= pfn && Self::end(s, n) > pfn).map(|&(_, _, a)| a)
    }

    /// `(pfn, pages, attr, count)` sorted like `MemTypes::iter`.
    fn records(&self) -> Vec<(u32, u32, CacheAttr, u32)> {
        let idx = |a: CacheAttr| a as u8;
        let mut l = self.list.clone();
        l.sort_by_key(|&(s, n, a)| (s, n, idx(a)));
        let mut out: Vec<(u32, u32, CacheAttr, u32)> = Vec::new();
        for (s, n, a) in l {
            match out.last_mut() {
                Some(last) if (last.0, last.1, last.2) == (s, n, a) => last.3 += 1,
                _ => out.push((s, n, a, 1)),
            }
        }
        out
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u32 {
        (self.next() % n) as u32
    }
}

fn attr(r: &mut XorShift) -> CacheAttr {
    // Mostly write-back, so that same-attribute overlaps (counted) are common.
    match r.below(10) {
        0..=5 => CacheAttr::WriteBack,
        6..=7 => CacheAttr::WriteThrough,
        _ => CacheAttr::Uncached,
    }
}

/// A pfn range: small ranges in a small space (many overlaps), a few long
/// ones, some at the top of the pfn space (saturating ends).
fn range(r: &mut XorShift, space: u32) -> (u32, u32) {
    let base = if r.below(50) == 0 { u32::MAX - 64 } else { 0 };
    let pfn = base.saturating_add(r.below(space as u64));
    let pages = match r.below(20) {
        0 => r.below(4 * space as u64) + 1,
        1 => 0,
        _ => r.below(12) + 1,
    };
    (pfn, pages)
}

fn run(seed: u64, ops: usize, space: u32) {
    let mut r = XorShift(seed);
    let mut m = MemTypes::new();
    let mut n = Naive::default();
    for step in 0..ops {
        let ctx = |what: &str| format!("seed {seed:#x} step {step}: {what}");
        match r.below(10) {
            0..=3 => {
                let ((pfn, pages), a) = (range(&mut r, space), attr(&mut r));
                assert_eq!(m.reserve(pfn, pages, a), n.reserve(pfn, pages, a), "{}", ctx("reserve"));
            }
            4..=6 => {
                // Mostly a live reservation; sometimes a near miss or noise.
                let (pfn, pages, a) = match (n.list.is_empty(), r.below(6)) {
                    (false, 0..=3) => n.list[r.below(n.list.len() as u64) as usize],
                    (false, 4) => {
                        let (p, s, a) = n.list[r.below(n.list.len() as u64) as usize];
                        (p, s + 1, a)
                    }
                    _ => {
                        let (p, s) = range(&mut r, space);
                        (p, s, attr(&mut r))
                    }
                };
                assert_eq!(m.release(pfn, pages, a), n.release(pfn, pages, a), "{}", ctx("release"));
            }
            7..=8 => {
                let ((pfn, pages), a) = (range(&mut r, space), attr(&mut r));
                assert_eq!(m.conflict(pfn, pages, a), n.conflict(pfn, pages, a), "{}", ctx("conflict"));
            }
            _ => {
                let (pfn, _) = range(&mut r, space);
                assert_eq!(m.lookup(pfn), n.lookup(pfn), "{}", ctx("lookup"));
            }
        }
        assert_eq!(m.len(), n.list.len(), "{}", ctx("len"));
        assert_eq!(m.is_empty(), n.list.is_empty(), "{}", ctx("is_empty"));
        if step % 64 == 0 {
            assert_eq!(m.iter().collect::<Vec<_>>(), n.records(), "{}", ctx("records"));
            for pfn in 0..space + 8 {
                assert_eq!(m.lookup(pfn), n.lookup(pfn), "{}", ctx("lookup sweep"));
            }
        }
    }
    // Drain: everything releases exactly once, then nothing is left.
    for (pfn, pages, a) in n.list.clone() {
        m.release(pfn, pages, a).unwrap();
        n.release(pfn, pages, a).unwrap();
    }
    assert!(m.is_empty() && m.iter().next().is_none(), "seed {seed:#x}: drained");
}

#[test]
fn matches_the_naive_model_dense() {
    for seed in 1..=40u64 {
        run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1500, 64);
    }
}

#[test]
fn matches_the_naive_model_sparse() {
    for seed in 1..=10u64 {
        run(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1, 4000, 5000);
    }
}

/// The vmalloc pattern behind issue 13: one long reservation (the kernel
/// image) and thousands of one-frame records after it. The old structure
/// scanned every record for every conflict check; count node visits instead
/// of time by checking the answers stay right at scale (speed: benches/memtype).
#[test]
fn many_single_frames_beside_one_long_range() {
    let mut m = MemTypes::new();
    m.reserve(0, 1 << 20, CacheAttr::WriteBack).unwrap();
    for pfn in (1 << 20)..(1 << 20) + 20_000 {
        m.reserve(pfn, 1, CacheAttr::WriteBack).unwrap();
    }
    m.reserve((1 << 20) + 20_000, 4, CacheAttr::Uncached).unwrap();
    assert_eq!(m.conflict(5, 1 << 21, CacheAttr::Uncached), Some((5, CacheAttr::WriteBack)));
    assert_eq!(m.conflict(1 << 20, 30_000, CacheAttr::WriteBack), Some(((1 << 20) + 20_000, CacheAttr::Uncached)));
    assert_eq!(m.lookup((1 << 20) + 19_999), Some(CacheAttr::WriteBack));
    assert_eq!(m.lookup((1 << 20) + 20_003), Some(CacheAttr::Uncached));
    assert_eq!(m.lookup((1 << 20) + 20_004), None);
    assert_eq!(m.len(), 20_002);
    for pfn in (1 << 20)..(1 << 20) + 20_000 {
        m.release(pfn, 1, CacheAttr::WriteBack).unwrap();
    }
    assert_eq!(
        m.release(0, 1 << 20, CacheAttr::Uncached),
        Err(MmError::BadHandle(Handle::Reservation(PhysAddr::new(0).unwrap())))
    );
    assert_eq!(m.len(), 2);
}
