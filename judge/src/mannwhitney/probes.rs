//! What the rank statistic keeps between shifts: the per-x counts at
//! every shift evaluated (probes), which bound the counts at any new
//! shift, and the few (experiment, control) pairs that decide the
//! statistic inside a narrow bracket between two probes.
//!
//! Not for: the statistic's arithmetic (`statistic`).

/// One shift the statistic was evaluated at: per x, how many control
/// values lie below `x - d` (`lt`) and at or below it (`le`), kept in
/// [`Probes::counts`], and the statistic's inputs there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) d: f64,
    /// Where this probe's `lt` and `le` counts start in the arena (the
    /// same place when no value of `x - d` ties a control value).
    pub(super) lt_at: usize,
    pub(super) le_at: usize,
    pub(super) sum_lt: usize,
    pub(super) sum_le: usize,
    pub(super) twice_rank_sum: i64,
    pub(super) ties: f64,
}

/// Every evaluated shift, sorted by shift. Counts only fall as the shift
/// grows, so the nearest probes on either side of a new shift bound each
/// x's counts there: most x's need no comparison at all, the others a
/// search between the two bounds.
#[derive(Debug, Default, Clone)]
pub(super) struct Probes {
    pub(super) list: Vec<Probe>,
    /// `[0, n)`: the counts at +inf (all 0); `[n, 2n)`: at -inf (all m);
    /// then n or 2n per probe, up to `used`. Past `used` are earlier
    /// loads' counts, kept so that a new probe overwrites them instead of
    /// zeroing fresh room first (every count a probe stores is written).
    pub(super) counts: Vec<usize>,
    /// The arena's part in use.
    pub(super) used: usize,
    /// Left from other samples: [`Probes::reset`] before use.
    pub(super) stale: bool,
}

impl Probes {
    pub(super) fn reset(&mut self, n: usize, m: usize) {
        self.stale = false;
        self.list.clear();
        if self.counts.len() < 2 * n {
            self.counts.resize(2 * n, 0);
        }
        self.counts[..n].fill(0);
        self.counts[n..2 * n].fill(m);
        self.used = 2 * n;
    }

    /// Room for `len` more counts at the arena's end: where it starts.
    /// What it holds is left over; the caller overwrites all of it.
    pub(super) fn take(&mut self, len: usize) -> usize {
        let at = self.used;
        self.used += len;
        if self.counts.len() < self.used {
            self.counts.resize(self.used, 0);
        }
        at
    }

    /// Index of the first probe at or above `d`.
    pub(super) fn position(&self, d: f64) -> usize {
        self.list.partition_point(|p| p.d < d)
    }

    /// For `d` not itself a probe (`k = position(d)`): where the `le`
    /// counts of the probe below start and their sum, and the same for the
    /// `lt` counts of the probe above (absent probes: -inf and +inf).
    pub(super) fn bounds(&self, k: usize, n: usize, m: usize) -> Bounds {
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
pub(super) struct Bounds {
    pub(super) le_at: usize,
    pub(super) le_sum: usize,
    pub(super) lo: f64,
    pub(super) lt_at: usize,
    pub(super) lt_sum: usize,
    pub(super) hi: f64,
}

/// A [`PairBracket`] is built when it holds at most one pair per this
/// many points of the two samples: building it and counting its pairs
/// costs more per pair than a probe pass costs per point, so it pays only
/// once the bracket is narrow (measured: 1 pair per 4 points beats 1 per
/// point, and 2 or 4 per point are far worse).
pub(super) const POINTS_PER_PAIR: usize = 4;

/// Inside a narrow bracket between two probes only a few (experiment,
/// control) pairs can change order, and the statistic at any shift there
/// is the bracket's fixed part plus those pairs' comparisons: no pass over
/// the samples. Each answered shift splits the pairs by their order there;
/// the next shift falls on one side of it, and the other side's pairs are
/// then fixed, so the list shrinks as the root finder closes in.
#[derive(Debug, Default, Clone)]
pub(super) struct PairBracket {
    pub(super) valid: bool,
    /// The shifts the list is valid for, ends excluded.
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// Twice the number of pairs with `y < x - d` throughout the bracket.
    pub(super) base2: usize,
    /// (x, y) of the pairs; those in `start..end` may change order inside
    /// the bracket.
    pub(super) pairs: Vec<(f64, f64)>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// The last shift answered (without a tie), where the pairs with
    /// `y < x - d` there end (they were moved to the front of the live
    /// pairs), and twice the rank sum it gave.
    pub(super) last: Option<(f64, usize, i64)>,
}

/// A probe pass ignores the probes' bounds (a plain merge) when they
/// leave at least this many candidate control values per x: then almost
/// every x needs a search anyway, and reading two bounds per x costs more
/// than the few x's they pin save.
pub(super) const LOOSE: usize = 4;

/// How many of `y[lo..hi]` are below `v`, plus `lo`, when everything
/// before `lo` is below `v` and nothing from `hi` on is: gallop up from
/// `lo`, then binary search.
pub(super) fn count_below(y: &[f64], v: f64, lo: usize, hi: usize) -> usize {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
