//! The fast classification (`classify_fast`, the label decided from the
//! rank statistic at a few shifts) against the full one (`classify`, the
//! interval from Kayenta's root finder) on random cases: sizes 3 to 5,000,
//! continuous data, heavy ties, constant series, NaN under both strategies,
//! every direction, effect-size and critical thresholds on and off, other
//! confidence levels and tolerances, and a share of cases shifted so that
//! an interval end sits within the root finder's tolerance of the band's
//! edge (or of zero). Label, critical flag, reason and effect size must be
//! identical.
//!
//! The in-suite test runs 20,000 cases; the full million is
//! `cargo test --release -p judge --test it -- --ignored fast_equals_full_on_a_million_cases`.

use judge::classifier::{ClassifyArgs, MannWhitneyClassifier, MetricClassification};
use judge::config::EffectSizeMeasure;
use judge::mannwhitney::MannWhitney;
use judge::{Direction, NanStrategy, preprocess};

/// SplitMix64: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn below(&mut self, k: usize) -> usize {
        ((self.unit() * k as f64) as usize).min(k - 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-uniform size in [3, max].
    fn size(&mut self, max: usize) -> usize {
        let v = (3.0f64.ln() + self.unit() * ((max as f64).ln() - 3.0f64.ln())).exp();
        (v as usize).clamp(3, max)
    }
}

/// One arm's raw values: `kind` picks the shape, `shift` and `scale` the
/// effect, `nan` the share of NaN.
fn arm(r: &mut Rng, len: usize, kind: usize, shift: f64, scale: f64, nan: f64) -> Vec<f64> {
    (0..len)
        .map(|_| {
            if r.chance(nan) {
                return f64::NAN;
            }
            let v = match kind {
                // latency-like, continuous
                0 => 100.0 * (0.3 * r.normal()).exp(),
                // seconds
                1 => 0.1 * (0.5 * r.normal()).exp(),
                // small integers: heavy ties
                2 => r.below(6) as f64,
                // mostly zero (error counts)
                3 => {
                    if r.chance(0.8) {
                        0.0
                    } else {
                        r.below(4) as f64
                    }
                }
                // a grid where shifts form new ties
                4 => r.below(40) as f64 * 0.25,
                // constant
                5 => 7.0,
                // large values, fine grid
                6 => 1e4 + r.below(2000) as f64 * 0.5,
                // resident memory in bytes: brackets far wider than the
                // bounds on the root finder's iterations cover
                7 => 1.5e8 * (1.0 + 0.003 * r.normal()),
                // values a few ulps apart, as PromQL's rates and histogram
                // quantiles give them: a shift can round them together
                _ => {
                    let base = 0.05 + r.below(30) as f64 * 0.001;
                    f64::from_bits(base.to_bits() + r.below(4) as u64)
                }
            };
            v * scale + shift
        })
        .collect()
}

/// A random case: raw control and experiment, classifier and arguments.
struct Case {
    control: Vec<f64>,
    experiment: Vec<f64>,
    classifier: MannWhitneyClassifier,
    direction: Direction,
    nan_strategy: NanStrategy,
    critical: bool,
    must_have_data: bool,
    seed: u64,
}

fn random_case(r: &mut Rng, max_size: usize) -> Case {
    let (n, m) = (r.size(max_size), r.size(max_size));
    let kind = r.below(9);
    let other_kind = if r.chance(0.1) { r.below(9) } else { kind };
    let nan = if r.chance(0.2) { 0.1 * r.unit() } else { 0.0 };
    let scale = if r.chance(0.5) {
        1.0
    } else {
        1.0 + 0.3 * r.normal()
    };
    let spread = match kind {
        0 => 30.0,
        1 => 0.05,
        6 => 300.0,
        7 => 4.5e5,
        8 => 0.01,
        _ => 1.0,
    };
    let shift = if r.chance(0.4) {
        0.0
    } else {
        spread * 0.5 * r.normal()
    };
    let control = arm(r, m, kind, 0.0, 1.0, nan);
    let experiment = if r.chance(0.02) {
        control.clone()
    } else {
        arm(r, n, other_kind, shift, scale, nan)
    };
    let thresholds = |r: &mut Rng, neutral: f64, step: f64| {
        if r.chance(0.5) {
            (neutral, neutral)
        } else {
            (neutral - step * r.unit(), neutral + step * r.unit())
        }
    };
    let measure = if r.chance(0.3) {
        EffectSizeMeasure::Cles
    } else {
        EffectSizeMeasure::MeanRatio
    };
    let (neutral, step) = match measure {
        EffectSizeMeasure::Cles => (0.5, 0.3),
        EffectSizeMeasure::MeanRatio => (1.0, 0.5),
    };
    let classifier = MannWhitneyClassifier {
        tolerance: [0.25, 0.25, 0.25, 0.0, 0.1, 1.0][r.below(6)],
        conf_level: [0.98, 0.98, 0.95, 0.9, 0.99, 0.5][r.below(6)],
        effect_size_thresholds: thresholds(r, neutral, step),
        critical_thresholds: thresholds(r, neutral, step),
        measure,
    };
    Case {
        control,
        experiment,
        classifier,
        direction: [Direction::Increase, Direction::Decrease, Direction::Either][r.below(3)],
        nan_strategy: if r.chance(0.5) {
            NanStrategy::Remove
        } else {
            NanStrategy::Replace
        },
        critical: r.chance(0.3),
        must_have_data: r.chance(0.3),
        seed: r.next_u64(),
    }
}

/// Both classifications of a case, with the full one's interval.
fn classify_both(
    case: &Case,
    mw: &mut MannWhitney,
) -> (MetricClassification, MetricClassification) {
    let control = preprocess(&case.control, case.nan_strategy, None);
    let experiment = preprocess(&case.experiment, case.nan_strategy, None);
    let args = ClassifyArgs {
        name: "m",
        direction: case.direction,
        nan_strategy: case.nan_strategy,
        critical: case.critical,
        must_have_data: case.must_have_data,
        noise_seed: case.seed,
    };
    let full = case.classifier.classify(mw, &control, &experiment, &args);
    let fast = case
        .classifier
        .classify_fast(mw, &control, &experiment, &args);
    (full, fast)
}

/// Shift the experiment so that an interval end (or the estimate) lands
/// within a few root-finder tolerances of a band edge (or of zero).
fn near_edge(case: &mut Case, full: &MetricClassification, r: &mut Rng) -> bool {
    let Some(mw) = full.mann_whitney else {
        return false;
    };
    let (l, e, u) = (mw.ci_lower, mw.estimate, mw.ci_upper);
    let tol = case.classifier.tolerance;
    // shifting x by c moves l, e, u by about c
    let c = match r.below(5) {
        // ci_lower on +tol (e + c)
        0 => (tol * e - l) / (1.0 - tol),
        // ci_upper on -tol (e + c)
        1 => -(u + tol * e) / (1.0 + tol),
        // ci_lower on zero, ci_upper on zero, estimate on zero
        2 => -l,
        3 => -u,
        _ => -e,
    };
    if !c.is_finite() {
        return false;
    }
    let jitter = [0.0, 1e-6, 2e-5, 5e-5, 1e-4, 2e-4, 4e-4][r.below(7)]
        * if r.chance(0.5) { 1.0 } else { -1.0 };
    for v in &mut case.experiment {
        *v += c + jitter;
    }
    true
}

fn same(a: &MetricClassification, b: &MetricClassification) -> bool {
    a.classification == b.classification
        && a.critical == b.critical
        && a.reason == b.reason
        && (a.deviation.to_bits() == b.deviation.to_bits()
            || (a.deviation.is_nan() && b.deviation.is_nan()))
}

/// Run `cases` random cases (a third of them moved near an edge) and
/// return how many the fast path decided without the root finder, by
/// running it part way, and with the full interval.
fn compare(cases: usize, max_size: usize, seed: u64) -> (u64, u64, u64) {
    let mut r = Rng(seed);
    let mut mw = MannWhitney::new();
    let mut fast_mw = MannWhitney::new();
    let mut near = 0usize;
    for i in 0..cases {
        let mut case = random_case(&mut r, max_size);
        let (full, fast) = classify_both(&case, &mut fast_mw);
        assert!(
            same(&full, &fast),
            "case {i}: full {full:?} fast {fast:?} (n {}, m {})",
            case.experiment.len(),
            case.control.len()
        );
        if i % 16 == 0 {
            let control = preprocess(&case.control, case.nan_strategy, None);
            let experiment = preprocess(&case.experiment, case.nan_strategy, None);
            if !control.is_empty() && !experiment.is_empty() {
                let conf = case.classifier.conf_level;
                check_band(&experiment, &control, conf, &format!("case {i}"));
            }
        }
        if r.chance(0.35) && near_edge(&mut case, &full, &mut r) {
            near += 1;
            let (full2, fast2) = classify_both(&case, &mut mw);
            assert!(
                same(&full2, &fast2),
                "near-edge case {i}: full {full2:?} fast {fast2:?} (n {}, m {})",
                case.experiment.len(),
                case.control.len()
            );
        }
    }
    assert!(near * 5 >= cases, "only {near} near-edge cases");
    let (a, b) = (fast_mw.band_counts(), mw.band_counts());
    (
        a.decided + b.decided,
        a.stepped + b.stepped,
        a.computed + b.computed,
    )
}

#[test]
fn fast_equals_full_on_random_cases() {
    let (decided, stepped, computed) = compare(20_000, 300, 1);
    eprintln!("sizes to 300: decided {decided}, stepped {stepped}, computed {computed}");
    // the point of the fast path: most labels need no root finder
    assert!(decided > computed, "decided {decided}, computed {computed}");
    // memory-sized brackets and close calls run the root finder part way
    assert!(stepped > 0, "stepped {stepped}");
    let (decided, stepped, computed) = compare(300, 5_000, 2);
    eprintln!("sizes to 5000: decided {decided}, stepped {stepped}, computed {computed}");
    assert!(decided > 0, "decided {decided}, computed {computed}");
}

#[test]
#[ignore = "a million cases: run in release (see the module comment)"]
fn fast_equals_full_on_a_million_cases() {
    let (decided, stepped, computed) = compare(1_000_000, 5_000, 3);
    eprintln!(
        "decided without the root finder {decided}, by running it part way {stepped}, computed {computed}"
    );
}

/// Memory in bytes, as the simulator's memory metric has it (about 1.5e8
/// with 0.3% noise, a leak of a few MiB, warm-up ramps): the interval's
/// bracket is millions wide, beyond what the statistic-at-a-few-shifts
/// decision takes on, and the label comes from the root finder run part
/// way. Every label equals the full computation's.
#[test]
fn memory_sized_brackets_are_decided_exactly() {
    use judge::mannwhitney::{BandAnswer, mann_whitney};
    let mut r = Rng(44);
    let mut stepped = 0;
    for i in 0..400 {
        let (n, m) = (r.size(400), r.size(400));
        let base = 1.5e8 * (1.0 + 0.2 * r.normal());
        let noise = [0.003, 0.0003, 0.03][r.below(3)];
        let leak = [0.0, 0.0, 2.0 * 1_048_576.0, 20.0 * 1_048_576.0][r.below(4)];
        let ramp = r.chance(0.2);
        let series = |r: &mut Rng, len: usize, leak: f64| -> Vec<f64> {
            (0..len)
                .map(|k| {
                    let warm = if ramp {
                        1.0 - 0.3 * (-(k as f64) / 20.0).exp()
                    } else {
                        1.0
                    };
                    base * warm * (1.0 + noise * r.normal()) + leak * k as f64 / len as f64
                })
                .collect()
        };
        let control = series(&mut r, m, 0.0);
        let experiment = series(&mut r, n, leak);
        let conf = [0.98, 0.95, 0.9][r.below(3)];
        check_band(&experiment, &control, conf, &format!("memory case {i}"));
        let full = mann_whitney(&experiment, &control, conf).unwrap();
        assert!(full.ci_upper - full.ci_lower > 0.0);
        let mut mw = MannWhitney::new();
        mw.load(&experiment, &control);
        if let Ok(BandAnswer::Decided(_)) = mw.band_loaded(conf, 0.25, true, false) {
            stepped += mw.band_counts().stepped;
        }
    }
    assert!(stepped > 300, "stepped {stepped} of 400");
}

/// The band question for `experiment - control` at `conf`, every
/// combination of sides asked and a few tolerances, against the label the
/// full interval gives (and, when the fast path computed the interval, the
/// same interval bit for bit).
pub fn check_band(experiment: &[f64], control: &[f64], conf: f64, what: &str) {
    use judge::mannwhitney::{Band, BandAnswer, mann_whitney};
    let full = mann_whitney(experiment, control, conf);
    let mut mw = MannWhitney::new();
    for tolerance in [0.25, 0.0, 0.1, 1.0] {
        for (above, below) in [(true, true), (true, false), (false, true), (false, false)] {
            mw.load(experiment, control);
            let answer = mw.band_loaded(conf, tolerance, above, below);
            match (&full, answer) {
                (Ok(r), Ok(BandAnswer::Decided(band))) => {
                    let bound = tolerance * r.estimate.abs();
                    let want = if above && r.ci_lower > bound {
                        Band::Above
                    } else if below && r.ci_upper < -bound {
                        Band::Below
                    } else {
                        Band::Within
                    };
                    assert_eq!(band, want, "{what}: tolerance {tolerance} {r:?}");
                }
                (Ok(r), Ok(BandAnswer::Computed(c))) => {
                    let bits = |r: &judge::mannwhitney::MannWhitneyResult| {
                        [r.ci_lower, r.ci_upper, r.estimate, r.p_value].map(f64::to_bits)
                    };
                    assert_eq!(bits(r), bits(&c), "{what}");
                }
                (Err(e), Err(f)) => assert_eq!(e, &f, "{what}"),
                (full, fast) => panic!("{what}: full {full:?} fast {fast:?}"),
            }
        }
    }
}

/// Windows that grow as the simulator's do (a run's series judged at 61,
/// 121, 181 values, now and then a new run), judged fast in one workspace
/// (which does not sort a window whose effect size asks neither side of
/// the band, so the next window is merged into the last one it sorted)
/// and fully in another: the same labels, critical flags, reasons and
/// effect sizes, with windows on both sides of the effect thresholds.
#[test]
fn growing_windows_judged_fast_with_unsorted_windows_equal_full() {
    let mut r = Rng(61);
    let (mut fast_mw, mut full_mw) = (MannWhitney::new(), MannWhitney::new());
    let (mut control, mut experiment) = (Vec::new(), Vec::new());
    let (mut asked_none, mut asked) = (0, 0);
    let mut classifier = MannWhitneyClassifier {
        effect_size_thresholds: (0.9, 1.1),
        critical_thresholds: (0.5, 2.0),
        ..MannWhitneyClassifier::default()
    };
    let (mut lift, mut kind) = (1.0, 0);
    for step in 0..4000 {
        if step % 3 == 0 {
            control.clear();
            experiment.clear();
            lift = 1.0 + [0.0, 0.02, 0.08, 0.12, 0.3, -0.12][r.below(6)];
            kind = r.below(9);
            classifier.measure = if r.chance(0.2) {
                EffectSizeMeasure::Cles
            } else {
                EffectSizeMeasure::MeanRatio
            };
        }
        let added = if r.chance(0.8) { 60 } else { 1 + r.below(90) };
        let start = if control.is_empty() { 61 } else { added };
        control.extend(arm(&mut r, start, kind, 0.0, 1.0, 0.0));
        experiment.extend(arm(&mut r, start, kind, 0.0, lift, 0.0));
        let args = ClassifyArgs {
            name: "m",
            direction: [Direction::Increase, Direction::Either][r.below(2)],
            nan_strategy: NanStrategy::Remove,
            critical: r.chance(0.5),
            must_have_data: false,
            noise_seed: step,
        };
        let full = classifier.classify(&mut full_mw, &control, &experiment, &args);
        let fast = classifier.classify_fast(&mut fast_mw, &control, &experiment, &args);
        assert!(
            same(&full, &fast),
            "step {step}: full {full:?} fast {fast:?}"
        );
        let (low, high) = classifier.effect_size_thresholds;
        if full.deviation > low && full.deviation < high {
            asked_none += 1;
        } else {
            asked += 1;
        }
    }
    assert!(asked_none > 1000 && asked > 1000, "{asked_none} {asked}");
}
