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
//!
//! [`Command`]: release::Command

mod context;
mod driver;
mod error;
mod instance;
mod names;
mod options;
mod prometheus;
mod promote;
mod record;
mod running;
mod spec;

use std::sync::Arc;

use judge::Judge;
use judge::analysis::Analysis;
use release::kayenta::Kayenta;
use release::peer::{PeerRelease, PeerSpec};
use scenarios::Scenario;
use tokio::sync::watch;

pub use error::{ReleaseError, ReleaseFailure};
pub use options::{PeerAnalysis, ReleaseOptions, StepWatch};
pub use prometheus::measurement;
pub use record::{Instance, Measured, Promotion, ReleaseOutcome, ReleaseRecord, StageSpan, Step};

use crate::analysis::{AnalysisError, check_queries, unix_now};
use crate::plan::plan_release;
use crate::query::ScopeVars;
use crate::ranges::scale_config_ranges;
use context::Context;
use driver::drive;
use names::Names;
use running::Running;
use spec::{local_spec, peer_spec};

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
        production_spares: peer.as_ref().map_or(0, PeerSpec::production_starts),
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
