//! Cache-attribute tracking: conflicting aliases are refused with an error
//! naming both attributes; io-mappings reserve once and map page by page.

mod common;
use common::*;
use sh4_mm::*;

fn conflict(phys: PhysAddr, requested: CacheAttr, existing: CacheAttr) -> MmError {
    MmError::AttrConflict { phys, requested, existing }
}

#[test]
fn a_dma_buffer_cannot_also_be_mapped_cached() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let buf = mm.dma_alloc_coherent(2 * 4096).unwrap();
    let p = mm.mm_create().unwrap();
    let second = Frame::containing(PhysAddr::new(buf.phys.as_u32() + 4096).unwrap());
    let before = mm.memtypes().len();
    let r = mm.map_user(p, Page::containing(VirtAddr::new(0x1000)), second, 1, Prot::UserRw, CacheAttr::WriteBack);
    assert_eq!(r, Err(conflict(second.start(), CacheAttr::WriteBack, CacheAttr::Uncached)));
    assert!(r.unwrap_err().to_string().contains("requested WriteBack, live mapping is Uncached"));
    assert_eq!(mm.memtypes().len(), before, "nothing recorded by the refused request");
    assert!(mm.translate(p, VirtAddr::new(0x1000)).is_err(), "nothing mapped");
    // Same attribute is fine: an uncached user mapping of the buffer (e.g. for a device-owning process).
    mm.map_user(p, Page::containing(VirtAddr::new(0x1000)), second, 1, Prot::UserRw, CacheAttr::Uncached).unwrap();
    assert_eq!(mm.memtype_of(second.start()), Some(CacheAttr::Uncached));
    let fixed = mm.fixmap_alloc().unwrap();
    assert!(matches!(
        mm.fixmap_map(fixed, second, Prot::KernelRw, CacheAttr::WriteThrough),
        Err(MmError::AttrConflict { .. })
    ));
    mm.fixmap_free(fixed).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
    mm.dma_free_coherent(buf.va).unwrap();
    assert!(mm.memtypes().is_empty(), "every mapping's record went with it: {:?}", mm.memtypes());
}

#[test]
fn p1_declared_ranges_and_ioremap_attributes() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    // The OS uses [0x0c80_0000, +1 MiB) cached through P1 (its image).
    let image = PhysAddr::new(0x0C80_0000).unwrap();
    mm.memtype_reserve(image, 1 << 20, CacheAttr::WriteBack).unwrap();
    let inside = PhysAddr::new(0x0C8F_F000).unwrap();
    assert_eq!(
        mm.ioremap(inside, 8192, CacheAttr::Uncached),
        Err(conflict(inside, CacheAttr::Uncached, CacheAttr::WriteBack))
    );
    assert_eq!(mm.vm_areas(), 0, "the refused ioremap left no area");
    let wb = mm.ioremap(inside, 4096, CacheAttr::WriteBack).unwrap();
    // Device registers elsewhere: uncached, then a write-through alias is refused.
    let regs = PhysAddr::new(0x1000_0000).unwrap();
    let io = mm.ioremap(regs, 0x2000, CacheAttr::Uncached).unwrap();
    assert!(matches!(
        mm.ioremap(PhysAddr::new(0x1000_1000).unwrap(), 4096, CacheAttr::WriteThrough),
        Err(MmError::AttrConflict { .. })
    ));
    assert_eq!(mm.translate(INIT_MM, io).unwrap().1.cache_attr(), CacheAttr::Uncached);
    mm.iounmap(io).unwrap();
    mm.ioremap(PhysAddr::new(0x1000_1000).unwrap(), 4096, CacheAttr::WriteThrough)
        .map(|v| mm.iounmap(v))
        .unwrap()
        .unwrap();
    mm.iounmap(wb).unwrap();
    mm.memtype_release(image, 1 << 20, CacheAttr::WriteBack).unwrap();
    assert_eq!(
        mm.memtype_release(image, 1 << 20, CacheAttr::WriteBack),
        Err(MmError::BadHandle(Handle::Reservation(image)))
    );
    assert!(mm.memtypes().is_empty());
}

#[test]
fn io_mapping_reserves_once_and_maps_pages() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    // An "aperture" inside simulated RAM so the machine can read it.
    let base = PhysAddr::new(RAM_BASE + 0x0030_0000).unwrap();
    let mut io = mm.io_mapping_create(base, 16 * 4096, CacheAttr::Uncached).unwrap();
    assert_eq!(io.pages(), 16);
    mm.mem().write_u32(PhysAddr::new(base.as_u32() + 3 * 4096 + 4).unwrap(), 0x10AA);
    let before = mm.memtypes().len();
    let va = mm.io_mapping_map(&mut io, 3).unwrap();
    assert_eq!(mm.memtypes().len(), before, "no per-page re-check or record");
    assert_eq!(sys.machine(&mm).read_u32(va.as_u32() + 4).unwrap(), 0x10AA);
    assert_eq!(mm.io_mapping_map(&mut io, 16), Err(MmError::Overflow));
    // While reserved, a cached mapping of any of its frames is refused.
    let p = mm.mm_create().unwrap();
    let f = Frame::containing(PhysAddr::new(base.as_u32() + 9 * 4096).unwrap());
    assert!(matches!(
        mm.map_user(p, Page::containing(VirtAddr::new(0x2000)), f, 1, Prot::UserRw, CacheAttr::WriteBack),
        Err(MmError::AttrConflict { .. })
    ));
    mm.io_mapping_unmap(&mut io, va).unwrap();
    assert_eq!(mm.io_mapping_unmap(&mut io, va), Err(MmError::NotMapped(va)));
    mm.io_mapping_free(&mut io).unwrap();
    mm.map_user(p, Page::containing(VirtAddr::new(0x2000)), f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.mm_put(p, |_, _| {}).unwrap();
    assert!(mm.memtypes().is_empty());
    assert_eq!(sys.model.multi_hits() + sys.model.latent_duplicates(), 0);
}

/// vmalloc's frames are per-frame write-back counts (not tree records), yet
/// every other-attribute alias of them is still refused, `memtype_of`
/// answers, and `len()` counts one reservation per frame.
#[test]
fn vmalloc_frames_are_per_frame_and_still_refuse_other_aliases() {
    let sys = Sys::new();
    let mut mm = sys.manager();
    let before = mm.memtypes().len();
    let v = mm.vmalloc(3 * 4096).unwrap();
    assert_eq!(mm.memtypes().len(), before + 3, "one reservation per frame");
    assert_eq!(mm.memtypes().per_frame(), 3, "held per frame, not in the tree");
    let f = mm.translate(INIT_MM, VirtAddr::new(v.as_u32() + 4096)).unwrap().0;
    assert_eq!(mm.memtype_of(f), Some(CacheAttr::WriteBack));
    let wt = CacheAttr::WriteThrough;
    assert_eq!(mm.ioremap(f, 4096, CacheAttr::Uncached), Err(conflict(f, CacheAttr::Uncached, CacheAttr::WriteBack)));
    // A range that starts below the frames reports the lowest of them.
    let lowest = (0..3).map(|i| mm.translate(INIT_MM, VirtAddr::new(v.as_u32() + i * 4096)).unwrap().0).min().unwrap();
    let below = PhysAddr::new(lowest.as_u32() - 0x10000).unwrap();
    assert_eq!(mm.memtype_reserve(below, 0x20000, wt), Err(conflict(lowest, wt, CacheAttr::WriteBack)));
    let fixed = mm.fixmap_alloc().unwrap();
    assert_eq!(
        mm.fixmap_map(fixed, Frame::containing(f), Prot::KernelRw, wt),
        Err(conflict(f, wt, CacheAttr::WriteBack))
    );
    mm.fixmap_free(fixed).unwrap();
    assert!(matches!(mm.io_mapping_create(f, 4096, CacheAttr::Uncached), Err(MmError::AttrConflict { .. })));
    assert_eq!(mm.vm_areas(), 1, "the refused requests left no area");
    assert_eq!(mm.memtypes().len(), before + 3, "nor any record");
    // A write-back alias is fine and counted.
    let wb = mm.ioremap(f, 4096, CacheAttr::WriteBack).unwrap();
    mm.iounmap(wb).unwrap();
    mm.vfree(v).unwrap();
    assert_eq!(mm.memtype_of(f), None);
    assert_eq!(mm.memtypes().len(), before);
    assert_eq!(mm.memtypes().per_frame(), 0);
    mm.ioremap(f, 4096, CacheAttr::Uncached).map(|u| mm.iounmap(u)).unwrap().unwrap();
}
