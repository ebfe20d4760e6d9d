//! Argo Rollouts and Flagger files released for real (`canarylab local
//! --analysis FILE`): the peer's rules step the traffic and measure on the
//! real Prometheus, through goldengoose's Istio families and the pods'
//! labels Prometheus adds. The analyses (`fixtures/`) compare the canary's
//! mean latency with production's; their comments give the chance of a
//! wrong verdict (under 2e-4 for each test). In the simulator (1,000 runs,
//! seed 1) the same files roll back every latency-25pct release and 1
//! (Argo) and 2 (Flagger) of 1,000 aa-typical ones: the simulator's fresh
//! canary starts up to 5% slower (`service.fresh_pod`), which the local
//! mode does not reproduce.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cluster::results::{self, ReleaseEnd};
use cluster::{
    PeerAnalysis, ReleaseError, ReleaseFailure, ReleaseOptions, ReleaseOutcome, Step, run_release,
};
use release::Measurement;
use scenarios::Scenario;
use scenarios::telemetry::TelemetryTrack;

use crate::TempRoot;

/// 15 scenario minutes in 45 s; a scrape every 0.5 s.
const TIME_SCALE: f64 = 0.05;

/// The comparisons' threshold in both fixtures.
const THRESHOLD: f64 = 1.10;

fn catalog(name: &str) -> Scenario {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "scenarios", "catalog", name]
        .iter()
        .collect();
    let mut s = Scenario::load(&path, None).expect("catalog scenario loads");
    // Lean on the shared test machine: no CPU burn (at the catalog's 200
    // requests/s, the rate the fixtures' numbers assume).
    s.file.service.cpu_ms_per_request = 0.0;
    assert_eq!(s.file.service.request_rate, 200.0);
    s
}

fn fixture(name: &str) -> PeerAnalysis {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "local",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).expect("fixture reads");
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    PeerAnalysis::from_yaml(stem, &path.display().to_string(), &text).expect("fixture loads")
}

async fn release(
    scenario: &Scenario,
    analysis: &str,
    root: &TempRoot,
) -> Result<ReleaseOutcome, ReleaseFailure> {
    let mut opts = ReleaseOptions::new(TIME_SCALE, crate::goldengoose());
    opts.peer = Some(fixture(analysis));
    opts.temp_root = Some(root.0.clone());
    run_release(scenario, &opts, crate::not_cancelled()).await
}

/// Every measurement's value: one series each (the labels selected the
/// pods), a finite ratio.
fn ratios(out: &ReleaseOutcome) -> Vec<f64> {
    out.record
        .measurements
        .iter()
        .map(|m| match &m.value {
            Measurement::Vector(v) if v.len() == 1 && v[0].is_finite() => v[0],
            other => panic!("{} at {} s: {other:?}", m.query, m.scenario_s),
        })
        .collect()
}

/// Scenario seconds from the traffic shift to the decision.
fn decided_s(out: &ReleaseOutcome) -> f64 {
    out.analysis.outcome.decided_at.as_secs_f64() / TIME_SCALE
}

/// The decision came when the peer's rules say, plus the wait for the
/// measurement's last scrape (one step, 10 scenario s) and the query.
fn assert_decided_near(out: &ReleaseOutcome, expected_s: f64) {
    let d = decided_s(out);
    assert!(
        d >= expected_s - 1.0 && d <= expected_s + 60.0,
        "decided {d} s after the shift, the rules say {expected_s} s"
    );
}

fn report(out: &ReleaseOutcome) -> String {
    let lines: Vec<String> = out
        .record
        .measurements
        .iter()
        .map(|m| {
            format!(
                "{} at {:.0} s: {}",
                m.query,
                m.scenario_s,
                results::measurement_text(&m.value)
            )
        })
        .collect();
    format!("{:?}: {}", out.decision, lines.join("; "))
}

pub(crate) async fn argo_rolls_back_the_latency_regression() {
    let scenario = catalog("latency-25pct.toml");
    let root = TempRoot::new("argo-latency");
    let result = release(&scenario, "argo-latency-vs-stable.yaml", &root).await;
    assert!(root.is_empty(), "Prometheus's directory removed");
    let out = result.as_ref().expect("release runs");
    eprintln!("{}", report(out));
    assert_eq!(out.decision, ReleaseEnd::Rollback, "{}", report(out));
    // Measured at 300 s and 600 s (initialDelay 5m, interval 5m); the 2nd
    // failure is more than failureLimit 1.
    let r = ratios(out);
    assert_eq!(r.len(), 2, "{}", report(out));
    assert!(r.iter().all(|&x| x > THRESHOLD), "{}", report(out));
    assert_decided_near(out, 600.0);
    // The queries selected the pods by the hashes the simulator's series
    // carry: podTemplateHashValue resolved to the scenario's telemetry.
    let t = &scenario.file.telemetry;
    let promql = &out.record.measurements[0].promql;
    for track in [TelemetryTrack::Canary, TelemetryTrack::Production] {
        let hash = t.track(track).pod_template_hash;
        assert!(
            promql.contains(&format!("rollouts_pod_template_hash=\"{hash}\"")),
            "{promql}"
        );
    }
    assert!(promql.contains("[15000ms]"), "[5m] scaled: {promql}");
    assert!(
        out.analysis.intervals.is_empty(),
        "Argo's prometheus provider judges nothing"
    );
    assert_eq!(out.record.promotion, None);
    // The report shows what was measured.
    let study = results::study(&scenario, &result, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Rollback);
    assert!(run.reason.contains("failureLimit"), "{}", run.reason);
    assert_eq!(run.series.len(), 1);
    assert_eq!(run.series[0].name, "mean-latency-ratio");
    assert_eq!(run.series[0].experiment.len(), 2);
}

pub(crate) async fn argo_promotes_an_aa_release() {
    let scenario = catalog("aa-typical.toml");
    let root = TempRoot::new("argo-aa");
    let result = release(&scenario, "argo-latency-vs-stable.yaml", &root).await;
    let out = result.as_ref().expect("release runs");
    eprintln!("{}", report(out));
    assert_eq!(out.decision, ReleaseEnd::Promote, "{}", report(out));
    // The rollout completes when its last step (pause 15m) ends; at most
    // one measurement may have failed (failureLimit 1).
    let r = ratios(out);
    assert!(r.len() >= 2, "{}", report(out));
    assert!(
        r.iter().filter(|&&x| x >= THRESHOLD).count() <= 1,
        "{}",
        report(out)
    );
    assert_decided_near(out, 900.0);
    let n = out.plan.production_replicas;
    let promotion = out.record.promotion.expect("promoted");
    assert_eq!(
        (promotion.replaced, promotion.of, promotion.undone),
        (n, n, false)
    );
    // Argo's weights: 50% from the shift on.
    let first = out.load.weight_changes.first().expect("weights set");
    let canary: f64 = first
        .weights
        .iter()
        .filter(|(name, _)| name.starts_with("canary-"))
        .map(|(_, w)| w)
        .sum();
    assert!((canary - 50.0).abs() < 1e-9, "{first:?}");
}

pub(crate) async fn flagger_rolls_back_the_latency_regression() {
    let scenario = catalog("latency-25pct.toml");
    let root = TempRoot::new("flagger-latency");
    let result = release(&scenario, "flagger-latency-vs-primary.yaml", &root).await;
    let out = result.as_ref().expect("release runs");
    eprintln!("{}", report(out));
    assert_eq!(out.decision, ReleaseEnd::Rollback, "{}", report(out));
    // Ticks every 5 minutes: the first steps the weight, the next two fail
    // their check, the one after rolls back (interval * (threshold + 1)).
    let r = ratios(out);
    assert_eq!(r.len(), 2, "{}", report(out));
    assert!(r.iter().all(|&x| x > THRESHOLD), "{}", report(out));
    assert_decided_near(out, 900.0);
    // Istio's destination_workload of the canary and the primary.
    let promql = &out.record.measurements[0].promql;
    assert!(
        promql.contains("destination_workload=\"goldengoose\"")
            && promql.contains("destination_workload=\"goldengoose-primary\""),
        "{promql}"
    );
    assert_eq!(out.record.promotion, None);
}

pub(crate) async fn flagger_promotes_an_aa_release() {
    let scenario = catalog("aa-typical.toml");
    let root = TempRoot::new("flagger-aa");
    let result = release(&scenario, "flagger-latency-vs-primary.yaml", &root).await;
    let out = result.as_ref().expect("release runs");
    eprintln!("{}", report(out));
    assert_eq!(out.decision, ReleaseEnd::Promote, "{}", report(out));
    // 25%, then 50% after a passing check, promotion on the tick after
    // maxWeight: interval * maxWeight / stepWeight = 10 minutes.
    let r = ratios(out);
    assert!(!r.is_empty(), "{}", report(out));
    assert!(
        r.iter().filter(|&&x| x >= THRESHOLD).count() < 2,
        "{}",
        report(out)
    );
    assert_decided_near(out, 600.0);
    let weights: Vec<f64> = out
        .load
        .weight_changes
        .iter()
        .map(|c| {
            c.weights
                .iter()
                .filter(|(name, _)| name.starts_with("canary-"))
                .map(|(_, w)| w)
                .sum()
        })
        .collect();
    assert!(
        weights.starts_with(&[25.0, 50.0]),
        "Flagger's steps: {weights:?}"
    );
    let promotion = out.record.promotion.expect("promoted");
    assert!(!promotion.undone && promotion.replaced == promotion.of);
}

pub(crate) async fn renamed_series_are_refused_before_anything_starts() {
    let mut scenario = catalog("aa-typical.toml");
    scenario
        .file
        .telemetry
        .metrics
        .insert("istio_requests_total".into(), "shop_requests_total".into());
    let mut opts = ReleaseOptions::new(TIME_SCALE, crate::goldengoose());
    opts.peer = Some(fixture("flagger-latency-vs-primary.yaml"));
    // Were anything started, this would fail with BinaryNotFound instead.
    opts.prometheus = Some(Path::new("/nonexistent/prometheus").to_path_buf());
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    let err = result.expect_err("refused");
    assert_eq!(err.step, Step::Plan);
    assert!(
        matches!(&err.error, ReleaseError::Telemetry { field, .. } if field == "telemetry.metrics.istio_requests_total"),
        "{err}"
    );
    assert!(err.to_string().contains("shop_requests_total"), "{err}");
}

/// `canarylab local` driven in-process; the exit status and stdout.
fn cli(args: &[&str]) -> Result<(canarylab::Exit, String), String> {
    use clap::Parser;
    let cli =
        canarylab::Cli::try_parse_from(std::iter::once("canarylab").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let exit = canarylab::run(cli, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok((exit, String::from_utf8(out).expect("utf-8 output")))
}

/// The catalog's A/A scenario, lean (see [`catalog`]), as a file.
fn lean_aa_file(dir: &TempRoot) -> PathBuf {
    let config: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "scenarios",
        "catalog",
        "canary-config.json",
    ]
    .iter()
    .collect();
    let path = dir.0.join("aa-lean.toml");
    std::fs::write(
        &path,
        format!(
            "description = \"A/A, lean\"\nexpect = \"pass\"\n[service]\nrequest_rate = 200.0\ncpu_ms_per_request = 0.0\n[analysis]\nconfig = {:?}\n",
            config.display().to_string()
        ),
    )
    .expect("scenario writes");
    path
}

pub(crate) fn cli_refuses_a_bad_analysis_file_naming_it() {
    let dir = TempRoot::new("peer-cli-bad");
    let scenario = lean_aa_file(&dir);
    let bad = dir.0.join("rollout.yaml");
    std::fs::write(
        &bad,
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: a}\nspec:\n  strategy:\n    canary:\n      steps:\n      - pause: {}\n",
    )
    .expect("writes");
    let scenario = scenario.display().to_string();
    let bad = bad.display().to_string();
    let args = [
        "local",
        scenario.as_str(),
        "--analysis",
        bad.as_str(),
        "--prometheus",
        "/nonexistent/prometheus",
    ];
    let err = cli(&args).expect_err("an indefinite pause is refused");
    assert!(
        err.contains("rollout.yaml") && err.contains("pause"),
        "{err}"
    );
    let err = cli(&[
        "local",
        scenario.as_str(),
        "--analysis",
        bad.as_str(),
        "--config",
        "x.json",
    ])
    .expect_err("one analysis");
    assert!(
        err.contains("--config") && err.contains("--analysis"),
        "{err}"
    );
}

pub(crate) fn cli_releases_by_a_flagger_file_and_names_the_results() {
    let dir = TempRoot::new("peer-cli");
    let scenario = lean_aa_file(&dir).display().to_string();
    let analysis: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "local",
        "fixtures",
        "flagger-latency-vs-primary.yaml",
    ]
    .iter()
    .collect();
    let analysis = analysis.display().to_string();
    let out_dir = dir.0.join("out");
    let out_dir_s = out_dir.display().to_string();
    // A real process: `canarylab goldengoose` is this binary's subcommand.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_canarylab"))
        .args([
            "local",
            scenario.as_str(),
            "--analysis",
            analysis.as_str(),
            "--time-scale",
            "0.05",
            "--out",
            out_dir_s.as_str(),
        ])
        .output()
        .expect("canarylab runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("promote"), "{stdout}");
    assert!(
        stdout.contains("measured mean-latency-vs-primary at 300 s: ["),
        "{stdout}"
    );
    let study = reports::read_study(&out_dir.join("results.json")).expect("results");
    let s = &study.scenarios[0];
    assert_eq!(s.analysis.as_deref(), Some("flagger-latency-vs-primary"));
    assert_eq!(s.verdicts.promoted, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.label(), "aa-lean [flagger-latency-vs-primary]");
    assert_eq!(run.series[0].name, "mean-latency-vs-primary");
}

/// Scenario seconds after the shift by which Prometheus scrapes every
/// target it started with: it hands target changes to its scrapers at
/// most every 5 s (its discovery manager's update tick), 100 scenario
/// seconds at time scale 0.05, and the first scrapes of its targets are
/// spread over a scrape interval.
const SETTLED_S: f64 = 110.0;

/// A metric's measurements from [`SETTLED_S`] on: scenario seconds since
/// the shift and the one value (one series: `sum(...)`).
fn samples(out: &ReleaseOutcome, metric: &str) -> Vec<(f64, f64)> {
    out.record
        .measurements
        .iter()
        .filter(|m| m.query == metric && m.scenario_s >= SETTLED_S)
        .map(|m| match &m.value {
            Measurement::Vector(v) if v.len() == 1 && v[0].is_finite() => (m.scenario_s, v[0]),
            other => panic!("{} at {} s: {other:?}", m.query, m.scenario_s),
        })
        .collect()
}

/// The values measured from `from` to `to` scenario seconds after the
/// shift (at least one).
fn during(samples: &[(f64, f64)], from: f64, to: f64) -> Vec<f64> {
    let v: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| (from..=to).contains(t))
        .map(|(_, x)| *x)
        .collect();
    assert!(
        !v.is_empty(),
        "no sample from {from} to {to} s: {samples:?}"
    );
    v
}

/// The values in order, each run of equal ones once.
fn changes(samples: &[(f64, f64)]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().map(|(_, x)| *x).collect();
    v.dedup();
    v
}

/// The A/A decision by the latency ratio: promoted, at most one of its
/// measurements (failureLimit 1) at or over the threshold.
fn assert_aa_promoted(out: &ReleaseOutcome) {
    assert_eq!(out.decision, ReleaseEnd::Promote, "{}", report(out));
    let r = samples(out, "mean-latency-ratio");
    assert!(!r.is_empty(), "{}", report(out));
    assert!(
        r.iter().filter(|(_, x)| *x >= THRESHOLD).count() <= 1,
        "{}",
        report(out)
    );
    let promotion = out.record.promotion.expect("promoted");
    assert!(!promotion.undone && promotion.replaced == promotion.of);
    assert_eq!(promotion.of, out.plan.production_replicas);
}

/// A pod-count release, run to its end (printed, for a failing test).
async fn release_counting_pods(scenario: &str, analysis: &str, root: &str) -> ReleaseOutcome {
    let scenario = catalog(scenario);
    let root = TempRoot::new(root);
    let out = release(&scenario, analysis, &root)
        .await
        .expect("release runs");
    eprintln!("{}", report(&out));
    out
}

/// Every count measured from `from` to `to` scenario seconds after the
/// shift (at least one) is `pods`.
#[track_caller]
fn assert_pods_during(samples: &[(f64, f64)], from: f64, to: f64, pods: f64) {
    assert!(
        during(samples, from, to).iter().all(|&n| n == pods),
        "{pods} pods from {from} to {to} s: {samples:?}"
    );
}

/// The canary's share of the traffic in one split: the sum over its pods.
fn canary_weight(weights: &BTreeMap<String, f64>) -> f64 {
    weights
        .iter()
        .filter(|(name, _)| name.starts_with("canary-"))
        .map(|(_, w)| w)
        .sum()
}

/// Production's pods that take traffic in one split.
fn serving_production(weights: &BTreeMap<String, f64>) -> Vec<&str> {
    weights
        .iter()
        .filter(|(name, w)| name.starts_with("production-") && **w > 0.0)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The slots of production's pods started after its 6 replicas: the 3 that
/// `dynamicStableScale` starts again once production has shrunk to 3.
const NEW_PRODUCTION: [&str; 3] = ["production-6", "production-7", "production-8"];

/// utils/replicaset/canary.go `CalculateReplicaCountsForTrafficRoutedCanary`
/// with `setCanaryScale` in force: 2 pods (`replicas`), 3 (`weight: 50` of
/// 6, rounded up), then 1, while the weight stays 20%; production keeps
/// its 6. Counted by Prometheus (`sum(up)` of each hash's targets, every
/// 20 s from [`SETTLED_S`]; a new target is scraped up to 100 scenario
/// seconds late): 2 pods from the start; the 3rd starts at 180 s and the
/// pause after it begins once it is ready (about 20 s later,
/// `rollout/canary.go` `completedCurrentCanaryStep`), so 3 pods seen from
/// at most 290 s to about 440 s, then 1 (two stopped: seen at once) to the
/// end (about 560 s).
pub(crate) async fn argo_set_canary_scale_sizes_the_canary() {
    let out = release_counting_pods(
        "aa-typical.toml",
        "argo-set-canary-scale.yaml",
        "argo-canary-scale",
    )
    .await;
    assert_aa_promoted(&out);
    let canary = samples(&out, "canary-pods");
    let stable = samples(&out, "stable-pods");
    assert_pods_during(&canary, SETTLED_S, 170.0, 2.0);
    assert_pods_during(&canary, 300.0, 430.0, 3.0);
    assert_pods_during(&canary, 480.0, 540.0, 1.0);
    // 3 -> 1 stops two pods one after the other: a scrape may see 2 between
    let path = changes(&canary);
    assert!(
        path == [2.0, 3.0, 1.0] || path == [2.0, 3.0, 2.0, 1.0],
        "{canary:?}"
    );
    assert!(stable.iter().all(|&(_, n)| n == 6.0), "{stable:?}");
    // the weight never moved: 20% over however many canary pods serve
    // (the 3rd joining, two leaving: at least 3 splits), until the
    // promotion's clean-up takes it to 0
    let canary: Vec<f64> = out
        .load
        .weight_changes
        .iter()
        .map(|c| canary_weight(&c.weights))
        .collect();
    let before_cleanup: Vec<f64> = canary.iter().copied().take_while(|&w| w > 0.0).collect();
    assert!(before_cleanup.len() >= 3, "{canary:?}");
    assert!(
        before_cleanup.iter().all(|w| (w - 20.0).abs() < 1e-9),
        "{canary:?}"
    );
    assert!(
        canary[before_cleanup.len()..].iter().all(|&w| w == 0.0),
        "{canary:?}"
    );
}

/// utils/replicaset/canary.go `CalculateReplicaCountsForTrafficRoutedCanary`
/// with `dynamicStableScale` and `minPodsPerReplicaSet: 2` on 6 replicas:
/// at 50% canary 3 and production ceil(6 x 50%) = 3 once the traffic left
/// it; the 10% step first starts production's 3 new pods (back to
/// ceil(6 x 90%) = 6) and stops a canary pod (ceil(0.6) = 1, raised to 2),
/// and the weight moves once the new production pods are ready
/// (rollout/trafficrouting.go `checkReplicasAvailable`). Counted by
/// Prometheus every 20 s from [`SETTLED_S`] (new targets up to 100
/// scenario seconds late, stopped ones at once): 3 and 3 up to 180 s, 6 and 2 from at
/// most 290 s to the end (about 380 s); loadgen's first 10% split already
/// spreads production's 90% over the 3 old pods left and the 3 new ones.
pub(crate) async fn argo_dynamic_stable_scale_scales_production() {
    let out = release_counting_pods(
        "aa-typical.toml",
        "argo-dynamic-stable-scale.yaml",
        "argo-stable-scale",
    )
    .await;
    assert_aa_promoted(&out);
    let canary = samples(&out, "canary-pods");
    let stable = samples(&out, "stable-pods");
    assert_pods_during(&stable, SETTLED_S, 170.0, 3.0);
    assert_pods_during(&canary, SETTLED_S, 170.0, 3.0);
    assert_pods_during(&stable, 300.0, 370.0, 6.0);
    assert_pods_during(&canary, 300.0, 370.0, 2.0);
    assert!(
        stable.iter().all(|&(_, n)| (3.0..=6.0).contains(&n)),
        "{stable:?}"
    );
    // production's first 10% split: 90% over 6 serving instances, 3 of
    // them new (slots after the replicas), the 3 stopped at 0
    let ten = out
        .load
        .weight_changes
        .iter()
        .find(|c| (canary_weight(&c.weights) - 10.0).abs() < 1e-9)
        .expect("a 10% split");
    let serving = serving_production(&ten.weights);
    assert_eq!(serving.len(), 6, "{ten:?}");
    for (_, w) in ten
        .weights
        .iter()
        .filter(|(n, _)| n.starts_with("production-"))
    {
        assert!(*w == 0.0 || (*w - 15.0).abs() < 1e-9, "{ten:?}");
    }
    assert!(
        NEW_PRODUCTION.iter().all(|n| serving.contains(n)),
        "{ten:?}"
    );
    // the newest three were stopped at 50%: 0, 1, 2 serve on
    assert!(
        ["production-0", "production-1", "production-2"]
            .iter()
            .all(|n| serving.contains(n)),
        "{ten:?}"
    );
}

/// rollout/trafficrouting.go `calculateDesiredWeightOnAbortOrStableRollback`
/// with `dynamicStableScale`: an abort moves traffic back only as the
/// stable's pods become available. Production shrinks to 3 at 50%; the
/// latency regression's first measurement (3m, failureLimit 0) aborts;
/// production's 3 new pods start and are ready before the weight goes to
/// 0, so loadgen's first split without the canary spreads production's
/// 100% over 6 serving pods.
pub(crate) async fn argo_dynamic_stable_scale_abort_restores_production_first() {
    let out = release_counting_pods(
        "latency-25pct.toml",
        "argo-dynamic-stable-scale-abort.yaml",
        "argo-stable-abort",
    )
    .await;
    assert_eq!(out.decision, ReleaseEnd::Rollback, "{}", report(&out));
    assert!(
        out.analysis.outcome.reason.contains("failureLimit"),
        "{}",
        out.analysis.outcome.reason
    );
    assert_decided_near(&out, 180.0);
    assert_eq!(out.record.promotion, None);
    let stable = samples(&out, "stable-pods");
    assert_pods_during(&stable, SETTLED_S, 170.0, 3.0);
    let back = out
        .load
        .weight_changes
        .iter()
        .find(|c| {
            c.weights
                .iter()
                .all(|(name, w)| !name.starts_with("canary-") || *w == 0.0)
        })
        .expect("traffic back to production");
    let serving = serving_production(&back.weights);
    assert_eq!(serving.len(), 6, "{back:?}");
    assert!(
        NEW_PRODUCTION.iter().all(|n| serving.contains(n)),
        "{back:?}"
    );
}
