//! Full pipeline runs per second: an A/A release (so no run stops early)
//! with 3 analysis intervals of 60 points and 4 metrics judged by the
//! Kayenta judge, the reference workload.
//!
//! With `SIM_BENCH_RUNS=N` set, the binary skips criterion and plays
//! exactly N runs (seeds 1..=N), for instruction counts that don't depend
//! on timing: `valgrind --tool=callgrind target/release/deps/pipeline-*`.

use std::path::Path;

use criterion::{Criterion, Throughput};
use scenarios::Scenario;
use sim::{Prepared, run_once};

fn reference() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference.toml");
    Scenario::load(&path, None).expect("benches/reference.toml loads")
}

fn bench(c: &mut Criterion) {
    let s = reference();
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

/// A fixed number of runs, for profilers.
fn fixed(runs: u64) {
    let s = reference();
    let p = Prepared::new(&s).expect("valid config");
    let mut ws = judge::Workspace::new();
    let mut promoted = 0u64;
    for seed in 1..=runs {
        let (o, _) = run_once(&p, seed, false, &mut ws);
        promoted += u64::from(o.decision == sim::Decision::Promote);
    }
    println!("{runs} runs, {promoted} promoted");
}

fn main() {
    if let Some(runs) = std::env::var("SIM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        fixed(runs);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
