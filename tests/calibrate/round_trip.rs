//! `canarylab calibrate` round trip on real components: goldengoose
//! processes with known settings, loadgen at known rates, a real
//! Prometheus scraping every 250 ms (time-scaled: a step of 250 ms plays
//! the simulator's 10 s step), then the calibration read back from that
//! Prometheus over its HTTP API.
//!
//! Two services run side by side, told apart by goldengoose's `version`
//! label, because goldengoose's CPU fault burns on the request path (it
//! would add its milliseconds to the latency being recovered):
//! - `lat`: 4 pods, log-normal latency with median 200 ms x exp(offset_i)
//!   (offsets -0.075, -0.025, 0.025, 0.075: sample sd 0.0645), sigma 0.5,
//!   2% errors, 200 req/s Poisson split evenly;
//! - `cpu`: 3 pods burning 2 ms of CPU per request, at 20, 40 and 80 req/s
//!   (the spread in rate is what tells CPU per request from idle CPU).

use std::time::{Duration, Instant};

use cluster::calibrate::{self, Fit, Window};
use cluster::{Goose, Prometheus, ScrapeTarget, Supervision};
use loadgen::{Arrival, Control, Plan, RateProfile, Target, Targets};

const STEP: Duration = Duration::from_millis(250);
const RUN: Duration = Duration::from_secs(200);
const OFFSETS: [f64; 4] = [-0.075, -0.025, 0.025, 0.075];
const MEDIAN_MS: f64 = 200.0;
const SIGMA: f64 = 0.5;
const ERRORS: f64 = 0.02;
const LAT_RATE: f64 = 200.0;
const CPU_MS: f64 = 2.0;
const CPU_RATES: [f64; 3] = [20.0, 40.0, 80.0];

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn config(version: &str, faults: &[String], seed: u64) -> goldengoose::Config {
    goldengoose::Config {
        version: version.into(),
        faults: faults.iter().map(|f| f.parse().expect("fault")).collect(),
        seed,
        ..Default::default()
    }
}

fn fitted(fit: &Fit, what: &str) -> (f64, f64) {
    match fit {
        Fit::Fitted { value, se, .. } => (*value, *se),
        Fit::NotFitted(why) => panic!("{what} not fitted: {why}"),
    }
}

/// `truth` within 3 standard errors, plus `above` of one-sided slack for
/// what the real server adds on top of its injected fault.
#[track_caller]
fn recovered(fit: &Fit, truth: f64, above: f64, what: &str, log: &mut String) {
    let (v, se) = fitted(fit, what);
    let line = format!(
        "{what}: fitted {v:.5} +- {se:.5}, truth {truth:.5} ({:+.2} se)\n",
        (v - truth) / se
    );
    log.push_str(&line);
    assert!(
        se.is_finite() && v >= truth - 3.0 * se && v <= truth + above + 3.0 * se,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn calibrate_recovers_known_goldengoose_settings_from_a_real_prometheus() {
    let started = Instant::now();
    let supervision = Supervision::default();
    let mut pods = Vec::new();
    for (i, o) in OFFSETS.iter().enumerate() {
        let median = MEDIAN_MS * o.exp();
        let faults = vec![
            format!("latency=lognormal:{median:.4}ms:{SIGMA}"),
            format!("errors={ERRORS}"),
        ];
        pods.push((
            format!("lat-{i}"),
            Goose::spawn(
                &crate::goldengoose(),
                &format!("lat-{i}"),
                &config("lat", &faults, 10 + i as u64),
                &supervision,
            )
            .await
            .expect("starts"),
            LAT_RATE / OFFSETS.len() as f64,
        ));
    }
    for (i, rate) in CPU_RATES.iter().enumerate() {
        pods.push((
            format!("cpu-{i}"),
            Goose::spawn(
                &crate::goldengoose(),
                &format!("cpu-{i}"),
                &config("cpu", &[format!("cpu={CPU_MS}ms")], 20 + i as u64),
                &supervision,
            )
            .await
            .expect("starts"),
            *rate,
        ));
    }
    let targets: Vec<ScrapeTarget> = pods
        .iter()
        .map(|(_, g, _)| ScrapeTarget::new("goldengoose", g.addr()))
        .collect();
    let prom = tokio::task::spawn_blocking(move || Prometheus::start(None, &targets, STEP))
        .await
        .expect("joins")
        .expect("prometheus starts");
    let total: f64 = pods.iter().map(|p| p.2).sum();
    let mut plan = Plan::new(
        Targets::Weighted(
            pods.iter()
                .map(|(n, g, r)| {
                    Target::parse(&format!("{n}=http://{}/@{}", g.addr(), r / total * 100.0))
                        .expect("target")
                })
                .collect(),
        ),
        Arrival::Poisson(RateProfile::constant(total)),
    );
    plan.duration = Some(RUN + Duration::from_secs(5));
    plan.connections = 512;
    plan.loopback_only = true;
    plan.seed = 5;
    let control = Control::new();
    let load = tokio::spawn(loadgen::run(plan, control.clone()));
    // The first scrapes land a few seconds after the start.
    let from = (unix_now() + 6.0).ceil();
    tokio::time::sleep(RUN).await;
    let to = (unix_now() - 1.0).floor();
    let api = prom.api();
    let url = format!("http://{}", prom.addr());
    let read = |selector: &'static str| {
        let api = api.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let window = Window {
                from,
                to,
                step: STEP,
            };
            calibrate::read(&api, &url, selector, window, &mut |_| {})
        })
    };
    let lat = read(r#"{version="lat"}"#).await.expect("joins");
    let cpu = read(r#"{version="cpu"}"#).await.expect("joins");
    let none = read(r#"{version="nosuch"}"#).await.expect("joins");
    control.stop();
    let report = load.await.expect("joins").expect("load runs");
    drop(prom);
    for (_, g, _) in pods {
        assert!(g.stop().await.is_some(), "was running");
    }

    let err = none.expect_err("no series match").to_string();
    assert!(
        err.contains(&url) && err.contains(r#"version="nosuch""#),
        "{err}"
    );

    let (obs, family, _) = lat.expect("reads the lat service");
    assert_eq!(family, calibrate::Family::Goldengoose);
    let c = calibrate::calibrate(&obs);
    let mut log = format!(
        "{} steps; loadgen sent {} requests\n",
        c.steps,
        report.targets.iter().map(|t| t.requests).sum::<u64>()
    );
    assert_eq!(c.replicas.value(), Some(4.0), "{c:?}");
    recovered(&c.request_rate, LAT_RATE, 0.0, "request_rate", &mut log);
    recovered(&c.error_rate, ERRORS, 0.0, "error_rate", &mut log);
    // The server adds its own time (well under 1 ms) to the injected delay.
    recovered(
        &c.latency_median_ms,
        MEDIAN_MS * (OFFSETS.iter().sum::<f64>() / 4.0).exp(),
        1.0,
        "latency_median_ms",
        &mut log,
    );
    recovered(&c.latency_sigma, SIGMA, 0.0, "latency_sigma", &mut log);
    let m = OFFSETS.iter().sum::<f64>() / 4.0;
    let sd = (OFFSETS.iter().map(|o| (o - m).powi(2)).sum::<f64>() / 3.0).sqrt();
    recovered(&c.pod_variation, sd, 0.0, "pod_variation", &mut log);
    // Poisson arrivals, no drift: both noises are zero.
    recovered(&c.load_noise_sd, 0.0, 0.0, "load_noise.sd", &mut log);
    recovered(&c.pod_drift_sd, 0.0, 0.0, "pod_drift.sd", &mut log);
    assert!(c.latency_max_cdf_error.is_some_and(|e| e < 0.02), "{c:?}");

    let (obs, _, _) = cpu.expect("reads the cpu service");
    let c = calibrate::calibrate(&obs);
    assert_eq!(c.replicas.value(), Some(3.0), "{c:?}");
    recovered(
        &c.request_rate,
        CPU_RATES.iter().sum(),
        0.0,
        "cpu service request_rate",
        &mut log,
    );
    // goldengoose's own serving cost (~0.1 ms per request measured in
    // cluster/calibration) comes on top of the 2 ms burn.
    recovered(
        &c.cpu_ms_per_request,
        CPU_MS,
        0.3,
        "cpu_ms_per_request",
        &mut log,
    );
    let (idle, _) = fitted(&c.cpu_idle_cores, "cpu_idle_cores");
    log.push_str(&format!("cpu_idle_cores: {idle:.4}\n"));
    assert!(idle.abs() < 0.05, "{log}");

    // What the test took, for the record.
    eprintln!(
        "{log}round trip took {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
