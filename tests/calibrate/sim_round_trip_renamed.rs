//! `canarylab calibrate --telemetry` against the simulator: a service whose
//! series are renamed (`[telemetry.metrics]`: every goldengoose family;
//! `[telemetry.labels]`: `code`, `version`, `pod`) simulated, its raw
//! series written as OpenMetrics and backfilled with promtool into a real
//! Prometheus, then calibrated back under the scenario's `[telemetry]`
//! (as `--telemetry SCENARIO` loads it): the parameters within their
//! stated uncertainty. The same series read without the telemetry fail
//! with a "no matching series" error naming the queries tried, not a
//! fit of defaults; and the written file, simulated again, writes the
//! renamed series (it keeps the `[telemetry]`).
//!
//! The run's Kayenta config is the catalog's, its metrics said as named
//! signals (`[analysis.signals]`), which the scenario's loader builds
//! under the renamed names; with the config's own PromQL (default names)
//! the simulator would select, and so draw, none of the renamed series.
//! `le` keeps its name: a histogram's bound label must be `le` for
//! `histogram_quantile`, so the simulated analysis could not read the
//! buckets otherwise (calibrate's reading of a renamed `le` is checked in
//! `calibrate::source`'s unit tests). What the simulator draws and leaves
//! out is as in [`super::sim_round_trip`]: pod_variation and pod_drift are
//! 0, the latency sum and count are not drawn.

use std::path::Path;

use cluster::calibrate;

use crate::real;
use crate::sim_round_trip::{
    Served, backfill_and_serve_track, recovered, runtime, scenario_toml, simulated,
};

/// The signals: the run's, and again for the fitted file simulated (it has
/// the `[analysis]` calibrate writes, without them).
const SIGNALS: &str = r#"
[analysis.signals]
latency_p50 = "latency_quantile:0.5"
latency_p99 = "latency_quantile:0.99"
error_ratio = "error_ratio"
cpu = "cpu"
memory = "memory"
"#;

const TELEMETRY: &str = concat!(
    r#"
[telemetry]
app = "shop"
namespace = "shop"

[telemetry.metrics]
"#,
    include_str!("../../cluster/tests/fixtures/shop-goldengoose-renames.toml"),
    r#"
[telemetry.labels]
code = "status"
version = "track"
pod = "kubernetes_pod_name"

[telemetry.production]
version = "stable"
"#
);

#[test]
#[ignore = "needs prometheus: apt-get install prometheus"]
fn calibrate_reads_renamed_series_under_the_scenarios_telemetry() {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    let path = catalog.join("calibrate-renamed.toml");
    let text = scenario_toml(
        "calibrate's round trip through the simulator, renamed",
        &format!("{SIGNALS}{TELEMETRY}"),
    );
    let scenario = scenarios::Scenario::parse(&text, &path, None).expect("scenario parses");
    // what `--telemetry SCENARIO` loads
    let telemetry = scenarios::parse_telemetry(&text, &path).expect("telemetry loads");
    assert_eq!(telemetry, scenario.file.telemetry);
    let svc = scenario.file.service.clone();
    let store = simulated(&scenario, 17);
    let names = |store: &prom::Store| -> std::collections::BTreeSet<String> {
        store
            .series()
            .iter()
            .filter_map(|s| s.labels.metric_name().map(str::to_owned))
            .collect()
    };
    let simulated = names(&store);
    assert!(
        simulated.contains("shop_requests_total")
            && simulated.contains("shop_latency_seconds_bucket")
            && simulated.contains("shop_cpu_seconds_total")
            && simulated.contains("shop_memory_bytes")
            && !simulated.iter().any(|n| n.starts_with("http_")),
        "{simulated:?}"
    );
    let dir = real::TempDir::new("calibrate-sim-renamed");
    let Served {
        server,
        window,
        url,
        api,
    } = backfill_and_serve_track(&dir.0, &store, "track", "stable");
    let step = window.step;
    let selector = r#"{track="stable"}"#;
    let (renamed, default) = runtime().block_on(async {
        let renamed =
            calibrate::source::read_named(&api, &url, selector, &telemetry, window, &mut |_| {})
                .await;
        let default = calibrate::read(&api, &url, selector, window, &mut |_| {}).await;
        (renamed, default)
    });
    drop(server);

    // without the telemetry: no fit of defaults, an error naming the queries
    let err = default
        .expect_err("the default names match nothing")
        .to_string();
    assert!(
        err.contains(&url)
            && err.contains("no matching series")
            && err.contains(r#"count(http_requests_total{track="stable"})"#)
            && err
                .contains(r#"count(istio_requests_total{track="stable",reporter="destination"})"#)
            && err.contains("--telemetry"),
        "{err}"
    );

    let (obs, family, queries) = renamed.expect("reads the renamed production track");
    assert_eq!(family, calibrate::Family::Goldengoose);
    assert_eq!(obs.sources.requests, "shop_requests_total");
    assert!(
        queries.iter().all(|q| !q.promql.contains("http_")),
        "{queries:?}"
    );
    assert!(obs.pods.iter().all(|p| p.name.starts_with("shop-primary")));
    let c = calibrate::calibrate(&obs);
    eprintln!("{}", calibrate::write::summary(&c));
    let mut log = format!("{} steps of {} s\n", c.steps, step.as_secs());
    assert_eq!(c.replicas.value(), Some(f64::from(svc.replicas)), "{c:?}");
    for (fit, truth, what) in [
        (&c.request_rate, svc.request_rate * 0.95, "request_rate"),
        (&c.error_rate, svc.error_rate, "error_rate"),
        (
            &c.latency_median_ms,
            svc.latency_median_ms,
            "latency_median_ms",
        ),
        (&c.latency_sigma, svc.latency_sigma, "latency_sigma"),
        (
            &c.cpu_ms_per_request,
            svc.cpu_ms_per_request,
            "cpu_ms_per_request",
        ),
        (&c.cpu_idle_cores, svc.cpu_idle_cores, "cpu_idle_cores"),
        (&c.load_noise_sd, svc.load_noise.sd, "load_noise.sd"),
        (&c.load_noise_rho, svc.load_noise.rho, "load_noise.rho"),
    ] {
        recovered(fit, truth, what, &mut log);
    }
    let memory = c.memory_mib.value().expect("memory fitted");
    assert!(
        (memory - svc.memory_mib).abs() <= 0.01 * svc.memory_mib,
        "memory {memory}\n{log}"
    );

    // The written file keeps the telemetry: simulated again, its series
    // carry the renamed names.
    let prov = calibrate::write::Provenance {
        url: url.clone(),
        selector: selector.into(),
        family: family.name().into(),
        from_unix: window.from,
        to_unix: window.to,
        queries: queries.into_iter().map(|q| (q.what, q.promql)).collect(),
        telemetry: Some(("calibrate-renamed.toml".into(), telemetry.clone())),
    };
    let text = calibrate::write::scenario_toml(&c, &prov);
    let fitted = scenarios::Scenario::parse(
        &format!("{text}{SIGNALS}"),
        &catalog.join("fitted.toml"),
        Some(&catalog.join("canary-config.json")),
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(fitted.file.telemetry, telemetry);
    let runs =
        sim::prometheus::example_series(std::slice::from_ref(&fitted), 18).expect("simulates");
    let again = names(&runs[0].2);
    assert!(
        again.contains("shop_requests_total") && !again.iter().any(|n| n.starts_with("http_")),
        "{again:?}"
    );
    assert!(
        runs[0].2.series().iter().all(|s| s.labels.get("kubernetes_pod_name").is_some()
            && s.labels.get("pod").is_none()),
        "the pod label renamed"
    );
    eprintln!("{log}");
}
