//! Cache colours on the operand-cache model: copy-on-write through
//! kmap_coherent, clear_user_page, and dma_alloc_coherent's purge.

mod common;
use common::*;
use sh4_mm::hw::CacheOp;
use sh4_mm::model::HwEvent;
use sh4_mm::mutation::{self, Mutation};
use sh4_mm::*;

/// A cached sys: the model gets the RAM and an operand cache.
fn cached() -> Sys {
    let sys = Sys::new();
    sys.model.attach_memory(sys.mem.clone(), true);
    sys
}

const U: u32 = 0x0040_3000; // colour 3

/// The parent writes a page through its user mapping (the data stays in
/// dirty cache lines of colour 3); then the kernel copies the page for the
/// child (copy-on-write). Returns what the child's page holds in memory and
/// what the child reads through its own user mapping.
fn cow_copy() -> (u32, u32) {
    let sys = cached();
    let mut mm = sys.manager();
    let (f, child_f) = (data_frame(&mut mm, 0), data_frame(&mut mm, 0xEEEE));
    let parent = mm.mm_create().unwrap();
    mm.map_user(parent, Page::containing(VirtAddr::new(U)), f, 1, Prot::UserRw, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(parent).unwrap();
    let m = sys.machine(&mm).user();
    m.write_u32(U + 0x40, 0x1234).unwrap();
    // The model really makes aliasing visible: memory is stale, the line dirty.
    assert_eq!(
        mm.mem().read_u32(PhysAddr::new(f.start().as_u32() + 0x40).unwrap()),
        0,
        "write-back: memory not yet updated"
    );
    assert!(sys.model.dirty_lines_of(f.start().as_u32()) > 0);
    mm.copy_user_page(child_f, f, VirtAddr::new(U)).unwrap();
    let in_memory = mm.mem().read_u32(PhysAddr::new(child_f.start().as_u32() + 0x40).unwrap());
    let child = mm.mm_create().unwrap();
    mm.map_user(child, Page::containing(VirtAddr::new(U)), child_f, 1, Prot::UserRead, CacheAttr::WriteBack).unwrap();
    mm.switch_mm(child).unwrap();
    let seen = sys.machine(&mm).user().read_u32(U + 0x40).unwrap();
    assert_eq!(sys.model.multi_hits() + sys.model.latent_duplicates(), 0);
    (in_memory, seen)
}

#[test]
fn copy_on_write_sees_data_still_in_the_cache() {
    assert_eq!(cow_copy(), (0x1234, 0x1234));
    // Broken: kmap_coherent ignores the user address's colour. The source is
    // read through other lines (stale memory) and the copy loses the write.
    let (in_memory, seen) = mutation::with(Mutation::KmapIgnoresColour, cow_copy);
    assert_ne!(in_memory, 0x1234, "a non-congruent copy must miss the dirty lines");
    assert_ne!(seen, 0x1234);
}

#[test]
fn kmap_coherent_slots_and_flushes() {
    let sys = cached();
    let mut mm = sys.manager();
    let (a, b) = (data_frame(&mut mm, 1), data_frame(&mut mm, 2));
    for colour in 0..4u32 {
        let uva = VirtAddr::new(0x0010_0000 + colour * 4096);
        let slot = mm.kmap_coherent_slot_for(uva, 0).unwrap();
        assert_eq!(layout::fix_to_virt(slot).unwrap().colour(), colour, "slot congruent with the user address");
        sys.model.take_events();
        mm.copy_user_page(b, a, uva).unwrap();
        let ev = sys.model.take_events();
        let slots: Vec<u32> = [0, 1]
            .iter()
            .map(|&k| layout::fix_to_virt(mm.kmap_coherent_slot_for(uva, k).unwrap()).unwrap().as_u32())
            .collect();
        for s in &slots {
            assert!(ev.contains(&HwEvent::Cache(CacheOp::Purge, *s, 4096)), "slot {s:#x} purged on unmap: {ev:?}");
            assert!(ev.contains(&HwEvent::AssocWrite(*s)), "slot {s:#x} TLB entry flushed on unmap");
        }
        assert!(ev.contains(&HwEvent::Cache(CacheOp::Purge, b.start().to_p1().as_u32(), 4096)), "dst P1 alias purged");
        assert_eq!(sys.model.imask(), 15, "interrupts restored to what they were");
    }
    assert_eq!(sys.model.multi_hits() + sys.model.latent_duplicates(), 0);
}

#[test]
fn clear_user_page_is_not_undone_by_a_stale_kernel_line() {
    let sys = cached();
    let mut mm = sys.manager();
    let f = data_frame(&mut mm, 0x5555);
    // The kernel scribbled on the frame through P1: a dirty line of P1's colour.
    let m = sys.machine(&mm);
    m.write_u32(f.start().to_p1().as_u32() + 0x80, 0xBAD).unwrap();
    assert!(sys.model.dirty_lines_of(f.start().as_u32()) > 0);
    mm.clear_user_page(f, VirtAddr::new(U)).unwrap();
    // Whatever is evicted later, nothing dirty of this frame remains.
    assert_eq!(sys.model.dirty_lines_of(f.start().as_u32()), 0);
    for off in [0u32, 0x80, 0xFFC] {
        assert_eq!(mm.mem().read_u32(PhysAddr::new(f.start().as_u32() + off).unwrap()), 0, "offset {off:#x}");
    }
}

#[test]
fn dma_alloc_coherent_purges_the_cached_alias() {
    let sys = cached();
    let mut mm = sys.manager();
    // Dirty a frame through P1, free it, and let dma_alloc_coherent reuse it.
    let f = data_frame(&mut mm, 0);
    sys.machine(&mm).write_u32(f.start().to_p1().as_u32(), 0xD1D1).unwrap();
    sys.machine(&mm).write_u32(f.start().to_p1().as_u32() + 8, 0xD1D2).unwrap();
    assert!(sys.model.dirty_lines_of(f.start().as_u32()) > 0);
    mm.allocator_mut().free(f, 1);
    let buf = mm.dma_alloc_coherent(4096).unwrap();
    assert_eq!(buf.phys, f.start(), "the dirtied frame was reused");
    assert_eq!(sys.model.dirty_lines_of(f.start().as_u32()), 0, "no dirty line can later overwrite device data");
    let at8 = PhysAddr::new(buf.phys.as_u32() + 8).unwrap();
    assert_eq!(mm.mem().read_u32(at8), 0, "zeroed in memory, not undone by the purge");
    // The device writes memory; the CPU reads it uncached through the buffer.
    mm.mem().write_u32(buf.phys, 0xDE71CE);
    assert_eq!(sys.machine(&mm).read_u32(buf.va.as_u32()).unwrap(), 0xDE71CE);
}

#[test]
fn vmalloc_memory_reads_zero_through_its_own_colour() {
    let sys = cached();
    let mut mm = sys.manager();
    mm.vmalloc(4096).unwrap(); // the PTE page exists from here on
    let f = data_frame(&mut mm, 0x7777);
    sys.machine(&mm).write_u32(f.start().to_p1().as_u32() + 0x20, 0xBAD).unwrap();
    mm.allocator_mut().free(f, 1);
    let v = mm.vmalloc(4096).unwrap();
    assert_eq!(mm.translate(INIT_MM, v).unwrap().0, f.start(), "the dirtied frame was reused");
    let m = sys.machine(&mm);
    for off in [0u32, 0x20, 0xFFC] {
        assert_eq!(m.read_u32(v.as_u32() + off).unwrap(), 0, "offset {off:#x}");
    }
    assert_eq!(sys.model.dirty_lines_of(f.start().as_u32()), 0);
}
