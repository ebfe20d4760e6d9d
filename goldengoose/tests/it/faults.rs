//! Each fault's effect, measured over loopback.

use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::support::{Client, assert_binomial, config, count, hammer, median, scrape, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_delays_every_request() {
    let server = start(config(&["latency=50ms"])).await;
    let mut client = server.client().await;
    let mut elapsed = Vec::new();
    for _ in 0..10 {
        let response = client.get("/").await;
        assert_eq!(response.status, StatusCode::OK);
        assert!(
            response.elapsed >= Duration::from_millis(50),
            "{:?}",
            response.elapsed
        );
        elapsed.push(response.elapsed);
    }
    assert!(median(elapsed) >= Duration::from_millis(50));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_not_delayed_by_latency_faults() {
    // An ordering, not a stopwatch: /healthz is answered while a request
    // that the fault holds for a minute is still in flight, however loaded
    // the machine.
    let server = start(config(&["latency=60s"])).await;
    let mut slow_client = server.client().await;
    let slow = tokio::spawn(async move { slow_client.get("/").await.status });
    let mut client = server.client().await;
    let mut in_flight = 0.0;
    while in_flight < 1.0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        in_flight = scrape(server.addr).await[r#"http_requests_in_flight{version="test"}"#];
    }
    let health = client.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(
        !slow.is_finished(),
        "the delayed request was answered first"
    );
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_latency_hits_a_fraction() {
    let server = start(config(&["latency=150ms@0.2"])).await;
    let responses = hammer(server.addr, 10, 40).await;
    let slow = responses
        .iter()
        .filter(|r| r.elapsed >= Duration::from_millis(150))
        .count();
    assert_binomial(slow, responses.len(), 0.2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lognormal_latency_has_its_median() {
    let server = start(config(&["latency=lognormal:40ms:0.5"])).await;
    let responses = hammer(server.addr, 20, 10).await;
    let below = responses
        .iter()
        .filter(|r| r.elapsed < Duration::from_millis(40))
        .count();
    // Loopback overhead and a loaded machine only push requests up, never
    // down: at most half (plus binomial slack) may be below the median, and
    // at least the lognormal's share above median * e^sigma (66 ms,
    // P = 0.159) must be above it. The median itself is checked without a
    // clock in goldengoose's fault tests (`lognormal_median_is_the_median`).
    let n = responses.len();
    let slack = |p: f64| 5.0 * (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        below as f64 <= n as f64 * 0.5 + slack(0.5),
        "{below} of {n}"
    );
    let above = responses
        .iter()
        .filter(|r| r.elapsed > Duration::from_millis(66))
        .count();
    assert!(
        above as f64 >= n as f64 * 0.159 - slack(0.159),
        "{above} of {n} above median * e^sigma"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_fraction_within_binomial_bounds_and_counted() {
    let server = start(config(&["errors=0.1:503"])).await;
    let responses = hammer(server.addr, 16, 200).await;
    let n = responses.len();
    let errors = count(&responses, 503);
    assert_eq!(errors + count(&responses, 200), n, "only 200 and 503");
    assert_binomial(errors, n, 0.1);
    let metrics = scrape(server.addr).await;
    assert_eq!(
        metrics[r#"http_requests_total{version="test",code="503"}"#],
        errors as f64
    );
    assert_eq!(
        metrics[r#"http_requests_total{version="test",code="200"}"#],
        (n - errors) as f64
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_leaves_a_fraction_unanswered_until_shutdown() {
    let server = start(config(&["hang=0.3"])).await;
    let n = 120;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            tokio::time::timeout(Duration::from_millis(500), client.get("/"))
                .await
                .is_err()
        }));
    }
    let mut timed_out = 0;
    for task in tasks {
        timed_out += usize::from(task.await.expect("client task"));
    }
    assert_binomial(timed_out, n, 0.3);
    // The clients gave up; their requests are no longer in flight.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = scrape(server.addr).await;
    assert_eq!(metrics[r#"http_requests_in_flight{version="test"}"#], 0.0);
    // A hanging request still held does not keep shutdown waiting.
    let mut client = Client::connect(server.addr).await;
    let held = tokio::spawn(async move {
        for _ in 0..200 {
            client.get("/").await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Shutdown released the hanging request instead of waiting out the
    // drain timeout (10 s): a state, not a stopwatch.
    assert_eq!(
        server.stop().await,
        goldengoose::Outcome::Stopped { drained: true }
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_fault_burns_process_cpu() {
    let server = start(config(&["cpu=25ms"])).await;
    let before = goldengoose::metrics::process_cpu_seconds().expect("linux /proc");
    let mut client = server.client().await;
    for _ in 0..20 {
        let response = client.get("/").await;
        assert!(response.elapsed >= Duration::from_millis(25));
    }
    let after = goldengoose::metrics::process_cpu_seconds().expect("linux /proc");
    // 20 x 25 ms of busy work; /proc counts in 10 ms ticks.
    assert!(after - before >= 0.4, "cpu went from {before} to {after}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_leak_per_request_shows_in_heap_and_rss() {
    let server = start(config(&["memory=1MiB/req"])).await;
    let rss_before = scrape(server.addr).await[r#"process_resident_memory_bytes{version="test"}"#];
    let mut client = server.client().await;
    for _ in 0..32 {
        client.get("/").await;
    }
    let metrics = scrape(server.addr).await;
    assert_eq!(
        metrics[r#"goldengoose_heap_bytes{version="test"}"#],
        (32u64 << 20) as f64
    );
    let rss_after = metrics[r#"process_resident_memory_bytes{version="test"}"#];
    assert!(
        rss_after - rss_before >= (24u64 << 20) as f64,
        "rss {rss_before} -> {rss_after}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_leak_per_second_grows_with_time() {
    let started = Instant::now();
    let server = start(config(&["memory=10MiB/s"])).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let heap = scrape(server.addr).await[r#"goldengoose_heap_bytes{version="test"}"#];
    let most = 10.0 * f64::from(1u32 << 20) * started.elapsed().as_secs_f64();
    assert!(heap >= f64::from(4u32 << 20), "{heap}");
    assert!(heap <= most, "{heap} > {most}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_is_unready_and_slower_then_recovers() {
    let server = start(config(&["slow_start=800ms:300ms"])).await;
    let mut client = server.client().await;
    assert_eq!(
        client.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let first = client.get("/").await;
    assert!(
        first.elapsed >= Duration::from_millis(100),
        "{:?}",
        first.elapsed
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(client.get("/readyz").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_requests_ends_the_server() {
    let mut server = start(config(&["crash=5req"])).await;
    let mut client = server.client().await;
    for _ in 0..4 {
        assert_eq!(client.get("/").await.status, StatusCode::OK);
    }
    // The fifth is the last the server sees; its answer may be lost.
    let _ = client
        .try_send(hyper::Method::GET, "/", None, bytes::Bytes::new())
        .await;
    match server.outcome().await {
        goldengoose::Outcome::Crashed { reason } => assert!(reason.contains("crash")),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(Client::try_connect(server.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_time_ends_the_server() {
    let mut server = start(config(&["crash=300ms"])).await;
    let mut client = server.client().await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    assert!(matches!(
        server.outcome().await,
        goldengoose::Outcome::Crashed { .. }
    ));
}
