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

/// A reusable workspace: the two samples sorted once, and what the rank
/// statistic learns at each shift it is evaluated at. The simulator judges
/// millions of windows, so nothing here allocates after warm-up.
#[derive(Debug, Default, Clone)]
pub struct MannWhitney {
    /// Experiment, sorted.
    x: Vec<f64>,
    /// Control, sorted, then a +inf sentinel that ends every scan.
    y_padded: Vec<f64>,
    /// Sort keys (scratch).
    keys: Vec<i64>,
    /// What the rank statistic keeps between evaluations.
    scratch: Scratch,
}

/// The rank statistic's memory, kept in the workspace so that nothing is
/// allocated per interval after warm-up.
#[derive(Debug, Default, Clone)]
struct Scratch {
    /// Per-x counts at every shift evaluated so far.
    probes: Probes,
    /// The few pairs that decide the statistic inside a narrow bracket.
    pairs: PairBracket,
    /// The x's that tie a control value at the shift being counted.
    tied: Vec<usize>,
}

impl MannWhitney {
    /// A workspace with no samples loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sort `experiment` and `control` into the workspace.
    pub fn load(&mut self, experiment: &[f64], control: &[f64]) {
        sort_total(experiment, &mut self.keys, &mut self.x);
        sort_total(control, &mut self.keys, &mut self.y_padded);
        self.y_padded.push(f64::INFINITY);
    }

    /// The loaded experiment, sorted.
    pub fn experiment_sorted(&self) -> &[f64] {
        &self.x
    }

    /// The loaded control, sorted.
    pub fn control_sorted(&self) -> &[f64] {
        match self.y_padded.split_last() {
            Some((_, y)) => y,
            None => &[],
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
        if self.x.is_empty() || self.y_padded.len() < 2 {
            return Err(MannWhitneyError::Empty);
        }
        if !(conf_level > 0.0 && conf_level < 1.0) {
            return Err(MannWhitneyError::ConfidenceLevel(conf_level));
        }
        let (x, y_padded) = (&self.x, &self.y_padded);
        let y = &y_padded[..y_padded.len() - 1];
        let mu_min = x[0] - y[y.len() - 1];
        let mu_max = x[x.len() - 1] - y[0];
        let mut stat = RankStatistic::new(x, y_padded, &mut self.scratch);
        solve_interval(mu_min, mu_max, conf_level, |d| stat.z(d))
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

/// `f64::total_cmp`'s order as an integer: sorting these keys sorts the
/// values exactly as `sort_unstable_by(f64::total_cmp)` does, with cheaper
/// comparisons. The map is its own inverse.
fn total_key(bits: i64) -> i64 {
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// `values` sorted in `f64::total_cmp` order into `out`.
fn sort_total(values: &[f64], keys: &mut Vec<i64>, out: &mut Vec<f64>) {
    keys.clear();
    keys.extend(values.iter().map(|v| total_key(v.to_bits() as i64)));
    keys.sort_unstable();
    out.clear();
    out.extend(keys.iter().map(|&k| f64::from_bits(total_key(k) as u64)));
}

/// t^3 - t, a tie group's term in the variance.
fn tie_weight(t: i128) -> i128 {
    t * t * t - t
}

/// sum(t^3 - t) over the groups of equal values in `sorted`, and the
/// smallest positive gap between neighbours.
fn runs(sorted: &[f64]) -> (i128, f64) {
    let (mut ties, mut gap, mut run) = (0i128, f64::INFINITY, 1usize);
    for w in sorted.windows(2) {
        if w[1] == w[0] {
            run += 1;
            continue;
        }
        if run > 1 {
            ties += tie_weight(run as i128);
            run = 1;
        }
        let g = w[1] - w[0];
        if g > 0.0 && g < gap {
            gap = g;
        }
    }
    (ties + tie_weight(run as i128), gap)
}

/// One shift the statistic was evaluated at: per x, how many control
/// values lie below `x - d` (`lt`) and at or below it (`le`), kept in
/// [`Probes::counts`], and the statistic's inputs there.
#[derive(Debug, Clone, Copy)]
struct Probe {
    d: f64,
    /// Where this probe's `lt` and `le` counts start in the arena (the
    /// same place when no value of `x - d` ties a control value).
    lt_at: usize,
    le_at: usize,
    sum_lt: usize,
    sum_le: usize,
    twice_rank_sum: i64,
    ties: f64,
}

/// Every evaluated shift, sorted by shift. Counts only fall as the shift
/// grows, so the nearest probes on either side of a new shift bound each
/// x's counts there: most x's need no comparison at all, the others a
/// search between the two bounds.
#[derive(Debug, Default, Clone)]
struct Probes {
    list: Vec<Probe>,
    /// `[0, n)`: the counts at +inf (all 0); `[n, 2n)`: at -inf (all m);
    /// then n or 2n per probe.
    counts: Vec<usize>,
}

impl Probes {
    fn reset(&mut self, n: usize, m: usize) {
        self.list.clear();
        self.counts.clear();
        self.counts.resize(n, 0);
        self.counts.resize(2 * n, m);
    }

    /// Index of the first probe at or above `d`.
    fn position(&self, d: f64) -> usize {
        self.list.partition_point(|p| p.d < d)
    }

    /// For `d` not itself a probe (`k = position(d)`): where the `le`
    /// counts of the probe below start and their sum, and the same for the
    /// `lt` counts of the probe above (absent probes: -inf and +inf).
    fn bounds(&self, k: usize, n: usize, m: usize) -> Bounds {
        let below = k.checked_sub(1).and_then(|i| self.list.get(i));
        let above = self.list.get(k);
        Bounds {
            le_at: below.map_or(n, |p| p.le_at),
            le_sum: below.map_or(n * m, |p| p.sum_le),
            lo: below.map_or(f64::NEG_INFINITY, |p| p.d),
            lt_at: above.map_or(0, |p| p.lt_at),
            lt_sum: above.map_or(0, |p| p.sum_lt),
            hi: above.map_or(f64::INFINITY, |p| p.d),
        }
    }
}

/// What the probes around a shift say: see [`Probes::bounds`].
#[derive(Debug, Clone, Copy)]
struct Bounds {
    le_at: usize,
    le_sum: usize,
    lo: f64,
    lt_at: usize,
    lt_sum: usize,
    hi: f64,
}

/// A [`PairBracket`] is built when it holds at most one pair per this
/// many points of the two samples: building it and counting its pairs
/// costs more per pair than a probe pass costs per point, so it pays only
/// once the bracket is narrow (measured: 1 pair per 4 points beats 1 per
/// point, and 2 or 4 per point are far worse).
const POINTS_PER_PAIR: usize = 4;

/// Inside a narrow bracket between two probes only a few (experiment,
/// control) pairs can change order, and the statistic at any shift there
/// is the bracket's fixed part plus those pairs' comparisons: no pass over
/// the samples. Each answered shift splits the pairs by their order there;
/// the next shift falls on one side of it, and the other side's pairs are
/// then fixed, so the list shrinks as the root finder closes in.
#[derive(Debug, Default, Clone)]
struct PairBracket {
    valid: bool,
    /// The shifts the list is valid for, ends excluded.
    lo: f64,
    hi: f64,
    /// Twice the number of pairs with `y < x - d` throughout the bracket.
    base2: usize,
    /// (x, y) of the pairs; those in `start..end` may change order inside
    /// the bracket.
    pairs: Vec<(f64, f64)>,
    start: usize,
    end: usize,
    /// The last shift answered (without a tie), where the pairs with
    /// `y < x - d` there end (they were moved to the front of the live
    /// pairs), and twice the rank sum it gave.
    last: Option<(f64, usize, i64)>,
}

/// A count more than this far above its floor is galloped to, not
/// scanned (counts grow with x by about m / n per x, and the probes around
/// a shift usually leave only a few candidates).
const GALLOP: usize = 32;

/// How many of `y[lo..hi]` are below `v`, plus `lo`, when everything
/// before `lo` is below `v` and nothing from `hi` on is: gallop up from
/// `lo`, then binary search.
fn count_below(y: &[f64], v: f64, lo: usize, hi: usize) -> usize {
    let Some(seg) = y.get(lo..hi) else {
        return lo;
    };
    if seg.first().is_none_or(|&t| t >= v) {
        return lo;
    }
    // seg[a] < v throughout
    let mut a = 0;
    let mut step = 1;
    loop {
        let probe = a + step;
        if probe >= seg.len() {
            return lo + a + 1 + seg[a + 1..].partition_point(|&t| t < v);
        }
        if seg[probe] >= v {
            return lo + a + 1 + seg[a + 1..probe].partition_point(|&t| t < v);
        }
        a = probe;
        step *= 2;
    }
}

/// The standardized, continuity-corrected rank-sum statistic of sorted `x`
/// shifted by `d` against sorted `y`.
///
/// For `v = x_i - d` (rounded, as Kayenta computes it) let `lt_i` count the
/// control values below `v` and `le_i` those at or below it. Then twice the
/// x rank sum with average ranks for ties is exactly
/// `n (n + 1) + sum(lt_i + le_i)`, whatever the ties: only the tie term
/// needs the groups themselves.
struct RankStatistic<'a> {
    x: &'a [f64],
    y: &'a [f64],
    /// `y` and a +inf sentinel.
    y_padded: &'a [f64],
    probes: &'a mut Probes,
    pairs: &'a mut PairBracket,
    n: f64,
    m: f64,
    /// 2 * (n (n + 1) / 2 + n m / 2), to turn twice the rank sum into 2 dz.
    twice_offset: i64,
    /// n (n + 1).
    twice_min_rank_sum: i64,
    /// sum(t^3 - t) over tie groups inside x and inside y: these groups
    /// stay tied at any shift, so when no new tie forms at `d` this is the
    /// whole tie term.
    own_ties: f64,
    /// The same inside x alone and inside y alone.
    own_x_ties: i128,
    own_y_ties: i128,
    /// Scratch: the x's tying a control value at the shift being counted.
    tied: &'a mut Vec<usize>,
    /// Smallest gap between distinct x values, and the largest |x|: below
    /// `4 eps (max|x| + |d|)` rounding could merge two x values at shift d.
    min_gap: f64,
    max_abs_x: f64,
}

impl<'a> RankStatistic<'a> {
    fn new(x: &'a [f64], y_padded: &'a [f64], scratch: &'a mut Scratch) -> Self {
        let Scratch {
            probes,
            pairs,
            tied,
        } = scratch;
        let y = &y_padded[..y_padded.len() - 1];
        let (n, m) = (x.len() as i64, y.len() as i64);
        probes.reset(x.len(), y.len());
        pairs.valid = false;
        pairs.last = None;
        let (x_ties, min_gap) = runs(x);
        let (y_ties, _) = runs(y);
        Self {
            x,
            y,
            y_padded,
            probes,
            pairs,
            n: n as f64,
            m: m as f64,
            twice_offset: n * (n + 1) + n * m,
            twice_min_rank_sum: n * (n + 1),
            // exact: Kayenta sums the same integers in f64
            own_ties: (x_ties + y_ties) as f64,
            own_x_ties: x_ties,
            own_y_ties: y_ties,
            tied,
            min_gap,
            max_abs_x: x[0].abs().max(x[x.len() - 1].abs()),
        }
    }

    /// Twice the x rank sum (average ranks for ties; an integer) and the
    /// tie term sum(t^3 - t).
    fn ranks(&mut self, d: f64) -> (i64, f64) {
        let (n, m) = (self.x.len(), self.y.len());
        // Subtracting d could round two distinct x values onto one only if
        // they are within a few ulps of each other at this magnitude; then
        // the x groups must be recomputed, which the pair list cannot do.
        let rounding_may_merge = self.min_gap <= 4.0 * f64::EPSILON * (self.max_abs_x + d.abs());
        let in_pairs = self.pairs.valid && d > self.pairs.lo && d < self.pairs.hi;
        if !rounding_may_merge
            && in_pairs
            && let Some(r) = self.ranks_from_pairs(d)
        {
            return r;
        }
        let k = self.probes.position(d);
        if let Some(p) = self.probes.list.get(k)
            && p.d == d
        {
            return (p.twice_rank_sum, p.ties);
        }
        let bounds = self.probes.bounds(k, n, m);
        if !rounding_may_merge
            && !in_pairs
            && POINTS_PER_PAIR * (bounds.le_sum - bounds.lt_sum) <= n + m
        {
            self.build_pairs(&bounds);
            if let Some(r) = self.ranks_from_pairs(d) {
                return r;
            }
        }
        self.ranks_from_probes(d, k, &bounds, rounding_may_merge)
    }

    /// The statistic from the pair list, for `d` inside its bracket, when
    /// `d` forms no new tie; `None` otherwise.
    fn ranks_from_pairs(&mut self, d: f64) -> Option<(i64, f64)> {
        let b = &mut *self.pairs;
        if let Some((last, split, twice_rank_sum)) = b.last.take() {
            if d == last {
                b.last = Some((last, split, twice_rank_sum));
                return Some((twice_rank_sum, self.own_ties));
            }
            if d < last {
                // below `last` the pairs below there stay below
                b.base2 += 2 * (split - b.start);
                b.start = split;
                b.hi = last;
            } else {
                b.end = split;
                b.lo = last;
            }
        }
        // Move the pairs with y < x - d to the front (Lomuto without
        // branches: a swap of two pairs that are not below is harmless).
        let live = &mut b.pairs[b.start..b.end];
        let (mut below, mut tie) = (0usize, false);
        for k in 0..live.len() {
            let (x, y) = live[k];
            let v = x - d;
            live.swap(below, k);
            below += usize::from(y < v);
            tie |= y == v;
        }
        if tie {
            return None;
        }
        let twice_rank_sum = self.twice_min_rank_sum + (b.base2 + 2 * below) as i64;
        b.last = Some((d, b.start + below, twice_rank_sum));
        Some((twice_rank_sum, self.own_ties))
    }

    /// Make the pair list for the probes around a shift.
    fn build_pairs(&mut self, bounds: &Bounds) {
        let (n, x, y) = (self.x.len(), self.x, self.y);
        let counts = &self.probes.counts;
        let b = &mut *self.pairs;
        b.pairs.clear();
        b.pairs.reserve(bounds.le_sum - bounds.lt_sum);
        let lt_above = &counts[bounds.lt_at..bounds.lt_at + n];
        let le_below = &counts[bounds.le_at..bounds.le_at + n];
        for ((&xi, &lo), &hi) in x.iter().zip(lt_above).zip(le_below) {
            if lo < hi {
                b.pairs.extend(y[lo..hi].iter().map(|&t| (xi, t)));
            }
        }
        b.base2 = 2 * bounds.lt_sum;
        b.start = 0;
        b.end = b.pairs.len();
        b.lo = bounds.lo;
        b.hi = bounds.hi;
        b.last = None;
        b.valid = true;
    }

    /// The statistic from per-x counts bounded by the probes around `d`
    /// (`k` and `bounds` from [`Probes::position`] and [`Probes::bounds`]),
    /// and a new probe at `d`.
    fn ranks_from_probes(
        &mut self,
        d: f64,
        k: usize,
        bounds: &Bounds,
        rounding_may_merge: bool,
    ) -> (i64, f64) {
        let (x, y, yp, n, m) = (self.x, self.y, self.y_padded, self.x.len(), self.y.len());
        let probes = &mut *self.probes;
        let lt_at = probes.counts.len();
        probes.counts.resize(lt_at + n, 0);
        let (old, lt_new) = probes.counts.split_at_mut(lt_at);
        let lt_above = &old[bounds.lt_at..bounds.lt_at + n];
        let le_below = &old[bounds.le_at..bounds.le_at + n];

        let mut sum_lt = 0usize;
        let tied = &mut self.tied;
        tied.clear();
        // Counts also grow with x: the previous x's count is a floor.
        let mut floor = 0usize;
        for (i, (((&xi, &lo), &hi), out)) in
            x.iter().zip(lt_above).zip(le_below).zip(lt_new).enumerate()
        {
            let mut lt = lo.max(floor);
            if lt < hi {
                let v = xi - d;
                if hi - lt > GALLOP && yp[lt + GALLOP] < v {
                    lt = count_below(yp, v, lt + GALLOP + 1, hi);
                }
                // y[hi] (or the sentinel) is not below v: the scan stops
                let mut t = yp[lt];
                while t < v {
                    lt += 1;
                    t = yp[lt];
                }
                // t >= v here, so this is t == v: a new tie (or the
                // sentinel, when v is +inf; the tie count then finds none)
                if t <= v {
                    tied.push(i);
                }
            }
            *out = lt;
            sum_lt += lt;
            floor = lt;
        }
        let (le_at, sum_le, ties) = if tied.is_empty() && !rounding_may_merge {
            (lt_at, sum_lt, self.own_ties)
        } else {
            // The rare case: count the ties, to store `le` too and for the
            // tie term.
            let le_at = lt_at + n;
            probes.counts.extend_from_within(lt_at..le_at);
            let (lt_new, le_new) = probes.counts[lt_at..].split_at_mut(n);
            let mut sum_le = sum_lt;
            for &i in tied.iter() {
                let v = x[i] - d;
                let mut le = lt_new[i];
                while le < m && y[le] == v {
                    le += 1;
                }
                sum_le += le - lt_new[i];
                le_new[i] = le;
            }
            let ties = if rounding_may_merge {
                // Group equal values of x - d; a group of gx such values
                // tying eq control values replaces that control group's
                // term.
                let mut ties = self.own_y_ties;
                let mut i = 0;
                while i < n {
                    let v = x[i] - d;
                    let eq = le_new[i] - lt_new[i];
                    let mut e = i + 1;
                    while e < n && x[e] - d == v {
                        e += 1;
                    }
                    let t = e - i + eq;
                    if t > 1 {
                        ties += tie_weight(t as i128) - tie_weight(eq as i128);
                    }
                    i = e;
                }
                ties
            } else {
                // x - d keeps x's groups: only the groups that now tie eq
                // control values change, from f(gx) + f(eq) to f(gx + eq).
                let mut ties = self.own_x_ties + self.own_y_ties;
                let mut done = 0;
                for &i in tied.iter() {
                    if i < done {
                        continue;
                    }
                    let (mut s, mut e) = (i, i + 1);
                    while s > 0 && x[s - 1] == x[i] {
                        s -= 1;
                    }
                    while e < n && x[e] == x[i] {
                        e += 1;
                    }
                    let (gx, eq) = ((e - s) as i128, (le_new[i] - lt_new[i]) as i128);
                    ties += tie_weight(gx + eq) - tie_weight(gx) - tie_weight(eq);
                    done = e;
                }
                ties
            };
            (le_at, sum_le, ties as f64)
        };
        let twice_rank_sum = self.twice_min_rank_sum + (sum_lt + sum_le) as i64;
        probes.list.insert(
            k,
            Probe {
                d,
                lt_at,
                le_at,
                sum_lt,
                sum_le,
                twice_rank_sum,
                ties,
            },
        );
        (twice_rank_sum, ties)
    }

    /// Kayenta's `wilcoxonDiff(d, 0)`: (dz - sign(dz)/2) / sigma.
    fn z(&mut self, d: f64) -> Result<f64, MannWhitneyError> {
        let (twice_rank_sum, ties) = self.ranks(d);
        z_from_ranks(twice_rank_sum - self.twice_offset, ties, self.n, self.m)
    }
}

/// Kayenta's statistic from twice dz (an integer) and the tie term.
fn z_from_ranks(twice_dz: i64, ties: f64, n: f64, m: f64) -> Result<f64, MannWhitneyError> {
    // Half-integers are exact in f64, so this equals Kayenta's sum of
    // average ranks minus its offsets bit for bit.
    let dz = twice_dz as f64 / 2.0;
    let correction = 0.5 * (twice_dz.signum() as f64);
    let sigma = ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt();
    if sigma == 0.0 {
        return Err(MannWhitneyError::AllTied);
    }
    Ok((dz - correction) / sigma)
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
    Ok(RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch).z(mu)? - zq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The textbook statistic by full re-ranking, as Kayenta computes it.
    fn z_by_reranking(x: &[f64], y: &[f64], d: f64) -> Result<f64, MannWhitneyError> {
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
        if sigma == 0.0 {
            return Err(MannWhitneyError::AllTied);
        }
        Ok((dz - c) / sigma)
    }

    /// Twice the x rank sum and the tie term by one merge that groups equal
    /// values of `x - d` and `y` (sorted inputs).
    fn ranks_by_merge(x: &[f64], y: &[f64], d: f64) -> (i64, f64) {
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
            twice_rank_sum += in_x * (2 * next_rank + t - 1);
            if t > 1 {
                let tf = t as f64;
                ties += tf * tf * tf - tf;
            }
            next_rank += t;
        }
        (twice_rank_sum, ties)
    }

    /// A small deterministic generator for test data.
    struct Lcg(u64);

    impl Lcg {
        fn unit(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn below(&mut self, k: usize) -> usize {
            ((self.unit() * k as f64) as usize).min(k - 1)
        }
    }

    /// (experiment, control) pairs covering continuous data at two scales,
    /// heavy ties, a grid where shifts form new ties, x values so close
    /// that subtracting a shift can merge them, signed zeros, large
    /// magnitudes and tiny samples.
    fn datasets() -> Vec<(Vec<f64>, Vec<f64>)> {
        let mut r = Lcg(7);
        let mut gen_ = |n: usize, f: &mut dyn FnMut(&mut Lcg) -> f64| -> Vec<f64> {
            (0..n).map(|_| f(&mut r)).collect()
        };
        let lognormal = |r: &mut Lcg| (0.3 * (r.unit() - 0.5) * 6.0).exp() * 100.0;
        let mut sets = vec![
            (
                gen_(60, &mut |r| lognormal(r) * 1.05),
                gen_(60, &mut |r| lognormal(r)),
            ),
            (
                gen_(60, &mut |r| lognormal(r) * 0.00105),
                gen_(60, &mut |r| lognormal(r) * 0.001),
            ),
            (
                gen_(45, &mut |r| r.below(8) as f64),
                gen_(50, &mut |r| r.below(10) as f64),
            ),
            (
                gen_(30, &mut |r| (r.below(40) as f64) * 0.1),
                gen_(33, &mut |r| (r.below(40) as f64) * 0.1 + 0.3),
            ),
            (
                gen_(20, &mut |r| 1.0 + f64::EPSILON * r.below(4) as f64),
                gen_(20, &mut |r| 1.0 + f64::EPSILON * r.below(6) as f64),
            ),
            (
                gen_(25, &mut |r| 1e9 + r.below(1000) as f64 * 1e-6),
                gen_(25, &mut |r| 1e9 + r.below(1000) as f64 * 1e-6),
            ),
            (vec![-0.0, 0.0, 0.0, 1.0, -1.0], vec![0.0, -0.0, 2.0, -2.0]),
            (vec![3.0], vec![1.0, 2.0, 3.0, 4.0]),
            (vec![1.0, 5.0, 9.0], vec![2.0]),
            (vec![1.5], vec![0.5]),
        ];
        sets.push((
            gen_(180, &mut |r| lognormal(r)),
            gen_(170, &mut |r| lognormal(r) * 0.97),
        ));
        sets
    }

    /// Shifts to probe: every pairwise difference (where new ties form),
    /// its neighbours, midpoints and random points, in random order.
    fn shifts(x: &[f64], y: &[f64], r: &mut Lcg) -> Vec<f64> {
        let mut out = Vec::new();
        for &a in x.iter().step_by((x.len() / 12).max(1)) {
            for &b in y.iter().step_by((y.len() / 12).max(1)) {
                let d = a - b;
                out.extend([d, d.next_up(), d.next_down(), d + 1e-3 * (r.unit() - 0.5)]);
            }
        }
        for k in (1..out.len()).rev() {
            out.swap(k, r.below(k + 1));
        }
        out.truncate(400);
        out
    }

    #[test]
    fn ranks_equal_the_merge_in_random_order() {
        let mut r = Lcg(11);
        for (x, y) in datasets() {
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
            for d in shifts(stat.x, stat.y, &mut r) {
                assert_eq!(
                    stat.ranks(d),
                    ranks_by_merge(stat.x, stat.y, d),
                    "d = {d:e}, x {x:?} y {y:?}"
                );
            }
        }
    }

    #[test]
    fn ranks_equal_the_merge_while_a_bracket_narrows() {
        // Shifts as a root finder makes them: each inside the bracket left
        // by the previous ones, so the pair list is built and narrowed.
        let mut r = Lcg(12);
        let mut from_pairs = 0;
        for (x, y) in datasets() {
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let m = mw.y_padded.len() - 1;
            let (lo0, hi0) = (
                mw.x[0] - mw.y_padded[m - 1],
                mw.x[mw.x.len() - 1] - mw.y_padded[0],
            );
            let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
            for _run in 0..6 {
                let (mut lo, mut hi) = (lo0, hi0);
                for _step in 0..40 {
                    let d = lo + (hi - lo) * r.unit();
                    let want = ranks_by_merge(stat.x, stat.y, d);
                    assert_eq!(stat.ranks(d), want, "d = {d:e}");
                    if stat.pairs.last.is_some_and(|last| last.0 == d) {
                        from_pairs += 1;
                    }
                    if r.unit() < 0.5 {
                        lo = d;
                    } else {
                        hi = d;
                    }
                }
            }
        }
        assert!(from_pairs > 500, "pair list used {from_pairs} times");
    }

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
    fn sorting_by_key_is_total_cmp_order() {
        let v = [
            3.0,
            -0.0,
            0.0,
            f64::INFINITY,
            -1.5,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 4.0,
            -f64::MIN_POSITIVE / 4.0,
            0.0,
            -0.0,
            2.5e300,
            -7.0,
        ];
        let mut want = v.to_vec();
        want.sort_unstable_by(f64::total_cmp);
        let (mut keys, mut got) = (Vec::new(), Vec::new());
        sort_total(&v, &mut keys, &mut got);
        assert_eq!(got.map_bits(), want.map_bits());
    }

    trait Bits {
        fn map_bits(&self) -> Vec<u64>;
    }

    impl Bits for Vec<f64> {
        fn map_bits(&self) -> Vec<u64> {
            self.iter().map(|v| v.to_bits()).collect()
        }
    }

    #[test]
    fn count_below_between_bounds() {
        let y = [1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 8.0, 9.0];
        for v in [0.5, 1.0, 2.0, 2.5, 5.0, 8.0, 8.5, 9.5] {
            let want = y.iter().filter(|&&t| t < v).count();
            let ceiling = y.iter().filter(|&&t| t <= v).count();
            for lo in 0..=want {
                for hi in want.max(ceiling.min(y.len()))..=y.len() {
                    if y[..hi].iter().filter(|&&t| t < v).count() != want {
                        continue;
                    }
                    assert_eq!(count_below(&y, v, lo, hi), want, "v {v} lo {lo} hi {hi}");
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
