//! Metric classifiers: Kayenta's `MannWhitneyClassifier` (the one
//! `NetflixACAJudge-v1.0` uses) and its simple `MeanInequalityClassifier`.
//!
//! A classifier takes one metric's cleaned control and experiment values and
//! says Pass, High, Low, Nodata, NodataFailMetric or Error, with the effect
//! size and, for Mann-Whitney, the interval that decided it.

use serde::{Deserialize, Serialize};

use crate::config::{Direction, EffectSizeMeasure, NanStrategy};
use crate::mannwhitney::{
    Band, BandAnswer, Extremes, MannWhitney, MannWhitneyResult, mean_ratio_summed,
};
use crate::stats;

/// A metric's verdict, with Kayenta's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Classification {
    /// No significant change.
    Pass,
    /// Canary significantly higher.
    High,
    /// Canary significantly lower.
    Low,
    /// No data on one side; not scored.
    Nodata,
    /// No data on a metric that must have data; scored as a failure.
    NodataFailMetric,
    /// The classifier could not run.
    Error,
}

impl Classification {
    /// Kayenta's string for the label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::High => "High",
            Self::Low => "Low",
            Self::Nodata => "Nodata",
            Self::NodataFailMetric => "NodataFailMetric",
            Self::Error => "Error",
        }
    }
}

impl std::fmt::Display for Classification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Mann-Whitney numbers behind a classification (kayenta#521 asked for
/// them in the result; Kayenta computes but never reports them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MannWhitneyDetails {
    /// Lower end of the interval for canary - baseline.
    pub ci_lower: f64,
    /// Upper end of the interval.
    pub ci_upper: f64,
    /// Location estimate of canary - baseline.
    pub estimate: f64,
    /// Tolerance band half-width: tolerance x |estimate|.
    pub bound: f64,
    /// Two-sided p-value for no shift.
    pub p_value: f64,
}

/// A classifier's answer for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricClassification {
    /// The label.
    pub classification: Classification,
    /// Why, in Kayenta's words, when Kayenta gives a reason.
    pub reason: Option<String>,
    /// Effect size (mean ratio or CLES; NaN when a mean is zero).
    pub deviation: f64,
    /// True when this result fails the canary outright.
    pub critical: bool,
    /// The test's numbers, when the test ran.
    pub mann_whitney: Option<MannWhitneyDetails>,
}

impl MetricClassification {
    fn early(
        classification: Classification,
        reason: Option<String>,
        deviation: f64,
        critical: bool,
    ) -> Self {
        Self {
            classification,
            reason,
            deviation,
            critical,
            mann_whitney: None,
        }
    }
}

/// How a metric is to be judged, beyond its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifyArgs<'a> {
    /// Metric name, for reasons.
    pub name: &'a str,
    /// Which direction fails.
    pub direction: Direction,
    /// How NaN was handled upstream (decides what empty data means).
    pub nan_strategy: NanStrategy,
    /// Whether a failure of this metric fails the canary.
    pub critical: bool,
    /// Whether missing data fails the metric.
    pub must_have_data: bool,
    /// Seed for the noise Kayenta adds when both sides are single-valued.
    pub noise_seed: u64,
}

/// Kayenta's Mann-Whitney classifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitneyClassifier {
    /// Tolerance band as a fraction of |estimate| (0.25 in production).
    pub tolerance: f64,
    /// Confidence level (0.98 in production).
    pub conf_level: f64,
    /// (allowedDecrease, allowedIncrease).
    pub effect_size_thresholds: (f64, f64),
    /// (criticalDecrease, criticalIncrease).
    pub critical_thresholds: (f64, f64),
    /// How the effect is measured.
    pub measure: EffectSizeMeasure,
}

impl Default for MannWhitneyClassifier {
    /// `NetflixACAJudge-v1.0`'s settings with neutral effect thresholds.
    fn default() -> Self {
        Self {
            tolerance: 0.25,
            conf_level: 0.98,
            effect_size_thresholds: (1.0, 1.0),
            critical_thresholds: (1.0, 1.0),
            measure: EffectSizeMeasure::MeanRatio,
        }
    }
}

const CANARY: &str = "Canary";
const BASELINE: &str = "Baseline";

impl MannWhitneyClassifier {
    /// Classify cleaned (NaN-free) values. `mw` is a reusable workspace.
    /// Computes the interval (Kayenta's three root-finder runs) and reports
    /// it in `mann_whitney`.
    pub fn classify(
        &self,
        mw: &mut MannWhitney,
        control: &[f64],
        experiment: &[f64],
        args: &ClassifyArgs<'_>,
    ) -> MetricClassification {
        self.classify_with(mw, control, experiment, args, false)
    }

    /// [`MannWhitneyClassifier::classify`]'s classification, critical
    /// flag, reason and effect size, decided where possible from the rank
    /// statistic at a few shifts instead of the interval
    /// ([`MannWhitney::band_loaded`]); `mann_whitney` is then `None`. For
    /// callers that need only the label (the simulator).
    pub fn classify_fast(
        &self,
        mw: &mut MannWhitney,
        control: &[f64],
        experiment: &[f64],
        args: &ClassifyArgs<'_>,
    ) -> MetricClassification {
        self.classify_with(mw, control, experiment, args, true)
    }

    fn classify_with(
        &self,
        mw: &mut MannWhitney,
        control: &[f64],
        experiment: &[f64],
        args: &ClassifyArgs<'_>,
        fast: bool,
    ) -> MetricClassification {
        use Classification::*;
        if experiment.is_empty() || control.is_empty() {
            return missing_data(args, Some(format!("Missing data for {}", args.name)), 1.0);
        }
        // The fast path looks at the extremes and sums first: most often
        // the effect size asks neither side of the band, and the answer
        // is then known without sorting (`unloaded`).
        let mut known_deviation = None;
        if fast {
            let extremes = [Extremes::of(experiment), Extremes::of(control)];
            match self.unloaded(mw, control, experiment, args, extremes) {
                Unloaded::Answer(answer) => return answer,
                Unloaded::Deviation(deviation) => known_deviation = Some(deviation),
                Unloaded::Load => {}
            }
        }
        mw.load(experiment, control);
        let (xs, ys) = (mw.experiment_sorted(), mw.control_sorted());
        if xs == ys {
            let reason = Some(format!("The {CANARY} and {BASELINE} data are identical"));
            return MetricClassification::early(Pass, reason, 1.0, false);
        }
        let single_valued = xs[0] == xs[xs.len() - 1] && ys[0] == ys[ys.len() - 1];
        if single_valued && xs[0] == ys[0] {
            return MetricClassification::early(Pass, None, 1.0, false);
        }

        // Kayenta's answer to a degenerate distribution: when both sides are
        // single-valued, add Gaussian noise scaled to 1e-5 of each value.
        // Kayenta's noise is unseeded; ours comes from the caller's seed.
        let noisy;
        let (experiment, control) = if single_valued {
            let mut rng = SplitMix64(args.noise_seed);
            noisy = (
                add_noise(experiment, &mut rng),
                add_noise(control, &mut rng),
            );
            mw.load(&noisy.0, &noisy.1);
            (noisy.0.as_slice(), noisy.1.as_slice())
        } else {
            (experiment, control)
        };

        let failed = |e: crate::mannwhitney::MannWhitneyError| {
            MetricClassification::early(
                Error,
                Some(format!("Metric Classification Failed: {e}")),
                f64::NAN,
                args.critical,
            )
        };
        let deviation = |mw: &MannWhitney| match self.measure {
            EffectSizeMeasure::MeanRatio => mw.mean_ratio_loaded(control, experiment),
            EffectSizeMeasure::Cles => stats::cles(control, experiment),
        };
        let (up, down) = (args.direction.allows_high(), args.direction.allows_low());
        let (deviation, label, details) = if fast {
            // The effect size first: it decides which side of the band
            // can matter at all.
            let deviation = known_deviation.unwrap_or_else(|| deviation(mw));
            let above = up && reaches(deviation, self.effect_size_thresholds.1, true);
            let below = down && reaches(deviation, self.effect_size_thresholds.0, false);
            match mw.band_loaded(self.conf_level, self.tolerance, above, below) {
                Ok(BandAnswer::Decided(band)) => {
                    let label = match band {
                        Band::Above => High,
                        Band::Below => Low,
                        Band::Within => Pass,
                    };
                    (deviation, label, None)
                }
                Ok(BandAnswer::Computed(result)) => {
                    let (label, details) = self.label(&result, above, below);
                    (deviation, label, Some(details))
                }
                Err(e) => return failed(e),
            }
        } else {
            let result = match mw.interval_loaded(self.conf_level) {
                Ok(r) => r,
                Err(e) => return failed(e),
            };
            let deviation = deviation(mw);
            let above = up && reaches(deviation, self.effect_size_thresholds.1, true);
            let below = down && reaches(deviation, self.effect_size_thresholds.0, false);
            let (label, details) = self.label(&result, above, below);
            (deviation, label, Some(details))
        };
        let critical = args.critical
            && match label {
                High => reaches(deviation, self.critical_thresholds.1, true),
                Low => reaches(deviation, self.critical_thresholds.0, false),
                _ => false,
            };
        let reason = match (label, critical) {
            (Pass, _) => None,
            (_, true) => Some(format!(
                "The metric {} was classified as {label} (Critical)",
                args.name
            )),
            (_, false) => Some(format!("{} was classified as {label}", args.name)),
        };
        MetricClassification {
            classification: label,
            reason,
            deviation,
            critical,
            mann_whitney: details,
        }
    }

    /// [`MannWhitneyClassifier::classify_fast`]'s answer where it needs
    /// no sorted samples: samples that are not identical nor both
    /// single-valued (their extremes say so) whose effect size asks
    /// neither side of the band are a Pass whenever
    /// [`MannWhitney::within_unloaded`] says the band question would be
    /// decided `Within` (the answer `classify_with` gives after loading,
    /// with the same effect size). Otherwise the effect size when it was
    /// taken (from the sums in the caller's order: the bits
    /// [`MannWhitney::mean_ratio_loaded`] gives), or `Load`.
    fn unloaded(
        &self,
        mw: &mut MannWhitney,
        control: &[f64],
        experiment: &[f64],
        args: &ClassifyArgs<'_>,
        [e, c]: [Extremes; 2],
    ) -> Unloaded {
        // identical sorted samples (`==` value by value) have the same
        // length, least and greatest values
        let maybe_identical = experiment.len() == control.len() && e.min == c.min && e.max == c.max;
        let single_valued = e.min == e.max && c.min == c.max;
        if maybe_identical || single_valued {
            return Unloaded::Load;
        }
        let deviation = match self.measure {
            EffectSizeMeasure::MeanRatio => mean_ratio_summed([e.sum, c.sum], control, experiment),
            EffectSizeMeasure::Cles => stats::cles(control, experiment),
        };
        let above =
            args.direction.allows_high() && reaches(deviation, self.effect_size_thresholds.1, true);
        let below =
            args.direction.allows_low() && reaches(deviation, self.effect_size_thresholds.0, false);
        if above || below || !mw.within_unloaded(&e, &c, self.conf_level, self.tolerance) {
            return Unloaded::Deviation(deviation);
        }
        // Within: a Pass, never critical, with no reason
        Unloaded::Answer(MetricClassification::early(
            Classification::Pass,
            None,
            deviation,
            false,
        ))
    }

    /// High when `above` may count and the interval lies above the band,
    /// else Low when `below` may and it lies below, else Pass.
    fn label(
        &self,
        result: &MannWhitneyResult,
        above: bool,
        below: bool,
    ) -> (Classification, MannWhitneyDetails) {
        let bound = self.tolerance * result.estimate.abs();
        let label = if above && result.ci_lower > bound {
            Classification::High
        } else if below && result.ci_upper < -bound {
            Classification::Low
        } else {
            Classification::Pass
        };
        let details = MannWhitneyDetails {
            ci_lower: result.ci_lower,
            ci_upper: result.ci_upper,
            estimate: result.estimate,
            bound,
            p_value: result.p_value,
        };
        (label, details)
    }
}

/// Whether an effect size reaches `limit` (from below when `above`, else
/// from above). A NaN effect size (a zero mean) does not stop a
/// significant change from counting, as in Kayenta's zero-mean tests.
fn reaches(deviation: f64, limit: f64, above: bool) -> bool {
    deviation.is_nan()
        || if above {
            deviation >= limit
        } else {
            deviation <= limit
        }
}

/// What [`MannWhitneyClassifier::unloaded`] found.
enum Unloaded {
    /// The classification.
    Answer(MetricClassification),
    /// The samples must be loaded; the effect size is this.
    Deviation(f64),
    /// The samples must be loaded before anything else.
    Load,
}

/// Kayenta's `MeanInequalityClassifier`: High when the canary mean is above
/// the baseline mean, Low when below. Only for comparison studies.
pub fn classify_mean_inequality(
    control: &[f64],
    experiment: &[f64],
    args: &ClassifyArgs<'_>,
) -> MetricClassification {
    use Classification::*;
    if experiment.is_empty() || control.is_empty() {
        return missing_data(args, None, 0.0);
    }
    let (e, c) = (stats::mean(experiment), stats::mean(control));
    let ratio = e / c;
    let (up, down) = (args.direction.allows_high(), args.direction.allows_low());
    let (label, reason) = if up && e > c {
        (
            High,
            Some(format!(
                "The {CANARY} mean was greater than the {BASELINE} mean"
            )),
        )
    } else if down && e < c {
        (
            Low,
            Some(format!(
                "The {CANARY} mean was less than the {BASELINE} mean"
            )),
        )
    } else {
        (Pass, None)
    };
    MetricClassification::early(label, reason, ratio, args.critical && label != Pass)
}

/// Either side empty after NaN handling: Nodata (critical if the metric
/// is), NodataFailMetric for a non-critical metric that must have data,
/// and a Pass when NaN was replaced (the arrays were empty to begin with).
fn missing_data(
    args: &ClassifyArgs<'_>,
    reason: Option<String>,
    nodata_deviation: f64,
) -> MetricClassification {
    use Classification::*;
    match args.nan_strategy {
        NanStrategy::Remove if args.must_have_data && !args.critical => {
            MetricClassification::early(NodataFailMetric, reason, 1.0, false)
        }
        NanStrategy::Remove => {
            MetricClassification::early(Nodata, reason, nodata_deviation, args.critical)
        }
        NanStrategy::Replace => MetricClassification::early(Pass, None, 1.0, false),
    }
}

fn add_noise(values: &[f64], rng: &mut SplitMix64) -> Vec<f64> {
    let sd = (values[0] * 1e-5).abs();
    values.iter().map(|v| v + sd * rng.gaussian()).collect()
}

/// A tiny seeded generator for the noise path; the judge needs nothing
/// better and stays free of dependencies.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gaussian(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
