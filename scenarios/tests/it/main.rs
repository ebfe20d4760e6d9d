//! Scenario files: the shipped catalog loads, bad files are refused with
//! the file, line, column and field, and signals are told from queries.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use scenarios::{Expect, Scenario, ScenarioError, Signal, load_all};

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
}

fn parse(toml: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(toml, &catalog().join("test-scenario.toml"), None)
}

const MINIMAL: &str =
    "description = \"d\"\nexpect = \"pass\"\n[analysis]\nconfig = \"canary-config.json\"\n";

#[test]
fn the_catalog_loads_and_covers_every_kind() {
    let all = load_all(&[catalog()], None).unwrap();
    assert!(all.len() >= 15, "{} scenarios", all.len());
    let kinds: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|s| {
            s.file
                .regression
                .as_ref()
                .map_or("none", |r| r.describe().0)
        })
        .collect();
    for kind in [
        "none",
        "latency",
        "latency_tail",
        "variance",
        "errors",
        "cpu",
        "memory_leak",
        "crash_loop",
        "slow_start",
    ] {
        assert!(kinds.contains(kind), "no {kind} scenario");
    }
    assert!(all.iter().any(|s| s.file.expect == Expect::Pass
        && s.file.pipeline.baseline == scenarios::BaselineKind::Production));
    // every catalog metric's signal is told from its query
    let s = &all[0];
    assert_eq!(
        s.signals,
        vec![
            Signal::LatencyQuantile(0.5),
            Signal::LatencyQuantile(0.99),
            Signal::ErrorRatio,
            Signal::Cpu,
            Signal::Memory
        ]
    );
}

#[test]
fn defaults_fill_in_a_minimal_file() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.name, "test-scenario");
    assert_eq!(
        s.thresholds(),
        judge::ScoreThresholds {
            pass: 75.0,
            marginal: 50.0
        }
    );
    let windows = s.schedule().windows().unwrap();
    assert_eq!(windows.len(), 3);
}

#[test]
fn bad_files_name_file_line_and_field() {
    let e = parse(&format!("{MINIMAL}[service]\nrequest_rat = 5\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test-scenario.toml") && e.contains("line 6") && e.contains("request_rat"),
        "{e}"
    );

    let e = parse(&format!("{MINIMAL}[service]\nerror_rate = 1.5\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`service.error_rate`") && e.contains("1.5 is not a fraction"),
        "{e}"
    );

    let e = parse(&format!(
        "{MINIMAL}[pipeline]\ntraffic = {{ canary = 5, baseline = 5, production = 80 }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`pipeline.traffic`") && e.contains("add up to 100"),
        "{e}"
    );

    let e = parse(&format!(
        "{MINIMAL}[regression]\nkind = \"latency\"\nincrese = 0.1\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("increse"), "{e}");

    let e = parse(
        "description = \"d\"\nexpect = \"maybe\"\n[analysis]\nconfig = \"canary-config.json\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("maybe") && e.contains("line 2"), "{e}");

    let e = parse(&MINIMAL.replace(
        "expect = \"pass\"",
        "expect = \"pass\"\nmin_detection = 0.9",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`min_detection`") && e.contains("detection rate"),
        "{e}"
    );

    let e = parse(&MINIMAL.replace("canary-config.json", "missing.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.json") && e.contains("cannot read"),
        "{e}"
    );

    let e = parse(&format!("{MINIMAL}[analysis.signals]\nnope = \"cpu\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate") || e.contains("nope"), "{e}");
}

#[test]
fn signals_parse_and_are_inferred() {
    assert_eq!(
        "latency_quantile:0.9".parse::<Signal>().unwrap(),
        Signal::LatencyQuantile(0.9)
    );
    assert!("latency_quantile:2".parse::<Signal>().is_err());
    let e = "throughput".parse::<Signal>().unwrap_err();
    assert!(
        e.contains("unknown signal") && e.contains("error_ratio"),
        "{e}"
    );
    let config = judge::CanaryConfig::from_json(
        r#"{"metrics":[
            {"name":"a","query":{"type":"prometheus","metricName":"http_requests_total","labelBindings":["code=~\"5..\""]}},
            {"name":"b","query":{"type":"prometheus","customInlineTemplate":"PromQL:sum(rate(http_request_duration_seconds_sum[1m]))/sum(rate(http_request_duration_seconds_count[1m]))"}},
            {"name":"c","query":{"type":"prometheus","metricName":"http_requests_total"}},
            {"name":"d","query":{"type":"prometheus","metricName":"some_other_metric"}}]}"#,
    )
    .unwrap();
    let got: Vec<Option<Signal>> = config.metrics.iter().map(scenarios::infer_signal).collect();
    assert_eq!(
        got,
        vec![
            Some(Signal::ErrorRate),
            Some(Signal::LatencyMean),
            Some(Signal::RequestRate),
            None
        ]
    );
}

#[test]
fn a_directory_without_scenarios_is_an_error() {
    let dir = std::env::temp_dir().join(format!("canarylab-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = load_all(std::slice::from_ref(&dir), None).unwrap_err();
    assert!(matches!(e, ScenarioError::Empty(_)), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_service_file_loads_alone_and_converts_its_correlations_to_another_step() {
    let path = std::path::Path::new("svc.toml");
    let (svc, step) = scenarios::parse_service(
        "description = \"d\"\nexpect = \"pass\"\n[service]\nrequest_rate = 42.0\n\
         [service.pod_drift]\nsd = 0.02\nrho = 0.81\n[analysis]\nscrape_step_s = 5.0\n",
        path,
    )
    .expect("parses without a canary config");
    assert_eq!((svc.request_rate, step), (42.0, 5.0));
    let at10 = svc.at_step(step, 10.0);
    assert!((at10.pod_drift.rho - 0.81f64.powi(2)).abs() < 1e-12);
    assert_eq!(at10.pod_drift.sd, 0.02);
    assert_eq!(svc.at_step(5.0, 5.0), svc);
    let err = scenarios::parse_service(
        "description = \"d\"\nexpect = \"pass\"\n[service]\nreplicas = 0\n[analysis]\n",
        path,
    )
    .expect_err("invalid");
    assert!(err.to_string().contains("service.replicas"), "{err}");
}

#[test]
fn values_beyond_sane_bounds_are_refused_with_the_field() {
    let refused = |extra: &str, field: &str, words: &str| {
        let e = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
        assert!(
            e.contains("test-scenario.toml")
                && e.contains(&format!("`{field}`"))
                && e.contains(words),
            "{extra}: {e}"
        );
    };
    // 1e13 s would be a 184 TB series allocation in the simulator
    refused(
        "[pipeline]\nlifetime_s = 1e13\n",
        "pipeline.lifetime_s",
        "30 days",
    );
    refused(
        "[pipeline]\nlifetime_s = -5\n",
        "pipeline.lifetime_s",
        "must be > 0",
    );
    refused(
        "[pipeline]\ndeploy_timeout_s = 1e9\n",
        "pipeline.deploy_timeout_s",
        "30 days",
    );
    refused(
        "[pipeline]\ncanary_replicas = 1000000\n",
        "pipeline.canary_replicas",
        "10000 replicas",
    );
    refused(
        "[service]\nreplicas = 20000\n",
        "service.replicas",
        "10000 replicas",
    );
    refused(
        "[service]\nrequest_rate = 1e12\n",
        "service.request_rate",
        "requests per second",
    );
    // a week of analysis at a 1 s step is more points than a release holds
    let e = parse(
        "description = \"d\"\nexpect = \"pass\"\n[pipeline]\nlifetime_s = 2e6\n\
         [analysis]\nconfig = \"canary-config.json\"\nscrape_step_s = 1\nrate_window_s = 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`analysis.scrape_step_s`") && e.contains("points"),
        "{e}"
    );
    refused(
        "[pipeline]\ntraffic_steps = [\n  { after_s = 900, canary = 25, baseline = 25, production = 50 },\n  { after_s = 300, canary = 50, baseline = 50, production = 0 },\n]\n",
        "pipeline.traffic_steps[1].after_s",
        "time order",
    );
}

#[test]
fn validate_checks_a_changed_copy() {
    let mut s = parse(MINIMAL).unwrap();
    s.validate().unwrap();
    s.file.analysis.scrape_step_s = 0.0;
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("`analysis.scrape_step_s`") && e.contains("must be > 0"),
        "{e}"
    );
}

#[test]
fn telemetry_is_optional_and_bad_names_are_refused_with_the_field() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.file.telemetry, scenarios::Telemetry::default());
    let s = parse(&format!(
        "{MINIMAL}[telemetry]\napp = \"shop\"\n[telemetry.labels]\ncode = \"status\"\n[telemetry.canary]\nversion = \"shop-canary\"\n"
    ))
    .unwrap();
    assert_eq!(s.file.telemetry.label("code"), "status");
    let e = parse(&format!(
        "{MINIMAL}[telemetry.labels]\ncode = \"__status\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test-scenario.toml") && e.contains("`telemetry.labels.code`"),
        "{e}"
    );
    let e = parse(&format!(
        "{MINIMAL}[telemetry.metrics]\nhttp_total = \"x\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`telemetry.metrics.http_total`") && e.contains("known"),
        "{e}"
    );
    let e = parse(&format!("{MINIMAL}[telemetry.canary]\nworkloads = \"x\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("workloads"), "{e}");
}
