//! Exact samplers for the metrics generator ([`crate::series`]): Poisson
//! (inversion for a small mean, Hörmann's PTRS for a large one), binomial,
//! standard normal and the AR(1) step, with the helpers PTRS needs
//! (`ln_factorial`, a libm-free `floor`). "Exact" means each draws from its
//! distribution with no approximation beyond rounding; the tests check
//! each against its pmf.
//!
//! Not for: what is drawn when (see `series`), or statistics on the
//! draws (the judge crate).

use rand::{Rng, RngExt};
use rand_distr::{Binomial, Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

pub(crate) fn ar1(prev: f64, p: scenarios::Ar1, rng: &mut Xoshiro256PlusPlus) -> f64 {
    if p.sd == 0.0 {
        return 0.0;
    }
    p.rho * prev + p.sd * (1.0 - p.rho * p.rho).sqrt() * gauss(rng)
}

#[inline]
pub(crate) fn gauss(rng: &mut Xoshiro256PlusPlus) -> f64 {
    StandardNormal.sample(rng)
}

/// Mean from which [`poisson`] uses PTRS (valid from 10): below it, the
/// sequential search's ~lambda cheap steps cost less than PTRS, whose
/// quick acceptance is rare at small means.
pub(crate) const PTRS_FROM: f64 = 20.0;

/// A Poisson draw, exact: inversion by sequential search for a small mean
/// (cost grows with the mean, but no set-up), Hörmann's PTRS transformed
/// rejection for a large one (constant cost).
#[inline]
pub(crate) fn poisson(lambda: f64, rng: &mut Xoshiro256PlusPlus) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda >= PTRS_FROM {
        return poisson_ptrs(lambda, rng);
    }
    poisson_given(lambda, rng.random())
}

/// [`poisson`]'s draw for a mean in (0, [`PTRS_FROM`]) once its uniform
/// `u` is drawn.
#[inline]
pub(crate) fn poisson_given(lambda: f64, u: f64) -> u64 {
    // e^-lambda >= 1 - lambda: most draws of a small mean are 0 without
    // computing the exponential
    if u <= 1.0 - lambda {
        return 0;
    }
    invert(lambda, u)
}

/// [`poisson_given`]`(exact, u)` for a mean `exact` known only to be within
/// `dl / 2` of `mean` (the caller passes twice its bound) and known to lie
/// in (0, [`PTRS_FROM`]) (so the exact draw is by inversion from this
/// `u`); None when `u` is too close to a boundary to be sure.
///
/// The zero shortcut compares `u` with 1 - exact, which is within `dl / 2`
/// plus two roundings (2^-53 of at most 20 each) of 1 - `mean`: the margin
/// `dl` + 1e-13 clears both, with the rounding of the margin's own
/// arithmetic. The search beyond it is [`invert_near`]'s.
#[inline]
pub(crate) fn poisson_near(mean: f64, dl: f64, u: f64) -> Option<u64> {
    let edge = 1.0 - mean;
    let margin = dl + 1e-13;
    if u <= edge - margin {
        Some(0)
    } else if u <= edge + margin {
        None
    } else {
        invert_near(mean, u, dl)
    }
}

/// The inversion's search for `u` beyond 0: [`invert_near`], or where it
/// cannot be sure, [`invert_exact`]. Out of line: the histogram's fill
/// inlines [`poisson`], and its search loop keeps its registers here.
#[inline(never)]
fn invert(lambda: f64, u: f64) -> u64 {
    invert_near(lambda, u, -0.0).unwrap_or_else(|| invert_exact(lambda, u))
}

/// The inversion's search for `u` (a mean below [`PTRS_FROM`]), as
/// written: the first k whose cumulative pmf, summed from glibc's
/// e^-lambda, reaches `u`.
fn invert_exact(lambda: f64, u: f64) -> u64 {
    let mut p = (-lambda).exp();
    let mut cumulative = p;
    let mut k = 0.0;
    // rounding can leave the sum a hair below 1: stop where the pmf is
    // far below it (P(k > 200) < 1e-100 for these means)
    while u > cumulative && k < 200.0 {
        k += 1.0;
        p *= lambda / k;
        cumulative += p;
    }
    // a whole number in 0..=200: through i64, without the saturating u64
    // conversion's range checks
    k as i64 as u64
}

/// [`invert_exact`]'s answer, or None when it cannot be sure of it: the
/// same search from [`exp_neg_near`]'s e^-lambda. Only comparisons of `u`
/// with the cumulative sums reach the draw, and the two searches' sums
/// differ by at most the relative `INVERT_MARGIN` (the exponentials' 5e-6
/// and 2^-53 for each of at most 200 roundings of each recurrence, with
/// room to spare); an answer whose two comparisons clear that margin is
/// the exact search's (the sums never decrease, so it stops at the same
/// k). Otherwise (475 of 1.59M draws in the 100-run catalog) the caller
/// runs the exact search.
///
/// With `dl` > 0, `lambda` is a near mean and the exact search's mean is
/// within `dl / 2` of it (the histogram's bucket means from a near CDF:
/// the caller passes twice its bound): every true cumulative pmf C_k
/// moves by at most `dl / 2` between the two means (its derivative in the
/// mean is minus the pmf at k, within [-1, 0]), so the comparisons also
/// clear `dl`, absolute. The additions of `dl` round by at most 2^-53 of
/// their sums: the other half of `dl` and the relative margin's factor 2
/// absorb that. For the exact mean itself `dl` is -0.0 (x + -0.0 is x for
/// every x, so both additions fold away). Inlined into both of its
/// callers (a call between them cost 12M instructions in the 100-run
/// catalog): [`invert`], out of line, and [`poisson_near`], which the
/// histogram's fill inlines (the search out of line cost 23M more there:
/// the call and its spills outweigh the fill's register pressure).
///
/// Its recurrence multiplies by `lambda` and by [`INVERSE`]'s 1 / k
/// (itself rounded) instead of dividing by k: three roundings a step
/// instead of the exact search's two, 2^-53 each, so after at most 200
/// steps the two recurrences' terms differ relatively by less than 1e-13
/// beyond the exponentials' 5e-6, which the margin's factor 2 (5e-6 to
/// spare) absorbs with the rest. A multiplication by a loaded constant
/// instead of a division and the float count it needs: two instructions
/// fewer a step (8 steps a search on average in the 100-run catalog).
#[inline(always)]
fn invert_near(lambda: f64, u: f64, dl: f64) -> Option<u64> {
    const INVERT_MARGIN: f64 = 2.0 * (EXP_NEAR_ERROR + 1e-13);
    let mut p = exp_neg_near(lambda);
    let mut cumulative = p;
    let mut k = 0;
    // the search as written, but its k < 200 checked once per eight steps
    // (an answer beyond 192 is left to the exact search)
    if u > cumulative {
        'search: loop {
            if k > 192 {
                return None;
            }
            // 1 / k for the next eight k (k + 8 <= 200: one bounds check)
            for &inverse in &INVERSE[k + 1..k + 9] {
                k += 1;
                p = p * lambda * inverse;
                cumulative += p;
                if u <= cumulative {
                    break 'search;
                }
            }
        }
    }
    // the sum before the last term was at most cumulative - p plus the
    // last addition's rounding and the subtraction's (each half an ulp of
    // at most cumulative <= 1.00001: below 1.2e-16), and for k >= 1 at
    // least the first term, e^-lambda >= 1.9e-9 for every mean the search
    // sees (below 20.06): the roundings are below 1.3e-7 of cumulative -
    // p, which the factor's 1e-6 covers with the multiplication's own
    // rounding (one multiplication and addition fewer than adding
    // 1e-15 cumulative)
    // (`dl` = -0.0, the exact mean, folds both additions away)
    let sure = k < 200
        && u + dl <= cumulative * (1.0 - INVERT_MARGIN)
        && (k == 0 || u > (cumulative - p) * (1.0 + INVERT_MARGIN + 1e-6) + dl);
    sure.then_some(k as u64)
}

/// 1 / k for k in 1..=200 (index 0 unused), each rounded once:
/// [`invert_near`]'s recurrence.
static INVERSE: [f64; 201] = {
    let mut table = [0.0; 201];
    let mut k = 1;
    while k < 201 {
        table[k] = 1.0 / k as f64;
        k += 1;
    }
    table
};

/// Bound on [`exp_neg_near`]'s relative error (beyond its table,
/// [`exp_neg_far`]'s series' truncation is below 4.9e-6, the reduction's
/// and the rounding's below 1e-12; from the table, below 6.7e-7).
const EXP_NEAR_ERROR: f64 = 5e-6;
// the bound its test checks, and glibc's ulp
const _: () = assert!(EXP_NEAR_ERROR >= 4.9e-6 + 3e-16);

/// e^-`lambda` within the relative [`EXP_NEAR_ERROR`], for `lambda` in
/// [0, 700]. Below about 20 (every mean the inversion sees) from
/// [`EXP_TABLE`]: e^-(i / 32) e^-d with i = round(32 lambda), |d| <=
/// 1/64 (d = lambda - i / 32 is exact: 32 lambda is, and d is lambda
/// itself for i = 0 and by Sterbenz's lemma beyond), e^-d by its Taylor
/// series through d^2 (the rest is below (1/64)^3 / 3! e^(1/64) < 6.6e-7
/// of e^-d), the table's entries within 1e-13 relative (its test
/// checks), the rounding a few 1e-16: inside the bound, in fewer
/// instructions than [`exp_neg_far`]'s reduction by ln 2 and series
/// through r^5 (and two fewer than a table at 1/16 with a cubic, whose
/// error of 4.2e-8 nothing needed). Not glibc's bits: only for deciding
/// comparisons with a margin.
#[inline]
fn exp_neg_near(lambda: f64) -> f64 {
    // i = round(32 lambda) by adding 1.5 2^52 (see `exp_neg_far`)
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let shifted = lambda * 32.0 + ROUND;
    let i = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    // (a NaN or a mean beyond the table: the reduction by ln 2)
    let Some(&row) = EXP_TABLE.get(i as usize) else {
        return exp_neg_far(lambda);
    };
    let d = lambda - (shifted - ROUND) * (1.0 / 32.0);
    row * (1.0 - d * (1.0 - d * (1.0 / 2.0)))
}

/// e^-(i / 32) for i in 0..=642 (means to 20.06): e^-1/32 by its Taylor
/// series (the terms through n = 12, the rest below 1e-28), its powers by
/// repeated products (642 roundings of 2^-53: within 8e-14 relative).
static EXP_TABLE: [f64; 643] = {
    let mut step = 0.0;
    let mut term = 1.0;
    let mut n = 0;
    while n <= 12 {
        step += term;
        n += 1;
        term *= -1.0 / 32.0 / n as f64;
    }
    let mut table = [1.0; 643];
    let mut i = 1;
    while i < 643 {
        table[i] = table[i - 1] * step;
        i += 1;
    }
    table
};

/// [`exp_neg_near`] beyond its table: 2^-n e^-r with n = round(lambda /
/// ln 2) and |r| <= ln 2 / 2, e^-r by its Taylor series through r^5 (the
/// rest is below 0.3466^6 / 6! e^0.3466 < 3.41e-6, relative to e^-r >=
/// 0.707: 4.9e-6).
#[cold]
#[inline(never)]
fn exp_neg_far(lambda: f64) -> f64 {
    debug_assert!((0.0..=700.0).contains(&lambda), "{lambda}");
    // n = round(lambda / ln 2) by adding 1.5 2^52 (no conversions): n is
    // the low bits of the sum, the sum less 1.5 2^52 is n exactly
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let shifted = lambda * std::f64::consts::LOG2_E + ROUND;
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let r = lambda - (shifted - ROUND) * std::f64::consts::LN_2;
    let series =
        1.0 - r * (1.0 - r * (1.0 / 2.0 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0)))));
    // 2^-n, n in 0..=1010: a normal double for n <= 1022
    series * f64::from_bits((1023 - n) << 52)
}

/// PTRS (W. Hörmann, "The transformed rejection method for generating
/// Poisson random variables", Insurance: Mathematics and Economics 12,
/// 1993), as numpy's `random_poisson_ptrs`; valid for `lambda >= 10`.
/// (Generic over the generator only for the tests, which script it.)
#[inline(never)]
fn poisson_ptrs<R: Rng>(lambda: f64, rng: &mut R) -> u64 {
    let slam = lambda.sqrt();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v: f64 = rng.random();
        let us = 0.5 - u.abs();
        let k = floor((2.0 * a / us + b) * u + lambda + 0.43);
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        // ln v + ln inv_alpha - ln(a / us^2 + b) against the log pmf
        let lhs = v * inv_alpha / (a / (us * us) + b);
        if ptrs_accepts(lhs, lambda, k) {
            return k as u64;
        }
    }
}

/// [`poisson_ptrs`]`(exact, rng)` for a mean `exact` known only to be
/// within `dl` of `mean` (the caller passes its bound) and known to be at
/// least [`PTRS_FROM`]; None when some comparison of some candidate is too
/// close to be sure (then the caller restores the generator it had before
/// the call and draws from the exact mean: the same random numbers).
///
/// PTRS's outcome reaches the draw only through comparisons and one
/// floor; each is decided here where it clears the change of its operands
/// between the two means plus every rounding. Bounds for a mean L >= 20
/// (b = 0.931 + 2.53 sqrt L >= 12.245, b' = 1.265 / sqrt L <= 0.2829):
/// - vr' = 3.6224 b' / (b - 2)^2 <= 0.00976; vr (about 0.6) rounds by a
///   few 1e-16 in each evaluation: `vr_margin` = 0.02 dl + 1e-14.
/// - t = (2a / us + b) u with a = 0.02483 b - 0.059 > 0: |t'| <= max(a' /
///   a, b' / b) |t| = max(b' / (b - 2.3762), b' / b) |t| <= 0.0287 |t|
///   (and |t| moves by at most 3% within dl <= 1/2); the floor's argument
///   t + L + 0.43 rounds by at most six roundings of |t| + L + 1 in each
///   evaluation. Its margin, dl (1 + 0.05 |t|) + 1e-14 (|t| + mean + 2),
///   decides the floor where the argument is that far from an integer
///   (then k, and k < 0, are the exact draw's).
/// - the acceptance test: ln lhs moves by at most inv_alpha' / inv_alpha
///   (<= 1.1328 b' / (b - 3.4)^2 / 1.1239 < 0.0037) plus 0.0287 (the
///   divisor a / us^2 + b as t), the log pmf -L + k ln L - ln k! by at
///   most 1 + k / L: [`ptrs_decides`] adds dl (1.05 + k / (mean - dl)).
/// - us >= 0.07, us < 0.013 and v > us do not read the mean.
#[inline(never)]
pub(crate) fn poisson_ptrs_near<R: Rng>(mean: f64, dl: f64, rng: &mut R) -> Option<u64> {
    debug_assert!(mean - dl >= PTRS_FROM, "{mean} {dl}");
    // (the bounds below allow for dl up to 1/2; a NaN fails the caller's
    // mean - dl >= 20)
    if dl > 0.5 {
        return None;
    }
    let slam = mean.sqrt();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    let vr_margin = 0.02 * dl + 1e-14;
    let floor_margin = dl + 1e-14 * (mean + 2.0);
    let floor_slope = 0.05 * dl + 1e-14;
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v: f64 = rng.random();
        let us = 0.5 - u.abs();
        let t = (2.0 * a / us + b) * u;
        let x = t + mean + 0.43;
        // floor(x) wherever it is read: x - 1/2 rounded to the nearest
        // integer by adding and taking away 1.5 2^52 (see `exp_neg_far`),
        // three instructions where `floor` takes a dozen. k is read only
        // where `k_sure` holds, and then it is floor(x) whatever k is: the
        // computed x - k lies in (0, 1), and since rounding is monotonic
        // and 0 and 1 are doubles, so does the real x - k. And `k_sure`
        // holds wherever it did with `floor`'s k: the margin is at least
        // 1e-14 (|t| + mean + 2) >= 1e-14 (|x| + 1.5), so x is more than
        // that from every integer, which needs |x| < 2^51; x - 1/2 rounds
        // by at most 2^-53 (|x| + 1/2), less than that, so it stays
        // strictly between floor(x) -+ 1/2, and for |x - 1/2| < 2^51 the
        // trick rounds exactly: to floor(x).
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let shifted = x - 0.5 + ROUND;
        let k = shifted - ROUND;
        // and k as a whole number, the sum's low bits (two's complement
        // below 0), wherever it is read: |x - 1/2| < 2^51 there
        let whole = shifted.to_bits().wrapping_sub(ROUND.to_bits());
        // the floor's argument clears both integers around it (a NaN or
        // an argument beyond 2^51 fails)
        let margin = floor_margin + floor_slope * t.abs();
        let frac = x - k;
        let k_sure = frac > margin && frac < 1.0 - margin;
        // k is in [0, 2^51) wherever it is returned (the acceptance path
        // checks k < 0; where us >= 0.07, |u| <= 0.43 and 2a / us < 0.71
        // b, so t >= -0.735 b and x >= L - 1.86 sqrt L - 0.26 > 11 for L
        // >= 20): `whole` is the draw, without a conversion
        if us >= 0.07 {
            if v <= vr - vr_margin {
                return k_sure.then_some(whole);
            }
            if v <= vr + vr_margin {
                return None;
            }
        }
        if us < 0.013 && v > us {
            continue;
        }
        if !k_sure {
            return None;
        }
        if k < 0.0 {
            continue;
        }
        let lhs = v * inv_alpha / (a / (us * us) + b);
        let extra = dl * (1.05 + k / (mean - dl));
        match ptrs_decides_near(lhs, mean, k, whole, extra) {
            Some(true) => return Some(whole),
            Some(false) => continue,
            None => return None,
        }
    }
}

/// [`ptrs_decides`] for [`poisson_ptrs_near`], out of line as
/// [`ptrs_accepts`] is.
#[cold]
#[inline(never)]
fn ptrs_decides_near(lhs: f64, mean: f64, k: f64, whole: u64, extra: f64) -> Option<bool> {
    ptrs_decides(lhs, mean, k, whole, extra)
}

/// PTRS's exact acceptance test, ln(`lhs`) <= ln P(K = `k`), kept out of
/// line: it is the rare path, and inlined its logarithms would be
/// computed speculatively on the quick one.
///
/// Only the comparison's outcome reaches the draw, so it is first decided
/// from [`ln_near`] (a cheap logarithm within 4e-8 of the true one) with
/// a margin that bounds every difference between the two evaluations; only
/// a comparison within that margin (11 of 413K in the 100-run catalog)
/// computes [`ptrs_accepts_exact`]'s glibc logarithms. The outcome is the exact
/// test's in every case (a test compares them on millions of cases, many
/// built to sit at the boundary).
#[cold]
#[inline(never)]
fn ptrs_accepts(lhs: f64, lambda: f64, k: f64) -> bool {
    // (k is whole and at least 0: through i64, without the saturating
    // u64 conversion's range checks)
    ptrs_decides(lhs, lambda, k, k as i64 as u64, 0.0)
        .unwrap_or_else(|| ptrs_accepts_exact(lhs, lambda, k))
}

/// [`ptrs_accepts`]'s outcome where the near logarithms decide it with
/// `extra` added to the margin (0, or for a near mean the test's change
/// between it and the exact one), else None; `whole` is the whole k >= 0
/// as an integer. Inlined into both of its out of line callers.
#[inline(always)]
fn ptrs_decides(lhs: f64, lambda: f64, k: f64, whole: u64, extra: f64) -> Option<bool> {
    let ln_lhs = ln_near(lhs)?;
    let ln_lambda = ln_near(lambda)?;
    debug_assert!(k >= 0.0 && whole as f64 == k, "{k} {whole}");
    let (ln_fact, ln_x) = match LN_FACTORIAL_NEAR.get(whole as usize) {
        // ln x <= ln 256 < 5.6 for `scale`
        Some(&ln_fact) => (ln_fact, 5.6),
        None => {
            let ln_x = ln_near(k + 1.0)?;
            (stirling_near(k + 1.0, ln_x), ln_x)
        }
    };
    let rhs = -lambda + k * ln_lambda - ln_fact;
    // How far the exact evaluation can be from this one: each logarithm
    // is within LN_NEAR_ERROR of the true one and enters with a
    // coefficient of at most k + 1 (ln lhs: 1; ln lambda: k; ln x in
    // ln k!: x - 1/2), 2 LN_NEAR_ERROR (k + 2) in all; glibc's logarithms
    // (within an ulp) and the rounding of both evaluations (some 20
    // operations a side on terms no larger than `scale`) stay far below
    // 1e-12 scale; Stirling's series cut short differs by at most
    // STIRLING_NEAR_ERROR. The margin is twice that.
    let scale = 10.0 + ln_lhs.abs() + lambda + (k + 2.0) * (2.0 + ln_lambda.abs() + ln_x.abs());
    let margin =
        1e-12 * scale + 4.0 * LN_NEAR_ERROR * (k + 2.0) + 2.0 * STIRLING_NEAR_ERROR + extra;
    if ln_lhs + margin < rhs {
        Some(true)
    } else if ln_lhs - margin > rhs {
        Some(false)
    } else {
        None
    }
}

/// [`ptrs_accepts`] with glibc's logarithms: the test as written.
fn ptrs_accepts_exact(lhs: f64, lambda: f64, k: f64) -> bool {
    lhs.ln() <= -lambda + k * lambda.ln() - ln_factorial(k)
}

/// Bound on |[`ln_near`]`(x)` - ln x| for a positive normal `x` (the
/// series' truncation is below 3e-8, its rounding below 1e-12).
const LN_NEAR_ERROR: f64 = 4e-8;
// the bound its test checks, and glibc's ulp at the largest logarithm
const _: () = assert!(LN_NEAR_ERROR >= 3e-8 + 2e-16 * 745.0);

/// ln `x` within [`LN_NEAR_ERROR`], for a positive normal finite `x`
/// (None otherwise): x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m =
/// 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.1716, by its series
/// through s^7 (the rest is below 2 s^9 / 9 / (1 - s^2) < 3e-8). Not
/// glibc's bits: only for deciding comparisons with a margin.
#[inline]
const fn ln_near(x: f64) -> Option<f64> {
    // sqrt(1/2)'s bits: m 2^e with m in [sqrt(1/2), sqrt(2)) from the
    // bits' offset from it (musl's log reduction)
    const OFF: u64 = 0x3fe6_a09e_667f_3bcd;
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = x.to_bits();
    // positive, normal and finite: bits in [2^52, 0x7ff0 << 48)
    if bits.wrapping_sub(1 << 52) >= 0x7fe0_0000_0000_0000 {
        return None;
    }
    let shifted = bits.wrapping_sub(OFF);
    let e = (shifted as i64 >> 52) as i32 as f64;
    let m = f64::from_bits((shifted & MANTISSA) + OFF);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0)));
    Some(e * std::f64::consts::LN_2 + s * series)
}

/// `floor` without a libm call (baseline x86-64 has no rounding
/// instruction); exact for |x| < 2^63, and infinities and NaN pass through
/// `f64::floor`.
fn floor(x: f64) -> f64 {
    if x.abs() < 9.0e18 {
        let t = x as i64 as f64;
        if t > x { t - 1.0 } else { t }
    } else {
        x.floor()
    }
}

/// ln(k!) for a whole `k >= 0`: a table below 10, Stirling's series above
/// (numpy's `random_loggam`: relative error ~1e-16 there).
fn ln_factorial(k: f64) -> f64 {
    if k < 10.0 {
        return ln_factorial_small(k);
    }
    let x = k + 1.0;
    stirling(x, x.ln())
}

/// ln(k!) for a whole `k` in 0..10, from the table.
fn ln_factorial_small(k: f64) -> f64 {
    LN_FACTORIAL_SMALL[k as usize]
}

/// ln(k!) for k in 0..10.
const LN_FACTORIAL_SMALL: [f64; 10] = [
    0.0,
    0.0,
    std::f64::consts::LN_2,
    1.791_759_469_228_055,
    3.178_053_830_347_945_8,
    4.787_491_742_782_046,
    6.579_251_212_010_101,
    8.525_161_361_065_415,
    10.604_602_902_745_25,
    12.801_827_480_081_469,
];

/// ln(k!) for k in 0..256 as [`ptrs_decides`] computed it: below 10 from
/// [`LN_FACTORIAL_SMALL`], above from [`stirling_near`]`(k + 1,
/// `[`ln_near`]`(k + 1))`, here at compile time by the same operations
/// (each correctly rounded there as at run time: its test checks every
/// entry against the run-time values), so the acceptance test's margin
/// holds as it is. 95% of the 100-run catalog's acceptance tests read it,
/// sparing a logarithm and Stirling's series (about 30 instructions).
static LN_FACTORIAL_NEAR: [f64; 256] = {
    let mut table = [0.0; 256];
    let mut k = 0;
    while k < 256 {
        table[k] = if k < 10 {
            LN_FACTORIAL_SMALL[k]
        } else {
            let x = (k + 1) as f64;
            match ln_near(x) {
                Some(ln_x) => stirling_near(x, ln_x),
                None => panic!("ln_near of a whole number from 11"),
            }
        };
        k += 1;
    }
    table
};

/// Stirling's series for ln((x - 1)!) = ln Gamma(x), given `ln_x` = ln x.
#[inline]
fn stirling(x: f64, ln_x: f64) -> f64 {
    const A: [f64; 10] = [
        8.333_333_333_333_333e-2,
        -2.777_777_777_777_778e-3,
        7.936_507_936_507_937e-4,
        -5.952_380_952_380_952e-4,
        8.417_508_417_508_418e-4,
        -1.917_526_917_526_918e-3,
        6.410_256_410_256_41e-3,
        -2.955_065_359_477_124e-2,
        1.796_443_723_688_307e-1,
        -1.392_432_216_905_9,
    ];
    let x2 = 1.0 / (x * x);
    let series = A.iter().rev().fold(0.0, |acc, &c| acc * x2 + c);
    series / x + 0.918_938_533_204_672_7 + (x - 0.5) * ln_x - x
}

/// Bound on |[`stirling_near`] - [`stirling`]| for x >= 11 beyond the
/// roundings of the three additions both end with (which the acceptance
/// test's margin counts among its roundings): the left-out terms' sum is
/// below 3.3e-11, the series' own roundings below 1e-17.
const STIRLING_NEAR_ERROR: f64 = 4e-11;

/// [`stirling`]'s series through its third term, for x >= 11 (k >= 10),
/// only for deciding comparisons with a margin: the seven terms left out
/// are c_n / x^(2n + 1) for n from 3, the first at most 5.96e-4 / 11^7 <
/// 3.06e-11 and each of the others below 1/15 of the one before (|c_(n+1)
/// / c_n| < 7.8 and x^2 >= 121): below 3.3e-11 in all. Seven
/// multiply-adds and a division fewer than the whole series.
#[inline]
const fn stirling_near(x: f64, ln_x: f64) -> f64 {
    let r = 1.0 / x;
    let r2 = r * r;
    let series = r
        * (8.333_333_333_333_333e-2
            - r2 * (2.777_777_777_777_778e-3 - r2 * 7.936_507_936_507_937e-4));
    series + 0.918_938_533_204_672_7 + (x - 0.5) * ln_x - x
}

/// A binomial draw, exact: inversion by sequential search for a small
/// mean (most error counts: usually one uniform and no logarithm),
/// rand_distr's sampler for a large one.
pub(crate) fn binomial(n: u64, p: f64, rng: &mut Xoshiro256PlusPlus) -> u64 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(n, 1.0 - p, rng);
    }
    let nf = n as f64;
    if nf * p < 16.0 {
        let u: f64 = rng.random();
        // (1 - p)^n >= 1 - n p (Bernoulli): most draws of a small mean
        // are 0 without computing the power
        if u <= 1.0 - nf * p {
            return 0;
        }
        let odds = p / (1.0 - p);
        let mut pk = (nf * (-p).ln_1p()).exp();
        let mut cumulative = pk;
        let mut k = 0.0;
        while u > cumulative && k < nf {
            pk *= (nf - k) / (k + 1.0) * odds;
            k += 1.0;
            let next = cumulative + pk;
            if next == cumulative {
                // the rest of the tail is below rounding
                break;
            }
            cumulative = next;
        }
        return k as u64;
    }
    Binomial::new(n, p).map_or(0, |d| d.sample(rng))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn binomial_draws_fit_the_pmf_on_every_path() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
        let draws = 1_000_000;
        // inversion with and without its shortcut to 0, the complement,
        // and rand_distr's sampler
        for (n, p) in [
            (100u64, 1e-9f64),
            (100, 0.001),
            (3, 0.3),
            (40, 0.2),
            (1000, 0.0159),
            (50, 0.9),
            (10_000, 0.3),
        ] {
            let nf = n as f64;
            let lnf = ln_factorials(n as usize);
            let pmf: Vec<f64> = (0..=n as usize)
                .map(|k| {
                    let ln_choose = lnf[n as usize] - lnf[k] - lnf[n as usize - k];
                    let kf = k as f64;
                    (ln_choose + kf * p.ln() + (nf - kf) * (-p).ln_1p()).exp()
                })
                .collect();
            let mut counts = vec![0.0; n as usize + 1];
            for _ in 0..draws {
                counts[binomial(n, p, &mut rng) as usize] += 1.0;
            }
            let expected: Vec<f64> = pmf.iter().map(|q| q * draws as f64).collect();
            let (stat, df) = chi_square(&counts, &expected);
            assert!(
                stat < chi_square_limit(df),
                "n {n} p {p}: chi-square {stat} on {df} df"
            );
        }
        assert_eq!(binomial(10, 0.0, &mut rng), 0);
        assert_eq!(binomial(10, 1.0, &mut rng), 10);
    }

    /// ln(k!) for k = 0..=n by summing logs: no approximation.
    fn ln_factorials(n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n + 1];
        for k in 1..=n {
            out[k] = out[k - 1] + (k as f64).ln();
        }
        out
    }

    #[test]
    fn ln_factorial_and_floor_are_exact_enough() {
        let mut ln = 0.0f64;
        for k in 0..200u32 {
            if k > 0 {
                ln += f64::from(k).ln();
            }
            let got = ln_factorial(f64::from(k));
            assert!(
                (got - ln).abs() <= 1e-13 * ln.max(1.0),
                "{k}: {got} vs {ln}"
            );
        }
        for x in [
            -2.5,
            -2.0,
            -0.3,
            0.0,
            0.7,
            3.0,
            1e17 + 3.0,
            -1e17,
            1e300,
            -1e300,
        ] {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
        assert!(floor(f64::NAN).is_nan());
        assert_eq!(floor(f64::NEG_INFINITY), f64::NEG_INFINITY);
    }

    /// `ln_near` is within its bound of glibc's `ln` from the smallest
    /// normal double to the largest.
    #[test]
    fn ln_near_is_within_its_bound() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut xs = vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            1.0,
            std::f64::consts::SQRT_2,
            std::f64::consts::SQRT_2.next_up(),
            std::f64::consts::SQRT_2.next_down(),
            0.5f64.next_down(),
            2.0f64.next_down(),
        ];
        for _ in 0..2_000_000 {
            xs.push(f64::from_bits(
                rng.random_range(f64::MIN_POSITIVE.to_bits()..=f64::MAX.to_bits()),
            ));
            xs.push(rng.random_range(0.0..2.0));
            xs.push(rng.random_range(1.0..1e6));
        }
        for x in xs {
            let Some(got) = ln_near(x) else {
                panic!("{x}: no logarithm")
            };
            // the truncation's 3e-8 and glibc's ulp
            assert!(
                (got - x.ln()).abs() <= 3e-8 + 2e-16 * x.ln().abs(),
                "{x}: {got} vs {}",
                x.ln()
            );
        }
        for x in [0.0, -1.0, f64::MIN_POSITIVE / 2.0, f64::INFINITY, f64::NAN] {
            assert!(ln_near(x).is_none(), "{x}");
        }
    }

    /// Stirling's series cut short is within its bound of the whole
    /// series, from x = 11 (the smallest it serves, where the bound is
    /// tightest) to 1e9, with the same logarithm.
    #[test]
    fn stirling_near_is_within_its_bound() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let mut worst = 0.0f64;
        let whole = (11..2_000).map(f64::from);
        let random = (0..100_000).map(|_| floor(10f64.powf(rng.random_range(1.05..9.0))) + 1.0);
        for x in whole.chain(random) {
            let ln_x = x.ln();
            let d = (stirling_near(x, ln_x) - stirling(x, ln_x)).abs();
            // beyond the cut, the roundings of two sums of size x ln x
            let rounding = 4e-16 * x * ln_x;
            assert!(d <= STIRLING_NEAR_ERROR + rounding, "{x} {d}");
            if x < 100.0 {
                worst = worst.max(d);
            }
        }
        // the bound is not loose by orders of magnitude at x = 11
        assert!(worst > STIRLING_NEAR_ERROR / 4.0, "{worst}");
    }

    /// The table of ln k! built at compile time holds the values the
    /// acceptance test computed at run time, bit for bit.
    #[test]
    fn the_ln_factorial_table_is_the_run_times() {
        for (k, &entry) in LN_FACTORIAL_NEAR.iter().enumerate() {
            let kf = k as f64;
            let want = if k < 10 {
                ln_factorial_small(kf)
            } else {
                let x = std::hint::black_box(kf + 1.0);
                stirling_near(x, ln_near(x).expect("a whole number from 11"))
            };
            assert_eq!(entry.to_bits(), want.to_bits(), "{k}");
        }
    }

    /// PTRS's acceptance decided with the margin is the exact test's, on
    /// random cases across the means PTRS serves and on cases built to
    /// sit at the test's boundary (ln lhs within a few ulps of ln P(K = k)).
    #[test]
    fn ptrs_acceptance_is_the_exact_tests() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (mut cases, mut accepted) = (0u64, 0u64);
        let mut check = |lhs: f64, lambda: f64, k: f64| {
            let want = ptrs_accepts_exact(lhs, lambda, k);
            assert_eq!(ptrs_accepts(lhs, lambda, k), want, "{lhs} {lambda} {k}");
            cases += 1;
            accepted += u64::from(want);
        };
        for i in 0..1_000_000 {
            let lambda = match i % 4 {
                0 => rng.random_range(20.0..40.0),
                1 => 10f64.powf(rng.random_range(1.3..3.0)),
                2 => 10f64.powf(rng.random_range(3.0..7.0)),
                _ => 20.0,
            };
            let sd = lambda.sqrt();
            let k = floor(lambda + sd * rng.random_range(-6.0..6.0)).max(0.0);
            if i % 2 == 0 {
                // as PTRS builds it: ln lhs near ln P(K = k)
                let lhs = rng.random::<f64>() * 1.2 / (sd * 2.5);
                check(lhs, lambda, k);
            } else {
                // at the boundary
                let rhs = -lambda + k * lambda.ln() - ln_factorial(k);
                let mut lhs = rhs.exp();
                if lhs > 0.0 {
                    for _ in 0..4 {
                        lhs = lhs.next_down();
                    }
                    for _ in 0..9 {
                        check(lhs, lambda, k);
                        lhs = lhs.next_up();
                    }
                    // and near the margin, either side
                    for r in [1e-12, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5] {
                        check(lhs * (1.0 + r), lambda, k);
                        check(lhs * (1.0 - r), lambda, k);
                    }
                }
            }
        }
        check(0.0, 30.0, 30.0);
        check(f64::MIN_POSITIVE / 4.0, 30.0, 3.0);
        check(f64::NAN, 30.0, 30.0);
        // both outcomes, many times
        assert!(
            accepted > cases / 10 && accepted < cases * 9 / 10,
            "{accepted} of {cases}"
        );
    }

    /// `exp_neg_near` is within its bound of glibc's exponential.
    #[test]
    fn exp_neg_near_is_within_its_bound() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut lambdas = vec![0.0, 700.0, 20.0, std::f64::consts::LN_2 / 2.0];
        for n in 0..1000 {
            let mid = (f64::from(n) + 0.5) * std::f64::consts::LN_2;
            lambdas.extend([mid, mid.next_up(), mid.next_down()]);
        }
        // the table's rows, the midpoints between them (where |d| is
        // largest) and the table's end
        for i in 0..=660 {
            for x in [f64::from(i) / 32.0, (f64::from(i) + 0.5) / 32.0] {
                lambdas.extend([x, x.next_up(), x.next_down()]);
            }
        }
        for (i, &row) in EXP_TABLE.iter().enumerate() {
            let want = (-(i as f64) / 32.0).exp();
            assert!((row - want).abs() <= 1e-13 * want, "{i}: {row} vs {want}");
        }
        for _ in 0..2_000_000 {
            lambdas.push(rng.random_range(0.0..20.0));
            lambdas.push(rng.random_range(0.0..700.0));
        }
        for lambda in lambdas {
            let (got, want) = (exp_neg_near(lambda), (-lambda).exp());
            // (from the table, to 20.06, within 6.7e-7)
            let bound = if lambda <= 20.0 { 6.7e-7 } else { 4.9e-6 };
            assert!(
                (got - want).abs() <= bound * want,
                "{lambda}: {got} vs {want}"
            );
        }
    }

    /// The inversion decided from the near exponential answers what the
    /// exact search answers, or leaves it to that search: on random
    /// uniforms over the means the inversion serves, and on uniforms at
    /// (and one or two ulps around) each of the exact search's sums.
    #[test]
    fn inversion_is_the_exact_searchs() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(15);
        let check = |lambda: f64, u: f64| {
            let want = invert_exact(lambda, u);
            let got = invert_near(lambda, u, -0.0);
            if let Some(k) = got {
                assert_eq!(k, want, "{lambda} {u}");
            }
            got.is_some()
        };
        let (mut random, mut decided) = (0u64, 0u64);
        for i in 0..100_000 {
            let lambda = match i % 3 {
                0 => rng.random_range(0.0..1.0),
                1 => rng.random_range(0.0..PTRS_FROM),
                _ => 10f64.powf(rng.random_range(-6.0..1.3)),
            };
            random += 1;
            decided += u64::from(check(lambda, rng.random()));
            // at the exact search's sums
            let mut p = (-lambda).exp();
            let mut cumulative = p;
            let mut k = 0.0;
            while k < 40.0 && cumulative < 1.0 {
                let mut u = cumulative.next_down().next_down();
                for _ in 0..5 {
                    check(lambda, u);
                    u = u.next_up();
                }
                for r in [1e-6, 1e-5, 3e-5] {
                    check(lambda, cumulative * (1.0 + r));
                    check(lambda, cumulative * (1.0 - r));
                }
                k += 1.0;
                p *= lambda / k;
                cumulative += p;
            }
        }
        // near 1, where the sum may never reach u
        for lambda in [0.5, 5.0, 19.9] {
            for u in [1.0f64.next_down(), 1.0f64.next_down().next_down()] {
                check(lambda, u);
            }
        }
        // nearly every random uniform is decided without the exact search
        assert!(decided + random / 1000 >= random, "{decided} of {random}");
    }

    /// A Poisson draw decided from a near mean (within half the margin
    /// `dl` of the exact one) is the exact mean's draw from the same
    /// uniform, or left undecided: near means either side of the exact
    /// one, uniforms at (and ulps around, and `dl` around) each of the
    /// exact search's sums and its zero shortcut's edge.
    #[test]
    fn a_draw_from_a_near_mean_is_the_exact_means() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let (mut random, mut decided) = (0u64, 0u64);
        let check = |exact: f64, near: f64, dl: f64, u: f64| {
            if !(0.0..1.0).contains(&u) {
                return false;
            }
            let got = poisson_near(near, dl, u);
            if let Some(k) = got {
                assert_eq!(k, poisson_given(exact, u), "{exact} {near} {dl} {u}");
            }
            got.is_some()
        };
        for i in 0..40_000 {
            let exact = match i % 3 {
                0 => rng.random_range(0.0..1.0),
                1 => rng.random_range(0.0..PTRS_FROM),
                _ => 10f64.powf(rng.random_range(-6.0..1.3)),
            };
            let dl = 10f64.powf(rng.random_range(-15.0..-4.0));
            for near in [exact, exact + dl / 2.0, exact - dl / 2.0, exact + dl / 3.0] {
                if !(near > 0.0 && near < PTRS_FROM) {
                    continue;
                }
                random += 1;
                decided += u64::from(check(exact, near, dl, rng.random()));
                let edge = 1.0 - exact;
                for u in [edge, edge + dl, edge - dl, edge + 2.0 * dl, edge - 2.0 * dl] {
                    check(exact, near, dl, u);
                    check(exact, near, dl, u.next_up());
                    check(exact, near, dl, u.next_down());
                }
                let mut p = (-exact).exp();
                let mut cumulative = p;
                let mut k = 0.0;
                while k < 30.0 && cumulative < 1.0 {
                    for u in [
                        cumulative,
                        cumulative + dl,
                        cumulative - dl,
                        cumulative * (1.0 + 1e-5) + 1.5 * dl,
                        cumulative * (1.0 - 1e-5) - 1.5 * dl,
                    ] {
                        check(exact, near, dl, u);
                        check(exact, near, dl, u.next_up());
                        check(exact, near, dl, u.next_down());
                    }
                    k += 1.0;
                    p *= exact / k;
                    cumulative += p;
                }
            }
        }
        // nearly every random uniform is decided
        assert!(decided + random / 1000 >= random, "{decided} of {random}");
    }

    /// Poisson pmf at 0..=k_max, by the recurrence in log space.
    fn poisson_pmf(lambda: f64, k_max: usize) -> Vec<f64> {
        let mut ln_p = -lambda;
        (0..=k_max)
            .map(|k| {
                if k > 0 {
                    ln_p += lambda.ln() - (k as f64).ln();
                }
                ln_p.exp()
            })
            .collect()
    }

    /// Pearson's chi-square of `counts` against `expected` (cells with an
    /// expectation below 5 pooled into one), and its degrees of freedom.
    fn chi_square(counts: &[f64], expected: &[f64]) -> (f64, usize) {
        let (mut stat, mut cells) = (0.0, 0usize);
        let (mut pool_o, mut pool_e) = (0.0, 0.0);
        for (o, e) in counts.iter().zip(expected) {
            if *e < 5.0 {
                pool_o += o;
                pool_e += e;
            } else {
                stat += (o - e).powi(2) / e;
                cells += 1;
            }
        }
        if pool_e > 0.0 {
            stat += (pool_o - pool_e).powi(2) / pool_e.max(1e-300);
            cells += 1;
        }
        (stat, cells.saturating_sub(1))
    }

    /// Upper 0.1% point of chi-square with `df` degrees of freedom
    /// (Wilson-Hilferty; close enough for df >= 1 at this level).
    pub(crate) fn chi_square_limit(df: usize) -> f64 {
        let k = df.max(1) as f64;
        let z = 3.090_232_306_167_813_6; // qnorm(0.999)
        k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
    }

    #[test]
    fn poisson_draws_fit_the_pmf_on_every_path() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let draws = 1_000_000;
        // the sampler as used (inversion below PTRS_FROM, with and without
        // its shortcut to 0; PTRS above), and PTRS alone from its validity
        // bound 10, so both are checked where either might be chosen
        type Sampler = fn(f64, &mut Xoshiro256PlusPlus) -> u64;
        let cases: [(&str, Sampler, &[f64]); 2] = [
            (
                "poisson",
                poisson,
                &[
                    0.001, 0.25, 0.9, 1.0, 4.5, 9.99, 12.0, 19.9, 20.0, 40.0, 1000.0, 1e5,
                ],
            ),
            ("ptrs", poisson_ptrs, &[10.0, 12.0, 19.9, 40.0]),
        ];
        for (name, sampler, lambdas) in cases {
            for &lambda in lambdas {
                let k_max = (lambda + 12.0 * lambda.sqrt() + 20.0) as usize;
                let mut counts = vec![0.0; k_max + 1];
                let mut beyond = 0;
                for _ in 0..draws {
                    let k = sampler(lambda, &mut rng) as usize;
                    match counts.get_mut(k) {
                        Some(c) => *c += 1.0,
                        None => beyond += 1,
                    }
                }
                assert_eq!(beyond, 0, "{name} {lambda}: draws beyond {k_max}");
                let expected: Vec<f64> = poisson_pmf(lambda, k_max)
                    .iter()
                    .map(|p| p * draws as f64)
                    .collect();
                let (stat, df) = chi_square(&counts, &expected);
                assert!(
                    stat < chi_square_limit(df),
                    "{name} {lambda}: chi-square {stat} on {df} df"
                );
            }
        }
        assert_eq!(poisson(0.0, &mut rng), 0);
        assert_eq!(poisson(f64::NAN, &mut rng), 0);
    }

    /// A generator that returns `words` first, then `rest`'s numbers: the
    /// PTRS tests place its uniforms where they want them.
    #[derive(Clone)]
    struct Scripted {
        words: Vec<u64>,
        used: usize,
        rest: Xoshiro256PlusPlus,
    }

    impl rand::TryRng for Scripted {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok((self.try_next_u64()? >> 32) as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let word = match self.words.get(self.used) {
                Some(&w) => w,
                None => self.rest.next_u64(),
            };
            self.used += 1;
            Ok(word)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            unreachable!("PTRS draws words")
        }
    }

    /// The word from which `random::<f64>()` gives i 2^-53.
    fn word(i: u64) -> u64 {
        i << 11
    }

    /// The largest i with i 2^-53 <= `r` (`r` in [0, 1)).
    fn grid(r: f64) -> u64 {
        (r * 9_007_199_254_740_992.0) as u64
    }

    /// PTRS's constants (a, b, inv_alpha, vr) for `lambda`, as it computes
    /// them.
    fn ptrs_constants(lambda: f64) -> (f64, f64, f64, f64) {
        let b = 0.931 + 2.53 * lambda.sqrt();
        let a = -0.059 + 0.02483 * b;
        (
            a,
            b,
            1.1239 + 1.1328 / (b - 3.4),
            0.9277 - 3.6224 / (b - 2.0),
        )
    }

    /// A PTRS draw decided from a near mean (within `dl` of the exact one)
    /// is the exact mean's, with the same random numbers used, or left
    /// undecided: random draws, and candidates built so that the floor's
    /// argument sits at an integer, v at vr, us at 0.07 or 0.013, or the
    /// acceptance test at its edge (at, ulps around and margins around
    /// each), over means from 20 to 1e7 and distances from 1e-14 to 1/2.
    #[test]
    fn ptrs_from_a_near_mean_is_the_exact_means() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(33);
        let (mut cases, mut undecided) = (0u64, 0u64);
        let (mut random, mut random_undecided) = (0u64, 0u64);
        let mut seed = 0u64;
        let mut check = |exact: f64, near: f64, dl: f64, words: Vec<u64>| {
            seed += 1;
            let mut a = Scripted {
                words,
                used: 0,
                rest: Xoshiro256PlusPlus::seed_from_u64(seed),
            };
            let mut b = a.clone();
            cases += 1;
            let Some(k) = poisson_ptrs_near(near, dl, &mut a) else {
                undecided += 1;
                return false;
            };
            let case = format!("{exact} {near} {dl} {:?}", b.words);
            assert_eq!(k, poisson_ptrs(exact, &mut b), "{case}");
            assert_eq!(a.used, b.used, "{case}");
            assert_eq!(a.next_u64(), b.next_u64(), "{case}");
            true
        };
        // the floor's argument (as the exact draw computes it) at grid
        // point i for u
        let argument = |lambda: f64, i: u64| {
            let (a, b, _, _) = ptrs_constants(lambda);
            let u = i as f64 / 9_007_199_254_740_992.0 - 0.5;
            let us = 0.5 - u.abs();
            (2.0 * a / us + b) * u + lambda + 0.43
        };
        let steps = [
            1u64, 2, 3, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000,
        ];
        for i in 0..6_000 {
            let exact = match i % 4 {
                0 => rng.random_range(20.0..40.0),
                1 => 10f64.powf(rng.random_range(1.3..7.0)),
                2 => 10f64.powf(rng.random_range(1.3..3.0)),
                _ => 20.0,
            };
            // the histogram's (lambda up to 1e9 times its 4e-9), or any
            let dl = match i % 3 {
                0 => exact * 4e-9 + 1e-14,
                1 => 10f64.powf(rng.random_range(-14.0..-6.0)),
                _ => 10f64.powf(rng.random_range(-6.0..-0.302)),
            };
            let small = dl <= 1e-6 && exact <= 1e4;
            for near in [
                exact,
                exact + dl,
                exact - dl,
                exact + dl / 2.0,
                exact - 0.9 * dl,
            ] {
                if near - dl < PTRS_FROM {
                    continue;
                }
                let (_, _, inv_alpha_x, vr_x) = ptrs_constants(exact);
                let (a_x, b_x, _, _) = ptrs_constants(exact);
                for _ in 0..4 {
                    let decided = check(exact, near, dl, Vec::new());
                    if small {
                        random += 1;
                        random_undecided += u64::from(!decided);
                    }
                }
                // the floor's argument at an integer: the first grid point
                // where it reaches one (it grows with u)
                let start = rng.random_range(1..1u64 << 53);
                let target = floor(argument(exact, start)) + 1.0;
                let (mut lo, mut hi) = (start, 1u64 << 53);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if argument(exact, mid) >= target {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                let v_words = [
                    word(grid(vr_x * 0.999)),
                    word(grid(rng.random_range(0.0..1.0))),
                ];
                for &v in &v_words {
                    for d in 0..3 {
                        check(exact, near, dl, vec![word(hi + d - 1), v]);
                    }
                    for &step in &steps {
                        for idx in [hi.saturating_sub(step), hi + step] {
                            if idx < 1 << 53 {
                                check(exact, near, dl, vec![word(idx), v]);
                            }
                        }
                    }
                }
                // v at vr, with us >= 0.07
                let u_word = word(grid(rng.random_range(0.071..0.929)));
                let at = grid(vr_x);
                for d in 0..7 {
                    check(exact, near, dl, vec![u_word, word(at + d - 3)]);
                }
                for c in [0.005 * dl, 0.01 * dl, 0.02 * dl, 0.04 * dl, 1e-14, 3e-14] {
                    let off = grid(c);
                    check(exact, near, dl, vec![u_word, word(at + off)]);
                    check(exact, near, dl, vec![u_word, word(at - off)]);
                }
                // us at 0.07 and 0.013 (u = +-0.43, +-0.487)
                for r in [0.93, 0.07, 0.987, 0.013] {
                    let g = grid(r);
                    for d in 0..5 {
                        let us = 0.5 - ((g + d - 2) as f64 / 9_007_199_254_740_992.0 - 0.5).abs();
                        for v in [word(grid(us)), word(grid(us) + 1), word(grid(vr_x))] {
                            check(exact, near, dl, vec![word(g + d - 2), v]);
                        }
                    }
                }
                // the acceptance test at its edge: v where ln lhs is the
                // log pmf of the candidate's k
                let ui = rng.random_range(grid(0.014)..grid(0.986));
                let u = ui as f64 / 9_007_199_254_740_992.0 - 0.5;
                let us = 0.5 - u.abs();
                let k = floor((2.0 * a_x / us + b_x) * u + exact + 0.43);
                if k >= 0.0 {
                    let rhs = -exact + k * exact.ln() - ln_factorial(k);
                    let v = rhs.exp() * (a_x / (us * us) + b_x) / inv_alpha_x;
                    if v > 0.0 && v < 0.999 {
                        for d in 0..7 {
                            check(exact, near, dl, vec![word(ui), word(grid(v) + d - 3)]);
                        }
                        for r in [1e-12, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5] {
                            check(exact, near, dl, vec![word(ui), word(grid(v * (1.0 + r)))]);
                            check(exact, near, dl, vec![word(ui), word(grid(v * (1.0 - r)))]);
                        }
                    }
                }
            }
        }
        // small distances (the histogram's, for a step's lambda to 250)
        // decide nearly every random draw of a mean to 1e4 (the acceptance
        // test's own margin grows with the mean); the built cases reach the
        // margins
        assert!(random > 30_000, "{random}");
        assert!(
            random_undecided * 1000 <= random,
            "{random_undecided} of {random}"
        );
        assert!(
            undecided > 10_000 && cases - undecided > 1_000_000,
            "{undecided} of {cases}"
        );
    }
}
