//! The one summariser every driver uses: a scenario's runs (however they
//! were played: simulated, on loopback, on Kubernetes) summed up as a
//! [`ScenarioResult`], with the one expectation rule.

use scenarios::Scenario;
use serde::{Deserialize, Serialize};

use crate::model::{
    Expect, ExpectationCheck, Regression, ReleaseEnd, ScenarioResult, Verdicts, distribution,
    wilson,
};

/// What one run produced, for a scenario's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// How it ended.
    pub decision: ReleaseEnd,
    /// Seconds from traffic shift (or deploy start, for a failed deploy) to
    /// the decision; 0 for a failed build.
    pub decision_time_s: f64,
    /// Requests the canary served before the decision.
    pub canary_requests: u64,
    /// Of those, the ones that failed (5xx, or sent to a down pod).
    pub blast_radius: u64,
    /// Commit to the end of promotion or rollback, seconds.
    pub lead_time_s: f64,
    /// Interval (0-based) at which the analysis decided, if it ran.
    pub decided_at_interval: Option<usize>,
    /// The deciding verdict's marks, when the driver kept them: per
    /// metric (config order), its label and whether it alone turned the
    /// verdict (`judge::decided::marks`).
    pub decided_by: Option<Vec<(judge::Classification, bool)>>,
}

/// The expectation rule: a regression (`fail`) needs a rollback rate of at
/// least `min_detection`, a harmless change (`pass`) at most
/// `max_false_alarm`; without a stated number, the majority of runs (0.5).
/// Runs that all ended in error (no verdict) meet nothing.
pub fn expectation(
    expect: Expect,
    min_detection: Option<f64>,
    max_false_alarm: Option<f64>,
    verdicts: &Verdicts,
    rollback_rate: crate::model::Rate,
    errors: bool,
) -> ExpectationCheck {
    // A paused run reached an end the analysis chose: it is a verdict.
    let verdicts =
        verdicts.promoted + verdicts.rolled_back + verdicts.deploy_failed + verdicts.paused;
    if verdicts == 0 && errors {
        return ExpectationCheck {
            requirement: "a verdict (the run ended in error)".into(),
            met: false,
        };
    }
    match expect {
        Expect::Fail => {
            let min = min_detection.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("detection >= {min}"),
                met: rollback_rate.rate >= min,
            }
        }
        Expect::Pass => {
            let max = max_false_alarm.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("false alarms <= {max}"),
                met: rollback_rate.rate <= max,
            }
        }
    }
}

/// What summing up a scenario's runs needs to know of the scenario: kept
/// in shard files, so merging needs no scenario files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioMeta {
    /// Scenario name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Ground truth.
    pub expect: Expect,
    /// The injected regression.
    pub regression: Regression,
    /// The scenario's stated minimum detection rate, if any.
    pub min_detection: Option<f64>,
    /// The scenario's stated maximum false-alarm rate, if any.
    pub max_false_alarm: Option<f64>,
    /// The canary config's metric names, in config order (what the runs'
    /// [`RunOutcome::decided_by`] marks are of).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_names: Vec<String>,
}

impl ScenarioMeta {
    /// The summary-relevant facts of `sc`.
    pub fn of(sc: &Scenario) -> Self {
        let f = &sc.file;
        let (kind, size, label) = match &f.regression {
            Some(r) => {
                let (k, s, l) = r.describe();
                (k.to_string(), s, l)
            }
            None => ("none".into(), 0.0, "no change".into()),
        };
        Self {
            name: sc.name.clone(),
            description: f.description.clone(),
            expect: match f.expect {
                scenarios::Expect::Pass => Expect::Pass,
                scenarios::Expect::Fail => Expect::Fail,
            },
            regression: Regression { kind, size, label },
            min_detection: f.min_detection,
            max_false_alarm: f.max_false_alarm,
            metric_names: sc.config.metrics.iter().map(|m| m.name.clone()).collect(),
        }
    }
}

/// A scenario's results from its runs.
pub fn summarize(sc: &Scenario, outcomes: &[RunOutcome]) -> ScenarioResult {
    summarize_meta(&ScenarioMeta::of(sc), outcomes)
}

/// A scenario's results from its runs (all of them, in run order).
pub fn summarize_meta(meta: &ScenarioMeta, outcomes: &[RunOutcome]) -> ScenarioResult {
    let mut v = Verdicts::default();
    for o in outcomes {
        match o.decision {
            ReleaseEnd::Promote => v.promoted += 1,
            ReleaseEnd::Rollback => v.rolled_back += 1,
            ReleaseEnd::DeployFailed => v.deploy_failed += 1,
            ReleaseEnd::BuildFailed => v.build_failed += 1,
            ReleaseEnd::Paused => v.paused += 1,
            // No verdict: counted nowhere, and its times mean nothing.
            ReleaseEnd::Error => {}
        }
    }
    let deployed = v.promoted + v.rolled_back + v.deploy_failed + v.paused;
    let rollback_rate = wilson(v.rolled_back + v.deploy_failed, deployed);
    let deployed_runs: Vec<&RunOutcome> =
        outcomes.iter().filter(|o| o.decision.deployed()).collect();
    let dist = |f: &dyn Fn(&RunOutcome) -> f64| {
        let values: Vec<f64> = deployed_runs.iter().map(|o| f(o)).collect();
        distribution(&values, 20)
    };
    let mut decided_at = Vec::new();
    for o in outcomes {
        if let Some(i) = o.decided_at_interval {
            if decided_at.len() <= i {
                decided_at.resize(i + 1, 0);
            }
            decided_at[i] += 1;
        }
    }
    // which metric decided: the runs whose driver kept the deciding
    // verdict's marks (of this scenario's metrics)
    let mut decided = judge::decided::Tally::named(meta.metric_names.iter().map(String::as_str));
    for marks in outcomes.iter().filter_map(|o| o.decided_by.as_deref()) {
        if marks.len() == decided.metrics.len() {
            decided.add_marks(marks);
        }
    }
    let expectation = Some(expectation(
        meta.expect,
        meta.min_detection,
        meta.max_false_alarm,
        &v,
        rollback_rate,
        outcomes.iter().any(|o| o.decision == ReleaseEnd::Error),
    ));
    ScenarioResult {
        name: meta.name.clone(),
        analysis: None,
        description: meta.description.clone(),
        expect: meta.expect,
        regression: meta.regression.clone(),
        runs: outcomes.len() as u32,
        verdicts: v,
        rollback_rate,
        decision_time_s: dist(&|o| o.decision_time_s),
        canary_requests: dist(&|o| o.canary_requests as f64),
        blast_radius: dist(&|o| o.blast_radius as f64),
        lead_time_s: dist(&|o| o.lead_time_s),
        decided_at_interval: decided_at,
        expectation,
        decided: (decided.verdicts > 0).then_some(decided),
        oracle: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(expect: Expect) -> ScenarioMeta {
        ScenarioMeta {
            name: "s".into(),
            description: String::new(),
            expect,
            regression: Regression {
                kind: "latency".into(),
                size: 0.1,
                label: "latency +10%".into(),
            },
            min_detection: Some(0.5),
            max_false_alarm: None,
            metric_names: Vec::new(),
        }
    }

    fn run(decision: ReleaseEnd) -> RunOutcome {
        RunOutcome {
            decision,
            decision_time_s: 600.0,
            canary_requests: 100,
            blast_radius: 3,
            lead_time_s: 900.0,
            decided_at_interval: Some(1),
            decided_by: None,
        }
    }

    #[test]
    fn paused_runs_count_in_the_rate_but_not_as_rollbacks() {
        let outcomes = [
            run(ReleaseEnd::Rollback),
            run(ReleaseEnd::Paused),
            run(ReleaseEnd::Paused),
            run(ReleaseEnd::Promote),
            run(ReleaseEnd::Error),
        ];
        let r = summarize_meta(&meta(Expect::Fail), &outcomes);
        assert_eq!(r.verdicts.paused, 2);
        assert_eq!((r.rollback_rate.count, r.rollback_rate.total), (1, 4));
        assert_eq!(r.decision_time_s.count, 4);
        // A paused run is an end the analysis chose: with errors beside it
        // the expectation is judged on the rate, not "no verdict".
        let check = r.expectation.unwrap_or_else(|| unreachable!());
        assert_eq!(check.requirement, "detection >= 0.5");
        assert!(!check.met);
        let only_paused = [run(ReleaseEnd::Paused), run(ReleaseEnd::Error)];
        let r = summarize_meta(&meta(Expect::Fail), &only_paused);
        assert_eq!(
            r.expectation.map(|c| c.requirement),
            Some("detection >= 0.5".to_string())
        );
    }
}
