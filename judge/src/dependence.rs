//! Dependence of a metric series on itself: how many independent points a
//! window of autocorrelated points is worth.
//!
//! Rate windows longer than the scrape step make neighbouring points share
//! most of their data, and pods drift slowly; both make a series' points
//! positively correlated, so the variance of its mean (and of a rank sum)
//! is larger than the independent-points formula says. We fit an AR(1) to
//! the series (lag-1 autocorrelation, bias-corrected for short series) and
//! use the exact variance of the mean of `n` AR(1) points. For the
//! moving-average correlation of overlapping windows the AR(1) fit
//! overstates the variance (conservative): a window of `w` steps has lag-1
//! correlation `(w - 1) / w`, AR(1) variance inflation `2w - 1` where the
//! exact one is `w`.

/// Lag-1 autocorrelation of `x`, corrected for its small-sample bias
/// (Kendall, mean estimated: `E[r] ~ rho - (1 + 4 rho) / n`) and clamped to `[0, 0.995]`:
/// a negative estimate counts as independent points. 0 for fewer than 4
/// points or a constant series.
pub fn lag1(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 4 {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let mut den = 0.0;
    let mut num = 0.0;
    let mut prev = x[0] - mean;
    den += prev * prev;
    for &v in &x[1..] {
        let d = v - mean;
        num += prev * d;
        den += d * d;
        prev = d;
    }
    if den <= 0.0 || !den.is_finite() {
        return 0.0;
    }
    let r = num / den;
    if !r.is_finite() || r <= 0.0 {
        return 0.0;
    }
    (r + (1.0 + 4.0 * r) / n as f64).min(0.995)
}

/// Variance inflation of the mean of `n` points of an AR(1) with lag-1
/// correlation `rho`: `1 + 2 sum_{k<n} (1 - k/n) rho^k` (1 for `rho = 0`).
pub fn vif_ar1(rho: f64, n: usize) -> f64 {
    if rho <= 0.0 || n < 2 {
        return 1.0;
    }
    let nf = n as f64;
    let s = rho / (1.0 - rho) - rho * (1.0 - rho.powf(nf)) / (nf * (1.0 - rho) * (1.0 - rho));
    (1.0 + 2.0 * s).max(1.0)
}

/// Effective sample size of `x`'s mean: `n / vif`.
pub fn effective_n(x: &[f64]) -> f64 {
    x.len() as f64 / vif_ar1(lag1(x), x.len())
}

/// Student t quantile for `p` in (0.5, 1) with `df` degrees of freedom
/// (Wallace's approximation from the normal quantile: within 1.2% of R's
/// `qt` for `df >= 3` at the usual levels); `df` below 1 is treated as 1.
pub fn qt(p: f64, df: f64) -> f64 {
    t_from_z(crate::stats::qnorm(p), df)
}

/// The t deviate with about the same tail probability as the normal
/// deviate `z` (Wallace 1959: `t = sqrt(v (exp(w^2 / v) - 1))`,
/// `w = z (8v + 3) / (8v + 1)`).
pub fn t_from_z(z: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return z;
    }
    let v = df.max(1.0);
    let w = z * (8.0 * v + 3.0) / (8.0 * v + 1.0);
    let t = (v * ((w * w / v).exp() - 1.0)).sqrt();
    if z < 0.0 { -t } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vif_matches_the_sum() {
        for &(rho, n) in &[(0.5, 60usize), (0.8, 60), (0.9, 180), (0.3, 10)] {
            let direct: f64 = 1.0
                + 2.0
                    * (1..n)
                        .map(|k| (1.0 - k as f64 / n as f64) * f64::powi(rho, k as i32))
                        .sum::<f64>();
            assert!((vif_ar1(rho, n) - direct).abs() < 1e-9, "{rho} {n}");
        }
        assert_eq!(vif_ar1(0.0, 60), 1.0);
    }

    #[test]
    fn t_quantiles_match_tables() {
        // R: qt(0.975, c(3, 5, 10, 30)), qt(0.99, 10)
        for &(p, df, want) in &[
            (0.975, 3.0, 3.182446),
            (0.975, 5.0, 2.570582),
            (0.975, 10.0, 2.228139),
            (0.975, 30.0, 2.042272),
            (0.99, 10.0, 2.763769),
        ] {
            let got = qt(p, df);
            assert!(
                (got / want - 1.0).abs() < 1.5e-2,
                "qt({p}, {df}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn lag1_recovers_an_ar1() {
        // a deterministic AR(1) driven by a fixed pseudo-random sequence
        let mut s = 1u64;
        let mut e = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut x = vec![0.0; 20_000];
        for i in 1..x.len() {
            x[i] = 0.7 * x[i - 1] + e();
        }
        assert!((lag1(&x) - 0.7).abs() < 0.02, "{}", lag1(&x));
        assert_eq!(lag1(&[1.0, 1.0, 1.0, 1.0, 1.0]), 0.0);
    }
}
