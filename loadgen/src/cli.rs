//! The command line: options (clap derive), turning them into a [`Plan`],
//! the live progress line, the human summary and the `--json` file. Lives in
//! the library so tests drive the CLI in-process; `main.rs` only builds the
//! runtime.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::plan::{Arrival, Endpoint, RateProfile, Target, Targets, WeightStep, parse_duration};
use crate::{Control, Error, Plan, Report};

/// Weighted-traffic, open-loop HTTP load generator that attributes every
/// request to its version.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a subcommand, loadgen runs a load with the options below.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A version and its URL, with an optional relative weight (default 1).
    /// Repeat for each version, e.g. `--target production=http://127.0.0.1:8080/@90`.
    #[arg(long = "target", value_name = "NAME=URL[@WEIGHT]")]
    pub targets: Vec<String>,

    /// Send everything to one gateway URL that splits the traffic itself; each
    /// response is attributed to the version named in --version-header.
    #[arg(long, value_name = "URL", conflicts_with = "targets")]
    pub gateway: Option<String>,

    /// Gateway mode: response header naming the version that answered.
    #[arg(long, value_name = "HEADER", default_value = "x-version")]
    pub version_header: String,

    /// A weight step, applied in order from the start; targets not named keep
    /// their weight; only the last step may omit DURATION (then it lasts to
    /// the end). E.g. `--step 2m:canary=5,production=95 --step canary=50,production=50`.
    #[arg(long = "step", value_name = "[DURATION:]NAME=WEIGHT,...")]
    pub steps: Vec<String>,

    /// Open loop at this many requests per second, or a piecewise-linear ramp
    /// `TIME=RATE,TIME=RATE,...` (e.g. `0s=100,30s=1000`). Without it,
    /// loadgen runs closed loop (max throughput) on --connections.
    #[arg(long, value_name = "RATE|TIME=RATE,...")]
    pub rate: Option<String>,

    /// Open loop with Poisson (exponential) inter-arrival times instead of even spacing.
    #[arg(long, requires = "rate")]
    pub poisson: bool,

    /// Connections (closed loop) or connection pool size (open loop).
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,

    /// Open loop: requests that may wait for a free connection before new
    /// ones are dropped (and counted as dropped).
    #[arg(long, default_value_t = 10_000)]
    pub backlog: usize,

    /// Stop after this long, e.g. `30s`, `10m`.
    #[arg(short = 'd', long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Stop after this many requests.
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// Per-request timeout, connecting included.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,

    /// Length of the reporting intervals in the JSON output.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub interval: String,

    /// Count a request as a late start when it starts this much after its intended time.
    #[arg(long, value_name = "DURATION", default_value = "10ms")]
    pub late_after: String,

    /// Seed of the weighted choice and of Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Threads running the connections, each with its own single-threaded
    /// runtime (the scheduler and reporting share the first).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress line and no summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Refuse targets that are not on loopback.
    #[arg(long)]
    pub loopback_only: bool,

    /// Serve the client-side view as Prometheus metrics on http://ADDR/metrics
    /// while the run goes (labelled by target), e.g. `127.0.0.1:9464`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

/// loadgen's subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Merge the --json reports of runs made side by side (e.g. the pods of
    /// one Job): counts and rates summed per target, percentiles from the
    /// merged histograms.
    Merge(crate::merge::MergeArgs),
}

fn duration_flag(flag: &'static str, value: &str) -> Result<Duration, Error> {
    parse_duration(value).map_err(|p| Error::invalid(flag, value, p))
}

impl Cli {
    /// Turns the options into a validated plan.
    pub fn plan(&self) -> Result<Plan, Error> {
        let targets = match (&self.gateway, self.targets.is_empty()) {
            (Some(_), false) => return Err(Error::TargetsAndGateway),
            (None, true) => return Err(Error::NoTargets),
            (Some(url), true) => Targets::Gateway {
                endpoint: Endpoint::parse(url).map_err(|p| Error::invalid("--gateway", url, p))?,
                header: self.version_header.clone(),
            },
            (None, false) => Targets::Weighted(
                self.targets
                    .iter()
                    .map(|t| Target::parse(t))
                    .collect::<Result<_, _>>()?,
            ),
        };
        let arrival = match &self.rate {
            None => Arrival::ClosedLoop,
            Some(r) => {
                let profile = RateProfile::parse(r)?;
                if let Some(&(_, bad)) = profile
                    .points()
                    .iter()
                    .find(|p| !(p.1.is_finite() && p.1 > 0.0))
                {
                    return Err(Error::invalid(
                        "--rate",
                        r,
                        format!("rate {bad} is not positive; omit --rate for closed loop"),
                    ));
                }
                if self.poisson {
                    Arrival::Poisson(profile)
                } else {
                    Arrival::Constant(profile)
                }
            }
        };
        let mut plan = Plan::new(targets, arrival);
        plan.schedule = self
            .steps
            .iter()
            .map(|s| WeightStep::parse(s))
            .collect::<Result<_, _>>()?;
        plan.duration = self
            .duration
            .as_deref()
            .map(|d| duration_flag("--duration", d))
            .transpose()?;
        plan.requests = self.requests;
        plan.connections = self.connections;
        plan.backlog = self.backlog;
        plan.timeout = duration_flag("--timeout", &self.timeout)?;
        plan.interval = duration_flag("--interval", &self.interval)?;
        plan.late_after = duration_flag("--late-after", &self.late_after)?;
        plan.seed = self.seed;
        plan.loopback_only = self.loopback_only;
        plan.threads = self.threads;
        plan.validate()?;
        Ok(plan)
    }
}

/// Runs the command line on the current tokio runtime: plan, live progress
/// on a terminal, the run, the summary to `out`, and `--json`.
pub async fn run_cli<W: Write>(cli: &Cli, control: Control, out: &mut W) -> Result<Report, Error> {
    let plan = cli.plan()?;
    let total = plan.duration;
    let progress = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let control = control.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let p = control.progress();
                let of = total
                    .map(|d| format!("/{}s", d.as_secs()))
                    .unwrap_or_default();
                eprint!(
                    "\r{:>4}s{of}  {} requests  {:.0}/s  {} errors  {} dropped  p99 {:.2} ms   ",
                    p.elapsed.as_secs(),
                    p.requests,
                    p.rate,
                    p.errors,
                    p.dropped,
                    p.p99_ms
                );
            }
        })
    });
    let metrics = match &cli.metrics_addr {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr.as_str())
                    .await
                    .map_err(|source| Error::Metrics {
                        addr: addr.clone(),
                        source,
                    })?;
            Some(tokio::spawn(serve_metrics(listener, control.clone())))
        }
        None => None,
    };
    let report = crate::run(plan, control).await;
    if let Some(m) = metrics {
        m.abort();
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let report = report?;
    if let Some(path) = &cli.json {
        let write = |path: &PathBuf| -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            serde_json::to_writer_pretty(&mut f, &report)?;
            writeln!(f)?;
            f.flush()
        };
        write(path).map_err(|source| Error::WriteJson {
            path: path.clone(),
            source,
        })?;
    }
    if !cli.quiet {
        write_summary(&report, out)?;
    }
    Ok(report)
}

/// Serves `GET /metrics` from the control's Prometheus text until aborted.
async fn serve_metrics(listener: tokio::net::TcpListener, control: Control) {
    use http_body_util::Full;
    use hyper::{Response, StatusCode};

    // Aborting this task drops the set, which aborts open scrape connections too.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let control = control.clone();
        conns.spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(bytes::Bytes::from(control.prometheus_text())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(bytes::Bytes::from_static(b"try /metrics\n")))
                    };
                    std::future::ready(resp)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
        // Reap finished scrapes so the set stays small over a long run.
        while conns.try_join_next().is_some() {}
    }
}

/// The human summary: one line per target, corrected latency in ms.
pub fn write_summary<W: Write>(r: &Report, out: &mut W) -> std::io::Result<()> {
    let rate = r
        .target_rate
        .map(|x| format!(" at {x}/s"))
        .unwrap_or_default();
    writeln!(
        out,
        "{}{rate}, {} connections: {} requests in {:.2} s = {:.1}/s, {} dropped, {} late starts",
        r.mode,
        r.connections,
        r.total.requests,
        r.duration_s,
        r.achieved_rate,
        r.total.dropped,
        r.total.late_starts
    )?;
    write_targets(r.targets.iter().chain(std::iter::once(&r.total)), out)?;
    writeln!(
        out,
        "latency in ms from the intended send time (coordinated-omission corrected)"
    )?;
    Ok(())
}

/// The summary's table: a header and one line per target.
pub(crate) fn write_targets<'a, W: Write>(
    targets: impl Iterator<Item = &'a crate::TargetReport>,
    out: &mut W,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<14} {:>9} {:>10} {:>8} {:>7} {:>7}  {:>21}  {:>8} {:>8} {:>8} {:>8} {:>8}",
        "target",
        "requests",
        "rate/s",
        "2xx",
        "4xx",
        "5xx",
        "errors conn/tmo/reset",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max"
    )?;
    for t in targets {
        let s = |k: &str| t.status.get(k).copied().unwrap_or(0);
        let errs = format!(
            "{}/{}/{}{}",
            t.errors.connect,
            t.errors.timeout,
            t.errors.reset,
            if t.errors.other > 0 {
                format!("+{}", t.errors.other)
            } else {
                String::new()
            }
        );
        let lat = |f: fn(&crate::Latency) -> f64| {
            t.latency_ms
                .as_ref()
                .map(|l| format!("{:.2}", f(l)))
                .unwrap_or_else(|| "-".into())
        };
        writeln!(
            out,
            "{:<14} {:>9} {:>10.1} {:>8} {:>7} {:>7}  {:>21}  {:>8} {:>8} {:>8} {:>8} {:>8}",
            t.name,
            t.requests,
            t.rate,
            s("2xx"),
            s("4xx"),
            s("5xx"),
            errs,
            lat(|l| l.p50),
            lat(|l| l.p90),
            lat(|l| l.p99),
            lat(|l| l.p99_9),
            lat(|l| l.max),
        )?;
    }
    Ok(())
}
