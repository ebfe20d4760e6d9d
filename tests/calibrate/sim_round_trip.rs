//! `canarylab calibrate` against the simulator: a scenario simulated, its
//! raw series (what `canarylab sim --dump-series` writes) written as
//! OpenMetrics, backfilled with `promtool tsdb create-blocks-from
//! openmetrics` into a real Prometheus, then calibrated back over the HTTP
//! API, in seconds: the release's series (330 steps of 10 s, the
//! production track's 6 pods) through promtool, Prometheus's TSDB and its
//! range queries.
//!
//! What the simulator draws decides what can come back (sim/src/series.rs):
//! the pods of a track share one latency offset and one drift (the track's
//! requests are split over its pods), so the production track's pods are
//! alike, and the scenario sets pod_variation and pod_drift to 0 so the
//! track's shared offset and drift (which calibrate would see as "latency
//! moving together") are 0 too. The run draws only the families its
//! canary config reads, which leaves out the latency sum and count: the
//! per-pod latency fits (pod_variation, pod_drift) must say so. Fresh-pod
//! effects are off (production is a week old anyway). Everything else is
//! the scenario's.

use std::path::Path;
use std::time::Duration;

use cluster::PromApi;
use cluster::calibrate::{self, Fit, Window};

use crate::real;

/// The service and release both round trips simulate, after a
/// `description`; the renamed one adds its signals and `[telemetry]`.
const SERVICE_AND_RELEASE: &str = r#"
expect = "pass"

[service]
request_rate = 300.0
replicas = 6
latency_median_ms = 80.0
latency_sigma = 0.4
error_rate = 0.005
cpu_ms_per_request = 4.0
cpu_idle_cores = 0.03
memory_mib = 250.0
pod_variation = 0.0
load_noise = { sd = 0.04, rho = 0.7 }
pod_drift = { sd = 0.0, rho = 0.0 }
fresh_pod = { cold_latency = 0.0, warm_up_s = 600.0, memory_ratio = 1.0 }

[pipeline]
baseline = "production"
baseline_replicas = 0
traffic = { canary = 5, baseline = 0, production = 95 }
# the default lifetime gives 210 steps of series, under the 250 that 5
# jackknife blocks need (else the errors are infinite); this gives 330
lifetime_s = 10800.0

[analysis]
config = "canary-config.json"
"#;

/// The round trip's scenario file: `description`, the shared service and
/// release, then `more` (tables of the file's end).
pub(crate) fn scenario_toml(description: &str, more: &str) -> String {
    format!("description = {description:?}{SERVICE_AND_RELEASE}{more}")
}

/// The scenario simulated once (the study's first run, `seed`): its raw
/// series.
pub(crate) fn simulated(scenario: &scenarios::Scenario, seed: u64) -> prom::Store {
    let runs =
        sim::prometheus::example_series(std::slice::from_ref(scenario), seed).expect("simulates");
    let (_, _, store) = runs.into_iter().next().expect("one run");
    store
}

/// A simulated run's series backfilled into a real Prometheus (in `dir`)
/// and served, with the window calibrate reads: the grid of the track
/// whose `label` is `value`, from its first sample (the counters' starting
/// values, at traffic start) to its last, every 10 s.
pub(crate) struct Served {
    pub(crate) server: real::Prometheus,
    pub(crate) window: Window,
    pub(crate) url: String,
    pub(crate) api: PromApi,
}

pub(crate) fn backfill_and_serve_track(
    dir: &Path,
    store: &prom::Store,
    label: &str,
    value: &str,
) -> Served {
    let (store, server) = real::backfill_and_serve(dir, store);
    let (from_ms, to_ms) = store
        .series()
        .iter()
        .filter(|s| s.labels.get(label).is_some_and(|v| v == value))
        .flat_map(|s| s.timestamps.iter().copied())
        .fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    assert!(from_ms < to_ms, "the run has {label}={value} series");
    let window = Window {
        from: from_ms as f64 / 1000.0,
        to: to_ms as f64 / 1000.0,
        step: Duration::from_secs(10),
    };
    let url = format!("http://{}", server.addr);
    let api = PromApi::from_url(&url).expect("url");
    Served {
        server,
        window,
        url,
        api,
    }
}

/// A runtime for calibrate's reading.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Within 3 standard errors; prints the line either way.
#[track_caller]
pub(crate) fn recovered(fit: &Fit, truth: f64, what: &str, log: &mut String) {
    let (v, se) = match fit {
        Fit::Fitted { value, se, .. } => (*value, *se),
        Fit::NotFitted(why) => panic!("{what} not fitted: {why}\n{log}"),
    };
    log.push_str(&format!(
        "{what}: fitted {v:.5} +- {se:.5}, truth {truth:.5} ({:+.2} se)\n",
        (v - truth) / se
    ));
    assert!(
        se.is_finite() && (v - truth).abs() <= 3.0 * se,
        "{what} missed\n{log}"
    );
}

#[test]
#[ignore = "needs prometheus: apt-get install prometheus"]
fn calibrate_recovers_a_simulated_service_backfilled_into_a_real_prometheus() {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    let text = scenario_toml("calibrate's round trip through the simulator", "");
    let scenario =
        scenarios::Scenario::parse(&text, &catalog.join("calibrate-round-trip.toml"), None)
            .expect("scenario parses");
    let svc = scenario.file.service.clone();
    let store = simulated(&scenario, 17);
    let dir = real::TempDir::new("calibrate-sim");
    let Served {
        server,
        window,
        url,
        api,
    } = backfill_and_serve_track(&dir.0, &store, "version", "production");
    let step = window.step;
    let mut progress = |_: &str| {};
    let reading = calibrate::read(
        &api,
        &url,
        r#"{version="production"}"#,
        window,
        &mut progress,
    );
    let (obs, family, queries) = runtime()
        .block_on(reading)
        .expect("reads the production track");
    drop(server);
    assert_eq!(family, calibrate::Family::Goldengoose);
    let c = calibrate::calibrate(&obs);
    eprintln!("{}", calibrate::write::summary(&c));

    let mut log = format!("{} steps of {} s\n", c.steps, step.as_secs());
    assert_eq!(c.replicas.value(), Some(f64::from(svc.replicas)), "{c:?}");
    let share = 0.95;
    recovered(
        &c.request_rate,
        svc.request_rate * share,
        "request_rate",
        &mut log,
    );
    recovered(&c.error_rate, svc.error_rate, "error_rate", &mut log);
    recovered(
        &c.latency_median_ms,
        svc.latency_median_ms,
        "latency_median_ms",
        &mut log,
    );
    recovered(
        &c.latency_sigma,
        svc.latency_sigma,
        "latency_sigma",
        &mut log,
    );
    // Each pod's CPU follows its own requests (sim/src/prometheus.rs gives
    // a pod the track's idle CPU plus its requests' share of the busy CPU),
    // as calibrate's per-pod regression assumes of a real pod.
    recovered(
        &c.cpu_ms_per_request,
        svc.cpu_ms_per_request,
        "cpu_ms_per_request",
        &mut log,
    );
    recovered(
        &c.cpu_idle_cores,
        svc.cpu_idle_cores,
        "cpu_idle_cores",
        &mut log,
    );
    recovered(
        &c.load_noise_sd,
        svc.load_noise.sd,
        "load_noise.sd",
        &mut log,
    );
    recovered(
        &c.load_noise_rho,
        svc.load_noise.rho,
        "load_noise.rho",
        &mut log,
    );
    for (fit, what) in [
        (&c.pod_drift_sd, "pod_drift.sd"),
        (&c.pod_variation, "pod_variation"),
    ] {
        let Fit::NotFitted(why) = fit else {
            panic!("{what}: fitted without latency sum and count: {fit:?}\n{log}")
        };
        log.push_str(&format!("{what}: not fitted: {why}\n"));
    }
    let memory = c.memory_mib.value().expect("memory fitted");
    log.push_str(&format!(
        "memory_mib: fitted {memory:.3}, truth {}\n",
        svc.memory_mib
    ));
    assert!(
        (memory - svc.memory_mib).abs() <= 0.01 * svc.memory_mib,
        "{log}"
    );

    // The page draws the fits over this data: the histogram and the load
    // noise's autocorrelation (no per-pod latency, so no pod charts).
    let prov = calibrate::write::Provenance {
        url: url.clone(),
        selector: r#"{version="production"}"#.into(),
        family: family.name().into(),
        from_unix: window.from,
        to_unix: window.to,
        queries: queries.into_iter().map(|q| (q.what, q.promql)).collect(),
        telemetry: None,
    };
    let page = calibrate::write::html(&c, &prov);
    assert_eq!(page.matches("<svg").count(), 2, "{log}");
    assert!(page.contains("Latency histogram and the fitted log-normal"));
    assert!(page.contains("Load noise: autocorrelation and AR(1) fit"));

    // The A/A prediction on the fitted service, with the fit's uncertainty
    // carried into it, against the same releases (same seeds) of the true
    // service with what calibrate could not fit here (pod spread and drift,
    // the daily curve, fresh pods) at the fitted file's defaults, as the
    // prediction has them: the two rates differ by no more than the fit's
    // uncertainty and the runs' noise allow. (With the truth's zeros
    // instead of those defaults the true service rolls back 21% of A/A
    // releases and the file's 64%: what is not fitted matters.)
    let runs = 400;
    let p = canarylab::calibrate_cmd::aa_prediction(&scenario, &c, &prov, runs, (20, 100), 1)
        .expect("predicts");
    let prop = p.propagation.clone().expect("20 draws");
    log.push_str(&p.text());
    assert_eq!((p.runs, prop.draws, prop.runs_per_draw), (400, 20, 100));
    let opts = sim::StudyOptions {
        runs,
        seed: 1,
        threads: 0,
        examples: false,
    };
    let (written, _) = scenarios::parse_service(
        &calibrate::write::scenario_toml(&c, &prov),
        Path::new("fitted.toml"),
    )
    .expect("the fitted service validates");
    let mut same = scenario.clone();
    same.file.service.pod_variation = written.pod_variation;
    same.file.service.pod_drift = written.pod_drift;
    same.file.service.fresh_pod = written.fresh_pod;
    same.file.service.diurnal_swing = written.diurnal_swing;
    same.file.service.start_hour = written.start_hour;
    let truth = sim::run_study(std::slice::from_ref(&same), opts, &|_, _| {})
        .expect("simulates")
        .scenarios[0]
        .verdicts
        .rolled_back;
    let (fitted, truth) = (
        p.rolled_back as f64 / f64::from(runs),
        f64::from(truth) / f64::from(runs),
    );
    let sd = (2.0 * truth.max(0.01) * (1.0 - truth) / f64::from(runs) + prop.sd_fit * prop.sd_fit)
        .sqrt();
    log.push_str(&format!(
        "A/A false alarms: fitted service {fitted:.4}, true service {truth:.4} (sd allowed {sd:.4})\n"
    ));
    assert!((fitted - truth).abs() <= 3.0 * sd, "{log}");
    eprintln!("{log}");
}
