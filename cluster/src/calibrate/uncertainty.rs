//! The fit's uncertainty carried into a prediction: a parametric
//! bootstrap. Each fitted parameter has a standard error; [`draw`] gives
//! one service with every parameter drawn from its estimated sampling
//! distribution (normal, mean the estimate, sd its standard error; drawn
//! independently, as the fit gives no covariances), and the caller
//! simulates a batch of releases of each draw. [`Propagation::from_counts`]
//! splits the spread of the batches' false-alarm rates into the part the
//! batches' own binomial noise explains and the part the parameters add.
//!
//! Pure: the draws take their normal deviates from the caller, the
//! simulation is the caller's (`examples/aa_calibrate.rs`).

use std::fmt::Write as _;

use super::fit::{Calibration, Fit};

/// Every fitted parameter of `c` redrawn as `estimate + se z` with `z`
/// from `normal` (standard normal deviates, one per parameter with a
/// finite non-zero standard error, in a fixed order). Exact parameters
/// (replicas), unfitted ones and those of unknown uncertainty are kept. A
/// draw outside the simulator's range (a negative sd, a correlation of 1)
/// is clamped when written, as an estimate there would be
/// ([`super::write::lines`]): a draw at the boundary stands for that tail.
pub fn draw(c: &Calibration, normal: &mut dyn FnMut() -> f64) -> Calibration {
    let mut d = c.clone();
    for fit in fits(&mut d) {
        if let Fit::Fitted { value, se, .. } = fit
            && se.is_finite()
            && *se > 0.0
        {
            *value += *se * normal();
        }
    }
    d
}

/// Standard normal deviates from `seed` (SplitMix64 and Box-Muller):
/// enough for a few thousand parameter draws, and no random-number crate
/// in this library for it.
pub fn normals(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    let mut spare: Option<f64> = None;
    move || {
        if let Some(z) = spare.take() {
            return z;
        }
        let mut uniform = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // (0, 1]: 53 random bits, never 0
            ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
        };
        let (u, v) = (uniform(), uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let a = std::f64::consts::TAU * v;
        spare = Some(r * a.sin());
        r * a.cos()
    }
}

/// The parameters [`draw`] varies, by name.
pub fn drawn(c: &Calibration) -> Vec<&'static str> {
    let mut c = c.clone();
    NAMES
        .iter()
        .zip(fits(&mut c))
        .filter(|(_, f)| matches!(f, Fit::Fitted { se, .. } if se.is_finite() && *se > 0.0))
        .map(|(n, _)| *n)
        .collect()
}

const NAMES: [&str; 14] = [
    "request_rate",
    "diurnal_swing",
    "start_hour",
    "latency_median_ms",
    "latency_sigma",
    "error_rate",
    "cpu_ms_per_request",
    "cpu_idle_cores",
    "memory_mib",
    "pod_variation",
    "load_noise.sd",
    "load_noise.rho",
    "pod_drift.sd",
    "pod_drift.rho",
];

fn fits(c: &mut Calibration) -> [&mut Fit; 14] {
    [
        &mut c.request_rate,
        &mut c.diurnal_swing,
        &mut c.start_hour,
        &mut c.latency_median_ms,
        &mut c.latency_sigma,
        &mut c.error_rate,
        &mut c.cpu_ms_per_request,
        &mut c.cpu_idle_cores,
        &mut c.memory_mib,
        &mut c.pod_variation,
        &mut c.load_noise_sd,
        &mut c.load_noise_rho,
        &mut c.pod_drift_sd,
        &mut c.pod_drift_rho,
    ]
}

/// What the parameters' uncertainty does to a predicted rate (of false
/// alarms, say): from B draws of the parameters, each simulated for a
/// batch of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagation {
    /// Parameter draws.
    pub draws: usize,
    /// Simulated runs per draw.
    pub runs_per_draw: u64,
    /// Mean of the draws' rates.
    pub mean: f64,
    /// Standard deviation of the draws' rates (batch noise and parameters).
    pub sd_total: f64,
    /// The part of it one batch's binomial noise gives: the root of the
    /// mean of `p (1 - p) / (runs - 1)` (unbiased for the binomial
    /// variance of a batch's rate).
    pub sd_batch: f64,
    /// The part the parameters give: `sqrt(max(0, sd_total^2 -
    /// sd_batch^2))`, the sd of the rate a draw would have with infinitely
    /// many runs.
    pub sd_fit: f64,
    /// 2.5% and 97.5% quantiles of the draws' rates (batch noise included).
    pub quantiles: (f64, f64),
}

impl Propagation {
    /// From `(events, runs)` per draw (every draw the same number of
    /// runs). `None` for fewer than 2 draws or a batch of fewer than 2 runs.
    pub fn from_counts(counts: &[(u64, u64)]) -> Option<Propagation> {
        let b = counts.len();
        let runs = counts.first()?.1;
        if b < 2 || runs < 2 || counts.iter().any(|c| c.1 != runs || c.0 > c.1) {
            return None;
        }
        let p: Vec<f64> = counts.iter().map(|(x, n)| *x as f64 / *n as f64).collect();
        let mean = p.iter().sum::<f64>() / b as f64;
        let var_total = p.iter().map(|q| (q - mean).powi(2)).sum::<f64>() / (b - 1) as f64;
        let var_batch = p.iter().map(|q| q * (1.0 - q)).sum::<f64>() / b as f64 / (runs - 1) as f64;
        let mut sorted = p.clone();
        sorted.sort_by(f64::total_cmp);
        Some(Propagation {
            draws: b,
            runs_per_draw: runs,
            mean,
            sd_total: var_total.sqrt(),
            sd_batch: var_batch.sqrt(),
            sd_fit: (var_total - var_batch).max(0.0).sqrt(),
            quantiles: (quantile(&sorted, 0.025), quantile(&sorted, 0.975)),
        })
    }

    /// The prediction at the fitted values, `x` of `n` runs, with its
    /// uncertainty: the binomial sd of `x / n`, the fit's sd added in
    /// variance, the share of the combined variance that is the fit's,
    /// and the combined 95% interval (normal, clipped to [0, 1]).
    pub fn combined(&self, x: u64, n: u64) -> Combined {
        let p = if n == 0 { 0.0 } else { x as f64 / n as f64 };
        let sd_runs = if n == 0 {
            f64::INFINITY
        } else {
            (p * (1.0 - p) / n as f64).sqrt()
        };
        let sd = (sd_runs * sd_runs + self.sd_fit * self.sd_fit).sqrt();
        let share_fit = if sd > 0.0 {
            self.sd_fit * self.sd_fit / (sd * sd)
        } else {
            0.0
        };
        Combined {
            rate: p,
            sd_runs,
            sd,
            share_fit,
            interval: ((p - 1.959964 * sd).max(0.0), (p + 1.959964 * sd).min(1.0)),
        }
    }

    /// Lines for a person: the draws' spread and, with the prediction at
    /// the fitted values (`x` of `n` runs), how much of its interval the
    /// fit's uncertainty makes.
    pub fn text(&self, at_fit: Option<(u64, u64)>) -> String {
        let pct = |v: f64| format!("{:.1}", 100.0 * v);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "fit uncertainty (parametric bootstrap: {} draws of the fitted parameters, {} runs each): \
             rate {}% mean, sd {} points over the draws, of which {} from each draw's {} runs and \
             {} from the parameters; draws' 2.5-97.5% range [{}, {}]%",
            self.draws,
            self.runs_per_draw,
            pct(self.mean),
            pct(self.sd_total),
            pct(self.sd_batch),
            self.runs_per_draw,
            pct(self.sd_fit),
            pct(self.quantiles.0),
            pct(self.quantiles.1),
        );
        if let Some((x, n)) = at_fit {
            let c = self.combined(x, n);
            let _ = writeln!(
                t,
                "prediction at the fitted values: {x}/{n} = {}%, sd {} points from its runs, {} from \
                 the fit; together 95% [{}, {}]%, {:.0}% of the variance from the fit",
                pct(c.rate),
                pct(c.sd_runs),
                pct(self.sd_fit),
                pct(c.interval.0),
                pct(c.interval.1),
                100.0 * c.share_fit
            );
        }
        t
    }
}

/// A prediction's uncertainty from its runs and from the fit
/// ([`Propagation::combined`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// The predicted rate.
    pub rate: f64,
    /// Its binomial sd from the runs.
    pub sd_runs: f64,
    /// Runs and fit together.
    pub sd: f64,
    /// The fit's share of the variance.
    pub share_fit: f64,
    /// `rate +- 1.96 sd`, within [0, 1].
    pub interval: (f64, f64),
}

/// Linear interpolation between order statistics (R's type 7).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Binomial, Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn calibration() -> Calibration {
        let fitted = |value: f64, se: f64| Fit::Fitted {
            value,
            se,
            source: "test".into(),
        };
        Calibration {
            step_s: 10.0,
            steps: 100,
            replicas: fitted(6.0, 0.0),
            request_rate: fitted(200.0, 2.0),
            diurnal_swing: Fit::NotFitted("too short".into()),
            start_hour: Fit::NotFitted("too short".into()),
            latency_median_ms: fitted(50.0, 0.5),
            latency_sigma: fitted(0.5, 0.01),
            latency_max_cdf_error: None,
            error_rate: fitted(0.001, 0.0001),
            cpu_ms_per_request: fitted(1.0, f64::INFINITY),
            cpu_idle_cores: fitted(0.03, 0.01),
            memory_mib: fitted(30.0, 0.1),
            pod_variation: fitted(0.003, 0.001),
            load_noise_sd: fitted(0.0, 0.003),
            load_noise_rho: fitted(0.0, 0.0),
            pod_drift_sd: fitted(0.016, 0.004),
            pod_drift_rho: fitted(0.87, 0.25),
            notes: Vec::new(),
            histogram_cdf: None,
            load_acf: None,
            drift_acf: None,
            pods: Vec::new(),
        }
    }

    fn value(f: &Fit) -> f64 {
        f.value().unwrap_or(f64::NAN)
    }

    #[test]
    fn draws_vary_each_parameter_by_its_standard_error_and_keep_the_rest() {
        let c = calibration();
        let mut normal = normals(7);
        let n = 4000;
        let draws: Vec<Calibration> = (0..n).map(|_| draw(&c, &mut normal)).collect();
        let stats = |get: &dyn Fn(&Calibration) -> f64| {
            let v: Vec<f64> = draws.iter().map(get).collect();
            let m = v.iter().sum::<f64>() / n as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            (m, sd)
        };
        let (m, sd) = stats(&|d| value(&d.request_rate));
        // mean within 4 standard errors of the mean, sd within 5%
        assert!((m - 200.0).abs() < 4.0 * 2.0 / (n as f64).sqrt(), "{m}");
        assert!((sd / 2.0 - 1.0).abs() < 0.05, "{sd}");
        let (m, sd) = stats(&|d| value(&d.pod_drift_rho));
        assert!((m - 0.87).abs() < 4.0 * 0.25 / (n as f64).sqrt(), "{m}");
        assert!((sd / 0.25 - 1.0).abs() < 0.05, "{sd}");
        // exact, unknown and unfitted parameters are kept
        for d in &draws {
            assert_eq!(value(&d.replicas), 6.0);
            assert_eq!(value(&d.load_noise_rho), 0.0);
            assert_eq!(value(&d.cpu_ms_per_request), 1.0);
            assert_eq!(d.diurnal_swing, c.diurnal_swing);
        }
        assert_ne!(draws[0].latency_sigma, draws[1].latency_sigma);
        let names = drawn(&c);
        assert_eq!(names.len(), 10, "{names:?}");
        assert!(!names.contains(&"cpu_ms_per_request") && !names.contains(&"load_noise.rho"));
    }

    #[test]
    fn the_spread_of_draws_splits_into_batch_noise_and_the_parameters() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let runs = 200;
        let b = 2000;
        // every draw the same rate: the spread is the batches' alone
        let same: Vec<(u64, u64)> = (0..b)
            .map(|_| {
                let x = Binomial::new(runs, 0.3).map_or(0, |d| d.sample(&mut rng));
                (x, runs)
            })
            .collect();
        let p = Propagation::from_counts(&same).expect("counts");
        let binomial = (0.3f64 * 0.7 / runs as f64).sqrt();
        assert!((p.sd_batch / binomial - 1.0).abs() < 0.05, "{p:?}");
        assert!((p.sd_total / binomial - 1.0).abs() < 0.06, "{p:?}");
        assert!(p.sd_fit < 0.35 * binomial, "{p:?}");
        // rates that themselves vary with sd 0.05 around 0.3
        let varied: Vec<(u64, u64)> = (0..b)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                let q = (0.3 + 0.05 * z).clamp(0.0, 1.0);
                let x = Binomial::new(runs, q).map_or(0, |d| d.sample(&mut rng));
                (x, runs)
            })
            .collect();
        let p = Propagation::from_counts(&varied).expect("counts");
        assert!((p.sd_fit / 0.05 - 1.0).abs() < 0.1, "{p:?}");
        assert!((p.mean - 0.3).abs() < 0.005, "{p:?}");
        assert!(p.quantiles.0 < 0.3 - 1.5 * 0.05 && p.quantiles.1 > 0.3 + 1.5 * 0.05);
        // a 2000-run prediction at 30%: binomial sd 1.02 points, fit 5
        let c = p.combined(600, 2000);
        assert!((c.sd_runs - (0.3f64 * 0.7 / 2000.0).sqrt()).abs() < 1e-12);
        assert!(c.share_fit > 0.9 && c.share_fit < 1.0, "{c:?}");
        assert!(c.interval.0 < 0.3 - 1.9 * p.sd_fit && c.interval.1 > 0.3 + 1.9 * p.sd_fit);
        let text = p.text(Some((600, 2000)));
        assert!(
            text.contains("2000 draws") && text.contains("600/2000 = 30.0%"),
            "{text}"
        );
    }

    #[test]
    fn normals_are_standard_normal() {
        let mut z = normals(3);
        let v: Vec<f64> = (0..20_000).map(|_| z()).collect();
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(m.abs() < 4.0 / n.sqrt(), "{m}");
        assert!((var - 1.0).abs() < 0.04, "{var}");
        let tail = v.iter().filter(|x| x.abs() > 1.959964).count() as f64 / n;
        assert!((tail - 0.05).abs() < 0.006, "{tail}");
        assert!(v.iter().all(|x| x.is_finite()));
        let mut again = normals(3);
        assert_eq!(again(), v[0]);
    }

    #[test]
    fn too_few_or_uneven_counts_give_nothing() {
        assert_eq!(Propagation::from_counts(&[]), None);
        assert_eq!(Propagation::from_counts(&[(3, 10)]), None);
        assert_eq!(Propagation::from_counts(&[(3, 10), (3, 11)]), None);
        assert_eq!(Propagation::from_counts(&[(3, 1), (0, 1)]), None);
        assert_eq!(Propagation::from_counts(&[(12, 10), (3, 10)]), None);
        assert!(Propagation::from_counts(&[(3, 10), (4, 10)]).is_some());
    }
}
