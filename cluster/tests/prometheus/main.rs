//! The Prometheus guard: start, errors, cleanup.

use std::path::Path;
use std::time::Duration;

use cluster::Prometheus;
use cluster::analysis::unix_now;
use cluster::prom::Error;

#[tokio::test]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn dropping_prometheus_leaves_no_process_and_no_temp_dir() {
    let prom = Prometheus::start(None, &[], Duration::from_secs(1))
        .await
        .expect("prometheus starts");
    let pid = prom.pid();
    let dir = prom.dir().to_path_buf();
    let proc_dir = format!("/proc/{pid}");
    assert!(Path::new(&proc_dir).exists(), "running before drop");
    assert!(dir.join("prometheus.yml").is_file());
    assert!(prom.addr().ip().is_loopback());
    drop(prom);
    assert!(!Path::new(&proc_dir).exists(), "process {pid} still there");
    assert!(!dir.exists(), "{} still there", dir.display());
}

#[tokio::test]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn promql_error_carries_prometheus_message() {
    let prom = Prometheus::start(None, &[], Duration::from_secs(1))
        .await
        .expect("prometheus starts");
    let now = unix_now();
    let err = prom
        .api()
        .query_range("sum(rate(x[1m]", now - 10.0, now, Duration::from_secs(1))
        .await
        .expect_err("bad PromQL");
    match &err {
        Error::Query {
            status, message, ..
        } => {
            assert_eq!(*status, 400);
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected a query error, got {other}"),
    }
    // A valid query over an empty TSDB is no data, not an error.
    let none = prom
        .api()
        .query_range_single("up", now - 10.0, now, Duration::from_secs(1))
        .await
        .expect("valid query");
    assert!(none.is_empty());
}

#[tokio::test]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn cancelled_analysis_then_drop_leaves_nothing_behind() {
    use cluster::{AnalysisError, AnalysisPlan, ScopeVars};
    use judge::analysis::Schedule;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/canary-config.json"
    );
    let config = judge::CanaryConfig::from_json(&std::fs::read_to_string(path).expect("config"))
        .expect("parses");
    let prom = Prometheus::start(None, &[], Duration::from_secs(1))
        .await
        .expect("prometheus starts");
    let (pid, dir) = (prom.pid(), prom.dir().to_path_buf());
    let plan = AnalysisPlan {
        schedule: Schedule {
            lifetime: Duration::from_secs(600),
            interval: Some(Duration::from_secs(60)),
            warmup: Duration::from_secs(60),
            lookback: None,
        },
        thresholds: judge::ScoreThresholds::default(),
        step: Duration::from_secs(1),
        started_at: unix_now(),
        control: ScopeVars::new("baseline"),
        experiment: ScopeVars::new("canary"),
        seed: 1,
    };
    let (cancel, rx) = tokio::sync::watch::channel(false);
    let interrupt = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.send_replace(true);
    });
    let result = cluster::run_analysis(&prom.api(), &config, &plan, rx).await;
    interrupt.await.expect("joins");
    assert!(
        matches!(result, Err(AnalysisError::Cancelled)),
        "{result:?}"
    );
    drop(prom);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
}

#[tokio::test]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn no_data_ends_the_analysis_with_a_clear_error() {
    use cluster::{AnalysisError, AnalysisPlan, ScopeVars};
    use judge::analysis::Schedule;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/canary-config.json"
    );
    let config = judge::CanaryConfig::from_json(&std::fs::read_to_string(path).expect("config"))
        .expect("parses");
    // Nothing is scraped: every query comes back empty.
    let prom = Prometheus::start(None, &[], Duration::from_secs(1))
        .await
        .expect("prometheus starts");
    let plan = AnalysisPlan {
        schedule: Schedule {
            lifetime: Duration::from_secs(2),
            interval: None,
            warmup: Duration::ZERO,
            lookback: None,
        },
        thresholds: judge::ScoreThresholds::default(),
        step: Duration::from_secs(1),
        started_at: unix_now() - 5.0,
        control: ScopeVars::new("baseline"),
        experiment: ScopeVars::new("canary"),
        seed: 1,
    };
    let (_cancel, rx) = tokio::sync::watch::channel(false);
    let err = cluster::run_analysis(&prom.api(), &config, &plan, rx)
        .await
        .expect_err("no data");
    assert!(matches!(err, AnalysisError::NoData { .. }), "{err}");
    assert!(err.to_string().contains("no data"), "{err}");
}
