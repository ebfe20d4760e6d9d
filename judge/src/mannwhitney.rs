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
}

/// What [`runs`] says about a sorted sample.
#[derive(Debug, Clone, Copy)]
struct Summary {
    /// sum(t^3 - t) over the groups of equal values.
    ties: i128,
    /// The smallest positive gap between neighbours.
    gap: f64,
    /// The largest group.
    longest: usize,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            ties: 0,
            gap: f64::INFINITY,
            longest: 1,
        }
    }
}

/// How [`sort_reusing`] sorted a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sorted {
    /// Anew.
    Fresh,
    /// The previous sample with values appended (perhaps none), which are
    /// left sorted in [`Reuse::part`].
    Grown,
    /// The previous sample with values dropped from the front.
    Slid,
}

/// What [`MannWhitney::load`] keeps to extend the next load's sorted
/// samples instead of sorting them again.
#[derive(Debug, Default, Clone)]
struct Reuse {
    /// The last experiment and control loaded, in the caller's order.
    x: Vec<f64>,
    y: Vec<f64>,
    /// Scratch: the values dropped or added, sorted; a merge's output;
    /// the experiment's added values, sorted.
    part: Vec<f64>,
    merged: Vec<f64>,
    part_x: Vec<f64>,
    /// Loads that reused the previous sort (for the benchmarks).
    reused: u64,
}

/// How many [`MannWhitney::band_loaded`] questions were decided from the
/// statistic at a few shifts, and how many needed the full interval.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BandCounts {
    /// Decided without the root finder.
    pub decided: u64,
    /// Decided by running the root finder only until the answer was
    /// certain (brackets too wide for the bounds above, close calls).
    pub stepped: u64,
    /// Too close to call (or outside what the fast decision covers): the
    /// full interval was computed.
    pub computed: u64,
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

    /// Sort `experiment` and `control` into the workspace. When a sample
    /// is the previous load's with values appended (a growing window), or
    /// with some dropped from the front as well (a sliding one), the new
    /// values are sorted alone and merged in.
    pub fn load(&mut self, experiment: &[f64], control: &[f64]) {
        let r = &mut self.reuse;
        let (mut prev_x, mut prev_y) = (std::mem::take(&mut r.x), std::mem::take(&mut r.y));
        let sorted_x = sort_reusing(experiment, &mut prev_x, &mut self.x, &mut self.keys, r);
        std::mem::swap(&mut r.part, &mut r.part_x);
        self.y_padded.pop();
        let sorted_y = sort_reusing(control, &mut prev_y, &mut self.y_padded, &mut self.keys, r);
        (r.x, r.y) = (prev_x, prev_y);
        let y = &self.y_padded;
        self.summary[0] = match sorted_x {
            Sorted::Grown => summary_grown(&self.x, &r.part_x, self.summary[0]),
            _ => runs(&self.x),
        };
        self.summary[1] = match sorted_y {
            Sorted::Grown => summary_grown(y, &r.part, self.summary[1]),
            _ => runs(y),
        };
        if sorted_x == Sorted::Grown && sorted_y == Sorted::Grown {
            for (d, total) in self.running.iter_mut().flatten() {
                *total += grown_counts(&self.x, y, &r.part_x, &r.part, *d);
            }
        } else {
            self.running = [None; 2];
        }
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
        let mut stat = RankStatistic::with_summary(x, y_padded, &mut self.scratch, self.summary);
        solve_interval(mu_min, mu_max, conf_level, |d| stat.z(d))
    }
}

/// Where the interval lies against the tolerance band
/// `[-tolerance |estimate|, tolerance |estimate|]`, as the classifier asks:
/// `Above` when `ci_lower > bound` (and that was asked), else `Below` when
/// `ci_upper < -bound` (and that was asked), else `Within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// The whole interval lies above the band.
    Above,
    /// The whole interval lies below the band.
    Below,
    /// Neither (or not asked).
    Within,
}

/// The answer of [`MannWhitney::band_loaded`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BandAnswer {
    /// Decided without the root finder: every interval and estimate the
    /// full computation can return gives this answer.
    Decided(Band),
    /// Too close to call: the full interval, exactly as
    /// [`MannWhitney::interval_loaded`] returns it.
    Computed(MannWhitneyResult),
}

impl MannWhitney {
    /// Where the interval at `conf_level` lies against the band of
    /// half-width `tolerance * |estimate|`, for the samples already loaded:
    /// `above` asks whether `ci_lower > bound`, `below` whether
    /// `ci_upper < -bound` (the first that holds, of those asked, is the
    /// answer). Decided from the rank statistic at a few shifts when every
    /// result the root finder can return agrees (see `decide_band`);
    /// otherwise the full interval is computed with the same workspace.
    /// Errors are those of [`MannWhitney::interval_loaded`].
    pub fn band_loaded(
        &mut self,
        conf_level: f64,
        tolerance: f64,
        above: bool,
        below: bool,
    ) -> Result<BandAnswer, MannWhitneyError> {
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
        let mut stat = RankStatistic::with_summary(x, y_padded, &mut self.scratch, self.summary);
        let question = BandQuestion {
            mu_min,
            mu_max,
            z_quant: qnorm((1.0 - conf_level) / 2.0),
            tolerance,
            above,
            below,
        };
        if let Some(band) = decide_band(&mut stat, &question, &mut self.running) {
            self.band_counts.decided += 1;
            return Ok(BandAnswer::Decided(band));
        }
        if let Some(band) = step_band(&mut stat, &question)? {
            self.band_counts.stepped += 1;
            return Ok(BandAnswer::Decided(band));
        }
        self.band_counts.computed += 1;
        // the probes taken so far serve the root finder too
        solve_interval(mu_min, mu_max, conf_level, |d| stat.z(d)).map(BandAnswer::Computed)
    }

    /// How many band questions were decided with and without the root
    /// finder since the workspace was made.
    pub fn band_counts(&self) -> BandCounts {
        self.band_counts
    }
}

/// What [`decide_band`] is asked.
struct BandQuestion {
    mu_min: f64,
    mu_max: f64,
    /// `qnorm(alpha / 2)`, as [`solve_interval`] computes it (negative).
    z_quant: f64,
    tolerance: f64,
    above: bool,
    below: bool,
}

/// Evaluations of the statistic [`decide_band`] may make before it leaves
/// the question to the root finder.
const BAND_MAX_EVALS: usize = 24;

/// The widest bracket `[mu_min, mu_max]` the fast decision takes on: its
/// bounds on the root finder's results assume the root finder stopped on
/// its tolerance, not on its 1001-iteration cap. Brent's method needs at
/// most about k^2 evaluations where k = log2(width / tolerance) is what
/// bisection needs (Brent 1973, ch. 4); 2^30 times the smallest step
/// (5e-5) keeps k^2 below 1001. That bound is for Brent's original, which
/// compares an interpolation step with the step before last; R's zeroin
/// compares it with the last one and can follow a minimum step with
/// another, so for Kayenta's root finder it is an assumption (see the
/// README). Wider brackets go to [`step_band`], which needs no bound.
const BAND_MAX_WIDTH: f64 = 5e-5 * (1u64 << 30) as f64;

/// What is known about one root of `f(d) = z(d) - zq`: `f > 0` at every
/// shift up to `pos`, `f < 0` at every shift from `neg` on (from the
/// statistic at those shifts, with the bounds of [`Sigmas`]), and the
/// corrected rank sums there (for the next guess).
#[derive(Debug, Clone, Copy)]
struct RootKnowledge {
    zq: f64,
    pos: f64,
    h_pos: f64,
    neg: f64,
    h_neg: f64,
}

/// The standard deviation of the statistic at a shift with no new tie
/// (`own`: only the groups inside each sample), and a value no shift's
/// standard deviation is below (`min`: the tie term bounded above).
#[derive(Debug, Clone, Copy)]
struct Sigmas {
    own: f64,
    min: f64,
}

impl RootKnowledge {
    fn new(zq: f64) -> Self {
        Self {
            zq,
            pos: f64::NEG_INFINITY,
            h_pos: f64::NAN,
            neg: f64::INFINITY,
            h_neg: f64::NAN,
        }
    }

    /// Learn from `h = dz - sign(dz)/2` at shift `t`. At every shift
    /// `d <= t`, h(d) >= h(t) and sigma(d) lies in [min, own], and the
    /// floating-point division is monotone in both, so the statistic the
    /// full computation evaluates at `d` is at least `inf_z`; the same
    /// the other way from `t` on.
    fn learn(&mut self, t: f64, h: f64, s: Sigmas) {
        let inf_z = if h >= 0.0 { h / s.own } else { h / s.min };
        let sup_z = if h <= 0.0 { h / s.own } else { h / s.min };
        if inf_z > self.zq && t > self.pos {
            self.pos = t;
            self.h_pos = h;
        }
        if sup_z < self.zq && t < self.neg {
            self.neg = t;
            self.h_neg = h;
        }
    }

    /// Bounds on every value the root finder can return for this root.
    ///
    /// R's zeroin (as Kayenta runs it) keeps a bracket `[b, c]` with
    /// `f(b)` and `f(c)` of strictly opposite signs, and returns `b` when
    /// `f(b) == 0` or `|c - b| / 2 <= 2 eps |b| + tol / 2`. So a returned
    /// `b` is a zero of f, or within `slack` of a point where f has the
    /// other sign: with `f > 0` on `(-inf, pos]`, either `b` or its
    /// partner has `f <= 0` and lies right of `pos`, so `b > pos - slack`;
    /// likewise `b < neg + slack`. The interval's ends are clipped to
    /// `[mu_min, mu_max]` (the end checks, and zeroin's steps never leave
    /// its bracket), which also covers `pos > mu_max` (then `f(mu_max) > 0`
    /// and the end is `mu_max`) and `neg < mu_min`.
    fn bounds(&self, mu_min: f64, mu_max: f64, slack: f64) -> (f64, f64) {
        let lo = (self.pos - slack).clamp(mu_min, mu_max);
        let hi = (self.neg + slack).clamp(mu_min, mu_max);
        (lo, hi)
    }

    /// A shift inside the unknown stretch `(pos, neg)` worth evaluating
    /// (regula falsi on h, kept off the ends), or `None` when the stretch
    /// is too short to learn more than the slack allows.
    fn guess(&self, q: &BandQuestion, h_max: f64, s: Sigmas, slack: f64) -> Option<f64> {
        let (a, ha) = if self.pos.is_finite() {
            (self.pos, self.h_pos)
        } else {
            (q.mu_min, h_max)
        };
        let (b, hb) = if self.neg.is_finite() {
            (self.neg, self.h_neg)
        } else {
            (q.mu_max, -h_max)
        };
        if (b - a).partial_cmp(&slack) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let target = self.zq * s.own;
        let frac = (ha - target) / (ha - hb);
        let frac = if frac.is_finite() {
            frac.clamp(0.1, 0.9)
        } else {
            0.5
        };
        Some(a + (b - a) * frac)
    }
}

/// Decide [`MannWhitney::band_loaded`]'s question from the statistic at a
/// few shifts, or `None` when that cannot be done with certainty.
///
/// The interval's ends and the estimate are what the root finder returns
/// for `z(d) = zq`, `zq` in `{-z_quant, 0, z_quant}`. Each evaluation of
/// the rank sum at a shift `t` proves, for each of the three roots, that
/// `f` keeps one sign on one side of `t` ([`RootKnowledge::learn`]: the
/// rank sum never increases with the shift and the standard deviation is
/// bounded on both sides, so this holds even where new ties make the
/// statistic itself non-monotone). That bounds what the root finder can
/// return to within its tolerance ([`RootKnowledge::bounds`]), and the
/// answer is given only when every combination of returnable ends and
/// estimate gives it. The first two shifts are just either side of zero
/// (an interval across zero is inside the band whatever the estimate);
/// then the estimate is narrowed and the interval's end tested at the
/// band's edges.
///
/// Not covered (so `None`): shifts at which subtracting could round two
/// experiment values together (the tie bound assumes it cannot), brackets
/// wider than [`BAND_MAX_WIDTH`], an estimate bracket whose ends do not
/// provably have opposite signs (Kayenta does not check them), and a
/// standard deviation that could reach zero (the full computation errs).
fn decide_band(
    stat: &mut RankStatistic<'_>,
    q: &BandQuestion,
    running: &mut [Option<(f64, i64)>; 2],
) -> Option<Band> {
    let (x, y) = (stat.x, stat.y);
    let (n, m) = (x.len(), y.len());
    let (mu_min, mu_max) = (q.mu_min, q.mu_max);
    let covered = mu_min.is_finite()
        && mu_max.is_finite()
        && q.z_quant.is_finite()
        && q.tolerance >= 0.0
        && q.tolerance.is_finite()
        && mu_max - mu_min <= BAND_MAX_WIDTH;
    if !covered {
        return None;
    }
    let reach = mu_min.abs().max(mu_max.abs()) + 1.0;
    if stat.min_gap <= 4.0 * f64::EPSILON * (stat.max_abs_x + reach) {
        return None;
    }
    // Without rounding merges, the pooled groups at any shift are x groups
    // joined to at most one y group each: joining groups of a and b adds
    // 3ab(a+b) to the tie term, and the joined pairs ab sum to at most
    // min(n B, m A) (A, B the largest groups).
    let (big_a, big_b) = (stat.longest_x as i128, stat.longest_y as i128);
    let own_ties = stat.own_x_ties + stat.own_y_ties;
    let max_ties = own_ties + 3 * (big_a + big_b) * (n as i128 * big_b).min(m as i128 * big_a);
    let sig = Sigmas {
        own: sigma(own_ties as f64, stat.n, stat.m),
        min: sigma(max_ties as f64, stat.n, stat.m),
    };
    if sig.min.is_nan() || sig.min <= 0.0 {
        return None;
    }
    // The estimate's root finder starts from f(mu_min) and f(mu_max)
    // without checking their signs: make sure they are opposite. At
    // mu_min, if min(x) - mu_min >= max(y) (it is, unless rounding
    // interferes), every x - mu_min is at or above all of y: 2 dz is
    // n m less top times the x's that tie max(y) (k of them, the first),
    // and dz >= 1 makes the statistic positive. At mu_max the mirror.
    let top = y.iter().rev().take_while(|&&v| v == y[m - 1]).count();
    let bottom = y.iter().take_while(|&&v| v == y[0]).count();
    let k_low = x.iter().take_while(|&&v| v - mu_min == y[m - 1]).count();
    let k_high = x.iter().rev().take_while(|&&v| v - mu_max == y[0]).count();
    let opposite = x[0] - mu_min >= y[m - 1]
        && n * m >= k_low * top + 2
        && x[n - 1] - mu_max <= y[0]
        && n * m >= k_high * bottom + 2;
    if !opposite {
        return None;
    }
    if !(q.above || q.below) {
        // nothing can fail, and nothing asked
        return Some(Band::Within);
    }
    // Kayenta's tolerance: |c - b| <= 2 (2 eps |b| + tol / 2) with
    // tol = 1e-4, |b| <= reach; inflated for the rounding of the bounds.
    // (reach rounded up to a power of two: a window that grows keeps the
    // same first shifts, whose rank sums it then updates, not recounts)
    let slack = (1e-4 + 8.0 * f64::EPSILON * power_of_two_above(reach)) * (1.0 + 1e-9);
    let h_max = (n as f64) * (m as f64) / 2.0;

    let mut roots = [
        RootKnowledge::new(-q.z_quant),
        RootKnowledge::new(0.0),
        RootKnowledge::new(q.z_quant),
    ];
    let [lower, estimate, upper] = [0, 1, 2];
    let mut tried = [f64::NAN; BAND_MAX_EVALS];
    let mut evals = 0;
    // Every shift evaluated stays within `reach` (for the rounding above);
    // beyond the bracket, one just past its end says as much.
    let clamp = |t: f64| t.clamp(mu_min - 2.0 * slack, mu_max + 2.0 * slack);
    let mut next = clamp(-1.5 * slack);
    loop {
        let known = running
            .iter()
            .flatten()
            .find(|(d, _)| d.to_bits() == next.to_bits());
        let twice_rank_sum = match known {
            Some(&(_, total)) => stat.twice_min_rank_sum + total,
            None => {
                let (twice_rank_sum, _) = stat.ranks(next);
                if let Some(slot) = running.get_mut(evals) {
                    *slot = Some((next, twice_rank_sum - stat.twice_min_rank_sum));
                }
                twice_rank_sum
            }
        };
        let h = corrected_dz(twice_rank_sum - stat.twice_offset);
        for r in &mut roots {
            r.learn(next, h, sig);
        }
        tried[evals] = next;
        evals += 1;
        if evals == 1 {
            next = clamp(1.5 * slack);
            continue;
        }

        let l = roots[lower].bounds(mu_min, mu_max, slack);
        let (e_lo, e_hi) = roots[estimate].bounds(mu_min, mu_max, slack);
        let u = roots[upper].bounds(mu_min, mu_max, slack);
        let max_abs = e_lo.abs().max(e_hi.abs());
        let edges = BandEdges::new(q, l, (e_lo, e_hi), u);
        if let Some(band) = edges.band() {
            return Some(band);
        }
        let (above, band_min, band_max) = (edges.above, edges.band_min, edges.band_max);
        if evals == BAND_MAX_EVALS {
            return None;
        }
        let was_tried = |t: f64| tried[..evals].contains(&t);
        let e = &roots[estimate];
        let e_guess = || {
            e.guess(q, h_max, sig, 4.0 * slack)
                .map(clamp)
                .filter(|&t| !was_tried(t))
        };
        // Narrow the estimate first while it is loosely known.
        if (e_hi - e_lo) > 0.2 * max_abs + 4.0 * slack
            && let Some(t) = e_guess()
        {
            next = t;
            continue;
        }
        // Then test the interval's end at the band's edges: f > 0 at
        // band_max + 1.5 slack puts ci_lower above the band, f < 0 at
        // band_min - 1.5 slack puts it inside; for ci_upper the mirror.
        let (r, prove_out, prove_in) = if above.is_none() {
            (
                &roots[lower],
                clamp(band_max + 1.5 * slack),
                clamp(band_min - 1.5 * slack),
            )
        } else {
            (
                &roots[upper],
                clamp(-band_max - 1.5 * slack),
                clamp(-band_min + 1.5 * slack),
            )
        };
        let (out_open, in_open) = if above.is_none() {
            (
                r.neg > prove_out && !was_tried(prove_out),
                r.pos < prove_in && !was_tried(prove_in),
            )
        } else {
            (
                r.pos < prove_out && !was_tried(prove_out),
                r.neg > prove_in && !was_tried(prove_in),
            )
        };
        let mid = (prove_out + prove_in) / 2.0;
        let likely_out = r
            .guess(q, h_max, sig, 0.0)
            .is_some_and(|g| if above.is_none() { g >= mid } else { g <= mid });
        next = match (out_open, in_open) {
            (true, true) => {
                if likely_out {
                    prove_out
                } else {
                    prove_in
                }
            }
            (true, false) => prove_out,
            (false, true) => prove_in,
            (false, false) => e_guess()?,
        };
    }
}

/// What the ranges of the values the root finder can return for the
/// interval's ends and the estimate say about [`BandQuestion`]: `above`
/// (`ci_lower > bound`) and `below` (`ci_upper < -bound`), each `Some`
/// when every combination of values in the ranges gives the same answer
/// (`Some(false)` when not asked).
#[derive(Debug, Clone, Copy)]
struct BandEdges {
    above: Option<bool>,
    below: Option<bool>,
    /// Every bound `tolerance * |estimate|` the full computation can use
    /// lies in `[band_min, band_max]` (multiplication is monotone).
    band_min: f64,
    band_max: f64,
}

impl BandEdges {
    fn new(q: &BandQuestion, l: (f64, f64), e: (f64, f64), u: (f64, f64)) -> Self {
        let ((l_lo, l_hi), (e_lo, e_hi), (u_lo, u_hi)) = (l, e, u);
        let max_abs = e_lo.abs().max(e_hi.abs());
        let min_abs = if e_lo <= 0.0 && e_hi >= 0.0 {
            0.0
        } else {
            e_lo.abs().min(e_hi.abs())
        };
        let (band_min, band_max) = (q.tolerance * min_abs, q.tolerance * max_abs);
        let above = if !q.above {
            Some(false)
        } else if l_lo > band_max {
            Some(true)
        } else if l_hi <= band_min {
            Some(false)
        } else {
            None
        };
        let below = if !q.below {
            Some(false)
        } else if u_hi < -band_max {
            Some(true)
        } else if u_lo >= -band_min {
            Some(false)
        } else {
            None
        };
        Self {
            above,
            below,
            band_min,
            band_max,
        }
    }

    /// The answer, when it is certain: the first of Above and Below that
    /// holds, else Within.
    fn band(&self) -> Option<Band> {
        match (self.above, self.below) {
            (Some(true), _) => Some(Band::Above),
            (Some(false), Some(true)) => Some(Band::Below),
            (Some(false), Some(false)) => Some(Band::Within),
            _ => None,
        }
    }
}

/// Decide [`MannWhitney::band_loaded`]'s question by running Kayenta's
/// three root-finder runs ([`solve_interval`]'s, step for step) only until
/// their answers are certain: a run stopped early returns, whenever it
/// stops (on its tolerance or on its iteration cap), a value in its
/// current bracket ([`Zeroin::range`]), so no bound on its iterations is
/// needed. Each step takes the run that leaves the question open with the
/// widest uncertainty. What it evaluates is a part of what the full
/// computation evaluates, so an error here is the full computation's too.
///
/// `Ok(None)` (the caller computes the interval) when a run steps out of
/// its bracket, or when the full computation might meet an all-tied
/// sample at a shift not evaluated here (it would err where this would
/// answer): that is ruled out when the control has two distinct values,
/// or the experiment's extremes stay apart after subtracting any shift
/// in `[mu_min, mu_max]` or zero.
fn step_band(
    stat: &mut RankStatistic<'_>,
    q: &BandQuestion,
) -> Result<Option<Band>, MannWhitneyError> {
    let (x, y) = (stat.x, stat.y);
    let (n, m) = (x.len(), y.len());
    let (mu_min, mu_max) = (q.mu_min, q.mu_max);
    let reach = mu_min.abs().max(mu_max.abs());
    let never_all_tied =
        y[0] != y[m - 1] || x[n - 1] - x[0] > 4.0 * f64::EPSILON * (stat.max_abs_x + reach);
    let covered = never_all_tied
        && mu_min.is_finite()
        && mu_max.is_finite()
        && q.tolerance >= 0.0
        && q.tolerance.is_finite()
        && q.z_quant.is_finite();
    if !covered {
        return Ok(None);
    }
    if !(q.above || q.below) {
        // nothing asked, and nothing can fail
        return Ok(Some(Band::Within));
    }
    let g_min = stat.z(mu_min)?;
    let g_max = stat.z(mu_max)?;
    // solve_interval's find_root: the end checks, then zeroin
    let end = |zq: f64| {
        let (f_lower, f_upper) = (g_min - zq, g_max - zq);
        if f_lower <= 0.0 {
            Zeroin::done(mu_min)
        } else if f_upper >= 0.0 {
            Zeroin::done(mu_max)
        } else {
            Zeroin::new(mu_min, mu_max, f_lower, f_upper)
        }
    };
    let zqs = [-q.z_quant, 0.0, q.z_quant];
    let mut runs = [
        end(zqs[0]),
        Zeroin::new(mu_min, mu_max, g_min, g_max),
        end(zqs[2]),
    ];
    let [lower, estimate, upper] = [0, 1, 2];
    loop {
        let (Some(l), Some(e), Some(u)) = (
            runs[lower].range(),
            runs[estimate].range(),
            runs[upper].range(),
        ) else {
            return Ok(None);
        };
        let edges = BandEdges::new(q, l, e, u);
        if let Some(band) = edges.band() {
            return Ok(Some(band));
        }
        // the end that leaves the first open question open, or the
        // estimate when the band's edge is the wider unknown
        let (end_run, (lo, hi)) = if edges.above.is_none() {
            (lower, l)
        } else {
            (upper, u)
        };
        let band_width = edges.band_max - edges.band_min;
        let end_open = runs[end_run].root.is_none();
        let pick = if end_open && (runs[estimate].root.is_some() || hi - lo >= band_width) {
            end_run
        } else {
            estimate
        };
        let run = &mut runs[pick];
        // with both runs finished the question is decided, so the one
        // picked is still running
        if let Ok(t) = run.next() {
            run.feed(stat.z(t)? - zqs[pick]);
        }
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

/// Whether two samples are the same values, bit for bit.
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    // in blocks without an exit per value, which the compiler vectorizes
    const BLOCK: usize = 16;
    a.len() == b.len()
        && a.chunks(BLOCK).zip(b.chunks(BLOCK)).all(|(p, q)| {
            p.iter()
                .zip(q)
                .fold(0u64, |acc, (p, q)| acc | (p.to_bits() ^ q.to_bits()))
                == 0
        })
}

/// `values` sorted in `f64::total_cmp` order into `sorted`, which holds
/// `prev` sorted (when its length says so). If `values` is `prev` with
/// its first `k` values dropped and others appended, those are removed
/// from and merged into `sorted` (the order of equal keys is immaterial:
/// equal keys are equal bits), else `values` is sorted anew. `prev`
/// becomes `values`.
fn sort_reusing(
    values: &[f64],
    prev: &mut Vec<f64>,
    sorted: &mut Vec<f64>,
    keys: &mut Vec<i64>,
    scratch: &mut Reuse,
) -> Sorted {
    let kept_from = match values.first() {
        Some(first) if !prev.is_empty() && sorted.len() == prev.len() => {
            if values.len() >= prev.len() && same_bits(&values[..prev.len()], prev) {
                Some(0)
            } else {
                // sliding: where the new sample's first value sits in the
                // old one (the first place only; checked in full)
                prev.iter()
                    .position(|p| p.to_bits() == first.to_bits())
                    .filter(|&k| {
                        let kept = prev.len() - k;
                        values.len() >= kept && same_bits(&values[..kept], &prev[k..])
                    })
            }
        }
        _ => None,
    };
    let how = match kept_from {
        None => Sorted::Fresh,
        Some(0) => Sorted::Grown,
        Some(_) => Sorted::Slid,
    };
    scratch.part.clear();
    match kept_from {
        None => sort_total(values, keys, sorted),
        Some(k) => {
            scratch.reused += 1;
            let kept = prev.len() - k;
            let part = &mut scratch.part;
            if k > 0 {
                sort_total(&prev[..k], keys, part);
                // sorted minus part, both in key order, part within sorted
                let mut j = 0;
                sorted.retain(|v| {
                    let drop = part.get(j).is_some_and(|p| p.to_bits() == v.to_bits());
                    j += usize::from(drop);
                    !drop
                });
            }
            if values.len() > kept {
                sort_total(&values[kept..], keys, part);
                let merged = &mut scratch.merged;
                merged.clear();
                merged.reserve(sorted.len() + part.len());
                let key = |v: f64| total_key(v.to_bits() as i64);
                // A window grows by a few values at a time: find where each
                // goes and copy the runs of old values between them whole,
                // instead of comparing every old value.
                let mut i = 0;
                for &p in part.iter() {
                    let kp = key(p);
                    let run = sorted[i..].partition_point(|&s| key(s) <= kp);
                    merged.extend_from_slice(&sorted[i..i + run]);
                    merged.push(p);
                    i += run;
                }
                merged.extend_from_slice(&sorted[i..]);
                std::mem::swap(sorted, merged);
            }
        }
    }
    prev.clear();
    prev.extend_from_slice(values);
    how
}

/// [`runs`] of `sorted`, which is a sample summarized by `old` with the
/// values `added` (sorted) merged in: only the groups they join change,
/// and a value put between two neighbours replaces their gap by two no
/// wider ones, so the smallest gap is the old one or one of those.
fn summary_grown(sorted: &[f64], added: &[f64], old: Summary) -> Summary {
    let mut s = old;
    let mut k = 0;
    while k < added.len() {
        let v = added[k];
        let mut e = k + 1;
        while e < added.len() && added[e] == v {
            e += 1;
        }
        let lo = sorted.partition_point(|&t| t < v);
        let hi = sorted.partition_point(|&t| t <= v);
        let group = hi - lo;
        let before = group - (e - k);
        s.ties += tie_weight(group as i128) - tie_weight(before as i128);
        s.longest = s.longest.max(group);
        if before == 0 {
            let mut gap = |g: f64| {
                if g > 0.0 && g < s.gap {
                    s.gap = g;
                }
            };
            if lo > 0 {
                gap(v - sorted[lo - 1]);
            }
            if let Some(&next) = sorted.get(hi) {
                gap(next - v);
            }
        }
        k = e;
    }
    s
}

/// What `added_x` and `added_y` (sorted, merged into the sorted `x` and
/// `y`) add to `sum(lt_i + le_i)` at shift `d` (see [`RankStatistic`]):
/// each added x's counts among all of y, and for each added y the old x's
/// with `x - d` above it and at or above it (all of x's less the added).
fn grown_counts(x: &[f64], y: &[f64], added_x: &[f64], added_y: &[f64], d: f64) -> i64 {
    let mut total = 0usize;
    for &xi in added_x {
        let v = xi - d;
        total += y.partition_point(|&t| t < v) + y.partition_point(|&t| t <= v);
    }
    for &w in added_y {
        let above = |s: &[f64]| s.len() - s.partition_point(|&t| t - d <= w);
        let at_or_above = |s: &[f64]| s.len() - s.partition_point(|&t| t - d < w);
        total += above(x) - above(added_x) + at_or_above(x) - at_or_above(added_x);
    }
    total as i64
}

/// The smallest power of two at or above `v` (positive and finite; else
/// `v`).
fn power_of_two_above(v: f64) -> f64 {
    if !(v.is_finite() && v >= f64::MIN_POSITIVE) {
        return v;
    }
    let bits = v.to_bits();
    let mantissa = bits & ((1u64 << 52) - 1);
    if mantissa == 0 {
        v
    } else {
        f64::from_bits((bits & !((1u64 << 52) - 1)) + (1u64 << 52))
    }
}

/// t^3 - t, a tie group's term in the variance.
fn tie_weight(t: i128) -> i128 {
    t * t * t - t
}

/// sum(t^3 - t) over the groups of equal values in `sorted`, the smallest
/// positive gap between neighbours, and the largest group.
fn runs(sorted: &[f64]) -> Summary {
    let (mut ties, mut gap, mut run, mut longest) = (0i128, f64::INFINITY, 1usize, 1usize);
    for w in sorted.windows(2) {
        if w[1] == w[0] {
            run += 1;
            continue;
        }
        if run > 1 {
            ties += tie_weight(run as i128);
            longest = longest.max(run);
            run = 1;
        }
        let g = w[1] - w[0];
        if g > 0.0 && g < gap {
            gap = g;
        }
    }
    Summary {
        ties: ties + tie_weight(run as i128),
        gap,
        longest: longest.max(run),
    }
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
    /// Left from other samples: [`Probes::reset`] before use.
    stale: bool,
}

impl Probes {
    fn reset(&mut self, n: usize, m: usize) {
        self.stale = false;
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
    /// The largest group of equal values in x and in y.
    longest_x: usize,
    longest_y: usize,
}

impl<'a> RankStatistic<'a> {
    fn new(x: &'a [f64], y_padded: &'a [f64], scratch: &'a mut Scratch) -> Self {
        let y = &y_padded[..y_padded.len() - 1];
        Self::with_summary(x, y_padded, scratch, [runs(x), runs(y)])
    }

    /// [`RankStatistic::new`] with the samples' [`runs`] known.
    fn with_summary(
        x: &'a [f64],
        y_padded: &'a [f64],
        scratch: &'a mut Scratch,
        [sx, sy]: [Summary; 2],
    ) -> Self {
        let Scratch {
            probes,
            pairs,
            tied,
        } = scratch;
        let y = &y_padded[..y_padded.len() - 1];
        let (n, m) = (x.len() as i64, y.len() as i64);
        // the counts at +-inf are written when first needed
        probes.stale = true;
        pairs.valid = false;
        pairs.last = None;
        let (x_ties, min_gap, longest_x) = (sx.ties, sx.gap, sx.longest);
        let (y_ties, longest_y) = (sy.ties, sy.longest);
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
            longest_x,
            longest_y,
        }
    }

    /// Twice the x rank sum (average ranks for ties; an integer) and the
    /// tie term sum(t^3 - t).
    fn ranks(&mut self, d: f64) -> (i64, f64) {
        let (n, m) = (self.x.len(), self.y.len());
        if self.probes.stale {
            self.probes.reset(n, m);
        }
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
                // The next four at once, without branches (y is sorted,
                // so those below v come first): the scan's exit, a branch
                // mispredicted about once per x, is mostly not reached.
                if let Some(w) = yp.get(lt..lt + 4) {
                    lt += usize::from(w[0] < v)
                        + usize::from(w[1] < v)
                        + usize::from(w[2] < v)
                        + usize::from(w[3] < v);
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
    let sigma = sigma(ties, n, m);
    if sigma == 0.0 {
        return Err(MannWhitneyError::AllTied);
    }
    Ok(corrected_dz(twice_dz) / sigma)
}

/// dz - sign(dz) / 2, exact (half-integers are exact in f64, so this
/// equals Kayenta's sum of average ranks minus its offsets bit for bit).
/// Never increases as the shift grows.
fn corrected_dz(twice_dz: i64) -> f64 {
    let dz = twice_dz as f64 / 2.0;
    let correction = 0.5 * (twice_dz.signum() as f64);
    dz - correction
}

/// The statistic's standard deviation for tie term `ties`. Every operation
/// is monotone, so a larger tie term never gives a larger value, in floating
/// point as in the reals.
fn sigma(ties: f64, n: f64, m: f64) -> f64 {
    ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt()
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
    let mut z = Zeroin::new(ax, bx, fa, fb);
    loop {
        match z.next() {
            Ok(t) => z.feed(f(t)?),
            Err(root) => return Ok(root),
        }
    }
}

/// [`zeroin`] as a state machine: [`Zeroin::next`] names the shift it
/// wants the function at, [`Zeroin::feed`] gives it. Run to the end it is
/// [`zeroin`] step for step (that function is this loop); stopped early,
/// [`Zeroin::range`] says where the value it would return lies.
#[derive(Debug, Clone, Copy)]
struct Zeroin {
    a: f64,
    b: f64,
    c: f64,
    fa: f64,
    fb: f64,
    fc: f64,
    /// Function values asked for so far (R's loop runs at most 1001).
    evals: u32,
    /// The value returned, once it has been.
    root: Option<f64>,
    /// A step went outside `[b, c]` (see [`Zeroin::range`]).
    escaped: bool,
}

impl Zeroin {
    fn new(ax: f64, bx: f64, fa: f64, fb: f64) -> Self {
        let root = if fa == 0.0 {
            Some(ax)
        } else if fb == 0.0 {
            Some(bx)
        } else {
            None
        };
        Self {
            a: ax,
            b: bx,
            c: ax,
            fa,
            fb,
            fc: fa,
            evals: 0,
            root,
            escaped: false,
        }
    }

    /// A run that returns `root` without evaluating anything (the
    /// interval's end checks).
    fn done(root: f64) -> Self {
        let mut z = Self::new(root, root, 1.0, 1.0);
        z.root = Some(root);
        z
    }

    /// The next shift to evaluate, or `Err(root)`: the value returned.
    fn next(&mut self) -> Result<f64, f64> {
        const TOL: f64 = 1e-4;
        const EPSILON: f64 = 2.220446049250313e-16;
        if let Some(root) = self.root {
            return Err(root);
        }
        if self.evals == 1001 {
            self.root = Some(self.b);
            return Err(self.b);
        }
        let Self {
            mut a,
            mut b,
            mut c,
            mut fa,
            mut fb,
            mut fc,
            ..
        } = *self;
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
            *self = Self {
                a,
                b,
                c,
                fa,
                fb,
                fc,
                root: Some(b),
                ..*self
            };
            return Err(b);
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
        // Every step lies between b and c, except the minimum step after
        // an interpolation step of exactly zero, which goes down whatever
        // side c is on.
        let escaped = self.escaped || !(b >= a.min(c) && b <= a.max(c));
        *self = Self {
            a,
            b,
            c,
            fa,
            fb,
            fc,
            evals: self.evals + 1,
            escaped,
            ..*self
        };
        Ok(b)
    }

    /// The function's value at the shift [`Zeroin::next`] asked for.
    fn feed(&mut self, fb: f64) {
        self.fb = fb;
        if (fb > 0.0 && self.fc > 0.0) || (fb < 0.0 && self.fc < 0.0) {
            self.c = self.a;
            self.fc = self.fa;
        }
    }

    /// Where the value this run returns lies: the bracket `[b, c]` (each
    /// step lands inside it, the new bracket is inside the old one, and
    /// the value returned, on the tolerance or on the iteration cap, is one
    /// of its ends), or `None` once a step has left it.
    fn range(&self) -> Option<(f64, f64)> {
        match self.root {
            Some(root) => Some((root, root)),
            None if self.escaped => None,
            None => Some((self.b.min(self.c), self.b.max(self.c))),
        }
    }
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
    fn a_stopped_root_finder_returns_a_value_in_its_range() {
        // Each run of every dataset's three roots: the value returned lies
        // in the range reported before every step, and the steps are the
        // blocking `zeroin`'s.
        let mut runs = 0;
        for (x, y) in datasets() {
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let m = mw.y_padded.len() - 1;
            let (lo, hi) = (
                mw.x[0] - mw.y_padded[m - 1],
                mw.x[mw.x.len() - 1] - mw.y_padded[0],
            );
            let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
            let (Ok(g_lo), Ok(g_hi)) = (stat.z(lo), stat.z(hi)) else {
                continue;
            };
            for zq in [-2.3263478740408408, -1.0, 0.0, 0.5, 2.3263478740408408] {
                let mut z = Zeroin::new(lo, hi, g_lo - zq, g_hi - zq);
                let mut ranges = Vec::new();
                let root = loop {
                    ranges.push(z.range().unwrap());
                    match z.next() {
                        Ok(t) => z.feed(stat.z(t).unwrap() - zq),
                        Err(root) => break root,
                    }
                };
                let blocking = zeroin(lo, hi, g_lo - zq, g_hi - zq, |d| Ok(stat.z(d)? - zq));
                assert_eq!(root.to_bits(), blocking.unwrap().to_bits());
                for (k, (a, b)) in ranges.iter().enumerate() {
                    assert!(
                        *a <= root && root <= *b,
                        "step {k}: {root} not in [{a}, {b}]"
                    );
                }
                runs += usize::from(ranges.len() > 2);
            }
        }
        assert!(runs >= 40, "{runs}");
    }

    #[test]
    fn stepping_the_root_finder_gives_the_full_label() {
        // step_band alone (not only where the statistic at a few shifts
        // left the question open) against the label of the full interval.
        let mut answered = 0;
        for (x, y) in datasets() {
            for conf in [0.8, 0.98] {
                let full = mann_whitney(&x, &y, conf);
                for tolerance in [0.0, 0.1, 0.25, 1.0] {
                    for (above, below) in [(true, true), (true, false), (false, true)] {
                        let mut mw = MannWhitney::new();
                        mw.load(&x, &y);
                        let m = mw.y_padded.len() - 1;
                        let q = BandQuestion {
                            mu_min: mw.x[0] - mw.y_padded[m - 1],
                            mu_max: mw.x[mw.x.len() - 1] - mw.y_padded[0],
                            z_quant: qnorm((1.0 - conf) / 2.0),
                            tolerance,
                            above,
                            below,
                        };
                        let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
                        match (step_band(&mut stat, &q), &full) {
                            (Ok(Some(band)), Ok(r)) => {
                                let bound = tolerance * r.estimate.abs();
                                let want = if above && r.ci_lower > bound {
                                    Band::Above
                                } else if below && r.ci_upper < -bound {
                                    Band::Below
                                } else {
                                    Band::Within
                                };
                                assert_eq!(band, want, "{r:?} tolerance {tolerance}");
                                answered += 1;
                            }
                            (Ok(None), _) => {}
                            (Err(e), Err(f)) => assert_eq!(&e, f),
                            (got, want) => panic!("{got:?} vs {want:?}"),
                        }
                    }
                }
            }
        }
        assert!(answered >= 200, "{answered}");
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
    fn loads_that_grow_or_slide_sort_as_a_fresh_load_does() {
        let mut r = Lcg(21);
        let mut reusing = MannWhitney::new();
        let (mut x, mut y): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        let value = |r: &mut Lcg| match r.below(4) {
            0 => r.below(5) as f64,
            1 => -0.0,
            _ => r.unit() * 10.0 - 5.0,
        };
        for step in 0..400 {
            // grow, slide, shrink from the front, or start over
            let (drop_x, drop_y) = match r.below(5) {
                0 | 1 => (0, 0),
                2 => (r.below(x.len() + 1), r.below(y.len() + 1)),
                3 => (x.len(), y.len()),
                _ => (r.below(3).min(x.len()), 0),
            };
            x.drain(..drop_x);
            y.drain(..drop_y);
            for _ in 0..r.below(12) {
                x.push(value(&mut r));
            }
            for _ in 0..r.below(12) {
                y.push(value(&mut r));
            }
            if step % 50 == 0 {
                x.reverse();
            }
            reusing.load(&x, &y);
            let mut fresh = MannWhitney::new();
            fresh.load(&x, &y);
            assert_eq!(reusing.x.map_bits(), fresh.x.map_bits(), "step {step}");
            assert_eq!(
                reusing.y_padded.map_bits(),
                fresh.y_padded.map_bits(),
                "step {step}"
            );
        }
        assert!(reusing.reuse.reused > 300, "{}", reusing.reuse.reused);
    }

    #[test]
    fn grown_loads_keep_their_summaries_and_rank_sums() {
        // Windows that grow (and now and then slide or start over): the
        // summaries and the rank sums at two shifts kept through merges
        // equal a fresh load's, bit for bit.
        let mut r = Lcg(23);
        let mut kept = MannWhitney::new();
        let (mut x, mut y): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        let value = |r: &mut Lcg| match r.below(5) {
            0 => r.below(5) as f64,
            1 => -0.0,
            2 => 0.25 * r.below(8) as f64 + 1.5e-4,
            _ => r.unit() * 10.0 - 5.0,
        };
        let shifts = [-1.5e-4, 0.25];
        let mut grown = 0;
        for step in 0..600 {
            match r.below(12) {
                0 => {
                    x.clear();
                    y.clear();
                }
                1 => {
                    let (a, b) = (r.below(x.len() + 1), r.below(y.len() + 1));
                    x.drain(..a);
                    y.drain(..b);
                }
                _ => {}
            }
            for _ in 0..1 + r.below(9) {
                x.push(value(&mut r));
            }
            for _ in 0..1 + r.below(9) {
                y.push(value(&mut r));
            }
            kept.load(&x, &y);
            let mut fresh = MannWhitney::new();
            fresh.load(&x, &y);
            let m = fresh.y_padded.len() - 1;
            for (a, b) in kept
                .summary
                .iter()
                .zip([runs(&fresh.x), runs(&fresh.y_padded[..m])])
            {
                assert_eq!(
                    (a.ties, a.gap.to_bits(), a.longest),
                    (b.ties, b.gap.to_bits(), b.longest),
                    "step {step}"
                );
            }
            let mut stat = RankStatistic::new(&fresh.x, &fresh.y_padded, &mut fresh.scratch);
            let base = stat.twice_min_rank_sum;
            for (slot, d) in kept.running.iter_mut().zip(shifts) {
                let want = stat.ranks(d).0 - base;
                match slot {
                    Some((at, total)) => {
                        assert_eq!(at.to_bits(), d.to_bits());
                        assert_eq!(*total, want, "step {step}, d {d}");
                        grown += 1;
                    }
                    None => *slot = Some((d, want)),
                }
            }
        }
        assert!(grown > 500, "{grown}");
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
