//! Which metric decided: for one verdict, each metric's label and whether
//! it alone turned the verdict; over many verdicts (the runs of a
//! scenario), how often each metric was High, Low or Nodata and how often
//! it was pivotal. A user fixing a config needs this table first: in an
//! A/A release the metric that fails most often is the one to look at.
//!
//! Pure: it re-scores the labels a [`Verdict`] already carries with the
//! judge's own scorer, so it works for every judge (Kayenta's and those of
//! [`crate::judges`]) and never re-runs a test. What it is not for: saying
//! why a metric was labelled as it was (that is the classifier's reason).

use serde::{Deserialize, Serialize};

use crate::classifier::Classification;
use crate::scorer::{self, ScoreClassification, Scored};
use crate::{Judge, Verdict};

impl Judge {
    /// The verdict that `labels` (per metric, config order: label and
    /// critical flag, as [`Verdict::metrics`]) would get from this judge's
    /// scorer and thresholds.
    ///
    /// # Panics
    /// If `labels` does not have one entry per config metric.
    pub fn rescore(&self, labels: &[(Classification, bool)]) -> ScoreClassification {
        assert_eq!(
            labels.len(),
            self.rules.len(),
            "one label per config metric"
        );
        let scored: Vec<Scored<'_>> = labels
            .iter()
            .zip(&self.rules)
            .filter(|(_, rule)| !rule.muted)
            .map(|(&(classification, critical), rule)| Scored {
                classification,
                groups: &rule.group_ids,
                critical,
                reason: None,
            })
            .collect();
        let mut counts = Vec::new();
        let score = self.weights.score(&scored, &mut counts);
        scorer::classify_score(score.score, scored.len(), self.thresholds)
    }

    /// Per metric (config order): whether it alone turned `verdict`, that
    /// is, whether the verdict would have been different had that metric
    /// passed (labelled Pass, not critical) and every other kept its label.
    /// A metric that passed, or is muted, never turned a verdict; with two
    /// failing metrics either of which fails the release on its own,
    /// neither did.
    pub fn pivotal(&self, verdict: &Verdict) -> Vec<bool> {
        let mut labels = verdict.metrics.clone();
        (0..labels.len())
            .map(|i| {
                let (label, critical) = labels[i];
                if label == Classification::Pass || self.rules[i].muted {
                    return false;
                }
                labels[i] = (Classification::Pass, false);
                let other = self.rescore(&labels);
                labels[i] = (label, critical);
                other != verdict.classification
            })
            .collect()
    }
}

/// Per metric of `verdict` (config order): its label and whether it alone
/// turned the verdict ([`Judge::pivotal`]): what a [`Tally`] counts of one
/// verdict, small enough to keep per run.
pub fn marks(judge: &Judge, verdict: &Verdict) -> Vec<(Classification, bool)> {
    verdict
        .metrics
        .iter()
        .zip(judge.pivotal(verdict))
        .map(|(&(label, _), p)| (label, p))
        .collect()
}

/// How often one metric was labelled what, over many verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricTally {
    /// The metric's name.
    pub name: String,
    /// Labelled High.
    pub high: u64,
    /// Labelled Low.
    pub low: u64,
    /// Labelled Nodata or NodataFailMetric.
    pub nodata: u64,
    /// Alone turned the verdict ([`Judge::pivotal`]).
    pub pivotal: u64,
}

/// Per-metric counts over many verdicts (one per run: the interval that
/// decided it), in config order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Verdicts counted.
    pub verdicts: u64,
    /// Per metric, config order.
    pub metrics: Vec<MetricTally>,
}

impl Tally {
    /// An empty tally for `judge`'s metrics.
    pub fn new(judge: &Judge) -> Self {
        Self::named(judge.metric_names())
    }

    /// An empty tally of metrics named `names` (config order).
    pub fn named<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        Self {
            verdicts: 0,
            metrics: names
                .into_iter()
                .map(|name| MetricTally {
                    name: name.to_owned(),
                    ..MetricTally::default()
                })
                .collect(),
        }
    }

    /// Count one verdict of `judge`.
    ///
    /// # Panics
    /// If the verdict is not one of `judge`'s (another number of metrics).
    pub fn add(&mut self, judge: &Judge, verdict: &Verdict) {
        assert_eq!(
            verdict.metrics.len(),
            self.metrics.len(),
            "one judge's verdicts"
        );
        self.add_marks(&marks(judge, verdict));
    }

    /// Count one verdict given as its marks: per metric (config order),
    /// its label and whether it alone turned the verdict ([`marks`]).
    ///
    /// # Panics
    /// If `marks` has another number of metrics.
    pub fn add_marks(&mut self, marks: &[(Classification, bool)]) {
        assert_eq!(marks.len(), self.metrics.len(), "one judge's verdicts");
        self.verdicts += 1;
        for (t, &(label, p)) in self.metrics.iter_mut().zip(marks) {
            match label {
                Classification::High => t.high += 1,
                Classification::Low => t.low += 1,
                Classification::Nodata | Classification::NodataFailMetric => t.nodata += 1,
                Classification::Pass | Classification::Error => {}
            }
            t.pivotal += u64::from(p);
        }
    }

    /// Add another tally of the same metrics (shards of one study).
    ///
    /// # Panics
    /// If the tallies are of different metrics.
    pub fn merge(&mut self, other: &Tally) {
        assert_eq!(self.metrics.len(), other.metrics.len(), "same metrics");
        self.verdicts += other.verdicts;
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
            assert_eq!(a.name, b.name, "same metrics");
            a.high += b.high;
            a.low += b.low;
            a.nodata += b.nodata;
            a.pivotal += b.pivotal;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CanaryConfig;
    use Classification::*;

    fn judge(json: &str) -> Judge {
        let config = CanaryConfig::from_json(json).unwrap_or_else(|e| panic!("{e}"));
        Judge::new(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Two latency metrics in one group, an error ratio in another
    /// (critical), weights 50 / 50: the catalog's shape.
    fn catalog_like() -> Judge {
        judge(
            r#"{"classifier":{"groupWeights":{"latency":50,"errors":50},
                "scoreThresholds":{"pass":75,"marginal":50}},
               "metrics":[
                {"name":"p50","groups":["latency"]},
                {"name":"p99","groups":["latency"]},
                {"name":"errors","groups":["errors"],
                 "analysisConfigurations":{"canary":{"critical":true}}}]}"#,
        )
    }

    fn verdict(j: &Judge, metrics: &[(Classification, bool)]) -> Verdict {
        Verdict {
            score: 0.0,
            classification: j.rescore(metrics),
            metrics: metrics.to_vec(),
        }
    }

    #[test]
    fn rescoring_matches_the_judge() {
        let j = catalog_like();
        // one latency metric High: latency group 50, summary 75: Pass
        assert_eq!(
            j.rescore(&[(High, false), (Pass, false), (Pass, false)]),
            ScoreClassification::Pass
        );
        // both High: summary 50: Marginal
        assert_eq!(
            j.rescore(&[(High, false), (High, false), (Pass, false)]),
            ScoreClassification::Marginal
        );
        // critical errors: Fail whatever else
        assert_eq!(
            j.rescore(&[(Pass, false), (Pass, false), (High, true)]),
            ScoreClassification::Fail
        );
        // and it agrees with judge_series on real data
        let base: Vec<f64> = (0..60).map(|i| 100.0 + f64::from(i % 7)).collect();
        let slow: Vec<f64> = base.iter().map(|v| v * 1.5).collect();
        let series = [
            crate::Series {
                control: &base,
                experiment: &slow,
            },
            crate::Series {
                control: &base,
                experiment: &base,
            },
            crate::Series {
                control: &base,
                experiment: &base,
            },
        ];
        let v = j.judge_series(&series, 1, &mut crate::Workspace::new());
        assert_eq!(v.metrics[0].0, High);
        assert_eq!(j.rescore(&v.metrics), v.classification);
    }

    #[test]
    fn a_metric_alone_turns_a_verdict_only_when_passing_it_would_change_it() {
        let j = catalog_like();
        // one latency High: the verdict is Pass anyway, nothing turned it
        let v = verdict(&j, &[(High, false), (Pass, false), (Pass, false)]);
        assert_eq!(j.pivotal(&v), vec![false, false, false]);
        // both latency High: Marginal, each alone turned it
        let v = verdict(&j, &[(High, false), (High, false), (Pass, false)]);
        assert_eq!(j.pivotal(&v), vec![true, true, false]);
        // critical errors and both latency: only errors turned it (without
        // it, still Marginal not Fail: it did turn it)
        let v = verdict(&j, &[(High, false), (High, false), (High, true)]);
        assert_eq!(v.classification, ScoreClassification::Fail);
        assert_eq!(j.pivotal(&v), vec![false, false, true]);
    }

    #[test]
    fn two_failing_critical_metrics_each_fail_alone_and_neither_is_pivotal() {
        let j = judge(
            r#"{"metrics":[
                {"name":"a","groups":["g"],"analysisConfigurations":{"canary":{"critical":true}}},
                {"name":"b","groups":["g"],"analysisConfigurations":{"canary":{"critical":true}}},
                {"name":"c","groups":["g"],"analysisConfigurations":{"canary":{"muted":true}}}]}"#,
        );
        let v = verdict(&j, &[(High, true), (Low, true), (High, false)]);
        assert_eq!(v.classification, ScoreClassification::Fail);
        assert_eq!(j.pivotal(&v), vec![false, false, false]);
    }

    #[test]
    fn tallies_count_labels_and_merge() {
        let j = catalog_like();
        let mut a = Tally::new(&j);
        a.add(
            &j,
            &verdict(&j, &[(High, false), (High, false), (Pass, false)]),
        );
        a.add(
            &j,
            &verdict(&j, &[(Low, false), (Nodata, false), (Pass, false)]),
        );
        let mut b = Tally::new(&j);
        b.add(
            &j,
            &verdict(&j, &[(Pass, false), (Pass, false), (High, true)]),
        );
        a.merge(&b);
        assert_eq!(a.verdicts, 3);
        let names: Vec<&str> = a.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["p50", "p99", "errors"]);
        let counts: Vec<(u64, u64, u64, u64)> = a
            .metrics
            .iter()
            .map(|m| (m.high, m.low, m.nodata, m.pivotal))
            .collect();
        // the second verdict is Marginal (latency 0 of 1 scored, errors
        // 100): passing either the Low or the Nodata latency metric makes
        // it Pass, so both turned it
        assert_eq!(counts, [(1, 1, 0, 2), (1, 0, 1, 2), (1, 0, 0, 1)]);
    }
}
