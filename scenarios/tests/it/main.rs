//! Scenario files: the shipped catalog loads, bad files are refused with
//! the file, line, column and field, and metrics of other stores must say
//! what they measure.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use scenarios::{Expect, MetricSource, Scenario, ScenarioError, load_all};

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
    // every catalog metric is a Prometheus query, evaluated as it is
    let s = &all[0];
    assert_eq!(s.sources, vec![MetricSource::Prometheus; 5]);
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
fn signals_name_promql_and_other_stores_must_say_theirs() {
    let t = scenarios::Telemetry::default();
    let q = scenarios::query::signal_template("latency_quantile:0.9", &t, 60.0)
        .unwrap()
        .unwrap();
    assert_eq!(
        q,
        r#"histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{version="${scope}"}[60s])))"#
    );
    let q = scenarios::query::signal_template("error_ratio", &t, 10.0)
        .unwrap()
        .unwrap();
    assert!(q.contains(r#"code=~"5..""#) && q.contains("[10s]"), "{q}");
    assert!(scenarios::query::signal_template("latency_quantile:2", &t, 60.0).is_err());
    assert_eq!(
        scenarios::query::signal_template("throughput", &t, 60.0),
        Ok(None)
    );
    // a metric of another store needs [analysis.signals]; a signal is a
    // name or PromQL with ${scope}
    let dir = std::env::temp_dir().join(format!("canarylab-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("atlas.json");
    std::fs::write(
        &config,
        r#"{"metrics":[{"name":"p99","query":{"type":"atlas","q":"name,latency,:eq"},"groups":["g"],
            "analysisConfigurations":{"canary":{"direction":"increase"}}}],
            "classifier":{"groupWeights":{"g":100}}}"#,
    )
    .unwrap();
    let load = |toml: &str| {
        let text = format!("description = \"d\"\nexpect = \"pass\"\n{toml}");
        Scenario::parse(&text, &dir.join("s.toml"), Some(config.as_path()))
    };
    let e = load("[analysis]\n").unwrap_err().to_string();
    assert!(e.contains("p99") && e.contains("[analysis.signals]"), "{e}");
    let e = load("[analysis.signals]\np99 = \"throughput\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("analysis.signals.p99") && e.contains("${scope}"),
        "{e}"
    );
    let s = load("[analysis.signals]\np99 = \"latency_quantile:0.99\"\n").unwrap();
    assert!(matches!(&s.sources[0], MetricSource::Template(t) if t.contains("0.99")));
    let promql = r#"avg(rate(process_cpu_seconds_total{version="${scope}"}[1m]))"#;
    let s = load(&format!("[analysis.signals]\np99 = '{promql}'\n")).unwrap();
    assert_eq!(s.sources[0], MetricSource::Template(promql.into()));
    std::fs::remove_dir_all(&dir).unwrap();
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

#[test]
fn telemetry_loads_from_a_scenario_or_a_file_of_its_table_alone() {
    let path = Path::new("names.toml");
    // a file with only the table
    let t = scenarios::parse_telemetry(
        "[telemetry.metrics]\nhttp_requests_total = \"shop_requests_total\"\n[telemetry.labels]\npod = \"kubernetes_pod_name\"\n",
        path,
    )
    .unwrap();
    assert_eq!(t.metric("http_requests_total"), "shop_requests_total");
    assert_eq!(t.label("pod"), "kubernetes_pod_name");
    // a whole scenario: its telemetry; without one, the defaults
    let t = scenarios::parse_telemetry(
        &format!("{MINIMAL}[telemetry.labels]\ncode = \"status\"\n"),
        path,
    )
    .unwrap();
    assert_eq!(t.label("code"), "status");
    assert_eq!(
        scenarios::parse_telemetry(MINIMAL, path).unwrap(),
        scenarios::Telemetry::default()
    );
    // errors name the file and the field
    for (text, field) in [
        (
            "[telemetry.metrics]\nhttp_requests_total = \"9shop\"\n",
            "`telemetry.metrics.http_requests_total`",
        ),
        (
            "[telemetry.labels]\nstatus = \"code\"\n",
            "`telemetry.labels.status`",
        ),
        ("", "`telemetry`"),
        ("[telemetry]\napps = \"shop\"\n", "apps"),
        (
            &format!("{MINIMAL}[service]\nerror_rate = 2.0\n"),
            "service.error_rate",
        ),
        ("[telemetry\n", "names.toml"),
    ] {
        let e = scenarios::parse_telemetry(text, path)
            .expect_err(text)
            .to_string();
        assert!(e.contains("names.toml") && e.contains(field), "{text}: {e}");
    }
    let e = scenarios::load_telemetry(Path::new("/nonexistent/names.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/names.toml"), "{e}");
}
