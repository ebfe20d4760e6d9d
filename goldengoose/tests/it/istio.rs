//! `--istio`: the Istio-named families a destination sidecar would report,
//! with Istio's labels, counts by response code and Envoy's millisecond
//! buckets, for requests of known latency.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use goldengoose::{Config, Istio};
use hyper::{Method, StatusCode};

use crate::support::{Response, config, scrape, start};

const TOKEN: &str = "t0ken-for-istio-tests";

/// The labels of a series name `name{a="x",b="y"}` (values hold no commas
/// or quotes here), or None for another metric name.
fn labels_of<'a>(series: &'a str, name: &str) -> Option<BTreeMap<&'a str, &'a str>> {
    let labels = series
        .strip_prefix(name)?
        .strip_prefix('{')?
        .strip_suffix('}')?;
    Some(
        labels
            .split(',')
            .map(|pair| {
                let (key, value) = pair.split_once('=').expect("label is key=value");
                (key, value.trim_matches('"'))
            })
            .collect(),
    )
}

/// The value of the one series of `name` whose labels include `want`.
fn value(scraped: &BTreeMap<String, f64>, name: &str, want: &[(&str, &str)]) -> f64 {
    let found: Vec<(&String, f64)> = scraped
        .iter()
        .filter(|(series, _)| {
            labels_of(series, name).is_some_and(|labels| {
                want.iter()
                    .all(|(key, value)| labels.get(key) == Some(value))
            })
        })
        .map(|(series, value)| (series, *value))
        .collect();
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    found[0].1
}

/// How many responses the client saw in under `ms` milliseconds: the server
/// measured each in less time than the client, so at least that many are
/// in the bucket `le=ms` (a lower bound, never an upper bound on time).
fn faster_than(responses: &[Response], ms: u64) -> f64 {
    responses
        .iter()
        .filter(|r| r.elapsed < Duration::from_millis(ms))
        .count() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_metrics_count_codes_and_place_durations_in_envoys_buckets() {
    let istio: Istio = "workload=shop-canary,namespace=shop-ns,service=shop"
        .parse()
        .expect("valid --istio");
    let server = start(Config {
        version: "canary".to_string(),
        admin_token: Some(TOKEN.to_string()),
        istio: Some(istio),
        ..config(&["latency=30ms"])
    })
    .await;
    let mut client = server.client().await;
    let mut ok = Vec::new();
    for _ in 0..6 {
        ok.push(client.get("/").await);
    }
    assert!(ok.iter().all(|r| r.status == StatusCode::OK));
    // Not work requests: never counted.
    assert_eq!(client.get("/healthz").await.status, StatusCode::OK);
    let set = client
        .send(
            Method::PUT,
            "/admin/faults",
            Some(TOKEN),
            Bytes::from(r#"{"faults": ["latency=120ms", "errors=1:503"]}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let mut failed = Vec::new();
    for _ in 0..4 {
        failed.push(client.get("/").await);
    }
    assert!(
        failed
            .iter()
            .all(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
    );
    let scraped = scrape(server.addr).await;

    // Every series of both families carries Istio's labels for this workload.
    let istio_series: Vec<&String> = scraped
        .keys()
        .filter(|series| series.starts_with("istio_"))
        .collect();
    assert!(!istio_series.is_empty());
    for series in &istio_series {
        let name = series.split('{').next().expect("name");
        assert!(
            [
                "istio_requests_total",
                "istio_request_duration_milliseconds_bucket",
                "istio_request_duration_milliseconds_sum",
                "istio_request_duration_milliseconds_count",
            ]
            .contains(&name),
            "unexpected family {series}"
        );
        let labels = labels_of(series, name).expect("labelled");
        for (key, want) in [
            ("reporter", "destination"),
            ("source_workload", "unknown"),
            ("source_workload_namespace", "unknown"),
            ("destination_workload", "shop-canary"),
            ("destination_workload_namespace", "shop-ns"),
            ("destination_service", "shop.shop-ns.svc.cluster.local"),
            ("destination_service_name", "shop"),
            ("destination_service_namespace", "shop-ns"),
            ("destination_app", "shop"),
            ("destination_version", "canary"),
            ("destination_canonical_service", "shop"),
            ("destination_canonical_revision", "canary"),
            ("request_protocol", "http"),
            ("response_flags", "-"),
            ("connection_security_policy", "none"),
        ] {
            assert_eq!(labels.get(key), Some(&want), "{key} of {series}");
        }
        assert!(
            ["200", "503"].contains(labels.get("response_code").expect("response_code")),
            "{series}"
        );
        assert!(!labels.contains_key("version"), "not Istio's: {series}");
    }

    let code = |c| [("response_code", c)];
    assert_eq!(value(&scraped, "istio_requests_total", &code("200")), 6.0);
    assert_eq!(value(&scraped, "istio_requests_total", &code("503")), 4.0);
    // The app's own metrics count the same requests.
    assert_eq!(
        value(&scraped, "http_requests_total", &[("code", "200")]),
        6.0
    );

    // Envoy's default buckets, all of them, for each code.
    let bucket = |c: &str, le: &str| {
        value(
            &scraped,
            "istio_request_duration_milliseconds_bucket",
            &[("response_code", c), ("le", le)],
        )
    };
    for le in [
        "0.5",
        "1.0",
        "5.0",
        "10.0",
        "25.0",
        "50.0",
        "100.0",
        "250.0",
        "500.0",
        "1000.0",
        "2500.0",
        "5000.0",
        "10000.0",
        "30000.0",
        "60000.0",
        "300000.0",
        "600000.0",
        "1800000.0",
        "3600000.0",
        "+Inf",
    ] {
        bucket("200", le);
        bucket("503", le);
    }
    // 30 ms requests: none at or below 25 ms, all by +Inf, and in le=50 at
    // least those the client itself saw in under 50 ms.
    assert_eq!(bucket("200", "25.0"), 0.0);
    assert!(bucket("200", "50.0") >= faster_than(&ok, 50));
    assert_eq!(bucket("200", "+Inf"), 6.0);
    // 120 ms answers with 503: none at or below 100 ms.
    assert_eq!(bucket("503", "100.0"), 0.0);
    assert!(bucket("503", "250.0") >= faster_than(&failed, 250));
    assert_eq!(bucket("503", "+Inf"), 4.0);
    let count = |c| {
        value(
            &scraped,
            "istio_request_duration_milliseconds_count",
            &code(c),
        )
    };
    let sum = |c| {
        value(
            &scraped,
            "istio_request_duration_milliseconds_sum",
            &code(c),
        )
    };
    assert_eq!(count("200"), 6.0);
    assert_eq!(count("503"), 4.0);
    // Whole milliseconds, each at least the injected delay.
    assert!(sum("200") >= 6.0 * 30.0, "{}", sum("200"));
    assert!(sum("503") >= 4.0 * 120.0, "{}", sum("503"));
    assert_eq!(sum("200").fract(), 0.0);
    assert_eq!(sum("503").fract(), 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_istio_families_without_the_option() {
    let server = start(config(&[])).await;
    let mut client = server.client().await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    let scraped = scrape(server.addr).await;
    assert!(scraped.keys().any(|s| s.starts_with("http_requests_total")));
    assert!(
        !scraped.keys().any(|s| s.starts_with("istio_")),
        "{scraped:?}"
    );
    server.stop().await;
}
