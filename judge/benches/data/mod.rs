//! The benchmark's data, shared by the criterion bench and the
//! instruction-count example: deterministic log-normal latency (no RNG
//! dependency), control at scale 1 and experiment shifted by 5%.

/// The cases measured: (points per side, unit, label). Unit 1 is
/// milliseconds, 0.001 the same data in seconds.
pub const CASES: [(usize, f64, &str); 4] = [
    (60, 1.0, "ms"),
    (180, 1.0, "ms"),
    (60, 0.001, "s"),
    (180, 0.001, "s"),
];

/// The classification measured: a non-critical latency metric failing in
/// either direction, Kayenta's defaults otherwise.
pub fn classify_args() -> judge::classifier::ClassifyArgs<'static> {
    judge::classifier::ClassifyArgs {
        name: "latency",
        direction: judge::Direction::Either,
        nan_strategy: judge::NanStrategy::Remove,
        critical: false,
        must_have_data: false,
        noise_seed: 0,
    }
}

/// Deterministic log-normal samples around 100 ms times `scale`, in `unit`.
pub fn lognormal(n: usize, seed: u64, scale: f64, unit: f64) -> Vec<f64> {
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

/// (control, experiment) for a case.
pub fn case(n: usize, unit: f64) -> (Vec<f64>, Vec<f64>) {
    (lognormal(n, 1, 1.0, unit), lognormal(n, 2, 1.05, unit))
}
