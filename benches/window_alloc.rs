//! Window allocator cost with 10, 1 000 and 100 000 live areas: one
//! allocation plus one free (the pair keeps the population constant).
//! `cargo bench --bench window_alloc` (results: target/criterion).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sh4_mm::window::RangeAllocator;

fn populated(n: u32) -> (RangeAllocator<()>, Vec<u32>) {
    // A synthetic window big enough for 100k areas of 1..4 pages + guard.
    let mut r = RangeAllocator::new(0, 1 << 22, 1);
    let mut starts = Vec::new();
    for i in 0..n {
        starts.push(r.alloc(1 + (i % 4), ()).unwrap().start);
    }
    // Free every third area so the free list has holes of mixed sizes.
    for s in starts.iter().step_by(3) {
        r.free(*s).unwrap();
    }
    (r, starts)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("window_alloc_free");
    for n in [10u32, 1_000, 100_000] {
        let (mut r, _) = populated(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            let mut k = 0u32;
            b.iter(|| {
                k = k.wrapping_add(1);
                let a = r.alloc(1 + (k % 3), ()).unwrap();
                r.free(black_box(a.start)).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
