//! A tiny HTTP client and an in-process server handle for the tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use goldengoose::{Config, Error, Outcome};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A goldengoose running on this test's runtime; stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<Outcome, Error>>>,
}

pub async fn start(config: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(goldengoose::run(listener, config, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl Server {
    /// Asks for a graceful shutdown and returns how the server ended.
    pub async fn stop(mut self) -> Outcome {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.outcome().await
    }

    /// Waits for `run` to return by itself, e.g. after a crash. The 120 s
    /// limit is a hang guard (a test that never ends), not a speed check.
    pub async fn outcome(&mut self) -> Outcome {
        let handle = self.handle.take().expect("outcome taken once");
        tokio::time::timeout(Duration::from_secs(120), handle)
            .await
            .expect("server ends (hang guard: 120 s)")
            .expect("server task not panicked")
            .expect("server ran")
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Client {
    sender: http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr)
            .await
            .expect("connect to goldengoose")
    }

    pub async fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Client { sender, addr })
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.send(Method::GET, path, None, Bytes::new()).await
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Response {
        self.try_send(method, path, token, body)
            .await
            .expect("request answered")
    }

    pub async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<Response, hyper::Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).expect("valid request");
        // A keep-alive connection takes the next request only once the last
        // response is read.
        self.sender.ready().await?;
        let start = Instant::now();
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            elapsed: start.elapsed(),
        })
    }
}

/// Sends `per_connection` GET / on each of `connections` connections at once.
pub async fn hammer(addr: SocketAddr, connections: usize, per_connection: usize) -> Vec<Response> {
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut responses = Vec::with_capacity(per_connection);
                for _ in 0..per_connection {
                    responses.push(client.get("/").await);
                }
                responses
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    all
}

pub fn count(responses: &[Response], status: u16) -> usize {
    responses
        .iter()
        .filter(|r| r.status.as_u16() == status)
        .count()
}

/// Asserts `hits` of `n` lies within 5 standard deviations of n*p.
pub fn assert_binomial(hits: usize, n: usize, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 5.0 * sd,
        "{hits} of {n}, expected {mean:.1} +/- {:.1}",
        5.0 * sd
    );
}

pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Parses Prometheus/OpenMetrics text into `series -> value`, failing on any
/// line that is not a comment or `name{labels} value`.
pub fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            match words.first().copied() {
                Some("HELP") => assert!(words.len() >= 2, "bad HELP: {line}"),
                Some("TYPE") => {
                    assert_eq!(words.len(), 3, "bad TYPE: {line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&words[2]),
                        "type not in the Prometheus text format: {line}"
                    );
                }
                Some("EOF") => saw_eof = true,
                _ => {}
            }
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let name = name_labels.split('{').next().expect("name");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        let labels = &name_labels[name.len()..];
        assert!(
            labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
            "bad labels in {line}"
        );
        assert!(
            series.insert(name_labels.to_string(), value).is_none(),
            "duplicate series {name_labels}"
        );
    }
    assert!(saw_eof, "no # EOF");
    series
}

pub async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let response = Client::connect(addr).await.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    parse_exposition(&response.text())
}

pub fn config(faults: &[&str]) -> Config {
    Config {
        version: "test".to_string(),
        faults: faults
            .iter()
            .map(|spec| spec.parse().expect("valid fault spec"))
            .collect(),
        seed: 42,
        ..Config::default()
    }
}
