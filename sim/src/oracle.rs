//! The best a judge could do on a catalog scenario, as a yardstick: the
//! detection of the optimal test that knows the simulator's model, at the
//! false-alarm rate the study's judge reached on its harmless scenarios.
//!
//! The oracle knows every spread of the model (pod-to-pod variation, pod
//! drift, per-request noise, the error rate's binomial spread) and sees
//! every request of both tracks over the analysis (from the end of the
//! warmup to the end of the lifetime); it does not know the service's
//! level in this release, so it compares the canary with its control as a
//! judge does. Where the model makes the optimal statistic a normal mean
//! difference it has a closed form (`judge::oracle`):
//!
//! - `latency` (every request slower by `1 + delta`): the mean log
//!   latency, canary minus control, is normal with mean `ln(1 + delta)` and
//!   variance: pod offsets `pod_variation^2 (1/canary pods + 1/control
//!   pods)`, each track's pod drift (an AR(1) from 0 at the traffic shift,
//!   its mean over the window computed exactly) and per-request noise
//!   `sigma^2 / requests`. The load both tracks share, and a fresh pod's
//!   cold start (known to the oracle), cancel.
//! - `errors` (the canary's error rate `p1` against `p0`): the difference
//!   of the two error ratios over all requests, normal approximation of
//!   the binomials (under no change, variance at `p0`).
//! - `slow_start` (the canary's latency times `1 + extra e^(-age / decay)`):
//!   the per-step differences of mean log latency `x_k` are normal with
//!   the known mean `d_k = ln(1 + extra e^(-age_k / decay))` and the
//!   covariance `S` of the same three parts (the pods' offsets, the same
//!   at every step; each track's drift, an AR(1) from 0; per-request
//!   noise, step by step). The likelihood ratio is monotone in the
//!   matched filter `d' S^-1 x` (Neyman-Pearson), whose detection at
//!   false-alarm rate `a` is `Phi(sqrt(d' S^-1 d) - z_a)`: a closed form up
//!   to one linear solve (Cholesky), checked against the test run on the
//!   simulator's own series. The pods' offset is constant, so the filter
//!   sees the decay's shape past any pod difference: this oracle is far
//!   above what a judge comparing window means can reach.
//!
//! - `cpu` (30% more CPU per request): the mean per-step log CPU
//!   difference; a pod's CPU is `(idle + busy) (1 + 0.02 g)` with `busy`
//!   following its Poisson requests, so measurement noise and the request
//!   count (delta method) make its variance; pods and drift do not touch
//!   CPU in the model, the shared load cancels.
//! - `memory_leak` (a linear ramp): the matched filter of the ramp over the
//!   per-step log memory differences, whose noise (`0.003` per track and
//!   step) is independent; the fresh pods' memory warm-up is known.
//! - `latency_tail` (a fraction of requests `added_ms` slower): every
//!   delayed request lands above the highest bucket bound at or below
//!   `added_ms`, where almost no other does; the canary's count there is
//!   Poisson (null mean at the canary's level, its pods, drift and load a
//!   spread of its log median), tested exactly (randomised Neyman-Pearson).
//! - `variance` (a wider log-normal spread): each request's bucket scored
//!   by the multinomial likelihood ratio `ln(p1_b / p0_b)`, canary minus
//!   control; normal, with bucket (Poisson) noise and the tracks' levels
//!   (pods, drift, load) moving the mean score.
//! - `crash_loop`: certain; no harmless pod crashes under the model (the
//!   canary never becomes ready, or its pods go down).
//!
//! Each is checked against the statistic run on the simulator's own series
//! (the tests below), on a faint version of the regression: the
//! catalog's own tail, spread, CPU, leak and crash loop are detected with
//! certainty (above 99.9999% at 0.02% false alarms).
//!
//! Not for: A/A scenarios (the oracle's detection of nothing is its
//! false-alarm rate): those get no oracle.

use judge::stats::{pnorm, qnorm};
use reports::model::{Expect, Oracle, ScenarioResult};
use scenarios::{BaselineKind, Regression, Scenario};
use serde::{Deserialize, Serialize};

/// What the oracle's test statistic is, for one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Statistic {
    /// Mean log latency difference: shift `ln(1 + increase)`, its sd.
    LatencyShift {
        /// Relative increase of every request's latency.
        increase: f64,
        /// Standard deviation of the statistic (the same with and without
        /// the regression).
        sd: f64,
    },
    /// A known time-varying shift of the mean log latency (slow start):
    /// `sqrt(d' S^-1 d)`, the matched filter's mean in its standard
    /// deviations.
    MatchedFilter {
        /// `sqrt(d' S^-1 d)`.
        separation: f64,
    },
    /// Error ratio difference over all requests of the analysis.
    ErrorRatio {
        /// Control (and, without a regression, canary) error rate.
        p0: f64,
        /// Canary error rate.
        p1: f64,
        /// Expected canary requests.
        canary: f64,
        /// Expected control requests.
        control: f64,
    },
    /// The canary's mean per-step log CPU minus the control's, centred on
    /// its mean without the regression: normal, with `shift` its mean under
    /// the regression and `sd0`, `sd1` its sd without and with it.
    CpuShift {
        /// Mean under the regression (0 without).
        shift: f64,
        /// Sd without the regression.
        sd0: f64,
        /// Sd with it.
        sd1: f64,
    },
    /// Matched filter of a memory leak's known ramp over the per-step log
    /// memory differences (independent measurement noise): its mean under
    /// the leak and its sd without and with it.
    MemoryRamp {
        /// The filter's mean under the leak (0 without).
        shift: f64,
        /// Sd without the leak.
        sd0: f64,
        /// Sd with it.
        sd1: f64,
    },
    /// The canary's requests above a bucket bound every delayed request
    /// passes (a tail regression): Poisson, the exact randomised
    /// Neyman-Pearson test on the count.
    TailCount {
        /// The bound, seconds.
        bound: f64,
        /// Expected count without the regression.
        null_mean: f64,
        /// Expected count with it.
        alt_mean: f64,
    },
    /// Bucket likelihood-ratio score of the latency spread (each request's
    /// bucket weighted by `ln(p1 / p0)` for the two spreads), the canary's
    /// mean score minus the control's, centred on its mean without the
    /// regression: normal with mean `shift` and sds `sd0`, `sd1`.
    Spread {
        /// Mean under the regression (0 without).
        shift: f64,
        /// Sd without the regression.
        sd0: f64,
        /// Sd with it.
        sd1: f64,
    },
    /// The regression is certain from what is seen: no harmless canary
    /// under the model does it (a crash loop: the canary never becomes
    /// ready, or its pods go down).
    Certain,
}

/// Detection of a one-sided test of a normal statistic with mean 0 and sd
/// `sd0` without the regression and mean `shift`, sd `sd1` with it.
fn normal_detection(shift: f64, sd0: f64, sd1: f64, alpha: f64) -> f64 {
    let z = qnorm(1.0 - alpha);
    if sd1 <= 0.0 || !sd1.is_finite() {
        return if shift > z * sd0 { 1.0 } else { alpha };
    }
    pnorm((shift - z * sd0) / sd1)
}

/// `P(X = j)` for `X ~ Poisson(lambda)`, `j` in `0..n`.
fn poisson_pmf(lambda: f64, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let mut p = (-lambda).exp();
    for j in 0..n {
        out.push(p);
        p *= lambda / (j + 1) as f64;
    }
    out
}

/// `P(X >= c)` for `X ~ Poisson(lambda)` (`lambda` up to a few hundred;
/// above 600 the normal approximation with continuity correction).
fn poisson_upper(lambda: f64, c: usize) -> f64 {
    if c == 0 {
        return 1.0;
    }
    if lambda > 600.0 {
        return 1.0 - pnorm((c as f64 - 0.5 - lambda) / lambda.sqrt());
    }
    if (c as f64) <= lambda {
        return (1.0 - poisson_pmf(lambda, c).iter().sum::<f64>()).max(0.0);
    }
    // beyond the mean: sum the tail upwards
    let mut p = poisson_pmf(lambda, c + 1)[c];
    let (mut sum, mut j) = (0.0, c);
    while p > 1e-300 && p > sum * 1e-17 {
        sum += p;
        j += 1;
        p *= lambda / j as f64;
    }
    sum
}

/// Detection of the exact (randomised) level-`alpha` test that rejects
/// for large `X`, with `X ~ Poisson(null_mean)` without the regression and
/// `Poisson(alt_mean)` with it (`alt_mean > null_mean`: Neyman-Pearson).
pub fn poisson_detection(null_mean: f64, alt_mean: f64, alpha: f64) -> f64 {
    // smallest c with P0(X >= c) <= alpha
    let mut c = 0usize;
    while poisson_upper(null_mean, c) > alpha {
        c += 1;
        if c > 100_000 {
            return alpha;
        }
    }
    if c == 0 {
        return 1.0;
    }
    let at = |lambda: f64| poisson_upper(lambda, c - 1) - poisson_upper(lambda, c);
    let p0 = at(null_mean);
    let gamma = if p0 > 0.0 {
        ((alpha - poisson_upper(null_mean, c)) / p0).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (poisson_upper(alt_mean, c) + gamma * at(alt_mean)).min(1.0)
}

impl Statistic {
    /// The optimal one-sided test's detection at false-alarm rate `alpha`.
    pub fn detection(self, alpha: f64) -> f64 {
        let z = qnorm(1.0 - alpha);
        match self {
            // the statistic's sd as a model of two tracks with equal shares
            Statistic::LatencyShift { increase, sd } => judge::oracle::ShiftModel {
                pod_sd: sd / std::f64::consts::SQRT_2,
                point_sd: 0.0,
                effective_points: f64::INFINITY,
            }
            .detection(increase, alpha),
            Statistic::MatchedFilter { separation } => pnorm(separation - z),
            Statistic::CpuShift { shift, sd0, sd1 }
            | Statistic::MemoryRamp { shift, sd0, sd1 }
            | Statistic::Spread { shift, sd0, sd1 } => normal_detection(shift, sd0, sd1, alpha),
            Statistic::TailCount {
                null_mean,
                alt_mean,
                ..
            } => poisson_detection(null_mean, alt_mean, alpha),
            Statistic::Certain => 1.0,
            Statistic::ErrorRatio {
                p0,
                p1,
                canary,
                control,
            } => {
                let v = |p: f64, n: f64| p * (1.0 - p) / n.max(1e-9);
                let sd0 = (v(p0, canary) + v(p0, control)).sqrt();
                let sd1 = (v(p1, canary) + v(p0, control)).sqrt();
                if sd1 <= 0.0 {
                    return if p1 > p0 { 1.0 } else { alpha };
                }
                pnorm((p1 - p0 - z * sd0) / sd1)
            }
        }
    }

    /// How it is computed, for results.
    pub fn method(self) -> &'static str {
        match self {
            Statistic::LatencyShift { .. } => {
                "closed form: mean log latency difference (pods, drift, per-request noise)"
            }
            Statistic::ErrorRatio { .. } => {
                "closed form: error ratio difference over all requests (normal approximation)"
            }
            Statistic::MatchedFilter { .. } => {
                "closed form: matched filter of the slow start's known decay over the per-step \
                 mean log latency differences (pods, drift, per-request noise)"
            }
            Statistic::CpuShift { .. } => {
                "closed form: mean per-step log CPU difference (measurement noise, request \
                 counts, shared load)"
            }
            Statistic::MemoryRamp { .. } => {
                "closed form: matched filter of the leak's known ramp over the per-step log \
                 memory differences (measurement noise)"
            }
            Statistic::TailCount { .. } => {
                "exact: the canary's requests above the bucket bound every delayed request \
                 passes (Poisson, randomised Neyman-Pearson test)"
            }
            Statistic::Spread { .. } => {
                "closed form: bucket likelihood-ratio score of the latency spread, canary \
                 minus control (multinomial buckets, pods, drift, shared load)"
            }
            Statistic::Certain => {
                "certain: no harmless canary crashes under the model (it never becomes ready, \
                 or its pods go down)"
            }
        }
    }
}

/// The steps (1-based, per scrape step from the traffic shift) the
/// analysis sees: the end of the warmup to the end of the lifetime.
pub fn analysis_steps(sc: &Scenario) -> std::ops::RangeInclusive<usize> {
    let pl = &sc.file.pipeline;
    let step = sc.file.analysis.scrape_step_s;
    let lo = (pl.warmup_s / step + 1e-9).floor() as usize + 1;
    let hi = ((pl.warmup_s + pl.lifetime_s) / step + 1e-9).floor() as usize;
    lo..=hi.max(lo)
}

/// Expected requests per step of the canary and its control at step `k`.
fn requests_at(sc: &Scenario, k: usize) -> [f64; 2] {
    let f = &sc.file;
    let pl = &f.pipeline;
    let step = f.analysis.scrape_step_s;
    let t = k as f64 * step;
    let (mut canary, mut baseline, mut production) = (
        pl.traffic.canary,
        pl.traffic.baseline,
        pl.traffic.production,
    );
    for s in &pl.traffic_steps {
        if s.after_s <= t {
            (canary, baseline, production) = (s.canary, s.baseline, s.production);
        }
    }
    let control = match pl.baseline {
        BaselineKind::Fresh => baseline,
        BaselineKind::Production => production,
    };
    let per = f.service.request_rate * step / 100.0;
    [canary * per, control * per]
}

/// Pods of the canary and of its control, as the simulator draws their
/// offsets.
fn pods(sc: &Scenario) -> [u32; 2] {
    let pl = &sc.file.pipeline;
    let control = match pl.baseline {
        BaselineKind::Fresh => pl.baseline_replicas,
        BaselineKind::Production => sc.file.service.replicas,
    };
    [pl.canary_replicas.max(1), control.max(1)]
}

/// Variance of the mean over `steps` of an AR(1) with stationary sd `sd`
/// and lag-1 correlation `rho` that starts at 0 at step 0 (as the
/// simulator's pod drift does), computed exactly.
pub fn ar1_mean_variance(sd: f64, rho: f64, steps: std::ops::RangeInclusive<usize>) -> f64 {
    let (lo, hi) = (*steps.start(), *steps.end());
    if sd == 0.0 || hi < lo || lo == 0 {
        return 0.0;
    }
    let n = (hi - lo + 1) as f64;
    // x_k = sum_{j <= k} rho^(k - j) e_j with Var e_j = sd^2 (1 - rho^2);
    // the mean is sum_j c_j e_j with c_j = sum_{k >= max(j, lo)}^{hi}
    // rho^(k - j) / n, computed backwards in one pass
    let mut sum_sq = 0.0;
    let mut tail = 0.0; // sum_{k = max(j, lo)}^{hi} rho^(k - j) for the current j
    for j in (1..=hi).rev() {
        tail = if j >= lo {
            1.0 + rho * tail
        } else {
            rho * tail
        };
        let c = tail / n;
        sum_sq += c * c;
    }
    sd * sd * (1.0 - rho * rho) * sum_sq
}

/// The variance of the mean log latency difference over the analysis, with
/// `per_request` the variance one request contributes to its step's mean
/// (`sigma^2` for the mean of log latencies, the oracle's statistic).
pub fn latency_variance(sc: &Scenario, per_request: f64) -> f64 {
    let svc = &sc.file.service;
    let steps = analysis_steps(sc);
    let n = (steps.end() - steps.start() + 1) as f64;
    let [pc, pb] = pods(sc).map(f64::from);
    let offsets = svc.pod_variation.powi(2) * (1.0 / pc + 1.0 / pb);
    let drift: f64 = [pc, pb]
        .iter()
        .map(|p| {
            ar1_mean_variance(
                svc.pod_drift.sd / p.sqrt(),
                svc.pod_drift.rho,
                steps.clone(),
            )
        })
        .sum();
    let requests: f64 = steps
        .clone()
        .map(|k| {
            requests_at(sc, k)
                .iter()
                .map(|r| 1.0 / r.max(1e-9))
                .sum::<f64>()
        })
        .sum::<f64>()
        * per_request
        / (n * n);
    offsets + drift + requests
}

/// The covariance of the per-step mean log latency differences (canary
/// minus control) over the analysis steps, with `per_request` the variance
/// one request adds to its step's mean: the pods' offsets (every entry),
/// each track's drift (an AR(1) from 0 at step 0), per-request noise (the
/// diagonal). Row-major, `steps x steps`.
pub fn step_covariance(sc: &Scenario, per_request: f64) -> Vec<f64> {
    let svc = &sc.file.service;
    let steps: Vec<usize> = analysis_steps(sc).collect();
    let n = steps.len();
    let [pc, pb] = pods(sc).map(f64::from);
    let offsets = svc.pod_variation.powi(2) * (1.0 / pc + 1.0 / pb);
    let rho = svc.pod_drift.rho;
    let drift_var = svc.pod_drift.sd.powi(2) * (1.0 / pc + 1.0 / pb);
    let mut cov = vec![0.0; n * n];
    for (i, &a) in steps.iter().enumerate() {
        for (j, &b) in steps.iter().enumerate() {
            let (lo, gap) = (a.min(b), a.abs_diff(b));
            let drift = drift_var
                * rho.powi(i32::try_from(gap).unwrap_or(i32::MAX))
                * (1.0 - rho.powi(i32::try_from(2 * lo).unwrap_or(i32::MAX)));
            cov[i * n + j] = offsets + drift;
        }
        let noise: f64 = requests_at(sc, a).iter().map(|r| 1.0 / r.max(1e-9)).sum();
        cov[i * n + i] += noise * per_request;
    }
    cov
}

/// The slow start's known shift of the canary's log latency at each
/// analysis step: `ln(1 + extra e^(-age / decay))`, the canary's age as the
/// simulator counts it (its readiness plus the time since the traffic
/// shift).
pub fn slow_start_shift(sc: &Scenario, extra: f64, decay_s: f64) -> Vec<f64> {
    let f = &sc.file;
    let step = f.analysis.scrape_step_s;
    analysis_steps(sc)
        .map(|k| {
            let age = f.pipeline.readiness_s + k as f64 * step;
            (extra * (-age / decay_s).exp()).ln_1p()
        })
        .collect()
}

/// `S^-1 d` for a symmetric positive definite `S` (row-major, `n x n`) by
/// Cholesky; `None` when `S` is not positive definite.
pub fn solve_spd(cov: &[f64], d: &[f64]) -> Option<Vec<f64>> {
    let n = d.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = cov[i * n + j] - dot;
            if i == j {
                if v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    // L y = d, then L' x = y
    let mut y = vec![0.0; n];
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (d[i] - dot) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - dot) / l[i * n + i];
    }
    Some(x)
}

/// `sqrt(d' S^-1 d)` for the slow start of `sc` with per-request variance
/// `per_request`, and the filter `S^-1 d`.
pub fn matched_filter(
    sc: &Scenario,
    extra: f64,
    decay_s: f64,
    per_request: f64,
) -> Option<(f64, Vec<f64>)> {
    let d = slow_start_shift(sc, extra, decay_s);
    let w = solve_spd(&step_covariance(sc, per_request), &d)?;
    let q: f64 = d.iter().zip(&w).map(|(a, b)| a * b).sum();
    Some((q.max(0.0).sqrt(), w))
}

/// Ages of the canary and its control at step `k`, seconds (a fresh
/// track's age starts at its readiness, production's at 7 days, as the
/// simulator's tracks do).
fn ages_at(sc: &Scenario, k: usize) -> [f64; 2] {
    let pl = &sc.file.pipeline;
    let t = k as f64 * sc.file.analysis.scrape_step_s;
    let control = match pl.baseline {
        BaselineKind::Fresh => pl.readiness_s,
        BaselineKind::Production => 7.0 * 86_400.0,
    };
    [pl.readiness_s + t, control + t]
}

/// A track's level spread over the analysis, variance of its mean log
/// latency offset: its pods' offsets and the mean of its pod drift.
fn level_variance(sc: &Scenario, pods: f64) -> f64 {
    let svc = &sc.file.service;
    svc.pod_variation.powi(2) / pods
        + ar1_mean_variance(
            svc.pod_drift.sd / pods.sqrt(),
            svc.pod_drift.rho,
            analysis_steps(sc),
        )
}

/// The CPU oracle: the mean over the analysis of each step's log CPU, the
/// canary's minus the control's. A pod's CPU in a step is `(idle + busy)
/// (1 + 0.02 g)` with `busy = requests x cpu per request / step / pods`:
/// per step and track, measurement noise `0.02^2` and, through the Poisson
/// request count, `s^2 / requests` with `s = busy / (idle + busy)` (delta
/// method); the load both tracks share cancels up to the difference of
/// their `s`. Pod offsets and drift do not touch CPU in the model.
pub fn cpu_statistic(sc: &Scenario, increase: f64) -> Statistic {
    let svc = &sc.file.service;
    let step = sc.file.analysis.scrape_step_s;
    let [pc, pb] = pods(sc).map(f64::from);
    let idle = svc.cpu_idle_cores;
    let c0 = svc.cpu_ms_per_request / 1000.0;
    let noise = 0.02_f64.powi(2);
    // (E ln CPU, its variance from the request count, s) of one track
    let part = |n: f64, c: f64, pods: f64| {
        let n = n.max(1.0);
        let busy = n * c / step / pods;
        let s = busy / (idle + busy).max(1e-300);
        ((idle + busy).ln() - 0.5 * s * s / n, s * s / n, s)
    };
    let steps = analysis_steps(sc);
    let n = steps.clone().count() as f64;
    let (mut m0, mut m1, mut v0, mut v1, mut ds0, mut ds1) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for k in steps.clone() {
        let [nc, nb] = requests_at(sc, k);
        let (a0, va0, s0) = part(nc, c0, pc);
        let (a1, va1, s1) = part(nc, c0 * (1.0 + increase), pc);
        let (b, vb, sb) = part(nb, c0, pb);
        m0 += a0 - b;
        m1 += a1 - b;
        v0 += 2.0 * noise + va0 + vb;
        v1 += 2.0 * noise + va1 + vb;
        ds0 += s0 - sb;
        ds1 += s1 - sb;
    }
    let load = ar1_mean_variance(svc.load_noise.sd, svc.load_noise.rho, steps);
    let (ds0, ds1) = (ds0 / n, ds1 / n);
    Statistic::CpuShift {
        shift: (m1 - m0) / n,
        sd0: (v0 / (n * n) + ds0 * ds0 * load).sqrt(),
        sd1: (v1 / (n * n) + ds1 * ds1 * load).sqrt(),
    }
}

/// The memory oracle: a pod's resident memory in a step is `M warm(age)
/// (1 + 0.003 g) + leak(age)`, independent from step to step, so each
/// step's log memory difference (canary minus control) has the known
/// mean `ln(warm_c / warm_b)` without the leak, plus `d_k = ln(1 +
/// leak / (M warm_c))` with it, and variance `2 x 0.003^2` (the leak
/// dilutes the canary's share). The likelihood ratio is monotone in the
/// matched filter `sum d_k x_k` (equal variances). The oracle takes `M`,
/// the service's memory level, from the control: 180 steps pin it far
/// below the noise.
pub fn memory_statistic(sc: &Scenario, mib_per_minute: f64) -> Statistic {
    let noise = 0.003_f64.powi(2);
    let (mut shift, mut v0, mut v1) = (0.0, 0.0, 0.0);
    for (d, _) in leak_ramp(sc, mib_per_minute) {
        // the leak dilutes the canary's measurement noise by exp(-d)
        let dilute = (-d).exp();
        shift += d * d;
        v0 += d * d * 2.0 * noise;
        v1 += d * d * noise * (1.0 + dilute * dilute);
    }
    Statistic::MemoryRamp {
        shift,
        sd0: v0.sqrt(),
        sd1: v1.sqrt(),
    }
}

/// Per analysis step: the leak's shift `d_k` of the log memory difference
/// (canary minus control) and the difference's mean without it, `ln(warm_c
/// / warm_b)` (the fresh pods' memory warm-up, known to the oracle).
pub fn leak_ramp(sc: &Scenario, mib_per_minute: f64) -> Vec<(f64, f64)> {
    let svc = &sc.file.service;
    let mib = 1_048_576.0;
    let level = svc.memory_mib * mib;
    let warm = |age: f64| {
        1.0 - (1.0 - svc.fresh_pod.memory_ratio) * (-age / (10.0 * svc.fresh_pod.warm_up_s)).exp()
    };
    analysis_steps(sc)
        .map(|k| {
            let [age, control] = ages_at(sc, k);
            let base = level * warm(age);
            let leak = mib_per_minute * mib * age / 60.0;
            ((leak / base).ln_1p(), (warm(age) / warm(control)).ln())
        })
        .collect()
}

/// The tail oracle: every delayed request (`added_ms` on top of its
/// log-normal latency) lands above the highest bucket bound at or below
/// `added_ms`, where almost no other request does, so the canary's count
/// above that bound is the likelihood ratio's sufficient statistic (the
/// shape within the buckets adds next to nothing). The count is Poisson:
/// without the regression with mean `sum_k requests_k P(latency > bound)`
/// at each step's level (the service's median, the cold start, and the
/// canary's pods, drift and load as a spread of its log median, which is
/// all the oracle does not know of the release's level), with it
/// `(1 - fraction)` of that plus `fraction` of the requests. `None` when
/// `added_ms` is below every bound.
pub fn tail_statistic(sc: &Scenario, fraction: f64, added_ms: f64) -> Option<Statistic> {
    let svc = &sc.file.service;
    let added = added_ms / 1000.0;
    let bound = *crate::series::DURATION_BUCKETS
        .iter()
        .rev()
        .find(|&&b| b <= added)?;
    let [pc, _] = pods(sc).map(f64::from);
    let (load, drift) = (svc.load_noise, svc.pod_drift);
    let (mut null_mean, mut alt_mean) = (0.0, 0.0);
    for k in analysis_steps(sc) {
        let [n, _] = requests_at(sc, k);
        let [age, _] = ages_at(sc, k);
        let ln_median = (svc.latency_median_ms / 1000.0).ln()
            + (svc.fresh_pod.cold_latency * (-age / svc.fresh_pod.warm_up_s).exp()).ln_1p();
        let grow = |rho: f64| 1.0 - rho.powi(i32::try_from(2 * k).unwrap_or(i32::MAX));
        let spread = svc.latency_sigma.powi(2)
            + 0.25 * load.sd.powi(2) * grow(load.rho)
            + drift.sd.powi(2) / pc * grow(drift.rho)
            + svc.pod_variation.powi(2) / pc;
        let above = if spread > 0.0 {
            1.0 - pnorm((bound.ln() - ln_median) / spread.sqrt())
        } else if ln_median > bound.ln() {
            1.0
        } else {
            0.0
        };
        null_mean += n * above;
        alt_mean += n * ((1.0 - fraction) * above + fraction);
    }
    Some(Statistic::TailCount {
        bound,
        null_mean,
        alt_mean,
    })
}

/// Probability of each of goldengoose's latency buckets (the last is
/// +Inf) for a log-normal latency.
pub fn bucket_probs(ln_median: f64, sigma: f64) -> [f64; crate::series::GOLDENGOOSE] {
    let bounds = crate::series::DURATION_BUCKETS;
    let cdf = |b: usize| {
        if b >= bounds.len() {
            1.0
        } else if sigma > 0.0 {
            pnorm((bounds[b].ln() - ln_median) / sigma)
        } else if bounds[b].ln() >= ln_median {
            1.0
        } else {
            0.0
        }
    };
    let mut out = [0.0; crate::series::GOLDENGOOSE];
    let mut below = 0.0;
    for (b, p) in out.iter_mut().enumerate() {
        let upto = cdf(b);
        *p = (upto - below).max(0.0);
        below = upto;
    }
    out
}

/// The spread oracle's score of each bucket: `ln(p1_b / p0_b)` at the
/// service's median for the spread `sigma1` against the service's own (0
/// for a bucket either makes impossible).
pub fn spread_weights(sc: &Scenario, sigma1: f64) -> [f64; crate::series::GOLDENGOOSE] {
    let svc = &sc.file.service;
    let ln_m0 = (svc.latency_median_ms / 1000.0).ln();
    let (p0, p1) = (
        bucket_probs(ln_m0, svc.latency_sigma),
        bucket_probs(ln_m0, sigma1),
    );
    let mut w = [0.0; crate::series::GOLDENGOOSE];
    for ((w, a), b) in w.iter_mut().zip(p0).zip(p1) {
        if a > 0.0 && b > 0.0 {
            *w = (b / a).ln();
        }
    }
    w
}

/// The spread oracle: each request's bucket scored by `w_b = ln(p1_b /
/// p0_b)` (the bucket probabilities of the wider and the usual spread at
/// the service's median: the multinomial likelihood ratio), the canary's
/// mean score minus the control's. Buckets are independent Poisson
/// counts, so a track's mean score over the analysis is normal with
/// variance `sum_k n_k E_k[(w - mean)^2] / N^2` (per step at its own
/// median, the cold start included); a track's level moves its mean
/// score by `g = dE[w] / d ln median` times its pods' offset and drift,
/// and the shared load by `(g_c - g_b)` times half the load. `None` when
/// the spread is the service's own.
pub fn spread_statistic(sc: &Scenario, sigma1: f64) -> Option<Statistic> {
    let svc = &sc.file.service;
    let sigma0 = svc.latency_sigma;
    if sigma1 == sigma0 || sigma0 <= 0.0 || sigma1 <= 0.0 {
        return None;
    }
    let ln_m0 = (svc.latency_median_ms / 1000.0).ln();
    let w = spread_weights(sc, sigma1);
    let moments = |ln_m: f64, sigma: f64| {
        let p = bucket_probs(ln_m, sigma);
        let m1: f64 = p.iter().zip(&w).map(|(p, w)| p * w).sum();
        let m2: f64 = p.iter().zip(&w).map(|(p, w)| p * w * w).sum();
        (m1, m2)
    };
    // (mean score, its variance, g) of one track over the analysis
    let track = |t: usize, sigma: f64| {
        let (mut n_sum, mut s1, mut s2, mut g) = (0.0, 0.0, 0.0, 0.0);
        for k in analysis_steps(sc) {
            let n = requests_at(sc, k)[t];
            let age = ages_at(sc, k)[t];
            let ln_m = ln_m0
                + (svc.fresh_pod.cold_latency * (-age / svc.fresh_pod.warm_up_s).exp()).ln_1p();
            let (a, b) = moments(ln_m, sigma);
            let h = 1e-4;
            let slope = (moments(ln_m + h, sigma).0 - moments(ln_m - h, sigma).0) / (2.0 * h);
            n_sum += n;
            s1 += n * a;
            s2 += n * b;
            g += n * slope;
        }
        let n_sum = n_sum.max(1e-9);
        let mean = s1 / n_sum;
        (
            mean,
            (s2 - n_sum * mean * mean).max(0.0) / (n_sum * n_sum),
            g / n_sum,
        )
    };
    let [pc, pb] = pods(sc).map(f64::from);
    let (vc, vb) = (level_variance(sc, pc), level_variance(sc, pb));
    let load = 0.25 * ar1_mean_variance(svc.load_noise.sd, svc.load_noise.rho, analysis_steps(sc));
    let (mc0, varc0, gc0) = track(CANARY_TRACK, sigma0);
    let (mc1, varc1, gc1) = track(CANARY_TRACK, sigma1);
    let (_, varb, gb) = track(CONTROL_TRACK, sigma0);
    let sd = |var: f64, g: f64| {
        (var + varb + g * g * vc + gb * gb * vb + (g - gb).powi(2) * load).sqrt()
    };
    Some(Statistic::Spread {
        shift: mc1 - mc0,
        sd0: sd(varc0, gc0),
        sd1: sd(varc1, gc1),
    })
}

/// `requests_at`'s and `ages_at`'s index of the canary and of its control.
const CANARY_TRACK: usize = 0;
const CONTROL_TRACK: usize = 1;

/// The oracle's statistic for `sc`, when its model has a closed form.
pub fn statistic(sc: &Scenario) -> Option<Statistic> {
    let svc = &sc.file.service;
    match sc.file.regression? {
        Regression::Latency { increase } => Some(Statistic::LatencyShift {
            increase,
            sd: latency_variance(sc, svc.latency_sigma.powi(2)).sqrt(),
        }),
        Regression::SlowStart {
            extra_latency,
            decay_s,
            ..
        } => matched_filter(sc, extra_latency, decay_s, svc.latency_sigma.powi(2))
            .map(|(separation, _)| Statistic::MatchedFilter { separation }),
        Regression::Errors { error_rate } => {
            let [canary, control] = analysis_steps(sc)
                .map(|k| requests_at(sc, k))
                .fold([0.0; 2], |a, r| [a[0] + r[0], a[1] + r[1]]);
            Some(Statistic::ErrorRatio {
                p0: svc.error_rate,
                p1: error_rate,
                canary,
                control,
            })
        }
        Regression::Cpu { increase } => Some(cpu_statistic(sc, increase)),
        Regression::MemoryLeak { mib_per_minute } => Some(memory_statistic(sc, mib_per_minute)),
        Regression::LatencyTail { fraction, added_ms } => tail_statistic(sc, fraction, added_ms),
        Regression::Variance { sigma } => spread_statistic(sc, sigma),
        // under the model no harmless pod crashes: the canary never
        // becomes ready (the deploy times out) or its pods go down, both
        // seen with certainty
        Regression::CrashLoop { .. } => Some(Statistic::Certain),
    }
}

/// Fill in each result's oracle (`scenarios` in the results' order, one
/// result each): held to the false-alarm rate of the results' harmless
/// scenarios, pooled (with none observed, half a false alarm over their
/// runs, so the oracle is not held to an impossible 0). Results whose
/// regression gives none (a tail delay below every bucket bound, a spread
/// equal to the service's), and a study without harmless scenarios, get
/// none.
pub fn annotate(results: &mut [ScenarioResult], scenarios: &[Scenario]) {
    let statistics: Vec<Option<Statistic>> = results
        .iter()
        .zip(scenarios)
        .map(|(r, sc)| (r.name == sc.name).then(|| statistic(sc)).flatten())
        .collect();
    annotate_with(results, &statistics);
}

/// [`annotate`] with each result's statistic given (in the results'
/// order; a merge keeps them in its shard files).
pub fn annotate_with(results: &mut [ScenarioResult], statistics: &[Option<Statistic>]) {
    let (alarms, runs) = results
        .iter()
        .filter(|r| r.expect == Expect::Pass)
        .fold((0u32, 0u32), |(a, n), r| {
            (a + r.rollback_rate.count, n + r.rollback_rate.total)
        });
    if runs == 0 {
        return;
    }
    let alpha = f64::from(alarms).max(0.5) / f64::from(runs);
    for (r, statistic) in results.iter_mut().zip(statistics) {
        if r.expect != Expect::Fail {
            continue;
        }
        r.oracle = statistic.map(|s| Oracle {
            false_alarm: alpha,
            detection: s.detection(alpha),
            method: s.method().into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{CANARY, CONTROL, Draws, Generator, Step, TrackSpec};
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn scenario(name: &str) -> Scenario {
        crate::catalog_scenario(name)
    }

    #[test]
    fn the_ar1_mean_variance_matches_its_definition() {
        // brute force: the covariance of an AR(1) started at 0
        let (sd, rho) = (0.3_f64, 0.8_f64);
        let (lo, hi) = (5usize, 40usize);
        let var_k = |k: usize| sd * sd * (1.0 - rho.powi(2 * k as i32));
        let mut total = 0.0;
        for a in lo..=hi {
            for b in lo..=hi {
                let (m, d) = (a.min(b), a.abs_diff(b));
                total += rho.powi(d as i32) * var_k(m);
            }
        }
        let n = (hi - lo + 1) as f64;
        let exact = total / (n * n);
        let ours = ar1_mean_variance(sd, rho, lo..=hi);
        assert!(
            (ours - exact).abs() < 1e-12 * exact.max(1.0),
            "{ours} {exact}"
        );
        assert_eq!(ar1_mean_variance(0.0, 0.5, 1..=10), 0.0);
    }

    #[test]
    fn latency_10pct_reaches_near_the_pod_bound() {
        // 1 canary pod against 1 baseline pod at 2%: the bound at 2% false
        // alarms is 90.6%; drift and per-request noise take a little
        let s = statistic(&scenario("latency-10pct.toml")).expect("closed form");
        let d = s.detection(0.02);
        let bound = judge::oracle::pod_bound(0.10, 0.02, 0.02);
        assert!(d < bound && d > bound - 0.05, "{d} {bound}");
        // no regression: detection is the false-alarm rate
        let Statistic::LatencyShift { sd, .. } = s else {
            unreachable!()
        };
        let none = Statistic::LatencyShift { increase: 0.0, sd };
        assert!((none.detection(0.02) - 0.02).abs() < 1e-9);
        assert!(matches!(
            statistic(&scenario("slow-start.toml")),
            Some(Statistic::MatchedFilter { .. })
        ));
        assert!(statistic(&scenario("aa-typical.toml")).is_none());
        let e = statistic(&scenario("errors-0.5pct.toml")).expect("closed form");
        assert!(e.detection(0.01) > 0.99, "{}", e.detection(0.01));
    }

    /// One release of `sc`'s two tracks as the simulator generates them:
    /// the mean over the analysis of each step's log mean latency, canary
    /// minus control.
    fn simulated_statistic(sc: &Scenario, seed: u64) -> f64 {
        let x = simulated_steps(sc, seed);
        x.iter().sum::<f64>() / x.len() as f64
    }

    /// One release's per-step log mean latency differences, canary minus
    /// control, over the analysis steps.
    fn simulated_steps(sc: &Scenario, seed: u64) -> Vec<f64> {
        let g = generate(
            sc,
            seed,
            Draws {
                latency_sum: true,
                ..Draws::default()
            },
        );
        let steps = analysis_steps(sc);
        let logs = |track: usize| -> Vec<f64> {
            g.steps(track)[steps.start() - 1..*steps.end()]
                .iter()
                .map(|s| (s.latency_sum / s.requests as f64).ln())
                .collect()
        };
        let (c, b) = (logs(CANARY), logs(CONTROL));
        c.iter().zip(&b).map(|(x, y)| x - y).collect()
    }

    /// One release of `sc`'s two tracks as the simulator generates them
    /// (pod offsets drawn as the simulator draws them), making `draws`, up
    /// to the analysis's last step.
    fn generate(sc: &Scenario, seed: u64, draws: Draws) -> Generator<'_> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let f = &sc.file;
        let svc = &f.service;
        let pl = &f.pipeline;
        let [pc, pb] = pods(sc);
        let offset = |n: u32, rng: &mut Xoshiro256PlusPlus| {
            (0..n)
                .map(|_| {
                    svc.pod_variation
                        * rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, rng)
                })
                .sum::<f64>()
                / f64::from(n)
        };
        let canary = TrackSpec {
            pods: pc,
            age_at_start_s: pl.readiness_s,
            latency_offset: offset(pc, &mut rng),
            regression: f.regression,
        };
        let control = TrackSpec {
            pods: pb,
            age_at_start_s: pl.readiness_s,
            latency_offset: offset(pb, &mut rng),
            regression: None,
        };
        let mut g = Generator::new(svc, f.analysis.scrape_step_s, [canary, control], draws);
        let shares = requests_at(sc, 1).map(|r| r / (svc.request_rate * f.analysis.scrape_step_s));
        g.set_shares(0.0, shares);
        g.advance_to(*analysis_steps(sc).end(), &mut rng);
        g
    }

    /// The analysis steps' records of one track.
    fn analysed<'g>(g: &'g Generator<'_>, sc: &Scenario, track: usize) -> &'g [Step] {
        let steps = analysis_steps(sc);
        &g.steps(track)[steps.start() - 1..*steps.end()]
    }

    /// How often `reject` holds over `runs` releases (seeds salted
    /// by `salt`).
    fn rejection_rate(runs: u32, salt: u64, reject: impl Fn(u64) -> bool) -> f64 {
        (0..runs).filter(|&r| reject(u64::from(r) ^ salt)).count() as f64 / f64::from(runs)
    }

    /// `sc` with `regression` in place of its own, and without any.
    fn faint(name: &str, regression: Regression) -> (Scenario, Scenario) {
        let mut sc = scenario(name);
        sc.file.regression = Some(regression);
        let mut aa = sc.clone();
        aa.file.regression = None;
        (sc, aa)
    }

    /// The check shared by the oracles below: the statistic run on the
    /// simulator's own series (`reject` given a scenario and a seed)
    /// detects what `closed` says, within 3.5 binomial sds, and without the
    /// regression rejects at `alpha`.
    fn agrees(
        pair: (&Scenario, &Scenario),
        closed: f64,
        alpha: f64,
        reject: impl Fn(&Scenario, u64) -> bool,
        what: &str,
    ) {
        assert!(
            closed > 0.2 && closed < 0.95,
            "{what}: pick a regression the band can check: {closed}"
        );
        agrees_over(3000, (0x3C, 0xC3), pair, closed, alpha, reject, what);
    }

    /// [`agrees`] over `runs` releases each way, the seeds salted by
    /// `salts` (with the regression, without it), for any `closed`.
    fn agrees_over(
        runs: u32,
        salts: (u64, u64),
        (sc, aa): (&Scenario, &Scenario),
        closed: f64,
        alpha: f64,
        reject: impl Fn(&Scenario, u64) -> bool,
        what: &str,
    ) {
        let band = |p: f64| 3.5 * (p * (1.0 - p) / f64::from(runs)).sqrt();
        let detected = rejection_rate(runs, salts.0, |seed| reject(sc, seed));
        let false_alarms = rejection_rate(runs, salts.1, |seed| reject(aa, seed));
        println!(
            "{what}: closed form {closed:.4}, simulated {detected:.4}; false alarms \
             {false_alarms:.4} at {alpha}"
        );
        assert!(
            (detected - closed).abs() < band(closed),
            "{what}: simulated detection {detected}, closed form {closed}"
        );
        assert!(
            (false_alarms - alpha).abs() < band(alpha),
            "{what}: simulated false alarms {false_alarms}, nominal {alpha}"
        );
    }

    /// [`agrees`] on one release of the simulator's series per seed
    /// (generated drawing `draws`): `reject` reads them.
    fn agrees_on_generated(
        pair: &(Scenario, Scenario),
        closed: f64,
        alpha: f64,
        draws: Draws,
        reject: impl Fn(&Generator<'_>, &Scenario) -> bool,
        what: &str,
    ) {
        agrees(
            (&pair.0, &pair.1),
            closed,
            alpha,
            |sc, seed| reject(&generate(sc, seed, draws), sc),
            what,
        );
    }

    /// [`agrees_on_generated`] for a statistic of the canary's and the
    /// control's analysed steps (`score`), normal with mean 0 and sd `sd0`
    /// without the regression, `shift` and `sd1` with it: above its upper
    /// 5% point without the regression rejects.
    fn agrees_normal(
        pair: &(Scenario, Scenario),
        (shift, sd0, sd1): (f64, f64, f64),
        draws: Draws,
        score: impl Fn(&[Step], &[Step]) -> f64,
        what: &str,
    ) {
        let alpha = 0.05;
        let threshold = qnorm(1.0 - alpha) * sd0;
        let closed = normal_detection(shift, sd0, sd1, alpha);
        agrees_on_generated(
            pair,
            closed,
            alpha,
            draws,
            |g, sc| score(analysed(g, sc, CANARY), analysed(g, sc, CONTROL)) > threshold,
            what,
        );
    }

    /// CPU, checked on a faint +2% (the catalog's +30% is certain): the mean
    /// per-step log CPU difference of the simulated series.
    #[test]
    fn the_cpu_oracle_agrees_with_the_test_on_the_simulated_series() {
        let pair = faint("cpu-30pct.toml", Regression::Cpu { increase: 0.02 });
        let Statistic::CpuShift { shift, sd0, sd1 } = statistic(&pair.0).expect("closed form")
        else {
            unreachable!("a CPU oracle")
        };
        // equal shares and pods: the mean without the regression is 0
        assert_eq!(requests_at(&pair.0, 50)[0], requests_at(&pair.0, 50)[1]);
        agrees_normal(
            &pair,
            (shift, sd0, sd1),
            Draws {
                cpu: true,
                ..Draws::default()
            },
            |c, b| {
                c.iter()
                    .zip(b)
                    .map(|(c, b)| (c.cpu_cores / b.cpu_cores).ln())
                    .sum::<f64>()
                    / c.len() as f64
            },
            "cpu +2%",
        );
    }

    /// The leak, checked on a faint 0.008 MiB/min (the catalog's 2 MiB/min
    /// is certain): the matched filter on the simulated memory series.
    #[test]
    fn the_memory_oracle_agrees_with_the_filter_on_the_simulated_series() {
        let rate = 0.008;
        let pair = faint(
            "memory-leak.toml",
            Regression::MemoryLeak {
                mib_per_minute: rate,
            },
        );
        let Statistic::MemoryRamp { shift, sd0, sd1 } = statistic(&pair.0).expect("closed form")
        else {
            unreachable!("a memory oracle")
        };
        let ramp = leak_ramp(&pair.0, rate);
        agrees_normal(
            &pair,
            (shift, sd0, sd1),
            Draws {
                memory: true,
                ..Draws::default()
            },
            |c, b| {
                c.iter()
                    .zip(b)
                    .zip(&ramp)
                    .map(|((c, b), (d, null))| d * ((c.memory_bytes / b.memory_bytes).ln() - null))
                    .sum()
            },
            "memory leak 0.008 MiB/min",
        );
    }

    /// The tail, checked on a faint 0.005% of requests +500 ms (the
    /// catalog's 1% is certain): the canary's simulated requests above the
    /// bound, at the false-alarm rate of "one or more" (the Poisson null's
    /// own `P(X >= 1)`, itself checked against the simulated A/A runs).
    #[test]
    fn the_tail_oracle_agrees_with_the_count_on_the_simulated_series() {
        let pair = faint(
            "latency-tail-p99.toml",
            Regression::LatencyTail {
                fraction: 0.00005,
                added_ms: 500.0,
            },
        );
        let Some(
            s @ Statistic::TailCount {
                bound,
                null_mean,
                alt_mean,
            },
        ) = statistic(&pair.0)
        else {
            unreachable!("a tail oracle")
        };
        assert_eq!(bound, 0.5);
        let first = crate::series::DURATION_BUCKETS.partition_point(|&b| b <= bound);
        let alpha = poisson_upper(null_mean, 1);
        let closed = s.detection(alpha);
        assert!((closed - poisson_upper(alt_mean, 1)).abs() < 1e-12);
        let draws = Draws {
            histogram: true,
            ..Draws::default()
        };
        agrees_on_generated(
            &pair,
            closed,
            alpha,
            draws,
            |g, sc| {
                analysed(g, sc, CANARY)
                    .iter()
                    .map(|s| s.buckets[first..].iter().sum::<u64>())
                    .sum::<u64>()
                    >= 1
            },
            "tail 0.005% +500 ms",
        );
    }

    /// The spread, checked on a faint sigma 0.5 -> 0.51 (the catalog's 0.8
    /// is certain): the bucket score on the simulated histograms.
    #[test]
    fn the_spread_oracle_agrees_with_the_score_on_the_simulated_series() {
        let sigma = 0.51;
        let pair = faint("latency-variance.toml", Regression::Variance { sigma });
        let Statistic::Spread { shift, sd0, sd1 } = statistic(&pair.0).expect("closed form") else {
            unreachable!("a spread oracle")
        };
        let w = spread_weights(&pair.0, sigma);
        agrees_normal(
            &pair,
            (shift, sd0, sd1),
            Draws {
                histogram: true,
                ..Draws::default()
            },
            |c, b| {
                let score = |steps: &[Step]| {
                    let (mut sum, mut n) = (0.0, 0u64);
                    for s in steps {
                        for (c, w) in s.buckets.iter().zip(&w) {
                            sum += *c as f64 * w;
                            n += c;
                        }
                    }
                    sum / n.max(1) as f64
                };
                score(c) - score(b)
            },
            "spread sigma 0.51",
        );
    }

    /// Every catalog regression has an oracle now; the catalog's tail,
    /// spread, CPU, leak and crash loop are certain at the smallest
    /// false-alarm rate a judge reached (sequential's 0.02%).
    #[test]
    fn every_catalog_regression_has_an_oracle() {
        for name in [
            "latency-tail-p99.toml",
            "latency-variance.toml",
            "cpu-30pct.toml",
            "memory-leak.toml",
            "crash-loop.toml",
        ] {
            let s = statistic(&scenario(name)).expect("an oracle");
            let d = s.detection(0.0002);
            println!("{name}: {s:?} detection at 0.02%: {d}");
            assert!(d > 0.999_999, "{name}: {d}");
        }
        assert_eq!(
            statistic(&scenario("crash-loop.toml")),
            Some(Statistic::Certain)
        );
    }

    #[test]
    fn every_statistic_survives_a_shard_file() {
        // shard files carry each scenario's statistic for the merge
        for name in [
            "latency-tail-p99.toml",
            "latency-variance.toml",
            "cpu-30pct.toml",
            "memory-leak.toml",
            "crash-loop.toml",
            "slow-start.toml",
        ] {
            let s = statistic(&scenario(name)).expect("an oracle");
            let text = serde_json::to_string(&s).expect("serialises");
            let back: Statistic = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, s, "{text}");
        }
    }

    #[test]
    fn the_poisson_test_holds_its_level_exactly() {
        for (null, alt) in [(0.04, 0.9), (3.0, 8.0), (180.0, 230.0), (900.0, 1000.0)] {
            for alpha in [0.0002, 0.01, 0.05, 0.3] {
                // no regression: detection is the level (randomised test)
                let none = poisson_detection(null, null, alpha);
                assert!((none - alpha).abs() < 1e-9, "{null} {alpha}: {none}");
                let d = poisson_detection(null, alt, alpha);
                assert!(d > alpha && d <= 1.0, "{null} {alt} {alpha}: {d}");
            }
        }
        // P(X >= 2) for Poisson(1): 1 - 2/e
        assert!((poisson_upper(1.0, 2) - (1.0 - 2.0 / std::f64::consts::E)).abs() < 1e-12);
        let l = 0.04_f64;
        // e^-l (l^3/3! + l^4/4! + ...), the terms beyond l^12/12! below 1e-30
        let exact = (-l).exp()
            * (3..=12)
                .map(|j| l.powi(j) / (1..=j).map(f64::from).product::<f64>())
                .sum::<f64>();
        assert!((poisson_upper(l, 3) / exact - 1.0).abs() < 1e-12, "{exact}");
    }

    /// The slow start's oracle, checked like latency-10pct's: the matched
    /// filter run on the simulator's own series (each step's mean latency,
    /// per-request variance `exp(sigma^2) - 1`) detects what the closed form
    /// says, and holds its false-alarm rate without the regression. At
    /// the catalog's own scenario the closed form says nearly 100%, which
    /// a band cannot check, so the check runs on a fainter slow start
    /// (+10% at first) where detection is in between.
    #[test]
    fn the_slow_start_oracle_agrees_with_the_filter_on_the_simulated_series() {
        let mut sc = scenario("slow-start.toml");
        let Some(Regression::SlowStart { decay_s, .. }) = sc.file.regression else {
            unreachable!("a slow start")
        };
        let extra = 0.1;
        sc.file.regression = Some(Regression::SlowStart {
            extra_ready_s: 0.0,
            extra_latency: extra,
            decay_s,
        });
        let mut aa = sc.clone();
        aa.file.regression = None;
        let per_request = sc.file.service.latency_sigma.powi(2).exp_m1();
        let (separation, w) = matched_filter(&sc, extra, decay_s, per_request).expect("solves");
        let alpha = 0.05;
        let threshold = qnorm(1.0 - alpha) * separation;
        let closed = Statistic::MatchedFilter { separation }.detection(alpha);
        assert!(
            closed > 0.2 && closed < 0.95,
            "pick a fainter slow start: {closed}"
        );
        agrees_over(
            3000,
            (0x55, 0xA5),
            (&sc, &aa),
            closed,
            alpha,
            |s, seed| {
                let x = simulated_steps(s, seed);
                x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() > threshold
            },
            &format!("slow start +{extra}"),
        );
        // the catalog's slow start, as the oracle reports it
        let catalog = statistic(&scenario("slow-start.toml")).expect("closed form");
        assert!(
            catalog.detection(0.01) > 0.99,
            "{}",
            catalog.detection(0.01)
        );
    }

    #[test]
    fn the_matched_filter_of_a_constant_shift_without_pods_is_the_mean() {
        // no pods, no drift: equal per-step noise, a constant shift; the
        // filter is the plain mean and sqrt(d' S^-1 d) is d / sd(mean)
        let mut sc = scenario("latency-10pct.toml");
        sc.file.service.pod_variation = 0.0;
        sc.file.service.pod_drift.sd = 0.0;
        let n = analysis_steps(&sc).count();
        let cov = step_covariance(&sc, 0.25);
        let d = vec![0.1; n];
        let w = solve_spd(&cov, &d).expect("diagonal");
        let q: f64 = d.iter().zip(&w).map(|(a, b)| a * b).sum();
        let sd = latency_variance(&sc, 0.25).sqrt();
        assert!(
            (q.sqrt() - 0.1 / sd).abs() < 1e-9 * q.sqrt(),
            "{} {}",
            q.sqrt(),
            0.1 / sd
        );
    }

    /// The check of issue 16: on `latency-10pct` the closed form's
    /// detection is what the likelihood-ratio test reaches on the
    /// simulator's own series. The simulated test reads each step's mean
    /// latency (what the generator records), whose log has per-request
    /// variance `exp(sigma^2) - 1` instead of the oracle's `sigma^2`; the
    /// closed form is evaluated with that, then compared within a binomial
    /// band (3.5 sd) under the regression and without it.
    #[test]
    fn the_closed_form_agrees_with_the_test_on_the_simulated_series() {
        let sc = scenario("latency-10pct.toml");
        let Some(Regression::Latency { increase }) = sc.file.regression else {
            unreachable!("a latency scenario")
        };
        let mut aa = sc.clone();
        aa.file.regression = None;
        let sigma2 = sc.file.service.latency_sigma.powi(2);
        let sd = latency_variance(&sc, sigma2.exp_m1()).sqrt();
        // at alpha 0.05 the band is narrow on both sides
        let alpha = 0.05;
        let threshold = qnorm(1.0 - alpha) * sd;
        let closed = Statistic::LatencyShift { increase, sd }.detection(alpha);
        agrees_over(
            4000,
            (0xD1, 0xAA),
            (&sc, &aa),
            closed,
            alpha,
            |s, seed| simulated_statistic(s, seed) > threshold,
            &format!("latency +{increase}"),
        );
    }

    #[test]
    fn a_study_carries_the_oracle_and_which_metric_decided() {
        let scenarios = vec![scenario("aa-typical.toml"), scenario("latency-25pct.toml")];
        let opts = crate::StudyOptions {
            runs: 60,
            seed: 5,
            threads: 2,
            examples: false,
        };
        let study = crate::run_study(&scenarios, opts, &|_, _| {}).expect("runs");
        let (aa, reg) = (&study.scenarios[0], &study.scenarios[1]);
        assert!(aa.oracle.is_none());
        let o = reg.oracle.as_ref().expect("a latency shift has an oracle");
        let pooled = f64::from(aa.rollback_rate.count).max(0.5) / f64::from(aa.rollback_rate.total);
        assert_eq!(o.false_alarm, pooled);
        assert_eq!(
            o.detection,
            statistic(&scenarios[1])
                .expect("closed form")
                .detection(pooled)
        );
        for r in [aa, reg] {
            let t = r
                .decided
                .as_ref()
                .expect("the simulator keeps the verdicts");
            let decided: u32 = r.decided_at_interval.iter().sum();
            assert_eq!(t.verdicts, u64::from(decided));
            let names: Vec<&str> = t.metrics.iter().map(|m| m.name.as_str()).collect();
            let config: Vec<&str> = scenarios[0]
                .config
                .metrics
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            assert_eq!(names, config);
        }
        // a 25% slowdown: the median latency is High in most deciding
        // verdicts, and something turned every rolled-back one
        let t = reg.decided.as_ref().expect("tally");
        assert!(t.metrics[0].high * 2 > t.verdicts, "{t:?}");
        assert!(
            t.metrics.iter().map(|m| m.pivotal).sum::<u64>() > 0,
            "{t:?}"
        );
    }
}
