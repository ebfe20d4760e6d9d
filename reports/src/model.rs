//! The result records every driver (simulator, local mode, cluster mode)
//! writes and every renderer reads. Plain serde data in the one result
//! vocabulary: how a release ended is a [`ReleaseEnd`] (the release
//! controllers' own), classifications are the judge's enums, serialized as
//! Kayenta spells them; [`MetricVerdict::of`] is the one mapping from a
//! judge result.
//!
//! Rates are of runs: for a scenario whose ground truth is a regression
//! (`expect = fail`) the rate of interest is detection (runs rolled back);
//! for a harmless one (`expect = pass`) it is false alarms (runs rolled
//! back). Times are seconds of (virtual or real) time.

use judge::{Classification, ScoreClassification};
pub use release::ReleaseEnd;
use serde::{Deserialize, Serialize};

/// A whole study: N runs of each scenario, optionally a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// canarylab version that produced the results.
    pub tool_version: String,
    /// Which driver ran it: "sim", "local" or "kube".
    pub driver: String,
    /// Study seed (per-run seeds derive from it).
    pub seed: u64,
    /// Runs per scenario.
    pub runs_per_scenario: u32,
    /// Name of the canary config used (when one config was forced for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Per scenario, in input order.
    pub scenarios: Vec<ScenarioResult>,
    /// One example run per scenario, in detail (series, intervals, timeline).
    #[serde(default)]
    pub example_runs: Vec<RunDetail>,
    /// Parameter sweeps (ROC / power data), if any were run.
    #[serde(default)]
    pub sweeps: Vec<Sweep>,
}

/// What a scenario should lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// A harmless release (A/A or a no-op change): should be promoted.
    Pass,
    /// A regression: should be rolled back.
    Fail,
}

/// The injected regression, for grouping scenarios into power curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Kind: "latency", "latency_tail", "variance", "errors", "cpu",
    /// "memory_leak", "crash_loop", "slow_start", "none".
    pub kind: String,
    /// Size in the kind's natural unit (relative increase for latency and
    /// cpu, e.g. 0.10 for +10%; absolute error-rate increase for errors).
    pub size: f64,
    /// Human label, e.g. "latency +10%".
    pub label: String,
}

/// A rate over runs with its Wilson 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Successes (e.g. runs rolled back).
    pub count: u32,
    /// Runs.
    pub total: u32,
    /// count / total.
    pub rate: f64,
    /// Wilson 95% lower bound.
    pub lower: f64,
    /// Wilson 95% upper bound.
    pub upper: f64,
}

/// How the runs of a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdicts {
    /// Canary promoted to production.
    pub promoted: u32,
    /// Rolled back by the analysis (score not above marginal, or final
    /// score below pass).
    pub rolled_back: u32,
    /// Rolled back before analysis: canary pods never became ready.
    pub deploy_failed: u32,
    /// The build failed: nothing was deployed.
    pub build_failed: u32,
    /// The analysis paused the release for a person (Argo Rollouts on an
    /// Inconclusive analysis): neither promoted nor rolled back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paused: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Summary of a distribution over runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Distribution {
    /// Number of values.
    pub count: u32,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Histogram: equal-width bins from `bins_start` with `bin_width`.
    pub bins_start: f64,
    /// Width of each bin.
    pub bin_width: f64,
    /// Counts per bin.
    pub bins: Vec<u32>,
}

/// A user's expectation for a scenario (`canarylab test`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationCheck {
    /// What was required, in words, e.g. "detection >= 0.90".
    pub requirement: String,
    /// Whether the study met it.
    pub met: bool,
}

/// One scenario's results over all its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name (file stem).
    pub name: String,
    /// The analysis these runs were judged by (its file's stem), when the
    /// study compares several (`canarylab sim --analysis FILE ...`); absent
    /// when the scenario's own Kayenta config judged them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<String>,
    /// One-line description.
    pub description: String,
    /// Ground truth.
    pub expect: Expect,
    /// The injected regression.
    pub regression: Regression,
    /// Runs.
    pub runs: u32,
    /// How runs ended.
    pub verdicts: Verdicts,
    /// Rolled back (by analysis or deploy failure) over runs that reached
    /// deployment: detection rate when `expect` is fail, false-alarm rate
    /// when pass.
    pub rollback_rate: Rate,
    /// Time from canary start to the decision, seconds.
    pub decision_time_s: Distribution,
    /// Requests served by the canary before the decision.
    pub canary_requests: Distribution,
    /// Failed requests served to users by the canary (blast radius).
    pub blast_radius: Distribution,
    /// Commit to production (or to rollback), seconds.
    pub lead_time_s: Distribution,
    /// Share of runs decided at each interval (index 0 = first interval).
    #[serde(default)]
    pub decided_at_interval: Vec<u32>,
    /// The user's expectation, when the scenario states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectation: Option<ExpectationCheck>,
    /// Which metric decided: over the runs the analysis decided, how often
    /// each metric was High, Low or Nodata in the deciding interval and how
    /// often it alone turned the verdict. Absent when the driver did not
    /// keep the verdicts (shard merges, real modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<judge::decided::Tally>,
    /// The best detection any judge could reach on the same data at this
    /// study's false-alarm rate, where a closed form exists for the
    /// scenario's model (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<Oracle>,
}

/// The oracle's detection of a scenario: what the optimal test that knows
/// the simulator's model reaches at a given false-alarm rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Oracle {
    /// The false-alarm rate it is held to (the judge's, measured on the
    /// study's harmless scenarios).
    pub false_alarm: f64,
    /// Its detection at that rate (for a harmless scenario: the rate).
    pub detection: f64,
    /// How it was computed, in a few words.
    pub method: String,
}

/// One metric's verdict in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    /// Metric name.
    pub name: String,
    /// Pass, High, Low, Nodata, NodataFailMetric or Error.
    pub classification: Classification,
    /// Effect size (mean ratio or CLES); NaN written as null.
    pub ratio: Option<f64>,
    /// Confidence interval of canary - baseline, when the test ran.
    pub ci: Option<(f64, f64)>,
    /// Whether it failed the canary outright.
    pub critical: bool,
}

impl MetricVerdict {
    /// A metric's verdict from the judge's result (a ratio that is not
    /// finite is left out).
    pub fn of(m: &judge::CanaryAnalysisResult) -> Self {
        MetricVerdict {
            name: m.name.clone(),
            classification: m.classification,
            ratio: Some(m.result_metadata.ratio).filter(|v| v.is_finite()),
            ci: m
                .result_metadata
                .mann_whitney
                .map(|mw| (mw.ci_lower, mw.ci_upper)),
            critical: m.critical,
        }
    }

    /// Whether the metric passed.
    pub fn passed(&self) -> bool {
        self.classification == Classification::Pass
    }
}

/// One analysis interval of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalDetail {
    /// 1-based interval number.
    pub index: u32,
    /// Window start, seconds from canary start.
    pub start_s: f64,
    /// Window end.
    pub end_s: f64,
    /// Judge score.
    pub score: f64,
    /// Pass, Marginal, Fail or Nodata.
    pub classification: ScoreClassification,
    /// Per metric.
    pub metrics: Vec<MetricVerdict>,
}

/// One metric's series as the judge saw them (one point per scrape step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// Metric name.
    pub name: String,
    /// Point times, seconds from canary start.
    pub times_s: Vec<f64>,
    /// Baseline values (null = missing).
    pub control: Vec<Option<f64>>,
    /// Canary values (null = missing).
    pub experiment: Vec<Option<f64>>,
}

/// A pipeline stage on a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// e.g. "build", "deploy", "warmup", "analysis", "promote", "rollback".
    pub name: String,
    /// Start, seconds from the commit.
    pub start_s: f64,
    /// End.
    pub end_s: f64,
}

/// One run, in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    /// Scenario name.
    pub scenario: String,
    /// The analysis that released it (its file's stem) in a side-by-side
    /// study, which has an example run per scenario and analysis; absent
    /// when the scenario's own Kayenta config did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<String>,
    /// The run's seed.
    pub seed: u64,
    /// How the run ended.
    pub decision: ReleaseEnd,
    /// Which rule decided, in words.
    pub reason: String,
    /// Judged intervals, in order.
    pub intervals: Vec<IntervalDetail>,
    /// Series over the whole analysis.
    pub series: Vec<MetricSeries>,
    /// Stages from commit to the end.
    pub timeline: Vec<Stage>,
}

impl RunDetail {
    /// How the run is named in reports: the scenario, and its analysis in
    /// brackets in a side-by-side study.
    pub fn label(&self) -> String {
        match &self.analysis {
            Some(a) => format!("{} [{a}]", self.scenario),
            None => self.scenario.clone(),
        }
    }
}

/// A parameter sweep: one point per setting, with false-alarm rate over the
/// harmless scenarios and detection rate over the regressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Swept parameter, e.g. "pass threshold".
    pub parameter: String,
    /// The points, in parameter order.
    pub points: Vec<SweepPoint>,
}

/// One setting of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The parameter value, as shown.
    pub label: String,
    /// The parameter value as a number.
    pub value: f64,
    /// Rollbacks of harmless releases.
    pub false_alarm: Rate,
    /// Rollbacks of regressions.
    pub detection: Rate,
    /// Per regression scenario, detection at this setting (for power curves).
    #[serde(default)]
    pub per_scenario: Vec<(String, Rate)>,
    /// The setting in the user's config.
    pub chosen: bool,
}

/// Wilson score interval (95%) for `count` of `total`.
pub fn wilson(count: u32, total: u32) -> Rate {
    if total == 0 {
        return Rate {
            count,
            total,
            rate: 0.0,
            lower: 0.0,
            upper: 1.0,
        };
    }
    let z = 1.959_963_984_540_054_f64;
    let n = f64::from(total);
    let p = f64::from(count) / n;
    let denom = 1.0 + z * z / n;
    let center = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Rate {
        count,
        total,
        rate: p,
        lower: (center - half).max(0.0),
        upper: (center + half).min(1.0),
    }
}

/// Summarize values into a [`Distribution`] with `bins` equal-width bins.
pub fn distribution(values: &[f64], bins: usize) -> Distribution {
    if values.is_empty() {
        return Distribution::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let h = (v.len() - 1) as f64 * p;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(v.len() - 1);
        v[lo] + (h - lo as f64) * (v[hi] - v[lo])
    };
    let (min, max) = (v[0], v[v.len() - 1]);
    let bins = bins.max(1);
    let width = if max > min {
        (max - min) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0u32; bins];
    for &x in &v {
        let i = (((x - min) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    Distribution {
        count: v.len() as u32,
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max,
        bins_start: min,
        bin_width: width,
        bins: counts,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 5 of 100: R prop.test(5, 100, correct = FALSE) gives [0.02154368, 0.11175047]
        let r = wilson(5, 100);
        assert!(
            (r.lower - 0.021_54).abs() < 1e-4 && (r.upper - 0.111_8).abs() < 1e-4,
            "{r:?}"
        );
        let r = wilson(0, 50);
        assert!(r.lower.abs() < 1e-15, "{r:?}");
        assert!((r.upper - 0.071_35).abs() < 1e-4, "{r:?}");
    }

    #[test]
    fn distribution_quantiles() {
        let d = distribution(&[1.0, 2.0, 3.0, 4.0, 5.0], 4);
        assert_eq!((d.count, d.p50, d.max, d.mean), (5, 3.0, 5.0, 3.0));
        assert_eq!(d.bins.iter().sum::<u32>(), 5);
    }
}
