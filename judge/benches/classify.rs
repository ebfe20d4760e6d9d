//! One Mann-Whitney classification, as the judge makes it per metric and
//! window: 60 vs 60 and 180 vs 180 points of log-normal latency with a 5%
//! shift (so the interval must be found, not short-circuited).
//!
//! Kayenta's root finder stops at an absolute tolerance (1e-4), so the
//! number of steps grows with the data's scale: latency around 100 (ms) is
//! the slow case; the same data in seconds, as Prometheus reports it, needs
//! about half the steps. Both are measured. `examples/classify_count.rs`
//! runs the same cases a fixed number of times, for instruction counts.

mod data;

use criterion::{Criterion, criterion_group, criterion_main};
use judge::classifier::MannWhitneyClassifier;
use judge::mannwhitney::MannWhitney;

fn bench(c: &mut Criterion) {
    let classifier = MannWhitneyClassifier::default();
    let args = data::classify_args();
    for (n, unit, label) in data::CASES {
        let (control, experiment) = data::case(n, unit);
        let mut mw = MannWhitney::new();
        c.bench_function(&format!("classify {n} vs {n} ({label})"), |b| {
            b.iter(|| {
                classifier.classify(
                    &mut mw,
                    std::hint::black_box(&control),
                    std::hint::black_box(&experiment),
                    &args,
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
