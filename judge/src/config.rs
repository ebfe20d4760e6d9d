//! Kayenta's canary configuration (`CanaryConfig` JSON), parsed and checked.
//!
//! A user's existing Kayenta config files load unchanged: unknown fields are
//! accepted and ignored, as Kayenta does. What Kayenta would silently
//! misread (an unknown `direction`, thresholds out of order, a negative
//! weight) is refused here with the JSON path of the problem.
//!
//! Not for: fetching metrics; the Prometheus query fields are kept typed so
//! the real modes can build PromQL from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::InputError;

/// Name of the judge that reproduces Kayenta's default judge.
pub const NETFLIX_ACA_JUDGE: &str = "NetflixACAJudge-v1.0";

/// Judge names this crate can run (see [`crate::judges`]).
pub const KNOWN_JUDGES: &[&str] = crate::judges::NAMES;

/// A Kayenta canary configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfig {
    /// Config name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which judge to run; `NetflixACAJudge-v1.0` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeConfig>,
    /// The metrics to compare.
    pub metrics: Vec<MetricConfig>,
    /// Named filter templates for `customFilterTemplate`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// Group weights and score thresholds.
    #[serde(default)]
    pub classifier: ClassifierConfig,
}

/// `judge` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeConfig {
    /// Judge name, e.g. `NetflixACAJudge-v1.0`.
    pub name: String,
    /// Judge-specific settings (unused by the Netflix judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_configurations: Option<serde_json::Value>,
}

/// One metric of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricConfig {
    /// Metric name; metric set pairs refer to it.
    pub name: String,
    /// How to fetch the metric.
    #[serde(default)]
    pub query: MetricQuery,
    /// Groups the metric scores in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Which scope of the canary execution request applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_name: Option<String>,
    /// Judge settings for this metric.
    #[serde(default)]
    pub analysis_configurations: AnalysisConfigurations,
}

/// The metric's query. The Prometheus fields are typed; anything else
/// (other metric stores' fields) is kept as is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricQuery {
    /// Metric store type, e.g. `prometheus`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Prometheus metric name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Extra label matchers, e.g. `code=~"5.."`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_bindings: Vec<String>,
    /// Labels to aggregate by (`sum by (...)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by_fields: Vec<String>,
    /// A whole query with `${scope}`-style variables, or `PromQL:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_inline_template: Option<String>,
    /// Name of a template in `templates` used as the label filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_filter_template: Option<String>,
    /// An inline label filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_filter: Option<String>,
    /// Fields of other metric stores, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `analysisConfigurations`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnalysisConfigurations {
    /// The canary judge's settings.
    #[serde(default)]
    pub canary: CanaryAnalysis,
}

/// `analysisConfigurations.canary`: how the judge treats one metric.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// Which deviation fails the metric.
    #[serde(default)]
    pub direction: Direction,
    /// What to do with NaN values.
    #[serde(default)]
    pub nan_strategy: NanStrategy,
    /// A failing critical metric fails the whole canary.
    #[serde(default, deserialize_with = "flexible_bool")]
    pub critical: bool,
    /// Missing data counts as a failure (`NodataFailMetric`).
    #[serde(default, deserialize_with = "flexible_bool")]
    pub must_have_data: bool,
    /// Reported but not scored.
    #[serde(default, deserialize_with = "flexible_bool")]
    pub muted: bool,
    /// Effect size gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<EffectSize>,
    /// Outlier removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<Outliers>,
}

/// Which direction of change fails a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Only an increase fails (latency, errors).
    Increase,
    /// Only a decrease fails (throughput, success rate).
    Decrease,
    /// Either fails.
    #[default]
    Either,
}

impl Direction {
    /// Whether a significant increase fails the metric.
    pub fn allows_high(self) -> bool {
        matches!(self, Self::Increase | Self::Either)
    }

    /// Whether a significant decrease fails the metric.
    pub fn allows_low(self) -> bool {
        matches!(self, Self::Decrease | Self::Either)
    }
}

/// NaN handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NanStrategy {
    /// Drop NaN values.
    #[default]
    Remove,
    /// Replace NaN with 0 (counts where no data means no events).
    Replace,
}

/// `effectSize`: a High needs the effect to reach `allowedIncrease`, a Low
/// to reach `allowedDecrease`; critical metrics fail the canary only past
/// the critical thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectSize {
    /// Smallest effect that makes a High.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// Largest effect that makes a Low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    /// Smallest effect that makes a critical High.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_increase: Option<f64>,
    /// Largest effect that makes a critical Low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_decrease: Option<f64>,
    /// Effect size measure.
    #[serde(default)]
    pub measure: EffectSizeMeasure,
}

/// How the effect is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EffectSizeMeasure {
    /// mean(canary) / mean(baseline); neutral value 1.
    #[default]
    #[serde(rename = "meanRatio")]
    MeanRatio,
    /// Common-language effect size P(canary > baseline); neutral value 0.5.
    #[serde(rename = "cles")]
    Cles,
}

impl EffectSizeMeasure {
    /// The "no effect" value, Kayenta's default for every threshold.
    pub fn neutral(self) -> f64 {
        match self {
            Self::MeanRatio => 1.0,
            Self::Cles => 0.5,
        }
    }
}

/// `outliers`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outliers {
    /// Keep or remove outliers.
    #[serde(default)]
    pub strategy: OutlierStrategy,
    /// IQR fence factor (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_factor: Option<f64>,
}

/// Outlier strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutlierStrategy {
    /// Keep every value.
    #[default]
    Keep,
    /// Remove values outside the (reduced-sensitivity) IQR fences.
    Remove,
}

/// `classifier` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassifierConfig {
    /// Group weights in percent; unweighted groups share the rest.
    #[serde(default)]
    pub group_weights: BTreeMap<String, f64>,
    /// Pass and marginal score thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_thresholds: Option<ScoreThresholds>,
}

/// Summary score thresholds: at least `pass` passes, at least `marginal` is
/// marginal, below fails.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreThresholds {
    /// Pass threshold (0..=100).
    pub pass: f64,
    /// Marginal threshold (0..=pass).
    pub marginal: f64,
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        Self {
            pass: 75.0,
            marginal: 50.0,
        }
    }
}

impl ScoreThresholds {
    /// Check the thresholds are in 0..=100 and `marginal <= pass`; `path`
    /// names where they came from in errors.
    pub fn validate(&self, path: &str) -> Result<(), InputError> {
        for (name, v) in [("pass", self.pass), ("marginal", self.marginal)] {
            if !(0.0..=100.0).contains(&v) {
                return Err(InputError::at(
                    format!("{path}.{name}"),
                    format!("{v} is not a score between 0 and 100"),
                ));
            }
        }
        if self.marginal > self.pass {
            return Err(InputError::at(
                path.to_string(),
                format!(
                    "marginal threshold {} is above pass threshold {}; marginal must be <= pass",
                    self.marginal, self.pass
                ),
            ));
        }
        Ok(())
    }
}

/// Kayenta reads booleans leniently: `true` or `"true"`.
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        B(bool),
        S(String),
    }
    match B::deserialize(d)? {
        B::B(b) => Ok(b),
        B::S(s) => match s.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, found \"{other}\""
            ))),
        },
    }
}

impl CanaryConfig {
    /// Parse and validate a config from JSON text.
    pub fn from_json(text: &str) -> Result<Self, InputError> {
        let config: Self = crate::error::parse_json(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The judge this config names (default `NetflixACAJudge-v1.0`).
    pub fn judge_name(&self) -> &str {
        self.judge
            .as_ref()
            .map_or(NETFLIX_ACA_JUDGE, |j| j.name.as_str())
    }

    /// Check everything the judge relies on; errors carry the JSON path.
    pub fn validate(&self) -> Result<(), InputError> {
        let judge = self.judge_name();
        if !KNOWN_JUDGES.contains(&judge) {
            return Err(InputError::at(
                "judge.name",
                format!(
                    "unknown judge \"{judge}\"; known judges: {}",
                    KNOWN_JUDGES.join(", ")
                ),
            ));
        }
        if self.metrics.is_empty() {
            return Err(InputError::at(
                "metrics",
                "the metric list is empty; a canary needs at least one metric",
            ));
        }
        let mut seen = BTreeMap::new();
        for (i, m) in self.metrics.iter().enumerate() {
            let path = format!("metrics[{i}]");
            if m.name.trim().is_empty() {
                return Err(InputError::at(
                    format!("{path}.name"),
                    "metric name is empty",
                ));
            }
            if let Some(first) = seen.insert(m.name.as_str(), i) {
                return Err(InputError::at(
                    format!("{path}.name"),
                    format!(
                        "metric name \"{}\" is also used by metrics[{first}]; names must be unique",
                        m.name
                    ),
                ));
            }
            m.analysis_configurations
                .canary
                .validate(&format!("{path}.analysisConfigurations.canary"))?;
            if let Some(t) = &m.query.custom_filter_template
                && !self.templates.contains_key(t)
            {
                return Err(InputError::at(
                    format!("{path}.query.customFilterTemplate"),
                    format!("template \"{t}\" is not defined under \"templates\""),
                ));
            }
        }
        let mut weight_sum = 0.0;
        for (group, &w) in &self.classifier.group_weights {
            if !(w.is_finite() && w >= 0.0) {
                return Err(InputError::at(
                    format!("classifier.groupWeights.{group}"),
                    format!("weight {w} is negative or not a number; weights are percentages >= 0"),
                ));
            }
            weight_sum += w;
        }
        if weight_sum > 100.0 + 1e-9 {
            return Err(InputError::at(
                "classifier.groupWeights",
                format!("weights add up to {weight_sum}, more than 100"),
            ));
        }
        if let Some(t) = &self.classifier.score_thresholds {
            t.validate("classifier.scoreThresholds")?;
        }
        Ok(())
    }
}

impl CanaryAnalysis {
    fn validate(&self, path: &str) -> Result<(), InputError> {
        if let Some(e) = &self.effect_size {
            for (name, v) in [
                ("allowedIncrease", e.allowed_increase),
                ("allowedDecrease", e.allowed_decrease),
                ("criticalIncrease", e.critical_increase),
                ("criticalDecrease", e.critical_decrease),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(InputError::at(
                        format!("{path}.effectSize.{name}"),
                        format!("{v} is not a non-negative effect size"),
                    ));
                }
            }
        }
        if let Some(o) = &self.outliers
            && let Some(f) = o.outlier_factor
            && !(f.is_finite() && f > 0.0)
        {
            return Err(InputError::at(
                format!("{path}.outliers.outlierFactor"),
                format!("{f} is not a positive factor"),
            ));
        }
        Ok(())
    }
}
