//! Sorting reused across loads: a window that grows (values appended) or
//! slides (values dropped from the front as well) is sorted by merging its
//! new values into the previous load's sorted samples, and its tie
//! summaries and first rank sums are updated instead of recomputed.
//!
//! Not for: the rank statistic itself (`statistic`); the results are
//! bit for bit those of a fresh sort.

use super::statistic::{Summary, runs, tie_weight};

/// How [`sort_reusing`] sorted a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sorted {
    /// Anew.
    Fresh,
    /// The previous sample with values appended (perhaps none), which are
    /// left sorted in [`Reuse::part`].
    Grown,
    /// The previous sample with values dropped from the front.
    Slid,
}

/// What [`MannWhitney::load`](super::MannWhitney::load) keeps to extend the next load's sorted
/// samples instead of sorting them again.
#[derive(Debug, Default, Clone)]
pub(super) struct Reuse {
    /// The last experiment and control loaded, in the caller's order.
    pub(super) x: Vec<f64>,
    pub(super) y: Vec<f64>,
    /// Scratch: the values dropped or added, sorted; a merge's output;
    /// the experiment's added values, sorted.
    pub(super) part: Vec<f64>,
    pub(super) merged: Vec<f64>,
    pub(super) part_x: Vec<f64>,
    /// Loads that reused the previous sort (for the benchmarks).
    pub(super) reused: u64,
}
/// `f64::total_cmp`'s order as an integer: sorting these keys sorts the
/// values exactly as `sort_unstable_by(f64::total_cmp)` does, with cheaper
/// comparisons. The map is its own inverse.
pub(super) fn total_key(bits: i64) -> i64 {
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// `values` sorted in `f64::total_cmp` order into `out`.
pub(super) fn sort_total(values: &[f64], keys: &mut Vec<i64>, out: &mut Vec<f64>) {
    keys.clear();
    out.clear();
    // Without a sign bit (the usual metric: latencies, ratios, bytes) a
    // value's key is its bits: two plain copies instead of two maps.
    if values.iter().fold(0, |any, v| any | v.to_bits()) >> 63 == 0 {
        keys.extend(values.iter().map(|v| v.to_bits() as i64));
        keys.sort_unstable();
        out.extend(keys.iter().map(|&k| f64::from_bits(k as u64)));
    } else {
        keys.extend(values.iter().map(|v| total_key(v.to_bits() as i64)));
        keys.sort_unstable();
        out.extend(keys.iter().map(|&k| f64::from_bits(total_key(k) as u64)));
    }
}

/// Whether two samples are the same values, bit for bit.
pub(super) fn same_bits(a: &[f64], b: &[f64]) -> bool {
    // in blocks of a fixed length without an exit per value, which the
    // compiler unrolls and vectorizes
    const BLOCK: usize = 16;
    if a.len() != b.len() {
        return false;
    }
    let (p, q) = (a.chunks_exact(BLOCK), b.chunks_exact(BLOCK));
    let (p_rest, q_rest) = (p.remainder(), q.remainder());
    p.zip(q).all(|(p, q)| {
        let mut acc = 0u64;
        for k in 0..BLOCK {
            acc |= p[k].to_bits() ^ q[k].to_bits();
        }
        acc == 0
    }) && p_rest
        .iter()
        .zip(q_rest)
        .all(|(p, q)| p.to_bits() == q.to_bits())
}

/// `values` sorted in `f64::total_cmp` order into `sorted`, which holds
/// `prev` sorted (when its length says so). If `values` is `prev` with
/// its first `k` values dropped and others appended, those are removed
/// from and merged into `sorted` (the order of equal keys is immaterial:
/// equal keys are equal bits), else `values` is sorted anew. `prev`
/// becomes `values`. When only values were appended (`Sorted::Grown`),
/// `summary`, [`runs`](super::statistic::runs) of the previous `sorted`,
/// becomes that of the new one, updated as the merge places each added
/// value (see [`Merged`]); otherwise it is left for the caller.
pub(super) fn sort_reusing(
    values: &[f64],
    prev: &mut Vec<f64>,
    sorted: &mut Vec<f64>,
    summary: &mut Summary,
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
                let grown = k == 0;
                if dense(sorted.len(), part.len()) {
                    // As many added values as old ones, or nearly (a
                    // short window that grows): one plain merge, and
                    // the tie summary in one pass over the result, cost
                    // less than placing each added value.
                    merge_plain(sorted, part, merged);
                    std::mem::swap(sorted, merged);
                    if grown {
                        *summary = runs(sorted);
                    }
                    return finish(how, values, prev);
                }
                // A window grows by a few values at a time: find where each
                // goes and copy the runs of old values between them whole,
                // instead of comparing every old value.
                // Where the values were only appended, the merge also
                // updates the tie summary (`Merged`): it knows each added
                // value's neighbours without another search.
                let mut i = 0;
                let mut tally = Merged::new(*summary);
                // without sign bits (none in the first value of either,
                // which has the least key), a key is the value's bits
                let first = sorted.first().map_or(0, |v| v.to_bits());
                let unsigned = (first | part.first().map_or(0, |v| v.to_bits())) >> 63 == 0;
                for (a, &p) in part.iter().enumerate() {
                    let end = if unsigned {
                        let bp = p.to_bits();
                        gallop(sorted, i, |&s| s.to_bits() <= bp)
                    } else {
                        let kp = key(p);
                        gallop(sorted, i, |&s| key(s) <= kp)
                    };
                    merged.extend_from_slice(&sorted[i..end]);
                    if grown {
                        let same = a > 0 && part[a - 1] == p;
                        tally.place(sorted, end, p, merged.last().copied(), same);
                    }
                    merged.push(p);
                    i = end;
                }
                merged.extend_from_slice(&sorted[i..]);
                if grown {
                    *summary = tally.summary;
                }
                std::mem::swap(sorted, merged);
            }
        }
    }
    finish(how, values, prev)
}

/// `prev` becomes `values`; `how` is returned.
fn finish(how: Sorted, values: &[f64], prev: &mut Vec<f64>) -> Sorted {
    if how == Sorted::Grown {
        // `prev` is `values`' first part, bit for bit
        let had = prev.len();
        prev.extend_from_slice(&values[had..]);
    } else {
        prev.clear();
        prev.extend_from_slice(values);
    }
    how
}

/// Up to this many old values per added one, a merge takes every value in
/// turn ([`merge_plain`]) and counts walk ([`seek`]) instead of galloping.
const DENSE: usize = 8;

/// Whether a sorted sample of `len` values (added ones included) has few
/// enough per `added` value to be merged plainly ([`DENSE`]).
pub(super) fn dense(len: usize, added: usize) -> bool {
    len <= DENSE * added
}

/// The sorted `a` and `b` merged into `out` (`f64::total_cmp` order; equal
/// keys are equal bits, so which comes first is immaterial).
fn merge_plain(a: &[f64], b: &[f64], out: &mut Vec<f64>) {
    let key = |v: f64| total_key(v.to_bits() as i64);
    let (mut i, mut j) = (0, 0);
    while let (Some(&p), Some(&q)) = (a.get(i), b.get(j)) {
        let take_b = key(q) < key(p);
        out.push(if take_b { q } else { p });
        j += usize::from(take_b);
        i += usize::from(!take_b);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// [`gallop`]'s answer, found by a plain walk from `from` where the places
/// are `dense` (a few values apart).
#[inline]
fn seek<T>(s: &[T], from: usize, dense: bool, pred: impl Fn(&T) -> bool) -> usize {
    if dense {
        let mut i = from;
        while s.get(i).is_some_and(&pred) {
            i += 1;
        }
        i
    } else {
        gallop(s, from, pred)
    }
}

/// [`gallop`]'s answer where it is most likely `from` itself or just past
/// it (the end of a group of equal values, seldom more than one): the
/// first few values walked, then galloping.
#[inline]
fn near<T>(s: &[T], from: usize, pred: impl Fn(&T) -> bool) -> usize {
    const WALK: usize = 4;
    let stop = s.len().min(from + WALK);
    match s[from..stop].iter().position(|t| !pred(t)) {
        Some(k) => from + k,
        None => gallop(s, stop, pred),
    }
}

/// The tie summary ([`runs`](super::statistic::runs)) of a sample kept up to
/// date as a merge places added values into it, in sorted order: only the
/// groups they join change, and a value put between two neighbours
/// replaces their gap by two no wider ones, so the smallest gap is the old
/// one or one of those.
pub(super) struct Merged {
    pub(super) summary: Summary,
    /// The size of the group the last value placed belongs to.
    group: usize,
}

impl Merged {
    pub(super) fn new(summary: Summary) -> Self {
        Self { summary, group: 0 }
    }

    /// Place `p` into the old sorted sample `old` at `end` (the old values
    /// in `f64::total_cmp` order up to `p` lie before it), `left` being the
    /// value placed just before it in the merge (old or added), `same`
    /// whether the last added value equals `p`. Each added value adds
    /// `w(g + 1) - w(g)` to the tie term where `g` is its group's size so
    /// far, which sums to `w(group) - w(before)` over each group.
    #[inline]
    pub(super) fn place(&mut self, old: &[f64], end: usize, p: f64, left: Option<f64>, same: bool) {
        let s = &mut self.summary;
        if same {
            self.group += 1;
            let g = self.group as i128;
            s.ties += tie_weight(g) - tie_weight(g - 1);
        } else {
            // old values equal to p sit next to `end` (on either side:
            // -0.0 and 0.0 are equal, with different keys)
            let equal = |j: usize| old.get(j).is_some_and(|&t| t == p);
            let before = if equal(end.wrapping_sub(1)) || equal(end) {
                // the run of equal old values around `end`: galloping
                // out from it (it is usually short)
                let below = end - gallop_back(&old[..end], |&t| t == p);
                let above = gallop(old, end, |&t| t == p);
                above - below
            } else {
                0
            };
            self.group = before + 1;
            s.ties += tie_weight(self.group as i128) - tie_weight(before as i128);
            if before == 0 {
                // a new distinct value: the gaps to its neighbours (the
                // right one checked against the old sample: a nearer added
                // value checks the smaller gap to p when it is placed)
                let mut gap = |g: f64| {
                    if g > 0.0 && g < s.gap {
                        s.gap = g;
                    }
                };
                if let Some(left) = left {
                    gap(p - left);
                }
                if let Some(&right) = old.get(end) {
                    gap(right - p);
                }
            }
        }
        s.longest = s.longest.max(self.group);
    }
}

/// What `added_x` and `added_y` (sorted, merged into the sorted `x` and
/// `y`) add to `sum(lt_i + le_i)` at shift `d` (see [`RankStatistic`](super::statistic::RankStatistic)):
/// each added x's counts among all of y, and for each added y the old x's
/// with `x - d` above it and at or above it (all of x's less the added).
///
/// The added values are sorted and `t - d` is monotone in `t`, so every
/// count's place is at or after the previous value's: each is found by
/// galloping from there, and each `<=` place from the `<` one.
pub(super) fn grown_counts(x: &[f64], y: &[f64], added_x: &[f64], added_y: &[f64], d: f64) -> i64 {
    let mut total = 0usize;
    let (mut lt, mut le) = (0, 0);
    // the places are a few values apart when there are few values per
    // added one: walked to, not galloped
    let dense = |s: &[f64], added: &[f64]| dense(s.len(), added.len());
    let y_dense = dense(y, added_x);
    for &xi in added_x {
        let v = xi - d;
        lt = seek(y, lt, y_dense, |&t| t < v);
        le = near(y, le.max(lt), |&t| t <= v);
        total += lt + le;
    }
    // per sample (all of x, the added x): the places of `t - d < w` and
    // of `t - d <= w`
    let mut at = [[0usize; 2]; 2];
    let (x_dense, added_dense) = (dense(x, added_y), dense(added_x, added_y));
    for &w in added_y {
        let places = |s: &[f64], dense: bool, [below, at_most]: &mut [usize; 2]| {
            *below = seek(s, *below, dense, |&t| t - d < w);
            *at_most = near(s, (*at_most).max(*below), |&t| t - d <= w);
            // above plus at or above
            2 * s.len() - *at_most - *below
        };
        let [all, new] = &mut at;
        total += places(x, x_dense, all) - places(added_x, added_dense, new);
    }
    total as i64
}

/// How many values at the end of `s` satisfy `pred` (true on a suffix of
/// `s`), found by galloping from the end.
pub(super) fn gallop_back<T>(s: &[T], pred: impl Fn(&T) -> bool) -> usize {
    let (mut lo, mut step) = (0, 1);
    let hi = loop {
        let hi = lo + step;
        if hi > s.len() {
            break s.len();
        }
        if !pred(&s[s.len() - hi]) {
            break hi;
        }
        lo = hi;
        step *= 2;
    };
    // the last `lo` satisfy pred; between lo and hi, a binary search
    let tail = &s[s.len() - hi..s.len() - lo];
    lo + tail.len() - tail.partition_point(|t| !pred(t))
}

/// `from + s[from..].partition_point(pred)` (`pred` true on a prefix of
/// `s`, which reaches at least to `from`), found by galloping from `from`:
/// a few comparisons when the place is near, as the places of sorted
/// values in a sorted sample are to one another's.
pub(super) fn gallop<T>(s: &[T], from: usize, pred: impl Fn(&T) -> bool) -> usize {
    let (mut lo, mut step) = (from, 1);
    let hi = loop {
        let hi = lo + step;
        if hi > s.len() {
            break s.len();
        }
        if !pred(&s[hi - 1]) {
            break hi;
        }
        lo = hi;
        step *= 2;
    };
    lo + s[lo..hi].partition_point(pred)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::MannWhitney;
    use super::super::statistic::{RankStatistic, runs, unpadded};
    use super::super::test_support::*;
    use super::*;

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

    #[test]
    fn sorting_with_and_without_sign_bits_is_total_cmp_order() {
        // the plain-bits keys of a sample without sign bits, and the
        // mapped keys of one with them (-0.0 included), NaN and infinities
        let mut r = Lcg(37);
        let (mut keys, mut got) = (Vec::new(), Vec::new());
        for case in 0..600 {
            let n = r.below(90);
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    let a = match r.below(6) {
                        0 => r.below(4) as f64,
                        1 => f64::INFINITY,
                        2 => f64::NAN,
                        3 => f64::MIN_POSITIVE / 8.0,
                        _ => r.unit() * 100.0,
                    };
                    if case % 2 == 1 && r.below(3) == 0 {
                        -a
                    } else {
                        a
                    }
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable_by(f64::total_cmp);
            sort_total(&v, &mut keys, &mut got);
            assert_eq!(got.map_bits(), want.map_bits(), "case {case}");
        }
    }

    #[test]
    fn tie_summaries_are_the_one_pass_ones() {
        // `runs` against the plain pass it replaced (one branch per
        // neighbour pair), over sorted samples with ties, signed zeros,
        // infinities, subnormals and gaps that round
        fn reference(sorted: &[f64]) -> Summary {
            let (mut ties, mut gap, mut run, mut longest) = (0i128, f64::INFINITY, 1, 1);
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
        let mut r = Lcg(43);
        for case in 0..3000 {
            let n = r.below(40);
            let mut v: Vec<f64> = (0..n)
                .map(|_| match r.below(8) {
                    0 => r.below(4) as f64,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::INFINITY,
                    4 => f64::NEG_INFINITY,
                    5 => f64::MIN_POSITIVE / 8.0 * r.below(3) as f64,
                    6 => 1e15 + r.below(9) as f64 * 0.125,
                    _ => r.unit() * 10.0 - 5.0,
                })
                .collect();
            v.sort_unstable_by(f64::total_cmp);
            let (a, b) = (runs(&v), reference(&v));
            assert_eq!(
                (a.ties, a.gap.to_bits(), a.longest),
                (b.ties, b.gap.to_bits(), b.longest),
                "case {case}: {v:?}"
            );
        }
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
    fn galloping_finds_partition_points_place() {
        let mut r = Lcg(29);
        for _ in 0..2000 {
            let len = r.below(40);
            let mut s: Vec<f64> = (0..len).map(|_| r.below(12) as f64).collect();
            s.sort_by(f64::total_cmp);
            let v = r.below(14) as f64 - 1.0;
            let want = s.partition_point(|&t| t < v);
            let from = r.below(want + 1);
            assert_eq!(gallop(&s, from, |&t| t < v), want, "{s:?} {v} from {from}");
            for dense in [false, true] {
                assert_eq!(seek(&s, from, dense, |&t| t < v), want, "{s:?} {v} {from}");
            }
            assert_eq!(near(&s, from, |&t| t < v), want, "{s:?} {v} {from}");
            let above = s.len() - s.partition_point(|&t| t <= v);
            assert_eq!(gallop_back(&s, |&t| t > v), above, "{s:?} {v}");
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
        // (dense growth keeps no sums: fewer checks than steps)
        let (grown, _) = walk_grown_windows(23, 600, 12, |_, _| 9);
        assert!(grown > 300, "{grown}");
    }

    #[test]
    fn dense_and_sparse_growth_keep_what_a_fresh_load_has() {
        // Long windows that grow now by a few values (merged by
        // galloping), now by many (merged plainly, the counts walked).
        let (grown, [dense, sparse]) =
            walk_grown_windows(41, 400, 30, |r, _| if r.below(2) == 0 { 2 } else { 90 });
        assert!(grown > 300, "{grown}");
        assert!(dense > 30 && sparse > 60, "{dense} {sparse}");
    }

    /// A walk of windows (`next_window`) checking each load's sorted
    /// samples, summaries and kept rank sums against a fresh load's; the
    /// rank sums checked, and the grown experiments merged plainly and by
    /// galloping.
    fn walk_grown_windows(
        seed: u64,
        steps: usize,
        one_in: usize,
        most: impl Fn(&mut Lcg, usize) -> usize,
    ) -> (usize, [usize; 2]) {
        let mut r = Lcg(seed);
        let mut kept = MannWhitney::new();
        let (mut x, mut y): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        let value = |r: &mut Lcg| match r.below(5) {
            0 => r.below(5) as f64,
            1 => -0.0,
            2 => 0.25 * r.below(8) as f64 + 1.5e-4,
            _ => r.unit() * 10.0 - 5.0,
        };
        let shifts = [-1.5e-4, 0.25];
        let (mut grown, mut paths) = (0, [0, 0]);
        for step in 0..steps {
            let most = most(&mut r, step);
            next_window(&mut r, (&mut x, &mut y), one_in, most, value);
            let had = kept.reuse.x.len();
            if had > 0 && x.len() > had && same_bits(&x[..had], &kept.reuse.x) {
                paths[usize::from(had > DENSE * (x.len() - had))] += 1;
            }
            kept.load(&x, &y);
            let mut fresh = MannWhitney::new();
            fresh.load(&x, &y);
            assert_eq!(kept.x.map_bits(), fresh.x.map_bits(), "step {step}");
            assert_eq!(
                kept.y_padded.map_bits(),
                fresh.y_padded.map_bits(),
                "step {step}"
            );
            let m = unpadded(&fresh.y_padded).len();
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
        (grown, paths)
    }
}
