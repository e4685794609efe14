//! Frame-allocation failure injected at the 1st, 2nd, … Nth call of every
//! operation: each failure must leave the tables exactly as they were and
//! leak nothing; the first run without a failure must succeed.

mod common;
use common::*;
use sh4_mm::layout::{CONSISTENT_START, VMALLOC_START};
use sh4_mm::*;

struct State {
    swapper: Vec<u32>,
    user: Vec<u32>,
    live: u32,
    areas: (usize, usize, usize, usize),
}

fn state(mm: &Mm<'_>, user: MmId) -> State {
    State {
        swapper: snapshot(mm.mem(), mm.swapper_pg_dir()),
        user: snapshot(mm.mem(), mm.pgd(user).unwrap()),
        live: mm.allocator().live(),
        areas: (mm.vm_areas(), mm.dma_buffers(), mm.live_mms(), mm.memtypes().len()),
    }
}

/// Runs `op` with the Nth allocation failing, N = 1, 2, … until it succeeds.
/// Returns how many failing placements were checked.
fn inject<T: std::fmt::Debug>(name: &str, op: impl FnMut(&mut Mm<'_>, MmId) -> MmResult<T>) -> u32 {
    inject_after(name, |_| {}, op)
}

fn inject_after<T: std::fmt::Debug>(
    name: &str,
    setup: impl FnOnce(&mut Mm<'_>),
    mut op: impl FnMut(&mut Mm<'_>, MmId) -> MmResult<T>,
) -> u32 {
    let sys = Sys::new();
    let mut mm = sys.manager();
    // Some existing state, so "unchanged" is not trivially "empty".
    let p = mm.mm_create().unwrap();
    mm.vmalloc(4096).unwrap();
    setup(&mut mm);
    for n in 1..10_000 {
        let before = state(&mm, p);
        mm.allocator_mut().fail_nth(Some(n));
        let r = op(&mut mm, p);
        mm.allocator_mut().fail_nth(None);
        match r {
            Err(MmError::OutOfFrames) => {
                let after = state(&mm, p);
                assert!(after.swapper == before.swapper, "{name}: swapper_pg_dir changed by failure #{n}");
                assert!(after.user == before.user, "{name}: user tables changed by failure #{n}");
                assert_eq!(after.live, before.live, "{name}: frames leaked by failure #{n}");
                assert_eq!(after.areas, before.areas, "{name}: areas leaked by failure #{n}");
                assert_eq!(mm.allocator().bad_frees, 0, "{name}: bad free after failure #{n}");
            }
            Err(e) => panic!("{name}: failure #{n} gave {e:?}, expected OutOfFrames"),
            Ok(_) => {
                // The system keeps working: the memory is really there.
                let m = sys.machine(&mm);
                assert!(m.read_u32(VMALLOC_START).is_ok(), "{name}: kernel memory still readable");
                assert_eq!(mm.allocator().bad_frees, 0);
                return n - 1;
            }
        }
    }
    panic!("{name}: still failing after 10000 placements");
}

#[test]
fn mm_create() {
    assert_eq!(inject("mm_create", |mm, _| mm.mm_create()), 1);
}

#[test]
fn map_user_over_three_pte_pages() {
    let n = inject("map_user", |mm, p| {
        let start = Page::containing(VirtAddr::new(0x003F_F000)); // straddles 4 MiB lines
        mm.map_user(p, start, Frame::from_pfn(0xD000).unwrap(), 1026, Prot::UserRw, CacheAttr::WriteBack)
    });
    assert_eq!(n, 3, "one failure point per PTE page");
}

#[test]
fn vmalloc_frames_and_pte_pages() {
    // An I/O mapping fills the first 4 MiB of the window but 3 pages, so a
    // 5-page vmalloc straddles two PTE pages.
    let fill = |mm: &mut Mm<'_>| {
        mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), (4 << 20) - 5 * 4096, CacheAttr::Uncached).unwrap();
    };
    let n = inject_after("vmalloc", fill, |mm, _| {
        let v = mm.vmalloc(5 * 4096)?;
        assert_eq!(v.as_u32() >> 22, (VMALLOC_START >> 22), "starts in the first 4 MiB");
        assert_eq!((v.as_u32() + 4 * 4096) >> 22, (VMALLOC_START >> 22) + 1, "ends in the next");
        Ok(v)
    });
    assert_eq!(n, 6, "five frames, then the second PTE page");
}

#[test]
fn ioremap_pte_pages() {
    let n = inject("ioremap", |mm, _| mm.ioremap(PhysAddr::new(0x1000_0000).unwrap(), 8 << 20, CacheAttr::Uncached));
    assert_eq!(n, 2, "8 MiB after the first area: two new PTE pages");
}

#[test]
fn dma_alloc_coherent() {
    let n = inject("dma_alloc_coherent", |mm, _| {
        let b = mm.dma_alloc_coherent(3 * 4096)?;
        assert_eq!(b.va.as_u32(), CONSISTENT_START);
        Ok(b)
    });
    assert_eq!(n, 2, "the buffer, then its PTE page");
}

#[test]
fn fixmap_map() {
    let n = inject("fixmap_map", |mm, _| {
        let s = mm.fixmap_alloc()?;
        let r = mm.fixmap_map(s, Frame::from_pfn(0xC100).unwrap(), Prot::KernelRw, CacheAttr::WriteBack);
        if r.is_err() {
            mm.fixmap_free(s).unwrap();
        }
        r
    });
    assert_eq!(n, 0, "the fixmap's PTE page exists from MemoryManager::new: mapping a slot never allocates");
}

#[test]
fn manager_creation_fails_cleanly() {
    use sh4_mm::model::{FrameArena, PhysMemory, Sh4Model};
    use std::rc::Rc;
    for fail_at in 1..=2 {
        let model = Sh4Model::new();
        let mem = Rc::new(PhysMemory::new(RAM_BASE, RAM_FRAMES));
        let mut arena = FrameArena::new(RAM_BASE, RAM_FRAMES);
        arena.fail_nth(Some(fail_at));
        match MemoryManager::new(&model, mem, &mut arena) {
            Err(e) => assert_eq!(e, MmError::OutOfFrames),
            Ok(_) => panic!("allocation {fail_at} failed, yet the manager was created"),
        }
        assert_eq!(arena.live(), 0, "nothing leaked when allocation {fail_at} failed");
    }
}
