//! A CPU that executes single accesses against the model, taking TLB
//! exceptions the way the kernel does.

use super::{Caching, Lost, Mutant, PhysMemory, Sh4Model};
use crate::addr::Frame;
use crate::addr::{PhysAddr, Region, VirtAddr};
use crate::fault::{self, Exception, FaultContext, FaultInfo, FaultOutcome};
use crate::frame::PhysAccess;
use crate::hw::{expevt, MmuHw};
use crate::pgtable::PageTable;

/// Why an access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// The MM reported a fault it could not fix.
    Fault(FaultInfo),
    /// TLB multiple hit (the CPU would reset).
    MultipleHit(VirtAddr),
    /// An exception was taken with SR.BL=1 (the CPU would reset).
    ExceptionWithBl(VirtAddr),
    /// The handler returned "retry" but the access kept faulting.
    NoProgress(VirtAddr),
    /// The TLB translated to a frame the page tables do not map there
    /// (a stale entry survived an unmap or an ASID reuse).
    StaleTranslation {
        /// The address accessed.
        va: VirtAddr,
        /// Where the TLB sent it.
        tlb: u32,
        /// What the tables say (0 = not mapped).
        table: u32,
    },
}

/// CPU + MMU model + RAM + the kernel's fault context.
pub struct Machine<'a> {
    /// The MMU model.
    pub hw: &'a Sh4Model,
    /// RAM.
    pub mem: &'a PhysMemory,
    /// `swapper_pg_dir` and friends.
    pub ctx: FaultContext,
    /// Accesses are made in user mode.
    pub user: bool,
    /// What the kernel's TLB-exception handler (fast and slow path) drives:
    /// `hw` itself, or `hw` losing what the manager's hardware loses
    /// ([`Self::losing`]), since the handler is kernel code too.
    kernel: Mutant<&'a Sh4Model>,
}

impl<'a> Machine<'a> {
    /// A privileged-mode machine. It also tells `hw` where the kernel's
    /// tables are ([`Sh4Model::attach_kernel`]), so that cache-block
    /// operations take TLB misses like the CPU.
    pub fn new(hw: &'a Sh4Model, mem: &'a PhysMemory, ctx: FaultContext) -> Self {
        hw.attach_kernel(ctx);
        Machine { hw, mem, ctx, user: false, kernel: Mutant::faithful(hw) }
    }

    /// The same machine whose TLB-exception handler drives the hardware
    /// through a [`Mutant`] losing `lost` (the CPU's own translation, caches
    /// and exceptions stay the true model).
    pub fn losing(self, lost: Lost) -> Self {
        Machine { kernel: Mutant::new(self.hw, lost), ..self }
    }

    /// Translates a privileged data access the way the CPU does (TLB miss →
    /// fast path → slow path → retry), without touching memory: what a
    /// cache-block instruction does before it acts on its line.
    pub(crate) fn data_access(&self, va: u32, write: bool) -> Result<(u32, Caching), MachineError> {
        self.access(va, write, false)
    }

    /// The same machine in user mode.
    pub fn user(&self) -> Self {
        Machine {
            hw: self.hw,
            mem: self.mem,
            ctx: self.ctx,
            user: true,
            kernel: Mutant::new(self.hw, self.kernel.lost()),
        }
    }

    /// Reads a 32-bit word (through the operand cache, if the model has one).
    pub fn read_u32(&self, va: u32) -> Result<u32, MachineError> {
        let (pa, how) = self.access(va, false, false)?;
        Ok(self.hw.load_u32(va, pa, how, self.mem))
    }

    /// Writes a 32-bit word (through the operand cache, if the model has one).
    pub fn write_u32(&self, va: u32, value: u32) -> Result<(), MachineError> {
        let (pa, how) = self.access(va, true, false)?;
        self.hw.store_u32(va, pa, value, how, self.mem);
        Ok(())
    }

    /// Fetches an instruction word (through the ITLB; instruction fetches do
    /// not use the operand cache).
    pub fn fetch(&self, va: u32) -> Result<u32, MachineError> {
        let (pa, _) = self.access(va, false, true)?;
        Ok(self.mem.read_u32(PhysAddr::new(pa).unwrap_or_default()))
    }

    /// What the page tables (active table, or swapper for a P3 entry the
    /// active one lacks) say `va` maps to.
    fn table_pa(&self, va: VirtAddr) -> u32 {
        let ttb = self.hw.ttb();
        let Some(active) = PhysAddr::from_p1_p2(VirtAddr::new(ttb)).map(Frame::containing) else { return 0 };
        let t = PageTable::view(self.mem, active);
        let r = if va.region() == Region::P3 && t.pgd_raw(va.pgd_index()) == 0 {
            PageTable::view(self.mem, self.ctx.swapper).translate(va)
        } else {
            t.translate(va)
        };
        r.map(|(pa, _)| pa.as_u32()).unwrap_or(0)
    }

    fn access(&self, va: u32, write: bool, fetch: bool) -> Result<(u32, Caching), MachineError> {
        let v = VirtAddr::new(va);
        for _ in 0..4 {
            match self.hw.translate_ex(va, write, fetch, self.user) {
                Ok((pa, how)) => {
                    if v.is_translated() && self.hw.mmucr() & crate::hw::MMUCR_AT != 0 {
                        let table = self.table_pa(v);
                        if table != pa {
                            return Err(MachineError::StaleTranslation { va: v, tlb: pa, table });
                        }
                    }
                    return Ok((pa, how));
                }
                Err(expevt::TLB_MULTI_HIT) => return Err(MachineError::MultipleHit(v)),
                Err(code) => {
                    if self.hw.bl() {
                        return Err(MachineError::ExceptionWithBl(v));
                    }
                    // Exception entry: BL=1. The fast path runs blocked.
                    self.hw.set_bl(true);
                    let is_miss = code == expevt::TLB_MISS_READ || code == expevt::TLB_MISS_WRITE;
                    if is_miss && fault::fast_path(&self.kernel, self.mem, v, write) {
                        self.hw.set_bl(false); // rte
                        continue;
                    }
                    // Slow path: frame saved, BL cleared, IMASK as interrupted.
                    self.hw.set_bl(false);
                    let exc = Exception { expevt: code, tea: v, user: self.user };
                    match fault::handle_tlb_exception(&self.kernel, self.mem, &self.ctx, &exc) {
                        FaultOutcome::Retry => continue,
                        FaultOutcome::User(i) | FaultOutcome::Oops(i) => return Err(MachineError::Fault(i)),
                    }
                }
            }
        }
        Err(MachineError::NoProgress(v))
    }
}
