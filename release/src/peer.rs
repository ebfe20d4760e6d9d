//! Argo Rollouts' and Flagger's rules as a [`Controller`]: the release's
//! build and deploy as the Kayenta pipeline does them ([`crate::deploy`]),
//! then the peer's own state machine from the `peers` crate
//! ([`peers::ArgoRollout`], [`peers::FlaggerCanary`]), its commands
//! translated into this crate's:
//!
//! | peer | release |
//! |---|---|
//! | `SetWeight(w)` | [`Command::SetWeights`]: canary `w`, production `100 - w` (no baseline: Argo has none unless a user adds one, Flagger's primary is production); with `dynamicStableScale`, production's surplus pods stopped once the traffic left them, and its missing ones started before the weight that brings traffic back (the abort's weight 0 first starts production's pods back to its replicas) |
//! | `SetCanaryScale`, `ScaleForStep` (Argo with `trafficRouting`) | [`Command::StartPods`] or [`Command::StopPods`] of the canary up or down to Argo's count for the step ([`peers::argo::RolloutPlan::replica_counts`] of the scenario's replicas: `setCanaryScale.replicas`, or `ceil(weight × replicas)` raised to `minPodsPerReplicaSet`); with `dynamicStableScale`, production up to its count too; traffic does not change; the machine is told [`peers::Controller::canary_scaled`] once that many canary pods are ready |
//! | `Measure` | [`Command::Measure`] with its range, answered by [`Event::Measured`] |
//! | `Judge` (Argo's `kayenta` provider) | [`Command::Judge`] of the window, answered by [`Event::Judged`] |
//! | `Promote` | [`Command::Promote`] (a rolling update), then [`Command::Cleanup`] |
//! | `Abort` | [`Command::RollBack`] |
//! | `Pause` | [`Command::Done`] with [`ReleaseEnd::Paused`]: a person must decide |
//!
//! A canary that does not reach its scaled count within Argo's default
//! `progressDeadlineSeconds` (600 s) leaves the Rollout Degraded, which
//! Argo does not abort (`progressDeadlineAbort: false`): the release ends
//! [`ReleaseEnd::Paused`], for a person.
//!
//! An Argo Rollout with `trafficRouting` deploys step 0's canary count (at
//! least one pod: the drivers need a canary to exist before the analysis,
//! where Argo would leave an empty ReplicaSet at weight 0); without it, the
//! scenario's canary pods (Argo's basic canary,
//! `CalculateReplicaCountsForBasicCanary`, is not modelled).
//!
//! The peer's machine starts when every canary pod is ready (Argo: the new
//! ReplicaSet is available and step 0 begins; Flagger: the tick that found
//! the new revision, whose first analysis tick is one `interval` later).
//! Peer times are release times ([`Millis`] since the commit), so the
//! outcome's `decided_at` is the peer's decision time and `traffic_at` the
//! first `SetWeight` above 0.
//!
//! Not for: reading the peers' files or their rules (the `peers` crate's),
//! or carrying out commands (a driver's).

use std::time::Duration;

use judge::analysis::Window;
use peers::control::{Command as PeerCommand, Decision, QueryResult};

use crate::deploy::{BuildDeploy, DeploySpec, Ending, Out, Progress, Times};
use crate::{
    Command, Controller, Event, JudgeRequest, MeasureRequest, Measurement, Millis, OperatorInput,
    Query, RangeRequest, ReleaseEnd, RollingUpdate, Split, Track,
};

/// A peer's resolved plan: what its files describe, once per study.
#[derive(Debug, Clone)]
pub enum PeerPlan {
    /// An Argo Rollouts Rollout and its templates.
    Argo(peers::argo::RolloutPlan),
    /// A Flagger Canary and its templates.
    Flagger(peers::flagger::CanaryPlan),
}

impl PeerPlan {
    /// The plan of `bundle`'s files (one peer's), with Argo's
    /// `podTemplateHashValue` arguments resolved to the hashes the default
    /// `[telemetry]` gives production's and the canary's pods (the
    /// simulator's `rollouts_pod_template_hash` labels); see
    /// [`PeerPlan::with_hashes`] for a scenario that sets its own.
    pub fn of(bundle: &peers::Bundle) -> Result<Self, peers::PeersError> {
        Self::with_hashes(bundle, &default_hashes())
    }

    /// The plan of `bundle`'s files with Argo's `podTemplateHashValue`
    /// arguments resolved to `hashes` (the `rollouts_pod_template_hash`
    /// label values the stable and canary pods' series carry).
    pub fn with_hashes(
        bundle: &peers::Bundle,
        hashes: &peers::argo::Hashes,
    ) -> Result<Self, peers::PeersError> {
        Ok(match bundle.peer()? {
            peers::Peer::Argo => PeerPlan::Argo(bundle.argo.plan(hashes)?),
            peers::Peer::Flagger => PeerPlan::Flagger(bundle.flagger.plan()?),
        })
    }

    /// A fresh state machine running this plan.
    pub fn machine(&self) -> Box<dyn peers::Controller + Send> {
        match self {
            PeerPlan::Argo(p) => Box::new(peers::ArgoRollout::new(p.clone())),
            PeerPlan::Flagger(p) => Box::new(peers::FlaggerCanary::new(p.clone())),
        }
    }

    /// `Argo` or `Flagger`, for messages.
    pub fn peer_name(&self) -> &'static str {
        match self {
            PeerPlan::Argo(_) => "Argo Rollouts",
            PeerPlan::Flagger(_) => "Flagger",
        }
    }
}

/// The `rollouts_pod_template_hash` values of the default `[telemetry]`:
/// Argo's `Stable` is production's, `Latest` the canary's.
pub fn default_hashes() -> peers::argo::Hashes {
    use scenarios::telemetry::{Telemetry, TelemetryTrack};
    let t = Telemetry::default();
    peers::argo::Hashes {
        stable: t.track(TelemetryTrack::Production).pod_template_hash,
        latest: t.track(TelemetryTrack::Canary).pod_template_hash,
    }
}

/// A peer release's settings.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// The build and deploy (no baseline pods).
    pub deploy: DeploySpec,
    /// How production is replaced on promotion.
    pub rolling_update: RollingUpdate,
    /// The peer's plan.
    pub plan: PeerPlan,
    queries: Vec<Query>,
}

impl PeerSpec {
    /// The settings of one release; the deploy's baseline pods are
    /// dropped (a peer's analysis has no baseline).
    pub fn new(mut deploy: DeploySpec, rolling_update: RollingUpdate, plan: PeerPlan) -> Self {
        deploy.baseline_pods = 0;
        if let PeerPlan::Argo(p) = &plan
            && p.traffic_routing
        {
            deploy.canary_pods = p.canary_replicas(0, rolling_update.replicas).max(1);
        }
        let queries = plan
            .machine()
            .queries()
            .iter()
            .map(|q| Query {
                name: q.name.clone(),
                promql: q.promql.clone(),
            })
            .collect();
        PeerSpec {
            deploy,
            rolling_update,
            plan,
            queries,
        }
    }

    /// The Argo plan whose pod counts follow Argo's rules (one with
    /// `trafficRouting`).
    fn routed_argo(&self) -> Option<&peers::argo::RolloutPlan> {
        match &self.plan {
            PeerPlan::Argo(p) if p.traffic_routing => Some(p),
            _ => None,
        }
    }

    /// Whether the peer's rules size the canary (an Argo Rollout with
    /// `trafficRouting`): its deploy starts step 0's count, not the
    /// scenario's `canary_replicas`.
    pub fn sizes_canary(&self) -> bool {
        self.routed_argo().is_some()
    }

    /// Argo's canary and stable counts at step `step` with the canary's
    /// traffic share `canary_weight` in force.
    pub fn replica_counts(
        &self,
        step: usize,
        canary_weight: u32,
    ) -> Option<peers::argo::scale::ReplicaCounts> {
        self.routed_argo().map(|p| {
            p.replica_counts(
                step,
                self.rolling_update.replicas,
                Some(100u32.saturating_sub(canary_weight)),
            )
        })
    }

    /// The most canary pods the release may run at once: the deploy's, or
    /// more if a step asks for more (drivers reserve that many slots up
    /// front).
    pub fn canary_slots(&self) -> u32 {
        let most = self
            .routed_argo()
            .map_or(0, |p| p.max_canary_replicas(self.rolling_update.replicas));
        self.deploy.canary_pods.max(most)
    }

    /// Every canary pod the release may start, the deploy's and each
    /// step's scale-up in step order (a driver that does not restart a
    /// stopped pod reserves that many slots).
    pub fn canary_starts(&self) -> u32 {
        let Some(p) = self.routed_argo() else {
            return self.deploy.canary_pods;
        };
        let (mut now, mut started) = (self.deploy.canary_pods, self.deploy.canary_pods);
        for (i, step) in p.steps.iter().enumerate() {
            if matches!(
                step,
                peers::argo::Step::SetCanaryScale { .. } | peers::argo::Step::SetWeight(_)
            ) {
                let want = p.canary_replicas(i, self.rolling_update.replicas);
                started += want.saturating_sub(now);
                now = want;
            }
        }
        started
    }

    /// Every production pod the release may start: Argo's stable with
    /// `dynamicStableScale` growing back as the steps' weights go down,
    /// plus an abort bringing it back to all its replicas from its
    /// smallest (0 without `dynamicStableScale`: production is never
    /// scaled). A driver that does not restart a stopped pod reserves that
    /// many production slots beyond the replicas.
    pub fn production_starts(&self) -> u32 {
        let Some(p) = self.routed_argo() else {
            return 0;
        };
        let replicas = self.rolling_update.replicas;
        let (mut stable, mut least, mut started, mut weight) = (replicas, replicas, 0, 0);
        let stable_at = |step: usize, weight: u32| {
            self.replica_counts(step, weight)
                .map_or(replicas, |c| c.stable)
        };
        let mut go = |want: u32| {
            started += want.saturating_sub(stable);
            stable = want;
            least = least.min(want);
        };
        for (i, step) in p.steps.iter().enumerate() {
            match step {
                peers::argo::Step::SetCanaryScale { .. } => go(stable_at(i, weight)),
                peers::argo::Step::SetWeight(w) => {
                    // sized for the step at the old weight, then the weight
                    go(stable_at(i, weight));
                    weight = (*w).min(100);
                    go(stable_at(i, weight));
                }
                _ => {}
            }
        }
        started + replicas.saturating_sub(least)
    }

    /// The simulator's release of `scenario` (its build, deploy and rolling
    /// update) analysed by `plan`.
    pub fn from_scenario(scenario: &scenarios::Scenario, plan: PeerPlan) -> Self {
        let pl = &scenario.file.pipeline;
        Self::new(
            DeploySpec::from_scenario(scenario, false),
            RollingUpdate {
                replicas: scenario.file.service.replicas,
                max_surge: pl.max_surge,
                max_unavailable: pl.max_unavailable,
            },
            plan,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preparing,
    Analysing,
    /// Decided: promotion, rollback, cleanup and the end are
    /// [`Ending`]'s.
    Closing,
}

/// Argo's default `progressDeadlineSeconds`: how long a `setCanaryScale`
/// may wait for its pods before the Rollout is Degraded.
const PROGRESS_DEADLINE: Millis = 600_000;

/// How many wakes in a row at one time that change nothing before the
/// release is stopped as stuck (a peer machine that keeps asking for the
/// same time without progress is a bug, not a decision).
const IDLE_WAKES: u32 = 1000;

/// A release analysed by Argo's or Flagger's rules; see the module docs.
pub struct PeerRelease<'a> {
    spec: &'a PeerSpec,
    machine: Box<dyn peers::Controller + Send>,
    phase: Phase,
    prepare: BuildDeploy,
    ending: Ending,
    out: Out,
    /// When the analysis began (every pod ready).
    analysis_at: Option<Millis>,
    traffic_at: Option<Millis>,
    /// The last wake asked for, and how many wakes at it changed nothing.
    wake_asked: Option<Millis>,
    idle_wakes: u32,
    /// Argo's Kayenta judgments outstanding: (window index, the peer's id).
    judging: Vec<(usize, u64)>,
    windows: usize,
    /// Measurements outstanding (the peer's ids).
    measuring: Vec<u64>,
    /// Canary pods wanted (started and not stopped) and ready, once the
    /// analysis began.
    canary_wanted: u32,
    canary_ready: u32,
    /// A `setCanaryScale` waits for its pods until this time.
    scaling_until: Option<Millis>,
    /// Argo: the step the pods were last sized for, the canary's weight in
    /// force, and production's pods wanted (`dynamicStableScale`).
    argo_step: usize,
    canary_weight: u32,
    stable_wanted: u32,
}

impl std::fmt::Debug for PeerRelease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerRelease")
            .field("peer", &self.spec.plan.peer_name())
            .field("phase", &self.phase)
            .field("traffic_at", &self.traffic_at)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> Millis {
    d.as_millis().try_into().unwrap_or(Millis::MAX)
}

fn duration(t: Millis) -> Duration {
    Duration::from_millis(t)
}

fn peer_result(m: Measurement) -> QueryResult {
    match m {
        Measurement::Scalar(x) => QueryResult::Scalar(x),
        Measurement::Vector(v) => QueryResult::Vector(v),
        Measurement::Matrix(m) => QueryResult::Matrix(m),
        Measurement::Error(e) => QueryResult::Failed(e),
    }
}

impl<'a> PeerRelease<'a> {
    /// A controller for one release; with `keep_timeline` its
    /// [`crate::Outcome::timeline`] lists the stages (build, deploy, analysis,
    /// promote or rollback).
    pub fn new(spec: &'a PeerSpec, keep_timeline: bool) -> Self {
        PeerRelease {
            spec,
            machine: spec.plan.machine(),
            phase: Phase::Preparing,
            prepare: BuildDeploy::new(spec.deploy.clone()),
            ending: Ending::new(spec.rolling_update),
            out: Out::new(keep_timeline),
            analysis_at: None,
            traffic_at: None,
            wake_asked: None,
            idle_wakes: 0,
            judging: Vec::new(),
            windows: 0,
            measuring: Vec::new(),
            canary_wanted: spec.deploy.canary_pods,
            canary_ready: 0,
            scaling_until: None,
            argo_step: 0,
            canary_weight: 0,
            stable_wanted: spec.rolling_update.replicas,
        }
    }

    fn times(&self) -> Times {
        Times {
            deploy_started: self.prepare.deploy_started,
            traffic_at: self.traffic_at,
        }
    }

    /// Decided: the shared end carries it out (promote, roll back or end:
    /// a pause leaves the canary where it is, waiting for a person).
    fn conclude(&mut self, now: Millis, end: ReleaseEnd, reason: String) {
        self.phase = Phase::Closing;
        let reason = format!("{}: {reason}", self.spec.plan.peer_name());
        let times = self.times();
        self.ending
            .conclude(now, (end, reason, None), times, &mut self.out);
    }

    fn prepared(&mut self, now: Millis, progress: Progress) {
        match progress {
            Progress::Pending => {}
            Progress::Ready => {
                let started = self.prepare.deploy_started.unwrap_or(now);
                self.out.stage("deploy", started, now);
                self.phase = Phase::Analysing;
                self.analysis_at = Some(now);
                self.canary_ready = self.canary_wanted;
                let commands = self.machine.start(duration(now));
                self.peer_said(now, commands);
            }
            Progress::Failed { end, reason } => self.conclude(now, end, reason),
        }
    }

    /// Carry out what the peer's machine said, then ask to be woken when
    /// it wants to be.
    fn peer_said(&mut self, now: Millis, mut commands: Vec<PeerCommand>) {
        loop {
            for c in commands {
                if self.phase != Phase::Analysing {
                    break;
                }
                self.translate(now, c);
            }
            if self.phase != Phase::Analysing {
                return;
            }
            if self.scaling_until.is_some() && self.canary_ready >= self.canary_wanted {
                self.scaling_until = None;
                commands = self.machine.canary_scaled(duration(now));
                continue;
            }
            break;
        }
        if let Some(outcome) = self.machine.outcome() {
            // a decision without its command (not expected of either peer)
            let (end, reason) = match outcome.decision {
                Decision::Promote => (ReleaseEnd::Promote, outcome.reason.clone()),
                Decision::Rollback => (ReleaseEnd::Rollback, outcome.reason.clone()),
                Decision::Paused => (ReleaseEnd::Paused, outcome.reason.clone()),
            };
            self.analysis_decided(now, end, reason);
            return;
        }
        match self.machine.next_wake() {
            Some(t) => {
                let t = millis(t).max(now);
                if self.wake_asked != Some(t) {
                    self.wake_asked = Some(t);
                    self.out.push(Command::WakeAt(t));
                }
            }
            // the scaled canary's pods bring the next commands, or the deadline
            None if self.scaling_until.is_some() => {}
            None if self.judging.is_empty() && self.measuring.is_empty() => {
                self.analysis_decided(
                    now,
                    ReleaseEnd::Error,
                    format!(
                        "{}'s analysis stopped without a decision",
                        self.spec.plan.peer_name()
                    ),
                );
            }
            // an answer is outstanding: it brings the next commands
            None => {}
        }
    }

    fn translate(&mut self, now: Millis, c: PeerCommand) {
        match c {
            PeerCommand::SetWeight { canary_percent, .. } => {
                let w = f64::from(canary_percent.min(100));
                if self.traffic_at.is_none() {
                    if canary_percent == 0 {
                        return;
                    }
                    self.traffic_at = Some(now);
                }
                let weight = canary_percent.min(100);
                // dynamicStableScale: the stable grows before traffic comes
                // back to it and shrinks once traffic left it
                // (rollout/trafficrouting.go: the weight waits for
                // `checkReplicasAvailable(stableRS, 100 - weight)`)
                let stable = self
                    .spec
                    .replica_counts(self.argo_step, weight)
                    .map(|c| c.stable);
                if let Some(stable) = stable.filter(|&n| n > self.stable_wanted) {
                    self.scale_stable(stable);
                }
                self.out.push(Command::SetWeights(Split {
                    canary: w,
                    baseline: 0.0,
                    production: 100.0 - w,
                }));
                self.canary_weight = weight;
                if let Some(stable) = stable {
                    self.scale_stable(stable);
                }
            }
            PeerCommand::SetCanaryScale { step, .. } | PeerCommand::ScaleForStep { step, .. } => {
                self.argo_step = step;
                match self.spec.replica_counts(step, self.canary_weight) {
                    Some(counts) => {
                        self.scale_stable(counts.stable);
                        self.scale_canary(now, counts.canary);
                    }
                    // not expected: the machine sizes only traffic-routed canaries
                    None => self.scale_canary(now, self.canary_wanted),
                }
            }
            PeerCommand::Measure { id, query } => {
                self.measuring.push(id);
                self.out.push(Command::Measure(MeasureRequest {
                    id,
                    query: query.index,
                    at: millis(query.at).max(now),
                    range: query.range.map(|r| RangeRequest {
                        start: millis(r.start),
                        end: millis(r.end),
                        step: millis(r.step).max(1),
                    }),
                }));
            }
            PeerCommand::Judge { id, request, .. } => {
                self.windows += 1;
                let index = self.windows;
                self.judging.push((index, id));
                let origin = self.traffic_at.unwrap_or(now);
                let offset = |t: Duration| duration(millis(t).saturating_sub(origin));
                self.out.push(Command::Judge(JudgeRequest {
                    window: Window {
                        index,
                        start: offset(request.start),
                        end: offset(request.end),
                    },
                    origin,
                }));
            }
            PeerCommand::Promote { .. } => {
                let reason = self.reason();
                self.analysis_decided(now, ReleaseEnd::Promote, reason);
            }
            PeerCommand::Abort { reason, .. } => {
                self.analysis_decided(now, ReleaseEnd::Rollback, reason);
            }
            PeerCommand::Pause { reason, .. } => {
                self.analysis_decided(now, ReleaseEnd::Paused, reason);
            }
        }
    }

    /// Start or stop canary pods to have `want`; the machine waits until
    /// that many are ready (see [`PeerRelease::peer_said`]).
    fn scale_canary(&mut self, now: Millis, want: u32) {
        let have = self.canary_wanted;
        if want > have {
            self.out.push(Command::StartPods {
                track: Track::Canary,
                count: want - have,
            });
        } else if want < have {
            self.out.push(Command::StopPods {
                track: Track::Canary,
                count: have - want,
            });
            // not-ready pods go first
            let not_ready = have - self.canary_ready.min(have);
            let stopped_ready = (have - want).saturating_sub(not_ready);
            self.canary_ready = self.canary_ready.saturating_sub(stopped_ready);
        }
        self.canary_wanted = want;
        let deadline = now.saturating_add(PROGRESS_DEADLINE);
        self.scaling_until = Some(deadline);
        if self.canary_ready < want {
            self.out.push(Command::WakeAt(deadline));
        }
    }

    /// Start or stop production pods to have `want` (Argo's stable
    /// ReplicaSet with `dynamicStableScale`; without it `want` is all of
    /// them). Nothing waits for them: `AtDesiredReplicaCountsForCanary`
    /// does not check the stable with `dynamicStableScale`.
    fn scale_stable(&mut self, want: u32) {
        let have = self.stable_wanted;
        if want > have {
            self.out.push(Command::StartPods {
                track: Track::Production,
                count: want - have,
            });
        } else if want < have {
            self.out.push(Command::StopPods {
                track: Track::Production,
                count: have - want,
            });
        }
        self.stable_wanted = want;
    }

    fn reason(&self) -> String {
        self.machine
            .outcome()
            .map_or_else(|| "promoted".into(), |o| o.reason.clone())
    }

    fn analysis_decided(&mut self, now: Millis, end: ReleaseEnd, reason: String) {
        let started = self.analysis_at.unwrap_or(now);
        self.out.stage("analysis", started, now);
        self.conclude(now, end, reason);
    }

    fn on_time(&mut self, now: Millis) {
        if self.scaling_until.is_some_and(|t| t <= now) {
            let reason = format!(
                "{} of {} canary pods available {} s after setCanaryScale: \
                 progressDeadlineSeconds (600 s) passed, the Rollout is Degraded and waits for a person",
                self.canary_ready,
                self.canary_wanted,
                crate::secs(PROGRESS_DEADLINE)
            );
            self.analysis_decided(now, ReleaseEnd::Paused, reason);
            return;
        }
        let due = self.machine.next_wake().is_some_and(|t| millis(t) <= now);
        if !due {
            return;
        }
        if self.wake_asked.is_some_and(|t| t <= now) {
            self.wake_asked = None;
        }
        let commands = self.machine.wake(duration(now));
        if commands.is_empty() && self.machine.next_wake().is_some_and(|t| millis(t) <= now) {
            self.idle_wakes += 1;
            if self.idle_wakes > IDLE_WAKES {
                let reason = format!(
                    "{}'s analysis made no progress at {} s",
                    self.spec.plan.peer_name(),
                    crate::secs(now)
                );
                self.analysis_decided(now, ReleaseEnd::Error, reason);
                return;
            }
        } else {
            self.idle_wakes = 0;
        }
        self.peer_said(now, commands);
    }

    fn on_operator(&mut self, now: Millis, input: OperatorInput) {
        match (input, self.phase) {
            (OperatorInput::Resume, _) | (_, Phase::Closing) => {}
            (OperatorInput::Promote, Phase::Analysing) => {
                self.analysis_decided(now, ReleaseEnd::Promote, "promoted by the operator".into())
            }
            (OperatorInput::Abort, Phase::Analysing) => {
                self.analysis_decided(now, ReleaseEnd::Rollback, "aborted by the operator".into())
            }
            // Before the analysis: the release stops (see BuildDeploy::abort).
            (_, Phase::Preparing) => {
                let progress = self.prepare.abort(now, &mut self.out);
                self.prepared(now, progress);
            }
        }
    }
}

impl Controller for PeerRelease<'_> {
    fn handle(&mut self, now: Millis, event: Event) {
        match event {
            Event::Start => {
                let progress = self.prepare.start(now, &mut self.out);
                self.prepared(now, progress);
            }
            Event::TimeReached => match self.phase {
                Phase::Preparing => {
                    let progress = self.prepare.time_reached(now, &mut self.out);
                    self.prepared(now, progress);
                }
                Phase::Analysing => self.on_time(now),
                _ => {}
            },
            Event::BuildFinished { ok } => {
                let progress = self.prepare.build_finished(now, ok, &mut self.out);
                self.prepared(now, progress);
            }
            Event::PodReady { track } => match self.phase {
                Phase::Preparing => {
                    let progress = self.prepare.pod_ready(track);
                    self.prepared(now, progress);
                }
                Phase::Analysing if track == Track::Canary => {
                    self.canary_ready = (self.canary_ready + 1).min(self.canary_wanted);
                    if self.scaling_until.is_some() {
                        self.peer_said(now, Vec::new());
                    }
                }
                _ => {}
            },
            Event::PodCrashed { .. } => {}
            Event::Measured { id, value } => {
                if self.phase != Phase::Analysing {
                    return;
                }
                let Some(i) = self.measuring.iter().position(|m| *m == id) else {
                    return;
                };
                self.measuring.swap_remove(i);
                let commands = self.machine.measured(id, peer_result(value));
                self.peer_said(now, commands);
            }
            Event::Judged { index, score } => {
                if self.phase != Phase::Analysing {
                    return;
                }
                let Some(i) = self.judging.iter().position(|(w, _)| *w == index) else {
                    return;
                };
                let (_, id) = self.judging.swap_remove(i);
                let commands = self.machine.judged(id, Ok(score));
                self.peer_said(now, commands);
            }
            Event::Promoted(_) | Event::RolledBack | Event::CleanedUp => {
                let times = self.times();
                self.ending.answered(now, event, times, &mut self.out);
            }
            Event::Operator(input) => self.on_operator(now, input),
        }
    }

    fn poll(&mut self) -> Option<Command> {
        self.out.commands.pop_front()
    }

    fn queries(&self) -> &[Query] {
        &self.spec.queries
    }
}

#[cfg(test)]
mod tests;
