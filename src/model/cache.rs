//! The SH-4 operand cache as far as aliasing is concerned: 16 KiB, direct
//! mapped, 32-byte lines, indexed by **virtual** address bits 13:5 and tagged
//! by physical address. Two mappings of one frame whose VA bits 13:12 (the
//! colour) differ use different lines: a write through one is invisible
//! through the other until it is written back, and a stale line can be
//! written back over newer data. Write-through (WT) pages update memory on
//! every write and do not allocate on a write miss; write-back pages allocate
//! and mark the line dirty.

extern crate std;
use super::PhysMemory;
use crate::addr::PhysAddr;
use crate::frame::PhysAccess;

/// Line size in bytes.
pub const LINE: u32 = 32;
/// Number of lines (16 KiB / 32).
pub const LINES: usize = 512;

#[derive(Clone, Copy)]
struct Line {
    valid: bool,
    dirty: bool,
    /// Physical address of the line's first byte.
    pa: u32,
    data: [u8; LINE as usize],
}

/// How an access is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// C=0 (or P2): straight to memory.
    Uncached,
    /// C=1, WT=0 (and P1).
    WriteBack,
    /// C=1, WT=1.
    WriteThrough,
}

/// The operand cache.
pub struct OpCache {
    lines: std::vec::Vec<Line>,
    /// Write-backs of dirty lines so far.
    pub writebacks: u32,
}

impl Default for OpCache {
    fn default() -> Self {
        Self::new()
    }
}

fn index(va: u32) -> usize {
    ((va >> 5) & (LINES as u32 - 1)) as usize
}

impl OpCache {
    /// An empty (all invalid) cache.
    pub fn new() -> Self {
        OpCache {
            lines: std::vec![Line { valid: false, dirty: false, pa: 0, data: [0; LINE as usize] }; LINES],
            writebacks: 0,
        }
    }

    fn write_back(&mut self, i: usize, mem: &PhysMemory) {
        let l = self.lines[i];
        if l.valid && l.dirty {
            let p = mem.ptr(PhysAddr::new(l.pa).unwrap_or_default());
            // SAFETY: a whole line inside simulated RAM (lines come from it).
            unsafe { core::ptr::copy_nonoverlapping(l.data.as_ptr(), p, LINE as usize) };
            self.lines[i].dirty = false;
            self.writebacks += 1;
        }
    }

    fn lookup(&mut self, va: u32, pa: u32, mem: &PhysMemory, allocate: bool) -> Option<usize> {
        let i = index(va);
        let line_pa = pa & !(LINE - 1);
        if self.lines[i].valid && self.lines[i].pa == line_pa {
            return Some(i);
        }
        if !allocate {
            return None;
        }
        self.write_back(i, mem);
        let mut data = [0u8; LINE as usize];
        let p = mem.ptr(PhysAddr::new(line_pa).unwrap_or_default());
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(p, data.as_mut_ptr(), LINE as usize) };
        self.lines[i] = Line { valid: true, dirty: false, pa: line_pa, data };
        Some(i)
    }

    /// A 32-bit load at `va` (translated to `pa`).
    pub fn read_u32(&mut self, va: u32, pa: u32, how: Caching, mem: &PhysMemory) -> u32 {
        if how == Caching::Uncached {
            return mem.read_u32(PhysAddr::new(pa).unwrap_or_default());
        }
        let i = self.lookup(va, pa, mem, true).unwrap_or(0);
        let o = (pa & (LINE - 1)) as usize;
        u32::from_le_bytes(self.lines[i].data[o..o + 4].try_into().unwrap_or([0; 4]))
    }

    /// A 32-bit store at `va` (translated to `pa`).
    pub fn write_u32(&mut self, va: u32, pa: u32, value: u32, how: Caching, mem: &PhysMemory) {
        let o = (pa & (LINE - 1)) as usize;
        match how {
            Caching::Uncached => mem.write_u32(PhysAddr::new(pa).unwrap_or_default(), value),
            Caching::WriteThrough => {
                if let Some(i) = self.lookup(va, pa, mem, false) {
                    self.lines[i].data[o..o + 4].copy_from_slice(&value.to_le_bytes());
                }
                mem.write_u32(PhysAddr::new(pa).unwrap_or_default(), value);
            }
            Caching::WriteBack => {
                let i = self.lookup(va, pa, mem, true).unwrap_or(0);
                self.lines[i].data[o..o + 4].copy_from_slice(&value.to_le_bytes());
                self.lines[i].dirty = true;
            }
        }
    }

    /// `ocbp`/`ocbwb`/`ocbi` on the line for `va` if it holds `pa`.
    pub fn line_op(&mut self, va: u32, pa: u32, writeback: bool, invalidate: bool, mem: &PhysMemory) {
        if let Some(i) = self.lookup(va, pa, mem, false) {
            if writeback {
                self.write_back(i, mem);
            }
            if invalidate {
                self.lines[i].valid = false;
                self.lines[i].dirty = false;
            }
        }
    }

    /// Valid lines (clean or dirty) holding any byte of physical frame
    /// `pa_page`: a clean one still returns old data to a later mapping of
    /// the same colour.
    pub fn lines_of(&self, pa_page: u32) -> usize {
        self.lines.iter().filter(|l| l.valid && l.pa & !0xFFF == pa_page).count()
    }

    /// Dirty lines holding any byte of physical frame `pa_page`.
    pub fn dirty_lines_of(&self, pa_page: u32) -> usize {
        self.lines.iter().filter(|l| l.valid && l.dirty && l.pa & !0xFFF == pa_page).count()
    }
}
