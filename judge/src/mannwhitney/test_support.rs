//! Test helpers shared by the module's tests: the statistic by full
//! re-ranking and by one merge (the references), a small deterministic
//! generator, and datasets and shifts that cover ties and rounding.
//!
//! Not for: anything outside `#[cfg(test)]`.

use super::MannWhitneyError;

/// The textbook statistic by full re-ranking, as Kayenta computes it.
pub(super) fn z_by_reranking(x: &[f64], y: &[f64], d: f64) -> Result<f64, MannWhitneyError> {
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
pub(super) fn ranks_by_merge(x: &[f64], y: &[f64], d: f64) -> (i64, f64) {
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
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    pub(super) fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(super) fn below(&mut self, k: usize) -> usize {
        ((self.unit() * k as f64) as usize).min(k - 1)
    }
}

/// The next window of a walk of windows that mostly grow: one step in
/// `one_in` starts over, one slides (drops a random prefix of each
/// sample); then each sample gets 1 to `most` new values from `value`.
pub(super) fn next_window(
    r: &mut Lcg,
    (x, y): (&mut Vec<f64>, &mut Vec<f64>),
    one_in: usize,
    most: usize,
    value: impl Fn(&mut Lcg) -> f64,
) {
    match r.below(one_in) {
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
    for _ in 0..1 + r.below(most) {
        x.push(value(r));
    }
    for _ in 0..1 + r.below(most) {
        y.push(value(r));
    }
}

/// (experiment, control) pairs covering continuous data at two scales,
/// heavy ties, a grid where shifts form new ties, x values so close
/// that subtracting a shift can merge them, signed zeros, large
/// magnitudes and tiny samples.
pub(super) fn datasets() -> Vec<(Vec<f64>, Vec<f64>)> {
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
pub(super) fn shifts(x: &[f64], y: &[f64], r: &mut Lcg) -> Vec<f64> {
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
