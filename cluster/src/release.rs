//! A whole canary release on loopback, time-scaled (a first version of
//! `canarylab local`): production, baseline and canary goldengoose
//! in-process, a real Prometheus scraping them, loadgen moving traffic as
//! the scenario's splits say, and [`run_analysis`] deciding.
//!
//! Simplifications, for now: one goldengoose per track whatever the replica
//! counts; a promotion is recorded but production is not replaced (loadgen's
//! targets are fixed at start, so a rolling replacement needs a gateway); a
//! rollback moves all traffic back to production and stops the canary.
//! Every path, errors and cancellation included, stops the traffic, every
//! server and Prometheus, and removes the temporary directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use judge::analysis::Decision;
use loadgen::{Arrival, Control, RateProfile, Target, Targets};
use scenarios::Scenario;
use tokio::task::JoinHandle;

use crate::analysis::{
    AnalysisError, AnalysisPlan, AnalysisRun, check_queries, run_analysis, unix_now,
};
use crate::local::{self, Goose};
use crate::plan::{LocalPlan, PlanError, plan_release};
use crate::prom::{self, Prometheus, ScrapeTarget};
use crate::query::ScopeVars;

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
}

/// How a release ended.
#[derive(Debug)]
pub struct ReleaseOutcome {
    pub plan: LocalPlan,
    pub analysis: AnalysisRun,
    /// Promote or roll back (also in `analysis.outcome`).
    pub decision: Decision,
    pub load: loadgen::Report,
}

/// Why a release ended without a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    #[error(transparent)]
    Prometheus(#[from] Box<prom::Error>),
    #[error(transparent)]
    Goose(#[from] local::Error),
    #[error("loadgen: {0}")]
    Load(#[from] loadgen::Error),
    #[error("a background task failed: {0}")]
    Task(String),
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

/// Plays `scenario` at `options.time_scale`. Bad input (a config without
/// Prometheus queries, an unresolvable template, a time scale too small)
/// is reported before anything starts. Setting `cancel` (Ctrl-C) ends the
/// run with [`AnalysisError::Cancelled`] after cleaning up. Interrupt
/// through `cancel` rather than by dropping this future: the analysis runs
/// on a blocking thread that holds Prometheus until it sees the flag.
pub async fn run_release(
    scenario: &Scenario,
    options: &ReleaseOptions,
    cancel: Arc<AtomicBool>,
) -> Result<ReleaseOutcome, ReleaseError> {
    let plan = plan_release(scenario, options.time_scale, options.seed)?;
    let control_scope = ScopeVars::new(plan.control_scope.clone());
    let experiment_scope = ScopeVars::new("canary");
    check_queries(&scenario.config, &control_scope, &experiment_scope)?;

    let production = Goose::spawn(plan.production.clone()).await?;
    let baseline = match plan.baseline_replicas {
        0 => None,
        _ => Some(Goose::spawn(plan.baseline.clone()).await?),
    };
    let canary = Goose::spawn(plan.canary.clone()).await?;
    let gooses: Vec<&Goose> = [Some(&production), baseline.as_ref(), Some(&canary)]
        .into_iter()
        .flatten()
        .collect();

    let targets: Vec<ScrapeTarget> = gooses
        .iter()
        .map(|g| ScrapeTarget::new("goldengoose", g.addr()).with_label("track", g.track()))
        .collect();
    let binary = options.prometheus.clone();
    let root = options.temp_root.clone().unwrap_or_else(std::env::temp_dir);
    let step = plan.step;
    let prometheus = tokio::task::spawn_blocking(move || {
        Prometheus::start_in(&root, binary.as_deref(), &targets, step)
    })
    .await
    .map_err(|e| ReleaseError::Task(e.to_string()))?
    .map_err(Box::new)?;
    let prometheus = Arc::new(prometheus);

    let first = plan.split_at(Duration::ZERO);
    let load_targets = gooses
        .iter()
        .map(|g| {
            let weight = first
                .weights()
                .iter()
                .find(|(name, _)| *name == g.track())
                .map_or(0.0, |(_, w)| *w);
            Target::parse(&format!("{}=http://{}/@{weight}", g.track(), g.addr()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut load_plan = loadgen::Plan::new(
        Targets::Weighted(load_targets),
        Arrival::Constant(RateProfile::constant(plan.request_rate)),
    );
    let analysis_time = plan.schedule.warmup + plan.schedule.lifetime;
    // Generous: the analysis stops the load when it is done.
    load_plan.duration = Some(analysis_time * 2 + Duration::from_secs(30));
    load_plan.loopback_only = true;
    let control = Control::new();
    let load = Load {
        control: control.clone(),
        task: Some(tokio::spawn(loadgen::run(load_plan, control.clone()))),
    };
    let started_at = unix_now();

    // Later traffic steps, as a VirtualService would be updated.
    let has_baseline = baseline.is_some();
    let steps: Vec<_> = plan.traffic.iter().skip(1).copied().collect();
    let stepper = {
        let control = control.clone();
        tokio::spawn(async move {
            for (after, split) in steps {
                let wait = (started_at + after.as_secs_f64() - unix_now()).max(0.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                let weights: Vec<(&str, f64)> = split
                    .weights()
                    .into_iter()
                    .filter(|(name, _)| has_baseline || *name != "baseline")
                    .collect();
                let _ = control.set_weights(&weights);
            }
        })
    };

    let analysis_plan = AnalysisPlan {
        schedule: plan.schedule,
        thresholds: plan.thresholds,
        step: plan.step,
        started_at,
        control: control_scope,
        experiment: experiment_scope,
        seed: options.seed,
    };
    let analysis = {
        let prometheus = prometheus.clone();
        let config = scenario.config.clone();
        tokio::task::spawn_blocking(move || {
            run_analysis(&prometheus.api(), &config, &analysis_plan, &cancel)
        })
        .await
        .map_err(|e| ReleaseError::Task(e.to_string()))
    };
    stepper.abort();
    let analysis = analysis??;

    let decision = analysis.outcome.decision;
    if decision == Decision::Rollback {
        let mut weights = vec![("production", 100.0), ("canary", 0.0)];
        if has_baseline {
            weights.push(("baseline", 0.0));
        }
        let _ = control.set_weights(&weights);
    }
    let load = load.finish().await?;
    drop(prometheus);
    canary.stop().await;
    if let Some(b) = baseline {
        b.stop().await;
    }
    production.stop().await;
    Ok(ReleaseOutcome {
        plan,
        analysis,
        decision,
        load,
    })
}
