//! A whole canary release on loopback, time-scaled (`canarylab local`):
//! production, baseline and canary goldengoose replicas as child processes
//! (see [`crate::local::goose`]: restarted when they exit, as a kubelet would), a real
//! Prometheus scraping every instance, loadgen moving traffic as the
//! scenario's splits say, and the simulator's release controller
//! ([`release::kayenta::Kayenta`], the same sans-IO state machine
//! `canarylab sim` runs) deciding: a rolling promotion of production or a
//! rollback.
//!
//! The driver owns only how the controller's [`Command`]s are carried out:
//! controller time (scenario milliseconds since the commit) is mapped onto
//! real time by the time scale; `StartPods` starts goldengoose processes
//! whose readiness (up for the scaled `readiness_s` and `/readyz` 200) is
//! answered as `PodReady`; the first `SetWeights` starts loadgen, later
//! ones move its weights; `Judge` waits one scrape step past the window's
//! end, fetches the window from Prometheus and judges it with the Kayenta
//! judge; `Measure` is an instant (or range) query to Prometheus;
//! `Promote`, `Cleanup` and `RollBack` are below. Production runs before
//! the commit, as in a cluster, and Prometheus starts once the commit's
//! pods do (its start-up is not counted against the deploy deadline).
//!
//! Every instance has a loadgen target of its own (`production-0`,
//! `baseline-0`, `canary-0`, ...). loadgen's targets are fixed when it
//! starts, so the instances that will replace production on promotion
//! (`production-new-0`, ...) get their listeners bound up front and their
//! targets reserved with weight 0; promotion starts a server on each
//! reserved listener in turn, waits until `/readyz` answers 200, and only
//! then moves that instance's share of traffic from the old to the new one.
//! The old instances keep running without traffic until every new one
//! serves, so an interrupted or failed promotion is undone by moving the
//! weights back: production ends either wholly on the current version or
//! wholly on the new one, never half-replaced.
//!
//! Every path, errors and cancellation included, stops the traffic, every
//! server and Prometheus, and removes the temporary directory; a failure
//! says which [`Step`] failed and keeps what was measured up to it.
//!
//! With an Argo Rollouts or Flagger file ([`ReleaseOptions::peer`]) the
//! peer's rules drive instead ([`release::peer::PeerRelease`], as in
//! `canarylab sim --analysis`): its weights step the traffic and each of its
//! measurements is a query to the real Prometheus. Their queries read
//! Istio's families and Kubernetes' pod labels, so every instance is
//! named as the simulator names its track's pods ([`scenarios::Telemetry`]):
//! goldengoose exposes the Istio sidecar's families for its workload
//! (`--istio`), and Prometheus adds `app`, `namespace`, `pod` and
//! `rollouts_pod_template_hash` as target labels, as a cluster's
//! Prometheus does from the pod's labels. The same file so sends the same
//! queries, selecting the same tracks, in the simulator and here.
//!
//! Not for: routing by readiness. loadgen's weights are fixed per
//! instance, so requests sent to an instance that is down (a crash, until
//! its restart) are refused and count as errors, as in the simulator.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use judge::analysis::{Analysis, Window};
use judge::{Judge, MetricSetPair};
use loadgen::{Arrival, Control, RateProfile, Target, Targets};
use release::kayenta::{Kayenta, KayentaSpec};
use release::peer::{PeerPlan, PeerRelease, PeerSpec};
use release::{
    Command, Controller, Event, Measurement, Millis, ReleaseEnd, Track as PodTrack, ms, secs,
};
use scenarios::Scenario;
use scenarios::telemetry::TelemetryTrack;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::analysis::{
    AnalysisError, AnalysisRun, JudgedInterval, check_queries, fetch_pairs, judge_window, unix_now,
};
use crate::cancel::{cancelled, is_cancelled};
use crate::local::goose::{self, Goose, GooseCommand, Supervision};
use crate::local::pods::PodWatch;
use crate::plan::{PlanError, ReleasePlan, Split, plan_release};
use crate::prom::{self, PromApi, Prometheus, ScrapeTarget};
use crate::query::ScopeVars;
use crate::ranges::{scale_config_ranges, scale_ranges};

/// Scenario seconds a crashed instance stays down before it serves again:
/// the simulator's crash loop (`sim/src/series.rs`) is down 30 s per cycle.
const CRASH_RESTART_S: f64 = 30.0;

/// How to run a release.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// Multiplies every scenario duration (0.02: a 30-minute analysis in
    /// 36 s).
    pub time_scale: f64,
    /// The `prometheus` binary; `None` looks at `$CANARYLAB_PROMETHEUS`,
    /// then `PATH`.
    pub prometheus: Option<PathBuf>,
    /// Where Prometheus's temporary directory goes; `None`: the system's.
    pub temp_root: Option<PathBuf>,
    /// Seed of the plan, the instances' randomness and loadgen's draws.
    pub seed: u64,
    /// Multiply the range selectors, subquery ranges and offsets inside
    /// the config's PromQL by the time scale (see [`crate::ranges`]);
    /// `false` sends the queries exactly as Kayenta would.
    pub scale_ranges: bool,
    /// Which step the release is in, for progress displays and tests.
    pub watch: StepWatch,
    /// How goldengoose is run (`canarylab goldengoose`, or a binary).
    pub goldengoose: GooseCommand,
    /// Multiplies the scenario's request rate (see
    /// [`ReleasePlan::with_rate_scale`]); 1 keeps it.
    pub rate_scale: f64,
    /// How a failed Prometheus query is retried before the step fails.
    pub prometheus_retry: prom::Retry,
    /// Release by an Argo Rollouts or Flagger file's rules instead of the
    /// scenario's Kayenta pipeline.
    pub peer: Option<PeerAnalysis>,
}

/// An Argo Rollouts or Flagger analysis (a `Rollout` and its
/// `AnalysisTemplate`s, or a `Canary` and its `MetricTemplate`s), read.
#[derive(Debug, Clone)]
pub struct PeerAnalysis {
    /// Its name in results (the file's stem).
    pub name: String,
    /// The documents read.
    pub bundle: peers::Bundle,
}

impl PeerAnalysis {
    /// Reads `text` (multi-document YAML; kinds told by `kind`), `file`
    /// naming it in errors, as `name` in results.
    pub fn from_yaml(name: &str, file: &str, text: &str) -> Result<Self, ReleaseError> {
        let bad = |error| ReleaseError::Peer {
            name: name.to_string(),
            error,
        };
        let bundle = peers::load(file, text).map_err(bad)?;
        bundle.peer().map_err(bad)?;
        Ok(PeerAnalysis {
            name: name.to_string(),
            bundle,
        })
    }
}

/// The step a running release is in, a [`tokio::sync::watch`] channel:
/// clones share one state, and a subscriber awaits changes instead of
/// polling.
#[derive(Debug, Clone)]
pub struct StepWatch(Arc<watch::Sender<Option<Step>>>);

impl Default for StepWatch {
    fn default() -> Self {
        StepWatch(Arc::new(watch::Sender::new(None)))
    }
}

impl StepWatch {
    /// The current step (`None` before the release starts).
    pub fn get(&self) -> Option<Step> {
        *self.0.borrow()
    }

    /// A receiver that sees every later step (`changed`, `wait_for`).
    pub fn subscribe(&self) -> watch::Receiver<Option<Step>> {
        self.0.subscribe()
    }

    /// Resolves once the release is in `step` (at once if it is now).
    /// A step left before this looks again is missed: put a timeout on it.
    pub async fn reached(&self, step: Step) {
        let mut rx = self.subscribe();
        // Err only if the sender is gone, and this holds it.
        let _ = rx.wait_for(|s| *s == Some(step)).await;
    }

    fn set(&self, step: Step) {
        self.0.send_replace(Some(step));
    }
}

impl ReleaseOptions {
    /// Defaults: system temp dir, Prometheus from `$CANARYLAB_PROMETHEUS`
    /// or `PATH`, seed 1, range selectors scaled; goldengoose run by
    /// `goldengoose`.
    pub fn new(time_scale: f64, goldengoose: GooseCommand) -> Self {
        ReleaseOptions {
            time_scale,
            prometheus: None,
            temp_root: None,
            seed: 1,
            scale_ranges: true,
            watch: StepWatch::default(),
            goldengoose,
            rate_scale: 1.0,
            prometheus_retry: prom::Retry::DEFAULT,
            peer: None,
        }
    }
}

/// A step of the local pipeline, as the timeline and failures name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Reading the scenario at the time scale and checking the queries;
    /// nothing runs yet.
    Plan,
    /// Starting goldengoose instances and waiting for them to be ready.
    Deploy,
    /// Starting Prometheus.
    Prometheus,
    /// Starting the traffic.
    Traffic,
    /// Warmup and the canary analysis.
    Analysis,
    /// The rolling replacement of production.
    Promote,
    /// Traffic back to production, canary stopped.
    Rollback,
}

impl Step {
    /// Lower-case name, as in results and messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Plan => "plan",
            Step::Deploy => "deploy",
            Step::Prometheus => "prometheus",
            Step::Traffic => "traffic",
            Step::Analysis => "analysis",
            Step::Promote => "promote",
            Step::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage on the release's timeline, unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpan {
    /// `deploy`, `warmup`, `analysis`, `promote` or `rollback`.
    pub name: String,
    /// Stage start, unix seconds.
    pub start: f64,
    /// Stage end, unix seconds.
    pub end: f64,
}

/// How far a promotion got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promotion {
    /// Production instances replaced by the new version.
    pub replaced: u32,
    /// Production instances in all.
    pub of: u32,
    /// Whether an interrupted or failed promotion was undone (production
    /// back on the current version).
    pub undone: bool,
}

/// What a release did, also when it ended early.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRecord {
    /// The plan, once the scenario was planned.
    pub plan: Option<ReleasePlan>,
    /// Unix seconds at which the release began.
    pub started_at: f64,
    /// Unix seconds at which traffic reached the canary (window offsets
    /// count from here); `None` if it never did.
    pub traffic_at: Option<f64>,
    /// Stages, in order.
    pub timeline: Vec<StageSpan>,
    /// Intervals judged (also those before a failure).
    pub intervals: Vec<JudgedInterval>,
    /// The analysis's decision, when it reached one.
    pub outcome: Option<release::AnalysisOutcome>,
    /// Every metric's series from `traffic_at` to the decision, on the
    /// query step grid (the last judged interval's when that fetch failed).
    pub series: Vec<MetricSetPair>,
    /// Unix seconds of the first point of `series`.
    pub series_start: f64,
    /// What loadgen counted.
    pub load: Option<loadgen::Report>,
    /// How far the promotion got, when one started.
    pub promotion: Option<Promotion>,
    /// Every goldengoose instance started, in the order they stopped.
    pub instances: Vec<Instance>,
    /// Prometheus queries retried after a transient failure.
    pub prometheus_retries: u64,
    /// What an Argo Rollouts or Flagger analysis measured, in the order
    /// the answers came.
    pub measurements: Vec<Measured>,
}

/// One answered [`Command::Measure`].
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The query's name (the peer's metric).
    pub query: String,
    /// The PromQL sent (range selectors scaled).
    pub promql: String,
    /// Unix seconds of the evaluation (a range query's end).
    pub at: f64,
    /// Seconds since the traffic shift, scaled back to the scenario's.
    pub scenario_s: f64,
    /// Prometheus's answer.
    pub value: Measurement,
}

/// A goldengoose instance of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `production-0`, `canary-1`, `production-new-0`, ...
    pub name: String,
    /// Its `version` label: production, baseline or canary.
    pub track: String,
    /// Its processes' PIDs: the first, then one per restart.
    pub pids: Vec<u32>,
    /// Unexpected exits (crashes), each followed by a restart.
    pub exits: u32,
}

/// How a release ended with a decision.
#[derive(Debug)]
pub struct ReleaseOutcome {
    /// The plan the release ran.
    pub plan: ReleasePlan,
    /// The canary analysis: its judged intervals and outcome.
    pub analysis: AnalysisRun,
    /// [`ReleaseEnd::Promote`] or [`ReleaseEnd::Rollback`] (also in
    /// `analysis.outcome`).
    pub decision: ReleaseEnd,
    /// What loadgen counted.
    pub load: loadgen::Report,
    /// Timeline, series, promotion (and the same plan, intervals, load).
    pub record: ReleaseRecord,
}

/// Why a release ended without a verdict, or why its pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The scenario cannot be played at this time scale.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The canary analysis failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// Prometheus failed to start or to answer.
    #[error(transparent)]
    Prometheus(#[from] Box<prom::Error>),
    /// A goldengoose instance failed to start.
    #[error(transparent)]
    Goose(#[from] goose::Error),
    /// loadgen failed.
    #[error("loadgen: {0}")]
    Load(#[from] loadgen::Error),
    /// A goldengoose instance did not pass its readiness probe in time.
    #[error("goldengoose {instance} did not become ready within {waited:?}: {why}")]
    NotReady {
        /// The instance's name.
        instance: String,
        /// How long we waited.
        waited: Duration,
        /// The last probe's failure.
        why: String,
    },
    /// The release was interrupted (Ctrl-C).
    #[error("interrupted during {step}: {detail}")]
    Interrupted {
        /// The step it was interrupted in.
        step: Step,
        /// What was judged and what was stopped.
        detail: String,
    },
    /// The promotion failed part-way and was rolled back to the current
    /// version.
    #[error(
        "promotion undone after {replaced} of {of} production instances were replaced, production serves the current version: {cause}"
    )]
    PromotionUndone {
        /// Production instances replaced before the failure.
        replaced: u32,
        /// Production instances in all.
        of: u32,
        /// The failure that stopped the promotion.
        cause: Box<ReleaseError>,
    },
    /// No listener could be reserved on 127.0.0.1.
    #[error("cannot reserve a listener on 127.0.0.1: {0}")]
    Reserve(std::io::Error),
    /// A background task (loadgen) could not be joined or never started.
    #[error("a background task failed: {0}")]
    Task(String),
    /// The Argo Rollouts or Flagger analysis cannot be planned.
    #[error("analysis {name}: {error}")]
    Peer {
        /// The analysis's name.
        name: String,
        /// Why it cannot be planned.
        #[source]
        error: peers::PeersError,
    },
    /// The scenario names its series in a way the local mode cannot
    /// reproduce.
    #[error("scenario [telemetry] {field}: {problem}")]
    Telemetry {
        /// The `[telemetry]` field at fault.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A release that stopped at `step`; `record` holds what it measured.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {error}")]
pub struct ReleaseFailure {
    /// The step that failed.
    pub step: Step,
    /// Why it failed.
    #[source]
    pub error: ReleaseError,
    /// What the release measured up to the failure.
    pub record: ReleaseRecord,
}

/// Stops loadgen when dropped, whatever happened.
struct Load {
    control: Control,
    task: Option<JoinHandle<Result<loadgen::Report, loadgen::Error>>>,
}

impl Load {
    async fn finish(mut self) -> Result<loadgen::Report, ReleaseError> {
        self.control.stop();
        let task = self
            .task
            .take()
            .ok_or_else(|| ReleaseError::Task("loadgen".into()))?;
        task.await
            .map_err(|e| ReleaseError::Task(e.to_string()))?
            .map_err(Into::into)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    Production,
    Baseline,
    Canary,
    /// The new version replacing production on promotion.
    Next,
}

impl Track {
    /// goldengoose's `version` label, which the queries select on.
    fn label(self) -> &'static str {
        match self {
            Track::Production | Track::Next => "production",
            Track::Baseline => "baseline",
            Track::Canary => "canary",
        }
    }
}

/// One goldengoose instance: its loadgen target, its listener (held until
/// the server starts) and the server.
struct Slot {
    name: String,
    track: Track,
    addr: SocketAddr,
    listener: Option<std::net::TcpListener>,
    goose: Option<Goose>,
    /// Whether it takes its track's share of traffic.
    serving: bool,
    /// Prometheus target labels beyond `track` and `slot`: the pod's
    /// labels as a cluster's Prometheus adds them.
    labels: Vec<(&'static str, String)>,
}

/// Everything a release starts, so one place stops it.
#[derive(Default)]
struct Running {
    slots: Vec<Slot>,
    prometheus: Option<Arc<Prometheus>>,
    load: Option<Load>,
    stepper: Option<JoinHandle<()>>,
    /// The instances stopped so far.
    stopped: Vec<Instance>,
}

impl Running {
    fn scrape_targets(&self) -> Vec<ScrapeTarget> {
        self.slots
            .iter()
            .filter(|s| s.goose.is_some())
            .map(|s| {
                let target = ScrapeTarget::new("goldengoose", s.addr)
                    .with_label("track", s.track.label())
                    .with_label("slot", s.name.clone());
                s.labels
                    .iter()
                    .fold(target, |t, (k, v)| t.with_label(*k, v.clone()))
            })
            .collect()
    }

    fn update_targets(&self) -> Result<(), ReleaseError> {
        if let Some(p) = &self.prometheus {
            p.set_targets(&self.scrape_targets()).map_err(Box::new)?;
        }
        Ok(())
    }

    /// Per-target weights for `split`: each track's share divided evenly
    /// among its serving instances (a baseline share without baseline
    /// instances goes to production).
    fn weights(&self, split: Split) -> Vec<(String, f64)> {
        let serving = |t: Track| {
            self.slots
                .iter()
                .filter(|s| {
                    s.serving
                        && (s.track == t || (t == Track::Production && s.track == Track::Next))
                })
                .count() as f64
        };
        let has_baseline = serving(Track::Baseline) > 0.0;
        let production = split.production + if has_baseline { 0.0 } else { split.baseline };
        self.slots
            .iter()
            .map(|s| {
                let share = match s.track {
                    Track::Production | Track::Next => production / serving(Track::Production),
                    Track::Baseline => split.baseline / serving(Track::Baseline),
                    Track::Canary => split.canary / serving(Track::Canary),
                };
                let w = if s.serving && share.is_finite() {
                    share
                } else {
                    0.0
                };
                (s.name.clone(), w)
            })
            .collect()
    }

    fn set_weights(&self, split: Split) -> Result<(), ReleaseError> {
        let Some(load) = &self.load else {
            return Ok(());
        };
        let weights = self.weights(split);
        let named: Vec<(&str, f64)> = weights.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        load.control.set_weights(&named)?;
        Ok(())
    }

    /// Stops slot `i`'s server (SIGTERM, drain) and records it.
    async fn stop_slot(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(g) = slot.goose.take() {
            let instance = Instance {
                name: slot.name.clone(),
                track: slot.track.label().to_string(),
                pids: g.pids(),
                exits: g.exits(),
            };
            g.stop().await;
            self.stopped.push(instance);
        }
    }

    /// Stops the traffic (returning loadgen's report), Prometheus and
    /// every server. Safe to call whatever was started.
    async fn teardown(&mut self) -> Option<Result<loadgen::Report, ReleaseError>> {
        if let Some(s) = self.stepper.take() {
            s.abort();
        }
        let report = match self.load.take() {
            Some(load) => Some(load.finish().await),
            None => None,
        };
        // The analysis thread has joined by now, so this is the last handle
        // and dropping it kills Prometheus and removes its directory.
        self.prometheus = None;
        for i in 0..self.slots.len() {
            self.stop_slot(i).await;
            self.slots[i].listener = None;
        }
        report
    }
}

/// Plays `scenario` at `options.time_scale`. Bad input (a config without
/// Prometheus queries, an unresolvable template, a time scale too small)
/// is reported before anything starts. `true` on `cancel` (Ctrl-C) ends
/// the run with a [`ReleaseError::Interrupted`] (or, during the analysis,
/// [`AnalysisError::Cancelled`]) after cleaning up; a channel whose sender
/// is gone never cancels. Interrupt through `cancel` rather than by
/// dropping this future, which would skip the clean-up (the processes are
/// still killed by their guards' `Drop`).
pub async fn run_release(
    scenario: &Scenario,
    options: &ReleaseOptions,
    cancel: watch::Receiver<bool>,
) -> Result<ReleaseOutcome, ReleaseFailure> {
    options.watch.set(Step::Plan);
    let mut record = ReleaseRecord {
        started_at: unix_now(),
        ..Default::default()
    };
    let fail = |step, error, record| ReleaseFailure {
        step,
        error,
        record,
    };
    let planned = plan_release(scenario, options.time_scale, options.seed)
        .and_then(|p| p.with_rate_scale(options.rate_scale));
    let plan = match planned {
        Ok(p) => p,
        Err(e) => return Err(fail(Step::Plan, e.into(), record)),
    };
    record.plan = Some(plan.clone());
    let config = if options.scale_ranges {
        scale_config_ranges(&scenario.config, options.time_scale)
    } else {
        scenario.config.clone()
    };
    let control_scope = ScopeVars::new(plan.control_scope.clone());
    let experiment_scope = ScopeVars::new("canary");
    if let Err(e) = check_queries(&config, &control_scope, &experiment_scope) {
        return Err(fail(Step::Plan, e.into(), record));
    }

    let judge = match Judge::new(&config) {
        Ok(j) => Arc::new(j),
        Err(e) => return Err(fail(Step::Plan, AnalysisError::Config(e).into(), record)),
    };
    if let Err(e) = Analysis::new(&scenario.schedule(), plan.thresholds) {
        return Err(fail(Step::Plan, AnalysisError::Schedule(e).into(), record));
    }
    let names = Names::of(scenario);
    let peer = match &options.peer {
        Some(peer) => match peer_spec(scenario, &plan, peer, &names) {
            Ok(spec) => Some(spec),
            Err(e) => return Err(fail(Step::Plan, e, record)),
        },
        None => None,
    };

    let mut running = Running::default();
    let ctx = Context {
        scenario,
        plan: &plan,
        config: &config,
        options,
        cancel: &cancel,
        control: control_scope,
        experiment: experiment_scope,
        judge,
        names,
        canary_slots: peer
            .as_ref()
            .map_or(0, PeerSpec::canary_starts)
            .max(plan.canary_replicas.max(1)),
    };
    let result = match &peer {
        Some(spec) => {
            let mut controller = PeerRelease::new(spec, true);
            drive(&ctx, &mut running, &mut record, &mut controller).await
        }
        None => {
            let spec = local_spec(scenario, &plan);
            let mut controller = Kayenta::new(&spec, true);
            drive(&ctx, &mut running, &mut record, &mut controller).await
        }
    };
    record.prometheus_retries = running.prometheus.as_ref().map_or(0, |p| p.retries());
    let load = running.teardown().await;
    record.instances = std::mem::take(&mut running.stopped);
    let load = match load {
        Some(Ok(report)) => Some(report),
        Some(Err(e)) => {
            // The release result wins over a loadgen failure at the end.
            if result.is_ok() {
                return Err(fail(Step::Traffic, e, record));
            }
            None
        }
        None => None,
    };
    record.load = load.clone();
    match result {
        Ok((decision, analysis)) => match load {
            Some(load) => Ok(ReleaseOutcome {
                plan,
                decision,
                analysis,
                load,
                record,
            }),
            // Every path to a decision starts loadgen; this guards the shape.
            None => Err(fail(
                Step::Traffic,
                ReleaseError::Task("loadgen never started".into()),
                record,
            )),
        },
        Err((step, error)) => Err(fail(step, error, record)),
    }
}

/// The simulator's Kayenta pipeline of `scenario` as the local mode runs
/// it: no build (the version to deploy exists), the plan's pods, and the
/// traffic shift as soon as every pod is ready (loadgen's weights apply at
/// once; there are no gateways to reach).
fn local_spec(scenario: &Scenario, plan: &ReleasePlan) -> KayentaSpec {
    let mut spec = KayentaSpec::from_scenario(scenario, plan.thresholds);
    spec.build_after_s = None;
    spec.shift_delay_s = 0.0;
    spec.canary_pods = plan.canary_replicas.max(1);
    spec.baseline_pods = plan.baseline_replicas;
    spec
}

/// An Argo Rollouts or Flagger release of `scenario` as the local mode
/// runs it: no build, the plan's canary pods, the scenario's telemetry
/// names (Argo's `podTemplateHashValue` resolves to the hashes the pods'
/// series carry).
fn peer_spec(
    scenario: &Scenario,
    plan: &ReleasePlan,
    peer: &PeerAnalysis,
    names: &Names,
) -> Result<PeerSpec, ReleaseError> {
    let t = &scenario.file.telemetry;
    let renamed = |what: &str, renames: &std::collections::BTreeMap<String, String>| match renames
        .iter()
        .next()
    {
        Some((from, to)) => Err(ReleaseError::Telemetry {
            field: format!("telemetry.{what}.{from}"),
            problem: format!(
                "renamed to {to:?}, but the local mode's goldengoose exposes the default names; remove the rename to run it locally"
            ),
        }),
        None => Ok(()),
    };
    renamed("metrics", &t.metrics)?;
    renamed("labels", &t.labels)?;
    for (field, track) in [("canary", Track::Canary), ("production", Track::Production)] {
        names
            .istio_of(track)
            .map_err(|problem| ReleaseError::Telemetry {
                field: format!("telemetry.{field}"),
                problem,
            })?;
    }
    let hashes = peers::argo::Hashes {
        stable: names.production.pod_template_hash.clone(),
        latest: names.canary.pod_template_hash.clone(),
    };
    let bad = |error| ReleaseError::Peer {
        name: peer.name.clone(),
        error,
    };
    let mut spec = PeerSpec::from_scenario(
        scenario,
        PeerPlan::with_hashes(&peer.bundle, &hashes).map_err(bad)?,
    );
    spec.deploy.build_after_s = None;
    spec.deploy.canary_pods = plan.canary_replicas.max(1);
    Ok(spec)
}

/// Every track's names as the simulator gives its pods' series
/// ([`scenarios::Telemetry`]): Istio's destination labels and the pods'
/// Kubernetes labels.
#[derive(Debug, Clone)]
struct Names {
    app: String,
    namespace: String,
    production: scenarios::telemetry::ResolvedTrack,
    baseline: scenarios::telemetry::ResolvedTrack,
    canary: scenarios::telemetry::ResolvedTrack,
}

impl Names {
    fn of(scenario: &Scenario) -> Self {
        let t = &scenario.file.telemetry;
        Names {
            app: t.app().to_string(),
            namespace: t.namespace().to_string(),
            production: t.track(TelemetryTrack::Production),
            baseline: t.track(TelemetryTrack::Baseline),
            canary: t.track(TelemetryTrack::Canary),
        }
    }

    /// Workload and service of `track`'s pods, and their template hash:
    /// the new production instances are production's Deployment (or
    /// Flagger's primary) running the canary's template.
    fn of_track(&self, track: Track) -> (&scenarios::telemetry::ResolvedTrack, &str) {
        match track {
            Track::Production => (&self.production, &self.production.pod_template_hash),
            Track::Baseline => (&self.baseline, &self.baseline.pod_template_hash),
            Track::Canary => (&self.canary, &self.canary.pod_template_hash),
            Track::Next => (&self.production, &self.canary.pod_template_hash),
        }
    }

    /// goldengoose's `--istio` for `track`, or why the track's names
    /// cannot be one (a `destination_service` that is not
    /// `SERVICE.NAMESPACE.svc.cluster.local`, or not a Kubernetes name).
    fn istio_of(&self, track: Track) -> Result<goldengoose::Istio, String> {
        let (names, _) = self.of_track(track);
        let suffix = format!(".{}.svc.cluster.local", self.namespace);
        let service = names.service.strip_suffix(&suffix).ok_or_else(|| {
            format!(
                "service {:?} is not SERVICE{suffix}, the only form an Istio sidecar reports",
                names.service
            )
        })?;
        format!(
            "workload={},namespace={},service={service},app={}",
            names.workload, self.namespace, self.app
        )
        .parse()
        .map_err(|e: goldengoose::IstioSpecError| e.to_string())
    }

    /// The pod's labels a cluster's Prometheus adds to every series of
    /// `slot` (the simulator puts the same ones on its pods' series).
    fn target_labels(&self, track: Track, slot: &str) -> Vec<(&'static str, String)> {
        let (names, hash) = self.of_track(track);
        vec![
            ("app", self.app.clone()),
            ("namespace", self.namespace.clone()),
            ("pod", format!("{}-{hash}-{slot}", names.workload)),
            ("rollouts_pod_template_hash", hash.to_string()),
        ]
    }
}

struct Context<'a> {
    scenario: &'a Scenario,
    plan: &'a ReleasePlan,
    config: &'a judge::CanaryConfig,
    options: &'a ReleaseOptions,
    /// Ctrl-C: `true` once the release is to stop.
    cancel: &'a watch::Receiver<bool>,
    control: ScopeVars,
    experiment: ScopeVars,
    /// The Kayenta judge of `config`.
    judge: Arc<Judge>,
    /// How each track's series are labelled.
    names: Names,
    /// Canary slots reserved up front: the plan's pods, or every pod a
    /// peer's `setCanaryScale` may start ([`PeerSpec::canary_starts`]; a
    /// stopped slot is not restarted).
    canary_slots: u32,
}

impl Context<'_> {
    /// How long an instance may take to become ready: the scenario's
    /// deploy timeout, scaled (at least a second).
    fn ready_timeout(&self) -> Duration {
        let s = self.scenario.file.pipeline.deploy_timeout_s * self.options.time_scale;
        Duration::from_secs_f64(s.max(1.0))
    }

    /// How long an instance must be up before it counts as ready: the
    /// scenario's readiness time, scaled (a crash-looping canary crashes
    /// within it, as in the simulator).
    fn min_ready(&self) -> Duration {
        let s = self.scenario.file.pipeline.readiness_s * self.options.time_scale;
        Duration::from_secs_f64(s.max(0.0))
    }

    /// Instances are restarted `CRASH_RESTART_S` scaled after they exit.
    fn supervision(&self) -> Supervision {
        Supervision {
            restart_delay: Duration::from_secs_f64(
                (CRASH_RESTART_S * self.options.time_scale).max(0.05),
            ),
            ..Supervision::default()
        }
    }
}

/// What the driver's background work answers with.
enum Answer {
    /// A window fetched and judged.
    Judged(Box<JudgedInterval>),
    /// A window could not be fetched or judged: the release stops.
    JudgeFailed(ReleaseError),
    /// A [`Command::Measure`] evaluated.
    Measured { id: u64, value: Measurement },
}

/// Executes a [`Controller`]'s commands on loopback: the module docs' pods,
/// loadgen and Prometheus, with controller time (scenario milliseconds
/// since the commit) mapped onto real time by the time scale.
struct Driver<'c, 'a> {
    ctx: &'c Context<'a>,
    /// Real time of controller time 0.
    t0: Instant,
    /// Unix seconds of controller time 0.
    t0_unix: f64,
    /// The last `now` fed to the controller.
    now: Millis,
    /// Pending [`Command::WakeAt`] times.
    wakes: BinaryHeap<Reverse<Millis>>,
    /// Answers to feed at the current time, in order.
    immediate: VecDeque<Event>,
    /// The controller's pods: ready or not, and their crashes.
    pods: PodWatch,
    /// The split in force.
    split: Split,
    /// Controller time of the traffic shift.
    traffic_at: Option<Millis>,
    /// Fetching and judging windows, measuring.
    tasks: JoinSet<Answer>,
    /// Why the deploy failed, captured before the rollback stops the pods.
    not_ready: Option<ReleaseError>,
    /// Whether the judged series were fetched for the record.
    series_fetched: bool,
    /// The controller's queries: name and PromQL (ranges scaled).
    queries: Vec<(String, String)>,
    /// Measurements asked for and not answered: id, query, controller time.
    measuring: Vec<(u64, usize, Millis)>,
    /// Controller time of the decision (a promotion or rollback began).
    decided_at: Option<Millis>,
    /// `promote` or `rollback`, once begun.
    tail: Option<&'static str>,
}

impl<'c, 'a> Driver<'c, 'a> {
    fn scale(&self) -> f64 {
        self.ctx.options.time_scale
    }

    /// Real time of controller time `t`.
    fn real(&self, t: Millis) -> Instant {
        self.t0 + Duration::from_secs_f64(secs(t) * self.scale())
    }

    /// Unix seconds of controller time `t`, to the millisecond (as
    /// Kayenta's scopes carry them).
    fn unix(&self, t: Millis) -> f64 {
        ((self.t0_unix + secs(t) * self.scale()) * 1000.0).round() / 1000.0
    }

    /// Controller time now (never before the last `now`).
    fn clock(&self) -> Millis {
        ms(self.t0.elapsed().as_secs_f64() / self.scale()).max(self.now)
    }

    /// The step a failure or an interruption now belongs to.
    fn step(&self) -> Step {
        if self.traffic_at.is_some() {
            Step::Analysis
        } else {
            Step::Deploy
        }
    }

    fn handle<C: Controller>(&mut self, controller: &mut C, now: Millis, event: Event) {
        self.now = now.max(self.now);
        controller.handle(self.now, event);
    }

    /// Carries out one command; `Some` once the controller is done.
    async fn execute(
        &mut self,
        command: Command,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<Option<release::Outcome>, (Step, ReleaseError)> {
        let ctx = self.ctx;
        match command {
            Command::WakeAt(t) => self.wakes.push(Reverse(t)),
            // The local mode deploys the version it was given: nothing to
            // build.
            Command::Build => self.immediate.push_back(Event::BuildFinished { ok: true }),
            Command::StartPods { track, count } => {
                let ours = match track {
                    PodTrack::Canary => Track::Canary,
                    PodTrack::Baseline => Track::Baseline,
                    PodTrack::Production => Track::Production,
                };
                let slots: Vec<usize> = indices(running, ours)
                    .into_iter()
                    .filter(|&i| running.slots[i].listener.is_some())
                    .take(count as usize)
                    .collect();
                for i in slots {
                    // Seeded by the slot's place, as every local release is.
                    let config = instance_config(ctx, ours, i as u64);
                    start_slot(ctx, &mut running.slots[i], config)
                        .await
                        .map_err(|e| (Step::Deploy, e))?;
                    self.pods.started(i, track);
                }
                if running.load.is_some() {
                    // a scale-up during the analysis: scraped from now on,
                    // served once ready (see look_at_pods)
                    running.update_targets().map_err(|e| (self.step(), e))?;
                }
            }
            Command::StopPods { track, count } => {
                self.stop_pods(running, track, count)
                    .await
                    .map_err(|e| (self.step(), e))?;
            }
            Command::SetWeights(split) => {
                self.split = split.into();
                if running.load.is_none() {
                    self.shift_traffic(running, record).await?;
                } else {
                    running
                        .set_weights(self.split)
                        .map_err(|e| (self.step(), e))?;
                }
            }
            Command::Measure(request) => self.measure(running, request)?,
            Command::Judge(request) => self.judge(running, request)?,
            Command::Promote(_) => {
                self.decided(running, record).await;
                self.decided_at = Some(self.now);
                self.tail = Some("promote");
                ctx.options.watch.set(Step::Promote);
                promote(ctx, running, record, self.split).await?;
                let now = self.clock();
                self.handle_later(now, Event::Promoted(Ok(())));
            }
            Command::Cleanup => {
                cleanup(running).await?;
                let now = self.clock();
                self.handle_later(now, Event::CleanedUp);
            }
            Command::RollBack => {
                if self.traffic_at.is_none() {
                    self.not_ready = self.not_ready(running);
                } else {
                    self.decided(running, record).await;
                    self.decided_at = Some(self.now);
                    self.tail = Some("rollback");
                }
                ctx.options.watch.set(Step::Rollback);
                rollback(running).await?;
                let now = self.clock();
                self.handle_later(now, Event::RolledBack);
            }
            Command::Done(outcome) => return Ok(Some(outcome)),
        }
        Ok(None)
    }

    /// Feeds the controller until it is done: carries out its commands,
    /// wakes it on time, answers with what the pods, Prometheus and the
    /// judge say, and stops on Ctrl-C.
    async fn run<C: Controller>(
        &mut self,
        controller: &mut C,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<release::Outcome, (Step, ReleaseError)> {
        self.t0_unix = unix_now();
        self.handle(controller, 0, Event::Start);
        loop {
            let mut done = None;
            while let Some(command) = controller.poll() {
                if let Some(o) = self.execute(command, running, record).await? {
                    done = Some(o);
                    break;
                }
            }
            if let Some(o) = done {
                return Ok(o);
            }
            if running.prometheus.is_none() {
                // After the commit's pods were started: Prometheus scrapes
                // them all from its first scrape. Its start-up does not count
                // against the deploy deadline (controller time waits for it).
                let waited = Instant::now();
                start_prometheus(self.ctx, running).await?;
                self.t0 += waited.elapsed();
                self.t0_unix += waited.elapsed().as_secs_f64();
                self.ctx.options.watch.set(Step::Deploy);
            }
            if let Some(event) = self.immediate.pop_front() {
                let now = self.now;
                self.handle(controller, now, event);
                continue;
            }
            let next_wake = self.wakes.peek().map(|Reverse(t)| *t);
            let wake_at = next_wake.map(|t| self.real(t));
            let cancel = self.ctx.cancel;
            tokio::select! {
                _ = async {
                    match wake_at {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let mut due = 0;
                    while let Some(&Reverse(t)) = self.wakes.peek() {
                        if self.real(t) > Instant::now() {
                            break;
                        }
                        self.wakes.pop();
                        due = due.max(t);
                    }
                    self.handle(controller, due, Event::TimeReached);
                }
                Some(answer) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    let now = self.clock();
                    match answer {
                        Ok(Answer::Judged(interval)) => {
                            let (index, score) = (interval.window.index, interval.result.score.score);
                            record.intervals.push(*interval);
                            self.handle(controller, now, Event::Judged { index, score });
                        }
                        Ok(Answer::Measured { id, value }) => {
                            self.record_measurement(record, id, &value);
                            self.handle(controller, now, Event::Measured { id, value });
                        }
                        Ok(Answer::JudgeFailed(e)) => {
                            self.decided(running, record).await;
                            return Err((Step::Analysis, e));
                        }
                        // Aborted by a decision: nothing to answer.
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => return Err((Step::Analysis, ReleaseError::Task(e.to_string()))),
                    }
                }
                () = cancelled(cancel) => {
                    let step = self.step();
                    if step == Step::Analysis {
                        self.decided(running, record).await;
                        return Err((step, AnalysisError::Cancelled.into()));
                    }
                    return Err((step, ReleaseError::Interrupted {
                        step,
                        detail: "nothing was judged; everything was stopped".into(),
                    }));
                }
                // The pods' readiness probes and crashes.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let now = self.clock();
                    let (events, serving) = self.look_at_pods(running).await;
                    if serving {
                        running
                            .set_weights(self.split)
                            .map_err(|e| (self.step(), e))?;
                    }
                    for event in events {
                        self.handle(controller, now, event);
                    }
                }
            }
        }
    }

    /// The stages up to a failure, as far as the release got.
    fn partial_timeline(&self) -> Vec<StageSpan> {
        let now = self.clock();
        let span = |name: &str, start: Millis, end: Millis| StageSpan {
            name: name.into(),
            start: self.unix(start),
            end: self.unix(end),
        };
        let Some(traffic) = self.traffic_at else {
            return vec![span("deploy", 0, now)];
        };
        let decided = self.decided_at.unwrap_or(now);
        let warmup_end =
            (traffic + ms(self.ctx.plan.schedule.warmup.as_secs_f64() / self.scale())).min(decided);
        let mut stages = vec![
            span("deploy", 0, traffic),
            span("warmup", traffic, warmup_end),
        ];
        if decided > warmup_end {
            stages.push(span("analysis", warmup_end, decided));
        }
        if let (Some(tail), Some(at)) = (self.tail, self.decided_at) {
            stages.push(span(tail, at, now));
        }
        stages
    }

    /// Queues an answer that comes at `now` (after real time passed).
    fn handle_later(&mut self, now: Millis, event: Event) {
        self.now = now.max(self.now);
        self.immediate.push_back(event);
    }

    /// The traffic shift: production must serve, then loadgen starts with
    /// one target per instance (the reserved ones at 0).
    async fn shift_traffic(
        &mut self,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<(), (Step, ReleaseError)> {
        let ctx = self.ctx;
        let plan = ctx.plan;
        for slot in running
            .slots
            .iter()
            .filter(|s| s.track == Track::Production && s.goose.is_some())
        {
            wait_ready(slot, ctx.min_ready(), ctx.ready_timeout(), ctx.cancel)
                .await
                .map_err(|e| (Step::Deploy, e))?;
        }
        for slot in running.slots.iter_mut() {
            slot.serving = slot.goose.is_some() && slot.track != Track::Next;
        }
        ctx.options.watch.set(Step::Traffic);
        let load_targets = running
            .weights(self.split)
            .iter()
            .zip(&running.slots)
            .map(|((name, w), slot)| Target::parse(&format!("{name}=http://{}/@{w}", slot.addr)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (Step::Traffic, e.into()))?;
        let mut load_plan = loadgen::Plan::new(
            Targets::Weighted(load_targets),
            Arrival::Constant(RateProfile::constant(plan.request_rate)),
        );
        let analysis_time = plan.schedule.warmup + plan.schedule.lifetime;
        // Generous: the release stops the load when it is done.
        load_plan.duration =
            Some(analysis_time * 2 + ctx.ready_timeout() * 4 + Duration::from_secs(60));
        load_plan.loopback_only = true;
        // Open loop: enough connections for 100 ms of arrivals in flight (the
        // catalog's latencies are 50 ms at the median), so a raised
        // --rate-scale is not capped by the pool (64 x 20 req/s at 50 ms).
        load_plan.connections = ((plan.request_rate * 0.1).ceil() as usize).clamp(64, 2048);
        // Per-step counts, so the canary's requests up to the decision can be
        // told from those after it.
        load_plan.interval = plan.step;
        load_plan.seed = ctx.options.seed;
        let control = Control::new();
        running.load = Some(Load {
            control: control.clone(),
            task: Some(tokio::spawn(loadgen::run(load_plan, control))),
        });
        // The windows count from here: the controller's time of the shift,
        // which is when loadgen started (it was asked for at `now`).
        self.traffic_at = Some(self.now);
        record.traffic_at = Some(self.unix(self.now));
        ctx.options.watch.set(Step::Analysis);
        Ok(())
    }

    /// Fetches the window's series once its last scrape has landed (one
    /// step after its end), judges them, and answers in the background.
    fn judge(
        &mut self,
        running: &Running,
        request: release::JudgeRequest,
    ) -> Result<(), (Step, ReleaseError)> {
        let ctx = self.ctx;
        let w = request.window;
        let start = self.unix(request.origin + ms(w.start.as_secs_f64()));
        let end = self.unix(request.origin + ms(w.end.as_secs_f64()));
        let due = self.real(request.origin + ms(w.end.as_secs_f64())) + ctx.plan.step;
        let api = prometheus_api(running, self.ctx.cancel)?;
        let (config, judge) = (ctx.config.clone(), ctx.judge.clone());
        let (control, experiment) = (ctx.control.clone(), ctx.experiment.clone());
        let (step, seed, scale) = (ctx.plan.step, ctx.options.seed, self.scale());
        self.tasks.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let judged = async {
                let pairs =
                    fetch_pairs(&api, &config, &control, &experiment, start, end, step).await?;
                // Real offsets from the traffic shift, as queried.
                let window = Window {
                    index: w.index,
                    start: w.start.mul_f64(scale),
                    end: w.end.mul_f64(scale),
                };
                judge_window(&judge, &config, &control, window, (start, end), pairs, seed)
            };
            match judged.await {
                Ok(interval) => Answer::Judged(Box::new(interval)),
                Err(e) => Answer::JudgeFailed(e.into()),
            }
        });
        Ok(())
    }

    /// Evaluates a query on the real Prometheus at the request's time (a
    /// range query if it asks for one) and answers in the background.
    fn measure(
        &mut self,
        running: &Running,
        request: release::MeasureRequest,
    ) -> Result<(), (Step, ReleaseError)> {
        let api = prometheus_api(running, self.ctx.cancel)?;
        let promql = self
            .queries
            .get(request.query)
            .map(|q| q.1.clone())
            .unwrap_or_default();
        self.measuring.push((
            request.id,
            request.query,
            request.range.map_or(request.at, |r| r.end),
        ));
        let at = self.unix(request.at);
        let range = request.range.map(|r| {
            (
                self.unix(r.start),
                self.unix(r.end),
                Duration::from_secs_f64(secs(r.step) * self.scale()),
            )
        });
        let due = self.real(request.at) + self.ctx.plan.step;
        self.tasks.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let id = request.id;
            let data = match range {
                Some((start, end, step)) => api.query_range_data(&promql, start, end, step).await,
                None => api.query_data(&promql, at).await,
            };
            let value = match data {
                Ok(data) => measurement(&data),
                Err(e) => Measurement::Error(e.to_string()),
            };
            Answer::Measured { id, value }
        });
        Ok(())
    }

    /// Keeps an answered measurement for the record.
    fn record_measurement(&mut self, record: &mut ReleaseRecord, id: u64, value: &Measurement) {
        let Some(k) = self.measuring.iter().position(|m| m.0 == id) else {
            return;
        };
        let (_, query, at) = self.measuring.swap_remove(k);
        let (name, promql) = self.queries.get(query).cloned().unwrap_or_default();
        let since_shift = at.saturating_sub(self.traffic_at.unwrap_or(0));
        record.measurements.push(Measured {
            query: name,
            promql,
            at: self.unix(at),
            scenario_s: secs(since_shift),
            value: value.clone(),
        });
    }

    /// The analysis is over: the series of the whole analysis for the
    /// report (once).
    async fn decided(&mut self, running: &Running, record: &mut ReleaseRecord) {
        self.tasks.abort_all();
        if self.series_fetched {
            return;
        }
        self.series_fetched = true;
        if let (Some(p), Some(traffic_at)) = (&running.prometheus, record.traffic_at) {
            fetch_series(self.ctx, p, traffic_at, record).await;
        }
    }

    /// Why the canary or baseline is not ready: the first such slot still
    /// waiting, its exits and last exit.
    fn not_ready(&self, running: &Running) -> Option<ReleaseError> {
        let i = self.pods.first_starting()?;
        let slot = running.slots.get(i)?;
        let goose = slot.goose.as_ref()?;
        let why = match (goose.exits(), goose.last_exit()) {
            (0, _) | (_, None) => "/readyz never answered 200".to_string(),
            (n, Some(last)) => format!(
                "it exited {n} time{} and was restarted (a crash loop); last: {last}",
                if n == 1 { "" } else { "s" }
            ),
        };
        Some(ReleaseError::NotReady {
            instance: slot.name.clone(),
            waited: self.t0.elapsed(),
            why,
        })
    }

    /// Stops `count` canary pods (a peer's `setCanaryScale` down): not yet
    /// ready ones first, then the last started; the canary's share goes to
    /// the rest.
    async fn stop_pods(
        &mut self,
        running: &mut Running,
        track: PodTrack,
        count: u32,
    ) -> Result<(), ReleaseError> {
        if track != PodTrack::Canary {
            return Ok(());
        }
        let not_ready: Vec<usize> = self
            .pods
            .starting_slots()
            .into_iter()
            .filter(|&i| running.slots[i].track == Track::Canary)
            .collect();
        let serving = indices(running, Track::Canary)
            .into_iter()
            .rev()
            .filter(|&i| running.slots[i].goose.is_some() && !not_ready.contains(&i));
        let mut victims: Vec<usize> = not_ready.iter().copied().chain(serving).collect();
        victims.truncate(count as usize);
        for i in victims {
            self.pods.forget(i);
            running.slots[i].serving = false;
            running.stop_slot(i).await;
        }
        running.set_weights(self.split)?;
        running.update_targets()
    }

    /// Reports pods that became ready or crashed (also after they were
    /// ready) since the last look; a canary pod ready after the traffic
    /// shift (a peer's scale-up) starts serving (`true`: the weights must be
    /// set again).
    async fn look_at_pods(&mut self, running: &mut Running) -> (Vec<Event>, bool) {
        let min_up = self.ctx.min_ready();
        let before = self.pods.ready_slots();
        let slots = &running.slots;
        let events = self
            .pods
            .look(min_up, |i| slots.get(i).and_then(|s| s.goose.as_ref()))
            .await;
        let mut serve = false;
        if running.load.is_some() {
            for i in self.pods.ready_slots() {
                let slot = &mut running.slots[i];
                if !before.contains(&i) && slot.track == Track::Canary && !slot.serving {
                    slot.serving = true;
                    serve = true;
                }
            }
        }
        (events, serve)
    }
}

/// Prometheus's API, once it runs.
/// Ctrl-C (`cancel`) also ends a wait between query retries at once.
fn prometheus_api(
    running: &Running,
    cancel: &watch::Receiver<bool>,
) -> Result<PromApi, (Step, ReleaseError)> {
    running
        .prometheus
        .as_ref()
        .map(|p| p.api().with_cancel(cancel.clone()))
        .ok_or_else(|| (Step::Prometheus, ReleaseError::Task("prometheus".into())))
}

/// Prometheus's `data` (`resultType`, `result`) as a [`Measurement`]:
/// values only, series in Prometheus's order; a value that is not a number
/// (`"NaN"` is one) is NaN.
pub fn measurement(data: &serde_json::Value) -> Measurement {
    let value = |point: &serde_json::Value| {
        point[1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let results = || data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    match data["resultType"].as_str() {
        Some("scalar") => Measurement::Scalar(value(&data["result"])),
        Some("vector") => {
            Measurement::Vector(results().iter().map(|r| value(&r["value"])).collect())
        }
        Some("matrix") => Measurement::Matrix(
            results()
                .iter()
                .map(|r| {
                    r["values"]
                        .as_array()
                        .map(|v| v.iter().map(value).collect())
                        .unwrap_or_default()
                })
                .collect(),
        ),
        other => Measurement::Error(format!(
            "Prometheus answered resultType {other:?}, not scalar, vector or matrix"
        )),
    }
}

/// Runs `controller` to its end on loopback. Production runs before the
/// commit (in a real cluster it would); the controller's pods, weights,
/// windows and promotion are carried out as the module docs say. A deploy
/// that times out ends as [`ReleaseError::NotReady`] naming the pod, after
/// the controller's rollback.
async fn drive<C: Controller>(
    ctx: &Context<'_>,
    running: &mut Running,
    record: &mut ReleaseRecord,
    controller: &mut C,
) -> Result<(ReleaseEnd, AnalysisRun), (Step, ReleaseError)> {
    let plan = ctx.plan;
    let watch = &ctx.options.watch;
    watch.set(Step::Deploy);
    let deploy = |e: ReleaseError| (Step::Deploy, e);

    // Every listener first, so loadgen knows every address up front.
    let mut add = |name: String, track: Track| -> Result<(), ReleaseError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(ReleaseError::Reserve)?;
        let addr = listener.local_addr().map_err(ReleaseError::Reserve)?;
        let labels = ctx.names.target_labels(track, &name);
        running.slots.push(Slot {
            name,
            track,
            addr,
            listener: Some(listener),
            goose: None,
            serving: false,
            labels,
        });
        Ok(())
    };
    let production = plan.production_replicas.max(1);
    for i in 0..production {
        add(format!("production-{i}"), Track::Production).map_err(deploy)?;
    }
    for i in 0..plan.baseline_replicas {
        add(format!("baseline-{i}"), Track::Baseline).map_err(deploy)?;
    }
    for i in 0..ctx.canary_slots {
        add(format!("canary-{i}"), Track::Canary).map_err(deploy)?;
    }
    for i in 0..production {
        add(format!("production-new-{i}"), Track::Next).map_err(deploy)?;
    }
    for i in indices(running, Track::Production) {
        let config = instance_config(ctx, Track::Production, i as u64);
        start_slot(ctx, &mut running.slots[i], config)
            .await
            .map_err(deploy)?;
    }

    let mut driver = Driver {
        ctx,
        t0: Instant::now(),
        t0_unix: record.started_at,
        now: 0,
        wakes: BinaryHeap::new(),
        immediate: VecDeque::new(),
        pods: PodWatch::default(),
        split: plan.split_at(Duration::ZERO),
        traffic_at: None,
        tasks: JoinSet::new(),
        not_ready: None,
        series_fetched: false,
        // Range selectors follow the time scale, as in the config's queries.
        queries: controller
            .queries()
            .iter()
            .map(|q| {
                let promql = if ctx.options.scale_ranges {
                    scale_ranges(&q.promql, ctx.options.time_scale)
                } else {
                    q.promql.clone()
                };
                (q.name.clone(), promql)
            })
            .collect(),
        measuring: Vec::new(),
        decided_at: None,
        tail: None,
    };
    // The deploy counts from the commit (the release's start).
    let result = driver.run(controller, running, record).await;
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            if record.timeline.is_empty() {
                record.timeline = driver.partial_timeline();
            }
            return Err(e);
        }
    };

    record.timeline = outcome
        .timeline
        .iter()
        .map(|s| StageSpan {
            name: s.name.into(),
            start: driver.unix(s.start),
            end: driver.unix(s.end),
        })
        .collect();
    let scores = record
        .intervals
        .iter()
        .map(|i| i.result.score.score)
        .collect();
    let last_window_end = record.intervals.last().map(|i| i.window.end);
    let Some(verdict) = outcome.analysis(scores, last_window_end, ctx.options.time_scale) else {
        // Not promoted nor rolled back: no verdict.
        return Err(match outcome.end {
            ReleaseEnd::DeployFailed => (
                Step::Deploy,
                driver.not_ready.take().unwrap_or_else(|| {
                    ReleaseError::Task(format!("the deploy failed: {}", outcome.reason))
                }),
            ),
            other => (
                driver.step(),
                ReleaseError::Task(format!(
                    "the release ended with {other}: {}",
                    outcome.reason
                )),
            ),
        });
    };
    let end = verdict.end;
    let analysis = AnalysisRun {
        outcome: verdict,
        intervals: record.intervals.clone(),
    };
    record.outcome = Some(analysis.outcome.clone());
    Ok((end, analysis))
}

/// Starts Prometheus scraping every running instance.
async fn start_prometheus(
    ctx: &Context<'_>,
    running: &mut Running,
) -> Result<(), (Step, ReleaseError)> {
    ctx.options.watch.set(Step::Prometheus);
    let targets = running.scrape_targets();
    let binary = ctx.options.prometheus.clone();
    let root = ctx
        .options
        .temp_root
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let step = ctx.plan.step;
    let retry = ctx.options.prometheus_retry;
    let prometheus = Prometheus::start_in(&root, binary.as_deref(), &targets, step)
        .await
        .map(|p| p.with_retry(retry))
        .map_err(|e| (Step::Prometheus, ReleaseError::Prometheus(Box::new(e))))?;
    running.prometheus = Some(Arc::new(prometheus));
    Ok(())
}

/// The goldengoose config of instance `index` of `track`: the plan's, with
/// a seed of its own so replicas differ.
fn instance_config(ctx: &Context<'_>, track: Track, index: u64) -> goldengoose::Config {
    let plan = ctx.plan;
    let mut config = match track {
        Track::Production => plan.production.clone(),
        Track::Baseline => plan.baseline.clone(),
        Track::Canary | Track::Next => plan.canary.clone(),
    };
    config.version = track.label().to_string();
    // The Istio sidecar's families too, when the track's names allow
    // (always for a peer's analysis: checked when planned).
    config.istio = ctx.names.istio_of(track).ok();
    config.seed = config
        .seed
        .wrapping_add(1000 * (index + 1))
        .wrapping_add(track as u64);
    config
}

async fn start_slot(
    ctx: &Context<'_>,
    slot: &mut Slot,
    config: goldengoose::Config,
) -> Result<(), ReleaseError> {
    let listener = slot
        .listener
        .take()
        .ok_or_else(|| ReleaseError::Task(format!("{} has no listener", slot.name)))?;
    let goose = Goose::spawn_on(
        &ctx.options.goldengoose,
        &slot.name,
        listener,
        &config,
        &ctx.supervision(),
    )
    .await?;
    slot.goose = Some(goose);
    Ok(())
}

/// Waits until the instance has been up `min_up` and `/readyz` answers
/// 200, at most `timeout`.
/// `true` on `cancel` ends the wait at once.
async fn wait_ready(
    slot: &Slot,
    min_up: Duration,
    timeout: Duration,
    cancel: &watch::Receiver<bool>,
) -> Result<(), ReleaseError> {
    tokio::select! {
        ready = probe_until_ready(slot, min_up, timeout) => ready,
        () = cancelled(cancel) => Err(ReleaseError::Interrupted {
            step: Step::Deploy,
            detail: format!("while waiting for {} to become ready", slot.name),
        }),
    }
}

/// Probes the instance every 50 ms, as a kubelet's readiness probe does.
async fn probe_until_ready(
    slot: &Slot,
    min_up: Duration,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let Some(goose) = &slot.goose else {
        return Err(ReleaseError::Task(format!("{} is not running", slot.name)));
    };
    let started = Instant::now();
    loop {
        // Up long enough since its last (re)start, and answering 200.
        if goose.up_for().is_some_and(|up| up >= min_up) && goose.is_ready().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let why = match (goose.exits(), goose.last_exit()) {
                (0, _) | (_, None) => "/readyz never answered 200".to_string(),
                (n, Some(last)) => format!(
                    "it exited {n} time{} and was restarted (a crash loop); last: {last}",
                    if n == 1 { "" } else { "s" }
                ),
            };
            return Err(ReleaseError::NotReady {
                instance: slot.name.clone(),
                waited: timeout,
                why,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole analysis's series for the report; the last interval's when
/// Prometheus cannot give them.
async fn fetch_series(
    ctx: &Context<'_>,
    prometheus: &Arc<Prometheus>,
    traffic_at: f64,
    record: &mut ReleaseRecord,
) {
    let Some(last) = record.intervals.last() else {
        return;
    };
    let end = last.end;
    let step = ctx.plan.step;
    let ms = |t: f64| (t * 1000.0).round() / 1000.0;
    let start = ms(traffic_at + step.as_secs_f64());
    let api = prometheus.api();
    let fetched = fetch_pairs(
        &api,
        ctx.config,
        &ctx.control,
        &ctx.experiment,
        start,
        end,
        step,
    )
    .await;
    match fetched {
        Ok(pairs) => {
            record.series = pairs;
            record.series_start = start;
        }
        _ => {
            record.series = last.pairs.clone();
            record.series_start = last.start;
        }
    }
}

/// Traffic back to production, canary and baseline stopped.
async fn rollback(running: &mut Running) -> Result<(), (Step, ReleaseError)> {
    let all_production = Split {
        production: 100.0,
        baseline: 0.0,
        canary: 0.0,
    };
    running
        .set_weights(all_production)
        .map_err(|e| (Step::Rollback, e))?;
    // Let requests already assigned to the canary finish before it stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..running.slots.len() {
        if matches!(running.slots[i].track, Track::Canary | Track::Baseline) {
            running.slots[i].serving = false;
            running.stop_slot(i).await;
        }
    }
    running.update_targets().map_err(|e| (Step::Rollback, e))
}

/// The rolling replacement of production, one instance at a time; see the
/// module docs. `split` is the split in force at the decision.
async fn promote(
    ctx: &Context<'_>,
    running: &mut Running,
    record: &mut ReleaseRecord,
    split: Split,
) -> Result<(), (Step, ReleaseError)> {
    let olds: Vec<usize> = indices(running, Track::Production);
    let news: Vec<usize> = indices(running, Track::Next);
    let of = olds.len() as u32;
    record.promotion = Some(Promotion {
        replaced: 0,
        of,
        undone: false,
    });
    for (k, (&old, &new)) in olds.iter().zip(&news).enumerate() {
        let step = async {
            if is_cancelled(ctx.cancel) {
                return Err(ReleaseError::Interrupted {
                    step: Step::Promote,
                    detail: "Ctrl-C".into(),
                });
            }
            let config = instance_config(ctx, Track::Next, k as u64);
            start_slot(ctx, &mut running.slots[new], config).await?;
            wait_ready(
                &running.slots[new],
                ctx.min_ready(),
                ctx.ready_timeout(),
                ctx.cancel,
            )
            .await?;
            running.update_targets()?;
            running.slots[old].serving = false;
            running.slots[new].serving = true;
            running.set_weights(split)
        };
        if let Err(cause) = step.await {
            let replaced = k as u32;
            undo_promotion(running, split, &olds, &news).await;
            record.promotion = Some(Promotion {
                replaced,
                of,
                undone: true,
            });
            let cause = match cause {
                ReleaseError::Interrupted { .. } => ReleaseError::Interrupted {
                    step: Step::Promote,
                    detail: format!(
                        "undone after {replaced} of {of} production instances were replaced; production serves the current version"
                    ),
                },
                other => ReleaseError::PromotionUndone {
                    replaced,
                    of,
                    cause: Box::new(other),
                },
            };
            return Err((Step::Promote, cause));
        }
        record.promotion = Some(Promotion {
            replaced: k as u32 + 1,
            of,
            undone: false,
        });
    }
    Ok(())
}

/// After a promotion (production is the new version everywhere): all
/// traffic to it, then the old instances, the canary and the baseline go.
async fn cleanup(running: &mut Running) -> Result<(), (Step, ReleaseError)> {
    let all_production = Split {
        production: 100.0,
        baseline: 0.0,
        canary: 0.0,
    };
    for slot in running
        .slots
        .iter_mut()
        .filter(|s| matches!(s.track, Track::Canary | Track::Baseline))
    {
        slot.serving = false;
    }
    running
        .set_weights(all_production)
        .map_err(|e| (Step::Promote, e))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..running.slots.len() {
        if !running.slots[i].serving {
            running.stop_slot(i).await;
        }
    }
    running.update_targets().map_err(|e| (Step::Promote, e))
}

fn indices(running: &Running, track: Track) -> Vec<usize> {
    running
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.track == track)
        .map(|(i, _)| i)
        .collect()
}

/// Every old production instance serving again, the new ones stopped.
async fn undo_promotion(running: &mut Running, split: Split, olds: &[usize], news: &[usize]) {
    for &i in olds {
        running.slots[i].serving = true;
    }
    for &i in news {
        running.slots[i].serving = false;
    }
    let _ = running.set_weights(split);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for &i in news {
        running.stop_slot(i).await;
    }
    let _ = running.update_targets();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(tracks: &[(Track, bool)]) -> Running {
        Running {
            slots: tracks
                .iter()
                .enumerate()
                .map(|(i, &(track, serving))| Slot {
                    name: format!("s{i}"),
                    track,
                    addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                    listener: None,
                    goose: None,
                    serving,
                    labels: Vec::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn split(production: f64, baseline: f64, canary: f64) -> Split {
        Split {
            production,
            baseline,
            canary,
        }
    }

    fn data(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("test JSON parses")
    }

    #[test]
    fn prometheus_results_become_measurements() {
        let scalar = data(r#"{"resultType":"scalar","result":[1700000000,"0.25"]}"#);
        assert_eq!(measurement(&scalar), Measurement::Scalar(0.25));
        let vector = data(
            r#"{"resultType":"vector","result":[
                {"metric":{"a":"1"},"value":[1700000000,"2"]},
                {"metric":{"a":"2"},"value":[1700000000,"+Inf"]}]}"#,
        );
        assert_eq!(
            measurement(&vector),
            Measurement::Vector(vec![2.0, f64::INFINITY])
        );
        let empty = data(r#"{"resultType":"vector","result":[]}"#);
        assert_eq!(measurement(&empty), Measurement::Vector(vec![]));
        let matrix = data(
            r#"{"resultType":"matrix","result":[
                {"metric":{},"values":[[1,"1"],[2,"3"]]}]}"#,
        );
        assert_eq!(
            measurement(&matrix),
            Measurement::Matrix(vec![vec![1.0, 3.0]])
        );
        let Measurement::Vector(v) = measurement(&data(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}"#,
        )) else {
            panic!("a vector");
        };
        assert!(v[0].is_nan());
        let string = data(r#"{"resultType":"string","result":[1,"x"]}"#);
        assert!(
            matches!(measurement(&string), Measurement::Error(e) if e.contains("string")),
            "a string result is not a measurement"
        );
    }

    #[test]
    fn the_local_pipeline_has_no_build_and_shifts_at_once() {
        let path = format!(
            "{}/../scenarios/catalog/aa-typical.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let scenario = Scenario::load(std::path::Path::new(&path), None).expect("loads");
        let plan = plan_release(&scenario, 0.02, 1).expect("plans");
        let spec = local_spec(&scenario, &plan);
        assert_eq!(spec.build_after_s, None);
        assert_eq!(spec.shift_delay_s, 0.0);
        assert_eq!(spec.canary_pods, plan.canary_replicas.max(1));
        assert_eq!(spec.baseline_pods, plan.baseline_replicas);
        // The controller starts the deploy at the commit.
        let mut k = Kayenta::new(&spec, false);
        k.handle(0, Event::Start);
        let first = k.poll();
        assert!(
            matches!(
                first,
                Some(Command::StartPods {
                    track: PodTrack::Canary,
                    ..
                })
            ),
            "{first:?}"
        );
    }

    #[test]
    fn instances_are_named_as_the_simulator_names_their_tracks() {
        let path = format!(
            "{}/../scenarios/catalog/aa-typical.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let scenario = Scenario::load(std::path::Path::new(&path), None).expect("loads");
        let names = Names::of(&scenario);
        let t = &scenario.file.telemetry;
        let canary = names.istio_of(Track::Canary).expect("an Istio identity");
        // Flagger's target and Argo's canary service, as the simulator's
        // series carry them (scenarios::telemetry's defaults)
        assert_eq!(canary.workload, "goldengoose");
        assert_eq!(
            canary.service_host(),
            t.track(TelemetryTrack::Canary).service
        );
        assert_eq!(
            canary.service_host(),
            "goldengoose-canary.default.svc.cluster.local"
        );
        let primary = names.istio_of(Track::Production).expect("identity");
        assert_eq!(primary.workload, "goldengoose-primary");
        assert_eq!(
            primary.service_host(),
            "goldengoose-stable.default.svc.cluster.local"
        );
        assert_eq!(names.istio_of(Track::Next), Ok(primary));
        let label = |track, slot| {
            names
                .target_labels(track, slot)
                .into_iter()
                .find(|(k, _)| *k == "rollouts_pod_template_hash")
                .map(|(_, v)| v)
        };
        let (canary_hash, stable_hash) = (
            t.track(TelemetryTrack::Canary).pod_template_hash,
            t.track(TelemetryTrack::Production).pod_template_hash,
        );
        assert_eq!(label(Track::Canary, "canary-0"), Some(canary_hash.clone()));
        assert_eq!(label(Track::Production, "production-0"), Some(stable_hash));
        // the new production pods run the canary's template
        assert_eq!(label(Track::Next, "production-new-0"), Some(canary_hash));
        // and Argo's podTemplateHashValue resolves to the same by default
        let defaults = release::peer::default_hashes();
        assert_eq!(
            defaults.latest,
            t.track(TelemetryTrack::Canary).pod_template_hash
        );
        assert_eq!(
            defaults.stable,
            t.track(TelemetryTrack::Production).pod_template_hash
        );
        // a destination_service no sidecar reports is refused
        let mut bad = scenario.clone();
        bad.file.telemetry.canary.service = Some("shop.example.com".into());
        let names = Names::of(&bad);
        let e = names
            .istio_of(Track::Canary)
            .expect_err("not a cluster service");
        assert!(e.contains("shop.example.com"), "{e}");
    }

    #[test]
    fn shares_split_evenly_over_serving_instances() {
        let r = running(&[
            (Track::Production, true),
            (Track::Production, true),
            (Track::Baseline, true),
            (Track::Canary, true),
            (Track::Next, false),
            (Track::Next, false),
        ]);
        let w: Vec<f64> = r
            .weights(split(90.0, 5.0, 5.0))
            .iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(w, vec![45.0, 45.0, 5.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn mid_promotion_keeps_production_share() {
        let r = running(&[
            (Track::Production, false),
            (Track::Production, true),
            (Track::Canary, true),
            (Track::Next, true),
            (Track::Next, false),
        ]);
        let w: Vec<f64> = r
            .weights(split(90.0, 5.0, 5.0))
            .iter()
            .map(|x| x.1)
            .collect();
        // No baseline: its share goes to production.
        assert_eq!(w, vec![0.0, 47.5, 5.0, 47.5, 0.0]);
        let total: f64 = w.iter().sum();
        assert!((total - 100.0).abs() < 1e-9);
    }
}
