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

/// A Prometheus process, killed by PID (and its data removed) on drop.
struct Prometheus {
    child: std::process::Child,
    dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_prometheus(target: std::net::SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("gg-istio-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: gg\n    static_configs: [{{targets: [\"{target}\"]}}]\n"
        ),
    )
    .expect("write config");
    // Prometheus cannot report a port it picked: take a free one.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port");
    let child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus runs (apt-get install prometheus)");
    Prometheus { child, dir, addr }
}

/// Percent-encodes a PromQL query for a URL query string.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The single value of an instant query, or None while it has no result.
async fn instant(prometheus: std::net::SocketAddr, query: &str) -> Option<f64> {
    let mut client = crate::support::Client::try_connect(prometheus).await.ok()?;
    let response = client
        .try_send(
            Method::GET,
            &format!("/api/v1/query?query={}", encode(query)),
            None,
            Bytes::new(),
        )
        .await
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    let result = json["data"]["result"].as_array()?;
    assert!(result.len() <= 1, "{json}");
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Flagger's built-in Istio checks (request-success-rate, request-duration,
/// as in flagger's pkg/metrics/observers/istio.go), run by a real Prometheus
/// against goldengoose's --istio metrics on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus: apt-get install prometheus"]
async fn flaggers_istio_queries_work_on_a_real_prometheus() {
    let server = start(Config {
        version: "canary".to_string(),
        istio: Some("workload=shop-canary,service=shop".parse().expect("valid")),
        ..config(&["latency=30ms", "errors=0.2:503"])
    })
    .await;
    let prometheus = start_prometheus(server.addr);
    let success_rate = r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",destination_workload=~"shop-canary",response_code!~"5.*"}[30s])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",destination_workload=~"shop-canary"}[30s])) * 100"#;
    let p99 = r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="default",destination_workload=~"shop-canary"}[30s])) by (le))"#;
    let mut client = server.client().await;
    // Requests until both queries have values over at least two scrapes
    // that saw 100 requests (bounded by count, not by time).
    let mut answers = None;
    for _ in 0..200 {
        for _ in 0..20 {
            client.get("/").await;
        }
        let both = (
            instant(prometheus.addr, success_rate).await,
            instant(prometheus.addr, p99).await,
            instant(prometheus.addr, "sum(istio_requests_total)").await,
        );
        if let (Some(rate), Some(p99), Some(total)) = both
            && total >= 100.0
        {
            answers = Some((rate, p99));
            break;
        }
    }
    let (rate, p99) = answers.expect("Prometheus answered both queries");
    // errors=0.2: about 80% succeed.
    assert!((60.0..=95.0).contains(&rate), "success rate {rate}");
    // Every request takes at least 30 ms, so p99 is interpolated inside
    // a bucket above 25 ms.
    assert!(p99 > 25.0, "p99 {p99}");
    drop(prometheus);
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
