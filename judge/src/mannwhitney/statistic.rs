//! The standardized, continuity-corrected rank-sum statistic at a shift,
//! as Kayenta computes it, from per-x counts of the control values below
//! `x - d` (exact integer arithmetic, the tie term exact), and the tie
//! summaries of a sorted sample it starts from.
//!
//! Not for: keeping the counts between shifts (`probes`) or finding the
//! statistic's roots (`zeroin`, [`super::solve_interval`]).

use super::MannWhitneyError;
use super::probes::{Bounds, LOOSE, POINTS_PER_PAIR, PairBracket, Probe, Probes, count_below};

/// What [`runs`] says about a sorted sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Summary {
    /// sum(t^3 - t) over the groups of equal values.
    pub(super) ties: i128,
    /// The smallest positive gap between neighbours.
    pub(super) gap: f64,
    /// The largest group.
    pub(super) longest: usize,
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
/// The rank statistic's memory, kept in the workspace so that nothing is
/// allocated per interval after warm-up.
#[derive(Debug, Default, Clone)]
pub(super) struct Scratch {
    /// Per-x counts at every shift evaluated so far.
    pub(super) probes: Probes,
    /// The few pairs that decide the statistic inside a narrow bracket.
    pub(super) pairs: PairBracket,
    /// The x's that tie a control value at the shift being counted.
    pub(super) tied: Vec<usize>,
}
/// t^3 - t, a tie group's term in the variance.
pub(super) fn tie_weight(t: i128) -> i128 {
    t * t * t - t
}

/// sum(t^3 - t) over the groups of equal values in `sorted`, the smallest
/// positive gap between neighbours, and the largest group.
pub(super) fn runs(sorted: &[f64]) -> Summary {
    // First the gap and whether any neighbours are equal, in one pass
    // without branches on four lanes: a gap is taken where it is
    // positive, which equal neighbours' (zero, or NaN between infinities)
    // are not, so this is the smallest over unequal neighbours; the
    // smallest of positive numbers does not depend on the order they
    // are compared in.
    let pairs = sorted.len().saturating_sub(1);
    let (lo, hi) = (&sorted[..pairs], sorted.get(1..).unwrap_or_default());
    let mut least = [f64::INFINITY; 4];
    let mut equal = 0usize;
    let mut take = |least: &mut f64, a: f64, b: f64| {
        let g = b - a;
        equal += usize::from(b == a);
        let g = if g > 0.0 { g } else { f64::INFINITY };
        *least = if g < *least { g } else { *least };
    };
    let (lo4, hi4) = (lo.chunks_exact(4), hi.chunks_exact(4));
    let (lo_rest, hi_rest) = (lo4.remainder(), hi4.remainder());
    for (a, b) in lo4.zip(hi4) {
        for k in 0..4 {
            take(&mut least[k], a[k], b[k]);
        }
    }
    for (&a, &b) in lo_rest.iter().zip(hi_rest) {
        take(&mut least[0], a, b);
    }
    let gap = least
        .into_iter()
        .fold(f64::INFINITY, |g, l| if l < g { l } else { g });
    if equal == 0 {
        // every group a single value
        return Summary {
            ties: tie_weight(1),
            gap,
            longest: 1,
        };
    }
    let (mut ties, mut run, mut longest) = (0i128, 1usize, 1usize);
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
    }
    Summary {
        ties: ties + tie_weight(run as i128),
        gap,
        longest: longest.max(run),
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
pub(super) struct RankStatistic<'a> {
    pub(super) x: &'a [f64],
    pub(super) y: &'a [f64],
    /// `y` and [`SENTINELS`] +inf sentinels (no fewer: the plain merge
    /// reads four values from any count on).
    pub(super) y_padded: &'a [f64],
    pub(super) probes: &'a mut Probes,
    pub(super) pairs: &'a mut PairBracket,
    pub(super) n: f64,
    pub(super) m: f64,
    /// 2 * (n (n + 1) / 2 + n m / 2), to turn twice the rank sum into 2 dz.
    pub(super) twice_offset: i64,
    /// n (n + 1).
    pub(super) twice_min_rank_sum: i64,
    /// sum(t^3 - t) over tie groups inside x and inside y: these groups
    /// stay tied at any shift, so when no new tie forms at `d` this is the
    /// whole tie term.
    pub(super) own_ties: f64,
    /// The same inside x alone and inside y alone.
    pub(super) own_x_ties: i128,
    pub(super) own_y_ties: i128,
    /// Scratch: the x's tying a control value at the shift being counted.
    pub(super) tied: &'a mut Vec<usize>,
    /// Smallest gap between distinct x values, and the largest |x|: below
    /// `4 eps (max|x| + |d|)` rounding could merge two x values at shift d.
    pub(super) min_gap: f64,
    pub(super) max_abs_x: f64,
    /// The largest group of equal values in x and in y.
    pub(super) longest_x: usize,
    pub(super) longest_y: usize,
}

impl<'a> RankStatistic<'a> {
    pub(super) fn new(x: &'a [f64], y_padded: &'a [f64], scratch: &'a mut Scratch) -> Self {
        Self::with_summary(x, y_padded, scratch, [runs(x), runs(unpadded(y_padded))])
    }

    /// [`RankStatistic::new`] with the samples' [`runs`] known.
    pub(super) fn with_summary(
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
        let y = unpadded(y_padded);
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
    pub(super) fn ranks(&mut self, d: f64) -> (i64, f64) {
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
    pub(super) fn ranks_from_pairs(&mut self, d: f64) -> Option<(i64, f64)> {
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
    pub(super) fn build_pairs(&mut self, bounds: &Bounds) {
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
    pub(super) fn ranks_from_probes(
        &mut self,
        d: f64,
        k: usize,
        bounds: &Bounds,
        rounding_may_merge: bool,
    ) -> (i64, f64) {
        let (x, y, yp, n, m) = (self.x, self.y, self.y_padded, self.x.len(), self.y.len());
        let probes = &mut *self.probes;
        let lt_at = probes.take(n);
        let (old, rest) = probes.counts.split_at_mut(lt_at);
        let lt_new = &mut rest[..n];
        let lt_above = &old[bounds.lt_at..bounds.lt_at + n];
        let le_below = &old[bounds.le_at..bounds.le_at + n];

        let mut sum_lt = 0usize;
        let tied = &mut self.tied;
        tied.clear();
        if x[n - 1] - d <= y[0] {
            // Past the top (the root finder's evaluation at mu_max): every
            // x - d is at or below min(y), so no count is above 0 (rounding
            // is monotone, so x - d never exceeds x[n-1] - d), and the x's
            // tying min(y) are those from the first whose x - d reaches it.
            lt_new.fill(0);
            tied.extend(x.partition_point(|&xi| xi - d < y[0])..n);
        } else if x[0] - d >= y[m - 1] {
            // Past the bottom (the root finder's evaluation at mu_min):
            // every x - d is at or above max(y) (rounding is monotone, so
            // x - d never falls below x[0] - d). The x's whose x - d ties
            // max(y) come first: each has the control values below max(y)
            // below it (`top` of them tie it); every other count is m.
            sum_lt = past_the_bottom(x, y, d, lt_new, tied);
        } else if bounds.le_sum - bounds.lt_sum >= LOOSE * n {
            // The probes around d leave many candidates per x (the root
            // finder's first steps across a wide range): nearly every x
            // would need a search, so a plain merge, without reading the
            // bounds, costs less. Counts grow with x, so each starts from
            // the previous one; the same counts and ties as below.
            //
            // Each count waits for the one before (a chain of dependent
            // loads), so two halves of x are merged side by side, the
            // second starting from its first value's count (a binary
            // search: with d finite no x - d is NaN, so every count is
            // #{y < x - d} exactly, however it is found).
            let half = if d.is_finite() && n >= SIDE_BY_SIDE {
                n / 2
            } else {
                0
            };
            let mut lt_a = 0usize;
            let mut lt_b = match x.get(half) {
                Some(&xb) if half > 0 => {
                    let v = xb - d;
                    y.partition_point(|&t| t < v)
                }
                _ => 0,
            };
            // once here, so that the steps' windows need no check (see
            // `merge_step`)
            assert!(
                yp.len() >= SENTINELS && yp.len() - SENTINELS == m,
                "the control and its sentinels"
            );
            let (x_a, x_b) = (&x[..half], &x[half..2 * half]);
            let (out_a, out_b) = lt_new[..2 * half].split_at_mut(half);
            let pairs = x_a.iter().zip(x_b).zip(out_a.iter_mut().zip(out_b));
            // Whether any x - d ties a control value: the tying x's are
            // found after the merge (rare), so that no push in the loop
            // can grow the list (a call, around which the merge kept its
            // sum and bounds on the stack).
            let mut any_tie = false;
            for ((&xa, &xb), (oa, ob)) in pairs {
                let (va, vb) = (xa - d, xb - d);
                let tie_a;
                let tie_b;
                (lt_a, tie_a) = merge_step(yp, m, lt_a, va);
                (lt_b, tie_b) = merge_step(yp, m, lt_b, vb);
                any_tie |= tie_a | tie_b;
                (*oa, *ob) = (lt_a, lt_b);
                sum_lt += lt_a + lt_b;
            }
            // the rest (the last x when n is odd; all of x unsplit), on
            // from the second half's count
            let mut lt = lt_b;
            for (&xi, out) in x[2 * half..].iter().zip(&mut lt_new[2 * half..]) {
                let tie;
                (lt, tie) = merge_step(yp, m, lt, xi - d);
                any_tie |= tie;
                *out = lt;
                sum_lt += lt;
            }
            // the tying x's, ascending: `merge_step`'s test again, on the
            // value after each count
            if any_tie {
                let counts = x.iter().zip(lt_new.iter()).enumerate();
                tied.extend(
                    counts
                        .filter(|&(_, (&xi, &lt))| yp[lt] <= xi - d)
                        .map(|(i, _)| i),
                );
            }
        } else {
            // Counts also grow with x: the previous x's count is a floor.
            let mut floor = 0usize;
            for (i, (((&xi, &lo), &hi), out)) in
                x.iter().zip(lt_above).zip(le_below).zip(lt_new).enumerate()
            {
                let mut lt = lo.max(floor);
                if lt < hi {
                    let v = xi - d;
                    // The next four at once, without branches (y is sorted,
                    // so those below v come first): the scan's exit, a
                    // branch mispredicted about once per x, is mostly not
                    // reached. All four below (rare: counts grow by about
                    // m / n per x): gallop from there.
                    if let Some(w) = yp.get(lt..).and_then(<[f64]>::first_chunk::<4>) {
                        let below = usize::from(w[0] < v)
                            + usize::from(w[1] < v)
                            + usize::from(w[2] < v)
                            + usize::from(w[3] < v);
                        lt += below;
                        if below == 4 {
                            lt = count_below(yp, v, lt, hi);
                        }
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
        }
        let (le_at, sum_le, ties) = if tied.is_empty() && !rounding_may_merge {
            (lt_at, sum_lt, self.own_ties)
        } else {
            // The rare case: count the ties, to store `le` too and for the
            // tie term.
            let le_at = probes.take(n);
            probes.counts.copy_within(lt_at..le_at, le_at);
            let (lt_new, le_new) = probes.counts[lt_at..le_at + n].split_at_mut(n);
            let mut sum_le = sum_lt;
            // Equal x's (their x - d equal too, and so their counts of
            // control values below it) tie the same control values: each
            // group's run of them is walked once (a metric of counts has
            // most of both samples in one group).
            let mut last: Option<(f64, usize)> = None;
            for &i in tied.iter() {
                let le = match last {
                    Some((xl, le)) if xl == x[i] => le,
                    _ => {
                        let v = x[i] - d;
                        let mut le = lt_new[i];
                        while le < m && y[le] == v {
                            le += 1;
                        }
                        le
                    }
                };
                last = Some((x[i], le));
                sum_le += le - lt_new[i];
                le_new[i] = le;
            }
            let ties = if rounding_may_merge {
                let gap = 4.0 * f64::EPSILON * (self.max_abs_x + d.abs());
                let own = self.own_x_ties + self.own_y_ties;
                merged_ties(x, d, gap, tied, lt_new, le_new, own)
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
    pub(super) fn z(&mut self, d: f64) -> Result<f64, MannWhitneyError> {
        let (twice_rank_sum, ties) = self.ranks(d);
        z_from_ranks(twice_rank_sum - self.twice_offset, ties, self.n, self.m)
    }
}

/// The counts at a shift `d` with `x[0] - d >= max(y)` (so every
/// `x - d` is at or above max(y)): those whose `x - d` ties max(y) come
/// first and have the control values below max(y) below them; every other
/// count is m. Writes them to `lt`, the tying x's to `tied`, and returns
/// their sum. Out of line, so that the merge passes' code is not disturbed.
#[inline(never)]
fn past_the_bottom(x: &[f64], y: &[f64], d: f64, lt: &mut [usize], tied: &mut Vec<usize>) -> usize {
    let (n, m) = (x.len(), y.len());
    let tying = x.partition_point(|&xi| xi - d <= y[m - 1]);
    let top = y.iter().rev().take_while(|&&t| t == y[m - 1]).count();
    lt[..tying].fill(m - top);
    lt[tying..].fill(m);
    tied.extend(0..tying);
    n * m - tying * top
}

/// From how many x values the plain merge of
/// [`RankStatistic::ranks_from_probes`] runs two halves side by side.
const SIDE_BY_SIDE: usize = 32;

/// How many +inf sentinels follow the control in `y_padded`: a count is at
/// most m, so the four values from any count on are in the slice, and the
/// plain merge's steps read them without a check or a scan for the end.
pub(super) const SENTINELS: usize = 4;

/// The control in `y_padded`, without its sentinels.
pub(super) fn unpadded(y_padded: &[f64]) -> &[f64] {
    &y_padded[..y_padded.len().saturating_sub(SENTINELS)]
}

/// One step of the plain merge: the number of control values below `v`
/// (`yp` is the control and exactly [`SENTINELS`] +inf sentinels, `m` its
/// length), from `lt`, a number of them known to be below it (the previous
/// x's count), and whether the next one ties `v` (a new tie, or a sentinel
/// when `v` is +inf: the tie count then finds none).
#[inline(always)]
fn merge_step(yp: &[f64], m: usize, lt: usize, v: f64) -> (usize, bool) {
    // The next four at once, without branches (the scan's exit, a branch
    // mispredicted about once per x, is not needed); all four below:
    // gallop from there. y is sorted and NaN-free, so the first value not
    // below v ends the run: the count is exact either way. `lt` is a count,
    // at most m, so `min` changes nothing; it only lets the compiler see
    // that the window ends inside `yp` (m + SENTINELS long).
    let at = lt.min(yp.len() - SENTINELS);
    let Some(w) = yp[at..].first_chunk::<4>() else {
        unreachable!("`at` is at most yp.len() - SENTINELS")
    };
    let below = usize::from(w[0] < v)
        + usize::from(w[1] < v)
        + usize::from(w[2] < v)
        + usize::from(w[3] < v);
    if below < 4 {
        (at + below, w[below] <= v)
    } else {
        let lt = count_below(yp, v, at + 4, m);
        (lt, yp[lt] <= v)
    }
}

/// The tie term at shift `d` where subtracting `d` may round distinct x
/// values together (neighbours at most `gap` apart): x's own groups
/// (`own` holds their term and y's) corrected where x's groups now tie
/// control values (`tied`, ascending, with their counts) and where
/// rounding joins groups. Values rounded together lie in one cluster (a
/// run of x whose neighbours are at most `gap` apart, as in
/// `band::clusters`), so only the clusters holding two distinct values so
/// close are regrouped; elsewhere x - d keeps x's groups.
fn merged_ties(
    x: &[f64],
    d: f64,
    gap: f64,
    tied: &[usize],
    lt: &[usize],
    le: &[usize],
    own: i128,
) -> i128 {
    let n = x.len();
    // not more than `gap` apart (a NaN difference, of infinities, counts
    // as close: a cluster too many costs time, never a wrong term)
    let close = |i: usize| {
        let g = x[i + 1] - x[i];
        g <= gap || g.is_nan()
    };
    let mut ties = own;
    let (mut next_tied, mut done) = (0, 0);
    // an own group that ties control values: f(gx) + f(eq) become f(gx + eq)
    let mut plain_below = |end: usize, ties: &mut i128, next_tied: &mut usize| {
        while let Some(&i) = tied.get(*next_tied).filter(|&&i| i < end) {
            *next_tied += 1;
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
            let (gx, eq) = ((e - s) as i128, (le[i] - lt[i]) as i128);
            *ties += tie_weight(gx + eq) - tie_weight(gx) - tie_weight(eq);
            done = e;
        }
    };
    let mut i = 0;
    while i + 1 < n {
        // equal neighbours, or farther apart than `gap` (one comparison
        // each; a NaN difference falls through: regrouping is exact
        // wherever it is done)
        let g = x[i + 1] - x[i];
        if g == 0.0 || g > gap {
            i += 1;
            continue;
        }
        // a cluster with two distinct values close enough to round together
        let mut s = i;
        while s > 0 && close(s - 1) {
            s -= 1;
        }
        let mut end = i + 2;
        while end < n && close(end - 1) {
            end += 1;
        }
        plain_below(s, &mut ties, &mut next_tied);
        // its groups at d replace its own groups: a group of t values of
        // x - d tying eq control values weighs f(t + eq) - f(eq) here
        let mut a = s;
        while a < end {
            let v = x[a] - d;
            let eq = (le[a] - lt[a]) as i128;
            let mut e = a + 1;
            while e < end && x[e] - d == v {
                e += 1;
            }
            ties += tie_weight((e - a) as i128 + eq) - tie_weight(eq);
            a = e;
        }
        let mut a = s;
        while a < end {
            let mut e = a + 1;
            while e < end && x[e] == x[a] {
                e += 1;
            }
            ties -= tie_weight((e - a) as i128);
            a = e;
        }
        while tied.get(next_tied).is_some_and(|&t| t < end) {
            next_tied += 1;
        }
        i = end;
    }
    plain_below(n, &mut ties, &mut next_tied);
    ties
}

/// Kayenta's statistic from twice dz (an integer) and the tie term.
pub(super) fn z_from_ranks(
    twice_dz: i64,
    ties: f64,
    n: f64,
    m: f64,
) -> Result<f64, MannWhitneyError> {
    let sigma = sigma(ties, n, m);
    if sigma == 0.0 {
        return Err(MannWhitneyError::AllTied);
    }
    Ok(corrected_dz(twice_dz) / sigma)
}

/// dz - sign(dz) / 2, exact (half-integers are exact in f64, so this
/// equals Kayenta's sum of average ranks minus its offsets bit for bit).
/// Never increases as the shift grows.
pub(super) fn corrected_dz(twice_dz: i64) -> f64 {
    let dz = twice_dz as f64 / 2.0;
    let correction = 0.5 * (twice_dz.signum() as f64);
    dz - correction
}

/// The statistic's standard deviation for tie term `ties`. Every operation
/// is monotone, so a larger tie term never gives a larger value, in floating
/// point as in the reals.
pub(super) fn sigma(ties: f64, n: f64, m: f64) -> f64 {
    ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::MannWhitney;
    use super::super::test_support::*;
    use super::*;

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
    fn groups_tying_control_values_count_as_the_merge_does() {
        // counts (most of both samples in a few groups, signed zeros in
        // one group) at shifts that make whole groups tie control values:
        // a group's ties are walked once and shared
        let mut r = Lcg(17);
        for case in 0..300 {
            let value = |r: &mut Lcg| match r.below(8) {
                0 => -0.0,
                1..=4 => 0.0,
                k => (k - 4) as f64,
            };
            let x: Vec<f64> = (0..1 + r.below(40)).map(|_| value(&mut r)).collect();
            let y: Vec<f64> = (0..1 + r.below(40)).map(|_| value(&mut r)).collect();
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
            for d in [0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 0.5, 1.0, 0.0] {
                assert_eq!(
                    stat.ranks(d),
                    ranks_by_merge(stat.x, stat.y, d),
                    "case {case}, d = {d:e}, x {x:?} y {y:?}"
                );
            }
        }
    }

    #[test]
    fn ranks_equal_the_merge_at_and_past_the_ends() {
        // The root finder's ends: at mu_min some x - d may tie max(y) (one
        // or several x, one or several control values at the top), at
        // mu_max min(y); and just either side of both, with and without
        // probes taken before.
        let mut sets = datasets();
        sets.push((vec![1.0, 1.0, 1.0, 2.0, 5.0], vec![0.0, 0.5, 0.5, 0.5]));
        sets.push((vec![3.0, 3.0, 4.0], vec![1.0, 3.0, 3.0, 3.0]));
        sets.push((vec![0.1, 0.1 + 1e-17, 0.3], vec![0.0, 0.2, 0.2]));
        let mut r = Lcg(13);
        let mut tying_ends = 0;
        for (x, y) in sets {
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let m = unpadded(&mw.y_padded).len();
            let (xs, ys) = (mw.x.clone(), mw.y_padded[..m].to_vec());
            let (lo, hi) = (xs[0] - ys[m - 1], xs[xs.len() - 1] - ys[0]);
            tying_ends += usize::from(xs[0] - lo == ys[m - 1]);
            let mut ends = vec![lo, hi];
            for d in [lo, hi] {
                ends.extend([d.next_up(), d.next_down(), d - 1e-3, d + 1e-3]);
            }
            for fresh in [true, false] {
                let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
                if !fresh {
                    for d in shifts(&xs, &ys, &mut r).into_iter().take(5) {
                        stat.ranks(d);
                    }
                }
                for &d in &ends {
                    assert_eq!(
                        stat.ranks(d),
                        ranks_by_merge(&xs, &ys, d),
                        "d = {d:e}, x {x:?} y {y:?}"
                    );
                }
            }
        }
        assert!(tying_ends >= 10, "{tying_ends}");
    }

    #[test]
    fn the_plain_merge_reads_the_sentinels_exactly() {
        // Controls of 1 to 9 values (fewer than, as many as and more than
        // a step's window of four) and 1 to 70 x's (one pass, and two
        // halves side by side), at shifts putting the top x's at, between
        // and above the top control values and at +-inf: the steps' windows
        // reach into the sentinels, and every count from 0 to m is taken.
        let mut r = Lcg(19);
        let (mut reached, mut tying) = (0, 0);
        for m in 1..=9 {
            for n in [1, 2, 5, 31, 32, 33, 70] {
                let y: Vec<f64> = (0..m).map(|_| r.below(6) as f64).collect();
                let x: Vec<f64> = (0..n).map(|_| r.below(40) as f64 * 0.25).collect();
                let mut mw = MannWhitney::new();
                mw.load(&x, &y);
                let (xs, ys) = (mw.x.clone(), unpadded(&mw.y_padded).to_vec());
                assert_eq!(ys.len(), m);
                assert_eq!(mw.control_sorted(), &ys[..]);
                assert!(
                    mw.y_padded[m..].len() == SENTINELS
                        && mw.y_padded[m..].iter().all(|&t| t == f64::INFINITY)
                );
                let mut ds = vec![f64::INFINITY, f64::NEG_INFINITY];
                for &xi in xs.iter().rev().take(6) {
                    for &t in &ys {
                        let d = xi - t;
                        ds.extend([d, d.next_up(), d.next_down(), d - 0.5, d + 0.5]);
                    }
                }
                for &d in &ds {
                    // fresh probes: the pass is the plain merge
                    let mut stat = RankStatistic::new(&mw.x, &mw.y_padded, &mut mw.scratch);
                    let want = ranks_by_merge(&xs, &ys, d);
                    assert_eq!(stat.ranks(d), want, "d = {d:e}, x {xs:?} y {ys:?}");
                    // each x's counts as stored (the tying x's found after
                    // the merge give the `le` ones)
                    let (p, counts) = (stat.probes.list[0], &stat.probes.counts);
                    for (i, &xi) in xs.iter().enumerate() {
                        let v = xi - d;
                        let below = ys.iter().filter(|&&t| t < v).count();
                        let at_most = ys.iter().filter(|&&t| t <= v).count();
                        assert_eq!(
                            (counts[p.lt_at + i], counts[p.le_at + i]),
                            (below, at_most),
                            "x {i}, d = {d:e}, x {xs:?} y {ys:?}"
                        );
                        tying += usize::from(at_most > below);
                    }
                    reached += counts.iter().filter(|&&c| c + 2 >= m).count();
                }
            }
        }
        assert!(reached > 1000 && tying > 1000, "{reached} {tying}");
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
            let m = unpadded(&mw.y_padded).len();
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
}
