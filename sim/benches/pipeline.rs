//! Full pipeline runs per second: an A/A release (so no run stops early)
//! with 3 analysis intervals of 60 points and 4 metrics judged by the
//! Kayenta judge, the reference workload.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scenarios::Scenario;
use sim::{Prepared, run_once};

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference.toml");
    let s = Scenario::load(&path, None).expect("benches/reference.toml loads");
    let p = Prepared::new(&s).expect("valid config");
    let mut ws = judge::Workspace::new();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    let mut seed = 0;
    g.bench_function("A/A run, 3 x 60 points, 4 metrics", |b| {
        b.iter(|| {
            seed += 1;
            run_once(&p, seed, false, &mut ws)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
