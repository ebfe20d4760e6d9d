//! Small numeric building blocks Kayenta's judge relies on: descriptive
//! statistics (Apache Commons Math's two-pass mean and variance), R-7
//! percentiles, the IQR and k-sigma outlier detectors, effect sizes, and the
//! normal quantile and distribution functions.
//!
//! Not for: anything beyond what the judges here need.

use serde::{Deserialize, Serialize};

/// `min`, `max`, `mean`, `std` (sample), `count`: Kayenta's
/// `experimentMetadata.stats` / `controlMetadata.stats`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Summary {
    /// Smallest value (0 when empty).
    pub min: f64,
    /// Largest value (0 when empty).
    pub max: f64,
    /// Mean (0 when empty).
    pub mean: f64,
    /// Sample standard deviation, n - 1 (0 for fewer than two values).
    pub std: f64,
    /// Number of values.
    pub count: usize,
}

impl Summary {
    /// Summary of `values` (which must not hold NaN).
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            min,
            max,
            mean: mean(values),
            std: variance(values).sqrt(),
            count: values.len(),
        }
    }
}

/// Arithmetic mean with Commons Math's correction pass; NaN when empty.
pub fn mean(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let first = values.iter().sum::<f64>() / n;
    let correction: f64 = values.iter().map(|v| v - first).sum();
    first + correction / n
}

/// Bias-corrected sample variance (Commons Math's corrected two-pass
/// formula); 0 for a single value, NaN when empty.
pub fn variance(values: &[f64]) -> f64 {
    match values.len() {
        0 => f64::NAN,
        1 => 0.0,
        len => {
            let m = mean(values);
            let (mut acc, mut acc2) = (0.0, 0.0);
            for v in values {
                let dev = v - m;
                acc += dev * dev;
                acc2 += dev;
            }
            let n = len as f64;
            (acc - acc2 * acc2 / n) / (n - 1.0)
        }
    }
}

/// Percentile `p` (0..=100) with R's type-7 linear interpolation, as
/// Kayenta's `DescriptiveStatistics.percentile`. `sorted` must be ascending
/// and non-empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n as f64 - 1.0) * (p / 100.0);
    let lo = h.floor();
    let i = lo as usize;
    if i + 1 >= n {
        return sorted[n - 1];
    }
    sorted[i] + (h - lo) * (sorted[i + 1] - sorted[i])
}

/// Percentile of unsorted values; NaN when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    percentile_sorted(&sorted, p)
}

/// Kayenta's `IQRDetector`: outside `[Q1 - k IQR, Q3 + k IQR]`; with
/// `reduce_sensitivity` the fences widen to at least the 1st and 99th
/// percentiles, which is what `NetflixACAJudge` uses.
pub fn iqr_outliers(values: &[f64], factor: f64, reduce_sensitivity: bool) -> Vec<bool> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let q1 = percentile_sorted(&sorted, 25.0);
    let q3 = percentile_sorted(&sorted, 75.0);
    let iqr = q3 - q1;
    let (mut lower, mut upper) = (q1 - factor * iqr, q3 + factor * iqr);
    if reduce_sensitivity {
        lower = lower.min(percentile_sorted(&sorted, 1.0));
        upper = upper.max(percentile_sorted(&sorted, 99.0));
    }
    values.iter().map(|&v| v < lower || v > upper).collect()
}

/// Kayenta's `KSigmaDetector`: further than `k` population standard
/// deviations from the mean.
pub fn ksigma_outliers(values: &[f64], k: f64) -> Vec<bool> {
    if values.is_empty() {
        return Vec::new();
    }
    let m = mean(values);
    let n = values.len() as f64;
    let sd = (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
    values.iter().map(|v| (v - m).abs() > k * sd).collect()
}

/// Keep the values the detector does not flag.
pub fn remove_flagged(values: &[f64], flags: &[bool]) -> Vec<f64> {
    values
        .iter()
        .zip(flags)
        .filter(|(_, f)| !**f)
        .map(|(v, _)| *v)
        .collect()
}

/// mean(experiment) / mean(control); NaN when either mean is zero.
pub fn mean_ratio(control: &[f64], experiment: &[f64]) -> f64 {
    let (c, e) = (mean(control), mean(experiment));
    if c == 0.0 || e == 0.0 {
        f64::NAN
    } else {
        e / c
    }
}

/// Common-language effect size: P(experiment > control) + P(tie) / 2, from
/// the experiment's rank sum in the pooled sample.
pub fn cles(control: &[f64], experiment: &[f64]) -> f64 {
    let (n, m) = (control.len() as f64, experiment.len() as f64);
    let mut pooled: Vec<(f64, bool)> = experiment
        .iter()
        .map(|&v| (v, true))
        .chain(control.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut k = 0;
    while k < pooled.len() {
        let mut e = k;
        while e + 1 < pooled.len() && pooled[e + 1].0 == pooled[k].0 {
            e += 1;
        }
        let avg = (k + e) as f64 / 2.0 + 1.0;
        rank_sum += avg * pooled[k..=e].iter().filter(|p| p.1).count() as f64;
        k = e + 1;
    }
    (2.0 * rank_sum - m * (m + 1.0)) / (2.0 * n * m)
}

/// Cohen's d: |mean difference| over the pooled sample standard deviation.
pub fn cohen_d(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let pooled = (((na - 1.0) * variance(a) + (nb - 1.0) * variance(b)) / (na + nb - 2.0)).sqrt();
    (mean(a) - mean(b)).abs() / pooled
}

/// Standard normal quantile (Wichura's AS 241, as R's `qnorm`), accurate
/// to about 1e-16 relative. Coefficients as published.
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
pub fn qnorm(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((r * 2509.0809287301227 + 33430.575583588128) * r + 67265.7709270087) * r
                + 45921.95393154987)
                * r
                + 13731.693765509461)
                * r
                + 1971.5909503065514)
                * r
                + 133.14166789178438)
                * r
                + 3.3871328727963666)
            / (((((((r * 5226.495278852546 + 28729.085735721943) * r + 39307.89580009271) * r
                + 21213.794301586596)
                * r
                + 5394.196021424751)
                * r
                + 687.1870074920579)
                * r
                + 42.31333070160091)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((r * 7.745450142783414e-4 + 0.022723844989269184) * r + 0.2417807251774506) * r
            + 1.2704582524523684)
            * r
            + 3.6478483247632045)
            * r
            + 5.769497221460691)
            * r
            + 4.630337846156545)
            * r
            + 1.4234371107496836)
            / (((((((r * 1.0507500716444168e-9 + 5.475938084995345e-4) * r
                + 0.015198666563616457)
                * r
                + 0.14810397642748008)
                * r
                + 0.6897673349851)
                * r
                + 1.6763848301838038)
                * r
                + 2.053191626637759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((r * 2.010334399292288e-7 + 2.7115555687434876e-5) * r + 0.0012426609473880784)
            * r
            + 0.026532189526576124)
            * r
            + 0.2965605718285049)
            * r
            + 1.7848265399172913)
            * r
            + 5.463784911164114)
            * r
            + 6.657904643501103)
            / (((((((r * 2.0442631033899398e-15 + 1.421511758316446e-7) * r
                + 1.8463183175100548e-5)
                * r
                + 7.868691311456133e-4)
                * r
                + 0.014875361290850615)
                * r
                + 0.1369298809227358)
                * r
                + 0.5998322065558879)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

/// Standard normal CDF (Hart's rational approximation as given by West,
/// 2005; absolute error below 1e-14): used for the p-values the judge
/// reports, never for a decision.
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
pub fn pnorm(x: f64) -> f64 {
    let z = x.abs();
    let tail = if z > 37.0 {
        0.0
    } else {
        let e = (-z * z / 2.0).exp();
        if z < 7.07106781186547 {
            const NUM: [f64; 7] = [
                3.52624965998911e-02,
                0.700383064443688,
                6.37396220353165,
                33.912866078383,
                112.079291497871,
                221.213596169931,
                220.206867912376,
            ];
            const DEN: [f64; 8] = [
                8.83883476483184e-02,
                1.75566716318264,
                16.064177579207,
                86.7807322029461,
                296.564248779674,
                637.333633378831,
                793.826512519948,
                440.413735824752,
            ];
            let horner = |c: &[f64]| c.iter().fold(0.0, |acc, &k| acc * z + k);
            e * horner(&NUM) / horner(&DEN)
        } else {
            let b = z + 1.0 / (z + 2.0 / (z + 3.0 / (z + 4.0 / (z + 0.65))));
            e / b / 2.506628274631
        }
    };
    if x > 0.0 { 1.0 - tail } else { tail }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn qnorm_matches_r() {
        // R: qnorm(c(0.01, 0.025, 0.5, 0.975, 1e-10))
        assert!((qnorm(0.01) - -2.326_347_874_040_841).abs() < 1e-15);
        assert!((qnorm(0.025) - -1.959_963_984_540_054).abs() < 1e-15);
        assert_eq!(qnorm(0.5), 0.0);
        assert!((qnorm(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
        assert!((qnorm(1e-10) - -6.361_340_902_404_056).abs() < 1e-13);
    }

    #[test]
    fn pnorm_is_close() {
        // R: pnorm(c(0, 1.959963984540054, -3, -8.5))
        assert!((pnorm(0.0) - 0.5).abs() < 1e-14);
        assert!((pnorm(1.959_963_984_540_054) - 0.975).abs() < 1e-13);
        assert!((pnorm(-3.0) - 0.001_349_898_031_630_094_6).abs() < 1e-14);
        assert!(
            (pnorm(-8.5) / 9.479_534_822_203_32e-18 - 1.0).abs() < 1e-6,
            "{}",
            pnorm(-8.5)
        );
    }

    #[test]
    fn cles_and_ratio() {
        assert_eq!(cles(&[1.0, 2.0], &[1.0, 2.0]), 0.5);
        assert_eq!(cles(&[5.0], &[1.0, 2.0]), 0.0);
        assert_eq!(mean_ratio(&[2.0, 2.0], &[3.0, 3.0]), 1.5);
        assert!(mean_ratio(&[0.0], &[3.0]).is_nan());
    }
}
