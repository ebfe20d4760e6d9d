//! Admin API: auth, reading and replacing faults, refusing bad specs.

use bytes::Bytes;
use goldengoose::{Config, FaultsStatus};
use hyper::{Method, StatusCode};

use crate::support::{Client, config, count, hammer, start};

const TOKEN: &str = "t0ken-for-tests";

fn with_token(faults: &[&str]) -> Config {
    Config {
        admin_token: Some(TOKEN.to_string()),
        ..config(faults)
    }
}

fn put(faults: &str) -> Bytes {
    Bytes::from(format!(r#"{{"faults": {faults}}}"#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_without_a_token() {
    let server = start(config(&[])).await;
    let mut client = server.client().await;
    let response = client
        .send(
            Method::PUT,
            "/admin/faults",
            Some("anything"),
            put(r#"["errors=1"]"#),
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_the_bearer_token() {
    let server = start(with_token(&[])).await;
    let mut client = server.client().await;
    let missing = client.get("/admin/faults").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let wrong = client
        .send(
            Method::GET,
            "/admin/faults",
            Some("t0ken-for-testz"),
            Bytes::new(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let wrong_put = client
        .send(
            Method::PUT,
            "/admin/faults",
            Some("nope"),
            put(r#"["errors=1"]"#),
        )
        .await;
    assert_eq!(wrong_put.status, StatusCode::FORBIDDEN);
    assert_eq!(
        client.get("/").await.status,
        StatusCode::OK,
        "fault not set"
    );
    let right = client
        .send(Method::GET, "/admin/faults", Some(TOKEN), Bytes::new())
        .await;
    assert_eq!(right.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replaces_faults_and_bad_specs_change_nothing() {
    let server = start(with_token(&["latency=1ms"])).await;
    let mut client = server.client().await;
    let status: FaultsStatus = serde_json::from_slice(
        &client
            .send(Method::GET, "/admin/faults", Some(TOKEN), Bytes::new())
            .await
            .body,
    )
    .expect("status json");
    assert_eq!(status.faults, vec!["latency=1ms".parse().expect("spec")]);
    assert_eq!(status.version, "test");

    let set = client
        .send(
            Method::PUT,
            "/admin/faults",
            Some(TOKEN),
            put(r#"["errors=1:503"]"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    // Existing connections pick up the change too.
    assert_eq!(
        client.get("/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let responses = hammer(server.addr, 4, 25).await;
    assert_eq!(count(&responses, 503), 100);

    for bad in [
        r#"["errors=1.5"]"#,
        r#"["errors=-0.1"]"#,
        r#"["latency=50ms", "explode=1"]"#,
        r#"["latency=-5ms"]"#,
        r#""errors=0.5""#,
    ] {
        let refused = client
            .send(Method::PUT, "/admin/faults", Some(TOKEN), put(bad))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.text().contains("error"), "{}", refused.text());
    }
    assert_eq!(
        client.get("/").await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "unchanged"
    );

    let cleared = client
        .send(Method::PUT, "/admin/faults", Some(TOKEN), put("[]"))
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    let status: FaultsStatus = serde_json::from_slice(&cleared.body).expect("status json");
    assert!(status.faults.is_empty());
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_slow_start_makes_unready() {
    let server = start(with_token(&[])).await;
    let mut client = Client::connect(server.addr).await;
    assert_eq!(client.get("/readyz").await.status, StatusCode::OK);
    client
        .send(
            Method::PUT,
            "/admin/faults",
            Some(TOKEN),
            put(r#"["slow_start=30s"]"#),
        )
        .await;
    assert_eq!(
        client.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.stop().await;
}
