//! Flagger's scheduler as it runs a Canary, one tick per `interval`
//! (`pkg/controller/scheduler.go` `advanceCanary`, `runCanary`,
//! `runBlueGreen`, `nextStepWeight`, `maxWeight`, `checkCanaryStatus`;
//! `pkg/controller/scheduler_metrics.go` `runBuiltinMetricChecks`,
//! `runMetricChecks`; `pkg/metrics/providers/prometheus.go` `RunQuery`;
//! `pkg/metrics/observers/istio.go` `GetRequestDuration`):
//!
//! - tick 0 ([`Controller::start`]): a new revision is detected, the canary
//!   is scaled up, phase Progressing; no traffic yet;
//! - each later tick: if `failedChecks >= threshold` → rollback; on the first
//!   Progressing tick (weight 0, iterations 0) no checks run, the weight
//!   steps up; otherwise the checks run in order and stop at the first
//!   failure, which adds 1 to `failedChecks` (never reset) and holds the
//!   weight; all passing → the next weight, or, once at `maxWeight`,
//!   promotion;
//! - a query with no series, a NaN, a scalar (the client cannot decode it),
//!   a matrix or a failed query fails the check; with several series the
//!   last one's value is used;
//! - `request-duration` is truncated to whole milliseconds (`int64(value)`).
//!
//! Not modelled: canary pod readiness (`IsCanaryReady`) and the progress
//! deadline; webhooks (gates always open, load tests are the scenario's).
//! After promotion Flagger routes traffic back to the primary (now running
//! the new version) and scales the canary down on the next two ticks; the
//! controller ends at the promotion.

use std::time::Duration;

use crate::control::{
    Command, Controller, Decision, MeasureId, Outcome, Query, QueryResult, QuerySpec,
};
use crate::flagger::spec::{Bounds, CanaryPlan, Check, CheckKind, Strategy};

/// Flagger's phases that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryPhase {
    /// before the first tick
    Initialized,
    /// analysis running
    Progressing,
    /// promoted
    Promoting,
    /// rolled back
    Failed,
}

/// Flagger's value for a check's query result: `RunQuery`'s float or its error.
pub fn flagger_value(result: &QueryResult) -> Result<f64, String> {
    match result {
        QueryResult::Failed(e) => Err(format!("running query failed: {e}")),
        // prometheusResponse.Data.Result is a list of series: a scalar result does not decode
        QueryResult::Scalar(_) => {
            Err("error unmarshaling result: a scalar is not a list of series".into())
        }
        QueryResult::Matrix(m) if !m.is_empty() => Err("multiple values returned".into()),
        QueryResult::Matrix(_) => Err("no values found".into()),
        QueryResult::Vector(v) => match v.last() {
            Some(x) if !x.is_nan() => Ok(*x),
            _ => Err("no values found".into()),
        },
    }
}

/// Go's `int64(f)` on amd64: NaN and out-of-range give `i64::MIN`.
fn go_int64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Does the check pass with this value? `Err` names why not.
pub fn check_passes(check: &Check, value: f64) -> Result<(), String> {
    const MS: i64 = 1_000_000; // time.Millisecond in ns
    match check.kind {
        CheckKind::AlwaysFails => Err("no query, built-in name or templateRef".into()),
        CheckKind::Duration => {
            // time.Duration(int64(value)) * time.Millisecond, overflow wrapping as Go's does
            let val = go_int64(value).wrapping_mul(MS);
            let ms = |x: f64| go_int64(x).wrapping_mul(MS);
            match check.bounds {
                Bounds::Range { min, max } => {
                    if let Some(m) = min
                        && val < ms(m)
                    {
                        return Err(format!("{}ms < {m}ms", val / MS));
                    }
                    if let Some(m) = max
                        && val > ms(m)
                    {
                        return Err(format!("{}ms > {m}ms", val / MS));
                    }
                    Ok(())
                }
                Bounds::Threshold(t) if val > ms(t) => Err(format!("{}ms > {t}ms", val / MS)),
                Bounds::Threshold(_) => Ok(()),
            }
        }
        CheckKind::SuccessRate | CheckKind::Query => match check.bounds {
            Bounds::Range { min, max } => {
                if let Some(m) = min
                    && value < m
                {
                    return Err(format!("{value} < {m}"));
                }
                if let Some(m) = max
                    && value > m
                {
                    return Err(format!("{value} > {m}"));
                }
                Ok(())
            }
            Bounds::Threshold(t) if check.kind == CheckKind::SuccessRate && t > value => {
                Err(format!("{value} < {t}"))
            }
            Bounds::Threshold(t) if check.kind == CheckKind::Query && value > t => {
                Err(format!("{value} > {t}"))
            }
            Bounds::Threshold(_) => Ok(()),
        },
    }
}

/// The Canary controller for one release.
#[derive(Debug, Clone)]
pub struct FlaggerCanary {
    plan: CanaryPlan,
    phase: CanaryPhase,
    canary_weight: u32,
    failed_checks: u32,
    iterations: u32,
    now: Duration,
    next_tick: Option<Duration>,
    /// index of the check being measured this tick, and its id
    pending: Option<(usize, MeasureId)>,
    next_id: MeasureId,
    outcome: Option<Outcome>,
    last_failure: String,
    /// one per check (an `AlwaysFails` check has an empty query it never asks)
    queries: Vec<QuerySpec>,
}

impl FlaggerCanary {
    /// A controller for this plan.
    pub fn new(plan: CanaryPlan) -> Self {
        let queries = plan
            .checks
            .iter()
            .map(|c| QuerySpec {
                name: c.name.clone(),
                promql: c.query.clone(),
                range: None,
            })
            .collect();
        Self {
            queries,
            plan,
            phase: CanaryPhase::Initialized,
            canary_weight: 0,
            failed_checks: 0,
            iterations: 0,
            now: Duration::ZERO,
            next_tick: None,
            pending: None,
            next_id: 1,
            outcome: None,
            last_failure: String::new(),
        }
    }

    /// The plan it runs.
    pub fn plan(&self) -> &CanaryPlan {
        &self.plan
    }
    /// `status.failedChecks`
    pub fn failed_checks(&self) -> u32 {
        self.failed_checks
    }
    /// `status.canaryWeight`
    pub fn canary_weight(&self) -> u32 {
        self.canary_weight
    }
    /// phase
    pub fn phase(&self) -> CanaryPhase {
        self.phase
    }

    fn max_weight(&self) -> u32 {
        match &self.plan.strategy {
            Strategy::Canary { max_weight, .. } => *max_weight,
            Strategy::BlueGreen { .. } => 100,
        }
    }

    /// `nextStepWeight`
    fn next_step_weight(&self) -> u32 {
        let Strategy::Canary {
            step_weight,
            step_weights,
            ..
        } = &self.plan.strategy
        else {
            return 0;
        };
        if *step_weight > 0 || step_weights.is_empty() {
            return *step_weight;
        }
        let max_step = 100u32.saturating_sub(self.canary_weight);
        if max_step == 0 {
            return 1;
        }
        if self.canary_weight == 0 {
            return max_step.min(step_weights[0]);
        }
        for i in 0..step_weights.len() - 1 {
            if step_weights[i] == self.canary_weight {
                return max_step.min(step_weights[i + 1].saturating_sub(self.canary_weight));
            }
        }
        max_step
    }

    fn finish(&mut self, cmds: &mut Vec<Command>, decision: Decision, reason: String) {
        let at = self.now;
        match decision {
            Decision::Promote => {
                self.phase = CanaryPhase::Promoting;
                cmds.push(Command::Promote { at });
            }
            _ => {
                self.phase = CanaryPhase::Failed;
                self.canary_weight = 0;
                cmds.push(Command::SetWeight {
                    at,
                    canary_percent: 0,
                });
                cmds.push(Command::Abort {
                    at,
                    reason: reason.clone(),
                    scale_down_after: Duration::ZERO,
                });
            }
        }
        self.next_tick = None;
        self.outcome = Some(Outcome {
            decision,
            at,
            reason,
        });
    }

    fn tick(&mut self) -> Vec<Command> {
        let mut cmds = Vec::new();
        self.next_tick = Some(self.now + self.plan.interval);
        if self.phase != CanaryPhase::Progressing {
            return cmds;
        }
        if self.failed_checks >= self.plan.threshold {
            let reason = format!(
                "Canary failed checks threshold reached {} (last: {})",
                self.failed_checks, self.last_failure
            );
            self.finish(&mut cmds, Decision::Rollback, reason);
            return cmds;
        }
        if self.canary_weight == 0 && self.iterations == 0 {
            // first tick: pre-rollout webhooks only, no metric checks
            self.advance(&mut cmds);
            return cmds;
        }
        self.measure_from(0, &mut cmds);
        cmds
    }

    /// Ask for check `i`, or advance when all have passed.
    fn measure_from(&mut self, i: usize, cmds: &mut Vec<Command>) {
        if let Some(check) = self.plan.checks.get(i) {
            if check.kind == CheckKind::AlwaysFails {
                self.fail_check(format!(
                    "metric {}: no query, built-in name or templateRef",
                    check.name
                ));
                return;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.pending = Some((i, id));
            cmds.push(Command::Measure {
                id,
                query: Query {
                    index: i,
                    promql: check.query.clone(),
                    at: self.now,
                    range: None,
                },
            });
            return;
        }
        self.advance(cmds);
    }

    fn fail_check(&mut self, why: String) {
        self.failed_checks += 1;
        self.last_failure = why;
    }

    /// All checks passed (or the first tick): the strategy's traffic step.
    fn advance(&mut self, cmds: &mut Vec<Command>) {
        match self.plan.strategy.clone() {
            Strategy::BlueGreen { iterations } => {
                if iterations > self.iterations {
                    self.iterations += 1;
                } else if iterations == self.iterations {
                    // route all traffic to the canary, then one more passing tick
                    self.canary_weight = 100;
                    cmds.push(Command::SetWeight {
                        at: self.now,
                        canary_percent: 100,
                    });
                    self.iterations += 1;
                } else {
                    self.finish(
                        cmds,
                        Decision::Promote,
                        "Canary analysis completed successfully".into(),
                    );
                }
            }
            Strategy::Canary { .. } => {
                let step = self.next_step_weight();
                if step == 0 {
                    return;
                }
                let max = self.max_weight();
                if self.canary_weight < max {
                    self.canary_weight = (self.canary_weight + step).min(100);
                    cmds.push(Command::SetWeight {
                        at: self.now,
                        canary_percent: self.canary_weight,
                    });
                } else {
                    self.finish(
                        cmds,
                        Decision::Promote,
                        "Canary analysis completed successfully".into(),
                    );
                }
            }
        }
    }
}

impl Controller for FlaggerCanary {
    fn start(&mut self, now: Duration) -> Vec<Command> {
        self.now = now;
        // checkCanaryStatus: new revision detected, scale up, Progressing
        self.phase = CanaryPhase::Progressing;
        self.next_tick = Some(now + self.plan.interval);
        Vec::new()
    }

    fn wake(&mut self, now: Duration) -> Vec<Command> {
        if self.outcome.is_some() || self.pending.is_some() {
            return Vec::new();
        }
        self.now = self.now.max(now);
        self.tick()
    }

    fn measured(&mut self, id: MeasureId, result: QueryResult) -> Vec<Command> {
        let mut cmds = Vec::new();
        let Some((i, want)) = self.pending else {
            return cmds;
        };
        if want != id {
            return cmds;
        }
        self.pending = None;
        let check = self.plan.checks[i].clone();
        match flagger_value(&result).and_then(|v| check_passes(&check, v)) {
            Ok(()) => self.measure_from(i + 1, &mut cmds),
            Err(why) => self.fail_check(format!("metric {}: {why}", check.name)),
        }
        cmds
    }

    fn judged(&mut self, _id: MeasureId, _score: Result<f64, String>) -> Vec<Command> {
        Vec::new()
    }

    fn next_wake(&self) -> Option<Duration> {
        if self.outcome.is_some() || self.pending.is_some() {
            None
        } else {
            self.next_tick
        }
    }

    fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    fn queries(&self) -> &[QuerySpec] {
        &self.queries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, bounds: Bounds) -> Check {
        Check {
            name: "c".into(),
            kind,
            query: "q".into(),
            bounds,
        }
    }

    #[test]
    fn duration_checks_truncate_like_go() {
        let max500 = check(
            CheckKind::Duration,
            Bounds::Range {
                min: None,
                max: Some(500.0),
            },
        );
        assert!(check_passes(&max500, 500.99).is_ok());
        assert!(check_passes(&max500, 501.0).is_err());
        // int64(+Inf) on amd64 is i64::MIN; times time.Millisecond wraps to 0: passes
        assert!(check_passes(&max500, f64::INFINITY).is_ok());
        // deprecated threshold: fails above it (0 when absent: any latency fails)
        assert!(check_passes(&check(CheckKind::Duration, Bounds::Threshold(0.0)), 1.0).is_err());
    }

    #[test]
    fn value_checks() {
        let sr = check(CheckKind::SuccessRate, Bounds::Threshold(99.0));
        assert!(check_passes(&sr, 98.0).is_err());
        assert!(check_passes(&sr, 99.0).is_ok());
        let q = check(CheckKind::Query, Bounds::Threshold(5.0));
        assert!(check_passes(&q, 6.0).is_err());
        assert!(check_passes(&q, 5.0).is_ok());
        let r = check(
            CheckKind::Query,
            Bounds::Range {
                min: Some(10.0),
                max: Some(1000.0),
            },
        );
        assert!(check_passes(&r, 9.0).is_err());
        assert!(check_passes(&r, 1001.0).is_err());
        assert!(check_passes(&r, 10.0).is_ok());
    }

    #[test]
    fn flagger_client_values() {
        assert_eq!(flagger_value(&QueryResult::Vector(vec![1.0, 2.0])), Ok(2.0));
        assert!(flagger_value(&QueryResult::Vector(vec![])).is_err());
        assert!(flagger_value(&QueryResult::Vector(vec![1.0, f64::NAN])).is_err());
        assert!(flagger_value(&QueryResult::Scalar(1.0)).is_err());
        assert!(flagger_value(&QueryResult::Matrix(vec![vec![1.0]])).is_err());
    }
}
