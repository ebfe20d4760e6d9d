//! Synthetic metrics as Prometheus would present them to Kayenta.
//!
//! Per scrape step and per track (canary, and its control: a fresh
//! baseline or old production) the generator draws what the pods served:
//! the request count (Poisson), the latency histogram's bucket counts (a
//! multinomial over goldengoose's buckets), the server errors (binomial),
//! CPU and memory. Queries then read these the way the canary config's
//! PromQL would: `histogram_quantile` over `rate(...[window])` with
//! Prometheus's interpolation, error ratios as ratios of windowed sums,
//! CPU as a windowed rate, memory as a gauge. Drawing aggregates per step
//! instead of requests keeps a run to microseconds while staying faithful
//! to per-request sampling at any traffic level.
//!
//! Not for: the pipeline (see `run`), which decides when tracks start and
//! what traffic share they get.

use rand::RngExt;
use rand_distr::{Binomial, Distribution, Poisson, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use scenarios::{Regression, Service, Signal};

/// goldengoose's `http_request_duration_seconds` bucket bounds (its
/// `metrics::DURATION_BUCKETS`; the root crate's tests check they agree).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const BUCKETS: usize = DURATION_BUCKETS.len() + 1;
/// Natural logs of the bucket bounds, computed once.
static LN_BUCKETS: std::sync::LazyLock<[f64; 16]> =
    std::sync::LazyLock::new(|| DURATION_BUCKETS.map(f64::ln));

/// One track's fixed properties for a run.
#[derive(Debug, Clone)]
pub struct TrackSpec {
    /// Pods serving the track.
    pub pods: u32,
    /// Pod age when traffic starts, seconds (fresh pods: their readiness
    /// time; production: days).
    pub age_at_start_s: f64,
    /// Mean log latency offset of the track's pods (pod-to-pod variation).
    pub latency_offset: f64,
    /// The regression, for the canary.
    pub regression: Option<Regression>,
}

/// Per step, per track: what was served.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    requests: u64,
    errors: u64,
    latency_sum: f64,
    buckets: [u64; BUCKETS],
    cpu_cores: f64,
    memory_bytes: f64,
    /// The pods were down (crash loop): nothing was scraped.
    down: bool,
}

/// Generates both tracks in lockstep (they share the load noise).
pub struct Generator<'a> {
    service: &'a Service,
    step_s: f64,
    window_steps: usize,
    tracks: [TrackSpec; 2],
    /// Traffic share of each track at a time (seconds after traffic start).
    shares: Box<dyn Fn(f64) -> [f64; 2] + 'a>,
    load: f64,
    drift: [f64; 2],
    steps: [Vec<Step>; 2],
    signals: &'a [Signal],
    /// Per track, per signal: the query's value at each step (1-based
    /// step k at index k - 1).
    pub values: [Vec<Vec<f64>>; 2],
}

impl std::fmt::Debug for Generator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("steps", &self.len())
            .field("tracks", &self.tracks)
            .finish()
    }
}

/// Index of the canary track.
pub const CANARY: usize = 0;
/// Index of the control track (baseline or production).
pub const CONTROL: usize = 1;

impl<'a> Generator<'a> {
    /// A generator for `signals` (config metric order).
    pub fn new(
        service: &'a Service,
        step_s: f64,
        rate_window_s: f64,
        tracks: [TrackSpec; 2],
        shares: Box<dyn Fn(f64) -> [f64; 2] + 'a>,
        signals: &'a [Signal],
    ) -> Self {
        Self {
            service,
            step_s,
            window_steps: ((rate_window_s / step_s).round() as usize).max(1),
            tracks,
            shares,
            load: 0.0,
            drift: [0.0; 2],
            steps: [Vec::new(), Vec::new()],
            signals,
            values: [
                vec![Vec::new(); signals.len()],
                vec![Vec::new(); signals.len()],
            ],
        }
    }

    /// Steps generated so far.
    pub fn len(&self) -> usize {
        self.steps[0].len()
    }

    /// Whether nothing was generated yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests and server errors the canary served in step `k` (1-based),
    /// including requests that failed because its pods were down.
    pub fn canary_served(&self, k: usize) -> (u64, u64) {
        let s = &self.steps[CANARY][k - 1];
        (s.requests, s.errors)
    }

    /// Generate up to step `k` (1-based) inclusive.
    pub fn advance_to(&mut self, k: usize, rng: &mut Xoshiro256PlusPlus) {
        while self.len() < k {
            self.next_step(rng);
        }
    }

    fn next_step(&mut self, rng: &mut Xoshiro256PlusPlus) {
        let svc = self.service;
        let k = self.len() + 1;
        let t = k as f64 * self.step_s;
        self.load = ar1(self.load, svc.load_noise, rng);
        let shares = (self.shares)(t);
        let hour = svc.start_hour + t / 3600.0;
        let diurnal = 1.0 + svc.diurnal_swing * (std::f64::consts::TAU * hour / 24.0).sin();
        for track in [CANARY, CONTROL] {
            let spec = &self.tracks[track];
            let pods = f64::from(spec.pods.max(1));
            // the average of `pods` independent drifts
            let drift_sd = scenarios::Ar1 {
                sd: svc.pod_drift.sd / pods.sqrt(),
                rho: svc.pod_drift.rho,
            };
            self.drift[track] = ar1(self.drift[track], drift_sd, rng);
            let age = spec.age_at_start_s + t;
            let reg = spec.regression;
            let expected =
                svc.request_rate * shares[track] * diurnal * self.load.exp() * self.step_s;
            let requests = poisson(expected, rng);

            let mut median = svc.latency_median_ms / 1000.0
                * (0.5 * self.load + self.drift[track] + spec.latency_offset).exp()
                * (1.0 + svc.fresh_pod.cold_latency * (-age / svc.fresh_pod.warm_up_s).exp());
            let mut sigma = svc.latency_sigma;
            let mut error_rate = svc.error_rate;
            let mut cpu_per_request = svc.cpu_ms_per_request / 1000.0;
            let mut tail = (0.0, 0.0);
            let mut leak_bytes = 0.0;
            let mut down = false;
            match reg {
                Some(Regression::Latency { increase }) => median *= 1.0 + increase,
                Some(Regression::LatencyTail { fraction, added_ms }) => {
                    tail = (fraction, added_ms / 1000.0)
                }
                Some(Regression::Variance { sigma: s }) => sigma = s,
                Some(Regression::Errors { error_rate: e }) => error_rate = e,
                Some(Regression::Cpu { increase }) => cpu_per_request *= 1.0 + increase,
                Some(Regression::MemoryLeak { mib_per_minute }) => {
                    leak_bytes = mib_per_minute * 1_048_576.0 * age / 60.0
                }
                Some(Regression::SlowStart {
                    extra_latency,
                    decay_s,
                    ..
                }) => {
                    median *= 1.0 + extra_latency * (-age / decay_s).exp();
                }
                Some(Regression::CrashLoop { crash_after_s }) => {
                    // up from readiness until the crash, then restarting
                    let cycle = crash_after_s + 30.0;
                    down = age % cycle > crash_after_s;
                }
                None => {}
            }

            let mut step = Step {
                requests,
                down,
                ..Step::default()
            };
            if down {
                // everything sent to the canary fails; nothing is scraped
                step.errors = requests;
            } else {
                fill_histogram(&mut step.buckets, requests, median, sigma, tail, rng);
                step.errors = binomial(requests, error_rate, rng);
                step.latency_sum = latency_sum(requests, median, sigma, tail, rng);
                let busy = requests as f64 * cpu_per_request / self.step_s / pods;
                step.cpu_cores = (svc.cpu_idle_cores + busy) * (1.0 + 0.02 * gauss(rng));
                let warm = 1.0
                    - (1.0 - svc.fresh_pod.memory_ratio)
                        * (-age / (10.0 * svc.fresh_pod.warm_up_s)).exp();
                step.memory_bytes =
                    svc.memory_mib * 1_048_576.0 * warm * (1.0 + 0.003 * gauss(rng)) + leak_bytes;
            }
            self.steps[track].push(step);
            self.record_queries(track);
        }
    }

    /// Evaluate every signal's query at the newest step of `track`.
    fn record_queries(&mut self, track: usize) {
        let steps = &self.steps[track];
        let newest = steps[steps.len() - 1];
        let window = &steps[steps.len().saturating_sub(self.window_steps)..];
        let up = || window.iter().filter(|s| !s.down);
        let requests: u64 = up().map(|s| s.requests).sum();
        let errors: u64 = up().map(|s| s.errors).sum();
        let up_steps = up().count();
        let window_s = self.step_s * window.len() as f64;
        // the windowed histogram, shared by every quantile query
        let mut buckets = [0u64; BUCKETS];
        if self
            .signals
            .iter()
            .any(|s| matches!(s, Signal::LatencyQuantile(_)))
        {
            for s in up() {
                for (b, c) in buckets.iter_mut().zip(s.buckets) {
                    *b += c;
                }
            }
        }
        for (i, signal) in self.signals.iter().enumerate() {
            let v = if newest.down {
                f64::NAN
            } else {
                match *signal {
                    Signal::LatencyQuantile(q) => histogram_quantile(q, &buckets),
                    Signal::LatencyMean => {
                        let sum: f64 = up().map(|s| s.latency_sum).sum();
                        if requests == 0 {
                            f64::NAN
                        } else {
                            sum / requests as f64
                        }
                    }
                    Signal::ErrorRatio => {
                        if requests == 0 {
                            f64::NAN
                        } else {
                            errors as f64 / requests as f64
                        }
                    }
                    Signal::ErrorRate => errors as f64 / window_s,
                    Signal::RequestRate => requests as f64 / window_s,
                    Signal::Cpu => up().map(|s| s.cpu_cores).sum::<f64>() / up_steps.max(1) as f64,
                    Signal::Memory => newest.memory_bytes,
                }
            };
            self.values[track][i].push(v);
        }
    }
}

/// Prometheus's `histogram_quantile` on per-bucket counts (the last is +Inf).
pub fn histogram_quantile(q: f64, counts: &[u64; BUCKETS]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    let mut cumulative = 0u64;
    for (b, &c) in counts.iter().enumerate() {
        let below = cumulative;
        cumulative += c;
        if cumulative as f64 >= rank {
            if b == BUCKETS - 1 {
                // in the +Inf bucket: Prometheus answers the highest bound
                return DURATION_BUCKETS[BUCKETS - 2];
            }
            let upper = DURATION_BUCKETS[b];
            let lower = if b == 0 { 0.0 } else { DURATION_BUCKETS[b - 1] };
            if c == 0 {
                return upper;
            }
            return lower + (upper - lower) * (rank - below as f64) / c as f64;
        }
    }
    DURATION_BUCKETS[BUCKETS - 2]
}

/// Per-request latency CDF at a bucket bound whose log is `ln_x`:
/// log-normal, optionally with a fraction shifted by a fixed delay.
fn latency_cdf(x: f64, ln_x: f64, ln_median: f64, sigma: f64, tail: (f64, f64)) -> f64 {
    let lognormal = |ln_v: f64| {
        if sigma == 0.0 {
            return if ln_v >= ln_median { 1.0 } else { 0.0 };
        }
        let z = (ln_v - ln_median) / sigma;
        // beyond 8.3 sd the normal tail is below 1e-16
        if z < -8.3 {
            0.0
        } else if z > 8.3 {
            1.0
        } else {
            judge::stats::pnorm(z)
        }
    };
    let (f, add) = tail;
    let base = lognormal(ln_x);
    if f == 0.0 {
        return base;
    }
    let shifted = if x > add {
        lognormal((x - add).ln())
    } else {
        0.0
    };
    (1.0 - f) * base + f * shifted
}

/// Multinomial bucket counts: one uniform per request for few requests
/// (cheaper than a binomial draw per bucket), conditional binomials for
/// many. Both are exact draws from the same multinomial.
fn fill_histogram(
    out: &mut [u64; BUCKETS],
    n: u64,
    median: f64,
    sigma: f64,
    tail: (f64, f64),
    rng: &mut Xoshiro256PlusPlus,
) {
    let ln_median = median.ln();
    let mut cdf = [1.0f64; BUCKETS];
    for b in 0..BUCKETS - 1 {
        cdf[b] = latency_cdf(DURATION_BUCKETS[b], LN_BUCKETS[b], ln_median, sigma, tail);
    }
    if n <= 256 {
        for _ in 0..n {
            let u: f64 = rng.random();
            out[cdf.partition_point(|&c| c < u).min(BUCKETS - 1)] += 1;
        }
        return;
    }
    let mut remaining = n;
    let mut prev_cdf = 0.0;
    for (b, slot) in out.iter_mut().enumerate() {
        if remaining == 0 {
            break;
        }
        if b == BUCKETS - 1 {
            *slot = remaining;
            break;
        }
        let mass = (cdf[b] - prev_cdf).max(0.0);
        let left = (1.0 - prev_cdf).max(0.0);
        prev_cdf = cdf[b];
        let p = if left <= 0.0 {
            1.0
        } else {
            (mass / left).min(1.0)
        };
        let c = binomial(remaining, p, rng);
        *slot = c;
        remaining -= c;
    }
}

/// Sum of `n` latencies: exact draws for few requests, the normal limit
/// (with the log-normal's mean and variance) for many.
fn latency_sum(
    n: u64,
    median: f64,
    sigma: f64,
    tail: (f64, f64),
    rng: &mut Xoshiro256PlusPlus,
) -> f64 {
    let draw = |rng: &mut Xoshiro256PlusPlus| {
        let base = median * (sigma * gauss(rng)).exp();
        if tail.0 > 0.0 && rng.random_bool(tail.0.min(1.0)) {
            base + tail.1
        } else {
            base
        }
    };
    if n <= 30 {
        return (0..n).map(|_| draw(rng)).sum();
    }
    let s2 = sigma * sigma;
    let mean_ln = median * (s2 / 2.0).exp();
    let var_ln = (s2.exp() - 1.0) * median * median * s2.exp();
    let (f, add) = tail;
    let mean = mean_ln + f * add;
    let var = var_ln + f * (1.0 - f) * add * add;
    let nf = n as f64;
    (nf * mean + (nf * var).sqrt() * gauss(rng)).max(0.0)
}

fn ar1(prev: f64, p: scenarios::Ar1, rng: &mut Xoshiro256PlusPlus) -> f64 {
    if p.sd == 0.0 {
        return 0.0;
    }
    p.rho * prev + p.sd * (1.0 - p.rho * p.rho).sqrt() * gauss(rng)
}

fn gauss(rng: &mut Xoshiro256PlusPlus) -> f64 {
    StandardNormal.sample(rng)
}

fn poisson(lambda: f64, rng: &mut Xoshiro256PlusPlus) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda).map_or(0, |d| d.sample(rng) as u64)
}

fn binomial(n: u64, p: f64, rng: &mut Xoshiro256PlusPlus) -> u64 {
    // below 1e-13 a draw is non-zero with probability n p: negligible
    if n == 0 || p <= 1e-13 {
        return 0;
    }
    if p >= 1.0 - 1e-13 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(n, 1.0 - p, rng);
    }
    if (n as f64) * p < 16.0 {
        // count successes by geometric gaps between them: exact, and
        // about n p + 1 draws instead of a sampler's set-up
        let ln_q = (-p).ln_1p();
        let mut trials = 0.0;
        let mut successes = 0;
        loop {
            let u: f64 = 1.0 - rng.random::<f64>();
            trials += (u.ln() / ln_q).floor() + 1.0;
            if trials > n as f64 {
                return successes;
            }
            successes += 1;
        }
    }
    Binomial::new(n, p).map_or(0, |d| d.sample(rng))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn binomial_paths_have_the_right_mean_and_variance() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        // geometric-gap path, complement path, and the sampler
        for (n, p) in [(100u64, 0.001), (1000, 0.01), (50, 0.9), (10_000, 0.3)] {
            let draws: Vec<f64> = (0..40_000)
                .map(|_| binomial(n, p, &mut rng) as f64)
                .collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
            let (m, v) = (n as f64 * p, n as f64 * p * (1.0 - p));
            assert!(
                (mean - m).abs() < 5.0 * (v / 40_000.0).sqrt() + 1e-9,
                "n {n} p {p}: mean {mean} vs {m}"
            );
            assert!(
                (var / v - 1.0).abs() < 0.05,
                "n {n} p {p}: variance {var} vs {v}"
            );
        }
    }

    #[test]
    fn both_histogram_paths_agree() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        // 4000 x 250 requests by uniforms vs 1 x 1_000_000 by binomials
        let mut small = [0u64; BUCKETS];
        for _ in 0..4000 {
            fill_histogram(&mut small, 250, 0.05, 0.5, (0.01, 0.5), &mut rng);
        }
        let mut large = [0u64; BUCKETS];
        fill_histogram(&mut large, 1_000_000, 0.05, 0.5, (0.01, 0.5), &mut rng);
        for b in 0..BUCKETS {
            let (a, c) = (small[b] as f64 / 1e6, large[b] as f64 / 1e6);
            assert!((a - c).abs() < 0.003, "bucket {b}: {a} vs {c}");
        }
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let mut c = [0u64; BUCKETS];
        // 100 requests: 50 in (0.025, 0.05], 50 in (0.05, 0.075]
        c[5] = 50;
        c[6] = 50;
        assert!((histogram_quantile(0.5, &c) - 0.05).abs() < 1e-12);
        assert!((histogram_quantile(0.75, &c) - 0.0625).abs() < 1e-12);
        c[BUCKETS - 1] = 900;
        assert_eq!(histogram_quantile(0.99, &c), 10.0);
        assert!(histogram_quantile(0.5, &[0; BUCKETS]).is_nan());
    }

    #[test]
    fn multinomial_matches_the_distribution() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut c = [0u64; BUCKETS];
        fill_histogram(&mut c, 1_000_000, 0.05, 0.5, (0.0, 0.0), &mut rng);
        assert_eq!(c.iter().sum::<u64>(), 1_000_000);
        // median 50 ms: half the requests at or below the 0.05 bound
        let below: u64 = c[..6].iter().sum();
        assert!((below as f64 / 1e6 - 0.5).abs() < 0.002, "{below}");
        let q = histogram_quantile(0.5, &c);
        assert!((q - 0.05).abs() < 0.001, "{q}");
    }
}
