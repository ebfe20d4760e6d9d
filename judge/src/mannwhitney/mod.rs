//! The Mann-Whitney (Wilcoxon rank-sum) confidence interval for a location
//! shift, computed the way Kayenta's `kayenta-mannwhitney` computes it: R's
//! `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)` normal
//! approximation, inverted with R's `zeroin` Brent root finder (tol 1e-4),
//! with Kayenta's location estimate (which, unlike R's, keeps the continuity
//! correction).
//!
//! What is different from Kayenta is only the cost: Kayenta re-ranks the
//! pooled sample at every root-finder step (O((n+m) log(n+m))). Here both
//! samples are sorted once, and the rank sum at a shift `d` is exact
//! integer arithmetic on per-x counts of the control values below (and
//! equal to) `x - d`. Every shift evaluated becomes a probe that keeps those
//! counts; counts only fall as the shift grows, so the probes on either
//! side of a new shift bound each x's count, and most need one comparison.
//! Once two probes are so close that only a few (experiment, control)
//! pairs can change order between them, the statistic is those pairs'
//! comparisons plus a fixed part, with no pass over the samples at all.
//! Every floating-point operation that reaches the result is done in
//! Kayenta's order (`x - d` compared with `y`, the tie term an exact
//! integer), so the root finder takes the same steps and returns the same
//! numbers bit for bit; the tests check this against a full re-ranking.
//!
//! Not for: exact (permutation) p-values or one-sided tests.
//!
//! The pieces, one idea each: `band` decides the classifier's question
//! (where the interval lies against the tolerance band) without solving
//! for the interval where it can; `reuse` sorts a grown or slid window by
//! merging into the previous load; `statistic` is the rank statistic
//! itself, over the per-shift counts kept in `probes`; `zeroin` is
//! Kayenta's root finder. This file is the public interval API.

mod band;
mod probes;
mod reuse;
mod statistic;
#[cfg(test)]
mod test_support;
mod zeroin;

pub use band::{Band, BandAnswer, BandCounts};

use crate::stats::{pnorm, qnorm};
use reuse::{Reuse, Sorted, dense, grown_counts, sort_reusing};
use statistic::{RankStatistic, SENTINELS, Scratch, Summary, runs, unpadded};
use zeroin::zeroin;

/// Why an interval could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MannWhitneyError {
    /// One side has no observations.
    #[error("cannot compute a confidence interval with an empty sample")]
    Empty,
    /// All pooled observations are tied at some shift, so the statistic has
    /// no variance (R stops with the same complaint).
    #[error("cannot compute confidence interval when all observations are tied")]
    AllTied,
    /// The confidence level is not in (0, 1).
    #[error("confidence level {0} is not between 0 and 1")]
    ConfidenceLevel(f64),
}

/// The interval, estimate and p-value for the shift `experiment - control`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitneyResult {
    /// Lower end of the confidence interval.
    pub ci_lower: f64,
    /// Upper end of the confidence interval.
    pub ci_upper: f64,
    /// Kayenta's location estimate (root of the continuity-corrected
    /// statistic); R's Hodges-Lehmann estimate drops the correction.
    pub estimate: f64,
    /// Two-sided p-value for no shift, normal approximation with tie and
    /// continuity correction (as R's `wilcox.test(exact = FALSE)`).
    pub p_value: f64,
}

/// A reusable workspace: the two samples sorted once, and what the rank
/// statistic learns at each shift it is evaluated at. The simulator judges
/// millions of windows, so nothing here allocates after warm-up.
#[derive(Debug, Default, Clone)]
pub struct MannWhitney {
    /// Experiment, sorted.
    x: Vec<f64>,
    /// Control, sorted, then [`SENTINELS`] +inf sentinels: one ends every
    /// scan, and the plain merge reads four values from any count on.
    y_padded: Vec<f64>,
    /// Sort keys (scratch).
    keys: Vec<i64>,
    /// What the rank statistic keeps between evaluations.
    scratch: Scratch,
    /// Band questions answered without and with the root finder.
    band_counts: BandCounts,
    /// The previous load's samples, as given, and merge buffers.
    reuse: Reuse,
    /// Tie groups and gaps of the loaded samples, kept up to date as
    /// values are merged in.
    summary: [Summary; 2],
    /// Twice the rank sum, less its minimum, at the first two shifts the
    /// band decision evaluates, for the loaded samples: a grown window
    /// adds its new values' counts instead of a pass over every value.
    running: [Option<(f64, i64)>; 2],
    /// The loaded experiment's and control's sums in the caller's order,
    /// as `iter().sum()` gives them (a grown sample's continues the last
    /// one's fold), for [`MannWhitney::mean_ratio_loaded`].
    sums: [f64; 2],
}
impl MannWhitney {
    /// A workspace with no samples loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sort `experiment` and `control` into the workspace. When a sample
    /// is the previous load's with values appended (a growing window), or
    /// with some dropped from the front as well (a sliding one), the new
    /// values are sorted alone and merged in.
    pub fn load(&mut self, experiment: &[f64], control: &[f64]) {
        let r = &mut self.reuse;
        let (mut prev_x, mut prev_y) = (std::mem::take(&mut r.x), std::mem::take(&mut r.y));
        let had = [prev_x.len(), prev_y.len()];
        let [sx, sy] = &mut self.summary;
        let sorted_x = sort_reusing(experiment, &mut prev_x, &mut self.x, sx, &mut self.keys, r);
        std::mem::swap(&mut r.part, &mut r.part_x);
        let m = unpadded(&self.y_padded).len();
        self.y_padded.truncate(m);
        let sorted_y = sort_reusing(
            control,
            &mut prev_y,
            &mut self.y_padded,
            sy,
            &mut self.keys,
            r,
        );
        (r.x, r.y) = (prev_x, prev_y);
        let y = &self.y_padded;
        // a grown sample's summary was updated by its merge, and its sum
        // continues the fold over the values appended
        for (((how, sum), values), had) in [sorted_x, sorted_y]
            .into_iter()
            .zip(&mut self.sums)
            .zip([experiment, control])
            .zip(had)
        {
            *sum = match how {
                Sorted::Grown => values[had..].iter().fold(*sum, |a, &v| a + v),
                _ => values.iter().sum(),
            };
        }
        if sorted_x != Sorted::Grown {
            *sx = runs(&self.x);
        }
        if sorted_y != Sorted::Grown {
            *sy = runs(y);
        }
        // A window that (about) doubles is cheaper to count afresh at the
        // band decision's shifts than to update value by value.
        if sorted_x == Sorted::Grown
            && sorted_y == Sorted::Grown
            && !dense(self.x.len(), r.part_x.len())
            && !dense(y.len(), r.part.len())
        {
            for (d, total) in self.running.iter_mut().flatten() {
                *total += grown_counts(&self.x, y, &r.part_x, &r.part, *d);
            }
        } else {
            self.running = [None; 2];
        }
        self.y_padded.extend([f64::INFINITY; SENTINELS]);
    }

    /// [`crate::stats::mean_ratio`]`(control, experiment)`, bit for bit,
    /// where `control` and `experiment` are the samples last loaded (in
    /// the order given to [`MannWhitney::load`]): the means' first sums
    /// are the load's (a grown window's continue the last window's), and
    /// their corrections are summed side by side, each in its own order.
    pub fn mean_ratio_loaded(&self, control: &[f64], experiment: &[f64]) -> f64 {
        mean_ratio_summed(self.sums, control, experiment)
    }

    /// The loaded experiment, sorted.
    pub fn experiment_sorted(&self) -> &[f64] {
        &self.x
    }

    /// The loaded control, sorted.
    pub fn control_sorted(&self) -> &[f64] {
        unpadded(&self.y_padded)
    }

    /// Confidence interval for `experiment - control` at `conf_level`.
    ///
    /// Inputs must not contain NaN (the judge removes or replaces NaN first).
    pub fn interval(
        &mut self,
        experiment: &[f64],
        control: &[f64],
        conf_level: f64,
    ) -> Result<MannWhitneyResult, MannWhitneyError> {
        self.load(experiment, control);
        self.interval_loaded(conf_level)
    }

    /// The loaded samples' range of shifts (smallest and largest
    /// experiment-minus-control difference), after checking that both
    /// samples have data and `conf_level` lies in (0, 1): what both the
    /// interval and the band classification start from.
    fn shift_range(&self, conf_level: f64) -> Result<(f64, f64), MannWhitneyError> {
        if self.x.is_empty() || unpadded(&self.y_padded).is_empty() {
            return Err(MannWhitneyError::Empty);
        }
        if !(conf_level > 0.0 && conf_level < 1.0) {
            return Err(MannWhitneyError::ConfidenceLevel(conf_level));
        }
        let (x, y_padded) = (&self.x, &self.y_padded);
        let y = unpadded(y_padded);
        Ok((x[0] - y[y.len() - 1], x[x.len() - 1] - y[0]))
    }

    /// [`MannWhitney::interval`] for the samples already loaded.
    pub fn interval_loaded(
        &mut self,
        conf_level: f64,
    ) -> Result<MannWhitneyResult, MannWhitneyError> {
        let (mu_min, mu_max) = self.shift_range(conf_level)?;
        let (x, y_padded) = (&self.x, &self.y_padded);
        let mut stat = RankStatistic::with_summary(x, y_padded, &mut self.scratch, self.summary);
        solve_interval(mu_min, mu_max, conf_level, |d| stat.z(d))
    }
}
/// [`crate::stats::mean_ratio`]`(control, experiment)`, bit for bit, given
/// the experiment's and control's sums in the caller's order (as
/// `iter().sum()` gives them): the means' corrections are summed side by
/// side, each in its own order.
pub fn mean_ratio_summed([e_sum, c_sum]: [f64; 2], control: &[f64], experiment: &[f64]) -> f64 {
    let (ne, nc) = (experiment.len() as f64, control.len() as f64);
    let (fe, fc) = (e_sum / ne, c_sum / nc);
    // the neutral element `sum` starts from
    let zero: f64 = std::iter::empty::<f64>().sum();
    let (mut ce, mut cc) = (zero, zero);
    for (e, c) in experiment.iter().zip(control) {
        ce += e - fe;
        cc += c - fc;
    }
    let k = experiment.len().min(control.len());
    ce = experiment[k..].iter().fold(ce, |a, v| a + (v - fe));
    cc = control[k..].iter().fold(cc, |a, v| a + (v - fc));
    let (e, c) = (fe + ce / ne, fc + cc / nc);
    if c == 0.0 || e == 0.0 {
        f64::NAN
    } else {
        e / c
    }
}

/// A sample's least and greatest values and its sum in the caller's order
/// (`iter().sum()`, bit for bit), from one pass without sorting: what the
/// fast classification needs to see whether it has to sort at all
/// ([`MannWhitney::within_unloaded`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extremes {
    /// The least value (of -0.0 and 0.0, either: only its magnitude and
    /// `==` are read).
    pub min: f64,
    /// The greatest value (the same).
    pub max: f64,
    /// The sum, in the order given.
    pub sum: f64,
}

impl Extremes {
    /// One pass over `values` (NaN-free; empty: min +inf, max -inf).
    pub fn of(values: &[f64]) -> Self {
        // the neutral element `sum` starts from
        let zero: f64 = std::iter::empty::<f64>().sum();
        // the sum in order (its rounding depends on it); the least and
        // greatest on four lanes, which the compiler vectorizes (their
        // order does not matter: only magnitudes and `==` are read)
        let (mut min, mut max, mut sum) = ([f64::INFINITY; 4], [f64::NEG_INFINITY; 4], zero);
        let chunks = values.chunks_exact(4);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..4 {
                min[k] = if c[k] < min[k] { c[k] } else { min[k] };
                max[k] = if c[k] > max[k] { c[k] } else { max[k] };
            }
            sum = sum + c[0] + c[1] + c[2] + c[3];
        }
        for &v in rest {
            min[0] = if v < min[0] { v } else { min[0] };
            max[0] = if v > max[0] { v } else { max[0] };
            sum += v;
        }
        let min = min
            .into_iter()
            .fold(f64::INFINITY, |a, b| if b < a { b } else { a });
        let max = max
            .into_iter()
            .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a });
        Self { min, max, sum }
    }
}

/// The interval's three root-finder runs and the p-value, as Kayenta does
/// them, for any evaluation of the statistic (the tests run this with a
/// full re-ranking to check that the fast statistic changes nothing).
fn solve_interval(
    mu_min: f64,
    mu_max: f64,
    conf_level: f64,
    mut z: impl FnMut(f64) -> Result<f64, MannWhitneyError>,
) -> Result<MannWhitneyResult, MannWhitneyError> {
    let g_min = z(mu_min)?;
    let g_max = z(mu_max)?;

    let alpha = 1.0 - conf_level;
    let z_quant = qnorm(alpha / 2.0);
    let mut find_root = |zq: f64| -> Result<f64, MannWhitneyError> {
        let f_lower = g_min - zq;
        let f_upper = g_max - zq;
        if f_lower <= 0.0 {
            Ok(mu_min)
        } else if f_upper >= 0.0 {
            Ok(mu_max)
        } else {
            zeroin(mu_min, mu_max, f_lower, f_upper, |d| Ok(z(d)? - zq))
        }
    };
    let ci_lower = find_root(-z_quant)?;
    let ci_upper = find_root(z_quant)?;
    // Kayenta solves for the estimate without checking the endpoints.
    let estimate = zeroin(mu_min, mu_max, g_min, g_max, &mut z)?;

    let z0 = z(0.0)?;
    let p_value = (2.0 * pnorm(-z0.abs())).min(1.0);
    Ok(MannWhitneyResult {
        ci_lower,
        ci_upper,
        estimate,
        p_value,
    })
}

/// Convenience wrapper: one interval with a fresh workspace.
pub fn mann_whitney(
    experiment: &[f64],
    control: &[f64],
    conf_level: f64,
) -> Result<MannWhitneyResult, MannWhitneyError> {
    MannWhitney::new().interval(experiment, control, conf_level)
}
/// Kayenta's `MannWhitney.wilcoxonDiff(mu, zq, x, y)` (x = experiment), the
/// function whose roots are the interval's ends; exposed for the vectors.
pub fn wilcoxon_diff(
    mu: f64,
    zq: f64,
    experiment: &[f64],
    control: &[f64],
) -> Result<f64, MannWhitneyError> {
    if experiment.is_empty() || control.is_empty() {
        return Err(MannWhitneyError::Empty);
    }
    let mut mw = MannWhitney::new();
    mw.load(experiment, control);
    Ok(RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch).z(mu)? - zq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn interval_equals_the_reranking_reference_bit_for_bit() {
        let bits = |r: &MannWhitneyResult| {
            [r.ci_lower, r.ci_upper, r.estimate, r.p_value].map(f64::to_bits)
        };
        let mut checked = 0;
        for (x, y) in datasets() {
            for conf in [0.8, 0.95, 0.98] {
                let fast = mann_whitney(&x, &y, conf);
                let mut xs = x.clone();
                xs.sort_by(f64::total_cmp);
                let mut ys = y.clone();
                ys.sort_by(f64::total_cmp);
                let (mu_min, mu_max) = (xs[0] - ys[ys.len() - 1], xs[xs.len() - 1] - ys[0]);
                let slow = solve_interval(mu_min, mu_max, conf, |d| z_by_reranking(&x, &y, d));
                match (fast, slow) {
                    (Ok(f), Ok(s)) => {
                        assert_eq!(bits(&f), bits(&s), "{f:?} vs {s:?}");
                        checked += 1;
                    }
                    (f, s) => assert_eq!(f, s),
                }
            }
        }
        assert!(checked >= 27, "{checked}");
    }
    #[test]
    fn a_workspace_reused_across_samples_gives_a_fresh_ones_bits() {
        // larger samples first, so later loads find earlier counts left
        // in the arena past the part in use
        let mut all = datasets();
        all.sort_by_key(|(x, y)| std::cmp::Reverse(x.len() + y.len()));
        let mut reused = MannWhitney::new();
        let mut checked = 0;
        for (x, y) in all.iter().chain(all.iter().rev()) {
            for conf in [0.8, 0.95] {
                let fresh = mann_whitney(x, y, conf);
                let again = reused.interval(x, y, conf);
                match (fresh, again) {
                    (Ok(f), Ok(a)) => {
                        let bits = |r: &MannWhitneyResult| {
                            [r.ci_lower, r.ci_upper, r.estimate, r.p_value].map(f64::to_bits)
                        };
                        assert_eq!(bits(&f), bits(&a), "{f:?} vs {a:?}");
                        checked += 1;
                    }
                    (f, a) => assert_eq!(f, a),
                }
            }
        }
        assert!(checked >= 36, "{checked}");
    }

    #[test]
    fn the_loaded_mean_ratio_is_the_two_pass_one_bit_for_bit() {
        // windows that grow, slide or start over, of values whose sums
        // round (magnitudes far apart, zeros of both signs)
        let mut r = Lcg(31);
        let mut mw = MannWhitney::new();
        let (mut x, mut y): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        let value = |r: &mut Lcg| match r.below(6) {
            0 => 0.0,
            1 => -0.0,
            2 => 1e12 * r.unit(),
            3 => -1e-3 * r.unit(),
            _ => r.unit() * 10.0 + 0.1,
        };
        for step in 0..500 {
            next_window(&mut r, (&mut x, &mut y), 10, 20, value);
            mw.load(&x, &y);
            let want = crate::stats::mean_ratio(&y, &x);
            let got = mw.mean_ratio_loaded(&y, &x);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "step {step}: {got} vs {want}"
            );
        }
        assert!(mw.reuse.reused > 300, "{}", mw.reuse.reused);
    }

    #[test]
    fn merge_pass_equals_reranking_with_ties() {
        let x = [1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 8.0];
        let y = [0.0, 1.0, 2.0, 2.0, 4.0, 7.0];
        for d in [-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 6.0] {
            let fast = wilcoxon_diff(d, 0.0, &x, &y).unwrap();
            let slow = z_by_reranking(&x, &y, d).unwrap();
            assert_eq!(fast, slow, "d = {d}");
        }
    }
    #[test]
    fn textbook_interval() {
        // MannWhitneySuite: x = (10, 20, 30, 40), y = (1, 2, 3, 4), 95%
        let r = mann_whitney(&[10.0, 20.0, 30.0, 40.0], &[1.0, 2.0, 3.0, 4.0], 0.95).unwrap();
        assert!((r.ci_lower - 6.0).abs() < 1e-6, "{r:?}");
        assert!((r.ci_upper - 39.0).abs() < 1e-6, "{r:?}");
        assert!((r.estimate - 22.5).abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn all_tied_is_an_error_not_a_panic() {
        assert_eq!(
            mann_whitney(&[1.0, 1.0], &[1.0, 1.0], 0.98),
            Err(MannWhitneyError::AllTied)
        );
        assert_eq!(
            mann_whitney(&[], &[1.0], 0.98),
            Err(MannWhitneyError::Empty)
        );
        assert_eq!(
            mann_whitney(&[1.0], &[2.0], 1.5),
            Err(MannWhitneyError::ConfidenceLevel(1.5))
        );
    }
}
