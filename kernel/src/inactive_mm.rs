//! Changing the page table of an mm that is not running: the exact case
//! QEMU hid (its associative UTLB write compares the data word's ASID; the
//! SH7750 manual and GXemul compare PTEH.ASID, the running mm's).
//!
//! Process A runs in user mode, so the UTLB holds A's entries. Process B
//! runs next, so B's ASID is in PTEH. While B is current, one of A's pages is
//! unmapped and another made read-only. A's stale UTLB entries must be gone
//! (checked in the address array, ASID by ASID), and when A runs again its
//! read of the unmapped page must miss and its write to the read-only page
//! must be a protection violation.

use crate::exc::{USER_FAULT, USER_KILLED};
use crate::tests::{filled_frame, make_process, run_user, with_mm, UDATA};
use crate::{check, check_eq};
use alloc::string::String;
use sh4_mm::fault::FaultKind;
use sh4_mm::*;

extern "C" {
    fn sh4mm_array_read(addr: u32) -> u32;
    static sh4mm_user_prog_inc: u8;
    static sh4mm_user_prog_end: u8;
}

/// A user-writable page of A's, written through `sh4mm_user_prog_inc`.
const UWRITE: u32 = 0x0061_0000;
/// Where A's second program page (read, increment) is mapped.
const UPROG2: u32 = 0x0041_0000;

/// Valid UTLB entries for `va`'s page tagged with `asid` (address array:
/// VPN bits 31:10, V bit 8, ASID bits 7:0).
fn utlb_entries(va: u32, asid: u32) -> u32 {
    (0..64u32)
        .filter(|i| {
            // SAFETY: reads one UTLB address-array word through the P2 helper.
            let a = unsafe { sh4mm_array_read(0xF600_0000 | (i << 8)) };
            a & 0x100 != 0 && a >> 12 == va >> 12 && a & 0xFF == asid
        })
        .count() as u32
}

/// Runs `sh4mm_user_prog_inc` (copied to `UPROG2`) as `p` on `arg`.
fn run_prog2(mm: &mut crate::tests::Kmm, p: MmId, arg: u32) -> Result<u32, String> {
    mm.switch_mm(p).map_err(|e| alloc::format!("{e}"))?;
    *USER_FAULT.lock() = None;
    extern "C" {
        fn sh4mm_user_call(entry: u32, user_sp: u32, arg: u32) -> u32;
    }
    // SAFETY: p maps the programs, stack and data; the programs trap back.
    Ok(unsafe { sh4mm_user_call(UPROG2, crate::tests::USTACK + 4096, arg) })
}

pub fn unmap_protect_inactive_mm() -> Result<(), String> {
    with_mm(|mm| {
        let e = |e: MmError| alloc::format!("{e}");
        let live = mm.allocator().inner().live();
        let (a, fa) = make_process(mm, 0xAAAA)?;
        let (b, fb) = make_process(mm, 0xBBBB)?;
        // A's extra pages: a copy of both user programs, and a writable page.
        let prog = filled_frame(mm, 0)?;
        // SAFETY: addresses of the user programs (link-time symbols); the
        // copy (a few instructions) fits in our frame.
        unsafe {
            let (s, end) = (&sh4mm_user_prog_inc as *const u8, &sh4mm_user_prog_end as *const u8);
            core::ptr::copy_nonoverlapping(s, prog.start().to_p2().as_u32() as *mut u8, end as usize - s as usize);
        }
        let wr = filled_frame(mm, 0x100)?;
        let page = |va: u32| Page::containing(VirtAddr::new(va));
        mm.map_user(a, page(UPROG2), prog, 1, Prot::UserRead, CacheAttr::WriteBack).map_err(e)?;
        mm.map_user(a, page(UWRITE), wr, 1, Prot::UserRw, CacheAttr::WriteBack).map_err(e)?;

        let result = (|| -> Result<(), String> {
            // A runs: reads UDATA, increments UWRITE (initial write, then dirty).
            check_eq!(run_user(mm, a, UDATA)?, 0xAAAA, "A reads its data page");
            check_eq!(run_prog2(mm, a, UWRITE)?, 0x101, "A increments its writable page");
            let asid_a = mm.hw().pteh() & 0xFF;
            check_eq!(utlb_entries(UDATA, asid_a), 1, "A's entry for the data page is in the UTLB");
            check_eq!(utlb_entries(UWRITE, asid_a), 1, "A's entry for the writable page is in the UTLB");
            // B runs: its ASID is in PTEH from now on.
            check_eq!(run_user(mm, b, UDATA)?, 0xBBBB, "B reads its data page");
            let asid_b = mm.hw().pteh() & 0xFF;
            check!(asid_a != asid_b, "A and B have different ASIDs ({asid_a})");
            // While B runs, A loses its data page and its writable page
            // becomes read-only.
            check_eq!(mm.unmap_user(a, page(UDATA), 1, |_, _| {}).map_err(e)?, 1, "unmapped");
            check_eq!(mm.protect_user(a, page(UWRITE), 1, Prot::UserRead).map_err(e)?, 1, "protected");
            check_eq!(utlb_entries(UDATA, asid_a), 0, "A's stale entry for the unmapped page (flushed while B runs)");
            check_eq!(utlb_entries(UWRITE, asid_a), 0, "A's stale writable entry (flushed while B runs)");
            check_eq!(utlb_entries(UDATA, asid_b), 1, "B's own entry for the same address is untouched");
            // A runs again: the read misses, the write is refused.
            check_eq!(run_user(mm, a, UDATA)?, USER_KILLED | 0x040, "A reads its unmapped page");
            let f = USER_FAULT.lock().take().ok_or("no fault recorded for the read")?;
            check_eq!((f.kind, f.user, f.addr.as_u32()), (FaultKind::NotMapped, true, UDATA), "read fault");
            check_eq!(run_prog2(mm, a, UWRITE)?, USER_KILLED | 0x0C0, "A writes its read-only page");
            let f = USER_FAULT.lock().take().ok_or("no fault recorded for the write")?;
            check_eq!((f.kind, f.user, f.addr.as_u32()), (FaultKind::Protection, true, UWRITE), "write fault");
            // SAFETY: P2 view of our frame.
            let v = unsafe { (wr.start().to_p2().as_u32() as *const u32).read_volatile() };
            check_eq!(v, 0x101, "the refused write left the page as it was");
            check_eq!(run_user(mm, b, UDATA)?, 0xBBBB, "B is unaffected");
            Ok(())
        })();

        // Leave the system as it was, pass or fail.
        mm.switch_mm(INIT_MM).map_err(e)?;
        for (p, frames) in [(a, fa), (b, fb)] {
            mm.mm_put(p, |_, _| {}).map_err(e)?;
            for f in frames {
                mm.allocator_mut().free(f, 1);
            }
        }
        mm.allocator_mut().free(prog, 1);
        mm.allocator_mut().free(wr, 1);
        check_eq!(mm.allocator().inner().live(), live, "processes freed");
        result
    })
}
