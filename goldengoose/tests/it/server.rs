//! Routing, headers, graceful shutdown, HTTP/2, seeded determinism.

use std::time::Duration;

use bytes::Bytes;
use goldengoose::{Config, Outcome};
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::{Client, config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_version_header() {
    let server = start(Config {
        version: "canary".to_string(),
        payload_bytes: 300,
        ..config(&[])
    })
    .await;
    let mut client = server.client().await;
    let work = client.get("/").await;
    assert_eq!(work.status, StatusCode::OK);
    assert_eq!(work.body.len(), 300);
    assert!(work.text().starts_with("goldengoose canary\n"));
    for (path, status) in [
        ("/", 200),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/nope", 404),
        ("/admin/faults", 404),
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status.as_u16(), status, "{path}");
        assert_eq!(response.headers["x-version"], "canary", "{path}");
    }
    let post = client
        .send(Method::POST, "/", None, Bytes::from_static(b"x"))
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(server.stop().await, Outcome::Stopped { drained: true });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = start(config(&["latency=400ms"])).await;
    let addr = server.addr;
    let mut client = server.client().await;
    let mut ready_client = server.client().await;
    let in_flight = tokio::spawn(async move { client.get("/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Not accepting any more, and the in-flight request still gets its answer.
    assert!(Client::try_connect(addr).await.is_err(), "still accepting");
    let response = in_flight.await.expect("client task");
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.elapsed >= Duration::from_millis(400));
    assert_eq!(
        stopping.await.expect("stop task"),
        Outcome::Stopped { drained: true }
    );
    // The idle keep-alive connection was closed, not left hanging.
    assert!(
        ready_client
            .try_send(Method::GET, "/healthz", None, Bytes::new())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_shutdown() {
    let server = start(Config {
        drain_timeout: Duration::from_millis(200),
        ..config(&["latency=30s"])
    })
    .await;
    let mut client = server.client().await;
    let stuck = tokio::spawn(async move { client.get("/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stop().await, Outcome::Stopped { drained: false });
    stuck.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let server = start(config(&[])).await;
    let stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let request = Request::builder()
        .uri(format!("http://{}/", server.addr))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("h2 response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.headers()["x-version"], "test");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body.len(), 64);
    drop(sender);
    assert_eq!(server.stop().await, Outcome::Stopped { drained: true });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_the_same_error_sequence() {
    async fn sequence(seed: u64) -> Vec<u16> {
        let server = start(Config {
            seed,
            ..config(&["errors=0.5"])
        })
        .await;
        let mut client = server.client().await;
        let mut codes = Vec::new();
        for _ in 0..64 {
            codes.push(client.get("/").await.status.as_u16());
        }
        server.stop().await;
        codes
    }
    let first = sequence(7).await;
    assert_eq!(first, sequence(7).await);
    assert_ne!(first, sequence(8).await);
    assert!(first.contains(&500) && first.contains(&200));
}
