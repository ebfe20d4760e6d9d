//! The exact request sequence of `run_release` and `clean` against the
//! mock API server: a passing release, a failing one, errors mid-way and
//! Ctrl-C at several points.
//!
//! The release is the controller's (`release::kayenta::Kayenta`): its pods,
//! weights, windows and promotion or rollback become these requests. The
//! series of each judged window are injected ([`MetricsSource`]), so the
//! real Kayenta judge decides on numbers the test chooses (equal: pass;
//! ten times the control's: fail), on a shortened schedule (three 100 ms
//! windows). Fetching from a real Prometheus is tested in
//! `tests/prometheus`, with the same `fetch_pairs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::analysis::AnalysisError;
use cluster::kube::manifests::all_production;
use cluster::kube::{
    Crashes, KubeError, Manifests, MetricsSource, ProductionState, RenderOptions, RunOptions,
    clean, run_release,
};
use cluster::plan::{ReleasePlan, Split, plan_release};
use cluster::query::ScopeVars;
use judge::analysis::Schedule;
use judge::{CanaryConfig, MetricSetPair};
use release::{OperatorInput, ReleaseEnd};
use scenarios::Scenario;
use serde_json::Value;
use tokio::sync::watch;

use super::mock::{
    self, CONFIGMAPS, DEPLOYMENTS, DESTINATION_RULES, JOBS, Reply, SERVICES, VIRTUAL_SERVICES,
    apply, delete, get, list, pods,
};

fn catalog(name: &str) -> Scenario {
    let path = format!(
        "{}/../scenarios/catalog/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    Scenario::load(std::path::Path::new(&path), None).expect("catalog scenario loads")
}

struct Release {
    scenario: Scenario,
    plan: ReleasePlan,
    manifests: Manifests,
}

fn release(name: &str) -> Release {
    let scenario = catalog(name);
    let mut plan = plan_release(&scenario, 0.05, 1).expect("plans");
    // Three 100 ms windows, no warmup: the controller's analysis in
    // real time, short.
    plan.schedule = Schedule {
        lifetime: Duration::from_millis(300),
        interval: Some(Duration::from_millis(100)),
        warmup: Duration::ZERO,
        lookback: None,
    };
    plan.step = Duration::from_millis(20);
    let manifests = Manifests::new(
        &scenario.name,
        &plan,
        &RenderOptions::new("shop", "test-release"),
        None,
    )
    .expect("renders");
    Release {
        scenario,
        plan,
        manifests,
    }
}

/// A fetch: control scope, experiment scope, namespace, window start, end.
type Asked = (String, String, String, f64, f64);

/// The series the judged windows get, and what was asked.
#[derive(Default)]
struct Fake {
    /// Promote: the canary's series equal the control's; otherwise every
    /// canary value is ten times the control's.
    verdict: Option<ReleaseEnd>,
    /// Fail with NoData instead of series.
    no_data: bool,
    asked: Mutex<Vec<Asked>>,
}

impl MetricsSource for Fake {
    fn fetch<'a>(
        &'a self,
        config: &'a CanaryConfig,
        control: &'a ScopeVars,
        experiment: &'a ScopeVars,
        start: f64,
        end: f64,
        step: Duration,
    ) -> cluster::kube::run::Fetching<'a> {
        Box::pin(std::future::ready(
            self.fetched(config, control, experiment, start, end, step),
        ))
    }
}

impl Fake {
    fn fetched(
        &self,
        config: &CanaryConfig,
        control: &ScopeVars,
        experiment: &ScopeVars,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<MetricSetPair>, AnalysisError> {
        self.asked.lock().expect("lock").push((
            control.scope.clone(),
            experiment.scope.clone(),
            experiment
                .extra
                .get("namespace")
                .cloned()
                .unwrap_or_default(),
            start,
            end,
        ));
        if self.no_data {
            return Err(AnalysisError::NoData {
                interval: 0,
                start,
                end,
                query: "q".into(),
            });
        }
        let k = if self.verdict == Some(ReleaseEnd::Promote) {
            1.0
        } else {
            10.0
        };
        let times: Vec<f64> = (0..20).map(|i| start + i as f64 * 0.01).collect();
        let control: Vec<(f64, f64)> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, 1.0 + (i % 5) as f64 * 0.1))
            .collect();
        let canary: Vec<(f64, f64)> = control.iter().map(|&(t, v)| (t, v * k)).collect();
        Ok(config
            .metrics
            .iter()
            .map(|m| cluster::metric_set_pair(&m.name, &control, &canary, start, end, step))
            .collect())
    }
}

/// A cancel channel nobody will set: its sender is gone.
fn not_cancelled() -> watch::Receiver<bool> {
    watch::channel(false).1
}

fn options() -> RunOptions {
    RunOptions {
        poll: Duration::from_millis(10),
        rollout_timeout: Duration::from_secs(30),
        deploy_timeout: Duration::from_secs(30),
        seed: 1,
        // The scripts' request sequences do not look at pods after the
        // rollout; `a_pod_that_restarts_after_it_was_ready_is_a_crash` does.
        crash_poll: None,
    }
}

/// Production before the commit, then the controller's pods (canary,
/// then baseline), their rollouts and the traffic shift, up to the
/// analysis.
fn setup(first_split_cancels: Option<&Arc<watch::Sender<bool>>>) -> Vec<mock::Expect> {
    let mut shift = apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService");
    if let Some(flag) = first_split_cancels {
        shift = shift.then_cancel(flag);
    }
    vec![
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        apply(SERVICES, "goldengoose", "Service"),
        apply(DESTINATION_RULES, "goldengoose", "DestinationRule"),
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
        apply(DEPLOYMENTS, "goldengoose-canary", "Deployment"),
        apply(DEPLOYMENTS, "goldengoose-baseline", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-canary", Reply::RolledOut),
        get(DEPLOYMENTS, "goldengoose-baseline", Reply::RolledOut),
        apply(JOBS, "canarylab-loadgen", "Job"),
        shift,
    ]
}

fn teardown() -> Vec<mock::Expect> {
    vec![
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(DEPLOYMENTS, "goldengoose-baseline"),
        delete(JOBS, "canarylab-loadgen"),
    ]
}

/// `(subset, weight)` of an applied VirtualService body.
fn weights(body: &Value) -> Vec<(String, i64)> {
    body["spec"]["http"][0]["route"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| {
            (
                r["destination"]["subset"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn split_weights(split: Split) -> Vec<(String, i64)> {
    cluster::kube::manifests::integer_weights(split, true)
        .into_iter()
        .map(|(t, w)| (t.to_string(), w))
        .collect()
}

fn args(deployment: &Value) -> Vec<String> {
    serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone())
        .expect("args")
}

async fn run(
    r: &Release,
    client: kube::Client,
    fake: Arc<Fake>,
    options: &RunOptions,
    cancel: watch::Receiver<bool>,
) -> Result<cluster::kube::KubeOutcome, cluster::kube::RunFailure> {
    run_release(
        client,
        &r.manifests,
        &r.plan,
        &r.scenario.config,
        fake,
        options,
        cancel,
        None,
    )
    .await
}

#[tokio::test]
async fn passing_release_is_promoted_then_baseline_and_canary_deleted() {
    let r = release("latency-25pct");
    let mut script = setup(None);
    script.extend([
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
    ]);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Promote),
        ..Default::default()
    });
    let outcome = run(&r, client, fake.clone(), &options(), not_cancelled())
        .await
        .expect("release finishes");
    let seen = server.await.expect("verifier");
    assert_eq!(outcome.decision, ReleaseEnd::Promote);
    assert_eq!(outcome.production, ProductionState::Promoted);
    assert!(outcome.cleanup.traffic_to_production);
    assert_eq!(
        outcome.cleanup.deleted,
        [
            "Deployment/goldengoose-canary",
            "Deployment/goldengoose-baseline",
            "Job/canarylab-loadgen"
        ]
    );
    assert!(outcome.cleanup.problems.is_empty(), "{:?}", outcome.cleanup);

    // Traffic: nothing to the new pods before they are ready, then the
    // plan's first split, then all back to production.
    assert_eq!(weights(&seen[3].body), split_weights(all_production()));
    assert_eq!(
        weights(&seen[10].body),
        split_weights(r.plan.split_at(Duration::ZERO))
    );
    assert_eq!(weights(&seen[13].body), split_weights(all_production()));
    // Production before and after promotion: the canary's faults under
    // the production track.
    let before = args(&seen[0].body);
    let canary = args(&seen[5].body);
    let after = args(&seen[11].body);
    assert!(
        before.contains(&"--track=production".to_string()),
        "{before:?}"
    );
    assert_ne!(before, after);
    assert!(
        after.contains(&"--track=production".to_string()),
        "{after:?}"
    );
    let faults = |a: &[String]| -> Vec<String> {
        a.iter()
            .filter_map(|x| x.strip_prefix("--fault="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(faults(&after), faults(&canary));
    assert_ne!(faults(&before), faults(&canary));
    assert_eq!(
        seen[11].body["spec"]["selector"], seen[0].body["spec"]["selector"],
        "the selector is immutable"
    );
    // The controller judged every window of the schedule (Kayenta's
    // growing windows: one start, later ends), each comparing baseline
    // with canary in the namespace.
    let asked = fake.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    for a in &asked {
        assert_eq!(
            (a.0.as_str(), a.1.as_str(), a.2.as_str()),
            ("baseline", "canary", "shop")
        );
    }
    assert!(
        asked
            .windows(2)
            .all(|w| w[0].3 == w[1].3 && w[1].4 > w[0].4),
        "{asked:?}"
    );
    assert_eq!(outcome.analysis.intervals.len(), 3);
    assert!(
        outcome.analysis.outcome.scores.iter().all(|&x| x == 100.0),
        "{:?}",
        outcome.analysis.outcome
    );
}

#[tokio::test]
async fn failing_release_is_rolled_back_and_production_left_alone() {
    let r = release("latency-25pct");
    let mut script = setup(None);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Rollback),
        ..Default::default()
    });
    let outcome = run(&r, client, fake, &options(), not_cancelled())
        .await
        .expect("release finishes");
    let seen = server.await.expect("verifier");
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    assert_eq!(outcome.production, ProductionState::Untouched);
    assert_eq!(weights(&seen[11].body), split_weights(all_production()));
    // Production was applied once, at the start.
    let production_applies = seen
        .iter()
        .filter(|s| s.method == http::Method::PATCH && s.path.ends_with("goldengoose-production"))
        .count();
    assert_eq!(production_applies, 1);
}

#[tokio::test]
async fn release_without_baseline_compares_with_production() {
    let r = release("aa-vs-production");
    assert!(r.manifests.baseline.is_none());
    let script = vec![
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        apply(SERVICES, "goldengoose", "Service"),
        apply(DESTINATION_RULES, "goldengoose", "DestinationRule"),
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
        apply(DEPLOYMENTS, "goldengoose-canary", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-canary", Reply::RolledOut),
        apply(JOBS, "canarylab-loadgen", "Job"),
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(JOBS, "canarylab-loadgen"),
    ];
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Rollback),
        ..Default::default()
    });
    run(&r, client, fake.clone(), &options(), not_cancelled())
        .await
        .expect("release finishes");
    let seen = server.await.expect("verifier");
    let subsets: Vec<String> = seen[2].body["spec"]["subsets"]
        .as_array()
        .expect("subsets")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(subsets, ["production", "canary"]);
    assert_eq!(fake.asked.lock().expect("lock")[0].0, "production");
}

#[tokio::test]
async fn rollouts_are_polled_until_complete_and_crashes_counted() {
    let r = release("latency-25pct");
    let mut script = setup(None);
    // The canary needs two more polls, and each time it is not complete
    // its pods are looked at: the second time one has crashed twice. The
    // baseline is done at the first poll.
    script[7] = get(DEPLOYMENTS, "goldengoose-canary", Reply::Progressing);
    script.insert(
        8,
        pods("canary", vec![("canary-a", 0, None), ("canary-b", 0, None)]),
    );
    script.insert(
        10,
        get(DEPLOYMENTS, "goldengoose-canary", Reply::Progressing),
    );
    script.insert(
        11,
        pods(
            "canary",
            vec![
                ("canary-a", 0, None),
                ("canary-b", 2, Some("CrashLoopBackOff")),
            ],
        ),
    );
    script.insert(12, get(DEPLOYMENTS, "goldengoose-canary", Reply::RolledOut));
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Rollback),
        ..Default::default()
    });
    let outcome = run(&r, client, fake, &options(), not_cancelled())
        .await
        .expect("release finishes");
    server.await.expect("verifier");
    assert_eq!(
        outcome.crashes,
        [Crashes {
            deployment: "goldengoose-canary".into(),
            restarts: 2,
            reason: Some("CrashLoopBackOff: Error, exit code 1".into()),
        }]
    );
    assert_eq!(
        outcome.crashes[0].to_string(),
        "goldengoose-canary: 2 restarts (CrashLoopBackOff: Error, exit code 1)"
    );
}

/// A release whose first window ends long after the test: only the
/// operator decides it.
fn long_release() -> Release {
    let mut r = release("latency-25pct");
    r.plan.schedule.lifetime = Duration::from_secs(3600);
    r.plan.schedule.interval = Some(Duration::from_secs(1200));
    r
}

async fn operated(
    r: &Release,
    script: Vec<mock::Expect>,
    operator: tokio::sync::mpsc::UnboundedReceiver<OperatorInput>,
) -> (
    Result<cluster::kube::KubeOutcome, cluster::kube::RunFailure>,
    Vec<mock::Seen>,
) {
    let (client, server) = mock::server(script);
    let result = run_release(
        client,
        &r.manifests,
        &r.plan,
        &r.scenario.config,
        Arc::new(Fake::default()),
        &options(),
        not_cancelled(),
        Some(operator),
    )
    .await;
    (result, server.await.expect("verifier"))
}

#[tokio::test]
async fn operator_abort_during_the_analysis_rolls_back() {
    let r = long_release();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut script = setup(None);
    script[10] = script[10].clone().then_operator(&tx, OperatorInput::Abort);
    script.extend(teardown());
    let (result, seen) = operated(&r, script, rx).await;
    let outcome = result.expect("the release ends with a verdict");
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    assert_eq!(outcome.analysis.outcome.reason, "aborted by the operator");
    assert!(outcome.analysis.intervals.is_empty());
    assert_eq!(outcome.production, ProductionState::Untouched);
    assert_eq!(weights(&seen[11].body), split_weights(all_production()));
}

/// After the rollout the canary's and baseline's pods are listed every
/// `crash_poll`: a container restart then (a pod that died while serving)
/// is a crash too, counted with its reason. The operator's abort ends
/// the (long) release after the restart is seen.
#[tokio::test]
async fn a_pod_that_restarts_after_it_was_ready_is_a_crash() {
    let r = long_release();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut script = setup(None);
    script.extend([
        pods("canary", vec![("canary-a", 0, None)]),
        pods("baseline", vec![("baseline-a", 0, None)]),
        pods("canary", vec![("canary-a", 1, Some("CrashLoopBackOff"))])
            .then_operator(&tx, OperatorInput::Abort),
        pods("baseline", vec![("baseline-a", 0, None)]),
    ]);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let opts = RunOptions {
        crash_poll: Some(Duration::from_millis(20)),
        ..options()
    };
    let result = run_release(
        client,
        &r.manifests,
        &r.plan,
        &r.scenario.config,
        Arc::new(Fake::default()),
        &opts,
        not_cancelled(),
        Some(rx),
    )
    .await;
    server.await.expect("verifier");
    let outcome = result.expect("the release ends with a verdict");
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    assert_eq!(
        outcome.crashes,
        [Crashes {
            deployment: "goldengoose-canary".into(),
            restarts: 1,
            reason: Some("CrashLoopBackOff: Error, exit code 1".into()),
        }]
    );
}

#[tokio::test]
async fn operator_promote_during_the_analysis_promotes_at_once() {
    let r = long_release();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut script = setup(None);
    script[10] = script[10]
        .clone()
        .then_operator(&tx, OperatorInput::Promote);
    script.extend([
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
    ]);
    script.extend(teardown());
    let (result, _) = operated(&r, script, rx).await;
    let outcome = result.expect("the release ends with a verdict");
    assert_eq!(outcome.decision, ReleaseEnd::Promote);
    assert_eq!(outcome.analysis.outcome.reason, "promoted by the operator");
    assert_eq!(outcome.production, ProductionState::Promoted);
    assert!(outcome.analysis.intervals.is_empty());
}

#[tokio::test]
async fn operator_abort_during_the_deploy_rolls_back_before_any_traffic() {
    let r = long_release();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut script: Vec<_> = setup(None).into_iter().take(7).collect();
    script.extend([
        get(DEPLOYMENTS, "goldengoose-canary", Reply::Progressing)
            .then_operator(&tx, OperatorInput::Abort),
        pods("canary", vec![("canary-a", 0, None)]),
        get(DEPLOYMENTS, "goldengoose-baseline", Reply::RolledOut),
        // No traffic was sent: the VirtualService (all to production
        // since the prelude) is set again, the new pods deleted, no Job.
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(DEPLOYMENTS, "goldengoose-baseline"),
    ]);
    let (result, _) = operated(&r, script, rx).await;
    let outcome = result.expect("the release ends with a verdict");
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    assert_eq!(
        outcome.analysis.outcome.reason,
        "aborted by the operator before the analysis"
    );
    assert!(outcome.crashes.is_empty());
}

#[tokio::test]
async fn a_closed_operator_channel_changes_nothing() {
    let r = release("latency-25pct");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<OperatorInput>();
    drop(tx);
    let mut script = setup(None);
    script.extend([
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
    ]);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Promote),
        ..Default::default()
    });
    let outcome = run_release(
        client,
        &r.manifests,
        &r.plan,
        &r.scenario.config,
        fake,
        &options(),
        not_cancelled(),
        Some(rx),
    )
    .await
    .expect("release finishes");
    server.await.expect("verifier");
    // Every window judged, as without an operator.
    assert_eq!(outcome.decision, ReleaseEnd::Promote);
    assert_eq!(outcome.analysis.intervals.len(), 3);
}

#[tokio::test]
async fn traffic_steps_update_the_virtual_service_in_order() {
    let mut r = release("latency-25pct");
    let step = |p, b, c| Split {
        production: p,
        baseline: b,
        canary: c,
    };
    r.plan.traffic = vec![
        (Duration::ZERO, step(90.0, 5.0, 5.0)),
        (Duration::from_millis(200), step(50.0, 25.0, 25.0)),
        (Duration::from_millis(400), step(0.0, 50.0, 50.0)),
    ];
    // A passing analysis long enough for both steps.
    r.plan.schedule.lifetime = Duration::from_millis(600);
    let mut script = setup(None);
    script.extend([
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::RolledOut),
    ]);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Promote),
        ..Default::default()
    });
    run(&r, client, fake, &options(), not_cancelled())
        .await
        .expect("release finishes");
    let seen = server.await.expect("verifier");
    let vs: Vec<Vec<(String, i64)>> = seen
        .iter()
        .filter(|s| s.path.ends_with("virtualservices/goldengoose"))
        .map(|s| weights(&s.body))
        .collect();
    assert_eq!(
        vs,
        [
            split_weights(all_production()),
            split_weights(step(90.0, 5.0, 5.0)),
            split_weights(step(50.0, 25.0, 25.0)),
            split_weights(step(0.0, 50.0, 50.0)),
            split_weights(all_production()),
        ]
    );
}

#[tokio::test]
async fn deploy_deadline_missed_rolls_back_before_any_traffic() {
    let r = release("latency-25pct");
    let mut script: Vec<_> = setup(None).into_iter().take(7).collect();
    // The controller's deploy deadline (0 here) passes before the canary
    // and baseline are looked at: its rollback, no traffic, no loadgen.
    script.extend([
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(DEPLOYMENTS, "goldengoose-baseline"),
    ]);
    let (client, server) = mock::server(script);
    let opts = RunOptions {
        deploy_timeout: Duration::ZERO,
        ..options()
    };
    let failure = run(
        &r,
        client,
        Arc::new(Fake::default()),
        &opts,
        not_cancelled(),
    )
    .await
    .expect_err("the deploy times out");
    let seen = server.await.expect("verifier");
    assert!(
        matches!(&failure.error, KubeError::RolloutTimeout { name, .. } if name == "goldengoose-canary"),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::Untouched);
    assert_eq!(weights(&seen[7].body), split_weights(all_production()));
    let cleanup = failure.cleanup.expect("cleanup ran");
    assert!(cleanup.traffic_to_production);
}

#[tokio::test]
async fn api_error_mid_way_deletes_what_was_sent_and_keeps_production() {
    let r = release("latency-25pct");
    let mut script: Vec<_> = setup(None).into_iter().take(5).collect();
    script.extend([
        apply(DEPLOYMENTS, "goldengoose-canary", "Deployment").reply(Reply::Fail(500)),
        // Traffic stays on production; the canary was never stored (404
        // counts as gone), nor was the baseline.
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(DEPLOYMENTS, "goldengoose-baseline"),
    ]);
    let (client, server) = mock::server(script);
    let failure = run(
        &r,
        client,
        Arc::new(Fake::default()),
        &options(),
        not_cancelled(),
    )
    .await
    .expect_err("the apply fails");
    server.await.expect("verifier");
    assert!(
        matches!(&failure.error, KubeError::Api { action: "apply", object, .. } if object == "Deployment goldengoose-canary"),
        "{}",
        failure.error
    );
    assert!(
        failure.error.to_string().contains("injected failure"),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::Untouched);
    let cleanup = failure.cleanup.expect("cleanup ran");
    assert!(cleanup.traffic_to_production);
    assert_eq!(
        cleanup.deleted,
        [
            "Deployment/goldengoose-canary",
            "Deployment/goldengoose-baseline"
        ]
    );
}

#[tokio::test]
async fn analysis_error_moves_traffic_back_and_deletes_the_new_pods() {
    let r = release("latency-25pct");
    let mut script = setup(None);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        no_data: true,
        ..Default::default()
    });
    let failure = run(&r, client, fake, &options(), not_cancelled())
        .await
        .expect_err("no data");
    let seen = server.await.expect("verifier");
    assert!(
        matches!(
            failure.error,
            KubeError::Analysis(AnalysisError::NoData { .. })
        ),
        "{}",
        failure.error
    );
    let cleanup = failure.cleanup.expect("cleanup ran");
    assert!(cleanup.traffic_to_production);
    assert_eq!(weights(&seen[11].body), split_weights(all_production()));
    assert_eq!(failure.production, ProductionState::Untouched);
}

#[tokio::test]
async fn failed_promotion_rollout_is_undone() {
    let r = release("latency-25pct");
    let mut script = setup(None);
    script.extend([
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
        get(DEPLOYMENTS, "goldengoose-production", Reply::Progressing),
        // Undo: the previous production Deployment again.
        apply(DEPLOYMENTS, "goldengoose-production", "Deployment"),
    ]);
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Promote),
        ..Default::default()
    });
    let opts = RunOptions {
        rollout_timeout: Duration::ZERO,
        ..options()
    };
    let failure = run(&r, client, fake, &opts, not_cancelled())
        .await
        .expect_err("rollout times out");
    let seen = server.await.expect("verifier");
    assert!(
        matches!(&failure.error, KubeError::RolloutTimeout { name, .. } if name == "goldengoose-production"),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::PromotionUndone);
    assert_eq!(
        seen[13].body["spec"], seen[0].body["spec"],
        "undo re-applies the old spec"
    );
    assert!(failure.cleanup.expect("cleanup").traffic_to_production);
}

#[tokio::test]
async fn ctrl_c_during_analysis_moves_traffic_back_and_deletes() {
    let r = release("latency-25pct");
    let (cancel, cancelled) = watch::channel(false);
    let cancel = Arc::new(cancel);
    let mut script = setup(Some(&cancel));
    script.extend(teardown());
    let (client, server) = mock::server(script);
    // Would wait for ever without the flag.
    let fake = Arc::new(Fake::default());
    let failure = run(&r, client, fake, &options(), cancelled)
        .await
        .expect_err("cancelled");
    let seen = server.await.expect("verifier");
    assert!(
        matches!(failure.error, KubeError::Cancelled),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::Untouched);
    let cleanup = failure.cleanup.expect("cleanup ran");
    assert!(cleanup.traffic_to_production);
    assert_eq!(weights(&seen[11].body), split_weights(all_production()));
}

#[tokio::test]
async fn ctrl_c_while_waiting_for_a_rollout_cleans_up() {
    let r = release("latency-25pct");
    let (cancel, cancelled) = watch::channel(false);
    let cancel = Arc::new(cancel);
    let mut script: Vec<_> = setup(None).into_iter().take(4).collect();
    script
        .push(get(DEPLOYMENTS, "goldengoose-production", Reply::Progressing).then_cancel(&cancel));
    script.extend([
        apply(VIRTUAL_SERVICES, "goldengoose", "VirtualService"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        delete(DEPLOYMENTS, "goldengoose-baseline"),
    ]);
    let (client, server) = mock::server(script);
    let failure = run(&r, client, Arc::new(Fake::default()), &options(), cancelled)
        .await
        .expect_err("cancelled");
    server.await.expect("verifier");
    assert!(
        matches!(failure.error, KubeError::Cancelled),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::Untouched);
}

#[tokio::test]
async fn ctrl_c_during_promotion_leaves_the_rollout_to_finish() {
    let r = release("latency-25pct");
    let (cancel, cancelled) = watch::channel(false);
    let cancel = Arc::new(cancel);
    let mut script = setup(None);
    script.push(apply(DEPLOYMENTS, "goldengoose-production", "Deployment").then_cancel(&cancel));
    script.extend(teardown());
    let (client, server) = mock::server(script);
    let fake = Arc::new(Fake {
        verdict: Some(ReleaseEnd::Promote),
        ..Default::default()
    });
    let failure = run(&r, client, fake, &options(), cancelled)
        .await
        .expect_err("cancelled");
    server.await.expect("verifier");
    assert!(
        matches!(failure.error, KubeError::Cancelled),
        "{}",
        failure.error
    );
    assert_eq!(failure.production, ProductionState::PromotionLeftRunning);
    assert!(failure.cleanup.expect("cleanup").traffic_to_production);
}

#[tokio::test]
async fn bad_config_sends_nothing() {
    let r = release("latency-25pct");
    let config = CanaryConfig::from_json(
        r#"{"metrics":[{"name":"p50","query":{"type":"prometheus",
            "customInlineTemplate":"PromQL:up{a=\"${cluster}\"}"},
            "groups":["g"],"analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#,
    )
    .expect("config");
    let (client, server) = mock::server(Vec::new());
    let failure = run_release(
        client,
        &r.manifests,
        &r.plan,
        &config,
        Arc::new(Fake::default()),
        &options(),
        not_cancelled(),
        None,
    )
    .await
    .expect_err("unresolved variable");
    server.await.expect("verifier saw no request");
    assert!(failure.cleanup.is_none());
    assert!(
        failure.error.to_string().contains("${cluster}"),
        "{}",
        failure.error
    );
}

#[tokio::test]
async fn clean_deletes_every_labelled_object_routing_first() {
    let script = vec![
        list(VIRTUAL_SERVICES, vec!["goldengoose"]),
        delete(VIRTUAL_SERVICES, "goldengoose"),
        list(DESTINATION_RULES, vec!["goldengoose"]),
        delete(DESTINATION_RULES, "goldengoose"),
        list(JOBS, vec!["canarylab-loadgen"]),
        delete(JOBS, "canarylab-loadgen"),
        list(
            DEPLOYMENTS,
            vec!["goldengoose-production", "goldengoose-canary"],
        ),
        delete(DEPLOYMENTS, "goldengoose-production"),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        list(SERVICES, vec!["goldengoose"]),
        delete(SERVICES, "goldengoose"),
        list(CONFIGMAPS, vec![]),
    ];
    let (client, server) = mock::server(script);
    let cleanup = clean(client, "shop", None).await;
    let seen = server.await.expect("verifier");
    // Deleted objects were not in the mock's store: 404 counts as gone.
    assert_eq!(cleanup.deleted.len(), 6, "{cleanup:?}");
    assert!(cleanup.problems.is_empty(), "{cleanup:?}");
    // Jobs go with their pods.
    let job_delete = &seen[5];
    assert_eq!(job_delete.body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn clean_skips_kinds_the_cluster_does_not_serve() {
    let script = vec![
        list(VIRTUAL_SERVICES, vec![]).reply(Reply::Fail(404)),
        list(DESTINATION_RULES, vec![]).reply(Reply::Fail(404)),
        list(JOBS, vec![]),
        list(DEPLOYMENTS, vec!["goldengoose-canary"]),
        delete(DEPLOYMENTS, "goldengoose-canary"),
        list(SERVICES, vec![]),
        list(CONFIGMAPS, vec![]),
    ];
    let (client, server) = mock::server(script);
    let cleanup = clean(client, "shop", None).await;
    server.await.expect("verifier");
    assert_eq!(cleanup.deleted, ["Deployment/goldengoose-canary"]);
    assert_eq!(cleanup.problems.len(), 2, "{cleanup:?}");
    assert!(
        cleanup.problems[0].contains("VirtualService"),
        "{cleanup:?}"
    );
}
