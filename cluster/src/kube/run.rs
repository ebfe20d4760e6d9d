//! A canary release on a real cluster, through the Kubernetes API:
//! server-side apply of the [`Manifests`], waiting for the rollouts, the
//! VirtualService weights stepped as the plan says, the analysis
//! intervals judged from the cluster's Prometheus, then promotion or
//! rollback, and baseline and canary deleted.
//!
//! Every request goes out from one task, in a fixed order (traffic steps
//! included: they are applied between polls of the analysis), so the
//! sequence is testable against a mock API server. The analysis runs in
//! `spawn_blocking` through a [`MetricsSource`]: [`PromApi`] in real use.
//!
//! On an error or cancellation after the first object was sent: the
//! VirtualService goes back to 100% production (if it had been sent),
//! canary, baseline and the loadgen Job are deleted, and production is
//! left alone unless promotion had begun: then a cancellation leaves the
//! rollout to finish and an error re-applies the previous production
//! Deployment (undo). [`ProductionState`] says which.
//!
//! Not for: building the objects (see [`super::manifests`]) or `clean`.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use judge::CanaryConfig;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource};
use release::ReleaseEnd;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::manifests::{Manifests, all_production, istio_resource};
use crate::analysis::{
    AnalysisError, AnalysisPlan, AnalysisRun, check_queries, run_analysis, unix_now,
};
use crate::plan::LocalPlan;
use crate::prom::PromApi;
use crate::query::ScopeVars;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "canarylab";

/// Where the analysis reads its metrics: a Prometheus in real use; tests
/// may judge without one (the kube request sequence does not depend on
/// the numbers).
pub trait MetricsSource: Send + Sync + 'static {
    /// Runs the whole multi-interval analysis (blocking; checks `cancel`).
    fn analyze(
        &self,
        config: &CanaryConfig,
        plan: &AnalysisPlan,
        cancel: &AtomicBool,
    ) -> Result<AnalysisRun, AnalysisError>;
}

impl MetricsSource for PromApi {
    fn analyze(
        &self,
        config: &CanaryConfig,
        plan: &AnalysisPlan,
        cancel: &AtomicBool,
    ) -> Result<AnalysisRun, AnalysisError> {
        run_analysis(self, config, plan, cancel)
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time between Deployment status polls.
    pub poll: Duration,
    /// How long a rollout may take.
    pub rollout_timeout: Duration,
    /// Seed of the judge's noise.
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            poll: Duration::from_secs(2),
            rollout_timeout: Duration::from_secs(600),
            seed: 1,
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
    pub analysis: AnalysisRun,
    /// [`ReleaseEnd::Promote`] or [`ReleaseEnd::Rollback`].
    pub decision: ReleaseEnd,
    pub production: ProductionState,
    pub cleanup: Cleanup,
}

/// Why a release ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        source: Box<kube::Error>,
    },
    #[error(
        "Deployment {name}: rollout not complete after {waited:?} (replicas {replicas}, updated {updated}, available {available}, generation {generation}, observed {observed})"
    )]
    RolloutTimeout {
        name: String,
        waited: Duration,
        replicas: i32,
        updated: i32,
        available: i32,
        generation: i64,
        observed: i64,
    },
    #[error(transparent)]
    Analysis(AnalysisError),
    #[error("the release was cancelled")]
    Cancelled,
    #[error("the analysis thread failed: {0}")]
    Task(String),
}

/// A release that ended without a verdict, and what was cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    pub error: KubeError,
    pub production: ProductionState,
    /// `None` when nothing had been sent to the cluster.
    pub cleanup: Option<Cleanup>,
}

/// The scopes the analysis queries: `${scope}` is the track (`baseline`
/// or `production` for the control, `canary` for the experiment);
/// `${namespace}` and `${location}` are the namespace.
pub fn scopes(plan: &LocalPlan, namespace: &str) -> (ScopeVars, ScopeVars) {
    let scope = |s: &str| {
        ScopeVars::new(s)
            .with_location(namespace)
            .with_var("namespace", namespace)
    };
    (scope(&plan.control_scope), scope("canary"))
}

/// Runs the release. `cancel` (Ctrl-C) is checked while waiting; the run
/// then cleans up and fails with [`KubeError::Cancelled`].
pub async fn run_release(
    client: Client,
    manifests: &Manifests,
    plan: &LocalPlan,
    config: &CanaryConfig,
    metrics: Arc<dyn MetricsSource>,
    options: &RunOptions,
    cancel: Arc<AtomicBool>,
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
    let mut release = Release {
        client,
        m: manifests,
        options,
        cancel,
        sent_any: false,
        sent_vs: false,
        sent_loadgen: false,
        promoting: false,
    };
    let analysis_plan = AnalysisPlan {
        schedule: plan.schedule,
        thresholds: plan.thresholds,
        step: plan.step,
        started_at: 0.0,
        control,
        experiment,
        seed: options.seed,
    };
    match release.body(plan, config, metrics, analysis_plan).await {
        Ok((analysis, decision, production)) => {
            let mut cleanup = Cleanup::default();
            release.finish(&mut cleanup).await;
            Ok(KubeOutcome {
                analysis,
                decision,
                production,
                cleanup,
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
            let mut cleanup = Cleanup::default();
            release.finish(&mut cleanup).await;
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
    cancel: Arc<AtomicBool>,
    sent_any: bool,
    sent_vs: bool,
    sent_loadgen: bool,
    promoting: bool,
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

    async fn body(
        &mut self,
        plan: &LocalPlan,
        config: &CanaryConfig,
        metrics: Arc<dyn MetricsSource>,
        mut analysis_plan: AnalysisPlan,
    ) -> Result<(AnalysisRun, ReleaseEnd, ProductionState), KubeError> {
        let m = self.m;
        self.check_cancel()?;
        self.apply_deployment(&m.production).await?;
        if let Some(b) = &m.baseline {
            self.apply_deployment(b).await?;
        }
        self.apply_deployment(&m.canary).await?;
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
        self.wait_rollout(&m.production).await?;
        if let Some(b) = &m.baseline {
            self.wait_rollout(b).await?;
        }
        self.wait_rollout(&m.canary).await?;

        {
            let api: Api<Job> = Api::namespaced(self.client.clone(), self.ns());
            self.sent_loadgen = true;
            self.apply(
                api,
                super::manifests::LOADGEN_JOB,
                &describe(&m.loadgen),
                &m.loadgen,
            )
            .await?;
        }
        self.apply_vs(&m.virtual_service(plan.split_at(Duration::ZERO)))
            .await?;
        let started = Instant::now();
        analysis_plan.started_at = unix_now();

        let stop = Arc::new(AtomicBool::new(false));
        let mut analysis = {
            let stop = stop.clone();
            let config = config.clone();
            tokio::task::spawn_blocking(move || metrics.analyze(&config, &analysis_plan, &stop))
        };
        let mut steps = plan.traffic.iter().skip(1).copied().peekable();
        let result = loop {
            let tick = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                r = &mut analysis => break r,
                _ = tick => {}
            }
            if self.cancel.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            if let Some((after, split)) = steps.peek().copied()
                && started.elapsed() >= after
                && !stop.load(Ordering::Relaxed)
            {
                steps.next();
                if let Err(e) = self.apply_vs(&m.virtual_service(split)).await {
                    stop.store(true, Ordering::Relaxed);
                    let _ = analysis.await;
                    return Err(e);
                }
            }
        };
        let analysis = match result {
            Ok(Ok(run)) => run,
            Ok(Err(AnalysisError::Cancelled)) => return Err(KubeError::Cancelled),
            Ok(Err(e)) => return Err(KubeError::Analysis(e)),
            Err(e) => return Err(KubeError::Task(e.to_string())),
        };
        let decision = match analysis.outcome.decision {
            judge::analysis::Decision::Promote => ReleaseEnd::Promote,
            judge::analysis::Decision::Rollback => ReleaseEnd::Rollback,
        };
        let production = match decision {
            ReleaseEnd::Promote => {
                self.check_cancel()?;
                self.promoting = true;
                self.apply_deployment(&m.promoted).await?;
                self.wait_rollout(&m.promoted).await?;
                ProductionState::Promoted
            }
            _ => ProductionState::Untouched,
        };
        Ok((analysis, decision, production))
    }

    fn check_cancel(&self) -> Result<(), KubeError> {
        if self.cancel.load(Ordering::Relaxed) {
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
            let want = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let generation = live.metadata.generation.unwrap_or(0);
            let status = live.status.clone().unwrap_or_default();
            let observed = status.observed_generation.unwrap_or(0);
            let updated = status.updated_replicas.unwrap_or(0);
            let available = status.available_replicas.unwrap_or(0);
            let total = status.replicas.unwrap_or(0);
            if observed >= generation && updated == want && available == want && total == want {
                return Ok(());
            }
            if started.elapsed() >= self.options.rollout_timeout {
                return Err(KubeError::RolloutTimeout {
                    name,
                    waited: self.options.rollout_timeout,
                    replicas: want,
                    updated,
                    available,
                    generation,
                    observed,
                });
            }
            self.sleep_or_cancel(self.options.poll).await?;
        }
    }

    async fn sleep_or_cancel(&self, d: Duration) -> Result<(), KubeError> {
        let until = Instant::now() + d;
        loop {
            self.check_cancel()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
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
