//! Command-line options ([`Args`], clap) and the resolved server [`Config`].
//!
//! `Args` is what a user types; `Config` is what [`crate::run`] needs, with
//! the admin token read and faults parsed. Tests and other crates build a
//! `Config` directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::fault::Fault;
use crate::istio::Istio;
use crate::units::{format_duration, parse_duration};

/// Environment variable holding the admin token, when no file is given.
pub const ADMIN_TOKEN_ENV: &str = "GOLDENGOOSE_ADMIN_TOKEN";

/// The largest `--payload-bytes` accepted.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;

/// goldengoose: the web server under test, with injectable faults and
/// Prometheus metrics.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "goldengoose", version, about, long_about = None)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. The bound address is
    /// printed as the first line of stdout.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Serve the listening TCP socket inherited as standard input instead of
    /// binding --listen (inetd "wait" style; unix only). The parent process
    /// (a supervisor such as canarylab's local mode) binds and listens, so
    /// it knows the address before this server exists, and a restarted
    /// server keeps the same address and the connections queued meanwhile.
    /// The first line of stdout is still the address.
    #[arg(long, conflicts_with = "listen")]
    pub listen_stdin: bool,

    /// Shut down gracefully, as on SIGTERM, once the process that started
    /// this one has exited (checked every 250 ms; unix only), so a server
    /// whose supervisor was killed does not live on holding its port. For
    /// supervisors: canarylab local passes it.
    #[arg(long)]
    pub exit_with_parent: bool,

    /// Version (track) label put on every response (x-version) and metric,
    /// e.g. baseline, canary, production or v1.2.3.
    #[arg(long = "track", visible_alias = "app-version", default_value = "dev")]
    pub track: String,

    /// Base service time of the work endpoint, e.g. 5ms.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub service_time: Duration,

    /// Size of the work endpoint's response body in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,

    /// A fault in force from start, KIND=VALUE; repeatable. Kinds:
    /// latency=50ms, latency=500ms@1%, latency=lognormal:50ms:0.5,
    /// errors=0.1, errors=0.1:503, cpu=2ms, memory=1KiB/req, memory=1MiB/s,
    /// slow_start=30s, slow_start=30s:100ms, slow_start=30s:100ms:decay=60s,
    /// crash=60s, crash=1000req, hang=0.01. slow_start: /readyz fails for
    /// 30s; the extra latency (default 100ms) fades linearly to 0 over those
    /// 30s, or with decay=TAU is 100ms*exp(-t/TAU), going on after ready.
    #[arg(long = "fault", value_name = "KIND=VALUE", value_parser = parse_fault_arg)]
    pub faults: Vec<Fault>,

    /// File holding the bearer token that enables the admin API
    /// (otherwise $GOLDENGOOSE_ADMIN_TOKEN; without either it is disabled).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,

    /// Seed of the fault RNG; default from the clock.
    #[arg(long)]
    pub seed: Option<u64>,

    /// How long to wait for in-flight requests on SIGTERM/Ctrl-C.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Worker threads of the runtime; default one per core.
    #[arg(long)]
    pub threads: Option<usize>,

    /// Also expose, for the work requests, the metrics the Istio sidecar of
    /// this workload would report (istio_requests_total,
    /// istio_request_duration_milliseconds; reporter="destination"), so
    /// Istio queries work without a mesh. namespace defaults to default,
    /// service to the workload, app to the service; e.g.
    /// workload=shop-canary,namespace=default,service=shop.
    #[arg(long, value_name = "workload=NAME[,namespace=NS][,service=SVC][,app=APP]", value_parser = parse_istio_arg)]
    pub istio: Option<Istio>,
}

fn parse_istio_arg(text: &str) -> Result<Istio, String> {
    text.parse::<Istio>().map_err(|err| err.to_string())
}

fn parse_fault_arg(text: &str) -> Result<Fault, String> {
    text.parse::<Fault>().map_err(|err| err.to_string())
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Value of the `version` label and the `x-version` header.
    pub version: String,
    /// Base service time of the work endpoint, before any fault.
    pub service_time: Duration,
    /// Size of the work endpoint's response body, in bytes.
    pub payload_bytes: usize,
    /// Faults in force from start.
    pub faults: Vec<Fault>,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<String>,
    /// Seed of the fault RNG.
    pub seed: u64,
    /// How long to wait for in-flight requests once shutdown starts.
    pub drain_timeout: Duration,
    /// `--istio`: also expose the Istio-named metrics of this workload.
    pub istio: Option<Istio>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: "dev".to_string(),
            service_time: Duration::ZERO,
            payload_bytes: 64,
            faults: Vec::new(),
            admin_token: None,
            seed: 0,
            drain_timeout: Duration::from_secs(10),
            istio: None,
        }
    }
}

impl Config {
    /// The goldengoose command-line options that reproduce this config, for
    /// starting it as a child process: `Args::parse_from` of a program name
    /// followed by these, then [`Args::into_config`], gives back an equal
    /// `Config` (durations exactly, to the nanosecond).
    ///
    /// Every field is given, defaults too, as `--flag=value` so a value that
    /// starts with `-` is not taken for a flag. Not included: a program name,
    /// `--listen`/`--listen-stdin`, `--exit-with-parent` and `--threads`
    /// (process options, not part of a `Config`),
    /// and the admin token: arguments are readable by every local user
    /// (`ps`, `/proc/PID/cmdline`), so pass the token in the environment
    /// variable [`ADMIN_TOKEN_ENV`] instead.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--track={}", self.version),
            format!("--service-time={}", format_duration(self.service_time)),
            format!("--payload-bytes={}", self.payload_bytes),
        ];
        args.extend(self.faults.iter().map(|fault| format!("--fault={fault}")));
        args.push(format!("--seed={}", self.seed));
        args.push(format!(
            "--drain-timeout={}",
            format_duration(self.drain_timeout)
        ));
        if let Some(istio) = &self.istio {
            args.push(format!("--istio={istio}"));
        }
        args
    }
}

impl Args {
    /// Resolves the options: reads the admin token (file, else environment)
    /// and picks a seed from the clock if none was given.
    pub fn into_config(self) -> Result<Config, Error> {
        let admin_token = match &self.admin_token_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| Error::AdminTokenFile {
                        path: path.clone(),
                        source,
                    })?;
                Some(non_empty(
                    text,
                    format!("--admin-token-file {}", path.display()),
                )?)
            }
            None => match std::env::var(ADMIN_TOKEN_ENV) {
                Ok(text) => Some(non_empty(text, format!("${ADMIN_TOKEN_ENV}"))?),
                Err(_) => None,
            },
        };
        if self.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(Error::PayloadTooLarge(self.payload_bytes));
        }
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        Ok(Config {
            version: self.track,
            service_time: self.service_time,
            payload_bytes: self.payload_bytes,
            faults: self.faults,
            admin_token,
            seed,
            drain_timeout: self.drain_timeout,
            istio: self.istio,
        })
    }
}

fn non_empty(text: String, origin: String) -> Result<String, Error> {
    let token = text.trim().to_string();
    if token.is_empty() {
        Err(Error::EmptyAdminToken { origin })
    } else {
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn faults_are_repeatable_and_parsed() {
        let args = Args::try_parse_from([
            "goldengoose",
            "--fault",
            "latency=50ms",
            "--fault",
            "errors=0.1",
            "--track",
            "canary",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("valid args");
        assert_eq!(args.faults.len(), 2);
        assert_eq!(args.track, "canary");
    }

    #[test]
    fn bad_fault_names_the_flag_and_the_allowed_form() {
        for bad in ["errors=1.5", "errors=-0.1", "boom=1", "latency=5 parsecs"] {
            let err = Args::try_parse_from(["goldengoose", "--fault", bad])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("--fault"), "{err}");
            assert!(err.contains("allowed: latency=DELAY"), "{err}");
        }
    }

    #[test]
    fn to_args_round_trips_through_the_parser() {
        let config = Config {
            // Starts with '-': must not be taken for a flag.
            version: "-canary v2".to_string(),
            service_time: Duration::new(0, 1_234_567),
            payload_bytes: 4097,
            faults: [
                "latency=lognormal:40ms:0.5@0.1",
                "latency=1500us",
                "errors=0.02:503",
                "cpu=250us",
                "memory=4KiB/req",
                "memory=1MiB/s",
                "slow_start=30s:123456789ns:decay=61s",
                "slow_start=5s",
                "crash=1000req",
                "crash=90s",
                "hang=0.001",
            ]
            .iter()
            .map(|spec| spec.parse().expect("valid fault"))
            .collect(),
            admin_token: Some("s3cret".to_string()),
            seed: u64::MAX,
            drain_timeout: Duration::new(7, 1),
            istio: Some(
                "workload=shop-canary,service=shop"
                    .parse()
                    .expect("valid istio"),
            ),
        };
        let args = config.to_args();
        assert!(
            !args.iter().any(|arg| arg.contains("s3cret")),
            "token on the command line: {args:?}"
        );
        let parsed = Args::try_parse_from(std::iter::once("goldengoose".to_string()).chain(args))
            .expect("to_args output parses");
        assert!(!parsed.listen_stdin);
        assert!(!parsed.exit_with_parent, "off unless asked for");
        assert_eq!(parsed.admin_token_file, None);
        let back = parsed.into_config().expect("resolves");
        assert_eq!(back.version, config.version);
        assert_eq!(back.service_time, config.service_time);
        assert_eq!(back.payload_bytes, config.payload_bytes);
        assert_eq!(back.faults, config.faults);
        assert_eq!(back.seed, config.seed);
        assert_eq!(back.drain_timeout, config.drain_timeout);
        assert_eq!(back.istio, config.istio);
        // The token comes from the environment, never from the arguments.
        let from_env = std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .map(|token| token.trim().to_string());
        assert_eq!(back.admin_token, from_env);
        assert_eq!(
            Config {
                admin_token: back.admin_token.clone(),
                ..config
            },
            back
        );
    }

    #[test]
    fn istio_is_off_by_default_and_bad_values_name_the_flag() {
        let args = Args::try_parse_from(["goldengoose"]).expect("no flags");
        assert_eq!(args.istio, None);
        assert!(
            Config::default()
                .to_args()
                .iter()
                .all(|a| !a.starts_with("--istio"))
        );
        let err = Args::try_parse_from(["goldengoose", "--istio", "namespace=default"])
            .expect_err("no workload")
            .to_string();
        assert!(err.contains("--istio"), "{err}");
        assert!(err.contains("workload is missing"), "{err}");
    }

    #[test]
    fn listen_stdin_conflicts_with_an_explicit_listen() {
        let err =
            Args::try_parse_from(["goldengoose", "--listen-stdin", "--listen", "127.0.0.1:0"])
                .expect_err("both given");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let args = Args::try_parse_from(["goldengoose", "--listen-stdin"]).expect("alone");
        assert!(args.listen_stdin);
    }

    #[test]
    fn admin_token_file_is_read_and_trimmed() {
        let path = std::env::temp_dir().join(format!("gg-token-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").expect("temp file");
        let args = Args::try_parse_from([
            "goldengoose",
            "--admin-token-file",
            path.to_str().expect("utf-8 temp path"),
        ])
        .expect("valid args");
        let config = args.into_config().expect("readable token");
        std::fs::remove_file(&path).ok();
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
    }
}
