//! A Kayenta-compatible automated canary analysis judge.
//!
//! [`Judge`] reproduces `NetflixACAJudge-v1.0`: for each metric it cleans the
//! baseline (control) and canary (experiment) series, classifies them with
//! the Mann-Whitney classifier, scores the groups and the canary, and
//! returns Kayenta's `CanaryJudgeResult`. [`analysis`] runs Kayenta's
//! multi-interval canary analysis over a judge's scores.
//!
//! The crate is pure: no I/O, no clock, and no randomness but the seed the
//! caller passes (used only where Kayenta adds noise to single-valued data).
//!
//! ```
//! use judge::{CanaryConfig, Judge, MetricSetPair};
//! let config = CanaryConfig::from_json(r#"{"metrics":[{"name":"latency","groups":["perf"],
//!     "analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#).unwrap();
//! let judge = Judge::new(&config).unwrap();
//! let baseline: Vec<f64> = (0..60).map(|i| 100.0 + (i % 7) as f64).collect();
//! let canary: Vec<f64> = baseline.iter().map(|v| v * 1.5).collect();
//! let result = judge.judge_pairs(&[MetricSetPair::new("latency", baseline, canary)], 0).unwrap();
//! assert_eq!(result.score.classification.as_str(), "Fail");
//! assert_eq!(result.results[0].classification.as_str(), "High");
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod classifier;
pub mod config;
pub mod decided;
pub mod dependence;
pub mod error;
pub mod judges;
pub mod mannwhitney;
pub mod oracle;
pub mod pairs;
pub mod scorer;
pub mod stats;
mod text;
pub mod wire;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use classifier::{
    Classification, MannWhitneyClassifier, MannWhitneyDetails, MetricClassification,
};
pub use config::{CanaryConfig, Direction, MetricConfig, NanStrategy, ScoreThresholds};
pub use error::{InputError, JudgeError};
pub use pairs::{MetricSetPair, parse_pairs};
pub use scorer::ScoreClassification;
pub use stats::Summary;
pub use text::render_text;

use classifier::ClassifyArgs;
use config::OutlierStrategy;
use mannwhitney::MannWhitney;
use scorer::{Scored, Weights};

/// Kayenta's `CanaryJudgeResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryJudgeResult {
    /// `NetflixACAJudge-v1.0`.
    pub judge_name: String,
    /// One result per metric pair, in input order.
    pub results: Vec<CanaryAnalysisResult>,
    /// Per group score, sorted by group name.
    pub group_scores: Vec<CanaryJudgeGroupScore>,
    /// Summary score and verdict.
    pub score: CanaryJudgeScore,
}

/// Kayenta's `CanaryAnalysisResult`: one metric's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysisResult {
    /// Metric name.
    pub name: String,
    /// The pair's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The label.
    pub classification: Classification,
    /// Why, when Kayenta says why.
    #[serde(default)]
    pub classification_reason: Option<String>,
    /// The metric's groups.
    pub groups: Vec<String>,
    /// The pair's tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Canary statistics after cleaning.
    pub experiment_metadata: StatsMetadata,
    /// Baseline statistics after cleaning.
    pub control_metadata: StatsMetadata,
    /// Effect size and test numbers.
    pub result_metadata: ResultMetadata,
    /// Whether this result fails the canary outright.
    pub critical: bool,
    /// Muted metrics are reported but not scored.
    #[serde(default)]
    pub muted: bool,
}

/// `{"stats": {...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsMetadata {
    /// Summary statistics.
    pub stats: Summary,
}

/// `resultMetadata`: Kayenta's `ratio`, plus the Mann-Whitney numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultMetadata {
    /// Effect size (mean ratio or CLES); "NaN" when a mean is zero.
    #[serde(with = "pairs::nan_f64")]
    pub ratio: f64,
    /// The interval and estimate, when the test ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mann_whitney: Option<MannWhitneyDetails>,
}

/// Kayenta's `CanaryJudgeGroupScore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryJudgeGroupScore {
    /// Group name.
    pub name: String,
    /// Pass share in percent.
    pub score: f64,
    /// Always empty, as in Kayenta.
    pub classification: String,
    /// Always empty, as in Kayenta.
    pub classification_reason: String,
}

/// Kayenta's `CanaryJudgeScore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryJudgeScore {
    /// Summary score, 0..=100.
    pub score: f64,
    /// Pass, Marginal or Fail.
    pub classification: ScoreClassification,
    /// Why the score was forced to 0, or empty.
    pub classification_reason: String,
}

/// One metric's series for the fast path, in the config's metric order.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Baseline values.
    pub control: &'a [f64],
    /// Canary values.
    pub experiment: &'a [f64],
}

/// The fast path's answer: the verdict without the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Summary score.
    pub score: f64,
    /// Pass, Marginal or Fail.
    pub classification: ScoreClassification,
    /// Per metric (config order): label and whether it was critical.
    pub metrics: Vec<(Classification, bool)>,
}

/// Reusable buffers for [`Judge::judge_series`].
#[derive(Debug, Default)]
pub struct Workspace {
    /// One per metric, so that each keeps its metric's sorted samples for
    /// the next (grown or slid) window.
    mws: Vec<MannWhitney>,
    control: Vec<f64>,
    experiment: Vec<f64>,
    counts: Vec<[u32; 3]>,
    /// Compute every interval, as [`Judge::judge_pairs`] does.
    full_interval: bool,
}

impl Workspace {
    /// Empty buffers; [`Judge::judge_series`] decides each metric's label
    /// without solving for the interval where it can
    /// ([`MannWhitneyClassifier::classify_fast`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty buffers with which [`Judge::judge_series`] computes every
    /// interval ([`MannWhitneyClassifier::classify`]): the same verdicts,
    /// slower; for comparisons and benchmarks.
    pub fn with_full_interval() -> Self {
        Self {
            full_interval: true,
            ..Self::default()
        }
    }

    /// Metrics this workspace keeps buffers for (the most any call
    /// judged).
    pub fn metrics(&self) -> usize {
        self.mws.len()
    }

    /// How many metric classifications (of those that reached the
    /// Mann-Whitney test) were decided without the root finder, how many
    /// by running it part way, and how many computed the interval.
    pub fn band_counts(&self) -> mannwhitney::BandCounts {
        let mut total = mannwhitney::BandCounts::default();
        for c in self.mws.iter().map(MannWhitney::band_counts) {
            total.decided += c.decided;
            total.stepped += c.stepped;
            total.computed += c.computed;
        }
        total
    }
}

/// A metric's judging rule, resolved from the config once.
#[derive(Debug, Clone)]
struct MetricRule {
    name: String,
    groups: Vec<String>,
    group_ids: Vec<usize>,
    direction: Direction,
    nan_strategy: NanStrategy,
    critical: bool,
    must_have_data: bool,
    muted: bool,
    outlier_factor: Option<f64>,
    classifier: MannWhitneyClassifier,
}

/// `NetflixACAJudge-v1.0`, prepared for one canary config.
#[derive(Debug, Clone)]
pub struct Judge {
    rules: Vec<MetricRule>,
    by_name: HashMap<String, usize>,
    group_names: Vec<String>,
    weights: Weights,
    thresholds: ScoreThresholds,
    /// The judge the config names, when not Kayenta's.
    method: Option<judges::Method>,
}

impl Judge {
    /// Validate `config` and resolve every metric's rule. Thresholds come
    /// from `classifier.scoreThresholds`, or 75 / 50.
    pub fn new(config: &CanaryConfig) -> Result<Self, InputError> {
        config.validate()?;
        let method = judges::Method::from_config(config)?;
        let mut group_names: Vec<String> = config
            .metrics
            .iter()
            .flat_map(|m| m.groups.iter().cloned())
            .chain(config.classifier.group_weights.keys().cloned())
            .collect();
        group_names.sort();
        group_names.dedup();
        let group_index = |g: &str| {
            group_names
                .binary_search_by(|n| n.as_str().cmp(g))
                .unwrap_or(0)
        };
        let rules: Vec<MetricRule> = config
            .metrics
            .iter()
            .map(|m| {
                let c = &m.analysis_configurations.canary;
                let e = c.effect_size.unwrap_or_default();
                let neutral = e.measure.neutral();
                MetricRule {
                    name: m.name.clone(),
                    groups: m.groups.clone(),
                    group_ids: m.groups.iter().map(|g| group_index(g)).collect(),
                    direction: c.direction,
                    nan_strategy: c.nan_strategy,
                    critical: c.critical,
                    must_have_data: c.must_have_data,
                    muted: c.muted,
                    outlier_factor: c
                        .outliers
                        .filter(|o| o.strategy == OutlierStrategy::Remove)
                        .map(|o| o.outlier_factor.unwrap_or(3.0)),
                    classifier: MannWhitneyClassifier {
                        tolerance: 0.25,
                        conf_level: 0.98,
                        effect_size_thresholds: (
                            e.allowed_decrease.unwrap_or(neutral),
                            e.allowed_increase.unwrap_or(neutral),
                        ),
                        critical_thresholds: (
                            e.critical_decrease.unwrap_or(neutral),
                            e.critical_increase.unwrap_or(neutral),
                        ),
                        measure: e.measure,
                    },
                }
            })
            .collect();
        let weights = Weights {
            weights: group_names
                .iter()
                .map(|g| config.classifier.group_weights.get(g).copied())
                .collect(),
        };
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Ok(Self {
            rules,
            by_name,
            group_names,
            weights,
            thresholds: config.classifier.score_thresholds.unwrap_or_default(),
            method,
        })
    }

    /// The name of the judge in use (`judgeName` of its results).
    pub fn name(&self) -> &'static str {
        self.method
            .as_ref()
            .map_or(config::NETFLIX_ACA_JUDGE, judges::Method::name)
    }

    /// The pass and marginal thresholds in use.
    pub fn thresholds(&self) -> ScoreThresholds {
        self.thresholds
    }

    /// Use other thresholds (e.g. from the command line).
    pub fn set_thresholds(&mut self, thresholds: ScoreThresholds) -> Result<(), InputError> {
        thresholds.validate("scoreThresholds")?;
        self.thresholds = thresholds;
        Ok(())
    }

    /// Metric names in config order (the order [`Judge::judge_series`] takes).
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Judge a `MetricSetPairList`, as Kayenta's judge endpoint does.
    pub fn judge_pairs(
        &self,
        pairs: &[MetricSetPair],
        seed: u64,
    ) -> Result<CanaryJudgeResult, JudgeError> {
        self.judge_pairs_with(pairs, seed, false, &mut Workspace::new())
    }

    /// [`Judge::judge_pairs`] in Kayenta's own result shape: for
    /// `NetflixACAJudge-v1.0` each `resultMetadata` holds only `ratio` (as
    /// Kayenta's judge writes it), without canarylab's `mannWhitney`
    /// interval, so each label is decided from the rank statistic at the
    /// tolerance band's edges where it can
    /// ([`MannWhitneyClassifier::classify_fast`]: the same label, critical
    /// flag, reason and ratio, checked against the full computation on a
    /// million cases). Every other field is the same as
    /// [`Judge::judge_pairs`]'s; the other judges' answers are unchanged.
    pub fn judge_pairs_without_interval(
        &self,
        pairs: &[MetricSetPair],
        seed: u64,
    ) -> Result<CanaryJudgeResult, JudgeError> {
        self.judge_pairs_with(pairs, seed, true, &mut Workspace::new())
    }

    /// [`Judge::judge_pairs`] (`interval`: true) or
    /// [`Judge::judge_pairs_without_interval`] (false) in the caller's
    /// workspace, kept from one call to the next by a caller that judges
    /// request after request (`canarylab serve`): the same result, without
    /// allocating and growing the buffers again for every call. Any
    /// workspace gives the same answer as a fresh one.
    pub fn judge_pairs_in(
        &self,
        pairs: &[MetricSetPair],
        seed: u64,
        interval: bool,
        ws: &mut Workspace,
    ) -> Result<CanaryJudgeResult, JudgeError> {
        self.judge_pairs_with(pairs, seed, !interval, ws)
    }

    fn judge_pairs_with(
        &self,
        pairs: &[MetricSetPair],
        seed: u64,
        fast: bool,
        ws: &mut Workspace,
    ) -> Result<CanaryJudgeResult, JudgeError> {
        let mut seen = HashMap::new();
        let mut results = Vec::with_capacity(pairs.len());
        let mut rule_ids = Vec::with_capacity(pairs.len());
        let mut outcomes = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let Some(&r) = self.by_name.get(&pair.name) else {
                let mut known: Vec<&str> = self.metric_names().collect();
                known.sort();
                return Err(JudgeError::Pairs(InputError::at(
                    format!("[{i}].name"),
                    format!(
                        "metric \"{}\" is not in the canary config (its metrics: {})",
                        pair.name,
                        known.join(", ")
                    ),
                )));
            };
            if let Some(first) = seen.insert(pair.name.as_str(), i) {
                return Err(JudgeError::Pairs(InputError::at(
                    format!("[{i}].name"),
                    format!("metric \"{}\" appears twice (also at [{first}])", pair.name),
                )));
            }
            let rule = &self.rules[r];
            let outcome = self.classify(
                rule,
                pair.values.control.as_slice(),
                pair.values.experiment.as_slice(),
                metric_seed(seed, r),
                fast,
                r,
                ws,
            );
            // the statistics of the values judged (`classify` may not have
            // copied them)
            for (raw, buf) in [
                (pair.values.experiment.as_slice(), &mut ws.experiment),
                (pair.values.control.as_slice(), &mut ws.control),
            ] {
                preprocess_into(raw, rule.nan_strategy, rule.outlier_factor, buf);
            }
            // The fast path computes the interval only where it cannot
            // decide without it: drop it always, so the answer's shape does
            // not depend on how the label was found.
            let mann_whitney = if fast && self.method.is_none() {
                None
            } else {
                outcome.mann_whitney
            };
            results.push(CanaryAnalysisResult {
                name: pair.name.clone(),
                id: pair.id.clone(),
                classification: outcome.classification,
                classification_reason: outcome.reason.clone(),
                groups: rule.groups.clone(),
                tags: pair.tags.clone(),
                experiment_metadata: StatsMetadata {
                    stats: Summary::of(&ws.experiment),
                },
                control_metadata: StatsMetadata {
                    stats: Summary::of(&ws.control),
                },
                result_metadata: ResultMetadata {
                    ratio: outcome.deviation,
                    mann_whitney,
                },
                critical: outcome.critical,
                muted: rule.muted,
            });
            rule_ids.push(r);
            outcomes.push(outcome);
        }
        if let Some(pooled) = self.pool(pairs.iter().zip(&rule_ids).map(|(p, &r)| {
            (
                r,
                p.values.control.as_slice(),
                p.values.experiment.as_slice(),
            )
        })) {
            for ((result, outcome), c) in results.iter_mut().zip(outcomes.iter_mut()).zip(pooled) {
                result.classification = c.classification;
                result.classification_reason = c.reason.clone();
                result.critical = c.critical;
                result.result_metadata.ratio = c.deviation;
                result.result_metadata.mann_whitney = c.mann_whitney;
                *outcome = c;
            }
        }
        let scored: Vec<Scored<'_>> = outcomes
            .iter()
            .zip(&rule_ids)
            .filter(|(_, r)| !self.rules[**r].muted)
            .map(|(o, r)| Scored {
                classification: o.classification,
                groups: &self.rules[*r].group_ids,
                critical: o.critical,
                reason: o.reason.as_deref(),
            })
            .collect();
        let score = self.weights.score(&scored, &mut ws.counts);
        let classification = scorer::classify_score(score.score, scored.len(), self.thresholds);
        Ok(CanaryJudgeResult {
            judge_name: self.name().to_string(),
            results,
            group_scores: score
                .groups
                .iter()
                .map(|g| CanaryJudgeGroupScore {
                    name: self.group_names[g.group].clone(),
                    score: g.score,
                    classification: String::new(),
                    classification_reason: String::new(),
                })
                .collect(),
            score: CanaryJudgeScore {
                score: score.score,
                classification,
                classification_reason: score.reason.unwrap_or_default(),
            },
        })
    }

    /// The fast path for simulators: one series per config metric, in
    /// config order, no report built, and (with [`Workspace::new`]) labels
    /// decided without solving for the interval where the statistic at a
    /// few shifts settles them. Same verdict as [`Judge::judge_pairs`].
    ///
    /// # Panics
    /// If `series` does not have one entry per config metric.
    pub fn judge_series(&self, series: &[Series<'_>], seed: u64, ws: &mut Workspace) -> Verdict {
        assert_eq!(
            series.len(),
            self.rules.len(),
            "one series per config metric"
        );
        let outcomes: Vec<MetricClassification> = self
            .rules
            .iter()
            .zip(series)
            .enumerate()
            .map(|(r, (rule, s))| {
                let fast = !ws.full_interval;
                self.classify(
                    rule,
                    s.control,
                    s.experiment,
                    metric_seed(seed, r),
                    fast,
                    r,
                    ws,
                )
            })
            .collect();
        let outcomes = self
            .pool(
                series
                    .iter()
                    .enumerate()
                    .map(|(r, s)| (r, s.control, s.experiment)),
            )
            .unwrap_or(outcomes);
        let scored: Vec<Scored<'_>> = outcomes
            .iter()
            .zip(&self.rules)
            .filter(|(_, rule)| !rule.muted)
            .map(|(o, rule)| Scored {
                classification: o.classification,
                groups: &rule.group_ids,
                critical: o.critical,
                reason: o.reason.as_deref(),
            })
            .collect();
        let score = self.weights.score(&scored, &mut ws.counts);
        Verdict {
            classification: scorer::classify_score(score.score, scored.len(), self.thresholds),
            score: score.score,
            metrics: outcomes
                .iter()
                .map(|o| (o.classification, o.critical))
                .collect(),
        }
    }

    /// With a judge that decides a group's metrics together
    /// ([`judges::Method::pools`]), every metric's label from its raw
    /// series (`(rule index, control, experiment)`, in the order of the
    /// answer); `None` for other judges.
    fn pool<'a>(
        &self,
        metrics: impl Iterator<Item = (usize, &'a [f64], &'a [f64])>,
    ) -> Option<Vec<MetricClassification>> {
        let method = self.method.as_ref().filter(|m| m.pools())?;
        let cleaned: Vec<(usize, Vec<f64>, Vec<f64>)> = metrics
            .map(|(r, control, experiment)| {
                let rule = &self.rules[r];
                (
                    r,
                    preprocess(control, rule.nan_strategy, rule.outlier_factor),
                    preprocess(experiment, rule.nan_strategy, rule.outlier_factor),
                )
            })
            .collect();
        let groups = self.group_names.len();
        let members: Vec<judges::Member<'_>> = cleaned
            .iter()
            .map(|(r, control, experiment)| {
                let rule = &self.rules[*r];
                judges::Member {
                    // muted metrics are not scored: each its own
                    unit: match rule.group_ids.first() {
                        Some(&g) if !rule.muted => g,
                        _ => groups + r,
                    },
                    control,
                    experiment,
                    args: ClassifyArgs {
                        name: &rule.name,
                        direction: rule.direction,
                        nan_strategy: rule.nan_strategy,
                        critical: rule.critical,
                        must_have_data: rule.must_have_data,
                        noise_seed: 0,
                    },
                    effect: rule.classifier.effect_size_thresholds,
                    critical_at: rule.classifier.critical_thresholds,
                }
            })
            .collect();
        Some(method.pool(&members))
    }

    /// Clean both series into the workspace and classify them (`metric`:
    /// the rule's index, whose workspace keeps its sorted samples).
    #[allow(clippy::too_many_arguments)]
    fn classify(
        &self,
        rule: &MetricRule,
        control: &[f64],
        experiment: &[f64],
        seed: u64,
        fast: bool,
        metric: usize,
        ws: &mut Workspace,
    ) -> MetricClassification {
        if ws.mws.len() <= metric {
            ws.mws.resize_with(metric + 1, MannWhitney::new);
        }
        let mw = &mut ws.mws[metric];
        let control = cleaned(
            control,
            rule.nan_strategy,
            rule.outlier_factor,
            &mut ws.control,
        );
        let experiment = cleaned(
            experiment,
            rule.nan_strategy,
            rule.outlier_factor,
            &mut ws.experiment,
        );
        let args = ClassifyArgs {
            name: &rule.name,
            direction: rule.direction,
            nan_strategy: rule.nan_strategy,
            critical: rule.critical,
            must_have_data: rule.must_have_data,
            noise_seed: seed,
        };
        if let Some(method) = &self.method {
            return method.classify(
                control,
                experiment,
                &args,
                rule.classifier.effect_size_thresholds,
                rule.classifier.critical_thresholds,
            );
        }
        if fast {
            rule.classifier
                .classify_fast(mw, control, experiment, &args)
        } else {
            rule.classifier.classify(mw, control, experiment, &args)
        }
    }
}

/// Kayenta's preprocessing of one series: the NaN strategy, then (with a
/// factor) reduced-sensitivity IQR outlier removal.
pub fn preprocess(raw: &[f64], nan_strategy: NanStrategy, outlier_factor: Option<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(raw.len());
    preprocess_into(raw, nan_strategy, outlier_factor, &mut out);
    out
}

/// [`preprocess`] into `buf`, or `raw` itself where preprocessing would
/// copy it unchanged (no NaN, no outlier removal): a long window is not
/// copied for every interval.
fn cleaned<'a>(
    raw: &'a [f64],
    nan_strategy: NanStrategy,
    outlier_factor: Option<f64>,
    buf: &'a mut Vec<f64>,
) -> &'a [f64] {
    // without an exit per value, which the compiler vectorizes
    if outlier_factor.is_none() && !raw.iter().fold(false, |any, v| any | v.is_nan()) {
        return raw;
    }
    preprocess_into(raw, nan_strategy, outlier_factor, buf);
    buf
}

fn preprocess_into(
    raw: &[f64],
    nan_strategy: NanStrategy,
    outlier_factor: Option<f64>,
    out: &mut Vec<f64>,
) {
    out.clear();
    match nan_strategy {
        // a long window seldom has a NaN: look first (without an exit per
        // value, which the compiler vectorizes), then copy it whole
        NanStrategy::Remove if !raw.iter().fold(false, |any, v| any | v.is_nan()) => {
            out.extend_from_slice(raw)
        }
        NanStrategy::Remove => out.extend(raw.iter().copied().filter(|v| !v.is_nan())),
        NanStrategy::Replace => out.extend(raw.iter().map(|&v| if v.is_nan() { 0.0 } else { v })),
    }
    if let Some(factor) = outlier_factor {
        let flags = stats::iqr_outliers(out, factor, true);
        *out = stats::remove_flagged(out, &flags);
    }
}

/// A per-metric seed, so a metric's noise does not depend on the others.
fn metric_seed(seed: u64, metric: usize) -> u64 {
    seed ^ (metric as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
