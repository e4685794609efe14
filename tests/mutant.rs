//! `model::Mutant`: each lost operation is dropped, and only that one.
//!
//! One script of raw hardware operations, shaped like the kernel's own
//! sequences (`tlb::load`, a flush of another address space's page, a kernel
//! flush, a reload over a stale entry, cache operations, MMUCR.TI), runs
//! twice: through a `Mutant` losing one kind of operation, and on the bare
//! model with exactly the operations of that kind left out of the script.
//! The two models must end with the same UTLB, the same event log (TLB loads,
//! associative writes, flushes, cache operations), PTEH and MMUCR, and the
//! Mutant must have counted the drops. Each kind also changes the outcome
//! against the full script, so each comparison can fail.

use sh4_mm::hw::{self, CacheOp, MmuHw};
use sh4_mm::model::{HwEvent, Lost, Mutant, Sh4Model, TlbEntry};

/// A kernel page (P3) and a user page.
const K: u32 = 0xC000_1000;
const U: u32 = 0x0040_0000;
/// PTEL bits: V, 4 KiB (SZ0), PR=3 (R/W, any mode), D, C; SH for kernel pages.
const PTEL_USER: u32 = 0x0C00_5000 | (1 << 8) | (1 << 4) | (3 << 5) | (1 << 2) | (1 << 3);
const PTEL_KERNEL: u32 = 0x0C00_6000 | (1 << 8) | (1 << 4) | (1 << 5) | (1 << 2) | (1 << 3) | (1 << 1);

/// What a script run leaves behind.
#[derive(Debug, PartialEq)]
struct State {
    utlb: [TlbEntry; hw::UTLB_ENTRIES as usize],
    events: Vec<HwEvent>,
    pteh: u32,
    mmucr: u32,
    latent_duplicates: u32,
    multi_hits: u32,
}

fn state(m: &Sh4Model) -> State {
    State {
        utlb: m.utlb(),
        events: m.take_events(),
        pteh: m.pteh(),
        mmucr: m.mmucr(),
        latent_duplicates: m.latent_duplicates(),
        multi_hits: m.multi_hits(),
    }
}

/// `tlb::load`'s sequence: invalidate a possible match, LDTLB into the slot
/// after URC. The invalidate is left out if `omit` has `LOAD_INVALIDATE`.
fn load(hw: &impl MmuHw, omit: Lost, va: u32, ptel: u32) {
    let saved = hw.irq_save();
    let asid = hw.pteh() & 0xFF;
    if !omit.contains(Lost::LOAD_INVALIDATE) {
        hw.utlb_addr_write(hw::UTLB_ASSOC, va | asid);
    }
    let m = hw.mmucr();
    let slot = (((m & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT) + 1) % hw::UTLB_ENTRIES;
    hw.set_mmucr((m & !hw::MMUCR_URC_MASK) | (slot << hw::MMUCR_URC_SHIFT));
    hw.set_pteh(va | asid);
    hw.set_ptel(ptel);
    hw.ldtlb();
    hw.irq_restore(saved);
}

/// A flush of `va` under `asid` with PTEH.ASID switched around the write
/// (`tlb::flush_page`); left out if `drop` is set.
fn flush(hw: &impl MmuHw, va: u32, asid: u32, drop: bool) {
    let saved = hw.irq_save();
    let pteh = hw.pteh();
    hw.set_pteh((pteh & !0xFF) | asid);
    if !drop {
        hw.utlb_addr_write(hw::UTLB_ASSOC, va | asid);
    }
    hw.set_pteh(pteh);
    hw.irq_restore(saved);
}

/// The script; operations of the kinds in `omit` are left out (a kind the
/// hardware loses is exactly such an operation).
fn script(hw: &impl MmuHw, omit: Lost) {
    hw.set_mmucr(hw::MMUCR_AT);
    hw.set_pteh(1);
    load(hw, omit, K, PTEL_KERNEL);
    load(hw, omit, U, PTEL_USER);
    hw.set_pteh(2);
    load(hw, omit, U, PTEL_USER);
    // Another mm's (ASID 1) user page, flushed while ASID 2 runs: a write
    // held by the Mutant must be replayed under ASID 1, not 2.
    flush(hw, U, 1, false);
    // A kernel flush, then a reload of the same kernel page over whatever
    // the flush left: its invalidate is a load's, kept under KERNEL_FLUSH.
    flush(hw, K, 2, omit.contains(Lost::KERNEL_FLUSH));
    load(hw, omit, K, PTEL_KERNEL);
    hw.cache_op(CacheOp::Writeback, K, 64);
    if !omit.contains(Lost::PURGE) {
        hw.cache_op(CacheOp::Purge, K, 4096);
    }
    hw.cache_op(CacheOp::Invalidate, U, 32);
    // MMUCR.TI with AT and a URC: the rest of the write must still happen.
    let m = hw.mmucr();
    let ti = if omit.contains(Lost::FLUSH_ALL) { 0 } else { hw::MMUCR_TI };
    hw.set_mmucr((m & !hw::MMUCR_URC_MASK) | (7 << hw::MMUCR_URC_SHIFT) | ti);
    load(hw, omit, U, PTEL_USER);
}

/// Runs the script through a Mutant losing `lost` and on the bare model
/// without those operations; returns (mutant's state, reference state,
/// state of the full script, drops counted).
fn compare(lost: Lost) -> (State, State, State, u64) {
    let (a, b, full) = (Sh4Model::new(), Sh4Model::new(), Sh4Model::new());
    let m = Mutant::new(&b, lost);
    script(&m, Lost::empty());
    assert!(!m.holds_write(), "no write is left held after the script");
    script(&a, lost);
    script(&full, Lost::empty());
    (state(&b), state(&a), state(&full), m.dropped())
}

fn lost_exactly(lost: Lost, drops: u64) {
    let (mutant, reference, full, dropped) = compare(lost);
    assert_eq!(mutant, reference, "{lost:?}: the Mutant must drop exactly those operations");
    assert_ne!(full, reference, "{lost:?}: the dropped operations change the outcome");
    assert_eq!(dropped, drops, "{lost:?}: drops counted");
}

#[test]
fn loses_kernel_flushes_only() {
    // The kernel flush of K; the loads' invalidates (of K too) stay.
    lost_exactly(Lost::KERNEL_FLUSH, 1);
    let (mutant, ..) = compare(Lost::KERNEL_FLUSH);
    assert_eq!(mutant.latent_duplicates, 0, "the reload's invalidate still removed the stale K entry");
}

#[test]
fn loses_load_invalidates_only() {
    // Five loads, five invalidates; both flushes (one replayed under ASID 1
    // while ASID 2 runs) stay.
    lost_exactly(Lost::LOAD_INVALIDATE, 5);
}

#[test]
fn loses_mmucr_ti_only() {
    lost_exactly(Lost::FLUSH_ALL, 1);
    let (mutant, ..) = compare(Lost::FLUSH_ALL);
    assert_eq!(
        (mutant.mmucr & hw::MMUCR_URC_MASK) >> hw::MMUCR_URC_SHIFT,
        8,
        "URC was still written (7), then the last load advanced it"
    );
    assert_ne!(mutant.mmucr & hw::MMUCR_AT, 0, "AT still on");
}

#[test]
fn loses_purges_only() {
    lost_exactly(Lost::PURGE, 1);
}

#[test]
fn two_kinds_at_once() {
    lost_exactly(Lost::KERNEL_FLUSH | Lost::LOAD_INVALIDATE, 6);
}

/// Nothing lost: the wrapper is transparent, down to the operation count
/// (no extra PTEH reads, nothing held).
#[test]
fn faithful_forwards_everything() {
    let (a, b) = (Sh4Model::new(), Sh4Model::new());
    let m = Mutant::faithful(&b);
    script(&m, Lost::empty());
    script(&a, Lost::empty());
    assert_eq!(a.ops(), b.ops());
    assert_eq!(state(&a), state(&b));
    assert_eq!(m.dropped(), 0);
}
