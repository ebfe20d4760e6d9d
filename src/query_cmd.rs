//! `canarylab query`: PromQL on an OpenMetrics file, answered as
//! Prometheus's HTTP API would answer it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use crate::Exit;

/// Arguments of `canarylab query`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab query --data series.om 'sum(rate(http_requests_total[5m]))' --time 1700000600
  canarylab query --data series.om 'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket[1m])))' \\
      --start 1700000000 --end 1700003600 --step 30s

FILE is OpenMetrics text with timestamps in seconds, what
`promtool tsdb create-blocks-from openmetrics` reads. The output is the JSON
body of Prometheus's /api/v1/query (with --time) or /api/v1/query_range (with
--start/--end/--step). Exit status: 0 answered; 2 on bad input or a query
Prometheus would refuse (the error is on stderr).")]
pub struct QueryArgs {
    /// OpenMetrics text file with timestamps (seconds).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The PromQL expression.
    #[arg(value_name = "PROMQL")]
    pub query: String,
    /// Evaluation time of an instant query, Unix seconds.
    #[arg(long, value_name = "T", conflicts_with_all = ["start", "end"])]
    pub time: Option<String>,
    /// Start of a range query, Unix seconds.
    #[arg(long, value_name = "S", requires = "end")]
    pub start: Option<String>,
    /// End of a range query, Unix seconds.
    #[arg(long, value_name = "E", requires = "start")]
    pub end: Option<String>,
    /// Step of a range query: seconds or a duration (30s, 1m).
    #[arg(long, value_name = "STEP", default_value = "60s")]
    pub step: String,
    /// Print load and query times to stderr.
    #[arg(long)]
    pub timing: bool,
    /// Run the query this many times (for timing; the answer is printed once).
    #[arg(long, default_value_t = 1, hide = true)]
    pub repeat: u32,
}

fn time_arg(name: &str, s: &str) -> anyhow::Result<i64> {
    prom::parse_time_ms(s).with_context(|| format!("--{name} {s:?} is not a time in Unix seconds"))
}

/// Runs `canarylab query`.
pub fn run(args: &QueryArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let t0 = Instant::now();
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("cannot read {}", args.data.display()))?;
    let store = prom::openmetrics::parse(&text, &args.data.display().to_string())?;
    drop(text);
    let loaded = t0.elapsed();
    let query = prom::Query::parse(&args.query)?;
    let engine = prom::Engine::new(&store);
    let t1 = Instant::now();
    let body = match (&args.time, &args.start, &args.end) {
        (Some(t), None, None) => {
            let t = time_arg("time", t)?;
            let mut body = String::new();
            for _ in 0..args.repeat.max(1) {
                body = prom::json::instant(&engine.instant(&query, t)?, t);
            }
            body
        }
        (None, Some(s), Some(e)) => {
            let (s, e) = (time_arg("start", s)?, time_arg("end", e)?);
            let step = prom::parse_duration_ms(&args.step)
                .filter(|&st| st > 0)
                .with_context(|| format!("--step {:?} is not a positive duration", args.step))?;
            let mut body = String::new();
            for _ in 0..args.repeat.max(1) {
                body = prom::json::range(&engine.range(&query, s, e, step)?);
            }
            body
        }
        _ => bail!(
            "give --time T for an instant query, or --start S --end E [--step D] for a range query"
        ),
    };
    let queried = t1.elapsed();
    writeln!(out, "{body}")?;
    if args.timing {
        eprintln!(
            "loaded {} series, {} samples from {} in {:.3} s; query {:.6} s per run ({} runs)",
            store.len(),
            store.samples(),
            args.data.display(),
            loaded.as_secs_f64(),
            queried.as_secs_f64() / f64::from(args.repeat.max(1)),
            args.repeat.max(1)
        );
    }
    Ok(Exit::Success)
}
