//! R's `zeroin` Brent root finder as Kayenta runs it, blocking and as a
//! state machine that can be stopped early and say where its answer lies.
//!
//! Not for: what function it is run on (see [`super::solve_interval`]).

use super::MannWhitneyError;

/// R's `zeroin` (Brent 1973) as Kayenta's `KayentaBrentSolver.brentDirect`
/// runs it: tolerance 1e-4, at most 1001 iterations, and the caller's
/// function values at both ends.
pub(super) fn zeroin(
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
pub(super) struct Zeroin {
    pub(super) a: f64,
    pub(super) b: f64,
    pub(super) c: f64,
    pub(super) fa: f64,
    pub(super) fb: f64,
    pub(super) fc: f64,
    /// Function values asked for so far (R's loop runs at most 1001).
    pub(super) evals: u32,
    /// The value returned, once it has been.
    pub(super) root: Option<f64>,
    /// A step went outside `[b, c]` (see [`Zeroin::range`]).
    pub(super) escaped: bool,
}

impl Zeroin {
    pub(super) fn new(ax: f64, bx: f64, fa: f64, fb: f64) -> Self {
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
    pub(super) fn done(root: f64) -> Self {
        let mut z = Self::new(root, root, 1.0, 1.0);
        z.root = Some(root);
        z
    }

    /// The next shift to evaluate, or `Err(root)`: the value returned.
    pub(super) fn next(&mut self) -> Result<f64, f64> {
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
    pub(super) fn feed(&mut self, fb: f64) {
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
    pub(super) fn range(&self) -> Option<(f64, f64)> {
        match self.root {
            Some(root) => Some((root, root)),
            None if self.escaped => None,
            None => Some((self.b.min(self.c), self.b.max(self.c))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::MannWhitney;
    use super::super::statistic::{RankStatistic, unpadded};
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn a_stopped_root_finder_returns_a_value_in_its_range() {
        // Each run of every dataset's three roots: the value returned lies
        // in the range reported before every step, and the steps are the
        // blocking `zeroin`'s.
        let mut runs = 0;
        for (x, y) in datasets() {
            let mut mw = MannWhitney::new();
            mw.load(&x, &y);
            let m = unpadded(&mw.y_padded).len();
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
}
