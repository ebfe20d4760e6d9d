//! A real Prometheus as a child process, and its range-query API.
//!
//! [`Prometheus::start`] writes a generated config and a file_sd target
//! file into a fresh temporary directory, starts the `prometheus` binary on
//! `127.0.0.1` with a free port and a temporary TSDB, and waits for
//! `/-/ready`. Dropping the guard kills the process by PID, waits for it and
//! removes the directory, also when a test fails.
//!
//! The HTTP client is async, on hyper's HTTP/1 client connection (the
//! hyper the workspace already builds for its servers): one request per
//! connection, plain HTTP, no TLS, no redirects. A wait between retries
//! ends at once when the API's cancel channel says so (Ctrl-C), as
//! goldengoose's `run` ends on its shutdown future.
//!
//! [`PromApi`] is the same client for a Prometheus we did not start (the
//! Kubernetes mode's, usually behind `kubectl port-forward`): plain HTTP
//! only, which is what a port-forward gives. A query that fails for a
//! reason a retry can cure (no connection, HTTP 429 or 5xx) is retried with
//! backoff within a [`Retry`] bound, and every retry is counted.
//!
//! Nothing is left behind even when canarylab is SIGKILLed: Prometheus runs
//! under a small `/bin/sh` supervisor of ours (see [`SUPERVISOR`]) that
//! watches canarylab's PID and, once canarylab is gone, kills Prometheus and
//! removes the temporary directory. Directories of earlier runs whose
//! process is gone (all of a process group SIGKILLed, a power cut) are
//! swept by the next start ([`sweep_stale_dirs`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cancel::armed;

/// Environment variable naming the `prometheus` binary to run.
pub const PROMETHEUS_ENV: &str = "CANARYLAB_PROMETHEUS";

/// How long [`Prometheus::start`] waits for `/-/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request may wait to connect, to send, and between bytes of
/// the answer, unless [`PromApi::with_read_timeout`] says otherwise.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Prometheus's own default `--query.timeout`: a query that Prometheus
/// would still be evaluating is not abandoned before it (long range reads,
/// `canarylab calibrate`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of the Prometheus child process and its API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `prometheus` binary at the flag's path, `$CANARYLAB_PROMETHEUS`
    /// or on `PATH`.
    #[error(
        "the prometheus binary was not found ({tried}). Install it with `apt-get install prometheus` (Debian/Ubuntu), or point at one with the --prometheus PATH flag or ${PROMETHEUS_ENV}=PATH"
    )]
    BinaryNotFound {
        /// Where we looked, for the message.
        tried: String,
    },
    /// The temporary directory (config, targets, TSDB) could not be
    /// created or written.
    #[error("cannot prepare Prometheus's temporary directory {path}: {source}")]
    TempDir {
        /// The directory or file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// No free port could be bound on 127.0.0.1.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    /// The `prometheus` binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary we tried to run.
        binary: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Prometheus exited before it was ready.
    #[error("prometheus exited during start-up ({status}); its log ends with:\n{log}")]
    Exited {
        /// Its exit status, as displayed.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// Prometheus did not answer `/-/ready` within the timeout.
    #[error("prometheus was not ready after {waited:?}; its log ends with:\n{log}")]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// An HTTP request failed at the connection level (connect, write,
    /// read, timeout).
    #[error("HTTP request to Prometheus at {addr} failed: {source}")]
    Http {
        /// The Prometheus we asked.
        addr: SocketAddr,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Prometheus answered with an error status (a PromQL error, 429 or 5xx).
    #[error(
        "Prometheus refused the query (HTTP {status}, {error_type}): {message}\nquery: {query}"
    )]
    Query {
        /// The HTTP status code.
        status: u16,
        /// Prometheus's `errorType` (`bad_data`, `execution`, ...).
        error_type: String,
        /// Prometheus's `error` message.
        message: String,
        /// The PromQL query that was refused.
        query: String,
    },
    /// A Prometheus URL we cannot use (not plain `http://host:port`).
    #[error("bad Prometheus URL {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// An answer we could not parse (HTTP framing, JSON or result shape).
    #[error("unexpected answer from Prometheus: {0}")]
    BadResponse(String),
    /// A query meant to give one series gave several.
    #[error("the query returned {count} series, expected at most one; aggregate it: {query}")]
    ManySeries {
        /// How many series it returned.
        count: usize,
        /// The query, to be aggregated.
        query: String,
    },
    /// A transient failure that outlasted the [`Retry`] bound.
    #[error("Prometheus at {addr} still failing after {retries} retries over {waited:?}: {last}")]
    RetriesSpent {
        /// The Prometheus we asked.
        addr: SocketAddr,
        /// How many retries were made.
        retries: u32,
        /// The time spent retrying, backoffs included.
        waited: Duration,
        /// The last attempt's error.
        last: Box<Error>,
    },
    /// The wait before a retry was cut short by an interrupt (Ctrl-C).
    #[error(
        "interrupted while waiting to retry Prometheus at {addr} (after {retries} retries): {last}"
    )]
    Interrupted {
        /// The Prometheus we asked.
        addr: SocketAddr,
        /// How many retries were made before the interrupt.
        retries: u32,
        /// The last attempt's error.
        last: Box<Error>,
    },
}

impl Error {
    /// Whether a retry can cure it: no connection or a broken answer
    /// (Prometheus down or restarting), HTTP 429 or 5xx. A PromQL error
    /// (HTTP 400/422) or a bad URL never is.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { .. } => true,
            Error::Query { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// How a failed query is retried: up to `retries` more attempts, waiting
/// `backoff` before the first and doubling each time up to `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt (0: no retry).
    pub retries: u32,
    /// The wait before the first retry.
    pub backoff: Duration,
    /// The cap on the doubling wait.
    pub max_backoff: Duration,
}

impl Retry {
    /// 6 retries after 0.5, 1, 2, 4, 5 and 5 s: 17.5 s in all, enough for
    /// a Prometheus restart (its WAL replay) to finish.
    pub const DEFAULT: Retry = Retry {
        retries: 6,
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(5),
    };

    /// No retries.
    pub const NONE: Retry = Retry {
        retries: 0,
        backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// [`Self::DEFAULT`]'s backoff with `retries` retries.
    pub fn with_retries(retries: u32) -> Retry {
        Retry {
            retries,
            ..Retry::DEFAULT
        }
    }

    /// The wait before retry `n` (0 for the first retry).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The total wait when every retry is spent.
    pub fn budget(&self) -> Duration {
        (0..self.retries).map(|n| self.delay(n)).sum()
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::DEFAULT
    }
}

/// Counts retries; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct RetryCount(Arc<AtomicU64>);

impl RetryCount {
    /// Retries so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Calls `attempt` until it succeeds, fails for good, or `retry` is spent,
/// sleeping between attempts and counting each retry in `count`; a wait
/// ends as soon as `shutdown` completes (then [`Error::Interrupted`]).
async fn with_retry_until<T, F, Fut>(
    retry: Retry,
    count: &RetryCount,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut waited = Duration::ZERO;
    let mut n = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => {
                if n >= retry.retries {
                    if n == 0 {
                        return Err(e);
                    }
                    return Err(Error::RetriesSpent {
                        addr,
                        retries: n,
                        waited,
                        last: Box::new(e),
                    });
                }
                let delay = retry.delay(n);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => {
                        return Err(Error::Interrupted {
                            addr,
                            retries: n,
                            last: Box::new(e),
                        });
                    }
                }
                waited += delay;
                count.add();
                n += 1;
            }
            other => return other,
        }
    }
}

/// One instance Prometheus scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The `job` label.
    pub job: String,
    /// `host:port` serving `/metrics`.
    pub addr: SocketAddr,
    /// Extra target labels (e.g. `track`). Avoid names the target already
    /// exposes (goldengoose's `version`): Prometheus would rename them to
    /// `exported_*`.
    pub labels: BTreeMap<String, String>,
}

impl ScrapeTarget {
    /// A target with no extra labels.
    pub fn new(job: impl Into<String>, addr: SocketAddr) -> Self {
        ScrapeTarget {
            job: job.into(),
            addr,
            labels: BTreeMap::new(),
        }
    }

    /// Adds a target label.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }
}

/// One series of a range query: its labels and `(unix seconds, value)`
/// points; values may be NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels, `__name__` included when Prometheus returns it.
    pub labels: BTreeMap<String, String>,
    /// The points, as `(unix seconds, value)`, in time order.
    pub points: Vec<(f64, f64)>,
}

/// A client of one Prometheus's HTTP API: the child process of
/// [`Prometheus`] ([`Prometheus::api`]) or any Prometheus reachable over
/// plain HTTP, such as a cluster's behind `kubectl port-forward`
/// ([`PromApi::from_url`]).
#[derive(Debug, Clone)]
pub struct PromApi {
    addr: SocketAddr,
    /// The `Host` header: `host[:port]` as the user wrote it.
    host: String,
    /// Path prefix without a trailing `/` (`--web.route-prefix`), e.g. `/prometheus`.
    prefix: String,
    retry: Retry,
    retries: RetryCount,
    /// Ctrl-C: ends a retry wait at once ([`Self::with_cancel`]).
    cancel: Option<watch::Receiver<bool>>,
    /// The longest wait for the answer's next bytes.
    read_timeout: Duration,
}

impl PromApi {
    /// The API of a Prometheus listening on `addr`, at the root path, with
    /// [`Retry::DEFAULT`].
    pub fn new(addr: SocketAddr) -> Self {
        PromApi {
            addr,
            host: addr.to_string(),
            prefix: String::new(),
            retry: Retry::DEFAULT,
            retries: RetryCount::default(),
            cancel: None,
            read_timeout: HTTP_TIMEOUT,
        }
    }

    /// The same API, and `true` on `cancel` (Ctrl-C) ends a query's wait
    /// between retries at once with [`Error::Interrupted`] instead of after
    /// the backoff (up to `max_backoff`). Queries begun after it said
    /// `true` retry as usual.
    pub fn with_cancel(mut self, cancel: watch::Receiver<bool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// The same API with another retry bound (the count stays shared).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The same API waiting up to `timeout` for an answer's next bytes
    /// (default [`HTTP_TIMEOUT`]; [`QUERY_TIMEOUT`] for long range reads
    /// that a busy Prometheus may take a while to evaluate).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The retry bound.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// Retries so far, over every clone of this API.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Parses `http://HOST[:PORT][/PREFIX]` (port 80 by default) and
    /// resolves the host. HTTPS is refused: put a `kubectl port-forward` or
    /// a local proxy in front of a TLS Prometheus.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad(
                    "https is not supported; reach Prometheus over plain http (e.g. `kubectl port-forward svc/prometheus 9090` and http://127.0.0.1:9090)",
                ));
            }
            Some((scheme, _)) => return Err(bad(&format!("unknown scheme {scheme:?}"))),
            None => return Err(bad("expected http://HOST:PORT")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("user info in the URL is not supported"));
        }
        let with_port = if authority.starts_with('[') {
            if authority.contains("]:") {
                authority.to_string()
            } else {
                format!("{authority}:80")
            }
        } else if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        use std::net::ToSocketAddrs as _;
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {with_port}: {e}")))?
            .next()
            .ok_or_else(|| bad(&format!("{with_port} resolves to no address")))?;
        Ok(PromApi {
            addr,
            host: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
            retry: Retry::DEFAULT,
            retries: RetryCount::default(),
            cancel: None,
            read_timeout: HTTP_TIMEOUT,
        })
    }

    /// The address requests go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), Error> {
        http(
            self.addr,
            &self.host,
            method,
            &format!("{}{path}", self.prefix),
            body,
            self.read_timeout,
        )
        .await
        .map_err(|source| Error::Http {
            addr: self.addr,
            source,
        })
    }

    /// `GET /-/ready` answered 200.
    pub async fn is_ready(&self) -> bool {
        matches!(self.request("GET", "/-/ready", None).await, Ok((200, _)))
    }

    /// `/api/v1/query_range` from `start` to `end` (unix seconds) every
    /// `step`. An HTTP 400/422 carries Prometheus's own error message. A
    /// transient failure ([`Error::is_transient`]) is retried within the
    /// API's [`Retry`] bound, then [`Error::RetriesSpent`].
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        with_retry_until(
            self.retry,
            &self.retries,
            self.addr,
            armed(self.cancel.as_ref()),
            || self.query_range_once(promql, start, end, step),
        )
        .await
    }

    async fn query_range_once(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        let body = format!(
            "query={}&start={start:.3}&end={end:.3}&step={}",
            form_encode(promql),
            step.as_secs_f64()
        );
        parse_matrix(
            &self
                .post_query("/api/v1/query_range", &body, promql)
                .await?,
        )
    }

    /// `/api/v1/query` at `at` (unix seconds): Prometheus's `data` object
    /// (`resultType` and `result`, any shape). Errors and retries as
    /// [`Self::query_range`].
    pub async fn query_data(&self, promql: &str, at: f64) -> Result<serde_json::Value, Error> {
        let body = format!("query={}&time={at:.3}", form_encode(promql));
        with_retry_until(
            self.retry,
            &self.retries,
            self.addr,
            armed(self.cancel.as_ref()),
            || self.post_query("/api/v1/query", &body, promql),
        )
        .await
    }

    /// `/api/v1/query` of a range selector (`metric[5m]`) at `at` (unix
    /// seconds): each series' raw samples with their own timestamps, read
    /// in one pass. Errors and retries as [`Self::query_range`].
    pub async fn query_samples(&self, promql: &str, at: f64) -> Result<Vec<Series>, Error> {
        parse_matrix(&self.query_data(promql, at).await?)
    }

    /// `/api/v1/query_range`'s `data` object, any result shape.
    pub async fn query_range_data(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<serde_json::Value, Error> {
        let body = format!(
            "query={}&start={start:.3}&end={end:.3}&step={}",
            form_encode(promql),
            step.as_secs_f64()
        );
        with_retry_until(
            self.retry,
            &self.retries,
            self.addr,
            armed(self.cancel.as_ref()),
            || self.post_query("/api/v1/query_range", &body, promql),
        )
        .await
    }

    /// POSTs a query form to `path`; the response's `data` on success.
    async fn post_query(
        &self,
        path: &str,
        body: &str,
        promql: &str,
    ) -> Result<serde_json::Value, Error> {
        let (status, text) = self.request("POST", path, Some(body)).await?;
        let mut json: serde_json::Value = match serde_json::from_str(&text) {
            Ok(json) => json,
            // A proxy's or a starting server's error page: transient.
            Err(_) if status == 429 || status >= 500 => serde_json::Value::Null,
            Err(e) => {
                return Err(Error::BadResponse(format!(
                    "HTTP {status}, not JSON ({e}): {}",
                    clip(&text)
                )));
            }
        };
        if status != 200 || json["status"] != "success" {
            return Err(Error::Query {
                status,
                error_type: json["errorType"].as_str().unwrap_or("unknown").to_string(),
                message: json["error"].as_str().unwrap_or(&text).to_string(),
                query: promql.to_string(),
            });
        }
        Ok(json["data"].take())
    }

    /// [`Self::query_range`] for a query that yields one series (or none:
    /// an empty vector).
    pub async fn query_range_single(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<(f64, f64)>, Error> {
        let mut series = self.query_range(promql, start, end, step).await?;
        match series.len() {
            0 => Ok(Vec::new()),
            1 => Ok(series.remove(0).points),
            count => Err(Error::ManySeries {
                count,
                query: promql.to_string(),
            }),
        }
    }
}

/// The supervisor Prometheus runs under: `sh -c SUPERVISOR sh PARENT DIR
/// PROMETHEUS ARGS...`. It starts Prometheus, prints its PID, and waits for
/// it, exiting with its status. A watcher subshell reads the supervisor's
/// parent PID from `/proc` every second; once it is not `PARENT` any more
/// (canarylab died, even by SIGKILL, and the supervisor was re-parented),
/// it kills Prometheus, and the supervisor then removes `DIR`. Plain POSIX
/// sh and `/proc`: no unsafe `pre_exec`, no binary of ours to find (the
/// tests run the library from test binaries).
pub const SUPERVISOR: &str = r#"parent=$1; dir=$2; shift 2
"$@" </dev/null >/dev/null &
p=$!
echo "$p"
exec >/dev/null
orphaned() { read -r _ _ _ ppid _ < "/proc/$$/stat" && [ "$ppid" != "$parent" ]; }
( while ! orphaned; do sleep 1; done; kill -9 "$p" ) &
w=$!
wait "$p"; status=$?
kill "$w" 2>/dev/null
if orphaned; then rm -rf "$dir"; fi
exit "$status"
"#;

/// Prefix of Prometheus's temporary directories:
/// `canarylab-prometheus-PID-NANOS-N`, PID the creating process's.
const DIR_PREFIX: &str = "canarylab-prometheus-";

/// A running Prometheus child process (under its [`SUPERVISOR`]); dropping
/// it stops the process and removes its temporary directory.
#[derive(Debug)]
pub struct Prometheus {
    /// The supervisor shell.
    child: Child,
    /// Prometheus itself, the supervisor's child.
    pid: u32,
    addr: SocketAddr,
    dir: PathBuf,
    retry: Retry,
    retries: RetryCount,
}

impl Prometheus {
    /// Finds the binary: `binary` if given, else `$CANARYLAB_PROMETHEUS`,
    /// else `prometheus` on `PATH`.
    pub fn find_binary(binary: Option<&Path>) -> Result<PathBuf, Error> {
        if let Some(path) = binary {
            return if path.is_file() {
                Ok(path.to_path_buf())
            } else {
                Err(Error::BinaryNotFound {
                    tried: format!("given path {} is not a file", path.display()),
                })
            };
        }
        if let Some(path) = std::env::var_os(PROMETHEUS_ENV) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(Error::BinaryNotFound {
                    tried: format!("${PROMETHEUS_ENV}={} is not a file", path.display()),
                })
            };
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_var)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| Error::BinaryNotFound {
                tried: "not on PATH".to_string(),
            })
    }

    /// Starts Prometheus scraping `targets` every `scrape_interval`, and
    /// waits until it is ready (at most [`READY_TIMEOUT`]). The first scrape
    /// lands some seconds later.
    pub async fn start(
        binary: Option<&Path>,
        targets: &[ScrapeTarget],
        scrape_interval: Duration,
    ) -> Result<Prometheus, Error> {
        Self::start_in(&std::env::temp_dir(), binary, targets, scrape_interval).await
    }

    /// [`Self::start`] with the temporary directory created under `root`.
    /// Directories left there by earlier runs whose process is gone are
    /// removed first ([`sweep_stale_dirs`]).
    pub async fn start_in(
        root: &Path,
        binary: Option<&Path>,
        targets: &[ScrapeTarget],
        scrape_interval: Duration,
    ) -> Result<Prometheus, Error> {
        let binary = Self::find_binary(binary)?;
        sweep_stale_dirs(root);
        let dir = make_temp_dir(root)?;
        // From here on a failure must remove the directory.
        let mut cleanup = DirGuard(Some(dir.clone()));
        let io = |source| Error::TempDir {
            path: dir.clone(),
            source,
        };
        write_targets(&dir, targets).map_err(io)?;
        std::fs::write(
            dir.join("prometheus.yml"),
            config_yaml(&dir, scrape_interval),
        )
        .map_err(io)?;
        let log = std::fs::File::create(dir.join("prometheus.log")).map_err(io)?;
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&dir)
            .arg(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            // Its own process group: a terminal's Ctrl-C reaches canarylab,
            // which stops Prometheus itself when it is done with it.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: binary.clone(),
                source,
            })?;
        // The supervisor's first line: Prometheus's PID.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use std::io::BufRead as _;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = child.kill();
            let status = child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
            return Err(Error::Exited { status, log });
        };
        let mut prometheus = Prometheus {
            child,
            pid,
            addr,
            dir,
            retry: Retry::DEFAULT,
            retries: RetryCount::default(),
        };
        cleanup.0 = None; // the Prometheus guard owns the directory now
        prometheus.wait_ready(READY_TIMEOUT).await?;
        Ok(prometheus)
    }

    /// The same Prometheus with another retry bound for [`Self::api`].
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Query retries so far, over every [`Self::api`] of this Prometheus.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Exited {
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            if PromApi::new(self.addr).is_ready().await {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(Error::NotReady {
                    waited: timeout,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The HTTP address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Prometheus's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process id of its supervisor (see [`SUPERVISOR`]).
    pub fn supervisor_pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory holding config, targets, log and TSDB.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of Prometheus's log (stderr).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Replaces the scraped targets. Prometheus re-reads the file_sd file
    /// on change (and at least every second), no restart needed.
    pub fn set_targets(&self, targets: &[ScrapeTarget]) -> Result<(), Error> {
        write_targets(&self.dir, targets).map_err(|source| Error::TempDir {
            path: self.dir.clone(),
            source,
        })
    }

    /// The HTTP API of this Prometheus, with its retry bound and count.
    pub fn api(&self) -> PromApi {
        PromApi {
            retry: self.retry,
            retries: self.retries.clone(),
            ..PromApi::new(self.addr)
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SIGKILL: nothing in the temporary TSDB is worth a clean shutdown.
        // While the supervisor runs, Prometheus is its child (alive or not
        // yet reaped), so its PID cannot belong to anyone else; the
        // supervisor then reaps it and exits.
        if matches!(self.child.try_wait(), Ok(None)) {
            kill(self.pid);
            let _ = self.child.wait();
        }
        // Were the supervisor stuck, this ends it (Prometheus is dead).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Removes Prometheus directories under `root` (`canarylab-prometheus-PID-*`)
/// whose creating process is gone; returns what it removed. A directory
/// whose PID runs (this process's, another canarylab's, or a reused PID) is
/// left alone.
pub fn sweep_stale_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if Path::new(&format!("/proc/{pid}")).exists() || !path.is_dir() {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Removes a directory on drop unless forgotten.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn make_temp_dir(root: &Path) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = root.join(format!(
        "{DIR_PREFIX}{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&path).map_err(|source| Error::TempDir {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn free_port() -> Result<u16, Error> {
    // Prometheus cannot take a listener from us, so there is a short window
    // in which another process could take the port; start then fails clearly.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::Port)?;
    Ok(listener.local_addr().map_err(Error::Port)?.port())
}

fn config_yaml(dir: &Path, scrape_interval: Duration) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis().max(1));
    // JSON strings are valid YAML scalars, which quotes the path safely.
    let targets = serde_json::Value::String(dir.join("targets.json").display().to_string());
    format!(
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\n\
         scrape_configs:\n  - job_name: canarylab\n    file_sd_configs:\n      - files: [{targets}]\n        refresh_interval: 1s\n"
    )
}

fn write_targets(dir: &Path, targets: &[ScrapeTarget]) -> std::io::Result<()> {
    let groups: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| {
            let mut labels: serde_json::Map<String, serde_json::Value> = t
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            labels.insert("job".into(), serde_json::Value::String(t.job.clone()));
            serde_json::json!({ "targets": [t.addr.to_string()], "labels": labels })
        })
        .collect();
    let text = serde_json::to_string_pretty(&groups).map_err(std::io::Error::other)?;
    // Write then rename, so Prometheus never reads half a file.
    let tmp = dir.join("targets.json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join("targets.json"))
}

fn parse_matrix(data: &serde_json::Value) -> Result<Vec<Series>, Error> {
    if data["resultType"] != "matrix" {
        return Err(Error::BadResponse(format!(
            "resultType {} is not \"matrix\"",
            data["resultType"]
        )));
    }
    let results = data["result"]
        .as_array()
        .ok_or_else(|| Error::BadResponse("data.result is not a list".into()))?;
    results
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let points = r["values"]
                .as_array()
                .ok_or_else(|| Error::BadResponse("a series has no values".into()))?
                .iter()
                .map(parse_point)
                .collect::<Result<_, _>>()?;
            Ok(Series { labels, points })
        })
        .collect()
}

/// `[1700000000.5, "0.25"]`; values are strings and may be `NaN`, `+Inf`.
fn parse_point(point: &serde_json::Value) -> Result<(f64, f64), Error> {
    let bad = || Error::BadResponse(format!("bad point {point}"));
    let t = point[0].as_f64().ok_or_else(bad)?;
    let v = point[1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(bad)?;
    Ok((t, v))
}

/// `application/x-www-form-urlencoded`: unreserved bytes kept, others `%XX`.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// One request on a connection of its own (hyper's HTTP/1 client);
/// returns status and body. Connecting and sending may take
/// [`HTTP_TIMEOUT`], the answer's head and each later piece of its body
/// `read_timeout`.
async fn http(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    read_timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use http_body_util::{BodyExt as _, Full};
    use hyper::header::{CONTENT_TYPE, HOST};
    let timed_out =
        |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"));
    let stream = tokio::time::timeout(HTTP_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connecting"))??;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host);
    if body.is_some() {
        request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(
            body.unwrap_or_default().to_string(),
        )))
        .map_err(std::io::Error::other)?;
    let exchange = async {
        let response = tokio::time::timeout(read_timeout, sender.send_request(request))
            .await
            .map_err(|_| timed_out("waiting for the answer"))?
            .map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        loop {
            match tokio::time::timeout(read_timeout, body.frame()).await {
                Err(_) => return Err(timed_out("reading the answer")),
                Ok(None) => break,
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    let mut conn = std::pin::pin!(conn);
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        answer = &mut exchange => answer,
        ended = &mut conn => {
            ended.map_err(std::io::Error::other)?;
            exchange.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Prometheus that accepts and never answers: the query ends with
    /// the read timeout the API was given (kept open well beyond it), as
    /// an HTTP error naming the address.
    #[tokio::test]
    async fn a_silent_prometheus_ends_a_query_at_the_read_timeout() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        let addr = listener.local_addr().expect("addr");
        let held = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accepts");
            std::thread::sleep(Duration::from_secs(5));
            drop(conn);
        });
        let api = PromApi::new(addr)
            .with_retry(Retry::NONE)
            .with_read_timeout(Duration::from_millis(200));
        let err = api.query_data("up", 0.0).await.expect_err("no answer");
        match &err {
            Error::Http { source, .. } => assert!(
                matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{source:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        held.join().expect("joins");
    }

    #[test]
    fn urls_parse_with_port_and_prefix() {
        let api = PromApi::from_url("http://127.0.0.1:9090/prometheus/").expect("parses");
        assert_eq!(api.addr(), "127.0.0.1:9090".parse().expect("addr"));
        assert_eq!(api.prefix, "/prometheus");
        assert_eq!(api.host, "127.0.0.1:9090");
        let api = PromApi::from_url("http://127.0.0.1").expect("parses");
        assert_eq!(api.addr().port(), 80);
        assert_eq!(api.prefix, "");
        for bad in [
            "https://127.0.0.1:9090",
            "127.0.0.1:9090",
            "ftp://x",
            "http://",
            "http://u@127.0.0.1",
        ] {
            let err = PromApi::from_url(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn form_encoding_escapes_promql() {
        assert_eq!(
            form_encode(r#"up{a="b c"}[1m]+x"#),
            "up%7Ba%3D%22b%20c%22%7D%5B1m%5D%2Bx"
        );
    }

    #[test]
    fn matrix_parses_nan_and_inf_strings() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"job":"x"},
                "values":[[1700000000,"0.5"],[1700000001.5,"NaN"],[1700000003,"+Inf"]]}]}"#,
        )
        .expect("json");
        let series = parse_matrix(&json).expect("parses");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels["job"], "x");
        let p = &series[0].points;
        assert_eq!(p[0], (1_700_000_000.0, 0.5));
        assert!(p[1].1.is_nan());
        assert_eq!(p[2].1, f64::INFINITY);
    }

    #[test]
    fn missing_binary_says_how_to_install() {
        let err = Prometheus::find_binary(Some(Path::new("/nonexistent/prometheus")))
            .expect_err("no such file");
        let text = err.to_string();
        assert!(text.contains("apt-get install prometheus"), "{text}");
        assert!(text.contains(PROMETHEUS_ENV), "{text}");
        assert!(text.contains("--prometheus"), "{text}");
    }

    #[test]
    fn retry_backoff_doubles_up_to_its_cap() {
        let r = Retry::DEFAULT;
        let delays: Vec<u64> = (0..r.retries)
            .map(|n| r.delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(r.budget(), Duration::from_millis(17_500));
        assert_eq!(r.delay(200), r.max_backoff);
        assert_eq!(Retry::NONE.budget(), Duration::ZERO);
    }

    fn http_error() -> Error {
        Error::Http {
            addr: "127.0.0.1:9".parse().expect("addr"),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        }
    }

    fn query_error(status: u16) -> Error {
        Error::Query {
            status,
            error_type: "x".into(),
            message: "y".into(),
            query: "up".into(),
        }
    }

    /// [`with_retry_until`] without a shutdown.
    async fn with_retry<T>(
        retry: Retry,
        count: &RetryCount,
        addr: SocketAddr,
        mut attempt: impl FnMut() -> Result<T, Error>,
    ) -> Result<T, Error> {
        with_retry_until(retry, count, addr, std::future::pending(), || {
            std::future::ready(attempt())
        })
        .await
    }

    #[tokio::test]
    async fn only_transient_errors_are_retried_and_every_retry_counted() {
        let quick = Retry {
            retries: 3,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let addr = "127.0.0.1:9".parse().expect("addr");
        // Two failures, then an answer: two retries.
        let count = RetryCount::default();
        let mut calls = 0;
        let got = with_retry(quick, &count, addr, || {
            calls += 1;
            match calls {
                1 => Err(http_error()),
                2 => Err(query_error(503)),
                _ => Ok(calls),
            }
        })
        .await;
        assert_eq!(got.expect("third attempt answers"), 3);
        assert_eq!(count.get(), 2);
        // A PromQL error is final at once.
        let mut calls = 0;
        let err = with_retry(quick, &count, addr, || {
            calls += 1;
            Err::<(), _>(query_error(400))
        })
        .await
        .expect_err("bad query");
        assert_eq!(calls, 1);
        assert!(matches!(err, Error::Query { status: 400, .. }), "{err}");
        // Always down: 1 + 3 attempts, then the bound is named.
        let mut calls = 0;
        let err = with_retry(quick, &count, addr, || {
            calls += 1;
            Err::<(), _>(http_error())
        })
        .await
        .expect_err("down");
        assert_eq!(calls, 4);
        assert_eq!(count.get(), 2 + 3);
        assert!(err.to_string().contains("after 3 retries"), "{err}");
        // No retries: the error itself.
        let err = with_retry(Retry::NONE, &count, addr, || Err::<(), _>(http_error()))
            .await
            .expect_err("down");
        assert!(matches!(err, Error::Http { .. }), "{err}");
    }

    /// Nothing listens on a port just bound and dropped: every attempt is
    /// a refused connection (transient).
    fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        listener.local_addr().expect("addr")
    }

    #[tokio::test]
    async fn ctrl_c_ends_a_retry_wait_at_once() {
        // An hour between tries: only the cancel channel can end the wait.
        let hour = Retry {
            retries: 3,
            backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
        };
        let (cancel, rx) = watch::channel(false);
        let api = PromApi::new(closed_port())
            .with_retry(hour)
            .with_cancel(rx.clone());
        let query = tokio::spawn({
            let api = api.clone();
            async move { api.query_data("up", 0.0).await }
        });
        // Ctrl-C while the query waits to retry (or before its first
        // attempt has failed: the wait then ends as it begins).
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.send_replace(true);
        // The guard only keeps a broken build from hanging for an hour: an
        // answer at all means the wait was cut short.
        let got = tokio::time::timeout(Duration::from_secs(600), query)
            .await
            .expect("the wait ended with the cancel channel, not after its hour")
            .expect("joins");
        let err = got.expect_err("interrupted");
        assert!(
            matches!(err, Error::Interrupted { retries: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("interrupted"), "{err}");
        assert!(!err.is_transient());
        assert_eq!(api.retries(), 0);
        // Begun after Ctrl-C (a clean-up): retried as usual.
        let quick = Retry {
            retries: 2,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let api = PromApi::new(closed_port())
            .with_retry(quick)
            .with_cancel(rx);
        let err = api.query_data("up", 0.0).await.expect_err("down");
        assert_eq!(api.retries(), 2);
        assert!(matches!(err, Error::RetriesSpent { .. }), "{err}");
        // A closed channel never interrupts.
        let (gone, rx) = watch::channel(false);
        drop(gone);
        let api = PromApi::new(closed_port())
            .with_retry(quick)
            .with_cancel(rx);
        let err = api.query_data("up", 0.0).await.expect_err("down");
        assert!(
            matches!(err, Error::RetriesSpent { retries: 2, .. }),
            "{err}"
        );
    }

    /// The client against a real HTTP/1.1 server: the form body and the
    /// `Host` header arrive, a 503 is retried (counted), a JSON answer is
    /// read back (chunked), and a 400 carries Prometheus's message.
    #[tokio::test]
    async fn queries_reach_an_http_server_and_its_answers_come_back() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            let answers = [
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy".to_string(),
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}",
                    chunked(r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"x"},"values":[[10,"1.5"],[11,"NaN"]]}]}}"#)
                ),
                {
                    let body = r#"{"status":"error","errorType":"bad_data","error":"parse error x"}"#;
                    format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                },
            ];
            for answer in answers {
                let (mut conn, _) = listener.accept().await.expect("accepts");
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Head, then the body its Content-Length announces.
                loop {
                    let n = conn.read(&mut buf).await.expect("reads");
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .and_then(|l| l.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length || n == 0 {
                            break;
                        }
                    }
                }
                seen.push(String::from_utf8_lossy(&request).to_string());
                conn.write_all(answer.as_bytes()).await.expect("writes");
                conn.shutdown().await.expect("closes");
            }
            seen
        });
        let api = PromApi::from_url(&format!("http://{addr}/prefix"))
            .expect("url")
            .with_retry(Retry {
                retries: 2,
                backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
            });
        let series = api
            .query_range_single("rate(x[1m])", 10.0, 11.0, Duration::from_secs(1))
            .await
            .expect("answers after one retry");
        assert_eq!(series[0], (10.0, 1.5));
        assert!(series[1].1.is_nan());
        assert_eq!(api.retries(), 1);
        let err = api.query_data("sum(", 10.0).await.expect_err("bad query");
        match &err {
            Error::Query {
                status: 400,
                error_type,
                message,
                ..
            } => assert_eq!(
                (error_type.as_str(), message.as_str()),
                ("bad_data", "parse error x")
            ),
            other => panic!("{other:?}"),
        }
        let seen = server.await.expect("server");
        assert!(
            seen[0].starts_with("POST /prefix/api/v1/query_range HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains(&format!("host: {addr}\r\n")),
            "{}",
            seen[0]
        );
        assert!(
            seen[1].ends_with("query=rate%28x%5B1m%5D%29&start=10.000&end=11.000&step=1"),
            "{}",
            seen[1]
        );
        assert!(
            seen[2].starts_with("POST /prefix/api/v1/query HTTP/1.1"),
            "{}",
            seen[2]
        );
    }

    /// `text` as one chunk of a chunked body, and the last chunk.
    fn chunked(text: &str) -> String {
        format!("{:x}\r\n{text}\r\n0\r\n\r\n", text.len())
    }

    #[test]
    fn stale_dirs_of_dead_processes_are_swept_and_live_ones_kept() {
        let root = std::env::temp_dir().join(format!("canarylab-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("root");
        // A PID that is surely gone: a child that exited and was reaped.
        let mut child = Command::new("true").spawn().expect("true runs");
        let dead = child.id();
        child.wait().expect("reaped");
        let stale = root.join(format!("{DIR_PREFIX}{dead}-1-0"));
        let live = root.join(format!("{DIR_PREFIX}{}-1-0", std::process::id()));
        let other = root.join("something-else-1");
        for d in [&stale, &live, &other] {
            std::fs::create_dir_all(d.join("data")).expect("dir");
        }
        let removed = sweep_stale_dirs(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(removed, vec![stale]);
    }

    #[test]
    fn config_has_interval_and_targets_file() {
        let yaml = config_yaml(Path::new("/tmp/x"), Duration::from_millis(500));
        assert!(yaml.contains("scrape_interval: 500ms"), "{yaml}");
        assert!(yaml.contains("scrape_timeout: 500ms"), "{yaml}");
        assert!(yaml.contains(r#"files: ["/tmp/x/targets.json"]"#), "{yaml}");
    }
}
