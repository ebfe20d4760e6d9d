//! A whole canary release on loopback, time-scaled (`canarylab local`):
//! production, baseline and canary goldengoose replicas as child processes
//! (see [`crate::goose`]: restarted when they exit, as a kubelet would), a real
//! Prometheus scraping every instance, loadgen moving traffic as the
//! scenario's splits say, [`run_analysis`](crate::run_analysis) deciding,
//! then a rolling promotion of production or a rollback.
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
//! Not for: routing by readiness. loadgen's weights are fixed per
//! instance, so requests sent to an instance that is down (a crash, until
//! its restart) are refused and count as errors, as in the simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use judge::MetricSetPair;
use judge::analysis::{Decision, Outcome};
use loadgen::{Arrival, Control, RateProfile, Target, Targets};
use scenarios::Scenario;
use tokio::task::JoinHandle;

use crate::analysis::{
    AnalysisError, AnalysisPlan, AnalysisRun, JudgedInterval, check_queries, fetch_pairs,
    run_analysis_observed, unix_now,
};
use crate::goose::{self, Goose, GooseCommand, Supervision};
use crate::plan::{LocalPlan, PlanError, Split, plan_release};
use crate::prom::{self, Prometheus, ScrapeTarget};
use crate::query::ScopeVars;
use crate::ranges::scale_config_ranges;

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
    /// [`LocalPlan::with_rate_scale`]); 1 keeps it.
    pub rate_scale: f64,
    /// How a failed Prometheus query is retried before the step fails.
    pub prometheus_retry: prom::Retry,
}

/// The step a running release is in; clones share one state.
#[derive(Debug, Clone, Default)]
pub struct StepWatch(Arc<Mutex<Option<Step>>>);

impl StepWatch {
    /// The current step (`None` before the release starts).
    pub fn get(&self) -> Option<Step> {
        self.0.lock().map(|s| *s).unwrap_or(None)
    }

    fn set(&self, step: Step) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(step);
        }
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
    pub start: f64,
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
    pub plan: Option<LocalPlan>,
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
    pub outcome: Option<Outcome>,
    /// Every metric's series from `traffic_at` to the decision, on the
    /// query step grid (the last judged interval's when that fetch failed).
    pub series: Vec<MetricSetPair>,
    /// Unix seconds of the first point of `series`.
    pub series_start: f64,
    /// What loadgen counted.
    pub load: Option<loadgen::Report>,
    pub promotion: Option<Promotion>,
    /// Every goldengoose instance started, in the order they stopped.
    pub instances: Vec<Instance>,
    /// Prometheus queries retried after a transient failure.
    pub prometheus_retries: u64,
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
    pub plan: LocalPlan,
    pub analysis: AnalysisRun,
    /// Promote or roll back (also in `analysis.outcome`).
    pub decision: Decision,
    pub load: loadgen::Report,
    /// Timeline, series, promotion (and the same plan, intervals, load).
    pub record: ReleaseRecord,
}

/// Why a release ended without a verdict, or why its pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Prometheus(#[from] Box<prom::Error>),
    #[error(transparent)]
    Goose(#[from] goose::Error),
    #[error("loadgen: {0}")]
    Load(#[from] loadgen::Error),
    #[error("goldengoose {instance} did not become ready within {waited:?}: {why}")]
    NotReady {
        instance: String,
        waited: Duration,
        why: String,
    },
    #[error("interrupted during {step}: {detail}")]
    Interrupted { step: Step, detail: String },
    #[error(
        "promotion undone after {replaced} of {of} production instances were replaced, production serves the current version: {cause}"
    )]
    PromotionUndone {
        replaced: u32,
        of: u32,
        cause: Box<ReleaseError>,
    },
    #[error("cannot reserve a listener on 127.0.0.1: {0}")]
    Reserve(std::io::Error),
    #[error("a background task failed: {0}")]
    Task(String),
}

/// A release that stopped at `step`; `record` holds what it measured.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {error}")]
pub struct ReleaseFailure {
    pub step: Step,
    #[source]
    pub error: ReleaseError,
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
                ScrapeTarget::new("goldengoose", s.addr)
                    .with_label("track", s.track.label())
                    .with_label("slot", s.name.clone())
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
/// is reported before anything starts. Setting `cancel` (Ctrl-C) ends the
/// run with a [`ReleaseError::Interrupted`] (or, during the analysis,
/// [`AnalysisError::Cancelled`]) after cleaning up. Interrupt through
/// `cancel` rather than by dropping this future: the analysis runs on a
/// blocking thread that holds Prometheus until it sees the flag.
pub async fn run_release(
    scenario: &Scenario,
    options: &ReleaseOptions,
    cancel: Arc<AtomicBool>,
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

    let mut running = Running::default();
    let ctx = Context {
        scenario,
        plan: &plan,
        config: &config,
        options,
        cancel: &cancel,
        control: control_scope,
        experiment: experiment_scope,
    };
    let result = drive(&ctx, &mut running, &mut record).await;
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
        Ok(analysis) => match load {
            Some(load) => Ok(ReleaseOutcome {
                plan,
                decision: analysis.outcome.decision,
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

struct Context<'a> {
    scenario: &'a Scenario,
    plan: &'a LocalPlan,
    config: &'a judge::CanaryConfig,
    options: &'a ReleaseOptions,
    cancel: &'a Arc<AtomicBool>,
    control: ScopeVars,
    experiment: ScopeVars,
}

impl Context<'_> {
    fn interrupted(&self, step: Step) -> Result<(), (Step, ReleaseError)> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err((
                step,
                ReleaseError::Interrupted {
                    step,
                    detail: "nothing was judged; everything was stopped".into(),
                },
            ));
        }
        Ok(())
    }

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

async fn drive(
    ctx: &Context<'_>,
    running: &mut Running,
    record: &mut ReleaseRecord,
) -> Result<AnalysisRun, (Step, ReleaseError)> {
    let plan = ctx.plan;
    let watch = &ctx.options.watch;
    watch.set(Step::Deploy);
    let deploy = |e: ReleaseError| (Step::Deploy, e);

    // Every listener first, so loadgen knows every address up front.
    let mut add = |name: String, track: Track| -> Result<(), ReleaseError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(ReleaseError::Reserve)?;
        let addr = listener.local_addr().map_err(ReleaseError::Reserve)?;
        running.slots.push(Slot {
            name,
            track,
            addr,
            listener: Some(listener),
            goose: None,
            serving: false,
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
    for i in 0..plan.canary_replicas.max(1) {
        add(format!("canary-{i}"), Track::Canary).map_err(deploy)?;
    }
    for i in 0..production {
        add(format!("production-new-{i}"), Track::Next).map_err(deploy)?;
    }

    // Production runs already (in a real cluster it would); then baseline
    // and canary are deployed and must become ready.
    let deploy_started = record.started_at;
    for (i, slot) in running.slots.iter_mut().enumerate() {
        if slot.track == Track::Next {
            continue;
        }
        let config = instance_config(plan, slot.track, i as u64);
        start_slot(ctx, slot, config).await.map_err(deploy)?;
    }
    watch.set(Step::Prometheus);
    let prometheus = {
        let targets = running.scrape_targets();
        let binary = ctx.options.prometheus.clone();
        let root = ctx
            .options
            .temp_root
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let step = plan.step;
        let retry = ctx.options.prometheus_retry;
        tokio::task::spawn_blocking(move || {
            Prometheus::start_in(&root, binary.as_deref(), &targets, step)
                .map(|p| p.with_retry(retry))
        })
        .await
        .map_err(|e| (Step::Prometheus, ReleaseError::Task(e.to_string())))?
        .map_err(|e| (Step::Prometheus, ReleaseError::Prometheus(Box::new(e))))?
    };
    running.prometheus = Some(Arc::new(prometheus));
    watch.set(Step::Deploy);
    ctx.interrupted(Step::Deploy)?;
    for slot in running.slots.iter().filter(|s| s.goose.is_some()) {
        wait_ready(slot, ctx.min_ready(), ctx.ready_timeout(), ctx.cancel)
            .await
            .map_err(deploy)?;
    }
    for slot in running.slots.iter_mut() {
        slot.serving = slot.track != Track::Next;
    }

    // Traffic: one loadgen target per instance, the reserved ones at 0.
    watch.set(Step::Traffic);
    let first = plan.split_at(Duration::ZERO);
    let load_targets = running
        .weights(first)
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
        task: Some(tokio::spawn(loadgen::run(load_plan, control.clone()))),
    });
    let traffic_at = unix_now();
    record.traffic_at = Some(traffic_at);
    record.timeline.push(StageSpan {
        name: "deploy".into(),
        start: deploy_started,
        end: traffic_at,
    });

    // Later traffic steps, as a VirtualService would be updated.
    let steps: Vec<(Duration, Vec<(String, f64)>)> = plan
        .traffic
        .iter()
        .skip(1)
        .map(|(after, split)| (*after, running.weights(*split)))
        .collect();
    running.stepper = Some({
        let control = control.clone();
        tokio::spawn(async move {
            for (after, weights) in steps {
                let wait = (traffic_at + after.as_secs_f64() - unix_now()).max(0.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                let named: Vec<(&str, f64)> =
                    weights.iter().map(|(n, w)| (n.as_str(), *w)).collect();
                let _ = control.set_weights(&named);
            }
        })
    });

    watch.set(Step::Analysis);
    let analysis_plan = AnalysisPlan {
        schedule: plan.schedule,
        thresholds: plan.thresholds,
        step: plan.step,
        started_at: traffic_at,
        control: ctx.control.clone(),
        experiment: ctx.experiment.clone(),
        seed: ctx.options.seed,
    };
    let judged: Arc<Mutex<Vec<JudgedInterval>>> = Arc::default();
    let prometheus = running
        .prometheus
        .clone()
        .ok_or_else(|| (Step::Prometheus, ReleaseError::Task("prometheus".into())))?;
    let analysis = {
        let prometheus = prometheus.clone();
        let config = ctx.config.clone();
        let cancel = ctx.cancel.clone();
        let judged = judged.clone();
        tokio::task::spawn_blocking(move || {
            run_analysis_observed(
                // Ctrl-C also ends a wait between query retries at once.
                &prometheus.api().with_cancel(cancel.clone()),
                &config,
                &analysis_plan,
                &cancel,
                &mut |i| {
                    if let Ok(mut v) = judged.lock() {
                        v.push(i.clone());
                    }
                },
            )
        })
        .await
        .map_err(|e| (Step::Analysis, ReleaseError::Task(e.to_string())))?
    };
    if let Some(s) = running.stepper.take() {
        s.abort();
    }
    record.intervals = judged.lock().map(|v| v.clone()).unwrap_or_default();
    let analysis_end = unix_now();
    let warmup_end = traffic_at + plan.schedule.warmup.as_secs_f64();
    record.timeline.push(StageSpan {
        name: "warmup".into(),
        start: traffic_at,
        end: warmup_end.min(analysis_end),
    });
    if analysis_end > warmup_end {
        record.timeline.push(StageSpan {
            name: "analysis".into(),
            start: warmup_end,
            end: analysis_end,
        });
    }
    fetch_series(ctx, &prometheus, traffic_at, record).await;
    drop(prometheus);
    let analysis = analysis.map_err(|e| (Step::Analysis, e.into()))?;
    record.outcome = Some(analysis.outcome.clone());

    let last = plan
        .traffic
        .last()
        .map(|(_, s)| *s)
        .unwrap_or_else(|| plan.split_at(Duration::ZERO));
    let tail_start = unix_now();
    let step = match analysis.outcome.decision {
        Decision::Promote => Step::Promote,
        Decision::Rollback => Step::Rollback,
    };
    watch.set(step);
    let (name, result) = match analysis.outcome.decision {
        Decision::Promote => ("promote", promote(ctx, running, record, last).await),
        Decision::Rollback => ("rollback", rollback(running).await),
    };
    record.timeline.push(StageSpan {
        name: name.into(),
        start: tail_start,
        end: unix_now(),
    });
    result?;
    Ok(analysis)
}

/// The goldengoose config of instance `index` of `track`: the plan's, with
/// a seed of its own so replicas differ.
fn instance_config(plan: &LocalPlan, track: Track, index: u64) -> goldengoose::Config {
    let mut config = match track {
        Track::Production => plan.production.clone(),
        Track::Baseline => plan.baseline.clone(),
        Track::Canary | Track::Next => plan.canary.clone(),
    };
    config.version = track.label().to_string();
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
async fn wait_ready(
    slot: &Slot,
    min_up: Duration,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<(), ReleaseError> {
    let Some(goose) = &slot.goose else {
        return Err(ReleaseError::Task(format!("{} is not running", slot.name)));
    };
    let started = Instant::now();
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(ReleaseError::Interrupted {
                step: Step::Deploy,
                detail: format!("while waiting for {} to become ready", slot.name),
            });
        }
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
    let fetched = {
        let api = prometheus.api();
        let config = ctx.config.clone();
        let (control, experiment) = (ctx.control.clone(), ctx.experiment.clone());
        tokio::task::spawn_blocking(move || {
            fetch_pairs(&api, &config, &control, &experiment, start, end, step)
        })
        .await
    };
    match fetched {
        Ok(Ok(pairs)) => {
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
            if ctx.cancel.load(Ordering::SeqCst) {
                return Err(ReleaseError::Interrupted {
                    step: Step::Promote,
                    detail: "Ctrl-C".into(),
                });
            }
            let config = instance_config(ctx.plan, Track::Next, k as u64);
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
    // Production is the new version everywhere: all traffic to it, then
    // the old instances, the canary and the baseline go.
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
