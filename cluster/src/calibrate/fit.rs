//! The fitting core (pure): per-pod series at the query step in, the
//! simulator's `[service]` parameters out, each with a standard error.
//!
//! Every estimate is defined by what `sim/src/series.rs` reads:
//!
//! - requests of the whole service per step are Poisson with mean
//!   `request_rate * (1 + diurnal_swing * sin(2 pi hour / 24)) * exp(L_k) * step`,
//!   `L` the shared AR(1) `load_noise`;
//! - a request's latency is log-normal, median
//!   `latency_median_ms * exp(0.5 L_k + D_ik + o_i)`, log-sd `latency_sigma`,
//!   with `D_i` pod `i`'s AR(1) `pod_drift` and `o_i ~ N(0, pod_variation^2)`
//!   its fixed offset;
//! - errors are binomial with `error_rate`; a pod's CPU is
//!   `cpu_idle_cores + its requests per second * cpu_ms_per_request / 1000`;
//!   memory is `memory_mib` for a warmed-up pod.
//!
//! So: the service's log request count per step minus its daily curve is
//! `L` plus Poisson noise; a pod's log mean latency per step (sum / count)
//! moves exactly with its log median, so its per-pod time mean gives `o_i`
//! and its deviations from its own mean and from the pods' common move give
//! `D_i` plus sampling noise. AR(1) parameters come from the
//! autocovariances at lags 1..=[`MAX_LAG`] (white sampling noise has none
//! there): a least-squares fit of `A rho^k`. The latency distribution is a
//! maximum-likelihood log-normal on the pooled histogram buckets (interval
//! censored), with the largest bucket-CDF error as its quality.
//!
//! Uncertainty: a delete-a-block jackknife over [`BLOCKS`] contiguous time
//! blocks for everything estimated over time (it keeps the series'
//! autocorrelation inside each block, so the standard errors are honest for
//! correlated data; the error ratio's se is at least its binomial one,
//! since five blocks of a few minutes can make the jackknife's far too
//! small by chance); normal theory over pods for the pod-to-pod spread
//! (`sd / sqrt(2 (n - 1))`) and for memory (`sd / sqrt(n)`).
//!
//! Not for: reading Prometheus (see `source`), or writing files.

/// Largest autocovariance lag fitted (in steps).
pub const MAX_LAG: usize = 10;
/// Time blocks of the jackknife.
pub const BLOCKS: usize = 20;
/// Fewest steps a fit over time accepts.
pub const MIN_STEPS: usize = 60;

/// An estimate and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate, in the parameter's unit.
    pub value: f64,
    /// Its standard error, same unit.
    pub se: f64,
}

/// A fitted parameter: the estimate, how it was obtained (for the file's
/// comment), or why it could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// Fitted from the data.
    Fitted {
        /// The estimate, in the parameter's unit.
        value: f64,
        /// Its standard error, same unit (infinite when unknown).
        se: f64,
        /// The data and method, in words.
        source: String,
    },
    /// Not fitted, and why (a missing family, too few steps, ...).
    NotFitted(String),
}

impl Fit {
    fn from(e: Option<Estimate>, source: impl Into<String>, why_not: &str) -> Fit {
        match e {
            Some(e) if e.value.is_finite() => Fit::Fitted {
                value: e.value,
                se: if e.se.is_finite() {
                    e.se
                } else {
                    f64::INFINITY
                },
                source: source.into(),
            },
            _ => Fit::NotFitted(why_not.to_string()),
        }
    }

    /// The value, if fitted.
    pub fn value(&self) -> Option<f64> {
        match self {
            Fit::Fitted { value, .. } => Some(*value),
            Fit::NotFitted(_) => None,
        }
    }

    /// The standard error, if fitted.
    pub fn se(&self) -> Option<f64> {
        match self {
            Fit::Fitted { se, .. } => Some(*se),
            Fit::NotFitted(_) => None,
        }
    }
}

/// One pod's series on the common step grid; NaN where the pod has no
/// valid point. Counts are per step (increments of the counters); an empty
/// vector means the family is absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSeries {
    /// The pod's name, from its `pod` and `instance` labels.
    pub name: String,
    /// Requests counted in the step.
    pub requests: Vec<f64>,
    /// Errors (5xx) counted in the step.
    pub errors: Vec<f64>,
    /// Seconds of latency summed over the step's requests.
    pub latency_sum: Vec<f64>,
    /// Requests counted by the latency histogram in the step.
    pub latency_count: Vec<f64>,
    /// CPU seconds used in the step.
    pub cpu_seconds: Vec<f64>,
    /// Resident memory at the step, bytes (a gauge).
    pub memory_bytes: Vec<f64>,
}

/// The latency histogram per time block: finite upper bounds in seconds,
/// and per block the (non-cumulative) count of each bucket, +Inf last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramBlocks {
    /// Finite bucket upper bounds, seconds, ascending.
    pub bounds: Vec<f64>,
    /// Per time block, each bucket's count (not cumulative), +Inf last.
    pub blocks: Vec<Vec<f64>>,
}

impl HistogramBlocks {
    /// Every block summed.
    pub fn pooled(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.bounds.len() + 1];
        for b in &self.blocks {
            for (o, c) in out.iter_mut().zip(b) {
                *o += c;
            }
        }
        out
    }
}

/// Names of the series the data came from, for the comments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// The request counter.
    pub requests: String,
    /// The request counter restricted to 5xx codes.
    pub errors: String,
    /// The mean latency, as `_sum / _count` of the duration histogram.
    pub latency: String,
    /// The duration histogram's buckets.
    pub histogram: String,
    /// The CPU-seconds counter.
    pub cpu: String,
    /// The resident-memory gauge.
    pub memory: String,
}

/// Everything the fit reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Unix time of step 0.
    pub start_unix: f64,
    /// The step, seconds.
    pub step_s: f64,
    /// Every pod's series, on the same grid.
    pub pods: Vec<PodSeries>,
    /// The latency histogram per time block, when the family has buckets.
    pub histogram: Option<HistogramBlocks>,
    /// Which series each family came from.
    pub sources: Sources,
}

impl Observations {
    /// Steps in the grid.
    pub fn steps(&self) -> usize {
        self.pods
            .iter()
            .map(|p| p.requests.len())
            .max()
            .unwrap_or(0)
    }
}

/// Autocorrelations drawn in the report: empirical and fitted, lags 0..=K.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acf {
    /// The empirical autocorrelation at each lag.
    pub empirical: Vec<f64>,
    /// The fitted AR(1)'s autocorrelation at each lag.
    pub fitted: Vec<f64>,
}

/// Per pod, what the per-pod chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSummary {
    /// The pod's name.
    pub name: String,
    /// Requests per second, mean.
    pub rate: f64,
    /// Log mean latency relative to the pods' average.
    pub latency_offset: f64,
    /// Its standard error (sampling and drift).
    pub latency_offset_se: f64,
    /// CPU used, cores, mean.
    pub cpu_cores: f64,
    /// Resident memory, MiB, mean.
    pub memory_mib: f64,
}

/// The whole calibration: each `[service]` parameter and what the report
/// draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The step, seconds.
    pub step_s: f64,
    /// Steps in the grid.
    pub steps: usize,
    /// Production replicas: the median number of pods reporting per step.
    pub replicas: Fit,
    /// Requests per second to the whole service.
    pub request_rate: Fit,
    /// Diurnal swing of the rate, as a fraction (0.3 = +-30% over a day).
    pub diurnal_swing: Fit,
    /// The simulator's `start_hour` for a release at 14:00 UTC of the
    /// fitted daily curve.
    pub start_hour: Fit,
    /// Median per-request latency, milliseconds.
    pub latency_median_ms: Fit,
    /// Log-normal sigma of per-request latency.
    pub latency_sigma: Fit,
    /// Largest |empirical - fitted| CDF at a bucket bound.
    pub latency_max_cdf_error: Option<f64>,
    /// Fraction of requests that fail (5xx).
    pub error_rate: Fit,
    /// CPU seconds per request, in milliseconds.
    pub cpu_ms_per_request: Fit,
    /// CPU a pod burns while idle, cores.
    pub cpu_idle_cores: Fit,
    /// Resident memory of a warmed-up pod, MiB.
    pub memory_mib: Fit,
    /// Pod-to-pod variation: sd of each pod's latency factor (log scale).
    pub pod_variation: Fit,
    /// Shared load noise: stationary sd of its AR(1) on the log rate.
    pub load_noise_sd: Fit,
    /// Shared load noise: correlation between consecutive steps.
    pub load_noise_rho: Fit,
    /// Per-pod latency drift: stationary sd of its AR(1) on the log latency.
    pub pod_drift_sd: Fit,
    /// Per-pod latency drift: correlation between consecutive steps.
    pub pod_drift_rho: Fit,
    /// Things a person should know (misfits, the shared latency noise the
    /// simulator has no knob for, ...).
    pub notes: Vec<String>,
    /// Histogram: bounds (s), empirical CDF at them, fitted CDF.
    pub histogram_cdf: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    /// The shared load noise's autocorrelation, when fitted.
    pub load_acf: Option<Acf>,
    /// The pods' latency drift's autocorrelation, when fitted.
    pub drift_acf: Option<Acf>,
    /// Per pod, what the per-pod chart shows.
    pub pods: Vec<PodSummary>,
}

/// Fit every parameter the data allows.
pub fn calibrate(obs: &Observations) -> Calibration {
    let steps = obs.steps();
    let step = obs.step_s;
    let blocks = block_of(steps);
    let mut notes = Vec::new();
    let src = &obs.sources;

    // Pods with at least half the window of request data.
    let pods: Vec<&PodSeries> = obs
        .pods
        .iter()
        .filter(|p| valid_count(&p.requests) * 2 >= steps.max(1))
        .collect();
    if pods.len() < obs.pods.len() {
        notes.push(format!(
            "{} of {} pods had request data for less than half the window and were left out of the per-pod fits",
            obs.pods.len() - pods.len(),
            obs.pods.len()
        ));
    }

    // Replicas: the median number of pods reporting per step.
    let mut present: Vec<f64> = (0..steps)
        .map(|k| {
            obs.pods
                .iter()
                .filter(|p| p.requests.get(k).is_some_and(|v| v.is_finite()))
                .count() as f64
        })
        .filter(|&n| n > 0.0)
        .collect();
    let replicas = if present.is_empty() {
        Fit::NotFitted("no pod reported requests".into())
    } else {
        present.sort_by(f64::total_cmp);
        let median = present[present.len() / 2];
        Fit::Fitted {
            value: median.max(1.0),
            se: 0.0,
            source: format!(
                "median number of pods reporting {} per step ({} pods seen)",
                src.requests,
                obs.pods.len()
            ),
        }
    };
    let replicas_n = replicas.value().unwrap_or(1.0);

    // The service's requests per step: steps where at least the usual
    // number of pods reported.
    let total: Vec<f64> = (0..steps)
        .map(|k| {
            let (mut sum, mut n) = (0.0, 0.0);
            for p in &obs.pods {
                if let Some(v) = p.requests.get(k).filter(|v| v.is_finite()) {
                    sum += v;
                    n += 1.0;
                }
            }
            if n >= replicas_n && n > 0.0 {
                sum
            } else {
                f64::NAN
            }
        })
        .collect();
    let hours: Vec<f64> = (0..steps)
        .map(|k| ((obs.start_unix + k as f64 * step) / 3600.0).rem_euclid(24.0))
        .collect();
    let span_h = steps as f64 * step / 3600.0;
    let n_total = valid_count(&total);

    let (request_rate, diurnal_swing, start_hour, daily_curve) = if n_total < MIN_STEPS {
        let why = format!("only {n_total} steps with every pod's request count (need {MIN_STEPS})");
        (
            Fit::NotFitted(why.clone()),
            Fit::NotFitted(why.clone()),
            Fit::NotFitted(why),
            None,
        )
    } else if span_h >= 24.0 {
        // rate_k = a + b sin + c cos (per step): swing = |(b, c)| / a.
        let stats = block_stats(
            &blocks,
            |k, s: &mut [f64]| {
                let y = total[k];
                if !y.is_finite() {
                    return;
                }
                let th = std::f64::consts::TAU * hours[k] / 24.0;
                let x = [1.0, th.sin(), th.cos()];
                for i in 0..3 {
                    for j in 0..3 {
                        s[i * 3 + j] += x[i] * x[j];
                    }
                    s[9 + i] += x[i] * y;
                }
            },
            12,
        );
        let solve = |s: &[f64]| -> Option<[f64; 3]> {
            let m = [[s[0], s[1], s[2]], [s[3], s[4], s[5]], [s[6], s[7], s[8]]];
            solve3(m, [s[9], s[10], s[11]])
        };
        let est = jackknife(&stats, |s| {
            let [a, b, c] = solve(s)?;
            Some([a / step, (b * b + c * c).sqrt() / a, b / a, c / a])
        });
        let curve = solve(&sum_blocks(&stats)).map(|[a, b, c]| (a, b, c));
        let source = format!(
            "sum of {} over pods, least squares on 1 + sin + cos of the UTC hour ({span_h:.1} h of data)",
            src.requests
        );
        match est {
            Some([rate, swing, b, c]) => {
                // sim hour = clock hour + psi * 24 / tau, psi = atan2(c, b);
                // its error by the delta method
                let psi = c.value.atan2(b.value);
                let r2 = b.value * b.value + c.value * c.value;
                let se_psi = ((c.value * b.se).powi(2) + (b.value * c.se).powi(2)).sqrt() / r2;
                let start = Estimate {
                    value: (14.0 + psi * 24.0 / std::f64::consts::TAU).rem_euclid(24.0),
                    se: (se_psi * 24.0 / std::f64::consts::TAU).min(12.0),
                };
                (
                    Fit::from(Some(rate), format!("daily mean of the {source}"), ""),
                    Fit::from(Some(swing), format!("amplitude / mean of the {source}"), ""),
                    Fit::from(
                        Some(start),
                        "phase of the daily curve: this start_hour puts a release at 14:00 UTC",
                        "",
                    ),
                    curve,
                )
            }
            None => {
                let why = "the daily-curve regression was singular".to_string();
                (
                    Fit::NotFitted(why.clone()),
                    Fit::NotFitted(why.clone()),
                    Fit::NotFitted(why),
                    None,
                )
            }
        }
    } else {
        let stats = block_stats(
            &blocks,
            |k, s: &mut [f64]| {
                if total[k].is_finite() {
                    s[0] += total[k];
                    s[1] += 1.0;
                }
            },
            2,
        );
        let est = jackknife(&stats, |s| (s[1] > 0.0).then(|| [s[0] / s[1] / step]));
        let why = format!(
            "needs at least 24 h of data to separate a daily swing from the rest ({span_h:.1} h given)"
        );
        (
            Fit::from(
                est.map(|[r]| r),
                format!(
                    "mean of the sum of {} over pods ({n_total} steps)",
                    src.requests
                ),
                "no request data",
            ),
            Fit::NotFitted(why.clone()),
            Fit::NotFitted(why),
            est.map(|[r]| (r.value * step, 0.0, 0.0)),
        )
    };

    // Load noise: log request count minus the daily curve.
    let (load_noise_sd, load_noise_rho, load_acf) = match daily_curve {
        Some((a, b, c)) if n_total >= MIN_STEPS => {
            let resid: Vec<f64> = (0..steps)
                .map(|k| {
                    let th = std::f64::consts::TAU * hours[k] / 24.0;
                    let mean = a + b * th.sin() + c * th.cos();
                    if total[k].is_finite() && total[k] > 0.0 && mean > 0.0 {
                        (total[k] / mean).ln()
                    } else {
                        f64::NAN
                    }
                })
                .collect();
            let centred = centre(&resid);
            let poisson = {
                let v: Vec<f64> = total
                    .iter()
                    .filter(|v| v.is_finite() && **v > 0.0)
                    .map(|v| 1.0 / v)
                    .collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            };
            let stats = acov_stats(&blocks, &[&centred]);
            let fit = jackknife(&stats, |s| {
                let (a, rho) = ar1_from_acov(&acov_of(s), poisson)?;
                Some([a.sqrt(), rho])
            });
            let all = sum_blocks(&stats);
            let acov = acov_of(&all);
            let fit =
                fit.map(|[sd, rho]| [bartlett_floor(sd, acov[0], all[MAX_LAG + 1], 1.0), rho]);
            let acf = acf_pair(&acov, poisson);
            if let Some((a, _)) = ar1_from_acov(&acov, poisson) {
                let white = acov[0] - a;
                notes.push(format!(
                    "request-count noise not explained by the AR(1): variance {white:.3e} per step; Poisson alone gives {poisson:.3e}{}",
                    if white > 1.5 * poisson { " (traffic is burstier than Poisson at the step)" } else { "" }
                ));
            }
            let source = format!(
                "AR(1) least squares on the autocovariance (lags 1-{MAX_LAG}) of ln(sum of {}) minus its daily curve",
                src.requests
            );
            match fit {
                Some([sd, rho]) => (
                    Fit::from(Some(sd), source.clone(), ""),
                    Fit::from(Some(rho), source, ""),
                    acf,
                ),
                None => (
                    Fit::NotFitted("the request counts' autocovariance gave no AR(1) fit".into()),
                    Fit::NotFitted("the request counts' autocovariance gave no AR(1) fit".into()),
                    acf,
                ),
            }
        }
        _ => (
            Fit::NotFitted("no request rate".into()),
            Fit::NotFitted("no request rate".into()),
            None,
        ),
    };

    // Errors: ratio of sums.
    let error_rate = {
        let have = obs.pods.iter().any(|p| !p.errors.is_empty());
        if !have {
            Fit::NotFitted(format!("no error series ({})", src.errors))
        } else {
            let stats = block_stats(
                &blocks,
                |k, s: &mut [f64]| {
                    for p in &obs.pods {
                        let (r, e) = (at(&p.requests, k), at(&p.errors, k));
                        if r.is_finite() {
                            s[0] += if e.is_finite() { e } else { 0.0 };
                            s[1] += r;
                        }
                    }
                },
                2,
            );
            let est = jackknife(&stats, |s| (s[1] > 0.0).then(|| [s[0] / s[1]]));
            // A ratio of counts is at least as uncertain as its binomial:
            // the jackknife's few blocks (5 for a few minutes of data) can
            // put its se far below that by chance.
            let requests = sum_blocks(&stats)[1];
            let est = est.map(|[e]| Estimate {
                se: e.se.max((e.value * (1.0 - e.value) / requests).sqrt()),
                ..e
            });
            Fit::from(
                est,
                format!(
                    "{} / {}, summed over pods and time",
                    src.errors, src.requests
                ),
                "no requests",
            )
        }
    };

    // The pooled histogram's log-sd, for the latency's sampling noise.
    let pooled_sigma = obs
        .histogram
        .as_ref()
        .and_then(|h| lognormal_fit(&h.bounds, &h.pooled()))
        .map(|(_, s)| s);

    // Per-pod log mean latency.
    let lat: Vec<Vec<f64>> = pods
        .iter()
        .map(|p| {
            (0..steps)
                .map(|k| {
                    let (s, c) = (at(&p.latency_sum, k), at(&p.latency_count, k));
                    if s.is_finite() && c >= 1.0 && s > 0.0 {
                        (s / c).ln()
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        })
        .collect();
    let lat_pods: Vec<usize> = (0..pods.len())
        .filter(|&i| valid_count(&lat[i]) >= MIN_STEPS.min(steps))
        .collect();
    // A pod's level: ln of its whole-window mean latency (a ratio of sums:
    // the mean of per-step logs would be biased by -var/2 per step, more
    // for a pod with fewer requests per step).
    let pod_means: Vec<f64> = lat_pods
        .iter()
        .map(|&i| {
            let p = pods[i];
            let (mut s, mut c) = (0.0, 0.0);
            for (k, v) in lat[i].iter().enumerate() {
                if v.is_finite() {
                    s += p.latency_sum[k];
                    c += p.latency_count[k];
                }
            }
            (s / c).ln()
        })
        .collect();
    // Residuals: own mean removed, then the pods' common move.
    let mut resid: Vec<Vec<f64>> = lat_pods
        .iter()
        .map(|&i| {
            let m = mean_finite(&lat[i]);
            lat[i].iter().map(|v| v - m).collect()
        })
        .collect();
    let common: Vec<f64> = (0..steps)
        .map(|k| {
            let v: Vec<f64> = resid
                .iter()
                .map(|r| r[k])
                .filter(|v| v.is_finite())
                .collect();
            if v.len() == resid.len() && !v.is_empty() {
                v.iter().sum::<f64>() / v.len() as f64
            } else {
                f64::NAN
            }
        })
        .collect();
    for r in &mut resid {
        for (v, c) in r.iter_mut().zip(&common) {
            *v = if c.is_finite() { *v - c } else { f64::NAN };
        }
        let m = mean_finite(r);
        for v in r.iter_mut() {
            *v -= m;
        }
    }
    let n_lat = lat_pods.len();
    let (pod_drift_sd, pod_drift_rho, drift_acf, drift_white) = if n_lat < 2 {
        let why = format!(
            "needs the latency sum and count of at least 2 pods ({} has {n_lat})",
            src.latency
        );
        (Fit::NotFitted(why.clone()), Fit::NotFitted(why), None, None)
    } else {
        let refs: Vec<&[f64]> = resid.iter().map(Vec::as_slice).collect();
        let stats = acov_stats(&blocks, &refs);
        let shrink = 1.0 - 1.0 / n_lat as f64;
        // The sampling noise of a step's ln(sum / count) is known from
        // the per-request spread: (e^(s^2) - 1) / count, s the pooled
        // histogram's log-sd (a little above a pod's own). Without this
        // floor a white series fits as a large A at a tiny rho.
        let sampling = pooled_sigma.map_or(0.0, |s| {
            let inv: Vec<f64> = lat_pods
                .iter()
                .flat_map(|&i| {
                    lat[i]
                        .iter()
                        .zip(&pods[i].latency_count)
                        .filter(|(v, _)| v.is_finite())
                        .map(|(_, c)| 1.0 / c)
                })
                .collect();
            (s * s).exp_m1() * inv.iter().sum::<f64>() / inv.len().max(1) as f64
        }) * shrink;
        let fit = jackknife(&stats, |s| {
            let (a, rho) = ar1_from_acov(&acov_of(s), sampling)?;
            Some([(a / shrink).sqrt(), rho])
        });
        let all = sum_blocks(&stats);
        let acov = acov_of(&all);
        let fit = fit.map(|[sd, rho]| [bartlett_floor(sd, acov[0], all[MAX_LAG + 1], shrink), rho]);
        let white = ar1_from_acov(&acov, sampling).map(|(a, _)| (acov[0] - a) / shrink);
        let source = format!(
            "AR(1) least squares on the autocovariance (lags 1-{MAX_LAG}) of each pod's ln({}) minus its own mean and the pods' common move, {n_lat} pods",
            src.latency
        );
        match fit {
            Some([sd, rho]) => (
                Fit::from(Some(sd), source.clone(), ""),
                Fit::from(Some(rho), source, ""),
                acf_pair(&acov, sampling),
                white,
            ),
            None => (
                Fit::NotFitted("no AR(1) fit of the per-pod latency".into()),
                Fit::NotFitted("no AR(1) fit of the per-pod latency".into()),
                acf_pair(&acov, sampling),
                white,
            ),
        }
    };

    // Pod-to-pod variation: spread of the pods' mean log latency, less what
    // drift and sampling noise put into a time mean.
    let pod_variation = if n_lat < 3 {
        Fit::NotFitted(format!(
            "needs at least 3 pods with latency data ({n_lat} found)"
        ))
    } else {
        let grand = pod_means.iter().sum::<f64>() / n_lat as f64;
        let between =
            pod_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (n_lat - 1) as f64;
        let (d_sd, d_rho) = (
            pod_drift_sd.value().unwrap_or(0.0),
            pod_drift_rho.value().unwrap_or(0.0),
        );
        let t = lat_pods
            .iter()
            .map(|&i| valid_count(&lat[i]) as f64)
            .sum::<f64>()
            / n_lat as f64;
        let noise_of_mean = (d_sd * d_sd * (1.0 + d_rho) / (1.0 - d_rho).max(1e-3)
            + drift_white.unwrap_or(0.0).max(0.0))
            / t.max(1.0);
        let pv2 = (between - noise_of_mean).max(0.0);
        let pv = pv2.sqrt();
        let se = (between / (2.0 * (n_lat - 1) as f64)).sqrt();
        Fit::Fitted {
            value: pv,
            se,
            source: format!(
                "sd over {n_lat} pods of each pod's mean ln({}), less the part drift and sampling put in a time mean; SE sd/sqrt(2(n-1))",
                src.latency
            ),
        }
    };
    let common_sd = {
        let c = centre(&common);
        let v: Vec<f64> = c.iter().copied().filter(|v| v.is_finite()).collect();
        (v.len() > 2).then(|| (v.iter().map(|x| x * x).sum::<f64>() / (v.len() - 1) as f64).sqrt())
    };
    if let (Some(c), Some(l)) = (common_sd, load_noise_sd.value()) {
        notes.push(format!(
            "latency moving together on all pods: sd {c:.4} per step in ln(mean latency) (sampling included); the simulator's load_noise moves it by 0.5 x {l:.4} = {:.4} and has no other shared latency noise",
            0.5 * l
        ));
    }

    // Latency distribution.
    let (latency_median_ms, latency_sigma, latency_max_cdf_error, histogram_cdf) = match &obs
        .histogram
    {
        None => {
            let why = format!("no latency histogram ({})", src.histogram);
            (Fit::NotFitted(why.clone()), Fit::NotFitted(why), None, None)
        }
        Some(h) => {
            let pooled = h.pooled();
            match lognormal_fit(&h.bounds, &pooled) {
                None => {
                    let why = "the latency histogram has too few requests spread over too few buckets for a log-normal fit".to_string();
                    (Fit::NotFitted(why.clone()), Fit::NotFitted(why), None, None)
                }
                Some((mu, sigma)) => {
                    // The pooled histogram mixes the pods seen, each
                    // shifted in log by its offset, drift and half the
                    // load noise: its variance in log is sigma^2 plus
                    // the variances of those shifts. Removed with their
                    // own uncertainty (each a variance and its variance).
                    let pods_seen = realized_spread(&lat_pods, &pods, &pod_means, &lat, |t| {
                        let (d_sd, d_rho) = (
                            pod_drift_sd.value().unwrap_or(0.0),
                            pod_drift_rho.value().unwrap_or(0.0),
                        );
                        (d_sd * d_sd * (1.0 + d_rho) / (1.0 - d_rho).max(1e-3)
                            + drift_white.unwrap_or(0.0).max(0.0))
                            / t.max(1.0)
                    });
                    let shifts = [
                        pods_seen,
                        square(&pod_drift_sd, 1.0),
                        square(&load_noise_sd, 0.25),
                    ];
                    let shift_var: f64 = shifts.iter().map(|e| e.value).sum();
                    let shift_var_var: f64 = shifts.iter().map(|e| e.se * e.se).sum();
                    let within = |s: f64| (s * s - shift_var).max(0.0).sqrt();
                    // jackknife over the histogram's time blocks
                    let b = h.blocks.len();
                    let mut loo = Vec::new();
                    if b >= 5 {
                        for j in 0..b {
                            let mut counts = pooled.clone();
                            for (c, x) in counts.iter_mut().zip(&h.blocks[j]) {
                                *c -= x;
                            }
                            if let Some(f) = lognormal_fit(&h.bounds, &counts) {
                                loo.push([f.0, f.1]);
                            }
                        }
                    }
                    let se = jk_se(&loo);
                    let total: f64 = pooled.iter().sum();
                    // multinomial floor (a handful of blocks can understate it)
                    let floor = [sigma / total.sqrt(), sigma / (2.0 * total).sqrt()];
                    let se = se.map(|s| [s[0].max(floor[0]), s[1].max(floor[1])]);
                    let (emp, fit) = cdfs(&h.bounds, &pooled, mu, sigma);
                    let err = emp
                        .iter()
                        .zip(&fit)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    if err > 0.02 {
                        notes.push(format!(
                                "the latency histogram is not quite log-normal: the fitted CDF misses a bucket bound by {:.1} percentage points (see the report's histogram chart)",
                                err * 100.0
                            ));
                    }
                    let source = format!(
                        "maximum-likelihood log-normal on {} ({:.0} requests in {} buckets), largest bucket-CDF error {:.4}",
                        src.histogram,
                        total,
                        h.bounds.len() + 1,
                        err
                    );
                    // The pooled median is the pods' and the load's
                    // median shifted by the traffic-weighted mean shift:
                    // requests come more when the load is up (e^L
                    // weights: +0.5 sd^2 in log), and the pods
                    // seen are a sample (their mean offset is unknown
                    // to pv / sqrt(n) in log: part of the error).
                    let l_sd = load_noise_sd.value().unwrap_or(0.0);
                    let mu_c = mu - 0.5 * l_sd * l_sd;
                    let pv = pod_variation.value().unwrap_or(0.0);
                    let pod_se = if n_lat > 0 {
                        pv / (n_lat as f64).sqrt()
                    } else {
                        0.0
                    };
                    let median = Estimate {
                        value: mu_c.exp() * 1000.0,
                        se: se.map_or(f64::INFINITY, |s| {
                            mu_c.exp() * 1000.0 * (s[0] * s[0] + pod_se * pod_se).sqrt()
                        }),
                    };
                    // delta method: d within = (sigma d sigma - d shift_var / 2) / within
                    let w = within(sigma);
                    let sig = Estimate {
                        value: w,
                        se: se.map_or(f64::INFINITY, |s| {
                            ((sigma * s[1]).powi(2) + shift_var_var / 4.0).sqrt() / w.max(1e-9)
                        }),
                    };
                    (
                        Fit::from(Some(median), source.clone(), ""),
                        Fit::from(
                            Some(sig),
                            format!(
                                "{source}; pooled sigma {sigma:.4} less the spread of the pods seen ({:.5}), drift ({:.5}) and half the load noise ({:.5}) in variance",
                                shifts[0].value, shifts[1].value, shifts[2].value
                            ),
                            "",
                        ),
                        Some(err),
                        Some((h.bounds.clone(), emp, fit)),
                    )
                }
            }
        }
    };

    // CPU: per pod and step, cores = idle + rate * cpu per request.
    let have_cpu = pods.iter().any(|p| !p.cpu_seconds.is_empty());
    let (cpu_ms_per_request, cpu_idle_cores) = if !have_cpu {
        let why = format!("no CPU series ({})", src.cpu);
        (Fit::NotFitted(why.clone()), Fit::NotFitted(why))
    } else {
        let stats = block_stats(
            &blocks,
            |k, s: &mut [f64]| {
                for p in &pods {
                    let (x, y) = (at(&p.requests, k) / step, at(&p.cpu_seconds, k) / step);
                    if x.is_finite() && y.is_finite() {
                        s[0] += 1.0;
                        s[1] += x;
                        s[2] += y;
                        s[3] += x * x;
                        s[4] += x * y;
                    }
                }
            },
            5,
        );
        let est = jackknife(&stats, |s| {
            let n = s[0];
            let sxx = s[3] - s[1] * s[1] / n;
            if n < 3.0 || sxx <= 0.0 {
                return None;
            }
            let b = (s[4] - s[1] * s[2] / n) / sxx;
            let a = (s[2] - b * s[1]) / n;
            Some([b * 1000.0, a])
        });
        let source = format!(
            "least squares of each pod's CPU cores ({}) on its requests per second, pooled over pods and steps",
            src.cpu
        );
        match est {
            Some([b, a]) => (
                Fit::from(Some(b), format!("slope of the {source}"), ""),
                Fit::from(Some(a), format!("intercept of the {source}"), ""),
            ),
            None => {
                let why = "the pods' request rates did not vary: CPU per request cannot be told from idle CPU".to_string();
                (Fit::NotFitted(why.clone()), Fit::NotFitted(why))
            }
        }
    };

    // Memory: each pod's median, then their mean.
    let mems: Vec<f64> = pods
        .iter()
        .filter_map(|p| {
            let mut v: Vec<f64> = p
                .memory_bytes
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(v[v.len() / 2] / 1_048_576.0)
        })
        .collect();
    let memory_mib = if mems.is_empty() {
        Fit::NotFitted(format!("no memory series ({})", src.memory))
    } else {
        let n = mems.len() as f64;
        let m = mems.iter().sum::<f64>() / n;
        let sd = if mems.len() > 1 {
            (mems.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            f64::INFINITY
        };
        if mems.len() > 1 && m > 0.0 {
            notes.push(format!(
                "memory differs between pods by {:.1}% (sd of the pods' medians); the simulator has no per-pod memory variation",
                100.0 * sd / m
            ));
        }
        Fit::Fitted {
            value: m,
            se: sd / n.sqrt(),
            source: format!(
                "mean over {} pods of each pod's median {}",
                mems.len(),
                src.memory
            ),
        }
    };

    let grand = if pod_means.is_empty() {
        0.0
    } else {
        pod_means.iter().sum::<f64>() / pod_means.len() as f64
    };
    let pod_summaries = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let li = lat_pods.iter().position(|&j| j == i);
            let off = li.map_or(f64::NAN, |j| pod_means[j] - grand);
            let t = li.map_or(0.0, |j| valid_count(&lat[lat_pods[j]]) as f64);
            let d_sd = pod_drift_sd.value().unwrap_or(0.0);
            let d_rho = pod_drift_rho.value().unwrap_or(0.0);
            let var = (d_sd * d_sd * (1.0 + d_rho) / (1.0 - d_rho).max(1e-3)
                + drift_white.unwrap_or(0.0).max(0.0))
                / t.max(1.0);
            PodSummary {
                name: p.name.clone(),
                rate: mean_finite(&p.requests) / step,
                latency_offset: off,
                latency_offset_se: var.sqrt(),
                cpu_cores: mean_finite(&p.cpu_seconds) / step,
                memory_mib: mean_finite(&p.memory_bytes) / 1_048_576.0,
            }
        })
        .collect();

    Calibration {
        step_s: step,
        steps,
        replicas,
        request_rate,
        diurnal_swing,
        start_hour,
        latency_median_ms,
        latency_sigma,
        latency_max_cdf_error,
        error_rate,
        cpu_ms_per_request,
        cpu_idle_cores,
        memory_mib,
        pod_variation,
        load_noise_sd,
        load_noise_rho,
        pod_drift_sd,
        pod_drift_rho,
        notes,
        histogram_cdf,
        load_acf,
        drift_acf,
        pods: pod_summaries,
    }
}

/// An AR(1) sd near 0 is known no better than the autocovariances it is
/// fitted on: for white noise each lag's has sd `acov0 / sqrt(n)`
/// (Bartlett), so the AR(1) variance `A` is uncertain by about that much
/// (divided by `scale`, the residuals' shrink), and the sd by
/// `sqrt(sd^2 + that) - sd`. The jackknife alone can claim far less there
/// (every block's fit clamped to 0 says 0 +- 0; in the round trip under
/// load it said 0.022 +- 0.008 for Poisson traffic). Far from 0 the floor
/// is below the jackknife's error and changes nothing.
fn bartlett_floor(sd: Estimate, acov0: f64, n: f64, scale: f64) -> Estimate {
    if !(acov0 > 0.0 && n > 0.0 && sd.value.is_finite()) {
        return sd;
    }
    let se_a = acov0 / n.sqrt() / scale;
    let floor = (sd.value * sd.value + se_a).sqrt() - sd.value;
    Estimate {
        value: sd.value,
        se: sd.se.max(floor),
    }
}

/// `scale * e^2` and its standard error, for `e` normal with its
/// standard error: `Var(e^2) = 4 e^2 se^2 + 2 se^4` (the second term keeps
/// an estimate near zero honest: its square is not known to be zero).
fn square(f: &Fit, scale: f64) -> Estimate {
    match f {
        Fit::Fitted { value, se, .. } => Estimate {
            value: scale * value * value,
            se: scale * (4.0 * value * value * se * se + 2.0 * se.powi(4)).sqrt(),
        },
        Fit::NotFitted(_) => Estimate {
            value: 0.0,
            se: 0.0,
        },
    }
}

/// The traffic-weighted variance of the pods' log mean latency about their
/// weighted mean: how far apart the pods in the pooled histogram are (the
/// pods actually seen, not the population `pod_variation` describes: with
/// 4 pods, the `n - 1` variance of the population overstates it by a
/// third). Corrected for the noise each pod's mean carries (`noise(steps)`,
/// its variance): `E = spread + sum w (1 - w) v`. Its standard error by
/// the delta method over the pods' means.
fn realized_spread(
    lat_pods: &[usize],
    pods: &[&PodSeries],
    pod_means: &[f64],
    lat: &[Vec<f64>],
    noise: impl Fn(f64) -> f64,
) -> Estimate {
    let counts: Vec<f64> = lat_pods
        .iter()
        .map(|&i| {
            let p = pods[i];
            lat[i]
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, _)| p.latency_count[k])
                .sum::<f64>()
        })
        .collect();
    let total: f64 = counts.iter().sum();
    if lat_pods.len() < 2 || total <= 0.0 {
        return Estimate {
            value: 0.0,
            se: 0.0,
        };
    }
    let w: Vec<f64> = counts.iter().map(|c| c / total).collect();
    let v: Vec<f64> = lat_pods
        .iter()
        .map(|&i| noise(valid_count(&lat[i]) as f64))
        .collect();
    let mean: f64 = w.iter().zip(pod_means).map(|(w, m)| w * m).sum();
    let raw: f64 = w
        .iter()
        .zip(pod_means)
        .map(|(w, m)| w * (m - mean).powi(2))
        .sum();
    let bias: f64 = w.iter().zip(&v).map(|(w, v)| w * (1.0 - w) * v).sum();
    let var: f64 = w
        .iter()
        .zip(pod_means)
        .zip(&v)
        .map(|((w, m), v)| (2.0 * w * (m - mean)).powi(2) * v + 2.0 * (w * v).powi(2))
        .sum();
    Estimate {
        value: (raw - bias).max(0.0),
        se: var.sqrt(),
    }
}

fn at(v: &[f64], k: usize) -> f64 {
    v.get(k).copied().unwrap_or(f64::NAN)
}

fn valid_count(v: &[f64]) -> usize {
    v.iter().filter(|x| x.is_finite()).count()
}

fn mean_finite(v: &[f64]) -> f64 {
    let (s, n) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn centre(v: &[f64]) -> Vec<f64> {
    let m = mean_finite(v);
    v.iter().map(|x| x - m).collect()
}

/// Block index of each step: `BLOCKS` contiguous blocks (fewer for short
/// series, at least 50 steps each).
fn block_of(steps: usize) -> Vec<usize> {
    let b = (steps / 50).clamp(1, BLOCKS);
    (0..steps).map(|k| k * b / steps.max(1)).collect()
}

/// Per block, `width` sums filled by `add(step, sums)`.
fn block_stats(
    blocks: &[usize],
    mut add: impl FnMut(usize, &mut [f64]),
    width: usize,
) -> Vec<Vec<f64>> {
    let n = blocks.last().map_or(0, |b| b + 1);
    let mut out = vec![vec![0.0; width]; n];
    for (k, &b) in blocks.iter().enumerate() {
        add(k, &mut out[b]);
    }
    out
}

fn sum_blocks(stats: &[Vec<f64>]) -> Vec<f64> {
    let mut total = vec![0.0; stats.first().map_or(0, Vec::len)];
    for s in stats {
        for (t, x) in total.iter_mut().zip(s) {
            *t += x;
        }
    }
    total
}

/// Delete-a-block jackknife: `f` on every block's sums, and on all but one
/// block at a time for the standard error. `None` if `f` fails on all the
/// data; with fewer than 5 blocks the errors are infinite.
pub fn jackknife<const N: usize>(
    stats: &[Vec<f64>],
    f: impl Fn(&[f64]) -> Option<[f64; N]>,
) -> Option<[Estimate; N]> {
    let total = sum_blocks(stats);
    let full = f(&total)?;
    let mut loo = Vec::with_capacity(stats.len());
    if stats.len() >= 5 {
        for s in stats {
            let rest: Vec<f64> = total.iter().zip(s).map(|(t, x)| t - x).collect();
            if let Some(v) = f(&rest) {
                loo.push(v);
            }
        }
    }
    let se = jk_se(&loo);
    Some(std::array::from_fn(|i| Estimate {
        value: full[i],
        se: se.map_or(f64::INFINITY, |s| s[i]),
    }))
}

fn jk_se<const N: usize>(loo: &[[f64; N]]) -> Option<[f64; N]> {
    let b = loo.len();
    if b < 5 {
        return None;
    }
    Some(std::array::from_fn(|i| {
        let m = loo.iter().map(|v| v[i]).sum::<f64>() / b as f64;
        let ss = loo.iter().map(|v| (v[i] - m).powi(2)).sum::<f64>();
        ((b - 1) as f64 / b as f64 * ss).sqrt()
    }))
}

/// Per block: sums of lagged products (lags 0..=MAX_LAG) and pair counts,
/// over several centred series (NaN skipped). A pair belongs to the block
/// of its later point.
fn acov_stats(blocks: &[usize], series: &[&[f64]]) -> Vec<Vec<f64>> {
    block_stats(
        blocks,
        |k, s: &mut [f64]| {
            for x in series {
                let xk = at(x, k);
                if !xk.is_finite() {
                    continue;
                }
                for lag in 0..=MAX_LAG.min(k) {
                    let xl = x[k - lag];
                    if xl.is_finite() {
                        s[lag] += xk * xl;
                        s[MAX_LAG + 1 + lag] += 1.0;
                    }
                }
            }
        },
        2 * (MAX_LAG + 1),
    )
}

fn acov_of(s: &[f64]) -> Vec<f64> {
    (0..=MAX_LAG)
        .map(|l| {
            let n = s[MAX_LAG + 1 + l];
            if n > 0.0 { s[l] / n } else { f64::NAN }
        })
        .collect()
}

/// Least squares of `acov[k] = A rho^k` over lags 1..: `(A, rho)`,
/// 0 <= A <= `acov[0] - white`, rho on a grid of [0, 0.999]. `white` is the
/// variance of the series' white noise when it is known (Poisson or
/// sampling noise; 0 if not).
pub fn ar1_from_acov(acov: &[f64], white: f64) -> Option<(f64, f64)> {
    let lags: Vec<(usize, f64)> = acov
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, g)| g.is_finite())
        .map(|(k, g)| (k, *g))
        .collect();
    if lags.len() < 2 {
        return None;
    }
    let mut best: Option<(f64, f64, f64)> = None;
    for i in 0..=999 {
        let rho = i as f64 / 1000.0;
        let (mut num, mut den) = (0.0, 0.0);
        for &(k, g) in &lags {
            let p = rho.powi(k as i32);
            num += g * p;
            den += p * p;
        }
        // The AR(1) part cannot hold more variance than the series
        // (lag 0) less its known white noise: without this cap a noisy
        // lag-1 covariance and a tiny rho fit as a huge A.
        let cap = acov
            .first()
            .copied()
            .filter(|g| g.is_finite() && *g > 0.0)
            .map_or(f64::INFINITY, |g| (g - white.max(0.0)).max(0.0));
        let a = if den > 0.0 {
            (num / den).clamp(0.0, cap)
        } else {
            0.0
        };
        let sse: f64 = lags
            .iter()
            .map(|&(k, g)| (g - a * rho.powi(k as i32)).powi(2))
            .sum();
        if best.is_none_or(|(s, _, _)| sse < s) {
            best = Some((sse, a, rho));
        }
    }
    best.map(|(_, a, rho)| if a > 0.0 { (a, rho) } else { (0.0, 0.0) })
}

fn acf_pair(acov: &[f64], white: f64) -> Option<Acf> {
    let g0 = *acov.first()?;
    if g0.is_nan() || g0 <= 0.0 {
        return None;
    }
    let (a, rho) = ar1_from_acov(acov, white).unwrap_or((0.0, 0.0));
    Some(Acf {
        empirical: acov.iter().map(|g| g / g0).collect(),
        fitted: (0..acov.len())
            .map(|k| {
                if k == 0 {
                    1.0
                } else {
                    a * rho.powi(k as i32) / g0
                }
            })
            .collect(),
    })
}

fn solve3(m: [[f64; 3]; 3], y: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    if d.abs() < 1e-12 * m[0][0].abs().max(1.0).powi(3) {
        return None;
    }
    Some(std::array::from_fn(|c| {
        let mut mc = m;
        for r in 0..3 {
            mc[r][c] = y[r];
        }
        det(mc) / d
    }))
}

/// Empirical and fitted CDF at the bucket bounds.
fn cdfs(bounds: &[f64], counts: &[f64], mu: f64, sigma: f64) -> (Vec<f64>, Vec<f64>) {
    let total: f64 = counts.iter().sum();
    let mut cum = 0.0;
    let emp = bounds
        .iter()
        .zip(counts)
        .map(|(_, c)| {
            cum += c;
            cum / total
        })
        .collect();
    let fit = bounds
        .iter()
        .map(|b| judge::stats::pnorm((b.ln() - mu) / sigma))
        .collect();
    (emp, fit)
}

/// Maximum-likelihood log-normal `(mu, sigma)` (of ln seconds) for
/// per-bucket counts (`bounds.len() + 1` of them, +Inf last): the counts
/// are interval censored, so the likelihood is multinomial in the
/// buckets' masses. Nelder-Mead on `(mu, ln sigma)`.
pub fn lognormal_fit(bounds: &[f64], counts: &[f64]) -> Option<(f64, f64)> {
    if counts.len() != bounds.len() + 1 || bounds.iter().any(|b| b.is_nan() || *b <= 0.0) {
        return None;
    }
    let total: f64 = counts.iter().sum();
    let nonempty = counts.iter().filter(|c| **c > 0.0).count();
    if total.is_nan() || total < 20.0 || nonempty < 2 {
        return None;
    }
    let ln_b: Vec<f64> = bounds.iter().map(|b| b.ln()).collect();
    let nll = |p: [f64; 2]| -> f64 {
        let (mu, sigma) = (p[0], p[1].exp());
        let mut prev = 0.0;
        let mut out = 0.0;
        for (j, c) in counts.iter().enumerate() {
            let f = if j < ln_b.len() {
                judge::stats::pnorm((ln_b[j] - mu) / sigma)
            } else {
                1.0
            };
            let mass = (f - prev).max(1e-300);
            if *c > 0.0 {
                out -= c * mass.ln();
            }
            prev = f;
        }
        out
    };
    // start: the interpolated median, sigma from the quartiles
    let quantile = |q: f64| -> f64 {
        let mut cum = 0.0;
        for (j, c) in counts.iter().enumerate() {
            if cum + c >= q * total && *c > 0.0 {
                let lo = if j == 0 { ln_b[0] - 1.0 } else { ln_b[j - 1] };
                let hi = if j < ln_b.len() {
                    ln_b[j]
                } else {
                    ln_b[j - 1] + 1.0
                };
                return lo + (hi - lo) * (q * total - cum) / c;
            }
            cum += c;
        }
        ln_b[ln_b.len() - 1]
    };
    let mu0 = quantile(0.5);
    let s0 = ((quantile(0.75) - quantile(0.25)) / 1.349).max(0.05);
    let best = nelder_mead(nll, [mu0, s0.ln()], [0.2, 0.3]);
    let (mu, sigma) = (best[0], best[1].exp());
    (mu.is_finite() && sigma.is_finite() && sigma > 0.0).then_some((mu, sigma))
}

fn nelder_mead(f: impl Fn([f64; 2]) -> f64, start: [f64; 2], scale: [f64; 2]) -> [f64; 2] {
    let mut pts = [
        start,
        [start[0] + scale[0], start[1]],
        [start[0], start[1] + scale[1]],
    ];
    let mut vals = pts.map(&f);
    for _ in 0..2000 {
        // order
        let mut idx = [0, 1, 2];
        idx.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = idx.map(|i| pts[i]);
        vals = idx.map(|i| vals[i]);
        let spread = (vals[2] - vals[0]).abs();
        let size = (pts[2][0] - pts[0][0]).abs()
            + (pts[2][1] - pts[0][1]).abs()
            + (pts[1][0] - pts[0][0]).abs()
            + (pts[1][1] - pts[0][1]).abs();
        if spread < 1e-10 * (1.0 + vals[0].abs()) && size < 1e-9 {
            break;
        }
        let c = [(pts[0][0] + pts[1][0]) / 2.0, (pts[0][1] + pts[1][1]) / 2.0];
        let along = |t: f64| [c[0] + t * (pts[2][0] - c[0]), c[1] + t * (pts[2][1] - c[1])];
        let r = along(-1.0);
        let fr = f(r);
        if fr < vals[0] {
            let e = along(-2.0);
            let fe = f(e);
            if fe < fr {
                pts[2] = e;
                vals[2] = fe;
            } else {
                pts[2] = r;
                vals[2] = fr;
            }
        } else if fr < vals[1] {
            pts[2] = r;
            vals[2] = fr;
        } else {
            let k = if fr < vals[2] {
                along(-0.5)
            } else {
                along(0.5)
            };
            let fk = f(k);
            if fk < vals[2].min(fr) {
                pts[2] = k;
                vals[2] = fk;
            } else {
                for i in 1..3 {
                    pts[i] = [(pts[0][0] + pts[i][0]) / 2.0, (pts[0][1] + pts[i][1]) / 2.0];
                    vals[i] = f(pts[i]);
                }
            }
        }
    }
    let mut best = 0;
    for i in 1..3 {
        if vals[i] < vals[best] {
            best = i;
        }
    }
    pts[best]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Binomial, Distribution, Poisson, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    const BOUNDS: [f64; 16] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0,
    ];

    /// The simulator's service model, per pod (what sim/src/series.rs
    /// draws for a track, with every pod its own track).
    struct Truth {
        rate: f64,
        swing: f64,
        median_s: f64,
        sigma: f64,
        error_rate: f64,
        cpu_s_per_request: f64,
        idle: f64,
        memory: f64,
        offsets: Vec<f64>,
        load: (f64, f64),
        drift: (f64, f64),
    }

    fn gauss(rng: &mut Xoshiro256PlusPlus) -> f64 {
        StandardNormal.sample(rng)
    }

    fn ar1(prev: f64, (sd, rho): (f64, f64), rng: &mut Xoshiro256PlusPlus) -> f64 {
        rho * prev + sd * (1.0 - rho * rho).sqrt() * gauss(rng)
    }

    fn simulate(t: &Truth, steps: usize, step: f64, blocks: usize, seed: u64) -> Observations {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let n = t.offsets.len();
        let start = 1_800_000_000.0;
        let mut load = t.load.0 * gauss(&mut rng);
        let mut drift: Vec<f64> = (0..n).map(|_| t.drift.0 * gauss(&mut rng)).collect();
        let mut pods: Vec<PodSeries> = (0..n)
            .map(|i| PodSeries {
                name: format!("pod-{i}"),
                ..PodSeries::default()
            })
            .collect();
        let mut hist = vec![vec![0.0; BOUNDS.len() + 1]; blocks];
        for k in 0..steps {
            load = ar1(load, t.load, &mut rng);
            let hour = ((start + k as f64 * step) / 3600.0) % 24.0;
            let diurnal = 1.0 + t.swing * (std::f64::consts::TAU * hour / 24.0).sin();
            for (i, p) in pods.iter_mut().enumerate() {
                drift[i] = ar1(drift[i], t.drift, &mut rng);
                let mean = t.rate / n as f64 * diurnal * load.exp() * step;
                let requests = Poisson::new(mean).unwrap().sample(&mut rng) as u64;
                let errors = Binomial::new(requests, t.error_rate)
                    .unwrap()
                    .sample(&mut rng);
                let median = t.median_s * (0.5 * load + drift[i] + t.offsets[i]).exp();
                let mut sum = 0.0;
                for _ in 0..requests {
                    let x = median * (t.sigma * gauss(&mut rng)).exp();
                    sum += x;
                    hist[k * blocks / steps][BOUNDS.partition_point(|&b| b < x)] += 1.0;
                }
                let cores = (t.idle + requests as f64 * t.cpu_s_per_request / step)
                    * (1.0 + 0.02 * gauss(&mut rng));
                p.requests.push(requests as f64);
                p.errors.push(errors as f64);
                p.latency_sum.push(sum);
                p.latency_count.push(requests as f64);
                p.cpu_seconds.push(cores * step);
                p.memory_bytes
                    .push(t.memory * 1_048_576.0 * (1.0 + 0.003 * gauss(&mut rng)));
            }
        }
        Observations {
            start_unix: start,
            step_s: step,
            pods,
            histogram: Some(HistogramBlocks {
                bounds: BOUNDS.to_vec(),
                blocks: hist,
            }),
            sources: Sources::default(),
        }
    }

    fn sample_sd(v: &[f64]) -> f64 {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    }

    #[track_caller]
    fn within(fit: &Fit, truth: f64, what: &str) {
        let Fit::Fitted { value, se, .. } = fit else {
            panic!("{what}: not fitted: {fit:?}");
        };
        assert!(se.is_finite() && *se > 0.0, "{what}: se {se}");
        assert!(
            (value - truth).abs() <= 3.0 * se,
            "{what}: {value} +- {se}, truth {truth} ({:.1} se away)",
            (value - truth) / se
        );
    }

    #[test]
    fn the_error_rates_se_is_never_below_its_binomial() {
        let truth = Truth {
            rate: 150.0,
            swing: 0.0,
            median_s: 0.05,
            sigma: 0.5,
            error_rate: 0.02,
            cpu_s_per_request: 0.002,
            idle: 0.03,
            memory: 250.0,
            offsets: vec![0.0; 4],
            load: (0.0, 0.0),
            drift: (0.0, 0.0),
        };
        // a few minutes at 1 s (5 jackknife blocks, as in the real round
        // trip), with exactly 2% of every step's requests failing: the
        // blocks agree, so the jackknife alone would say 0
        let mut obs = simulate(&truth, 260, 1.0, 5, 3);
        for p in &mut obs.pods {
            p.errors = p.requests.iter().map(|r| r * 0.02).collect();
        }
        let c = calibrate(&obs);
        let Fit::Fitted { value, se, .. } = &c.error_rate else {
            panic!("{:?}", c.error_rate)
        };
        let requests: f64 = obs.pods.iter().flat_map(|p| &p.requests).sum();
        let binomial = (value * (1.0 - value) / requests).sqrt();
        assert!((value - 0.02).abs() < 1e-12, "{value}");
        assert!(
            (se - binomial).abs() <= 1e-12 * binomial,
            "{se} vs {binomial}"
        );
    }

    #[test]
    fn every_parameter_is_recovered_within_three_standard_errors() {
        let truth = Truth {
            rate: 120.0,
            swing: 0.3,
            median_s: 0.05,
            sigma: 0.5,
            error_rate: 0.01,
            cpu_s_per_request: 0.005,
            idle: 0.02,
            memory: 300.0,
            offsets: vec![-0.06, 0.05, 0.01, -0.02, 0.08, -0.04],
            load: (0.05, 0.6),
            drift: (0.03, 0.9),
        };
        // 26 h at 10 s
        let obs = simulate(&truth, 9360, 10.0, 20, 7);
        let c = calibrate(&obs);
        eprintln!("{}", crate::calibrate::write::summary(&c));
        assert_eq!(c.replicas.value(), Some(6.0));
        within(&c.request_rate, truth.rate, "request_rate");
        within(&c.diurnal_swing, truth.swing, "diurnal_swing");
        // sin(2 pi hour / 24) of UTC: the simulator's hour is the clock's
        within(&c.start_hour, 14.0, "start_hour");
        within(
            &c.latency_median_ms,
            truth.median_s * 1000.0,
            "latency_median_ms",
        );
        within(&c.latency_sigma, truth.sigma, "latency_sigma");
        within(&c.error_rate, truth.error_rate, "error_rate");
        within(
            &c.cpu_ms_per_request,
            truth.cpu_s_per_request * 1000.0,
            "cpu_ms_per_request",
        );
        within(&c.cpu_idle_cores, truth.idle, "cpu_idle_cores");
        within(&c.memory_mib, truth.memory, "memory_mib");
        within(&c.pod_variation, sample_sd(&truth.offsets), "pod_variation");
        within(&c.load_noise_sd, truth.load.0, "load_noise.sd");
        within(&c.load_noise_rho, truth.load.1, "load_noise.rho");
        within(&c.pod_drift_sd, truth.drift.0, "pod_drift.sd");
        within(&c.pod_drift_rho, truth.drift.1, "pod_drift.rho");
        let err = c.latency_max_cdf_error.unwrap();
        assert!(err < 0.01, "a log-normal fits its own histogram: {err}");
        // the errors are informative, not huge
        assert!(c.latency_median_ms.se().unwrap() < 2.0);
        assert!(c.pod_drift_rho.se().unwrap() < 0.05);
    }

    #[test]
    fn a_short_window_fits_what_it_can_and_says_why_not_the_rest() {
        let truth = Truth {
            rate: 200.0,
            swing: 0.0,
            median_s: 0.08,
            sigma: 0.3,
            error_rate: 0.002,
            cpu_s_per_request: 0.002,
            idle: 0.05,
            memory: 120.0,
            offsets: vec![0.0, 0.0],
            load: (0.0, 0.0),
            drift: (0.02, 0.8),
        };
        // 2 h at 10 s, 2 pods
        let obs = simulate(&truth, 720, 10.0, 10, 3);
        let c = calibrate(&obs);
        eprintln!("{}", crate::calibrate::write::summary(&c));
        within(&c.request_rate, truth.rate, "request_rate");
        within(&c.latency_median_ms, 80.0, "latency_median_ms");
        within(&c.error_rate, truth.error_rate, "error_rate");
        within(&c.pod_drift_sd, truth.drift.0, "pod_drift.sd");
        let Fit::NotFitted(why) = &c.diurnal_swing else {
            panic!("{:?}", c.diurnal_swing)
        };
        assert!(why.contains("24 h"), "{why}");
        let Fit::NotFitted(why) = &c.pod_variation else {
            panic!("{:?}", c.pod_variation)
        };
        assert!(why.contains("3 pods"), "{why}");
        // Poisson arrivals only: the load noise is (near) zero
        let sd = c.load_noise_sd.value().unwrap();
        assert!(sd <= 3.0 * c.load_noise_sd.se().unwrap() + 1e-9, "{sd}");
    }

    #[test]
    fn missing_families_are_not_fitted_and_say_which() {
        let mut obs = simulate(
            &Truth {
                rate: 50.0,
                swing: 0.0,
                median_s: 0.05,
                sigma: 0.5,
                error_rate: 0.01,
                cpu_s_per_request: 0.001,
                idle: 0.0,
                memory: 50.0,
                offsets: vec![0.0; 3],
                load: (0.0, 0.0),
                drift: (0.0, 0.0),
            },
            300,
            10.0,
            5,
            1,
        );
        obs.sources.cpu = "process_cpu_seconds_total".into();
        obs.histogram = None;
        for p in &mut obs.pods {
            p.cpu_seconds.clear();
        }
        let c = calibrate(&obs);
        let Fit::NotFitted(why) = &c.cpu_ms_per_request else {
            panic!()
        };
        assert!(why.contains("process_cpu_seconds_total"), "{why}");
        assert!(matches!(c.latency_median_ms, Fit::NotFitted(_)));
        assert!(c.request_rate.value().is_some());
        // no data at all
        let c = calibrate(&Observations::default());
        assert!(matches!(c.request_rate, Fit::NotFitted(_)));
        assert!(matches!(c.replicas, Fit::NotFitted(_)));
    }

    #[test]
    fn the_histogram_fit_is_exact_on_exact_bucket_masses() {
        let (mu, sigma) = (0.05f64.ln(), 0.7);
        let mut prev = 0.0;
        let mut counts: Vec<f64> = BOUNDS
            .iter()
            .map(|b| {
                let f = judge::stats::pnorm((b.ln() - mu) / sigma);
                let c = (f - prev) * 1e6;
                prev = f;
                c
            })
            .collect();
        counts.push((1.0 - prev) * 1e6);
        let (m, s) = lognormal_fit(&BOUNDS, &counts).unwrap();
        assert!((m - mu).abs() < 1e-4, "{m} vs {mu}");
        assert!((s - sigma).abs() < 1e-4, "{s}");
        // Istio's milliseconds, converted to seconds by the caller, fit alike;
        // too little data fits nothing
        assert!(lognormal_fit(&BOUNDS, &[0.0; 17]).is_none());
        let mut one = vec![0.0; 17];
        one[5] = 1000.0;
        assert!(
            lognormal_fit(&BOUNDS, &one).is_none(),
            "one bucket: no spread"
        );
    }

    #[test]
    fn ar1_from_known_autocovariances() {
        let acov: Vec<f64> = (0..=MAX_LAG)
            .map(|k| {
                if k == 0 {
                    2.0
                } else {
                    0.5 * 0.7f64.powi(k as i32)
                }
            })
            .collect();
        let (a, rho) = ar1_from_acov(&acov, 0.0).unwrap();
        assert!(
            (a - 0.5).abs() < 1e-3 && (rho - 0.7).abs() < 1e-3,
            "{a} {rho}"
        );
        let (a, rho) = ar1_from_acov(&[1.0, -0.1, 0.0, 0.01], 0.0).unwrap();
        assert_eq!((a, rho), (0.0, 0.0));
        // white noise of known variance: a positive lag-1 wobble is not an
        // AR(1) with all of lag 0's variance at a tiny rho
        let wobble = [0.0204, 0.0004, -0.0003, 0.0001, 0.0];
        let (a, _) = ar1_from_acov(&wobble, 0.0).unwrap();
        assert!(a > 0.01, "without the floor: {a}");
        let (a, _) = ar1_from_acov(&wobble, 0.0201).unwrap();
        assert!(a <= 0.0003 + 1e-12, "{a}");
    }

    /// A week at 10 s for 20 pods (1.2M pod-steps), drawn per step rather
    /// than per request (normal approximations), then fitted: prints how
    /// long the fit takes. Run with
    /// `cargo test -p cluster --release --lib week_of_20_pods -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn week_of_20_pods() {
        let (steps, n, step) = (60_480usize, 20usize, 10.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut pods: Vec<PodSeries> = (0..n)
            .map(|i| PodSeries {
                name: format!("pod-{i}"),
                ..PodSeries::default()
            })
            .collect();
        let mut hist = vec![vec![0.0; BOUNDS.len() + 1]; 20];
        let mut load = 0.0;
        let mut drift = vec![0.0; n];
        for k in 0..steps {
            load = ar1(load, (0.03, 0.5), &mut rng);
            let hour = ((1.8e9 + k as f64 * step) / 3600.0) % 24.0;
            let mean = 50.0 * step * (1.0 + 0.3 * (std::f64::consts::TAU * hour / 24.0).sin());
            for (i, p) in pods.iter_mut().enumerate() {
                drift[i] = ar1(drift[i], (0.01, 0.9), &mut rng);
                let r = (mean * f64::exp(load) + (mean).sqrt() * gauss(&mut rng))
                    .round()
                    .max(1.0);
                let m = 0.05 * (0.5 * load + drift[i]).exp() * (0.125f64).exp();
                p.requests.push(r);
                p.errors.push((r * 0.001).round());
                p.latency_sum
                    .push(r * m * (1.0 + 0.53 / r.sqrt() * gauss(&mut rng)));
                p.latency_count.push(r);
                p.cpu_seconds.push((0.02 + r / step * 0.005) * step);
                p.memory_bytes.push(3e8);
                hist[k * 20 / steps][6] += r / 2.0;
                hist[k * 20 / steps][5] += r / 2.0;
            }
        }
        let obs = Observations {
            start_unix: 1.8e9,
            step_s: step,
            pods,
            histogram: Some(HistogramBlocks {
                bounds: BOUNDS.to_vec(),
                blocks: hist,
            }),
            sources: Sources::default(),
        };
        let t = std::time::Instant::now();
        let c = calibrate(&obs);
        eprintln!(
            "fit of {} pods x {} steps: {:.3} s (request_rate {:?})",
            n,
            steps,
            t.elapsed().as_secs_f64(),
            c.request_rate.value()
        );
    }
}
