//! A canary Rollout's steps as Argo's rollout controller runs them
//! (`rollout/canary.go` `rolloutCanary`, `completedCurrentCanaryStep`,
//! `reconcileCanaryPause`; `rollout/pause.go` `CompletedCanaryPauseStep`;
//! `rollout/analysis.go` `reconcileAnalysisRuns`,
//! `reconcileStepBasedAnalysisRun`, `reconcileBackgroundAnalysisRun`;
//! `utils/replicaset/canary.go` `BeforeStartingStep`):
//!
//! - `setWeight` without `trafficRouting` completes as soon as it is
//!   applied; with it, the canary (and with `dynamicStableScale` the
//!   stable) ReplicaSet is first sized for the step
//!   ([`Command::ScaleForStep`], counts from [`crate::argo::scale`]) and the
//!   weight changes once the canary has that many available pods
//!   (`rollout/trafficrouting.go` `reconcileTrafficRouting`: the previous
//!   weight stays until `AtDesiredReplicaCountsForCanary`); the driver
//!   says so with [`Controller::canary_scaled`];
//! - `setCanaryScale` (with `trafficRouting`; Argo ignores it without)
//!   completes once the canary has as many available pods as it asks for
//!   (`completedCurrentCanaryStep`: `AtDesiredReplicaCountsForCanary`): the
//!   driver says so with [`Controller::canary_scaled`]; the count is
//!   [`crate::argo::scale`]'s;
//! - `pause` with a duration completes once the duration has passed since
//!   the step began;
//! - an `analysis` step creates an AnalysisRun and blocks until it is
//!   Successful;
//! - the background analysis is created once the current step index reaches
//!   `startingStep` and runs beside the steps;
//! - an AnalysisRun that is Failed or Error aborts (weight 0, canary scaled
//!   down after `abortScaleDownDelaySeconds`); Inconclusive pauses the
//!   rollout for a person (the simulation ends there: [`Decision::Paused`]);
//! - after the last step the background run is terminated (its unfinished
//!   metrics count as Successful) and the canary is promoted.

use std::time::Duration;

use crate::argo::run::{AnalysisRun, Phase, Task};
use crate::argo::spec::{RolloutPlan, Step};
use crate::control::{Command, Controller, Decision, MeasureId, Outcome, QueryResult, QuerySpec};

/// The Rollout controller for one release.
#[derive(Debug, Clone)]
pub struct ArgoRollout {
    plan: RolloutPlan,
    step: usize,
    step_started: Option<Duration>,
    step_run: Option<AnalysisRun>,
    background: Option<AnalysisRun>,
    background_created: bool,
    /// The current `setCanaryScale` step's command was sent.
    scale_sent: bool,
    /// Waiting for the canary's pods to reach the scaled count.
    scaling: bool,
    next_id: MeasureId,
    now: Duration,
    outcome: Option<Outcome>,
}

impl ArgoRollout {
    /// A controller for this plan.
    pub fn new(plan: RolloutPlan) -> Self {
        Self {
            plan,
            step: 0,
            step_started: None,
            step_run: None,
            background: None,
            background_created: false,
            scale_sent: false,
            scaling: false,
            next_id: 1,
            now: Duration::ZERO,
            outcome: None,
        }
    }

    /// The plan it runs.
    pub fn plan(&self) -> &RolloutPlan {
        &self.plan
    }

    /// Whether a `setCanaryScale` or a traffic-routed `setWeight` waits for the canary's pods
    /// ([`Controller::canary_scaled`]).
    pub fn scaling(&self) -> bool {
        self.scaling
    }

    /// Index of the current step.
    pub fn current_step(&self) -> usize {
        self.step
    }

    /// The background run, once created.
    pub fn background_run(&self) -> Option<&AnalysisRun> {
        self.background.as_ref()
    }

    /// The current step's run.
    pub fn step_run(&self) -> Option<&AnalysisRun> {
        self.step_run.as_ref()
    }

    fn waiting(&self) -> bool {
        self.background.as_ref().is_some_and(|r| r.waiting())
            || self.step_run.as_ref().is_some_and(|r| r.waiting())
    }

    fn finish(&mut self, cmds: &mut Vec<Command>, decision: Decision, reason: String) {
        let at = self.now;
        match decision {
            Decision::Promote => cmds.push(Command::Promote { at }),
            Decision::Rollback => {
                cmds.push(Command::SetWeight {
                    at,
                    canary_percent: 0,
                });
                cmds.push(Command::Abort {
                    at,
                    reason: reason.clone(),
                    scale_down_after: self.plan.abort_scale_down_delay,
                });
            }
            Decision::Paused => cmds.push(Command::Pause {
                at,
                reason: reason.clone(),
            }),
        }
        self.outcome = Some(Outcome {
            decision,
            at,
            reason,
        });
    }

    /// One reconcile at `self.now`.
    fn reconcile(&mut self) -> Vec<Command> {
        let mut cmds = Vec::new();
        let now = self.now;
        loop {
            if self.outcome.is_some() {
                return cmds;
            }
            let total = self.plan.steps.len();
            // reconcileBackgroundAnalysisRun: not before startingStep, not once fully promoted
            if let Some((spec, starting)) = &self.plan.background
                && !self.background_created
                && self.step < total
                && self.step >= *starting
            {
                self.background = Some(AnalysisRun::new(spec, now));
                self.background_created = true;
            }
            // reconcileStepBasedAnalysisRun
            if let Some(Step::Analysis(spec)) = self.plan.steps.get(self.step)
                && self.step_run.is_none()
            {
                self.step_run = Some(AnalysisRun::new(spec, now));
            }
            // the analysis controller reconciles each run
            for run in [self.background.as_mut(), self.step_run.as_mut()]
                .into_iter()
                .flatten()
            {
                for (id, task) in run.tasks(now, &mut self.next_id) {
                    cmds.push(match task {
                        Task::Query(query) => Command::Measure { id, query },
                        Task::Judge(request) => Command::Judge {
                            id,
                            at: now,
                            request,
                        },
                    });
                }
            }
            if self.waiting() {
                return cmds;
            }
            // the runs' phases, as the Rollout sees them
            let mut verdict = None;
            for (label, run) in [
                ("Background", &self.background),
                ("Step-based", &self.step_run),
            ] {
                let Some(run) = run else { continue };
                let decision = match run.phase() {
                    Phase::Failed | Phase::Error => Decision::Rollback,
                    Phase::Inconclusive => Decision::Paused,
                    _ => continue,
                };
                let mut reason = format!("{label} analysis phase {:?}", run.phase());
                if !run.message().is_empty() {
                    reason += ": ";
                    reason += run.message();
                }
                verdict = Some((decision, reason));
                break;
            }
            if let Some((decision, reason)) = verdict {
                self.finish(&mut cmds, decision, reason);
                return cmds;
            }
            if self.step >= total {
                if let Some(bg) = &mut self.background {
                    bg.terminate(now);
                }
                self.finish(&mut cmds, Decision::Promote, "all steps completed".into());
                return cmds;
            }
            let done = match &self.plan.steps[self.step] {
                Step::SetWeight(w) => {
                    if self.plan.traffic_routing && !self.scale_sent {
                        // rollout/trafficrouting.go: the weight waits for
                        // AtDesiredReplicaCountsForCanary
                        cmds.push(Command::ScaleForStep {
                            at: now,
                            step: self.step,
                        });
                        self.scale_sent = true;
                        self.scaling = true;
                        false
                    } else if self.scaling {
                        false
                    } else {
                        cmds.push(Command::SetWeight {
                            at: now,
                            canary_percent: *w,
                        });
                        true
                    }
                }
                Step::SetCanaryScale {
                    weight,
                    replicas,
                    match_traffic_weight,
                } => {
                    if !self.plan.traffic_routing {
                        // UseSetCanaryScale: ignored without traffic routing
                        true
                    } else if !self.scale_sent {
                        cmds.push(Command::SetCanaryScale {
                            at: now,
                            step: self.step,
                            weight: *weight,
                            replicas: *replicas,
                            match_traffic_weight: *match_traffic_weight,
                        });
                        self.scale_sent = true;
                        self.scaling = true;
                        false
                    } else {
                        !self.scaling
                    }
                }
                Step::Pause(d) => {
                    let start = *self.step_started.get_or_insert(now);
                    now >= start + *d
                }
                Step::Analysis(_) => self
                    .step_run
                    .as_ref()
                    .is_some_and(|r| r.phase() == Phase::Successful),
            };
            if !done {
                return cmds;
            }
            self.step += 1;
            self.step_started = None;
            self.step_run = None;
            self.scale_sent = false;
        }
    }
}

impl Controller for ArgoRollout {
    fn start(&mut self, now: Duration) -> Vec<Command> {
        self.now = now;
        self.reconcile()
    }

    fn wake(&mut self, now: Duration) -> Vec<Command> {
        self.now = self.now.max(now);
        self.reconcile()
    }

    fn measured(&mut self, id: MeasureId, result: QueryResult) -> Vec<Command> {
        for run in [self.background.as_mut(), self.step_run.as_mut()]
            .into_iter()
            .flatten()
        {
            if run.measured(id, &result) {
                break;
            }
        }
        if self.waiting() {
            Vec::new()
        } else {
            self.reconcile()
        }
    }

    fn judged(&mut self, id: MeasureId, score: Result<f64, String>) -> Vec<Command> {
        for run in [self.background.as_mut(), self.step_run.as_mut()]
            .into_iter()
            .flatten()
        {
            if run.judged(id, &score) {
                break;
            }
        }
        if self.waiting() {
            Vec::new()
        } else {
            self.reconcile()
        }
    }

    fn canary_scaled(&mut self, now: Duration) -> Vec<Command> {
        if !self.scaling || self.outcome.is_some() {
            return Vec::new();
        }
        self.scaling = false;
        self.now = self.now.max(now);
        if self.waiting() {
            Vec::new()
        } else {
            self.reconcile()
        }
    }

    fn next_wake(&self) -> Option<Duration> {
        if self.outcome.is_some() || self.waiting() {
            return None;
        }
        let mut t: Option<Duration> = None;
        let mut consider = |x: Option<Duration>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        consider(self.background.as_ref().and_then(|r| r.next_wake()));
        consider(self.step_run.as_ref().and_then(|r| r.next_wake()));
        if let (Some(Step::Pause(d)), Some(s)) = (self.plan.steps.get(self.step), self.step_started)
        {
            consider(Some(s + *d));
        }
        t.map(|t| t.max(self.now))
    }

    fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    fn queries(&self) -> &[QuerySpec] {
        &self.plan.queries
    }
}
