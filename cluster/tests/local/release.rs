//! Whole time-scaled releases of catalog scenarios.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cluster::{AnalysisError, ReleaseError, ReleaseOptions, run_release};
use judge::analysis::Decision;
use scenarios::Scenario;

fn catalog(name: &str) -> Scenario {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "scenarios",
        "catalog",
        name,
    ]
    .iter()
    .collect();
    let mut s = Scenario::load(&path, None).expect("catalog scenario loads");
    // Lean on the shared test machine: no CPU burn, modest traffic.
    s.file.service.cpu_ms_per_request = 0.0;
    s.file.service.request_rate = 100.0;
    s
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
    ReleaseOptions {
        time_scale: 0.02,
        prometheus: None,
        temp_root: None,
        seed: 1,
    }
}

/// A directory of this test's own, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(name: &str) -> TempRoot {
        let path =
            std::env::temp_dir().join(format!("canarylab-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp root");
        TempRoot(path)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .chars()
                        .all(|c| c.is_ascii_digit())
                })
                .filter_map(|e| {
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    cmd.contains(text).then_some(cmd)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_with_a_large_latency_fault_is_rolled_back() {
    let scenario = large_latency_fault();
    let out = run_release(&scenario, &options(), Arc::new(AtomicBool::new(false)))
        .await
        .expect("release runs");
    let first = &out.analysis.intervals[0];
    let why: Vec<String> = first
        .result
        .results
        .iter()
        .map(|r| format!("{} {:?}", r.name, r.classification))
        .collect();
    eprintln!("{:?} {why:?}", out.analysis.outcome);
    assert_eq!(
        out.decision,
        Decision::Rollback,
        "{:?} {why:?}",
        out.analysis.outcome
    );
    assert!(
        out.load
            .targets
            .iter()
            .any(|t| t.name == "canary" && t.requests > 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_with_a_config_without_prometheus_queries_starts_nothing() {
    let mut scenario = catalog("latency-25pct.toml");
    for m in &mut scenario.config.metrics {
        m.query = Default::default();
        m.query.kind = Some("stackdriver".into());
    }
    let binary = Path::new("/nonexistent/prometheus").to_path_buf();
    let mut opts = options();
    // Were anything started, this would fail with BinaryNotFound instead.
    opts.prometheus = Some(binary);
    let err = run_release(&scenario, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect_err("bad config");
    assert!(
        matches!(
            err,
            ReleaseError::Analysis(AnalysisError::NoPrometheusQueries(_))
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_release_leaves_no_process_and_no_temp_dir() {
    let root = TempRoot::new("interrupted");
    let scenario = catalog("latency-25pct.toml");
    let cancel = Arc::new(AtomicBool::new(false));
    let interrupt = {
        let cancel = cancel.clone();
        let root = root.0.clone();
        tokio::spawn(async move {
            // Interrupt once Prometheus is up and traffic flows.
            let started = std::time::Instant::now();
            while processes_mentioning(&root.display().to_string()).is_empty()
                && started.elapsed() < std::time::Duration::from_secs(30)
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let mut opts = options();
    opts.temp_root = Some(root.0.clone());
    let err = run_release(&scenario, &opts, cancel)
        .await
        .expect_err("cancelled");
    interrupt.await.expect("joins");
    assert!(
        matches!(err, ReleaseError::Analysis(AnalysisError::Cancelled)),
        "{err}"
    );
    let left = processes_mentioning(&root.0.display().to_string());
    assert!(left.is_empty(), "{left:?}");
    let files: Vec<_> = std::fs::read_dir(&root.0)
        .expect("root")
        .flatten()
        .collect();
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa_release_is_promoted() {
    // The A/A scenario judged with examples/canary-config.json, whose
    // critical latency_p50 has an effect size (allowedIncrease 1.1): the
    // catalog config fails on any significant difference, and rate windows
    // far longer than the scaled intervals make small ones significant.
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "scenarios",
        "catalog",
        "aa-typical.toml",
    ]
    .iter()
    .collect();
    let config: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "examples",
        "canary-config.json",
    ]
    .iter()
    .collect();
    let mut scenario = Scenario::load(&path, Some(&config)).expect("loads");
    scenario.file.service.cpu_ms_per_request = 0.0;
    scenario.file.service.request_rate = 100.0;
    // Rare errors make cumulative error ratios differ by chance, and
    // error_ratio is critical.
    scenario.file.service.error_rate = 0.0;
    scenario.file.pipeline.traffic = scenarios::Traffic {
        canary: 25.0,
        baseline: 25.0,
        production: 50.0,
    };
    let out = run_release(&scenario, &options(), Arc::new(AtomicBool::new(false)))
        .await
        .expect("release runs");
    let why: Vec<Vec<String>> = out
        .analysis
        .intervals
        .iter()
        .map(|i| {
            i.result
                .results
                .iter()
                .map(|r| format!("{} {:?}", r.name, r.classification))
                .collect()
        })
        .collect();
    eprintln!("{:?} {why:?}", out.analysis.outcome);
    assert_eq!(
        out.decision,
        Decision::Promote,
        "{:?} {why:?}",
        out.analysis.outcome
    );
    assert_eq!(out.analysis.intervals.len(), 3);
}
