//! Cache-attribute ("memtype") tracking.
//!
//! Every mapping of a physical range records its attribute (write-back,
//! write-through, uncached). A new mapping whose attribute differs from a live
//! one on any overlapping frame is refused with [`MmError::AttrConflict`],
//! naming both: two aliases with different cacheability would let a cached
//! alias hold stale data or write back over what the uncached one wrote. Ranges
//! used through P1 (cached) — the kernel image, heaps, DMA pools the OS drives
//! by hand — are declared with [`crate::MemoryManager::memtype_reserve`]; P2 is
//! always uncached and needs no entry.

use crate::addr::{Frame, FrameRange};
use crate::error::{Handle, MmError, MmResult};
use crate::pte::CacheAttr;
use alloc::vec::Vec;

/// Live reservations, each `[pfn, pfn+pages)` with one attribute.
/// Overlapping reservations with the same attribute are allowed and counted;
/// identical ones share a record with a count.
///
/// Two stores, one set of answers. One-frame write-back reservations — what
/// the manager makes for every RAM frame it maps itself (vmalloc pages, user
/// pages) — are per-frame counts in a table indexed by pfn:
/// O(1) to reserve, release and look up, like Linux's PAT keeping the type
/// of RAM pages in page flags. A conflict check of another attribute scans
/// the table only where the asked range overlaps it. Everything else (I/O
/// ranges, DMA buffers, declared P1 ranges, and one-frame write-back
/// reservations the table cannot hold) lives in an interval tree: a treap (binary search tree on `(pfn, pages, attr)`,
/// heap-ordered on pseudo-random priorities, so its expected depth is
/// O(log n) whatever order reservations arrive in) whose nodes also hold,
/// per attribute, the largest end pfn in their subtree. A conflict or a
/// lookup descends only into subtrees that hold an overlapping reservation,
/// so [`Self::conflict`], [`Self::lookup`], [`Self::reserve`] and
/// [`Self::release`] are O(log n) however long or numerous the reservations
/// are. Nodes live in one `Vec` (freed slots are reused), so a reservation
/// costs no heap allocation once the arena has grown.
#[derive(Default)]
pub struct MemTypes {
    /// One-frame write-back reservations, counted per frame.
    frames: FrameCounts,
    nodes: Vec<Node>,
    /// Free slots in `nodes`.
    free: Vec<u32>,
    root: u32,
    /// Live reservations in both stores (identical ones counted separately).
    live: usize,
    /// xorshift32 state for node priorities (0 until the first insert).
    seed: u32,
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    pfn: u32,
    pages: u32,
    /// `pfn + pages`, saturated.
    end: u32,
    attr: CacheAttr,
    /// Reservations with exactly these arguments.
    count: u32,
    prio: u32,
    left: u32,
    right: u32,
    /// Largest `end` of a reservation with attribute `i` (see [`attr_index`])
    /// in this subtree; 0 when there is none (an end is never 0: pages > 0).
    max_end: [u32; 3],
}

const fn attr_index(a: CacheAttr) -> usize {
    match a {
        CacheAttr::WriteBack => 0,
        CacheAttr::WriteThrough => 1,
        CacheAttr::Uncached => 2,
    }
}

/// Attribute-index bit masks.
const ALL: u8 = 0b111;
const fn others(a: CacheAttr) -> u8 {
    ALL & !(1 << attr_index(a))
}

impl Node {
    #[inline]
    fn key(&self) -> (u32, u32, usize) {
        (self.pfn, self.pages, attr_index(self.attr))
    }
}

impl MemTypes {
    /// No reservations.
    pub const fn new() -> Self {
        MemTypes { frames: FrameCounts::new(), nodes: Vec::new(), free: Vec::new(), root: NIL, live: 0, seed: 0 }
    }

    // On the SH-4 target a whole `Node` copy is an out-of-line memcpy, so
    // the hot paths below read and write single fields.

    /// Largest end among the reservations of `mask`'s attributes in subtree `t`.
    #[inline]
    fn max_end(&self, t: u32, mask: u8) -> u32 {
        if t == NIL {
            return 0;
        }
        let m = &self.nodes[t as usize].max_end;
        let a = if mask & 1 != 0 { m[0] } else { 0 };
        let b = if mask & 2 != 0 { m[1] } else { 0 };
        let c = if mask & 4 != 0 { m[2] } else { 0 };
        a.max(b).max(c)
    }

    /// Recomputes `t`'s augmentation from its own range and its children's.
    fn update(&mut self, t: u32) {
        let (l, r, i, end) = {
            let n = &self.nodes[t as usize];
            (n.left, n.right, attr_index(n.attr), n.end)
        };
        let (mut m0, mut m1, mut m2) = (0, 0, 0);
        for c in [l, r] {
            if c != NIL {
                let cm = &self.nodes[c as usize].max_end;
                m0 = m0.max(cm[0]);
                m1 = m1.max(cm[1]);
                m2 = m2.max(cm[2]);
            }
        }
        let m = &mut self.nodes[t as usize].max_end;
        *m = [m0, m1, m2];
        m[i] = m[i].max(end);
    }

    /// The leftmost (smallest pfn) reservation of `mask`'s attributes in
    /// subtree `t` that ends after `pfn`. Only subtrees whose `max_end` says
    /// they hold one are entered, so this never backtracks: O(depth).
    fn first_ending_after(&self, mut t: u32, pfn: u32, mask: u8) -> Option<u32> {
        if self.max_end(t, mask) <= pfn {
            return None;
        }
        // Invariant: subtree t holds one. If neither its left subtree nor
        // t itself does, its right subtree must.
        while t != NIL {
            let n = &self.nodes[t as usize];
            if self.max_end(n.left, mask) > pfn {
                t = n.left;
            } else if mask & (1 << attr_index(n.attr)) != 0 && n.end > pfn {
                return Some(t);
            } else {
                t = n.right;
            }
        }
        None
    }

    /// The attribute of a live reservation overlapping `[pfn, pfn+pages)`
    /// that differs from `attr`, with the first conflicting pfn.
    pub fn conflict(&self, pfn: u32, pages: u32, attr: CacheAttr) -> Option<(u32, CacheAttr)> {
        let end = pfn.saturating_add(pages);
        let tree = self.tree_conflict(pfn, end, attr);
        if attr == CacheAttr::WriteBack {
            // The per-frame table holds write-back reservations only.
            return tree;
        }
        // The first conflicting frame of either store; the table is scanned
        // only up to the tree's answer.
        let stop = tree.map_or(end, |(at, _)| at);
        match self.frames.first_in(pfn, stop) {
            Some(at) => Some((at, CacheAttr::WriteBack)),
            None => tree,
        }
    }

    /// [`Self::conflict`] among the tree's reservations, for `[pfn, end)`.
    #[inline]
    fn tree_conflict(&self, pfn: u32, end: u32, attr: CacheAttr) -> Option<(u32, CacheAttr)> {
        // Of the reservations that end after pfn, the one starting first
        // overlaps the range if anything does.
        let t = self.first_ending_after(self.root, pfn, others(attr))?;
        let n = &self.nodes[t as usize];
        (n.pfn < end).then(|| (n.pfn.max(pfn), n.attr))
    }

    /// Records `[pfn, pfn+pages)` as mapped with `attr`, or refuses it.
    pub fn reserve(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        if let Some((at, existing)) = self.conflict(pfn, pages, attr) {
            return Err(MmError::AttrConflict {
                phys: Frame::from_pfn(at).map(|f| f.start()).unwrap_or_default(),
                requested: attr,
                existing,
            });
        }
        self.reserve_unchecked(pfn, pages, attr)
    }

    /// [`Self::reserve`] for a range the caller has just checked with
    /// [`Self::conflict`] (nothing changed in between).
    pub(crate) fn reserve_unchecked(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        if pages == 0 {
            return Err(MmError::ZeroSize);
        }
        if pages == 1 && attr == CacheAttr::WriteBack && self.frames.add(pfn) {
            self.live += 1;
            return Ok(());
        }
        let key = (pfn, pages, attr_index(attr));
        if let Some(t) = self.find(key) {
            self.nodes[t as usize].count += 1;
        } else {
            // Grow the arena first: the only step that can fail. The free
            // list gets room for every slot, so release never allocates.
            if self.free.is_empty() && self.nodes.len() == self.nodes.capacity() {
                self.nodes.try_reserve(1).map_err(|_| MmError::OutOfMemory)?;
                let want = self.nodes.capacity() - self.free.len();
                self.free.try_reserve_exact(want).map_err(|_| MmError::OutOfMemory)?;
            }
            let prio = self.next_prio();
            let node = Node {
                pfn,
                pages,
                end: pfn.saturating_add(pages),
                attr,
                count: 1,
                prio,
                left: NIL,
                right: NIL,
                max_end: [0; 3],
            };
            let t = match self.free.pop() {
                Some(t) => {
                    self.nodes[t as usize] = node;
                    t
                }
                None => {
                    self.nodes.push(node);
                    (self.nodes.len() - 1) as u32
                }
            };
            self.update(t);
            self.insert(t);
        }
        self.live += 1;
        Ok(())
    }

    /// Drops one reservation made with exactly these arguments.
    pub fn release(&mut self, pfn: u32, pages: u32, attr: CacheAttr) -> MmResult<()> {
        if pages == 1 && attr == CacheAttr::WriteBack && self.frames.remove(pfn) {
            self.live -= 1;
            return Ok(());
        }
        let key = (pfn, pages, attr_index(attr));
        let t = self.find(key).ok_or_else(|| bad_reservation(pfn))?;
        self.live -= 1;
        if self.nodes[t as usize].count > 1 {
            self.nodes[t as usize].count -= 1;
            return Ok(());
        }
        let end = self.nodes[t as usize].end;
        self.root = self.remove(self.root, key, end);
        self.free.push(t);
        if self.root == NIL && self.nodes.len() > 64 {
            // Nothing live: give a large arena back (a small one is kept, so
            // that one reservation coming and going costs no allocation).
            self.nodes = Vec::new();
            self.free = Vec::new();
        } else if self.root == NIL {
            self.nodes.clear();
            self.free.clear();
        }
        Ok(())
    }

    /// [`Self::reserve`] for a typed range.
    pub fn reserve_range(&mut self, frames: FrameRange, attr: CacheAttr) -> MmResult<()> {
        self.reserve(frames.first().pfn(), frames.frames(), attr)
    }

    /// [`Self::release`] for a typed range.
    pub fn release_range(&mut self, frames: FrameRange, attr: CacheAttr) -> MmResult<()> {
        self.release(frames.first().pfn(), frames.frames(), attr)
    }

    /// One one-frame reservation per frame of `frames` (so that the pages
    /// can be released one by one), all or nothing: on a conflict the ones
    /// made are released again.
    pub(crate) fn reserve_each(
        &mut self,
        frames: impl Iterator<Item = Frame> + Clone,
        attr: CacheAttr,
    ) -> MmResult<()> {
        // One conflict check for the span from the lowest to the highest
        // frame: when nothing of another attribute overlaps it (the usual
        // case: RAM frames, I/O ranges elsewhere), no frame needs its own.
        let (lo, hi) = frames.clone().fold((u32::MAX, 0), |(lo, hi), f| (lo.min(f.pfn()), hi.max(f.pfn())));
        let checked = lo <= hi && self.conflict(lo, hi - lo + 1, attr).is_none();
        for (i, f) in frames.clone().enumerate() {
            let r = if checked { self.reserve_unchecked(f.pfn(), 1, attr) } else { self.reserve(f.pfn(), 1, attr) };
            if let Err(e) = r {
                crate::rollback::undo_one(self.release_each(frames.take(i), attr));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Undoes [`Self::reserve_each`]: one one-frame release per frame. Every
    /// frame is released even after a failure; the first error is returned.
    pub(crate) fn release_each(&mut self, frames: impl Iterator<Item = Frame>, attr: CacheAttr) -> MmResult<()> {
        let mut first = Ok(());
        for f in frames {
            let r = self.release(f.pfn(), 1, attr);
            first = first.and(r);
        }
        first
    }

    /// Releases the reservation of a PTE that is going away: its frame's
    /// one-frame reservation (every mapping made one). I/O and io-mapping
    /// PTEs, marked SPECIAL, are accounted by their area instead.
    pub(crate) fn release_pte(&mut self, pte: crate::pte::Pte) {
        if !pte.flags().contains(crate::pte::PteFlags::SPECIAL) {
            let r = self.release(pte.frame().pfn(), 1, pte.cache_attr());
            debug_assert!(r.is_ok(), "a mapped frame has its reservation: {r:?}");
        }
    }

    /// The attribute frame `pfn` is mapped with, if any mapping is live.
    pub fn lookup(&self, pfn: u32) -> Option<CacheAttr> {
        if self.frames.count(pfn) != 0 {
            return Some(CacheAttr::WriteBack);
        }
        let t = self.first_ending_after(self.root, pfn, ALL)?;
        let n = &self.nodes[t as usize];
        (n.pfn <= pfn).then_some(n.attr)
    }

    /// Number of live reservations: every successful [`Self::reserve`] not
    /// yet released, identical ones counted separately, whichever store
    /// holds it (so a vmalloc of n pages adds n, one per frame, whether
    /// those sit in the per-frame table or in the tree).
    pub fn len(&self) -> usize {
        self.live
    }

    /// How many of [`Self::len`] are per-frame counts (one-frame write-back
    /// reservations held in the table rather than the tree).
    pub fn per_frame(&self) -> usize {
        self.frames.live
    }

    /// Whether nothing is reserved.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The live reservations in `(pfn, pages, attr)` order:
    /// `(pfn, pages, attr, count)`, both stores merged (a one-frame
    /// write-back reservation held in both is one record with the sum).
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, CacheAttr, u32)> + '_ {
        let key = |r: &(u32, u32, CacheAttr, u32)| (r.0, r.1, attr_index(r.2));
        let mut a = self.frames.iter().peekable();
        let mut b = self.tree_iter().peekable();
        core::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                core::cmp::Ordering::Less => a.next(),
                core::cmp::Ordering::Greater => b.next(),
                core::cmp::Ordering::Equal => {
                    let (x, y) = (a.next()?, b.next()?);
                    Some((x.0, x.1, x.2, x.3 + y.3))
                }
            },
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        })
    }

    /// The tree's reservations in key order.
    fn tree_iter(&self) -> impl Iterator<Item = (u32, u32, CacheAttr, u32)> + '_ {
        let mut stack = Vec::new();
        let mut t = self.root;
        core::iter::from_fn(move || {
            while t != NIL {
                stack.push(t);
                t = self.nodes[t as usize].left;
            }
            let n = self.nodes[stack.pop()? as usize];
            t = n.right;
            Some((n.pfn, n.pages, n.attr, n.count))
        })
    }

    fn find(&self, key: (u32, u32, usize)) -> Option<u32> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            match key.cmp(&n.key()) {
                core::cmp::Ordering::Less => t = n.left,
                core::cmp::Ordering::Greater => t = n.right,
                core::cmp::Ordering::Equal => return Some(t),
            }
        }
        None
    }

    fn next_prio(&mut self) -> u32 {
        // xorshift32: priorities only need to be unrelated to the keys.
        let mut x = if self.seed == 0 { 0x9E37_79B9 } else { self.seed };
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// Inserts node `x` (not in the tree, its key absent): down to where
    /// its priority belongs, raising the maxima it passes (it only adds a
    /// range), then the subtree there is split around it.
    fn insert(&mut self, x: u32) {
        let (xkey, xprio, xi, xend) = {
            let n = &self.nodes[x as usize];
            (n.key(), n.prio, attr_index(n.attr), n.end)
        };
        let (mut parent, mut left) = (NIL, false);
        let mut t = self.root;
        while t != NIL && self.nodes[t as usize].prio >= xprio {
            let n = &mut self.nodes[t as usize];
            n.max_end[xi] = n.max_end[xi].max(xend);
            parent = t;
            left = xkey < n.key();
            t = if left { n.left } else { n.right };
        }
        let (l, r) = self.split(t, xkey);
        self.nodes[x as usize].left = l;
        self.nodes[x as usize].right = r;
        self.update(x);
        if parent == NIL {
            self.root = x;
        } else if left {
            self.nodes[parent as usize].left = x;
        } else {
            self.nodes[parent as usize].right = x;
        }
    }

    /// Removes the node with `key` (present) from subtree `t`; returns the
    /// new subtree root.
    /// A node's maxima change only if the removed range (ending at `end`)
    /// was what set them.
    fn remove(&mut self, t: u32, key: (u32, u32, usize), end: u32) -> u32 {
        let (tkey, l, r) = {
            let n = &self.nodes[t as usize];
            (n.key(), n.left, n.right)
        };
        match key.cmp(&tkey) {
            core::cmp::Ordering::Equal => return self.merge(l, r),
            core::cmp::Ordering::Less => {
                let c = self.remove(l, key, end);
                self.nodes[t as usize].left = c;
            }
            core::cmp::Ordering::Greater => {
                let c = self.remove(r, key, end);
                self.nodes[t as usize].right = c;
            }
        }
        if self.nodes[t as usize].max_end[key.2] == end {
            self.update(t);
        }
        t
    }

    /// Splits subtree `t` into keys `< key` and keys `>= key`.
    fn split(&mut self, t: u32, key: (u32, u32, usize)) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let (tkey, tl, tr) = {
            let n = &self.nodes[t as usize];
            (n.key(), n.left, n.right)
        };
        if tkey < key {
            let (l, r) = self.split(tr, key);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split(tl, key);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Joins two subtrees, every key of `a` below every key of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio >= self.nodes[b as usize].prio {
            let m = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = m;
            self.update(a);
            a
        } else {
            let m = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = m;
            self.update(b);
            b
        }
    }
}

/// Per-frame counts of one-frame write-back reservations over the pfns
/// `[base, base + counts.len())`. The table grows (in [`CHUNK`]-frame steps,
/// doubling) to cover the frames reserved, up to [`MAX_SPAN`] frames
/// (64 KiB of counts); a frame it cannot cover, a count that would overflow,
/// or a failed allocation sends that reservation to the tree instead. The
/// table is freed when its last count goes (nothing stays allocated while
/// nothing is reserved: the interrupt-context tests balance the heap).
#[derive(Default)]
struct FrameCounts {
    base: u32,
    counts: Vec<u16>,
    /// Sum of `counts`.
    live: usize,
}

/// Growth step of the table, in frames (1 MiB of RAM, 512 bytes of counts).
const CHUNK: u64 = 256;
/// Largest span the table covers, in frames (128 MiB of RAM).
const MAX_SPAN: u64 = 1 << 15;

impl FrameCounts {
    const fn new() -> Self {
        FrameCounts { base: 0, counts: Vec::new(), live: 0 }
    }

    #[inline]
    fn count(&self, pfn: u32) -> u16 {
        self.counts.get(pfn.wrapping_sub(self.base) as usize).copied().unwrap_or(0)
    }

    /// Counts one reservation of `pfn`; false if the table cannot.
    #[inline]
    fn add(&mut self, pfn: u32) -> bool {
        let i = pfn.wrapping_sub(self.base) as usize;
        if i >= self.counts.len() && !self.grow(pfn) {
            return false;
        }
        let i = pfn.wrapping_sub(self.base) as usize;
        match self.counts.get_mut(i) {
            Some(c) if *c < u16::MAX => {
                *c += 1;
                self.live += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops one reservation of `pfn`; false if the table holds none.
    #[inline]
    fn remove(&mut self, pfn: u32) -> bool {
        let i = pfn.wrapping_sub(self.base) as usize;
        match self.counts.get_mut(i) {
            Some(c) if *c != 0 => {
                *c -= 1;
                self.live -= 1;
                if self.live == 0 {
                    self.counts = Vec::new();
                }
                true
            }
            _ => false,
        }
    }

    /// Extends the table to cover `pfn`; false if it would span more than
    /// [`MAX_SPAN`] frames or the allocation fails.
    #[cold]
    fn grow(&mut self, pfn: u32) -> bool {
        let p = pfn as u64;
        let down = p & !(CHUNK - 1);
        let up = (p + CHUNK) & !(CHUNK - 1);
        let (b, e) = (self.base as u64, self.base as u64 + self.counts.len() as u64);
        let (lo, hi) = if self.counts.is_empty() {
            (down, up)
        } else {
            // Doubling in the direction of growth keeps repeated growth
            // linear overall; fall back to the bare union near the limit.
            let len = e - b;
            let doubled = if p < b { (down.min(b.saturating_sub(len)), e) } else { (b, up.max(e + len)) };
            if doubled.1 - doubled.0 <= MAX_SPAN {
                doubled
            } else {
                (down.min(b), up.max(e))
            }
        };
        if hi - lo > MAX_SPAN {
            return false;
        }
        let mut counts: Vec<u16> = Vec::new();
        if counts.try_reserve_exact((hi - lo) as usize).is_err() {
            return false;
        }
        // Zeroed with one memset (`resize` is a store loop in the SH-4 build).
        // SAFETY: the capacity was reserved just above, and all-zero bytes
        // are a valid `u16`.
        unsafe {
            core::ptr::write_bytes(counts.as_mut_ptr(), 0, (hi - lo) as usize);
            counts.set_len((hi - lo) as usize);
        }
        let at = (b.max(lo) - lo) as usize;
        if !self.counts.is_empty() {
            counts[at..at + self.counts.len()].copy_from_slice(&self.counts);
        }
        self.counts = counts;
        self.base = lo as u32;
        true
    }

    /// The first frame in `[lo, hi)` with a count.
    fn first_in(&self, lo: u32, hi: u32) -> Option<u32> {
        if self.live == 0 {
            return None;
        }
        let b = self.base as u64;
        let s = (lo as u64).max(b);
        let e = (hi as u64).min(b + self.counts.len() as u64);
        if s >= e {
            return None;
        }
        let i = self.counts[(s - b) as usize..(e - b) as usize].iter().position(|&c| c != 0)?;
        Some((s as usize + i) as u32)
    }

    /// `(pfn, 1, WriteBack, count)` for every counted frame, in pfn order.
    fn iter(&self) -> impl Iterator<Item = (u32, u32, CacheAttr, u32)> + '_ {
        let base = self.base;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != 0)
            .map(move |(i, &c)| (base.wrapping_add(i as u32), 1, CacheAttr::WriteBack, c as u32))
    }
}

fn bad_reservation(pfn: u32) -> MmError {
    MmError::BadHandle(Handle::Reservation(Frame::from_pfn(pfn).map(Frame::start).unwrap_or_default()))
}

impl core::fmt::Debug for MemTypes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A physical range reserved once with one attribute, whose pages are then
/// mapped and unmapped one at a time without re-checking (like Linux's
/// io-mapping, for a driver that touches a large aperture page by page).
///
/// It counts its mapped pages: the reservation is what keeps a conflicting
/// alias out, so it cannot end while a page is still mapped.
#[derive(Debug, PartialEq, Eq)]
pub struct IoMapping {
    frames: FrameRange,
    attr: CacheAttr,
    mapped: u32,
    freed: bool,
}

impl IoMapping {
    /// Pages in the range.
    pub fn pages(&self) -> u32 {
        self.frames.frames()
    }
    /// Pages currently mapped through [`crate::MemoryManager::io_mapping_map`].
    pub fn mapped(&self) -> u32 {
        self.mapped
    }
    /// A new io-mapping over `frames`, reserved with `attr` by the caller.
    pub(crate) fn new(frames: FrameRange, attr: CacheAttr) -> Self {
        IoMapping { frames, attr, mapped: 0, freed: false }
    }
    /// The reserved range.
    pub(crate) fn frames(&self) -> FrameRange {
        self.frames
    }
    pub(crate) fn attr(&self) -> CacheAttr {
        self.attr
    }
    pub(crate) fn is_freed(&self) -> bool {
        self.freed
    }
    pub(crate) fn mapped_one(&mut self) {
        self.mapped += 1;
    }
    pub(crate) fn unmapped_one(&mut self) {
        self.mapped -= 1;
    }
    pub(crate) fn set_freed(&mut self) {
        self.freed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_overlaps_and_release() {
        let mut m = MemTypes::new();
        m.reserve(100, 10, CacheAttr::WriteBack).unwrap();
        m.reserve(105, 2, CacheAttr::WriteBack).unwrap(); // same attribute: fine
        let e = m.reserve(108, 4, CacheAttr::Uncached).unwrap_err();
        assert_eq!(
            e,
            MmError::AttrConflict {
                phys: Frame::from_pfn(108).unwrap().start(),
                requested: CacheAttr::Uncached,
                existing: CacheAttr::WriteBack
            }
        );
        m.reserve(110, 1, CacheAttr::Uncached).unwrap(); // adjacent, not overlapping
        assert_eq!(m.lookup(109), Some(CacheAttr::WriteBack));
        assert_eq!(m.lookup(110), Some(CacheAttr::Uncached));
        assert_eq!(m.release(100, 9, CacheAttr::WriteBack), Err(bad_reservation(100)));
        m.release(100, 10, CacheAttr::WriteBack).unwrap();
        assert_eq!(m.lookup(104), None);
        assert_eq!(m.lookup(106), Some(CacheAttr::WriteBack));
        assert_eq!(m.len(), 2);
    }
}
