//! Whole time-scaled releases of catalog scenarios, their results in the
//! simulator's format, and the ways a release can end early.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::results::{self, ReleaseEnd};
use cluster::{AnalysisError, ReleaseError, ReleaseOptions, Step, run_release};
use scenarios::Scenario;

use crate::TempRoot;

fn catalog_path(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "scenarios", "catalog", name]
        .iter()
        .collect()
}

fn catalog(name: &str) -> Scenario {
    let mut s = Scenario::load(&catalog_path(name), None).expect("catalog scenario loads");
    lean(&mut s);
    s
}

/// Lean on the shared test machine: no CPU burn, modest traffic.
fn lean(s: &mut Scenario) {
    s.file.service.cpu_ms_per_request = 0.0;
    s.file.service.request_rate = 100.0;
}

/// A short release: 2 s warmup and one 6 s interval at scale 0.02.
fn short(s: &mut Scenario) {
    s.file.pipeline.warmup_s = 100.0;
    s.file.pipeline.lifetime_s = 300.0;
    s.file.pipeline.interval_s = Some(300.0);
}

/// A large latency fault (+100%) with a quarter of the traffic each for
/// baseline and canary: enough points in a 42 s release for both latency
/// metrics to tell.
fn large_latency_fault() -> Scenario {
    let mut s = catalog("latency-25pct.toml");
    s.file.regression = Some(scenarios::Regression::Latency { increase: 1.0 });
    s.file.pipeline.traffic = scenarios::Traffic {
        canary: 25.0,
        baseline: 25.0,
        production: 50.0,
    };
    s
}

fn options() -> ReleaseOptions {
    ReleaseOptions::new(0.02, crate::goldengoose())
}

/// Processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    crate::processes()
        .into_iter()
        .filter_map(|(_, _, cmd)| cmd.contains(text).then_some(cmd))
        .collect()
}

/// Requests loadgen sent to targets whose name starts with `prefix`.
fn requests(load: &loadgen::Report, prefix: &str) -> u64 {
    load.targets
        .iter()
        .filter(|t| t.name.starts_with(prefix))
        .map(|t| t.requests)
        .sum()
}

pub(crate) async fn release_with_a_large_latency_fault_is_rolled_back() {
    let scenario = large_latency_fault();
    let root = TempRoot::new("latency");
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    assert!(root.is_empty(), "Prometheus's directory removed");
    let out = result.as_ref().expect("release runs");
    let first = &out.analysis.intervals[0];
    let why = results::flagged(first);
    eprintln!("{:?} {why:?}", out.analysis.outcome);
    assert_eq!(
        out.decision,
        ReleaseEnd::Rollback,
        "{:?} {why:?}",
        out.analysis.outcome
    );
    // Range selectors follow the time scale: [1m] is 60 scenario seconds.
    let query = first.pairs[0].attributes.as_ref().expect("queries")["experiment"]["query"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(query.contains("[1200ms]"), "{query}");
    // The scenario's replicas, each its own target.
    let production = out.plan.production_replicas as usize;
    assert!(
        production > 1,
        "the catalog runs several production replicas"
    );
    let served = out
        .load
        .targets
        .iter()
        .filter(|t| t.name.starts_with("production-") && !t.name.contains("new") && t.requests > 0)
        .count();
    assert_eq!(served, production, "every production replica served");
    assert_eq!(requests(&out.load, "production-new-"), 0, "no promotion");
    assert!(requests(&out.load, "canary-") > 0);

    // The simulator's results: one run, rolled back, with its intervals,
    // series and loadgen's canary counts up to the decision.
    let study = results::study(&scenario, &result, 1);
    assert_eq!(study.driver, "local");
    let s = &study.scenarios[0];
    assert_eq!((s.runs, s.verdicts.rolled_back), (1, 1));
    assert_eq!(s.rollback_rate.rate, 1.0);
    let decided_s = out.analysis.outcome.decided_at.as_secs_f64() / 0.02;
    assert!(
        (s.decision_time_s.mean - decided_s).abs() < 1e-6
            && ((decided_s - 300.0) % 600.0).abs() < 1e-6,
        "decided at the end of an interval of the 35-minute scenario, in scenario seconds: {} vs {decided_s}",
        s.decision_time_s.mean
    );
    assert!(s.canary_requests.mean > 0.0);
    assert!(s.canary_requests.mean <= requests(&out.load, "canary-") as f64);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Rollback);
    assert_eq!(run.intervals.len(), out.analysis.intervals.len());
    let last = run.intervals.last().expect("judged");
    assert!((last.end_s - decided_s).abs() < 1e-6, "{}", last.end_s);
    assert_eq!(run.series.len(), scenario.config.metrics.len());
    let points = run.series[0].control.iter().flatten().count();
    assert!(
        points >= 20,
        "series over the whole analysis: {points} points"
    );
    let stages: Vec<&str> = run.timeline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["deploy", "warmup", "analysis", "rollback"]);

    // And the report renders it as it renders a simulated study.
    let dir = TempRoot::new("latency-report");
    let written = reports::write_study(&study, &dir.0).expect("report writes");
    let again = reports::read_study(&written.json).expect("reads back");
    assert_eq!(again, study);
    let html = std::fs::read_to_string(&written.html).expect("html");
    assert!(
        html.contains("rolled back by the canary analysis"),
        "verdict in the report"
    );
    assert!(html.contains("Interval 1"), "interval scores in the report");
}

pub(crate) async fn release_with_a_config_without_prometheus_queries_starts_nothing() {
    let mut scenario = catalog("latency-25pct.toml");
    for m in &mut scenario.config.metrics {
        m.query = Default::default();
        m.query.kind = Some("stackdriver".into());
    }
    let mut opts = options();
    // Were anything started, this would fail with BinaryNotFound instead.
    opts.prometheus = Some(Path::new("/nonexistent/prometheus").to_path_buf());
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    let err = result.as_ref().expect_err("bad config");
    assert_eq!(err.step, Step::Plan);
    assert!(
        matches!(
            err.error,
            ReleaseError::Analysis(AnalysisError::NoPrometheusQueries(_))
        ),
        "{err}"
    );
    let study = results::study(&scenario, &result, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Error);
    assert!(run.reason.starts_with("step plan failed"), "{}", run.reason);
    assert_eq!(study.scenarios[0].verdicts, Default::default());
}

pub(crate) async fn canary_that_fails_to_start_ends_the_deploy_and_stops_the_others() {
    // goldengoose through a shell that refuses to start the canary: the
    // production processes start first (before the commit) and must be
    // stopped; the controller starts the canary before the baseline, so
    // the baseline never starts.
    let script = format!(
        r#"case "$*" in *--track=canary*) echo "no canary today" >&2; exit 3;; esac; exec "{}" goldengoose "$@""#,
        env!("CARGO_BIN_EXE_canarylab")
    );
    let mut opts = options();
    opts.goldengoose = cluster::GooseCommand::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("sh");
    let root = TempRoot::new("nocanary");
    opts.temp_root = Some(root.0.clone());
    let mut scenario = catalog("aa-typical.toml");
    short(&mut scenario);
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    let err = result.as_ref().expect_err("the canary cannot start");
    assert_eq!(err.step, Step::Deploy, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("canary-0")
            && text.contains("exit status 3")
            && text.contains("no canary today"),
        "{text}"
    );
    let started = &err.record.instances;
    assert!(
        started.iter().any(|i| i.track == "production")
            && !started.iter().any(|i| i.track == "baseline"),
        "{started:?}"
    );
    for pid in started.iter().flat_map(|i| &i.pids) {
        assert!(!crate::alive(*pid), "{pid} still runs");
    }
    assert!(root.is_empty(), "Prometheus never started");
    let (verdict, reason, _) = results::verdict(&result);
    assert_eq!(verdict, ReleaseEnd::Error, "{reason}");
    assert!(reason.contains("step deploy failed"), "{reason}");
}

pub(crate) async fn interrupted_release_leaves_no_process_and_no_temp_dir() {
    let root = TempRoot::new("interrupted");
    let scenario = catalog("latency-25pct.toml");
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let interrupt = {
        let watch = opts.watch.clone();
        tokio::spawn(async move {
            // Interrupt once the analysis runs: traffic flows, Prometheus up.
            let _ =
                tokio::time::timeout(Duration::from_secs(60), watch.reached(Step::Analysis)).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.send_replace(true);
        })
    };
    let err = run_release(&scenario, &opts, cancelled)
        .await
        .expect_err("cancelled");
    interrupt.await.expect("joins");
    assert_eq!(err.step, Step::Analysis, "{err}");
    assert!(
        matches!(err.error, ReleaseError::Analysis(AnalysisError::Cancelled)),
        "{err}"
    );
    let left = processes_mentioning(&root.0.display().to_string());
    assert!(left.is_empty(), "{left:?}");
    assert!(root.is_empty());
    // Every goldengoose process it started was stopped.
    let instances = &err.record.instances;
    assert!(
        instances.iter().any(|i| i.name == "canary-0"),
        "{instances:?}"
    );
    for pid in instances.iter().flat_map(|i| &i.pids) {
        assert!(!crate::alive(*pid), "{pid} still runs: {instances:?}");
    }
    // The traffic was stopped and counted.
    let load = err.record.load.as_ref().expect("loadgen's report");
    assert!(requests(load, "canary-") > 0);
}

pub(crate) async fn aa_release_is_promoted_by_replacing_production() {
    // The A/A scenario judged with examples/canary-config.json, whose
    // critical latency_p50 has an effect size (allowedIncrease 1.1): the
    // catalog config fails on any significant difference.
    let config: PathBuf = [env!("CARGO_MANIFEST_DIR"), "examples", "canary-config.json"]
        .iter()
        .collect();
    let mut scenario =
        Scenario::load(&catalog_path("aa-typical.toml"), Some(&config)).expect("loads");
    lean(&mut scenario);
    // Rare errors make error ratios differ by chance, and error_ratio is
    // critical.
    scenario.file.service.error_rate = 0.0;
    scenario.file.pipeline.traffic = scenarios::Traffic {
        canary: 25.0,
        baseline: 25.0,
        production: 50.0,
    };
    // This test is about the promotion, not the judge's false-alarm rate
    // (one canary pod against one baseline pod can differ by more than
    // the allowed 10% by chance): any score above 0 promotes, and only a
    // critical failure (1.5x the p50) could roll it back.
    scenario.file.pipeline.pass = Some(0.0);
    scenario.file.pipeline.marginal = Some(0.0);
    let result = run_release(&scenario, &options(), crate::not_cancelled()).await;
    let out = result.as_ref().expect("release runs");
    let why: Vec<Vec<String>> = out
        .analysis
        .intervals
        .iter()
        .map(results::flagged)
        .collect();
    eprintln!("{:?} {why:?}", out.analysis.outcome);
    assert_eq!(
        out.decision,
        ReleaseEnd::Promote,
        "{:?} {why:?}",
        out.analysis.outcome
    );
    assert_eq!(out.analysis.intervals.len(), 3);
    let n = out.plan.production_replicas;
    let promotion = out.record.promotion.expect("promoted");
    assert_eq!(
        (promotion.replaced, promotion.of, promotion.undone),
        (n, n, false)
    );
    // Every new production instance took traffic, and the last weights
    // have production wholly on the new version.
    for i in 0..n {
        assert!(
            requests(&out.load, &format!("production-new-{i}")) > 0,
            "production-new-{i} served"
        );
    }
    let last = out.load.weight_changes.last().expect("weights changed");
    for (name, w) in &last.weights {
        let new = name.starts_with("production-new-");
        assert_eq!(*w > 0.0, new, "{name} weight {w} in {last:?}");
    }
    let study = results::study(&scenario, &result, 1);
    assert_eq!(study.scenarios[0].verdicts.promoted, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Promote);
    assert!(
        run.reason.contains("instances replaced one at a time"),
        "{}",
        run.reason
    );
    assert_eq!(
        run.timeline.last().map(|s| s.name.as_str()),
        Some("promote")
    );
}

pub(crate) async fn ctrl_c_during_promotion_undoes_it() {
    let config: PathBuf = [env!("CARGO_MANIFEST_DIR"), "examples", "canary-config.json"]
        .iter()
        .collect();
    let mut scenario =
        Scenario::load(&catalog_path("aa-typical.toml"), Some(&config)).expect("loads");
    lean(&mut scenario);
    short(&mut scenario);
    scenario.file.service.error_rate = 0.0;
    scenario.file.pipeline.traffic = scenarios::Traffic {
        canary: 25.0,
        baseline: 25.0,
        production: 50.0,
    };
    // This test is about Ctrl-C during the promotion, not about the judge:
    // one canary pod against one baseline pod over a 6-second window
    // sometimes differs by more than the config's allowed 10% (an A/A
    // rolled back here once with a p50 ratio of 1.116). Any score above 0
    // promotes; only a critical failure (1.5x the p50, or errors, which
    // are off) could roll it back.
    scenario.file.pipeline.pass = Some(0.0);
    scenario.file.pipeline.marginal = Some(0.0);
    // Each instance needs 150 scenario seconds (3 s) before it counts as
    // ready: the promotion of 6 replicas takes about 18 s.
    scenario.file.pipeline.readiness_s = 150.0;
    let root = TempRoot::new("promotion");
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let interrupt = {
        let watch = opts.watch.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(90), watch.reached(Step::Promote)).await;
            // Into the second instance's readiness wait.
            tokio::time::sleep(Duration::from_secs(4)).await;
            cancel.send_replace(true);
        })
    };
    let result = run_release(&scenario, &opts, cancelled).await;
    interrupt.await.expect("joins");
    let err = result.as_ref().expect_err("interrupted");
    assert_eq!(err.step, Step::Promote, "{err}");
    assert!(
        matches!(
            err.error,
            ReleaseError::Interrupted {
                step: Step::Promote,
                ..
            }
        ),
        "{err}"
    );
    let promotion = err.record.promotion.expect("promotion started");
    assert!(promotion.undone, "{promotion:?}");
    assert!(
        promotion.replaced >= 1 && promotion.replaced < promotion.of,
        "interrupted mid-way: {promotion:?}"
    );
    assert!(err.to_string().contains("undone"), "{err}");
    // Production back on the current version: every old instance has
    // weight again, every new one none.
    let load = err.record.load.as_ref().expect("loadgen's report");
    let last = load.weight_changes.last().expect("weights changed");
    for (name, w) in &last.weights {
        if name.starts_with("production-new-") {
            assert_eq!(*w, 0.0, "{name}");
        } else if name.starts_with("production-") {
            assert!(*w > 0.0, "{name}");
        }
    }
    assert!(requests(load, "production-new-") > 0, "one was replaced");
    let left = processes_mentioning(&root.0.display().to_string());
    assert!(left.is_empty(), "{left:?}");
    assert!(root.is_empty());
    let study = results::study(&scenario, &result, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Error);
    assert!(
        run.reason.starts_with("step promote failed"),
        "{}",
        run.reason
    );
}

pub(crate) async fn canary_that_never_starts_fails_the_deploy() {
    let mut scenario = catalog("crash-loop.toml");
    short(&mut scenario);
    let root = TempRoot::new("crash");
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    let err = result.as_ref().expect_err("never ready");
    assert_eq!(err.step, Step::Deploy, "{err}");
    match &err.error {
        ReleaseError::NotReady { instance, why, .. } => {
            assert_eq!(instance, "canary-0");
            assert!(why.contains("crash loop") && why.contains("70"), "{why}");
        }
        other => panic!("expected NotReady, got {other}"),
    }
    // It was restarted until the deploy timeout, as a kubelet would, and
    // every one of its processes is gone.
    let canary = err
        .record
        .instances
        .iter()
        .find(|i| i.name == "canary-0")
        .expect("canary-0 recorded");
    assert!(canary.exits >= 2 && canary.pids.len() >= 2, "{canary:?}");
    for pid in err.record.instances.iter().flat_map(|i| &i.pids) {
        assert!(!crate::alive(*pid), "{pid} still runs");
    }
    assert!(
        err.record.traffic_at.is_none(),
        "no traffic reached the canary"
    );
    assert!(root.is_empty());
    let (verdict, reason, _) = results::verdict(&result);
    assert_eq!(verdict, ReleaseEnd::DeployFailed, "{reason}");
    let study = results::study(&scenario, &result, 1);
    assert_eq!(study.scenarios[0].verdicts.deploy_failed, 1);
    assert!(study.example_runs[0].reason.contains("canary-0"));
}

pub(crate) async fn promql_error_ends_the_release_at_the_analysis() {
    let mut scenario = catalog("aa-typical.toml");
    short(&mut scenario);
    // Builds (the template resolves) but does not parse.
    scenario.config.metrics[0].query.custom_inline_template =
        Some(r#"PromQL:sum(rate(http_requests_total{version="${scope}"}[1m])"#.into());
    let root = TempRoot::new("promql");
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
    let err = result.as_ref().expect_err("bad PromQL");
    assert_eq!(err.step, Step::Analysis, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("parse error"),
        "{text}"
    );
    assert!(root.is_empty());
    let study = results::study(&scenario, &result, 1);
    let run = &study.example_runs[0];
    assert_eq!(run.decision, ReleaseEnd::Error);
    assert!(
        run.reason.starts_with("step analysis failed"),
        "{}",
        run.reason
    );
    assert!(
        !study.scenarios[0]
            .expectation
            .as_ref()
            .expect("checked")
            .met,
        "an error meets no expectation"
    );
}
