//! A page-granular range allocator with guard pages: O(log n) allocation and
//! free in the number of live areas and free holes.
//!
//! Free holes are kept twice: by start (to merge neighbours on free) and by
//! (length, start) (best fit in one ordered lookup). Live areas map their
//! start to their length and a payload.

use crate::addr::VirtAddr;
use crate::error::{Handle, MmError, MmResult};
use alloc::collections::{BTreeMap, BTreeSet};

/// An allocated area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// First page number of the area.
    pub start: u32,
    /// Usable pages (the guard pages that follow are not counted).
    pub pages: u32,
}

/// Allocates ranges of page numbers inside `[base, limit)`.
#[derive(Debug)]
pub struct RangeAllocator<T> {
    base: u32,
    limit: u32,
    guard: u32,
    by_start: BTreeMap<u32, u32>,
    by_size: BTreeSet<(u32, u32)>,
    live: BTreeMap<u32, (u32, T)>,
}

impl<T> RangeAllocator<T> {
    /// An allocator over page numbers `[base, limit)` that leaves `guard`
    /// unmapped pages after every area. A `limit` below `base` gives an empty
    /// allocator (every allocation fails with [`MmError::WindowExhausted`]).
    pub fn new(base: u32, limit: u32, guard: u32) -> Self {
        let limit = limit.max(base);
        let mut a = RangeAllocator {
            base,
            limit,
            guard,
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
            live: BTreeMap::new(),
        };
        if limit > base {
            a.insert_hole(base, limit - base);
        }
        a
    }

    fn insert_hole(&mut self, start: u32, len: u32) {
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
    }

    fn remove_hole(&mut self, start: u32, len: u32) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
    }

    /// Allocates `pages` pages (plus the guard), best fit.
    pub fn alloc(&mut self, pages: u32, payload: T) -> MmResult<Area> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        let need = pages.checked_add(self.guard).ok_or(MmError::Overflow)?;
        if need > self.limit - self.base {
            return Err(MmError::WindowExhausted);
        }
        let &(len, start) = self.by_size.range((need, 0)..).next().ok_or(MmError::WindowExhausted)?;
        self.remove_hole(start, len);
        if len > need {
            self.insert_hole(start + need, len - need);
        }
        self.live.insert(start, (need, payload));
        Ok(Area { start, pages })
    }

    /// The live area starting at page `start`.
    pub fn get(&self, start: u32) -> Option<(Area, &T)> {
        self.live.get(&start).map(|(n, t)| (Area { start, pages: n - self.guard }, t))
    }

    /// The live area containing page `page`.
    pub fn find(&self, page: u32) -> Option<(Area, &T)> {
        let (&s, (n, t)) = self.live.range(..=page).next_back()?;
        if page < s + n - self.guard {
            Some((Area { start: s, pages: n - self.guard }, t))
        } else {
            None
        }
    }

    /// Frees the area starting at page `start`; [`MmError::BadHandle`] if
    /// there is none (double free, or not an area start).
    pub fn free(&mut self, start: u32) -> MmResult<(Area, T)> {
        let (need, payload) =
            self.live.remove(&start).ok_or_else(|| MmError::BadHandle(Handle::Area(VirtAddr::new(start << 12))))?;
        let area = Area { start, pages: need - self.guard };
        let (mut s, mut len) = (start, need);
        if let Some((&ps, &pl)) = self.by_start.range(..start).next_back() {
            if ps + pl == start {
                self.remove_hole(ps, pl);
                s = ps;
                len += pl;
            }
        }
        if let Some(&nl) = self.by_start.get(&(start + need)) {
            self.remove_hole(start + need, nl);
            len += nl;
        }
        self.insert_hole(s, len);
        Ok((area, payload))
    }

    /// Number of live areas.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// Number of free holes.
    pub fn holes(&self) -> usize {
        self.by_start.len()
    }

    /// Page numbers managed, `[base, limit)`.
    pub fn bounds(&self) -> (u32, u32) {
        (self.base, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_merge_and_errors() {
        let mut r = RangeAllocator::new(100, 120, 1);
        assert_eq!(r.alloc(0, ()), Err(MmError::ZeroSize));
        assert_eq!(r.alloc(u32::MAX, ()), Err(MmError::Overflow));
        assert_eq!(r.alloc(20, ()), Err(MmError::WindowExhausted));
        let a = r.alloc(4, ()).unwrap();
        let b = r.alloc(4, ()).unwrap();
        let c = r.alloc(4, ()).unwrap();
        assert_eq!((a.start, b.start, c.start), (100, 105, 110));
        assert_eq!(r.find(103).unwrap().0, a);
        assert!(r.find(104).is_none(), "guard page belongs to no area");
        r.free(b.start).unwrap();
        assert_eq!(r.free(b.start).unwrap_err(), MmError::BadHandle(Handle::Area(VirtAddr::new(b.start << 12))));
        assert_eq!(r.free(101).unwrap_err(), MmError::BadHandle(Handle::Area(VirtAddr::new(101 << 12))));
        // Best fit: the 5-page hole left by b, not the tail.
        assert_eq!(r.alloc(3, ()).unwrap().start, 105);
        r.free(105).unwrap();
        r.free(a.start).unwrap();
        r.free(c.start).unwrap();
        assert_eq!(r.holes(), 1, "everything merged back");
        assert_eq!(r.alloc(19, ()).unwrap().start, 100);
    }

    #[test]
    fn inverted_bounds_give_an_empty_allocator() {
        let mut r = RangeAllocator::new(120, 100, 1);
        assert_eq!(r.bounds(), (120, 120));
        assert_eq!(r.alloc(1, ()), Err(MmError::WindowExhausted));
    }
}
