//! `canarylab serve`: the judge as an HTTP service (`cluster::serve`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cluster::PromApi;
use cluster::serve::{Interval, Options, read_token};

use crate::Exit;

/// Arguments of `canarylab serve`.
#[derive(Debug, Args)]
#[command(after_help = "\
Endpoints:
  POST /judge     Kayenta's remote judge: RemoteJudgeRequest in, CanaryJudgeResult out
                  (Kayenta: kayenta.remote-judge.enabled=true,
                   kayenta.remote-judge.endpoint.baseUrl=http://THIS:PORT)
  POST /analyze   config + control/experiment scopes in; queries --prometheus, judges;
                  top-level \"verdict\" for Argo's web provider; ?fail-status=true
                  answers 422 on Fail (Flagger webhooks)
  GET  /judges    the judges served and the default
  GET  /healthz, /readyz, /metrics

The first line on stdout is the bound address. SIGTERM or Ctrl-C stops
accepting and drains in-flight requests.

Examples:
  canarylab serve --listen 127.0.0.1:0
  canarylab serve --listen 0.0.0.0:8080 --prometheus http://prometheus:9090 --config-dir /etc/canarylab/configs
  curl -s -XPOST localhost:8080/judge -d @remote-judge-request.json")]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The Prometheus `/analyze` queries (http://HOST:PORT[/PREFIX]); the
    /// only one it ever queries. Without it `/analyze` answers 501.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Canary configs `/analyze` finds by name: DIR/NAME.json.
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on /judge, /analyze and
    /// /judges, TOKEN read from this file (Kayenta's remote judge sends no
    /// token: leave it off there and restrict the network instead).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The judge for configs that name `RemoteJudge-v1.0`.
    #[arg(long, default_value = judge::config::NETFLIX_ACA_JUDGE, value_name = "NAME")]
    pub default_judge: String,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 32 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Time to receive a request's headers, then its body (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Time for one /analyze's Prometheus queries.
    #[arg(long, default_value = "20s", value_parser = duration, value_name = "DURATION")]
    pub prometheus_timeout: Duration,
    /// /judge and /analyze requests served at once; more get 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_concurrent: usize,
    /// How long SIGTERM waits for in-flight requests.
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub drain_timeout: Duration,
    /// POST /judge answers each metric's `resultMetadata` as Kayenta's own
    /// judge does (`ratio` only), without canarylab's `mannWhitney`
    /// interval; most labels are then decided without solving for the
    /// interval (same labels, reasons, ratios and scores), a faster answer.
    #[arg(long)]
    pub without_interval: bool,
    /// Threads serving requests, each with a single-threaded runtime and
    /// a listening socket of its own on the same port (SO_REUSEPORT: the
    /// kernel spreads connections over the threads; a connection stays on
    /// its thread). Default: one per core.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

fn duration(text: &str) -> Result<Duration, String> {
    cluster::ranges::parse_duration_ms(text)
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .ok_or_else(|| format!("{text:?} is not a duration such as 500ms, 30s or 1m"))
}

/// The server's options from the command line.
pub fn options(args: &ServeArgs) -> anyhow::Result<Options> {
    let prometheus = args
        .prometheus
        .as_deref()
        .map(|url| PromApi::from_url(url).with_context(|| format!("--prometheus {url}")))
        .transpose()?;
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    let options = Options {
        default_judge: args.default_judge.clone(),
        prometheus,
        config_dir: args.config_dir.clone(),
        token,
        max_body_bytes: args.max_body_bytes,
        request_timeout: args.request_timeout,
        prometheus_timeout: args.prometheus_timeout,
        max_concurrent: args.max_concurrent,
        drain_timeout: args.drain_timeout,
        judge_interval: if args.without_interval {
            Interval::Omitted
        } else {
            Interval::Reported
        },
    };
    options.check()?;
    Ok(options)
}

/// Run `canarylab serve` until SIGTERM or Ctrl-C.
pub fn run(args: &ServeArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let options = options(args)?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let listeners = cluster::serve::Listeners::bind(args.listen, threads)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    writeln!(out, "{}", listeners.local_addr())?;
    out.flush()?;
    let stopped =
        cluster::serve::run_per_thread(listeners, options, goldengoose::cli::termination_signal())?;
    if !stopped.drained {
        eprintln!("serve: stopped with requests still in flight (--drain-timeout)");
    }
    Ok(Exit::Success)
}
