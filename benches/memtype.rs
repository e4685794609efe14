//! Memtype (`MemTypes`) cost with 10, 1 000 and 100 000 live reservations:
//! one reserve + release of a one-frame record (which includes the conflict
//! check; the pair keeps the population constant), and one lookup.
//! The population mimics a kernel: one long write-back range (the image)
//! that the old structure had to scan past, one-frame records (vmalloc
//! frames) and uncached ranges (ioremaps) among them.
//! `cargo bench --bench memtype` (results: target/criterion).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sh4_mm::memtype::MemTypes;
use sh4_mm::CacheAttr;

const BASE: u32 = 1 << 16;

fn populated(n: u32) -> MemTypes {
    let mut m = MemTypes::new();
    m.reserve(0, BASE, CacheAttr::WriteBack).unwrap();
    for i in 1..n {
        // Every 16th record an uncached 2-frame range, the rest single frames;
        // spaced 4 apart so that the benchmark's frames sit between them.
        let pfn = BASE + 4 * i;
        if i % 16 == 0 {
            m.reserve(pfn, 2, CacheAttr::Uncached).unwrap();
        } else {
            m.reserve(pfn, 1, CacheAttr::WriteBack).unwrap();
        }
    }
    m
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtype_reserve_release");
    for n in [10u32, 1_000, 100_000] {
        let mut m = populated(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut k = 0u32;
            b.iter(|| {
                k = (k + 1) % n;
                let pfn = BASE + 4 * k + 3;
                m.reserve(black_box(pfn), 1, CacheAttr::WriteBack).unwrap();
                m.release(black_box(pfn), 1, CacheAttr::WriteBack).unwrap();
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("memtype_lookup");
    for n in [10u32, 1_000, 100_000] {
        let m = populated(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut k = 0u32;
            b.iter(|| {
                k = (k + 7) % n;
                black_box(m.lookup(black_box(BASE + 4 * k)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
