//! The MMU part of the model.

extern crate std;
use super::{Caching, OpCache, PhysMemory};
use crate::fault::FaultContext;
use crate::hw::{self, expevt, CacheOp, MmuHw};
use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::vec::Vec;

/// One UTLB/ITLB entry (4 KiB pages only; other sizes are recorded as errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbEntry {
    /// Virtual page number (VA >> 12).
    pub vpn: u32,
    /// ASID tag.
    pub asid: u8,
    /// Valid.
    pub v: bool,
    /// Shared (matches every ASID).
    pub sh: bool,
    /// Physical page number (PA >> 12).
    pub ppn: u32,
    /// PR field.
    pub pr: u8,
    /// Dirty.
    pub d: bool,
    /// Cacheable.
    pub c: bool,
    /// Write-through.
    pub wt: bool,
}

/// Hardware operations the model saw (for tests that check the mechanism).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwEvent {
    /// LDTLB into `slot`.
    Ldtlb {
        /// UTLB index.
        slot: u32,
        /// The entry loaded.
        entry: TlbEntry,
    },
    /// Associative UTLB address-array write of `value` (VPN | ASID | V).
    AssocWrite(u32),
    /// MMUCR.TI.
    FlushAll,
    /// TTB written.
    Ttb(u32),
    /// An operand-cache operation.
    Cache(CacheOp, u32, u32),
    /// An interrupt was delivered.
    Interrupt,
}

type IrqHandler = Box<dyn FnOnce(&Sh4Model)>;

/// The model.
pub struct Sh4Model {
    pteh: Cell<u32>,
    ptel: Cell<u32>,
    ttb: Cell<u32>,
    mmucr: Cell<u32>,
    tea: Cell<u32>,
    expevt: Cell<u32>,
    utlb: RefCell<[TlbEntry; hw::UTLB_ENTRIES as usize]>,
    itlb: RefCell<[TlbEntry; hw::ITLB_ENTRIES as usize]>,
    itlb_next: Cell<usize>,
    imask: Cell<u32>,
    bl: Cell<bool>,
    in_irq: Cell<u32>,
    ops: Cell<u64>,
    irq: RefCell<Option<(u64, IrqHandler)>>,
    multi_hits: Cell<u32>,
    latent_dups: Cell<u32>,
    bad_sizes: Cell<u32>,
    events: RefCell<Vec<HwEvent>>,
    mem: RefCell<Option<Rc<PhysMemory>>>,
    cache: RefCell<Option<OpCache>>,
    kernel: Cell<Option<FaultContext>>,
    cache_faults: Cell<u32>,
}

impl Default for Sh4Model {
    fn default() -> Self {
        Self::new()
    }
}

fn matches(e: &TlbEntry, vpn: u32, asid: u8, privileged_sv: bool) -> bool {
    e.v && e.vpn == vpn && (e.sh || e.asid == asid || privileged_sv)
}

impl Sh4Model {
    /// Power-on state: MMU off, TLB empty, interrupts masked (IMASK 15), BL clear.
    pub fn new() -> Self {
        Sh4Model {
            pteh: Cell::new(0),
            ptel: Cell::new(0),
            ttb: Cell::new(0),
            mmucr: Cell::new(0),
            tea: Cell::new(0),
            expevt: Cell::new(0),
            utlb: RefCell::new([TlbEntry::default(); hw::UTLB_ENTRIES as usize]),
            itlb: RefCell::new([TlbEntry::default(); hw::ITLB_ENTRIES as usize]),
            itlb_next: Cell::new(0),
            imask: Cell::new(15),
            bl: Cell::new(false),
            in_irq: Cell::new(0),
            ops: Cell::new(0),
            irq: RefCell::new(None),
            multi_hits: Cell::new(0),
            latent_dups: Cell::new(0),
            bad_sizes: Cell::new(0),
            events: RefCell::new(Vec::new()),
            mem: RefCell::new(None),
            cache: RefCell::new(None),
            kernel: Cell::new(None),
            cache_faults: Cell::new(0),
        }
    }

    /// Gives the model the RAM, so that `copy_page`/`clear_page` and (with
    /// `cache`) the operand cache work.
    pub fn attach_memory(&self, mem: Rc<PhysMemory>, cache: bool) {
        *self.mem.borrow_mut() = Some(mem);
        *self.cache.borrow_mut() = cache.then(OpCache::new);
    }

    /// Tells the model where the kernel's tables are, so that a cache-block
    /// instruction on a translated address that misses the UTLB takes the TLB
    /// exception through the kernel's handler, as on the CPU. ([`super::Machine::new`]
    /// does this.) Without it such a line operation is counted in
    /// [`Self::cache_op_faults`] and skipped.
    pub fn attach_kernel(&self, ctx: FaultContext) {
        self.kernel.set(Some(ctx));
    }

    /// Cache-block operations (`ocbp`/`ocbwb`/`ocbi`) on an address that could
    /// not be translated: on the CPU an unfixable TLB exception (an oops).
    pub fn cache_op_faults(&self) -> u32 {
        self.cache_faults.get()
    }

    /// The operand cache, if attached (for tests that inspect it).
    pub fn with_cache<R>(&self, f: impl FnOnce(&OpCache) -> R) -> Option<R> {
        self.cache.borrow().as_ref().map(f)
    }

    /// Dirty cache lines holding data of the frame at `pa_page`.
    pub fn dirty_lines_of(&self, pa_page: u32) -> usize {
        self.cache.borrow().as_ref().map_or(0, |c| c.dirty_lines_of(pa_page))
    }

    /// A data load through the cache (if attached) after translation.
    pub fn load_u32(&self, va: u32, pa: u32, how: Caching, mem: &PhysMemory) -> u32 {
        match self.cache.borrow_mut().as_mut() {
            Some(c) => c.read_u32(va, pa, how, mem),
            None => crate::frame::PhysAccess::read_u32(mem, crate::addr::PhysAddr::new(pa).unwrap_or_default()),
        }
    }

    /// A data store through the cache (if attached) after translation.
    pub fn store_u32(&self, va: u32, pa: u32, value: u32, how: Caching, mem: &PhysMemory) {
        match self.cache.borrow_mut().as_mut() {
            Some(c) => c.write_u32(va, pa, value, how, mem),
            None => crate::frame::PhysAccess::write_u32(mem, crate::addr::PhysAddr::new(pa).unwrap_or_default(), value),
        }
    }

    /// Physical address and caching of `va` from the current UTLB contents,
    /// without raising anything (what a cache-block instruction uses).
    fn probe(&self, va: u32) -> Option<(u32, Caching)> {
        match va >> 29 {
            4 => Some((va & 0x1FFF_FFFF, Caching::WriteBack)),
            5 => Some((va & 0x1FFF_FFFF, Caching::Uncached)),
            7 => None,
            _ if self.mmucr.get() & hw::MMUCR_AT == 0 => Some((va & 0x1FFF_FFFF, Caching::WriteBack)),
            _ => {
                let asid = self.asid();
                let u = self.utlb.borrow();
                let e = u.iter().find(|e| matches(e, va >> 12, asid, false))?;
                Some(((e.ppn << 12) | (va & 0xFFF), caching_of(e)))
            }
        }
    }

    /// Sets SR.IMASK directly (the kernel's "enable interrupts").
    pub fn set_imask(&self, imask: u32) {
        self.imask.set(imask & 15);
        self.tick();
    }
    /// SR.IMASK.
    pub fn imask(&self) -> u32 {
        self.imask.get()
    }
    /// SR.BL.
    pub fn bl(&self) -> bool {
        self.bl.get()
    }
    pub(crate) fn set_bl(&self, bl: bool) {
        self.bl.set(bl);
        if !bl {
            self.tick_no_count();
        }
    }
    /// Hardware operations executed so far (the model's "instruction count").
    pub fn ops(&self) -> u64 {
        self.ops.get()
    }
    /// Schedules a one-shot interrupt on hardware operation number `at`
    /// (or the first one after it where interrupts are unmasked and BL=0).
    /// The handler runs with IMASK=15 and may access memory (and take TLB
    /// exceptions) through a [`crate::model::Machine`].
    pub fn schedule_irq(&self, at: u64, handler: impl FnOnce(&Sh4Model) + 'static) {
        *self.irq.borrow_mut() = Some((at, Box::new(handler)));
    }
    /// Drops a scheduled interrupt that has not been delivered.
    pub fn cancel_irq(&self) {
        *self.irq.borrow_mut() = None;
    }
    /// Whether a scheduled interrupt has not been delivered yet.
    pub fn irq_pending(&self) -> bool {
        self.irq.borrow().is_some()
    }
    /// Lookups that matched more than one entry (EXPEVT 0x140 on hardware).
    pub fn multi_hits(&self) -> u32 {
        self.multi_hits.get()
    }
    /// LDTLBs or array writes that left two entries able to match one access.
    pub fn latent_duplicates(&self) -> u32 {
        self.latent_dups.get()
    }
    /// LDTLBs of a page size other than 4 KiB.
    pub fn bad_page_sizes(&self) -> u32 {
        self.bad_sizes.get()
    }
    /// Events so far (and clears the log).
    pub fn take_events(&self) -> Vec<HwEvent> {
        core::mem::take(&mut *self.events.borrow_mut())
    }
    /// A copy of the UTLB.
    pub fn utlb(&self) -> [TlbEntry; hw::UTLB_ENTRIES as usize] {
        *self.utlb.borrow()
    }
    /// TEA.
    pub fn tea(&self) -> u32 {
        self.tea.get()
    }
    /// EXPEVT of the last exception.
    pub fn expevt(&self) -> u32 {
        self.expevt.get()
    }

    fn log(&self, e: HwEvent) {
        self.events.borrow_mut().push(e);
    }

    fn tick(&self) {
        self.ops.set(self.ops.get() + 1);
        self.tick_no_count();
    }

    fn tick_no_count(&self) {
        if self.imask.get() == 15 || self.bl.get() {
            return;
        }
        let due = matches!(&*self.irq.borrow(), Some((at, _)) if self.ops.get() >= *at);
        if !due {
            return;
        }
        let Some((_, handler)) = self.irq.borrow_mut().take() else { return };
        self.log(HwEvent::Interrupt);
        let saved = self.imask.get();
        self.imask.set(15);
        self.in_irq.set(self.in_irq.get() + 1);
        handler(self);
        self.in_irq.set(self.in_irq.get() - 1);
        self.imask.set(saved);
    }

    fn asid(&self) -> u8 {
        (self.pteh.get() & 0xFF) as u8
    }

    fn sv(&self) -> bool {
        self.mmucr.get() & hw::MMUCR_SV != 0
    }

    fn check_duplicates(&self) {
        let u = self.utlb.borrow();
        for i in 0..u.len() {
            for j in i + 1..u.len() {
                let (a, b) = (&u[i], &u[j]);
                if a.v && b.v && a.vpn == b.vpn && (a.sh || b.sh || a.asid == b.asid) {
                    self.latent_dups.set(self.latent_dups.get() + 1);
                    return;
                }
            }
        }
    }

    fn raise<T>(&self, code: u32, va: u32) -> Result<T, u32> {
        self.expevt.set(code);
        self.tea.set(va);
        if code == expevt::TLB_MISS_READ || code == expevt::TLB_MISS_WRITE || code == expevt::INITIAL_PAGE_WRITE {
            self.pteh.set((va & 0xFFFF_FC00) | self.asid() as u32);
        }
        Err(code)
    }

    /// Translates one access like the CPU: `Ok(physical address)` or
    /// `Err(EXPEVT)` with TEA (and PTEH for misses) set.
    pub fn translate(&self, va: u32, write: bool, fetch: bool, user: bool) -> Result<u32, u32> {
        self.translate_ex(va, write, fetch, user).map(|(pa, _)| pa)
    }

    /// [`Self::translate`], also saying how the access is cached.
    pub fn translate_ex(&self, va: u32, write: bool, fetch: bool, user: bool) -> Result<(u32, Caching), u32> {
        self.tick();
        let (miss, prot, addr) = if write {
            (expevt::TLB_MISS_WRITE, expevt::PROT_WRITE, expevt::ADDR_ERR_WRITE)
        } else {
            (expevt::TLB_MISS_READ, expevt::PROT_READ, expevt::ADDR_ERR_READ)
        };
        if user && va >= 0x8000_0000 {
            return self.raise(addr, va);
        }
        let translated = va < 0x8000_0000 || (0xC000_0000..0xE000_0000).contains(&va);
        if !translated || self.mmucr.get() & hw::MMUCR_AT == 0 {
            let how = if (0xA000_0000..0xC000_0000).contains(&va) || va >= 0xE000_0000 {
                Caching::Uncached
            } else {
                Caching::WriteBack
            };
            return Ok((va & 0x1FFF_FFFF, how));
        }
        let vpn = va >> 12;
        let asid = self.asid();
        let sv = self.sv() && !user;
        let hit = if fetch {
            let it = self.itlb.borrow().iter().copied().filter(|e| matches(e, vpn, asid, sv)).collect::<Vec<_>>();
            match it.len() {
                0 => None,
                1 => Some(it[0]),
                _ => {
                    self.multi_hits.set(self.multi_hits.get() + 1);
                    return self.raise(expevt::TLB_MULTI_HIT, va);
                }
            }
        } else {
            None
        };
        let e = match hit {
            Some(e) => e,
            None => {
                let u = self.utlb.borrow().iter().copied().filter(|e| matches(e, vpn, asid, sv)).collect::<Vec<_>>();
                let e = match u.len() {
                    0 => return self.raise(miss, va),
                    1 => u[0],
                    _ => {
                        self.multi_hits.set(self.multi_hits.get() + 1);
                        return self.raise(expevt::TLB_MULTI_HIT, va);
                    }
                };
                if fetch {
                    let i = self.itlb_next.get();
                    self.itlb.borrow_mut()[i] = e;
                    self.itlb_next.set((i + 1) % hw::ITLB_ENTRIES as usize);
                }
                // URC advances on UTLB accesses.
                let m = self.mmucr.get();
                let urc = (((m & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT) + 1) % hw::UTLB_ENTRIES;
                self.mmucr.set((m & !hw::MMUCR_URC_MASK) | (urc << hw::MMUCR_URC_SHIFT));
                e
            }
        };
        if user && e.pr < 2 {
            return self.raise(prot, va);
        }
        if write && (e.pr == 0 || e.pr == 2) {
            return self.raise(prot, va);
        }
        if write && !e.d {
            return self.raise(expevt::INITIAL_PAGE_WRITE, va);
        }
        Ok(((e.ppn << 12) | (va & 0xFFF), caching_of(&e)))
    }
}

fn caching_of(e: &TlbEntry) -> Caching {
    match (e.c, e.wt) {
        (false, _) => Caching::Uncached,
        (true, false) => Caching::WriteBack,
        (true, true) => Caching::WriteThrough,
    }
}

fn entry_from(pteh: u32, ptel: u32) -> (TlbEntry, bool) {
    // SZ1 (bit 7) : SZ0 (bit 4) = 01 is 4 KiB.
    let four_k = ptel & (1 << 7) == 0 && ptel & (1 << 4) != 0;
    (
        TlbEntry {
            vpn: pteh >> 12,
            asid: (pteh & 0xFF) as u8,
            v: ptel & (1 << 8) != 0,
            sh: ptel & (1 << 1) != 0,
            ppn: (ptel & 0x1FFF_FC00) >> 12,
            pr: ((ptel >> 5) & 3) as u8,
            d: ptel & (1 << 2) != 0,
            c: ptel & (1 << 3) != 0,
            wt: ptel & 1 != 0,
        },
        four_k,
    )
}

// SAFETY: the model implements each operation as the SH7750/SH7751 manual
// describes it (docs/EMULATORS.md lists what it does not model).
unsafe impl MmuHw for Sh4Model {
    fn pteh(&self) -> u32 {
        self.tick();
        self.pteh.get()
    }
    fn set_pteh(&self, value: u32) {
        self.tick();
        self.pteh.set(value & 0xFFFF_FCFF);
    }
    fn set_ptel(&self, value: u32) {
        self.tick();
        self.ptel.set(value & 0x1FFF_FDFF);
    }
    fn ttb(&self) -> u32 {
        self.tick();
        self.ttb.get()
    }
    fn set_ttb(&self, value: u32) {
        self.tick();
        self.ttb.set(value);
        self.log(HwEvent::Ttb(value));
    }
    fn mmucr(&self) -> u32 {
        self.tick();
        self.mmucr.get()
    }
    fn set_mmucr(&self, value: u32) {
        self.tick();
        if value & hw::MMUCR_TI != 0 {
            self.utlb.borrow_mut().iter_mut().for_each(|e| e.v = false);
            self.itlb.borrow_mut().iter_mut().for_each(|e| e.v = false);
            self.log(HwEvent::FlushAll);
        }
        self.mmucr.set(value & !hw::MMUCR_TI);
    }
    fn ldtlb(&self) {
        self.tick();
        let slot = (self.mmucr.get() & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT;
        let (entry, four_k) = entry_from(self.pteh.get(), self.ptel.get());
        if !four_k {
            self.bad_sizes.set(self.bad_sizes.get() + 1);
        }
        self.utlb.borrow_mut()[slot as usize] = entry;
        self.log(HwEvent::Ldtlb { slot, entry });
        self.check_duplicates();
    }
    fn utlb_addr_write(&self, offset: u32, value: u32) {
        self.tick();
        let (vpn, asid, v, d) = (value >> 12, (value & 0xFF) as u8, value & (1 << 8) != 0, value & (1 << 9) != 0);
        if offset & hw::UTLB_ASSOC != 0 {
            self.log(HwEvent::AssocWrite(value));
            // SH7750/SH7751 manual, UTLB address array: an associative write
            // compares "the VPN specified in the data field and PTEH.ASID",
            // following the usual comparison rules (SH=1, or SV=1 in
            // privileged mode, match any ASID). The data word's ASID bits
            // take no part. (QEMU compares the data word's ASID instead.)
            let _ = asid;
            let (asid, sv) = (self.asid(), self.sv());
            let mut hits = 0;
            for e in self.utlb.borrow_mut().iter_mut() {
                if matches(e, vpn, asid, sv) {
                    hits += 1;
                    e.v = v;
                    e.d = d;
                }
            }
            if hits > 1 {
                self.multi_hits.set(self.multi_hits.get() + 1);
            }
            // Manual: "This associative operation is simultaneously carried
            // out on the ITLB, and if a matching entry is found in the ITLB,
            // V is written to that entry."
            for e in self.itlb.borrow_mut().iter_mut() {
                if matches(e, vpn, asid, sv) {
                    e.v = v;
                }
            }
        } else {
            let i = ((offset >> 8) & 63) as usize;
            let mut u = self.utlb.borrow_mut();
            u[i].vpn = vpn;
            u[i].asid = asid;
            u[i].v = v;
            u[i].d = d;
            drop(u);
            self.check_duplicates();
        }
    }
    fn utlb_data_write(&self, entry: u32, value: u32) {
        self.tick();
        let i = (entry & 63) as usize;
        let old = self.utlb.borrow()[i];
        let (mut e, four_k) = entry_from(old.vpn << 12 | old.asid as u32, value);
        if !four_k {
            self.bad_sizes.set(self.bad_sizes.get() + 1);
        }
        e.vpn = old.vpn;
        e.asid = old.asid;
        self.utlb.borrow_mut()[i] = e;
        self.check_duplicates();
    }
    fn cache_op(&self, op: CacheOp, va: u32, len: u32) {
        self.tick();
        self.log(HwEvent::Cache(op, va, len));
        let Some(mem) = self.mem.borrow().clone() else { return };
        if self.cache.borrow().is_none() {
            return;
        }
        let (wb, inv) = match op {
            CacheOp::Purge => (true, true),
            CacheOp::Writeback => (true, false),
            CacheOp::Invalidate => (false, true),
        };
        let mut a = va & !(super::cache::LINE - 1);
        while a < va.saturating_add(len) {
            // OCBP/OCBWB are translated like a read, OCBI like a write: a
            // translated address missing from the UTLB takes a TLB exception,
            // which the kernel's handler serves before the instruction
            // re-executes. Translation happens before the cache is touched
            // (the handler may itself use the cache).
            let write = op == CacheOp::Invalidate;
            let target = match self.kernel.get() {
                Some(ctx) => match super::Machine::new(self, &mem, ctx).data_access(a, write) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        self.cache_faults.set(self.cache_faults.get() + 1);
                        None
                    }
                },
                None => {
                    let t = self.probe(a);
                    if t.is_none() {
                        self.cache_faults.set(self.cache_faults.get() + 1);
                    }
                    t
                }
            };
            if let Some((pa, how)) = target {
                if how != Caching::Uncached {
                    if let Some(cache) = self.cache.borrow_mut().as_mut() {
                        cache.line_op(a, pa, wb, inv, &mem);
                    }
                }
            }
            a += super::cache::LINE;
        }
    }
    unsafe fn copy_page(&self, dst: u32, src: u32) {
        self.tick();
        let Some(mem) = self.mem.borrow().clone() else { return };
        for k in (0..4096).step_by(4) {
            let (Some((sp, sh)), Some((dp, dh))) = (self.probe(src + k), self.probe(dst + k)) else {
                self.bad_sizes.set(self.bad_sizes.get() + 1);
                return;
            };
            let v = self.load_u32(src + k, sp, sh, &mem);
            self.store_u32(dst + k, dp, v, dh, &mem);
        }
    }
    unsafe fn clear_page(&self, dst: u32) {
        self.tick();
        let Some(mem) = self.mem.borrow().clone() else { return };
        for k in (0..4096).step_by(4) {
            let Some((dp, dh)) = self.probe(dst + k) else {
                self.bad_sizes.set(self.bad_sizes.get() + 1);
                return;
            };
            self.store_u32(dst + k, dp, 0, dh, &mem);
        }
    }
    fn irq_save(&self) -> u32 {
        self.tick();
        let old = self.imask.get();
        self.imask.set(15);
        old
    }
    fn irq_restore(&self, saved: u32) {
        self.imask.set(saved & 15);
        self.tick();
    }
    fn in_interrupt(&self) -> bool {
        self.in_irq.get() > 0
    }
}
