//! Ingest of a log backlog by `TailFollower` (what a daemon reads at start
//! from a raw stdout/stderr file): 100-byte lines, 1, 4 and 16 MiB. Linear
//! ingest shows as the same throughput for every size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vimana_capture::tail::TailFollower;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let line = format!("{}\n", "x".repeat(99));
    let mut group = c.benchmark_group("tail backlog of 100-byte lines");
    group.sample_size(10);
    for mib in [1usize, 4, 16] {
        let path = dir.path().join(format!("{mib}.log"));
        std::fs::write(&path, line.repeat((mib << 20) / line.len())).unwrap();
        group.throughput(Throughput::Bytes((mib << 20) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{mib} MiB")),
            &path,
            |b, path| {
                b.iter(|| {
                    rt.block_on(async {
                        let mut t = TailFollower::new(path, 0);
                        let mut n = 0usize;
                        while let Some(l) = t.try_next_line().await.unwrap() {
                            n += black_box(l).len();
                        }
                        n
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
