//! The Mann-Whitney (Wilcoxon rank-sum) confidence interval for a location
//! shift, computed the way Kayenta's `kayenta-mannwhitney` computes it: R's
//! `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)` normal
//! approximation, inverted with R's `zeroin` Brent root finder (tol 1e-4),
//! with Kayenta's location estimate (which, unlike R's, keeps the continuity
//! correction).
//!
//! What is different from Kayenta is only the cost: Kayenta re-ranks the
//! pooled sample at every root-finder step (O((n+m) log(n+m))); here both
//! samples are sorted once and each evaluation of the rank statistic is one
//! merge pass (O(n+m)) with exact integer rank sums. Every floating-point
//! operation that reaches the result is done in Kayenta's order, so the
//! root finder takes the same steps and returns the same numbers.
//!
//! Not for: exact (permutation) p-values or one-sided tests.

use crate::stats::{pnorm, qnorm};

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

/// A reusable workspace: the two samples sorted once, and the per-x counts
/// the rank statistic keeps between evaluations. The simulator judges
/// millions of windows, so nothing here allocates after warm-up.
#[derive(Debug, Default, Clone)]
pub struct MannWhitney {
    /// Experiment, sorted.
    x: Vec<f64>,
    /// Control, sorted, between a -inf and a +inf sentinel.
    y_padded: Vec<f64>,
    /// Per x, the count of control values below `x - d` at the last `d`.
    counts: Vec<usize>,
}

impl MannWhitney {
    /// A workspace with no samples loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sort `experiment` and `control` into the workspace.
    pub fn load(&mut self, experiment: &[f64], control: &[f64]) {
        self.x.clear();
        self.x.extend_from_slice(experiment);
        self.x.sort_unstable_by(f64::total_cmp);
        self.y_padded.clear();
        self.y_padded.push(f64::NEG_INFINITY);
        self.y_padded.extend_from_slice(control);
        self.y_padded[1..].sort_unstable_by(f64::total_cmp);
        self.y_padded.push(f64::INFINITY);
    }

    /// The loaded experiment, sorted.
    pub fn experiment_sorted(&self) -> &[f64] {
        &self.x
    }

    /// The loaded control, sorted.
    pub fn control_sorted(&self) -> &[f64] {
        match self.y_padded.len() {
            0 | 1 => &[],
            len => &self.y_padded[1..len - 1],
        }
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

    /// [`MannWhitney::interval`] for the samples already loaded.
    pub fn interval_loaded(
        &mut self,
        conf_level: f64,
    ) -> Result<MannWhitneyResult, MannWhitneyError> {
        if self.x.is_empty() || self.y_padded.len() < 3 {
            return Err(MannWhitneyError::Empty);
        }
        if !(conf_level > 0.0 && conf_level < 1.0) {
            return Err(MannWhitneyError::ConfidenceLevel(conf_level));
        }
        let mut stat = RankStatistic::new(&self.x, &self.y_padded, &mut self.counts);
        let y = &self.y_padded[1..self.y_padded.len() - 1];
        let mu_min = self.x[0] - y[y.len() - 1];
        let mu_max = self.x[self.x.len() - 1] - y[0];
        let g_min = stat.z(mu_min)?;
        let g_max = stat.z(mu_max)?;

        let alpha = 1.0 - conf_level;
        let z_quant = qnorm(alpha / 2.0);
        let find_root = |stat: &mut RankStatistic<'_>, zq: f64| -> Result<f64, MannWhitneyError> {
            let f_lower = g_min - zq;
            let f_upper = g_max - zq;
            if f_lower <= 0.0 {
                Ok(mu_min)
            } else if f_upper >= 0.0 {
                Ok(mu_max)
            } else {
                zeroin(mu_min, mu_max, f_lower, f_upper, |d| Ok(stat.z(d)? - zq))
            }
        };
        let ci_lower = find_root(&mut stat, -z_quant)?;
        let ci_upper = find_root(&mut stat, z_quant)?;
        // Kayenta solves for the estimate without checking the endpoints.
        let estimate = zeroin(mu_min, mu_max, g_min, g_max, |d| stat.z(d))?;

        let z0 = stat.z(0.0)?;
        let p_value = (2.0 * pnorm(-z0.abs())).min(1.0);
        Ok(MannWhitneyResult {
            ci_lower,
            ci_upper,
            estimate,
            p_value,
        })
    }
}

/// Convenience wrapper: one interval with a fresh workspace.
pub fn mann_whitney(
    experiment: &[f64],
    control: &[f64],
    conf_level: f64,
) -> Result<MannWhitneyResult, MannWhitneyError> {
    MannWhitney::new().interval(experiment, control, conf_level)
}

/// The standardized, continuity-corrected rank-sum statistic of sorted `x`
/// shifted by `d` against sorted `y`.
struct RankStatistic<'a> {
    x: &'a [f64],
    /// Sorted control between -inf and +inf sentinels.
    y_padded: &'a [f64],
    /// Sorted control.
    y: &'a [f64],
    counts: &'a mut Vec<usize>,
    n: f64,
    m: f64,
    /// 2 * (n (n + 1) / 2 + n m / 2), to turn twice the rank sum into 2 dz.
    twice_offset: i64,
    /// sum(t^3 - t) over tie groups inside x and inside y: these groups
    /// stay tied at any shift, so when no new tie forms at `d` this is the
    /// whole tie term.
    own_ties: f64,
    /// Smallest gap between distinct x values, and the largest |x|: below
    /// `4 eps (max|x| + |d|)` rounding could merge two x values at shift d.
    min_gap: f64,
    max_abs_x: f64,
    /// The shift the counts were last computed for, and the bracket width.
    last_d: f64,
    span: f64,
}

/// How many of sorted `y` are below `v`, knowing the answer is at least
/// `floor` and probably near `hint`: exponential search from the hint,
/// then binary search.
fn count_below(y: &[f64], v: f64, floor: usize, hint: usize) -> usize {
    let m = y.len();
    let hint = hint.clamp(floor, m);
    if hint > floor && y[hint - 1] >= v {
        // the answer is in [floor, hint - 1]; y[hi] >= v throughout
        let mut hi = hint - 1;
        let mut step = 1;
        loop {
            if hi == floor {
                return floor;
            }
            let probe = hi.saturating_sub(step).max(floor);
            if y[probe] < v {
                return probe + 1 + y[probe + 1..hi].partition_point(|&t| t < v);
            }
            hi = probe;
            step *= 2;
        }
    }
    // the answer is at least `hint`; y[lo - 1] < v throughout
    let mut lo = hint;
    let mut step = 1;
    while lo < m && y[lo] < v {
        let probe = (lo + step).min(m);
        if probe == m || y[probe] >= v {
            return lo + 1 + y[lo + 1..probe].partition_point(|&t| t < v);
        }
        lo = probe;
        step *= 2;
    }
    lo
}

/// Tie term sum(t^3 - t) of a sorted slice.
fn tie_term(sorted: &[f64]) -> f64 {
    let mut ties = 0.0;
    let mut k = 0;
    while k < sorted.len() {
        let mut e = k + 1;
        while e < sorted.len() && sorted[e] == sorted[k] {
            e += 1;
        }
        let t = (e - k) as f64;
        if e - k > 1 {
            ties += t * t * t - t;
        }
        k = e;
    }
    ties
}

impl<'a> RankStatistic<'a> {
    fn new(x: &'a [f64], y_padded: &'a [f64], counts: &'a mut Vec<usize>) -> Self {
        let y = &y_padded[1..y_padded.len() - 1];
        let (n, m) = (x.len() as i64, y.len() as i64);
        counts.clear();
        counts.resize(x.len(), 0);
        let min_gap = x
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&g| g > 0.0)
            .fold(f64::INFINITY, f64::min);
        Self {
            x,
            y_padded,
            y,
            counts,
            n: n as f64,
            m: m as f64,
            twice_offset: n * (n + 1) + n * m,
            own_ties: tie_term(x) + tie_term(y),
            min_gap,
            max_abs_x: x[0].abs().max(x[x.len() - 1].abs()),
            last_d: f64::INFINITY,
            span: (x[x.len() - 1] - y[0]) - (x[0] - y[y.len() - 1]),
        }
    }

    /// Twice the x rank sum and the tie term, when no value of `x - d`
    /// ties a value of `y`: then the x rank sum is n(n+1)/2 plus, per x,
    /// the count of smaller y. `None` when a new tie formed.
    ///
    /// The counts are kept between calls: the root finder's steps shrink,
    /// so a count usually stays put (two comparisons against the padded
    /// control confirm it), and otherwise is found by galloping from its
    /// last value. A call costs about 2n comparisons, not n + m.
    fn ranks_without_new_ties(&mut self, d: f64) -> Option<(i64, f64)> {
        let (x, y, yp) = (self.x, self.y, self.y_padded);
        let mut below: usize = 0;
        let mut new_tie = false;
        let mut floor = 0usize;
        // After a long jump most counts change: one merge-like sweep (each
        // count starts from the previous one) beats searching per x.
        let sweep = (d - self.last_d).abs() * (x.len() + y.len()) as f64 > self.span;
        self.last_d = d;
        if sweep {
            for (&xi, count) in x.iter().zip(self.counts.iter_mut()) {
                let v = xi - d;
                let mut p = floor;
                while yp[p + 1] < v {
                    p += 1;
                }
                *count = p;
                floor = p;
                below += p;
                new_tie |= yp[p + 1] == v;
            }
        } else {
            for (&xi, count) in x.iter().zip(self.counts.iter_mut()) {
                let v = xi - d;
                let mut p = *count;
                // yp[p] is y[p - 1], yp[p + 1] is y[p]
                let around = &yp[p..p + 2];
                if !(around[0] < v && v < around[1]) {
                    p = count_below(y, v, floor, p);
                    *count = p;
                    new_tie |= yp[p + 1] == v;
                }
                floor = p;
                below += p;
            }
        }
        if new_tie {
            return None;
        }
        let n = x.len() as i64;
        Some((n * (n + 1) + 2 * below as i64, self.own_ties))
    }

    /// Twice the x rank sum (average ranks for ties; an integer) and the
    /// tie term sum(t^3 - t).
    fn ranks(&mut self, d: f64) -> (i64, f64) {
        // Subtracting d could round two distinct x values onto one only if
        // they are within a few ulps of each other at this magnitude.
        let rounding_may_merge = self.min_gap <= 4.0 * f64::EPSILON * (self.max_abs_x + d.abs());
        if !rounding_may_merge && let Some(r) = self.ranks_without_new_ties(d) {
            return r;
        }
        self.ranks_with_ties(d)
    }

    /// The general merge: groups equal values of `x - d` and `y`.
    fn ranks_with_ties(&self, d: f64) -> (i64, f64) {
        let (x, y) = (self.x, self.y);
        let (mut i, mut j) = (0usize, 0usize);
        let mut next_rank: i64 = 1;
        let mut twice_rank_sum: i64 = 0;
        let mut ties = 0.0;
        while i < x.len() || j < y.len() {
            let v = if j >= y.len() || (i < x.len() && x[i] - d <= y[j]) {
                x[i] - d
            } else {
                y[j]
            };
            let start_i = i;
            while i < x.len() && x[i] - d == v {
                i += 1;
            }
            let start_j = j;
            while j < y.len() && y[j] == v {
                j += 1;
            }
            let in_x = (i - start_i) as i64;
            let t = in_x + (j - start_j) as i64;
            // average rank of the group is next_rank + (t - 1) / 2
            twice_rank_sum += in_x * (2 * next_rank + t - 1);
            if t > 1 {
                let tf = t as f64;
                ties += tf * tf * tf - tf;
            }
            next_rank += t;
        }
        (twice_rank_sum, ties)
    }

    /// Kayenta's `wilcoxonDiff(d, 0)`: (dz - sign(dz)/2) / sigma.
    fn z(&mut self, d: f64) -> Result<f64, MannWhitneyError> {
        let (twice_rank_sum, ties) = self.ranks(d);
        let twice_dz = twice_rank_sum - self.twice_offset;
        // Half-integers are exact in f64, so this equals Kayenta's sum of
        // average ranks minus its offsets bit for bit.
        let dz = twice_dz as f64 / 2.0;
        let correction = 0.5 * (twice_dz.signum() as f64);
        let (n, m) = (self.n, self.m);
        let sigma = ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt();
        if sigma == 0.0 {
            return Err(MannWhitneyError::AllTied);
        }
        Ok((dz - correction) / sigma)
    }
}

/// R's `zeroin` (Brent 1973) as Kayenta's `KayentaBrentSolver.brentDirect`
/// runs it: tolerance 1e-4, at most 1001 iterations, and the caller's
/// function values at both ends.
fn zeroin(
    ax: f64,
    bx: f64,
    fa: f64,
    fb: f64,
    mut f: impl FnMut(f64) -> Result<f64, MannWhitneyError>,
) -> Result<f64, MannWhitneyError> {
    const TOL: f64 = 1e-4;
    const EPSILON: f64 = 2.220446049250313e-16;
    let (mut a, mut b, mut fa, mut fb) = (ax, bx, fa, fb);
    let (mut c, mut fc) = (a, fa);
    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }
    for _ in 0..1001 {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            // make b the best approximation so far
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * EPSILON * b.abs() + TOL / 2.0;
        let mut new_step = (c - b) / 2.0;
        // Kayenta's Precision.equals(fb, 0): equal within one ulp, i.e. zero.
        if new_step.abs() <= tol_act || fb == 0.0 {
            return Ok(b);
        }
        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            let cb = c - b;
            let (mut p, mut q);
            if a == c {
                // two distinct points: linear interpolation
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                // inverse quadratic interpolation
                let qa = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * qa * (qa - t1) - (b - a) * (t1 - 1.0));
                q = (qa - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < (0.75 * cb * q - (tol_act * q).abs() / 2.0) && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }
        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b)?;
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    Ok(b)
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
    Ok(RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.counts).z(mu)? - zq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The textbook statistic by full re-ranking, as Kayenta computes it.
    fn z_by_reranking(x: &[f64], y: &[f64], d: f64) -> f64 {
        let pooled: Vec<f64> = x.iter().map(|v| v - d).chain(y.iter().copied()).collect();
        let mut idx: Vec<usize> = (0..pooled.len()).collect();
        idx.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
        let mut ranks = vec![0.0; pooled.len()];
        let mut ties = 0.0;
        let mut k = 0;
        while k < idx.len() {
            let mut e = k;
            while e + 1 < idx.len() && pooled[idx[e + 1]] == pooled[idx[k]] {
                e += 1;
            }
            let avg = (k + e) as f64 / 2.0 + 1.0;
            for &i in &idx[k..=e] {
                ranks[i] = avg;
            }
            let t = (e - k + 1) as f64;
            ties += t * t * t - t;
            k = e + 1;
        }
        let (n, m) = (x.len() as f64, y.len() as f64);
        let dz: f64 = ranks[..x.len()].iter().sum::<f64>() - n * (n + 1.0) / 2.0 - n * m / 2.0;
        let c = if dz == 0.0 { 0.0 } else { dz.signum() * 0.5 };
        let sigma = ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt();
        (dz - c) / sigma
    }

    #[test]
    fn merge_pass_equals_reranking_with_ties() {
        let x = [1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 8.0];
        let y = [0.0, 1.0, 2.0, 2.0, 4.0, 7.0];
        for d in [-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 6.0] {
            let fast = wilcoxon_diff(d, 0.0, &x, &y).unwrap();
            let slow = z_by_reranking(&x, &y, d);
            assert_eq!(fast, slow, "d = {d}");
        }
    }

    #[test]
    fn fast_path_equals_general_merge() {
        let x = [0.1, 0.7, 0.7, 1.3, 2.9, 4.4];
        let y = [0.0, 0.5, 0.5, 1.0, 3.3];
        let mut mw = MannWhitney::new();
        mw.load(&x, &y);
        let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.counts);
        let mut fast_used = 0;
        for k in -60..60 {
            let d = k as f64 * 0.1;
            if let Some(fast) = stat.ranks_without_new_ties(d) {
                assert_eq!(fast, stat.ranks_with_ties(d), "d = {d}");
                fast_used += 1;
            }
        }
        assert!(fast_used > 50);
        // the same shifts in a scrambled order exercise the warm counts
        for k in (-60..60).rev().step_by(7).chain((-60..60).step_by(5)) {
            let d = k as f64 * 0.1 + 0.05;
            if let Some(fast) = stat.ranks_without_new_ties(d) {
                assert_eq!(fast, stat.ranks_with_ties(d), "d = {d}");
            }
        }
        // a new tie (x - d == y) must not take the fast path
        assert!(stat.ranks_without_new_ties(0.1).is_none());
    }

    #[test]
    fn count_below_from_any_hint() {
        let y = [1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 8.0, 9.0];
        for v in [0.5, 1.0, 2.0, 2.5, 5.0, 8.0, 8.5, 9.5] {
            let want = y.iter().filter(|&&t| t < v).count();
            for floor in 0..=want {
                for hint in 0..=y.len() + 1 {
                    assert_eq!(
                        count_below(&y, v, floor, hint),
                        want,
                        "v {v} floor {floor} hint {hint}"
                    );
                }
            }
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
