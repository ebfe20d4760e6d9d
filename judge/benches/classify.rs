//! One Mann-Whitney classification, as the judge makes it per metric and
//! window: 60 vs 60 and 180 vs 180 points of log-normal latency with a 5%
//! shift (so the interval must be found, not short-circuited).
//!
//! Kayenta's root finder stops at an absolute tolerance (1e-4), so the
//! number of steps grows with the data's scale: latency around 100 (ms) is
//! the slow case; the same data in seconds, as Prometheus reports it, needs
//! about half the steps. Both are measured.

use criterion::{Criterion, criterion_group, criterion_main};
use judge::classifier::{ClassifyArgs, MannWhitneyClassifier};
use judge::mannwhitney::MannWhitney;
use judge::{Direction, NanStrategy};

/// Deterministic log-normal samples (no RNG dependency in the bench).
fn lognormal(n: usize, seed: u64, scale: f64, unit: f64) -> Vec<f64> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            scale * (0.3 * z).exp() * 100.0 * unit
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let classifier = MannWhitneyClassifier::default();
    let args = ClassifyArgs {
        name: "latency",
        direction: Direction::Either,
        nan_strategy: NanStrategy::Remove,
        critical: false,
        must_have_data: false,
        noise_seed: 0,
    };
    for (n, unit, label) in [
        (60, 1.0, "ms"),
        (180, 1.0, "ms"),
        (60, 0.001, "s"),
        (180, 0.001, "s"),
    ] {
        let control = lognormal(n, 1, 1.0, unit);
        let experiment = lognormal(n, 2, 1.05, unit);
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
