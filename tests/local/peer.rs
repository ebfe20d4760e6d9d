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
