//! A canary release on a real cluster, through the Kubernetes API, driven
//! by the release controller ([`release::kayenta::Kayenta`], the same
//! sans-IO state machine `canarylab sim` and `canarylab local` run).
//!
//! Before the commit: production's Deployment, the Service, the
//! DestinationRule and a VirtualService with every request to production
//! are applied, and production's rollout is awaited. The driver then owns
//! only how the controller's [`Command`]s are carried out, controller time
//! being the plan's (already scaled) milliseconds since the commit on
//! `tokio`'s clock: `StartPods` applies the canary or baseline Deployment
//! and polls it until its rollout is complete (then one `PodReady` per
//! replica; the controller's deploy deadline is
//! [`RunOptions::deploy_timeout`]), and while it is not, lists its pods:
//! every new container restart (a crash: Kubernetes restarts the pod) is
//! one `PodCrashed`, and is reported ([`Crashes`], and in a rollout
//! timeout's message); once it is ready its pods are still listed every
//! [`RunOptions::crash_poll`] until the decision, and a restart is a
//! `PodCrashed` too (a pod that dies while serving); the first
//! `SetWeights` applies the loadgen Job, every one the VirtualService's
//! weights; `Judge` waits one query step past the window's end, fetches
//! it through a [`MetricsSource`] ([`PromApi`] in real use) and judges it with the Kayenta judge; `Measure` asks the same source;
//! `Promote` applies the promoted production Deployment and awaits its
//! rollout; `RollBack` and `Cleanup` move traffic back to production and
//! delete canary, baseline and the Job.
//!
//! An operator's input (promote now, abort, resume; [`OperatorInput`])
//! sent on the channel given to [`run_release`] is fed to the controller
//! as it comes, as `Event::Operator`: an abort during the analysis rolls
//! the release back, a promote promotes at once.
//!
//! Every request goes out from one task, in an order fixed by the
//! controller's commands, so the sequence is testable against a mock API
//! server.
//!
//! On an error or cancellation after the first object was sent: the
//! VirtualService goes back to 100% production (if it had been sent),
//! canary, baseline and the loadgen Job are deleted, and production is
//! left alone unless promotion had begun: then a cancellation leaves the
//! rollout to finish and an error re-applies the previous production
//! Deployment (undo). [`ProductionState`] says which.
//!
//! Not for: building the objects (see [`super::manifests`]) or `clean`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use judge::analysis::{Analysis, Window};
use judge::{CanaryConfig, Judge, MetricSetPair};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use release::kayenta::{Kayenta, KayentaSpec};
use release::{
    Command, Controller, Event, Measurement, Millis, OperatorInput, ReleaseEnd, RollingUpdate,
    Split, Track, ms, secs,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::manifests::{Manifests, all_production, istio_resource};
use crate::analysis::{
    AnalysisError, AnalysisRun, JudgedInterval, check_queries, fetch_pairs, unix_now,
};
use crate::cancel::{cancelled, is_cancelled};
use crate::local::run::measurement;
use crate::plan::{ReleasePlan, Split as PlanSplit};
use crate::prom::PromApi;
use crate::query::ScopeVars;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "canarylab";

/// What [`MetricsSource::fetch`] answers with.
pub type Fetching<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<MetricSetPair>, AnalysisError>> + Send + 'a>>;

/// What [`MetricsSource::measure`] answers with.
pub type Measuring<'a> = Pin<Box<dyn Future<Output = Measurement> + Send + 'a>>;

/// Where the judged windows' series come from: a Prometheus in real use;
/// tests give series of their own (the kube request sequence does not
/// depend on the numbers, the controller's steps do).
pub trait MetricsSource: Send + Sync + 'static {
    /// Every metric's control and experiment series for `[start, end]`
    /// (unix seconds) on the `step` grid.
    fn fetch<'a>(
        &'a self,
        config: &'a CanaryConfig,
        control: &'a ScopeVars,
        experiment: &'a ScopeVars,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Fetching<'a>;

    /// The answer to a [`Command::Measure`]: `promql` at unix time `at`,
    /// or over `range` (start, end, step). Without a Prometheus: an
    /// error.
    fn measure<'a>(
        &'a self,
        promql: &'a str,
        at: f64,
        range: Option<(f64, f64, Duration)>,
    ) -> Measuring<'a> {
        let _ = (promql, at, range);
        Box::pin(std::future::ready(Measurement::Error(
            "no Prometheus to measure with".into(),
        )))
    }
}

impl MetricsSource for PromApi {
    fn fetch<'a>(
        &'a self,
        config: &'a CanaryConfig,
        control: &'a ScopeVars,
        experiment: &'a ScopeVars,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Fetching<'a> {
        Box::pin(fetch_pairs(
            self, config, control, experiment, start, end, step,
        ))
    }

    fn measure<'a>(
        &'a self,
        promql: &'a str,
        at: f64,
        range: Option<(f64, f64, Duration)>,
    ) -> Measuring<'a> {
        Box::pin(async move {
            let data = match range {
                Some((start, end, step)) => self.query_range_data(promql, start, end, step).await,
                None => self.query_data(promql, at).await,
            };
            match data {
                Ok(data) => measurement(&data),
                Err(e) => Measurement::Error(e.to_string()),
            }
        })
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time between Deployment status polls.
    pub poll: Duration,
    /// How long a rollout may take (production's, before the release and
    /// on promotion).
    pub rollout_timeout: Duration,
    /// How long the canary and baseline have to roll out (the
    /// controller's deploy deadline; a miss rolls the release back).
    pub deploy_timeout: Duration,
    /// Seed of the judge's noise.
    pub seed: u64,
    /// Time between looks at the container restarts of the canary's and
    /// baseline's pods once they are ready (a crash while serving is an
    /// [`Event::PodCrashed`] too, and counted in [`KubeOutcome::crashes`]);
    /// `None`: not looked at after the rollout.
    pub crash_poll: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            poll: Duration::from_secs(2),
            rollout_timeout: Duration::from_secs(600),
            deploy_timeout: Duration::from_secs(600),
            seed: 1,
            crash_poll: Some(Duration::from_secs(10)),
        }
    }
}

/// What happened to production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductionState {
    /// Never changed.
    Untouched,
    /// Runs the new version, rollout complete.
    Promoted,
    /// Promotion was under way when the run was cancelled: the rollout to
    /// the new version goes on in the cluster.
    PromotionLeftRunning,
    /// Promotion failed: the previous production Deployment was applied
    /// again (its rollout back goes on in the cluster).
    PromotionUndone,
    /// Promotion failed and so did re-applying the previous version.
    UndoFailed(String),
}

impl std::fmt::Display for ProductionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProductionState::Untouched => write!(f, "production untouched"),
            ProductionState::Promoted => write!(f, "production promoted to the new version"),
            ProductionState::PromotionLeftRunning => write!(
                f,
                "promotion had begun: production's rollout to the new version was left to finish"
            ),
            ProductionState::PromotionUndone => write!(
                f,
                "promotion had begun and failed: the previous production Deployment was re-applied"
            ),
            ProductionState::UndoFailed(e) => write!(
                f,
                "promotion had begun and failed, and re-applying the previous production failed too: {e}"
            ),
        }
    }
}

/// What cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// The VirtualService was set to 100% production.
    pub traffic_to_production: bool,
    /// `Kind/name` of what was deleted (or already gone).
    pub deleted: Vec<String>,
    /// Requests that failed during cleanup.
    pub problems: Vec<String>,
}

/// A finished release.
#[derive(Debug)]
pub struct KubeOutcome {
    /// The canary analysis: its judged intervals and outcome.
    pub analysis: AnalysisRun,
    /// [`ReleaseEnd::Promote`] or [`ReleaseEnd::Rollback`].
    pub decision: ReleaseEnd,
    /// What happened to production.
    pub production: ProductionState,
    /// What was restored and deleted at the end.
    pub cleanup: Cleanup,
    /// The canary's and baseline's crashes seen while they rolled out
    /// and, with [`RunOptions::crash_poll`], after they were ready (one
    /// entry per Deployment that had any).
    pub crashes: Vec<Crashes>,
}

/// A Deployment's pods that crashed (their containers restarted) while it
/// rolled out or after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashes {
    /// The Deployment's name.
    pub deployment: String,
    /// Container restarts seen, over all its pods.
    pub restarts: u32,
    /// Why the last one went down, as Kubernetes says it
    /// (`CrashLoopBackOff`, `Error`, `OOMKilled`), if it said.
    pub reason: Option<String>,
}

impl std::fmt::Display for Crashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} restart{}",
            self.deployment,
            self.restarts,
            if self.restarts == 1 { "" } else { "s" }
        )?;
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

/// Why a release ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A Kubernetes API request failed.
    #[error("{action} {object}: {source}")]
    Api {
        /// What we asked: `apply`, `get`, `list`, `delete`, ...
        action: &'static str,
        /// The object asked about, as `Kind name`.
        object: String,
        /// The client's error.
        source: Box<kube::Error>,
    },
    /// A Deployment did not finish rolling out in time.
    #[error(
        "Deployment {name}: rollout not complete after {waited:?} (replicas {replicas}, updated {updated}, available {available}, generation {generation}, observed {observed}){}",
        crashes.as_ref().map(|c| format!("; its pods crashed: {c}")).unwrap_or_default()
    )]
    RolloutTimeout {
        /// The Deployment's name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// Desired replicas (`spec.replicas`).
        replicas: i32,
        /// Replicas of the new pod template (`status.updatedReplicas`).
        updated: i32,
        /// Replicas available (`status.availableReplicas`).
        available: i32,
        /// The spec's generation (`metadata.generation`).
        generation: i64,
        /// The generation the controller has seen
        /// (`status.observedGeneration`).
        observed: i64,
        /// Its pods' crashes, if any were seen.
        crashes: Option<Crashes>,
    },
    /// The canary analysis failed.
    #[error(transparent)]
    Analysis(AnalysisError),
    /// The cancel channel said `true` (Ctrl-C).
    #[error("the release was cancelled")]
    Cancelled,
    /// The analysis thread failed, or the deploy ended without a verdict.
    #[error("the analysis thread failed: {0}")]
    Task(String),
}

/// A release that ended without a verdict, and what was cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    /// Why the release stopped.
    pub error: KubeError,
    /// What happened to production.
    pub production: ProductionState,
    /// `None` when nothing had been sent to the cluster.
    pub cleanup: Option<Cleanup>,
}

/// The scopes the analysis queries: `${scope}` is the track (`baseline`
/// or `production` for the control, `canary` for the experiment);
/// `${namespace}` and `${location}` are the namespace.
pub fn scopes(plan: &ReleasePlan, namespace: &str) -> (ScopeVars, ScopeVars) {
    let scope = |s: &str| {
        ScopeVars::new(s)
            .with_location(namespace)
            .with_var("namespace", namespace)
    };
    (scope(&plan.control_scope), scope("canary"))
}

/// Runs the release. `true` on `cancel` (Ctrl-C) ends any wait at once;
/// the run then cleans up and fails with [`KubeError::Cancelled`] (a
/// channel whose sender is gone never cancels). `operator`: a
/// person's input, fed to the controller as it comes (`None`, or a
/// channel whose senders are gone: none).
#[allow(clippy::too_many_arguments)]
pub async fn run_release(
    client: Client,
    manifests: &Manifests,
    plan: &ReleasePlan,
    config: &CanaryConfig,
    metrics: Arc<dyn MetricsSource>,
    options: &RunOptions,
    cancel: watch::Receiver<bool>,
    operator: Option<UnboundedReceiver<OperatorInput>>,
) -> Result<KubeOutcome, RunFailure> {
    let (control, experiment) = scopes(plan, &manifests.namespace);
    // Bad input must not touch the cluster.
    if let Err(e) = check_queries(config, &control, &experiment) {
        return Err(RunFailure {
            error: KubeError::Analysis(e),
            production: ProductionState::Untouched,
            cleanup: None,
        });
    }
    let judge = match Judge::new(config) {
        Ok(j) => Arc::new(j),
        Err(e) => {
            return Err(RunFailure {
                error: KubeError::Analysis(AnalysisError::Config(e)),
                production: ProductionState::Untouched,
                cleanup: None,
            });
        }
    };
    if let Err(e) = Analysis::new(&plan.schedule, plan.thresholds) {
        return Err(RunFailure {
            error: KubeError::Analysis(AnalysisError::Schedule(e)),
            production: ProductionState::Untouched,
            cleanup: None,
        });
    }
    let spec = kube_spec(plan, options);
    let mut controller = Kayenta::new(&spec, false);
    let ctx = DriveContext {
        metrics,
        config: config.clone(),
        judge,
        queries: controller
            .queries()
            .iter()
            .map(|q| q.promql.clone())
            .collect(),
        control,
        experiment,
        step: plan.step,
        seed: options.seed,
    };
    let mut release = Release {
        client,
        m: manifests,
        options,
        cancel,
        sent_any: false,
        sent_vs: false,
        sent_loadgen: false,
        promoting: false,
        cleanup: None,
        operator,
        crashes: Vec::new(),
    };
    match release.drive(&mut controller, &ctx).await {
        Ok((analysis, decision, production)) => {
            let cleanup = release.finish_once().await;
            Ok(KubeOutcome {
                analysis,
                decision,
                production,
                cleanup,
                crashes: std::mem::take(&mut release.crashes),
            })
        }
        Err(error) => {
            if !release.sent_any {
                return Err(RunFailure {
                    error,
                    production: ProductionState::Untouched,
                    cleanup: None,
                });
            }
            let production = if release.promoting {
                if matches!(error, KubeError::Cancelled) {
                    ProductionState::PromotionLeftRunning
                } else {
                    match release.apply_deployment(&release.m.production).await {
                        Ok(()) => ProductionState::PromotionUndone,
                        Err(e) => ProductionState::UndoFailed(e.to_string()),
                    }
                }
            } else {
                ProductionState::Untouched
            };
            let cleanup = release.finish_once().await;
            Err(RunFailure {
                error,
                production,
                cleanup: Some(cleanup),
            })
        }
    }
}

struct Release<'a> {
    client: Client,
    m: &'a Manifests,
    options: &'a RunOptions,
    /// Ctrl-C: `true` once the release is to stop.
    cancel: watch::Receiver<bool>,
    sent_any: bool,
    sent_vs: bool,
    sent_loadgen: bool,
    promoting: bool,
    /// What the controller's rollback or cleanup did, once done.
    cleanup: Option<Cleanup>,
    /// A person's input, until its senders are gone.
    operator: Option<UnboundedReceiver<OperatorInput>>,
    /// Crashes seen, per Deployment, in the order first seen.
    crashes: Vec<Crashes>,
}

fn describe<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{} {}",
        K::kind(&()),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

impl Release<'_> {
    fn ns(&self) -> &str {
        &self.m.namespace
    }

    async fn apply<K>(
        &mut self,
        api: Api<K>,
        name: &str,
        object: &str,
        obj: &K,
    ) -> Result<(), KubeError>
    where
        K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    {
        self.sent_any = true;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &params, &Patch::Apply(obj))
            .await
            .map(|_| ())
            .map_err(|e| KubeError::Api {
                action: "apply",
                object: object.to_string(),
                source: Box::new(e),
            })
    }

    async fn apply_deployment(&mut self, d: &Deployment) -> Result<(), KubeError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns());
        let name = d.metadata.name.clone().unwrap_or_default();
        self.apply(api, &name, &describe(d), d).await
    }

    async fn apply_vs(&mut self, vs: &DynamicObject) -> Result<(), KubeError> {
        let ar = istio_resource("VirtualService");
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), self.ns(), &ar);
        let name = vs.metadata.name.clone().unwrap_or_default();
        self.sent_vs = true;
        self.apply(api, &name, &format!("VirtualService {name}"), vs)
            .await
    }

    /// Production, its Service, DestinationRule and a VirtualService with
    /// every request to production, then production's rollout: what runs
    /// before the commit.
    async fn prelude(&mut self) -> Result<(), KubeError> {
        let m = self.m;
        self.check_cancel()?;
        self.apply_deployment(&m.production).await?;
        {
            let api: Api<Service> = Api::namespaced(self.client.clone(), self.ns());
            self.apply(
                api,
                super::manifests::APP,
                &describe(&m.service),
                &m.service,
            )
            .await?;
        }
        {
            let ar = istio_resource("DestinationRule");
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), self.ns(), &ar);
            let name = m.destination_rule.metadata.name.clone().unwrap_or_default();
            self.apply(
                api,
                &name,
                &format!("DestinationRule {name}"),
                &m.destination_rule,
            )
            .await?;
        }
        // No traffic to the new pods before they are ready.
        self.apply_vs(&m.virtual_service(all_production())).await?;
        self.wait_rollout(&m.production).await
    }

    /// Runs `controller` to its end: the module docs' objects for its
    /// commands, controller time (milliseconds of the plan's scaled time)
    /// from the commit on `tokio`'s clock.
    async fn drive<C: Controller>(
        &mut self,
        controller: &mut C,
        ctx: &DriveContext,
    ) -> Result<(AnalysisRun, ReleaseEnd, ProductionState), KubeError> {
        self.prelude().await?;
        let mut d = Driver {
            t0: Instant::now(),
            t0_unix: unix_now(),
            now: 0,
            wakes: BinaryHeap::new(),
            immediate: VecDeque::new(),
            pending: Vec::new(),
            ready: Vec::new(),
            crash_look_at: None,
            traffic_at: None,
            tasks: JoinSet::new(),
            intervals: Vec::new(),
            production: ProductionState::Untouched,
        };
        controller.handle(0, Event::Start);
        let mut operator = self.operator.take();
        let outcome = loop {
            let mut done = None;
            while let Some(command) = controller.poll() {
                if let Command::Done(o) = command {
                    done = Some(o);
                    break;
                }
                self.execute(command, &mut d, ctx).await?;
            }
            if let Some(o) = done {
                break o;
            }
            if let Some(event) = d.immediate.pop_front() {
                controller.handle(d.now, event);
                continue;
            }
            let wake = d.wakes.peek().map(|Reverse(t)| d.real(*t));
            let crash_look = self.options.crash_poll.is_some() && !d.ready.is_empty();
            let poll = !d.pending.is_empty() || crash_look;
            let cancel = self.cancel.clone();
            tokio::select! {
                _ = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let mut due = d.now;
                    while let Some(&Reverse(t)) = d.wakes.peek() {
                        if d.real(t) > Instant::now() {
                            break;
                        }
                        d.wakes.pop();
                        due = due.max(t);
                    }
                    d.now = due;
                    controller.handle(due, Event::TimeReached);
                }
                input = async {
                    match operator.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => match input {
                    Some(input) => {
                        d.now = d.clock();
                        controller.handle(d.now, Event::Operator(input));
                    }
                    // Every sender is gone: no more input.
                    None => operator = None,
                },
                Some(answer) = d.tasks.join_next(), if !d.tasks.is_empty() => {
                    d.now = d.clock();
                    match answer {
                        Ok(Answer::Judged(interval)) => {
                            let (index, score) = (interval.window.index, interval.result.score.score);
                            d.intervals.push(*interval);
                            controller.handle(d.now, Event::Judged { index, score });
                        }
                        Ok(Answer::Measured { id, value }) => {
                            controller.handle(d.now, Event::Measured { id, value });
                        }
                        Ok(Answer::Failed(e)) => {
                            d.tasks.abort_all();
                            return Err(e);
                        }
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => return Err(KubeError::Task(e.to_string())),
                    }
                }
                () = cancelled(&cancel) => {
                    d.tasks.abort_all();
                    return Err(KubeError::Cancelled);
                }
                _ = tokio::time::sleep(self.options.poll.min(Duration::from_millis(100))), if poll => {
                    d.now = d.clock();
                    let mut events = self.look_at_rollouts(&mut d).await?;
                    events.extend(self.look_at_ready(&mut d).await?);
                    for event in events {
                        controller.handle(d.now, event);
                    }
                }
            }
        };
        d.tasks.abort_all();
        let scores = d.intervals.iter().map(|i| i.result.score.score).collect();
        let last_window_end = d.intervals.last().map(|i| i.window.end);
        let Some(verdict) = outcome.analysis(scores, last_window_end, 1.0) else {
            // Not promoted nor rolled back: no verdict.
            return Err(match outcome.end {
                ReleaseEnd::DeployFailed => d.pending.first().map_or_else(
                    || KubeError::Task(format!("the deploy failed: {}", outcome.reason)),
                    |p| p.timeout(secs(outcome.decided_at), &self.crashes),
                ),
                other => KubeError::Task(format!(
                    "the release ended with {other}: {}",
                    outcome.reason
                )),
            });
        };
        let analysis = AnalysisRun {
            outcome: verdict,
            intervals: d.intervals,
        };
        Ok((analysis, outcome.end, d.production))
    }

    /// Carries out one command (not [`Command::Done`]).
    async fn execute(
        &mut self,
        command: Command,
        d: &mut Driver,
        ctx: &DriveContext,
    ) -> Result<(), KubeError> {
        let m = self.m;
        match command {
            Command::WakeAt(t) => d.wakes.push(Reverse(t)),
            // The image exists: nothing to build.
            Command::Build => d.immediate.push_back(Event::BuildFinished { ok: true }),
            Command::StartPods { track, count } => {
                let deployment = match track {
                    Track::Canary => Some(&m.canary),
                    Track::Baseline => m.baseline.as_ref(),
                    // Production runs from before the commit (its pods
                    // are ready at once); only a peer's dynamicStableScale
                    // would start more, and this mode runs no peer.
                    Track::Production => None,
                };
                match deployment {
                    Some(dep) => {
                        self.apply_deployment(dep).await?;
                        d.pending.push(Pending {
                            track,
                            count,
                            name: dep.metadata.name.clone().unwrap_or_default(),
                            selector: label_selector(dep),
                            seen: None,
                            restarts: Vec::new(),
                        });
                    }
                    None => {
                        for _ in 0..count {
                            d.immediate.push_back(Event::PodReady { track });
                        }
                    }
                }
            }
            // Ignored: only a peer's controller stops pods (Argo's
            // setCanaryScale down, dynamicStableScale shrinking
            // production), and this mode runs only the Kayenta pipeline
            // (`kube run` has no `--analysis`; Argo and Flagger files run
            // in the simulator and the local mode), whose controller never
            // sends StopPods.
            Command::StopPods { .. } => {}
            Command::SetWeights(split) => {
                let split: PlanSplit = split.into();
                if d.traffic_at.is_none() {
                    let api: Api<Job> = Api::namespaced(self.client.clone(), self.ns());
                    self.sent_loadgen = true;
                    self.apply(
                        api,
                        super::manifests::LOADGEN_JOB,
                        &describe(&m.loadgen),
                        &m.loadgen,
                    )
                    .await?;
                    d.now = d.now.max(d.clock());
                    d.traffic_at = Some(d.now);
                }
                self.apply_vs(&m.virtual_service(split)).await?;
            }
            Command::Measure(request) => {
                let promql = ctx.queries.get(request.query).cloned().unwrap_or_default();
                let at = d.unix(request.at);
                let range = request.range.map(|r| {
                    (
                        d.unix(r.start),
                        d.unix(r.end),
                        Duration::from_millis(r.step),
                    )
                });
                let due = d.real(request.at) + ctx.step;
                let metrics = ctx.metrics.clone();
                d.tasks.spawn(async move {
                    tokio::time::sleep_until(due).await;
                    let id = request.id;
                    let value = metrics.measure(&promql, at, range).await;
                    Answer::Measured { id, value }
                });
            }
            Command::Judge(request) => {
                let w = request.window;
                let start = d.unix(request.origin + ms(w.start.as_secs_f64()));
                let end = d.unix(request.origin + ms(w.end.as_secs_f64()));
                let due = d.real(request.origin + ms(w.end.as_secs_f64())) + ctx.step;
                let (metrics, config, judge) =
                    (ctx.metrics.clone(), ctx.config.clone(), ctx.judge.clone());
                let (control, experiment) = (ctx.control.clone(), ctx.experiment.clone());
                let (step, seed) = (ctx.step, ctx.seed);
                d.tasks.spawn(async move {
                    tokio::time::sleep_until(due).await;
                    let judged = judge_window(
                        metrics.as_ref(),
                        &config,
                        &judge,
                        (&control, &experiment),
                        w,
                        (start, end, step),
                        seed,
                    )
                    .await;
                    match judged {
                        Ok(interval) => Answer::Judged(Box::new(interval)),
                        Err(e) => Answer::Failed(KubeError::Analysis(e)),
                    }
                });
            }
            Command::Promote(_) => {
                d.tasks.abort_all();
                d.ready.clear();
                self.check_cancel()?;
                self.promoting = true;
                self.apply_deployment(&m.promoted).await?;
                self.wait_rollout(&m.promoted).await?;
                d.production = ProductionState::Promoted;
                d.now = d.clock();
                d.immediate.push_back(Event::Promoted(Ok(())));
            }
            Command::RollBack | Command::Cleanup => {
                d.tasks.abort_all();
                d.ready.clear();
                let rollback = command == Command::RollBack;
                let mut cleanup = Cleanup::default();
                self.finish(&mut cleanup).await;
                self.cleanup = Some(cleanup);
                d.now = d.clock();
                d.immediate.push_back(if rollback {
                    Event::RolledBack
                } else {
                    Event::CleanedUp
                });
            }
            Command::Done(_) => {}
        }
        Ok(())
    }

    /// Looks at the Deployments started and not yet rolled out: one
    /// [`Event::PodReady`] per replica of each one whose rollout is
    /// complete; of the others, the pods: one [`Event::PodCrashed`] per
    /// container restart since the last look.
    async fn look_at_rollouts(&mut self, d: &mut Driver) -> Result<Vec<Event>, KubeError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns());
        let mut events = Vec::new();
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut d.pending) {
            let live = api.get(&p.name).await.map_err(|e| KubeError::Api {
                action: "get",
                object: format!("Deployment {}", p.name),
                source: Box::new(e),
            })?;
            let status = RolloutStatus::of(&live);
            if status.complete() {
                for _ in 0..p.count {
                    events.push(Event::PodReady { track: p.track });
                }
                if let Some(every) = self.options.crash_poll {
                    d.crash_look_at.get_or_insert(Instant::now() + every);
                    d.ready.push(p);
                }
            } else {
                p.seen = Some(status);
                let crashed = self.look_at_pods(&mut p).await?;
                for _ in 0..crashed {
                    events.push(Event::PodCrashed { track: p.track });
                }
                still.push(p);
            }
        }
        d.pending = still;
        Ok(events)
    }

    /// With [`RunOptions::crash_poll`], once it is due: one
    /// [`Event::PodCrashed`] per container restart since the last look at
    /// the pods of the Deployments that rolled out (a crash while
    /// serving).
    async fn look_at_ready(&mut self, d: &mut Driver) -> Result<Vec<Event>, KubeError> {
        let (Some(every), Some(at)) = (self.options.crash_poll, d.crash_look_at) else {
            return Ok(Vec::new());
        };
        if d.ready.is_empty() || Instant::now() < at {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        let mut ready = std::mem::take(&mut d.ready);
        for p in &mut ready {
            let crashed = self.look_at_pods(p).await?;
            for _ in 0..crashed {
                events.push(Event::PodCrashed { track: p.track });
            }
        }
        d.ready = ready;
        d.crash_look_at = Some(Instant::now() + every);
        Ok(events)
    }

    /// Lists the pods of `p`'s Deployment and counts the container
    /// restarts since the last look (a pod seen for the first time counts
    /// all of its own); records them in [`Self::crashes`].
    async fn look_at_pods(&mut self, p: &mut Pending) -> Result<u32, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), self.ns());
        let pods = api
            .list(&ListParams::default().labels(&p.selector))
            .await
            .map_err(|e| KubeError::Api {
                action: "list",
                object: format!("pods of Deployment {}", p.name),
                source: Box::new(e),
            })?;
        let mut crashed = 0;
        let mut reason = None;
        for pod in &pods.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let (restarts, why) = pod_restarts(pod);
            let before = match p.restarts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, seen)) => std::mem::replace(seen, restarts),
                None => {
                    p.restarts.push((name, restarts));
                    0
                }
            };
            if restarts > before {
                crashed += restarts - before;
                reason = why.or(reason);
            }
        }
        if crashed > 0 {
            let i = match self.crashes.iter().position(|c| c.deployment == p.name) {
                Some(i) => i,
                None => {
                    self.crashes.push(Crashes {
                        deployment: p.name.clone(),
                        restarts: 0,
                        reason: None,
                    });
                    self.crashes.len() - 1
                }
            };
            let entry = &mut self.crashes[i];
            entry.restarts += crashed;
            if reason.is_some() {
                entry.reason = reason;
            }
        }
        Ok(crashed)
    }

    fn check_cancel(&self) -> Result<(), KubeError> {
        if is_cancelled(&self.cancel) {
            Err(KubeError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Polls the Deployment until its rollout is complete (as `kubectl
    /// rollout status` decides: the controller has seen the latest spec,
    /// every replica is updated and available, no old ones are left).
    async fn wait_rollout(&self, d: &Deployment) -> Result<(), KubeError> {
        let name = d.metadata.name.clone().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns());
        let started = Instant::now();
        loop {
            self.check_cancel()?;
            let live = api.get(&name).await.map_err(|e| KubeError::Api {
                action: "get",
                object: format!("Deployment {name}"),
                source: Box::new(e),
            })?;
            let st = RolloutStatus::of(&live);
            if st.complete() {
                return Ok(());
            }
            if started.elapsed() >= self.options.rollout_timeout {
                return Err(KubeError::RolloutTimeout {
                    name,
                    waited: self.options.rollout_timeout,
                    replicas: st.want,
                    updated: st.updated,
                    available: st.available,
                    generation: st.generation,
                    observed: st.observed,
                    crashes: None,
                });
            }
            self.sleep_or_cancel(self.options.poll).await?;
        }
    }

    async fn sleep_or_cancel(&self, d: Duration) -> Result<(), KubeError> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = cancelled(&self.cancel) => Err(KubeError::Cancelled),
        }
    }

    /// The controller's cleanup, or [`Self::finish`] if it never ran.
    async fn finish_once(&mut self) -> Cleanup {
        if let Some(c) = self.cleanup.take() {
            return c;
        }
        let mut cleanup = Cleanup::default();
        self.finish(&mut cleanup).await;
        cleanup
    }

    /// Traffic back to production (if the VirtualService was sent), then
    /// canary, baseline and loadgen deleted. Never fails: problems are
    /// recorded.
    async fn finish(&mut self, cleanup: &mut Cleanup) {
        let m = self.m;
        if self.sent_vs {
            match self.apply_vs(&m.virtual_service(all_production())).await {
                Ok(()) => cleanup.traffic_to_production = true,
                Err(e) => cleanup.problems.push(e.to_string()),
            }
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns());
        let mut names = vec![m.canary.metadata.name.clone().unwrap_or_default()];
        if let Some(b) = &m.baseline {
            names.push(b.metadata.name.clone().unwrap_or_default());
        }
        for name in names {
            delete(&deployments, "Deployment", &name, cleanup).await;
        }
        if self.sent_loadgen {
            let jobs: Api<Job> = Api::namespaced(self.client.clone(), self.ns());
            delete(&jobs, "Job", super::manifests::LOADGEN_JOB, cleanup).await;
        }
    }
}

/// What the driver needs besides the cluster.
struct DriveContext {
    metrics: Arc<dyn MetricsSource>,
    config: CanaryConfig,
    judge: Arc<Judge>,
    control: ScopeVars,
    experiment: ScopeVars,
    /// The query step (the scrape step, scaled).
    step: Duration,
    seed: u64,
    /// The controller's queries' PromQL.
    queries: Vec<String>,
}

/// What the driver's background work answers with.
enum Answer {
    Judged(Box<JudgedInterval>),
    Measured {
        id: u64,
        value: Measurement,
    },
    /// A window could not be fetched or judged: the release stops.
    Failed(KubeError),
}

/// A Deployment started and not yet rolled out.
struct Pending {
    track: Track,
    count: u32,
    name: String,
    /// The label selector of its pods.
    selector: String,
    /// Its status at the last look.
    seen: Option<RolloutStatus>,
    /// Container restarts of each of its pods at the last look.
    restarts: Vec<(String, u32)>,
}

impl Pending {
    fn timeout(&self, waited_s: f64, crashes: &[Crashes]) -> KubeError {
        let s = self.seen.unwrap_or_default();
        KubeError::RolloutTimeout {
            name: self.name.clone(),
            waited: Duration::from_secs_f64(waited_s),
            replicas: s.want,
            updated: s.updated,
            available: s.available,
            generation: s.generation,
            observed: s.observed,
            crashes: crashes.iter().find(|c| c.deployment == self.name).cloned(),
        }
    }
}

/// `app=goldengoose,track=canary`: the selector of a Deployment's pods.
fn label_selector(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A pod's container restarts, and why its last restarted container went
/// down: waiting to restart (`CrashLoopBackOff`) or its last exit's
/// reason (`Error`, `OOMKilled`).
fn pod_restarts(pod: &Pod) -> (u32, Option<String>) {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let mut restarts = 0u32;
    let mut reason = None;
    for c in statuses {
        let n = u32::try_from(c.restart_count).unwrap_or(0);
        restarts = restarts.saturating_add(n);
        if n == 0 {
            continue;
        }
        let waiting = c
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone());
        let exited = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| match &t.reason {
                Some(r) => format!("{r}, exit code {}", t.exit_code),
                None => format!("exit code {}", t.exit_code),
            });
        reason = match (waiting, exited) {
            (Some(w), Some(e)) => Some(format!("{w}: {e}")),
            (w, e) => w.or(e).or(reason),
        };
    }
    (restarts, reason)
}

/// A Deployment's rollout, as `kubectl rollout status` reads it.
#[derive(Debug, Clone, Copy, Default)]
struct RolloutStatus {
    want: i32,
    generation: i64,
    observed: i64,
    updated: i32,
    available: i32,
    total: i32,
}

impl RolloutStatus {
    fn of(live: &Deployment) -> Self {
        let status = live.status.clone().unwrap_or_default();
        RolloutStatus {
            want: live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            generation: live.metadata.generation.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            total: status.replicas.unwrap_or(0),
        }
    }

    /// The controller has seen the latest spec, every replica is updated
    /// and available, no old ones are left.
    fn complete(&self) -> bool {
        self.observed >= self.generation
            && self.updated == self.want
            && self.available == self.want
            && self.total == self.want
    }
}

/// The driver's clock and what is under way.
struct Driver {
    /// `tokio` time of controller time 0 (the commit).
    t0: Instant,
    /// Unix seconds of controller time 0.
    t0_unix: f64,
    /// The last `now` fed to the controller.
    now: Millis,
    wakes: BinaryHeap<Reverse<Millis>>,
    /// Answers to feed at `now`, in order.
    immediate: VecDeque<Event>,
    pending: Vec<Pending>,
    /// Deployments rolled out whose pods are looked at for crashes.
    ready: Vec<Pending>,
    /// When the pods of `ready` are looked at next.
    crash_look_at: Option<Instant>,
    /// Controller time of the traffic shift.
    traffic_at: Option<Millis>,
    tasks: JoinSet<Answer>,
    intervals: Vec<JudgedInterval>,
    production: ProductionState,
}

impl Driver {
    /// `tokio` time of controller time `t`.
    fn real(&self, t: Millis) -> Instant {
        self.t0 + Duration::from_millis(t)
    }

    /// Unix seconds of controller time `t`, to the millisecond.
    fn unix(&self, t: Millis) -> f64 {
        ((self.t0_unix + secs(t)) * 1000.0).round() / 1000.0
    }

    /// Controller time now (never before the last `now`).
    fn clock(&self) -> Millis {
        ms(self.t0.elapsed().as_secs_f64()).max(self.now)
    }
}

/// Fetches one window's series and judges them; a window without a single
/// value is [`AnalysisError::NoData`].
async fn judge_window(
    metrics: &dyn MetricsSource,
    config: &CanaryConfig,
    judge: &Judge,
    (control, experiment): (&ScopeVars, &ScopeVars),
    window: Window,
    (start, end, step): (f64, f64, Duration),
    seed: u64,
) -> Result<JudgedInterval, AnalysisError> {
    let pairs = metrics
        .fetch(config, control, experiment, start, end, step)
        .await?;
    crate::analysis::judge_window(judge, config, control, window, (start, end), pairs, seed)
}

/// The Kayenta pipeline as the Kubernetes mode runs it, in the plan's
/// (scaled) time: no build, the plan's pods, the traffic shift once every
/// pod is ready, the plan's splits, production's rolling update left to
/// its Deployment.
pub fn kube_spec(plan: &ReleasePlan, options: &RunOptions) -> KayentaSpec {
    let split = |s: PlanSplit| Split {
        canary: s.canary,
        baseline: s.baseline,
        production: s.production,
    };
    KayentaSpec {
        build_after_s: None,
        deploy_timeout_s: options.deploy_timeout.as_secs_f64(),
        canary_pods: plan.canary_replicas.max(1),
        baseline_pods: plan.baseline_replicas,
        shift_delay_s: 0.0,
        traffic: split(plan.split_at(Duration::ZERO)),
        traffic_steps: plan
            .traffic
            .iter()
            .skip(1)
            .map(|(after, s)| (after.as_secs_f64(), split(*s)))
            .collect(),
        schedule: plan.schedule,
        thresholds: plan.thresholds,
        rolling_update: RollingUpdate {
            replicas: plan.production_replicas.max(1),
            max_surge: 1,
            max_unavailable: 0,
        },
    }
}

/// Deletes with background propagation (a Job's pods go too); an object
/// already gone counts as deleted.
pub(crate) async fn delete<K>(api: &Api<K>, kind: &str, name: &str, cleanup: &mut Cleanup)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => cleanup.deleted.push(format!("{kind}/{name}")),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            cleanup.deleted.push(format!("{kind}/{name}"))
        }
        Err(e) => cleanup.problems.push(format!("delete {kind}/{name}: {e}")),
    }
}
