//! /metrics parses as Prometheus text and matches the requests sent.

use hyper::StatusCode;

use crate::support::{Client, config, hammer, parse_exposition, scrape, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_requests_sent() {
    let server = start(config(&[])).await;
    let responses = hammer(server.addr, 8, 125).await;
    assert_eq!(responses.len(), 1000);
    // Probes and scrapes are not work requests and are not counted.
    let mut client = Client::connect(server.addr).await;
    client.get("/healthz").await;
    client.get("/readyz").await;
    let metrics = scrape(server.addr).await;
    let get = |name: &str| {
        *metrics
            .get(name)
            .unwrap_or_else(|| panic!("no series {name}"))
    };
    assert_eq!(
        get(r#"http_requests_total{version="test",code="200"}"#),
        1000.0
    );
    assert_eq!(
        get(r#"http_request_duration_seconds_count{version="test"}"#),
        1000.0
    );
    assert_eq!(
        get(r#"http_request_duration_seconds_bucket{version="test",le="+Inf"}"#),
        1000.0
    );
    assert_eq!(
        get(r#"http_request_duration_seconds_bucket{version="test",le="10.0"}"#),
        1000.0
    );
    assert!(
        metrics.contains_key(r#"http_request_duration_seconds_bucket{version="test",le="0.001"}"#)
    );
    assert_eq!(get(r#"http_requests_in_flight{version="test"}"#), 0.0);
    assert!(get(r#"process_cpu_seconds_total{version="test"}"#) > 0.0);
    assert!(get(r#"process_resident_memory_bytes{version="test"}"#) > 1e6);
    assert_eq!(get(r#"goldengoose_heap_bytes{version="test"}"#), 0.0);
    let build = format!(
        r#"goldengoose_build_info{{version="test",goldengoose_version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&build), 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_content_type_is_openmetrics() {
    let server = start(config(&[])).await;
    let response = Client::connect(server.addr).await.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let content_type = response.headers["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_exposition(&response.text());
    server.stop().await;
}

#[test]
#[should_panic(expected = "bad value")]
fn the_exposition_parser_rejects_garbage() {
    parse_exposition("http_requests_total{code=\"200\"} many\n# EOF\n");
}
