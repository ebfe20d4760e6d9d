//! `canarylab serve`: Kayenta's remote-judge contract, compared field by
//! field with `canarylab judge` on the same input; the hardening (token,
//! body limit, timeouts, saturation); metrics; graceful drain.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::serve::{Listeners, Options, Stopped};
use serde_json::{Value, json};

use crate::canarylab;

/// A server on 127.0.0.1:0 in a runtime of its own; dropping it shuts it
/// down and waits for it.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Stopped>>,
}

impl Server {
    pub fn start(options: Options) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                cluster::serve::run(listener, options, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
            })
        });
        let addr = addr_rx.recv().unwrap();
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the server; how it ended.
    pub fn stop(mut self) -> Stopped {
        self.shutdown().unwrap()
    }

    fn shutdown(&mut self) -> Option<Stopped> {
        let _ = self.stop.take()?.send(());
        self.thread.take()?.join().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// One HTTP/1.1 request on a fresh connection; status and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(body);
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    request(addr, "POST", path, &[], body)
}

/// A small deterministic generator, so the bodies are the same every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A canary config as Kayenta's ObjectMapper writes it (nulls omitted,
/// `serviceType` from the getter, timestamps, applications), naming
/// `judge`.
pub fn kayenta_config(metrics: usize, judge: &str) -> Value {
    let directions = ["increase", "decrease", "either"];
    let metric = |i: usize| {
        let mut canary = json!({
            "direction": directions[i % 3],
            "nanStrategy": if i.is_multiple_of(4) { "replace" } else { "remove" },
            "critical": i == 1,
            "mustHaveData": i == 2,
        });
        if i % 5 == 3 {
            canary["effectSize"] = json!({"allowedIncrease": 1.1, "allowedDecrease": 0.9});
        }
        if i % 7 == 4 {
            canary["outliers"] = json!({"strategy": "remove", "outlierFactor": 3.0});
        }
        json!({
            "name": format!("metric_{i}"),
            "query": {
                "type": "prometheus",
                "metricName": "http_requests_total",
                "labelBindings": [],
                "groupByFields": [],
                "customInlineTemplate": format!("PromQL:sum(rate(m{i}{{version=\"${{scope}}\"}}[1m]))"),
                "serviceType": "prometheus"
            },
            "groups": [if i.is_multiple_of(2) { "latency" } else { "errors" }],
            "analysisConfigurations": { "canary": canary },
            "scopeName": "default"
        })
    };
    json!({
        "createdTimestamp": 1_764_979_200_000_i64,
        "updatedTimestamp": 1_764_979_200_000_i64,
        "createdTimestampIso": "2025-12-06T00:00:00Z",
        "updatedTimestampIso": "2025-12-06T00:00:00Z",
        "name": "contract",
        "id": "9d5bdf5e-6f5c-4d1a-9b0e-000000000001",
        "configVersion": "1",
        "applications": ["app"],
        "judge": { "name": judge, "judgeConfigurations": {} },
        "metrics": (0..metrics).map(metric).collect::<Vec<_>>(),
        "templates": {},
        "classifier": { "groupWeights": { "latency": 60.0, "errors": 40.0 } }
    })
}

/// Metric set pairs as Kayenta writes them: ids, tags, NaN as "NaN",
/// scopes and attributes. `shift` multiplies the canary of every other
/// metric.
pub fn kayenta_pairs(metrics: usize, points: usize, shift: f64, seed: u64) -> Value {
    let mut rng = Lcg(seed);
    let series = |rng: &mut Lcg, factor: f64| -> Vec<Value> {
        (0..points)
            .map(|_| {
                let u = rng.next();
                if u < 0.03 {
                    json!("NaN")
                } else {
                    json!((100.0 + 20.0 * rng.next()) * factor)
                }
            })
            .collect()
    };
    let scope = json!({"startTimeIso": "2025-12-06T00:00:00Z", "startTimeMillis": 1_764_979_200_000_i64, "stepMillis": 60000});
    let pairs: Vec<Value> = (0..metrics)
        .map(|i| {
            let control = series(&mut rng, 1.0);
            let experiment = series(&mut rng, if i.is_multiple_of(2) { shift } else { 1.0 });
            json!({
                "name": format!("metric_{i}"),
                "id": format!("00000000-0000-0000-0000-{i:012}"),
                "tags": {},
                "values": { "control": control, "experiment": experiment },
                "scopes": { "control": scope, "experiment": scope },
                "attributes": {
                    "control": { "query": format!("sum(rate(m{i}{{version=\"baseline\"}}[1m]))") },
                    "experiment": { "query": format!("sum(rate(m{i}{{version=\"canary\"}}[1m]))") }
                }
            })
        })
        .collect();
    Value::Array(pairs)
}

/// A `RemoteJudgeRequest` as Kayenta's RemoteJudge posts it.
pub fn remote_judge_request(config: &Value, pairs: &Value, pass: f64, marginal: f64) -> Value {
    json!({
        "canaryConfig": config,
        "scoreThresholds": { "pass": pass, "marginal": marginal },
        "metricSetPairList": pairs,
    })
}

/// Every leaf of `a` and `b` equal, reporting the first differing path.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                return Err(format!("{path}: fields {kx:?} vs {ky:?}"));
            }
            for (k, v) in x {
                same(v, &y[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same(v, w, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

fn judge_cli(config: &Value, pairs: &Value, pass: f64, marginal: f64) -> Value {
    let dir = std::env::temp_dir().join(format!("canarylab-serve-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, p) = (dir.join("config.json"), dir.join("pairs.json"));
    std::fs::write(&c, config.to_string()).unwrap();
    std::fs::write(&p, pairs.to_string()).unwrap();
    let out = canarylab(&[
        "judge",
        "--config",
        c.to_str().unwrap(),
        "--pairs",
        p.to_str().unwrap(),
        "--pass",
        &pass.to_string(),
        "--marginal",
        &marginal.to_string(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_str(&out.unwrap().1).unwrap()
}

#[test]
fn kayenta_bodies_are_judged_as_canarylab_judge_judges_them() {
    let server = Server::start(Options::default());
    // --without-interval: Kayenta's own resultMetadata (ratio only), labels
    // decided from the band's edges; otherwise the same answer.
    let without = Server::start(Options {
        judge_interval: cluster::serve::Interval::Omitted,
        ..Options::default()
    });
    let mut classifications = std::collections::BTreeSet::new();
    for (case, (metrics, points, shift, pass, marginal)) in [
        (10, 60, 1.0, 75.0, 50.0),
        (10, 60, 1.4, 75.0, 50.0),
        (10, 60, 0.6, 95.0, 90.0),
        (4, 5, 1.0, 75.0, 50.0),
        (12, 120, 1.15, 60.0, 40.0),
    ]
    .into_iter()
    .enumerate()
    {
        let remote = kayenta_config(metrics, "RemoteJudge-v1.0");
        let pairs = kayenta_pairs(metrics, points, shift, case as u64 + 1);
        let body = remote_judge_request(&remote, &pairs, pass, marginal).to_string();
        assert!(body.contains("\"NaN\""), "the bodies carry NaN strings");
        let (status, answer) = post(server.addr, "/judge", body.as_bytes());
        assert_eq!(status, 200, "case {case}: {answer}");
        let served: Value = serde_json::from_str(&answer).unwrap();
        // RemoteJudge-v1.0 is the server's default judge: the same config
        // naming it, judged by the CLI.
        let netflix = kayenta_config(metrics, "NetflixACAJudge-v1.0");
        let cli = judge_cli(&netflix, &pairs, pass, marginal);
        same(&served, &cli, "").unwrap_or_else(|e| panic!("case {case}: {e}"));
        let (status, answer) = post(without.addr, "/judge", body.as_bytes());
        assert_eq!(status, 200, "case {case}: {answer}");
        let kayenta_shape: Value = serde_json::from_str(&answer).unwrap();
        let mut cli_without = cli.clone();
        for r in cli_without["results"].as_array_mut().unwrap() {
            let metadata = r["resultMetadata"].as_object_mut().unwrap();
            metadata.remove("mannWhitney");
            assert_eq!(metadata.keys().collect::<Vec<_>>(), ["ratio"]);
        }
        same(&kayenta_shape, &cli_without, "")
            .unwrap_or_else(|e| panic!("case {case}, without the interval: {e}"));
        assert_eq!(served["judgeName"], "NetflixACAJudge-v1.0");
        assert_eq!(served["results"].as_array().unwrap().len(), metrics);
        assert_eq!(
            served["results"][0]["id"],
            "00000000-0000-0000-0000-000000000000"
        );
        classifications.insert(served["score"]["classification"].to_string());
        assert!(
            served["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["resultMetadata"]["mannWhitney"].is_object()),
            "case {case}: the default answer reports the interval"
        );
        for r in served["results"].as_array().unwrap() {
            classifications.insert(r["classification"].to_string());
        }
    }
    // The cases exercise more than one verdict and metric label.
    assert!(classifications.contains("\"Pass\""), "{classifications:?}");
    assert!(classifications.contains("\"Fail\""), "{classifications:?}");
    assert!(classifications.contains("\"High\""), "{classifications:?}");
    assert!(classifications.contains("\"Low\""), "{classifications:?}");
    drop(server);
    drop(without);
}

/// `canarylab serve`'s threads: a single-threaded runtime each, accepting
/// from one socket, sharing the judge cache and limits; the same answers
/// on every connection, and a drain of all of them.
#[test]
fn per_thread_runtimes_answer_as_canarylab_judge_and_drain() {
    let listeners = Listeners::bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let addr = listeners.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        cluster::serve::run_per_thread(listeners, Options::default(), async {
            let _ = stopped.await;
        })
    });
    let config = kayenta_config(4, "RemoteJudge-v1.0");
    let pairs = kayenta_pairs(4, 30, 1.4, 7);
    let body = remote_judge_request(&config, &pairs, 75.0, 50.0).to_string();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || post(addr, "/judge", body.as_bytes()))
        })
        .collect();
    let answers: Vec<(u16, String)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let _ = stop.send(());
    let stopped = server.join().unwrap().unwrap();
    assert!(stopped.drained);
    let cli = judge_cli(
        &kayenta_config(4, "NetflixACAJudge-v1.0"),
        &pairs,
        75.0,
        50.0,
    );
    for (status, answer) in answers {
        assert_eq!(status, 200, "{answer}");
        let served: Value = serde_json::from_str(&answer).unwrap();
        same(&served, &cli, "").unwrap();
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped listening"
    );
    assert!(Listeners::bind("127.0.0.1:0".parse().unwrap(), 0).is_err());
}

/// The kernel spreads connections over the per-thread sockets: with many
/// connections open at once, every worker thread accepted some (with one
/// shared socket, the thread that happened to be awake took most of them,
/// or all). The property holds unless the kernel's hash of 64 random
/// source ports sends every one to the same socket (2^-63 for two).
#[test]
fn connections_are_spread_over_every_worker_thread() {
    for threads in [2, 4] {
        let listeners = Listeners::bind("127.0.0.1:0".parse().unwrap(), threads).unwrap();
        let addr = listeners.local_addr();
        assert_eq!(listeners.threads(), threads);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            cluster::serve::run_per_thread(listeners, Options::default(), async {
                let _ = stopped.await;
            })
        });
        // The server stops (and its thread is joined) also when an
        // assertion below fails.
        struct Stop(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Stop {
            fn drop(&mut self) {
                if let Some(stop) = self.0.take() {
                    let _ = stop.send(());
                }
            }
        }
        let guard = Stop(Some(stop));
        let connections = 64 * threads;
        // All open at once, each answered once.
        let mut open: Vec<TcpStream> = (0..connections)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        for stream in &mut open {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
        }
        for stream in &mut open {
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut answer = [0u8; 12];
            stream.read_exact(&mut answer).unwrap();
            assert_eq!(&answer, b"HTTP/1.1 200");
        }
        let (status, metrics) = request(addr, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        let per_worker: Vec<u64> = (0..threads)
            .map(|w| {
                let prefix = format!("canarylab_serve_connections_total{{worker=\"{w}\"}} ");
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map_or(0, |n| n.trim().parse().unwrap())
            })
            .collect();
        drop(open);
        drop(guard);
        let stopped = server.join().unwrap().unwrap();
        assert!(stopped.drained);
        // Every connection, and the one that read the metrics, counted.
        assert_eq!(
            per_worker.iter().sum::<u64>(),
            connections as u64 + 1,
            "{per_worker:?}\n{metrics}"
        );
        assert!(
            per_worker.iter().all(|&n| n > 0),
            "{threads} threads, connections per worker {per_worker:?}"
        );
    }
}

#[test]
fn bad_bodies_get_400_with_the_json_path() {
    let server = Server::start(Options::default());
    let config = kayenta_config(2, "RemoteJudge-v1.0");
    let mut pairs = kayenta_pairs(2, 10, 1.0, 1);
    pairs[1]["values"]["experiment"][3] = json!("fast");
    let body = remote_judge_request(&config, &pairs, 75.0, 50.0).to_string();
    let (status, answer) = post(server.addr, "/judge", body.as_bytes());
    assert_eq!(status, 400, "{answer}");
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(error["path"], "metricSetPairList[1].values.experiment[3]");
    assert!(error["error"].as_str().unwrap().contains("fast"), "{error}");

    let (status, answer) = post(server.addr, "/judge", b"{\"canaryConfig\": [");
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(server.addr, "/judge", b"");
    assert_eq!(status, 400, "{answer}");
    let (status, _) = request(server.addr, "GET", "/judge", &[], b"");
    assert_eq!(status, 405);
    let (status, _) = request(server.addr, "GET", "/nowhere", &[], b"");
    assert_eq!(status, 404);
    let (status, answer) = post(server.addr, "/analyze", b"{}");
    assert_eq!(status, 501, "no --prometheus: {answer}");
}

#[test]
fn token_body_limit_and_metrics() {
    let server = Server::start(Options {
        token: Some("s3cret".into()),
        max_body_bytes: 4096,
        ..Options::default()
    });
    let config = kayenta_config(1, "RemoteJudge-v1.0");
    let body = remote_judge_request(&config, &kayenta_pairs(1, 20, 1.0, 3), 75.0, 50.0).to_string();
    assert!(body.len() < 4096);
    let (status, answer) = post(server.addr, "/judge", body.as_bytes());
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.contains("s3cret"));
    let wrong = [("Authorization", "Bearer nope")];
    let (status, answer) = request(server.addr, "POST", "/judge", &wrong, body.as_bytes());
    assert_eq!(status, 403, "{answer}");
    assert!(!answer.contains("s3cret"));
    let right = [("Authorization", "Bearer s3cret")];
    let (status, answer) = request(server.addr, "POST", "/judge", &right, body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let served: Value = serde_json::from_str(&answer).unwrap();
    let verdict = served["score"]["classification"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = request(server.addr, "GET", "/judges", &[], b"");
    assert_eq!(status, 401);
    let (status, judges) = request(server.addr, "GET", "/judges", &right, b"");
    assert_eq!(status, 200);
    let judges: Value = serde_json::from_str(&judges).unwrap();
    assert_eq!(judges["default"], "NetflixACAJudge-v1.0");
    assert_eq!(judges["remoteJudge"], "RemoteJudge-v1.0");

    let big = remote_judge_request(&config, &kayenta_pairs(1, 500, 1.0, 3), 75.0, 50.0).to_string();
    let (status, answer) = request(server.addr, "POST", "/judge", &right, big.as_bytes());
    assert_eq!(status, 413, "{answer}");

    // Probes and metrics need no token.
    assert_eq!(request(server.addr, "GET", "/healthz", &[], b"").0, 200);
    assert_eq!(request(server.addr, "GET", "/readyz", &[], b"").0, 200);
    let (status, metrics) = request(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let verdicts = format!(
        r#"canarylab_serve_verdicts_total{{endpoint="judge",judge="NetflixACAJudge-v1.0",verdict="{verdict}"}} 1"#
    );
    for line in [
        r#"canarylab_serve_requests_total{endpoint="judge",code="200"} 1"#,
        r#"canarylab_serve_requests_total{endpoint="judge",code="401"} 1"#,
        r#"canarylab_serve_requests_total{endpoint="judge",code="413"} 1"#,
        &verdicts,
        r#"canarylab_serve_request_duration_seconds_count{endpoint="judge"} 4"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert_eq!(
        metrics.matches("canarylab_serve_verdicts_total{").count(),
        1
    );
}

#[test]
fn saturation_gets_503_and_a_slow_body_408() {
    let server = Server::start(Options {
        max_concurrent: 1,
        request_timeout: Duration::from_millis(500),
        ..Options::default()
    });
    // Headers promising a body that never comes hold the only permit.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"POST /judge HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (status, answer) = post(server.addr, "/judge", b"{}");
    assert_eq!(status, 503, "{answer}");
    let (status, answer) = read_answer(&mut slow);
    assert_eq!(status, 408, "{answer}");
    // The permit is back.
    let (status, _) = post(server.addr, "/judge", b"{}");
    assert_eq!(status, 400);
}

#[test]
fn shutdown_drains_an_in_flight_request() {
    let server = Server::start(Options::default());
    let config = kayenta_config(2, "RemoteJudge-v1.0");
    let body = remote_judge_request(&config, &kayenta_pairs(2, 30, 1.0, 5), 75.0, 50.0).to_string();
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(
            format!(
                "POST /judge HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let addr = server.addr;
    let stopper = std::thread::spawn(move || server.stop());
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(tail).unwrap();
    let (status, answer) = read_answer(&mut stream);
    assert_eq!(status, 200, "{answer}");
    assert!(stopper.join().unwrap().drained);
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
}
