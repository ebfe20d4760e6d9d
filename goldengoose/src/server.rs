//! The HTTP server: accept loop, routing, carrying out fault plans, graceful
//! shutdown.
//!
//! [`run`] takes its listener and shutdown future from the caller (mini-redis
//! style), so tests and other crates run a goldengoose in-process. A crash
//! fault ends `run` with [`Outcome::Crashed`] instead of exiting: only the
//! binary turns that into a process exit.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin;
use crate::config::{Config, MAX_PAYLOAD_BYTES};
use crate::error::Error;
use crate::fault::{Fault, FaultSet, Plan};
use crate::metrics::{self, Metrics};
use crate::timer::PreciseTimer;

/// The memory-leak fault stops growing at this many bytes, so a forgotten
/// fault cannot take the machine down with it.
pub const MAX_LEAK_BYTES: u64 = 2 << 30;

/// How often time-based faults (leak per second, crash after a time) are checked.
const TICK: Duration = Duration::from_millis(50);

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The shutdown future completed; `drained` is false if requests were
    /// still in flight when the drain timeout ran out.
    Stopped {
        /// Whether every in-flight request finished before the drain timeout.
        drained: bool,
    },
    /// A crash fault fired; connections were dropped without answers.
    Crashed {
        /// Which crash fault fired (`crash fault: SPEC`).
        reason: String,
    },
}

pub(crate) type Body = Full<Bytes>;

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    body: Bytes,
    version_header: HeaderValue,
    faults: RwLock<Arc<FaultSet>>,
    /// Bumped on every fault change, so connections re-read `faults` only then.
    generation: AtomicU64,
    pub(crate) metrics: Metrics,
    leak: Mutex<Vec<Box<[u8]>>>,
    per_second_leaked: AtomicU64,
    crash: watch::Sender<Option<String>>,
    stopping: watch::Sender<bool>,
    connections: AtomicU64,
    timer: PreciseTimer,
}

impl Shared {
    fn new(config: Config) -> Result<Self, Error> {
        if config.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(Error::PayloadTooLarge(config.payload_bytes));
        }
        let version_header = HeaderValue::from_str(&config.version)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-version-label"));
        let body = Bytes::from(payload(config.payload_bytes, &config.version));
        let faults = FaultSet::new(config.faults.clone(), Instant::now());
        Ok(Shared {
            metrics: Metrics::new(
                &config.version,
                Arc::new(AtomicU64::new(0)),
                config.istio.as_ref(),
            ),
            body,
            version_header,
            faults: RwLock::new(Arc::new(faults)),
            generation: AtomicU64::new(0),
            leak: Mutex::new(Vec::new()),
            per_second_leaked: AtomicU64::new(0),
            crash: watch::channel(None).0,
            stopping: watch::channel(false).0,
            connections: AtomicU64::new(0),
            timer: PreciseTimer::start().map_err(Error::Timer)?,
            config,
        })
    }

    pub(crate) fn faults(&self) -> Arc<FaultSet> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the whole fault set; time and request counts restart now.
    pub(crate) fn set_faults(&self, faults: Vec<Fault>) {
        let set = Arc::new(FaultSet::new(faults, Instant::now()));
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = set;
        self.per_second_leaked.store(0, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn ready(&self) -> bool {
        !*self.stopping.borrow()
            && self.crash.borrow().is_none()
            && !self.faults().warming_up(Instant::now())
    }

    fn leak(&self, bytes: u64) {
        let held = self.metrics.heap_bytes();
        let room = MAX_LEAK_BYTES.saturating_sub(held.load(Ordering::Relaxed));
        let bytes = bytes.min(room) as usize;
        if bytes == 0 {
            return;
        }
        // Non-zero bytes, so every page is touched and shows in RSS.
        let block = vec![0xA5u8; bytes].into_boxed_slice();
        self.leak
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(block);
        held.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn trigger_crash(&self, reason: String) {
        self.crash.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Runs time-based faults until the server stops.
    async fn tick(self: Arc<Self>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = Instant::now();
            let set = self.faults();
            if let Some(reason) = set.crash_due(now) {
                self.trigger_crash(reason);
            }
            let due = set.leak_due_by(now);
            let done = self.per_second_leaked.load(Ordering::Relaxed);
            if due > done {
                self.per_second_leaked.store(due, Ordering::Relaxed);
                self.leak(due - done);
            }
        }
    }
}

fn payload(bytes: usize, version: &str) -> Vec<u8> {
    let line = format!("goldengoose {version}\n");
    let mut body = line.into_bytes();
    body.resize(bytes, b'.');
    if bytes > 0 {
        body[bytes - 1] = b'\n';
    }
    body
}

/// Per-connection state: a seeded RNG and the cached fault set.
#[derive(Debug)]
struct Connection {
    shared: Arc<Shared>,
    local: Mutex<ConnectionLocal>,
}

#[derive(Debug)]
struct ConnectionLocal {
    rng: Xoshiro256PlusPlus,
    generation: u64,
    faults: Arc<FaultSet>,
}

impl Connection {
    fn new(shared: Arc<Shared>) -> Self {
        let index = shared.connections.fetch_add(1, Ordering::Relaxed);
        // Connections draw from their own streams: no lock shared between
        // connections, and a given seed and connection order repeat exactly.
        let seed = shared.config.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let generation = shared.generation.load(Ordering::Acquire);
        let faults = shared.faults();
        Connection {
            local: Mutex::new(ConnectionLocal {
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
                generation,
                faults,
            }),
            shared,
        }
    }

    fn plan(&self, now: Instant) -> Plan {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != local.generation {
            local.generation = generation;
            local.faults = self.shared.faults();
        }
        let ConnectionLocal { rng, faults, .. } = &mut *local;
        faults.plan(now, rng)
    }
}

/// Serves `listener` until `shutdown` completes or a crash fault fires.
///
/// On shutdown: stops accepting, marks itself not ready, releases hanging
/// requests, and waits up to `config.drain_timeout` for in-flight requests.
pub async fn run<F>(listener: TcpListener, config: Config, shutdown: F) -> Result<Outcome, Error>
where
    F: Future<Output = ()>,
{
    let shared = Arc::new(Shared::new(config)?);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let ticker = tokio::spawn(shared.clone().tick());
    let mut crash = shared.crash.subscribe();
    let mut shutdown = pin!(shutdown);

    let crashed = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break None,
            reason = async {
                // The guard `wait_for` returns is not Send: copy out of it.
                crash.wait_for(Option::is_some).await.ok().and_then(|r| r.clone())
            } => break Some(reason.unwrap_or_default()),
            accepted = listener.accept() => {
                let (stream, _peer): (_, SocketAddr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning; the listener stays usable.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = Arc::new(Connection::new(shared.clone()));
                let service = hyper::service::service_fn(move |request| {
                    let connection = connection.clone();
                    async move { Ok::<_, Infallible>(handle(&connection, request).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                let mut crash = shared.crash.subscribe();
                tokio::spawn(async move {
                    // On a crash the connection is dropped mid-flight, as a
                    // dying process would.
                    tokio::select! {
                        _ = conn => {}
                        _ = async { crash.wait_for(Option::is_some).await.is_ok() } => {}
                    }
                });
            }
        }
    };
    drop(listener);
    shared.stopping.send_replace(true);
    if let Some(reason) = crashed {
        ticker.abort();
        drop(graceful);
        return Ok(Outcome::Crashed { reason });
    }
    let drain_timeout = shared.config.drain_timeout;
    let drained = tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(drain_timeout) => false,
    };
    ticker.abort();
    Ok(Outcome::Stopped { drained })
}

async fn handle(connection: &Connection, request: Request<Incoming>) -> Response<Body> {
    let shared = &connection.shared;
    let mut response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => work(connection).await,
        (_, "/") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if shared.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        (&Method::GET, "/metrics") => match shared.metrics.encode() {
            Ok(exposition) => {
                let mut response = Response::new(Body::from(exposition));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                response
            }
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
        },
        (_, admin::FAULTS_PATH) => admin::handle(shared, request).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    response
        .headers_mut()
        .insert("x-version", shared.version_header.clone());
    response
}

async fn work(connection: &Connection) -> Response<Body> {
    let shared = &connection.shared;
    let _in_flight = shared.metrics.in_flight();
    let start = Instant::now();
    let plan = connection.plan(start);
    if plan.hang {
        // Never answered while the server runs; released at shutdown so a
        // graceful stop does not wait for the drain timeout.
        let mut stopping = shared.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await.is_ok();
        let response = text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        shared.metrics.observe(503, start.elapsed());
        return response;
    }
    let mut delay_from = start;
    if !plan.cpu.is_zero() {
        burn_cpu(plan.cpu);
        delay_from = Instant::now();
    }
    if plan.leak > 0 {
        shared.leak(plan.leak);
    }
    let delay = shared.config.service_time.saturating_add(plan.delay);
    if !delay.is_zero() {
        match delay_from.checked_add(delay) {
            Some(deadline) => shared.timer.sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }
    let response = match plan.error {
        Some(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(status, "injected fault\n")
        }
        None => {
            let mut response = Response::new(Body::new(shared.body.clone()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
    };
    shared
        .metrics
        .observe(response.status().as_u16(), start.elapsed());
    if plan.crash {
        shared.trigger_crash("crash fault: request count reached".to_string());
    }
    response
}

/// Busy work on this thread, like a CPU-bound handler: it holds the worker,
/// so other requests on it queue, as they would behind real computation.
/// Counts the thread's CPU time, so a preempted thread burns the full amount
/// (wall time when the thread clock is unavailable).
fn burn_cpu(duration: Duration) {
    let cpu_start = thread_cpu_time();
    let wall_start = Instant::now();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    loop {
        for _ in 0..1024 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
        let spent = match (cpu_start, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => wall_start.elapsed(),
        };
        if spent >= duration {
            break;
        }
    }
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID, through rustix:
/// no unsafe code here).
#[cfg(unix)]
fn thread_cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
