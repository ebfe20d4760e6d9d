//! `canarylab serve`: canarylab's judge as an HTTP service for stock
//! Kayenta (its `RemoteJudge-v1.0`), Argo Rollouts (`web` metric provider)
//! and Flagger (webhooks).
//!
//! | endpoint | |
//! |---|---|
//! | `POST /judge` | Kayenta's remote-judge contract: `RemoteJudgeRequest` in, `CanaryJudgeResult` out ([`api`]) |
//! | `POST /analyze` | a config and two scopes in; fetched from the server's Prometheus, judged ([`analyze`]); `?fail-status=true` answers 422 on Fail |
//! | `GET /judges` | the judges this server runs, and its default |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (503 while draining) |
//! | `GET /metrics` | requests, latency, verdicts by judge ([`metrics`]) |
//!
//! [`run`] takes its listener and a shutdown future from the caller
//! (mini-redis style, as goldengoose's server), so tests bind
//! `127.0.0.1:0` and stop it. On shutdown it stops accepting, answers 503
//! on `/readyz`, and drains in-flight requests for up to
//! [`Options::drain_timeout`].
//!
//! Hardening: optional bearer token on `/judge`, `/analyze` and `/judges`
//! (401 without one, 403 for a wrong one, as goldengoose's admin API); a
//! body size limit (413); a time limit for reading the body (408) and for
//! Prometheus (504); a concurrency limit (503 when saturated, with
//! `Retry-After`); every input error a 400 with the JSON path of the
//! problem. Nothing is logged but the status and message of 5xx answers:
//! no header, no body, no token.
//!
//! Not for: TLS (put it behind an ingress or a mesh), fetching from any URL
//! a request names (only `--prometheus` is queried).

pub mod analyze;
pub mod api;
pub mod deploy;
pub mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use judge::config::NETFLIX_ACA_JUDGE;
use judge::{CanaryConfig, CanaryJudgeResult, ScoreClassification};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::analysis::{AnalysisError, check_queries, fetch_pairs, unix_now};
use crate::prom::PromApi;
use analyze::{AnalyzeAnswer, ConfigSource, SentQueries, WindowAnswer};
use api::ApiError;
pub use api::Interval;
use metrics::{InFlight, ServeMetrics};

/// Bodies above this size are judged on a blocking thread, so one huge
/// request does not hold an async worker for long.
const INLINE_BODY_BYTES: usize = 256 * 1024;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The bearer-token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        /// The token file's path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The bearer-token file holds no token.
    #[error("the token file {path} is empty (or only whitespace)")]
    EmptyToken {
        /// The token file's path.
        path: PathBuf,
    },
    /// `--default-judge` names no judge the server has.
    #[error("--default-judge: {0}")]
    DefaultJudge(String),
    /// The `--config-dir` directory could not be read.
    #[error("--config-dir {path}: {source}")]
    ConfigDir {
        /// The directory's path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A limit that must be positive is zero.
    #[error("{what} must be above zero")]
    Zero {
        /// The option at fault (`--max-concurrent`, `--max-body-bytes`,
        /// `--threads`).
        what: &'static str,
    },
    /// A runtime could not be set up.
    #[error("cannot start the server's threads: {source}")]
    Runtime {
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The listening sockets could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for (or, for the other threads' sockets, the
        /// one the first got).
        addr: std::net::SocketAddr,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// `cluster render --serve`: an option (or the embedded file) is wrong.
    #[error("{field}: {problem}")]
    Render {
        /// The option (or embedded file) at fault.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The judge a config naming `RemoteJudge-v1.0` (or none) gets.
    pub default_judge: String,
    /// The Prometheus `/analyze` queries; `None` disables `/analyze`.
    pub prometheus: Option<PromApi>,
    /// Where `configName` is looked up (`DIR/NAME.json`).
    pub config_dir: Option<PathBuf>,
    /// The bearer token, when required.
    pub token: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time to read a request's headers and then its body.
    pub request_timeout: Duration,
    /// Time for all of one `/analyze`'s Prometheus queries.
    pub prometheus_timeout: Duration,
    /// `/judge` and `/analyze` requests served at once; more get 503.
    pub max_concurrent: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// What `POST /judge` answers of each Mann-Whitney test: the interval
    /// (default, as `canarylab judge`), or Kayenta's own `ratio` only,
    /// which lets most labels be decided without solving for it.
    pub judge_interval: Interval,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_judge: NETFLIX_ACA_JUDGE.to_string(),
            prometheus: None,
            config_dir: None,
            token: None,
            max_body_bytes: 32 << 20,
            request_timeout: Duration::from_secs(30),
            prometheus_timeout: Duration::from_secs(20),
            max_concurrent: 256,
            drain_timeout: Duration::from_secs(30),
            judge_interval: Interval::Reported,
        }
    }
}

impl Options {
    /// Checks the options before anything listens.
    pub fn check(&self) -> Result<(), ServeError> {
        api::check_default_judge(&self.default_judge).map_err(ServeError::DefaultJudge)?;
        if self.max_concurrent == 0 {
            return Err(ServeError::Zero {
                what: "--max-concurrent",
            });
        }
        if self.max_body_bytes == 0 {
            return Err(ServeError::Zero {
                what: "--max-body-bytes",
            });
        }
        if let Some(dir) = &self.config_dir {
            std::fs::read_dir(dir).map_err(|source| ServeError::ConfigDir {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Reads a bearer token from a file (surrounding whitespace trimmed).
pub fn read_token(path: &Path) -> Result<String, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ServeError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// False if requests were still in flight when the drain timeout ran out.
    pub drained: bool,
}

type Body = Full<Bytes>;

#[derive(Debug)]
struct Shared {
    options: Options,
    metrics: ServeMetrics,
    permits: Arc<Semaphore>,
    stopping: AtomicBool,
    /// `/judge`'s judges, prepared once per config.
    judges: api::JudgeCache,
}

impl Shared {
    fn new(options: Options) -> Result<Arc<Shared>, ServeError> {
        options.check()?;
        Ok(Arc::new(Shared {
            permits: Arc::new(Semaphore::new(options.max_concurrent)),
            metrics: ServeMetrics::new(),
            stopping: AtomicBool::new(false),
            judges: api::JudgeCache::new(&options.default_judge)
                .with_interval(options.judge_interval),
            options,
        }))
    }
}

/// Serves `listener` until `shutdown` completes, then drains.
pub async fn run<F>(
    listener: TcpListener,
    options: Options,
    shutdown: F,
) -> Result<Stopped, ServeError>
where
    F: Future<Output = ()>,
{
    let shared = Shared::new(options)?;
    Ok(serve(listener, &shared, 0, shutdown).await)
}

/// One listening socket per worker thread of [`run_per_thread`], all bound
/// to one address with `SO_REUSEPORT`, so the kernel spreads incoming
/// connections over the threads (by a hash of each connection's addresses
/// and ports) instead of waking every thread for each and letting the first
/// one that runs take it: with one shared socket, a thread that happens to
/// be awake takes most connections and the other cores idle (measured in
/// the README's `canarylab serve` section).
///
/// Every socket listens when [`Listeners::bind`] returns, so a client may
/// connect as soon as [`Listeners::local_addr`] is known.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<std::net::TcpListener>,
    addr: std::net::SocketAddr,
}

impl Listeners {
    /// `threads` sockets on `addr`: the first binds it (port 0 picks a
    /// free port), the others bind the address it got. Where the platform
    /// has no `SO_REUSEPORT`, one socket shared by every thread.
    pub fn bind(addr: std::net::SocketAddr, threads: usize) -> Result<Listeners, ServeError> {
        if threads == 0 {
            return Err(ServeError::Zero { what: "--threads" });
        }
        let io = |source| ServeError::Runtime { source };
        // `TcpSocket::listen` registers the socket with a runtime; a
        // throwaway one does, and `into_std` takes it back out.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(io)?;
        let _entered = runtime.enter();
        let at = |addr| move |source| ServeError::Listen { addr, source };
        let first = listen(addr, threads > 1).map_err(at(addr))?;
        let addr = first.local_addr().map_err(at(addr))?;
        let mut sockets = vec![first];
        for _ in 1..threads {
            let socket = if cfg!(unix) {
                listen(addr, true)
            } else {
                sockets[0].try_clone()
            }
            .map_err(at(addr))?;
            sockets.push(socket);
        }
        Ok(Listeners { sockets, addr })
    }

    /// The bound address (the port picked for port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Worker threads, one per socket.
    pub fn threads(&self) -> usize {
        self.sockets.len()
    }
}

/// A listening socket on `addr` (with `SO_REUSEPORT` when `reuse_port`
/// and the platform has it), out of the runtime that made it listen.
fn listen(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's and tokio's `TcpListener::bind` do on Unix.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// [`run`] on one thread per socket of `listeners`, each with a
/// single-threaded runtime of its own accepting from its own socket (the
/// kernel spreads connections over them, see [`Listeners`]): a connection
/// stays on the thread that accepted it (no task moves between threads, no
/// wake-up of another thread for a request), the limits, metrics and judge
/// cache are shared. Blocks until `shutdown` (polled on the calling
/// thread) completes and every thread has drained.
pub fn run_per_thread<F>(
    listeners: Listeners,
    options: Options,
    shutdown: F,
) -> Result<Stopped, ServeError>
where
    F: Future<Output = ()>,
{
    let shared = Shared::new(options)?;
    let io = |source| ServeError::Runtime { source };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut sockets = listeners.sockets.into_iter();
    let Some(first) = sockets.next() else {
        return Err(ServeError::Zero { what: "--threads" });
    };
    let mut others = Vec::new();
    for (worker, listener) in (1u16..).zip(sockets) {
        let (shared, mut stopped) = (shared.clone(), stopped.clone());
        let runtime = runtime().map_err(io)?;
        others.push(std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).map_err(io)?;
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                Ok::<_, ServeError>(serve(listener, &shared, worker, shutdown).await)
            })
        }));
    }
    let mine = runtime().map_err(io)?.block_on(async {
        let listener = TcpListener::from_std(first).map_err(io)?;
        let shutdown = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        Ok::<_, ServeError>(serve(listener, &shared, 0, shutdown).await)
    });
    // Whatever happened here, the other threads stop too.
    let _ = stop.send(true);
    let mut drained = mine?.drained;
    for thread in others {
        match thread.join() {
            Ok(stopped) => drained &= stopped?.drained,
            Err(_) => drained = false,
        }
    }
    Ok(Stopped { drained })
}

/// The accept loop and the drain.
async fn serve<F>(listener: TcpListener, shared: &Arc<Shared>, worker: u16, shutdown: F) -> Stopped
where
    F: Future<Output = ()>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.request_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: back off.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                shared.metrics.connection(worker);
                let shared = shared.clone();
                let service = hyper::service::service_fn(move |request| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    shared.stopping.store(true, Ordering::SeqCst);
    let drained = tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(shared.options.drain_timeout) => false,
    };
    Stopped { drained }
}

async fn handle(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let endpoint: &'static str = match request.uri().path() {
        "/judge" => "judge",
        "/analyze" => "analyze",
        "/judges" => "judges",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        _ => "other",
    };
    let response = route(shared, endpoint, request).await;
    let status = response.status();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        eprintln!("serve: /{endpoint} answered {}", status.as_u16());
    }
    shared
        .metrics
        .observe(endpoint, status.as_u16(), start.elapsed());
    response
}

async fn route(
    shared: &Arc<Shared>,
    endpoint: &'static str,
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    let allow = |allowed: &'static str| {
        let mut r = error(&ApiError::status(
            405,
            "",
            format!("use {allowed} {}", request.uri().path()),
        ));
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allowed));
        r
    };
    match (endpoint, method) {
        ("healthz", Method::GET | Method::HEAD) => text(StatusCode::OK, "ok\n"),
        ("readyz", Method::GET | Method::HEAD) => {
            if shared.stopping.load(Ordering::SeqCst) {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        ("metrics", Method::GET) => match shared.metrics.encode() {
            Ok(body) => {
                let mut r = Response::new(Body::from(body));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                r
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
        },
        ("judges", Method::GET) => match authorize(shared, &request) {
            Err(r) => *r,
            Ok(()) => json(
                StatusCode::OK,
                serde_json::to_vec(&serde_json::json!({
                    "default": shared.options.default_judge,
                    "judges": api::known_judges(),
                    "remoteJudge": api::REMOTE_JUDGE,
                }))
                .unwrap_or_default(),
            ),
        },
        ("judge", Method::POST) => match authorize(shared, &request) {
            Err(r) => *r,
            Ok(()) => match admit(shared, request).await {
                Ok(work) => judge(shared, work).await,
                Err(r) => r,
            },
        },
        ("analyze", Method::POST) => match authorize(shared, &request) {
            Err(r) => *r,
            Ok(()) => match admit(shared, request).await {
                Ok(work) => analyze(shared, work).await,
                Err(r) => r,
            },
        },
        ("healthz" | "readyz", _) => allow("GET"),
        ("metrics" | "judges", _) => allow("GET"),
        ("judge" | "analyze", _) => allow("POST"),
        _ => error(&ApiError::status(
            404,
            "",
            "not found; endpoints: POST /judge, POST /analyze, GET /judges, /healthz, /readyz, /metrics",
        )),
    }
}

/// The bearer token check: none configured → open.
fn authorize(shared: &Shared, request: &Request<Incoming>) -> Result<(), Box<Response<Body>>> {
    let Some(token) = shared.options.token.as_deref() else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        None => {
            let mut r = error(&ApiError::status(
                401,
                "",
                "missing Authorization: Bearer TOKEN",
            ));
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(Box::new(r))
        }
        Some(given) if !constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            Err(Box::new(error(&ApiError::status(403, "", "wrong token"))))
        }
        Some(_) => Ok(()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An admitted request: its body, holding a concurrency permit until dropped.
struct Work {
    body: Bytes,
    fail_status: bool,
    _permit: OwnedSemaphorePermit,
    _in_flight: InFlight,
}

/// Concurrency limit, body limit and read timeout: the request's body, or
/// the answer that refuses it.
async fn admit(shared: &Shared, request: Request<Incoming>) -> Result<Work, Response<Body>> {
    let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
        shared.metrics.saturated();
        let mut r = error(&ApiError::status(
            503,
            "",
            format!(
                "saturated: {} requests in flight; retry",
                shared.options.max_concurrent
            ),
        ));
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(r);
    };
    let in_flight = shared.metrics.in_flight();
    let max = shared.options.max_body_bytes;
    let too_large = || {
        error(&ApiError::status(
            413,
            "",
            format!("request body larger than {max} bytes (--max-body-bytes)"),
        ))
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let fail_status = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "fail-status=true" || kv == "fail-status=1");
    let read = Limited::new(request.into_body(), max).collect();
    let body = match tokio::time::timeout(shared.options.request_timeout, read).await {
        Err(_) => {
            return Err(error(&ApiError::status(
                408,
                "",
                format!(
                    "the request body did not arrive within {:?}",
                    shared.options.request_timeout
                ),
            )));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Ok(Err(e)) => {
            return Err(error(&ApiError::bad(
                "",
                format!("cannot read the body: {e}"),
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(Work {
        body,
        fail_status,
        _permit: permit,
        _in_flight: in_flight,
    })
}

/// A label value for a judge name: one of the known, static names.
fn judge_label(name: &str) -> &'static str {
    api::known_judges()
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("other")
}

fn record_verdict(shared: &Shared, endpoint: &'static str, result: &CanaryJudgeResult) {
    shared.metrics.verdict(
        endpoint,
        judge_label(&result.judge_name),
        result.score.classification.as_str(),
    );
}

/// Runs pure, CPU-bound work inline for small bodies and on a blocking
/// thread for large ones; a panic becomes a 500 instead of a dropped
/// connection.
async fn compute<T: Send + 'static>(
    size: usize,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let guarded = move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(ApiError::status(
                500,
                "",
                "internal error while judging (a bug: please report the request)",
            ))
        })
    };
    if size <= INLINE_BODY_BYTES {
        guarded()
    } else {
        tokio::task::spawn_blocking(guarded)
            .await
            .unwrap_or_else(|_| Err(ApiError::status(500, "", "judging thread failed")))
    }
}

async fn judge(shared: &Arc<Shared>, work: Work) -> Response<Body> {
    let size = work.body.len();
    let body = work.body;
    let cache = shared.clone();
    let result = compute(size, move || api::judge_body_json(&body, &cache.judges)).await;
    match result {
        Ok((result, bytes)) => {
            record_verdict(shared, "judge", &result);
            json(StatusCode::OK, bytes)
        }
        Err(e) => error(&e),
    }
}

/// Configs by name from `--config-dir`.
struct DirConfigs<'a>(Option<&'a Path>);

impl ConfigSource for DirConfigs<'_> {
    fn load(&self, name: &str) -> Result<CanaryConfig, ApiError> {
        let Some(dir) = self.0 else {
            return Err(ApiError::bad(
                "configName",
                "this server has no --config-dir; send the config inline as canaryConfig",
            ));
        };
        let valid = !name.is_empty()
            && name.len() <= 200
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !valid {
            return Err(ApiError::bad(
                "configName",
                format!("{name:?} is not a config name (letters, digits, '.', '_', '-')"),
            ));
        }
        let file = format!("{name}.json");
        let text = match std::fs::read_to_string(dir.join(&file)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::status(
                    404,
                    "configName",
                    format!("no config \"{name}\" ({file} in the server's --config-dir)"),
                ));
            }
            Err(e) => {
                return Err(ApiError::status(
                    500,
                    "configName",
                    format!("cannot read {file} in the server's --config-dir: {e}"),
                ));
            }
        };
        CanaryConfig::from_json(&text).map_err(|e| {
            ApiError::status(
                500,
                "configName",
                format!("{file} in the server's --config-dir is not a valid canary config: {e}"),
            )
        })
    }
}

async fn analyze(shared: &Shared, work: Work) -> Response<Body> {
    let Some(prometheus) = shared.options.prometheus.clone() else {
        return error(&ApiError::status(
            501,
            "",
            "this server was started without --prometheus, so /analyze cannot fetch metrics; use POST /judge with the values",
        ));
    };
    let configs = DirConfigs(shared.options.config_dir.as_deref());
    let plan = match analyze::plan(&work.body, unix_now(), &configs) {
        Ok(plan) => plan,
        Err(e) => return error(&e),
    };
    if let Err(e) = check_queries(&plan.config, &plan.control, &plan.experiment) {
        return error(&ApiError::bad(plan.config_field.clone(), e.to_string()));
    }
    let config = Arc::new(plan.config);
    let fetch = fetch_pairs(
        &prometheus,
        &config,
        &plan.control,
        &plan.experiment,
        plan.start,
        plan.end,
        plan.step,
    );
    let timeout = shared.options.prometheus_timeout;
    let pairs = match tokio::time::timeout(timeout, fetch).await {
        Err(_) => {
            return error(&ApiError::status(
                504,
                "",
                format!("Prometheus did not answer within {timeout:?} (--prometheus-timeout)"),
            ));
        }
        Ok(Err(e @ AnalysisError::Query(_))) => {
            return error(&ApiError::bad(plan.config_field, e.to_string()));
        }
        Ok(Err(e)) => return error(&ApiError::status(502, "", e.to_string())),
        Ok(Ok(pairs)) => pairs,
    };
    let queries: Vec<SentQueries> = pairs
        .iter()
        .map(|p| {
            let q = |side: &str| {
                p.attributes
                    .as_ref()
                    .and_then(|a| a[side]["query"].as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            SentQueries {
                metric: p.name.clone(),
                control: q("control"),
                experiment: q("experiment"),
            }
        })
        .collect();
    let default = shared.options.default_judge.clone();
    let (thresholds, field) = (plan.thresholds, plan.config_field);
    let result = compute(0, move || {
        let config = Arc::unwrap_or_clone(config);
        api::judge(config, thresholds, &pairs, &default, &field)
    })
    .await;
    let result = match result {
        Ok(result) => result,
        Err(e) => return error(&e),
    };
    record_verdict(shared, "analyze", &result);
    let verdict = result.score.classification;
    let answer = AnalyzeAnswer {
        verdict,
        passed: verdict == ScoreClassification::Pass,
        window: WindowAnswer {
            start: plan.start,
            end: plan.end,
            step: plan.step.as_secs_f64(),
        },
        queries,
        result,
    };
    let status = if work.fail_status
        && matches!(
            verdict,
            ScoreClassification::Fail | ScoreClassification::Nodata
        ) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    match serde_json::to_vec(&answer) {
        Ok(bytes) => json(status, bytes),
        Err(e) => error(&ApiError::status(500, "", format!("cannot encode: {e}"))),
    }
}

fn json(status: StatusCode, mut bytes: Vec<u8>) -> Response<Body> {
    bytes.push(b'\n');
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut bytes = e.to_json();
    bytes.pop();
    json(status, bytes)
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}
