//! Shared host-test setup: a model CPU, simulated RAM, a counting frame
//! allocator and a memory manager over them.
#![allow(dead_code)]

use sh4_mm::model::{FrameArena, Lost, Machine, Mutant, PhysMemory, Sh4Model};
use sh4_mm::pgtable::{PageTable, ENTRIES};
use sh4_mm::{Frame, MemoryManager, MmId, PhysAccess, PhysAddr};
use std::rc::Rc;

pub const RAM_BASE: u32 = 0x0C00_0000;
pub const RAM_FRAMES: u32 = 1024; // 4 MiB

/// The manager under test drives the model through a [`Mutant`]: transparent
/// (`Lost::empty()`) unless a test makes it lose one kind of operation.
pub type Mm<'a> = MemoryManager<Mutant<&'a Sh4Model>, Rc<PhysMemory>, FrameArena>;

pub struct Sys {
    pub model: Sh4Model,
    pub mem: Rc<PhysMemory>,
}

impl Sys {
    pub fn new() -> Self {
        Sys { model: Sh4Model::new(), mem: Rc::new(PhysMemory::new(RAM_BASE, RAM_FRAMES)) }
    }

    pub fn manager(&self) -> Mm<'_> {
        self.manager_losing(Lost::empty())
    }

    /// A manager over hardware that loses the operations in `lost`.
    pub fn manager_losing(&self, lost: Lost) -> Mm<'_> {
        let hw = Mutant::new(&self.model, lost);
        let mm = MemoryManager::new(hw, self.mem.clone(), FrameArena::new(RAM_BASE, RAM_FRAMES)).expect("manager");
        mm.enable_mmu();
        mm
    }

    /// The CPU; its TLB-exception handler is kernel code and loses what the
    /// manager's hardware loses.
    pub fn machine<'a>(&'a self, mm: &Mm<'a>) -> Machine<'a> {
        Machine::new(&self.model, &self.mem, mm.fault_context()).losing(mm.hw().lost())
    }
}

/// A view of one of the manager's first-level tables (from `swapper_pg_dir()`
/// or `pgd()`) in the simulated RAM.
pub fn table(mem: &PhysMemory, pgd: Frame) -> PageTable<'_, PhysMemory> {
    // SAFETY: tests pass only frames the manager returned as first-level
    // tables, live while the test runs, inside the simulated RAM.
    unsafe { PageTable::new(mem, pgd) }
}

/// Every first-level entry and every PTE reachable from `pgd`.
pub fn snapshot(mem: &PhysMemory, pgd: Frame) -> Vec<u32> {
    let t = table(mem, pgd);
    let mut v = Vec::new();
    for i in 0..ENTRIES {
        let raw = t.pgd_raw(i);
        v.push(raw);
        if let Some(pt) = t.pte_table(i) {
            for j in 0..ENTRIES as u32 {
                v.push(mem.read_u32(PhysAddr::new(pt.start().as_u32() + j * 4).unwrap()));
            }
        }
    }
    v
}

/// A frame the test owns, filled with `word`.
pub fn data_frame(mm: &mut Mm<'_>, word: u32) -> Frame {
    use sh4_mm::FrameAllocator;
    let f = mm.allocator_mut().alloc(1).expect("frame");
    for k in 0..1024 {
        mm.mem().write_u32(PhysAddr::new(f.start().as_u32() + k * 4).unwrap(), word);
    }
    f
}

pub fn pgd_of(mm: &Mm<'_>, id: MmId) -> Frame {
    mm.pgd(id).unwrap()
}
