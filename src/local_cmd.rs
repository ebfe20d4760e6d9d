//! `canarylab local`: one canary release for real on loopback, with real
//! goldengoose servers, real traffic and a real Prometheus.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cluster::results::{self, ReleaseEnd};
use cluster::{GooseCommand, ReleaseOptions, run_release};
use scenarios::Scenario;

use crate::Exit;

/// Arguments of `canarylab local`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab local scenarios/catalog/latency-25pct.toml            # about a minute
  canarylab local scenarios/catalog/aa-typical.toml --time-scale 0.05 --out run1
  canarylab report run1/results.json
  canarylab local scenarios/catalog/aa-typical.toml \
      --analysis scenarios/catalog/analyses/flagger-canary.yaml

Needs Prometheus (Debian: apt-get install prometheus), found on PATH, by
--prometheus, or by $CANARYLAB_PROMETHEUS. Everything listens on 127.0.0.1.
Every goldengoose instance is a process of its own (`canarylab goldengoose`,
or --goldengoose PATH), restarted like a kubelet restarts a crashed pod.
Writes DIR/results.json in the simulator's format (times in scenario seconds,
request counts as really sent), DIR/report.html, DIR/report.md, DIR/charts/
DIR/intervals.json (every judged interval: pairs, queries, judge results)
and DIR/load.json (loadgen's report: per instance, per step).
A Prometheus query that fails for a reason a retry can cure (no connection,
HTTP 429 or 5xx) is retried up to --prometheus-retries times (default 6),
waiting 0.5 s, then doubling up to 5 s between tries (17.5 s in all by
default); only then does the step fail. Retries are counted in the output;
Ctrl-C ends a wait between retries at once.
Prometheus runs under a small sh supervisor that kills it and removes its
temporary directory if canarylab dies, even by SIGKILL; directories of
earlier runs whose process is gone are removed on start.
With --analysis FILE.yaml (an Argo Rollouts Rollout and its AnalysisTemplates,
or a Flagger Canary and its MetricTemplates) the peer's rules release the
canary: its weights step the traffic, its checks are instant or range queries
to the real Prometheus, printed as they are answered. goldengoose also exposes
the Istio sidecar's families (istio_requests_total, ..._milliseconds_bucket)
and Prometheus adds the pods' labels (app, namespace, pod,
rollouts_pod_template_hash), named as the simulator names them, so the
file's queries select the same tracks as in `canarylab sim --analysis`.
Range selectors in the config's PromQL ([1m]) are scaled by --time-scale
unless --exact-ranges is given. Ctrl-C moves traffic back to production and
stops every process it started; during a promotion it undoes the promotion.
Exit status: 0 promoted, 1 rolled back (with --exit-code), 2 bad input or
an error (the report names the step that failed).")]
pub struct LocalArgs {
    /// The scenario to release.
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
    /// Judge with this Kayenta canary config instead of the scenario's.
    #[arg(long, value_name = "CONFIG.json")]
    pub config: Option<PathBuf>,
    /// Release by this analysis: an Argo Rollouts or Flagger file (YAML),
    /// or a Kayenta canary config (JSON, as --config).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub analysis: Option<PathBuf>,
    /// Judge override.
    #[command(flatten)]
    pub judge: crate::judges_cmd::JudgeOverride,
    /// Multiply every duration of the scenario (scrape step, warmup,
    /// intervals, rate windows) by this: 0.02 runs a 35-minute release in
    /// about 45 s.
    #[arg(long, default_value_t = 0.02)]
    pub time_scale: f64,
    /// Multiply the scenario's request rate by this (and divide its CPU
    /// per request by it, so the cpu metric stays the scenario's). The
    /// default keeps the scenario's rate, so a scaled rate window holds
    /// --time-scale times the scenario's requests and the points are
    /// noisier than the simulator's; 1/--time-scale (50 at 0.02) gives
    /// each window the scenario's number of requests, as the simulator
    /// models it, if the machine can serve that rate.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub rate_scale: f64,
    /// Send the config's range selectors (`[1m]`) unscaled, exactly as
    /// Kayenta would (at small time scales they then span most of the run).
    #[arg(long)]
    pub exact_ranges: bool,
    /// The prometheus binary.
    #[arg(long, value_name = "PATH")]
    pub prometheus: Option<PathBuf>,
    /// Retries of a failed Prometheus query (no connection, HTTP 429 or
    /// 5xx) before the step fails: 0.5 s before the first, doubling up to
    /// 5 s.
    #[arg(long, default_value_t = cluster::prom::Retry::DEFAULT.retries, value_name = "N")]
    pub prometheus_retries: u32,
    /// Run the servers with this goldengoose binary instead of this
    /// program's own `canarylab goldengoose`.
    #[arg(long, value_name = "PATH")]
    pub goldengoose: Option<PathBuf>,
    /// Seed for the servers' faults and the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write results.json, the report and intervals.json here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit with status 1 when the canary is rolled back.
    #[arg(long)]
    pub exit_code: bool,
}

/// `canarylab local`.
pub fn run(args: &LocalArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    if !(args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale {}: must be in (0, 1]", args.time_scale);
    }
    let mut config = args.config.clone();
    let mut peer = None;
    let mut analysis_name = None;
    if let Some(path) = &args.analysis {
        let file = sim::analysis::read(path)?;
        for note in &file.notes {
            eprintln!("note: {note}");
        }
        analysis_name = Some(file.name.clone());
        match file.kind {
            sim::analysis::FileKind::Kayenta => config = Some(path.clone()),
            sim::analysis::FileKind::Peer(_) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--analysis {}: cannot read", path.display()))?;
                let shown = path.display().to_string();
                peer = Some(
                    cluster::PeerAnalysis::from_yaml(&file.name, &shown, &text)
                        .with_context(|| format!("--analysis {shown}"))?,
                );
            }
        }
    }
    let mut scenario = Scenario::load(&args.scenario, config.as_deref())?;
    args.judge.apply(&mut scenario.config)?;
    let goldengoose = match &args.goldengoose {
        Some(path) => GooseCommand::new(path),
        None => GooseCommand::canarylab_subcommand()
            .context("cannot find this program's path to run `canarylab goldengoose`")?,
    };
    let mut options = ReleaseOptions::new(args.time_scale, goldengoose);
    options.prometheus = args.prometheus.clone();
    options.seed = args.seed;
    options.scale_ranges = !args.exact_ranges;
    options.rate_scale = args.rate_scale;
    options.prometheus_retry = cluster::prom::Retry::with_retries(args.prometheus_retries);
    options.peer = peer;
    // Time scaling keeps the request rate, so each rate window holds
    // `time_scale` times the scenario's requests: quantiles and ratios get
    // noisier by about 1/sqrt(time_scale) (see cluster/README.md).
    let f = &scenario.file;
    let per_window = f.service.request_rate * f.pipeline.traffic.canary / 100.0
        * f.analysis.rate_window_s
        * args.time_scale
        * args.rate_scale;
    let scenario_per_window = per_window / args.time_scale / args.rate_scale;
    if per_window < 200.0 && per_window < scenario_per_window && !args.exact_ranges {
        eprintln!(
            "note: at --time-scale {} the canary gets about {per_window:.0} requests per rate window \
             (the scenario: {scenario_per_window:.0}); its metrics are noisier than the simulator's \
             for this scenario (--rate-scale {} keeps the scenario's count)",
            args.time_scale,
            1.0 / args.time_scale
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let result = runtime.block_on(async {
        // Ctrl-C asks the release to stop; it cleans up before returning.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: moving traffic back to production and stopping everything"
                );
                cancel.send_replace(true);
            }
        });
        let mut steps = options.watch.subscribe();
        tokio::spawn(async move {
            let mut last = None;
            while steps.changed().await.is_ok() {
                let now = *steps.borrow_and_update();
                if now != last {
                    if let Some(step) = now {
                        eprintln!("local: {step}");
                    }
                    last = now;
                }
            }
        });
        run_release(&scenario, &options, cancelled).await
    });

    let intervals = match &result {
        Ok(o) => &o.analysis.intervals,
        Err(f) => &f.record.intervals,
    };
    for i in intervals {
        let failed = results::flagged(i);
        writeln!(
            out,
            "interval {}: score {:.2} {}{}",
            i.window.index,
            i.result.score.score,
            i.result.score.classification,
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        )?;
    }
    let (verdict, reason, record) = results::verdict(&result);
    for m in &record.measurements {
        writeln!(
            out,
            "measured {} at {:.0} s: {}",
            m.query,
            m.scenario_s,
            results::measurement_text(&m.value)
        )?;
    }
    writeln!(out, "{}: {reason}", verdict.as_str())?;
    if let Some(load) = &record.load {
        let canary: u64 = load
            .targets
            .iter()
            .filter(|t| t.name.starts_with("canary-"))
            .map(|t| t.requests)
            .sum();
        writeln!(
            out,
            "traffic: {} requests, {} to the canary (real counts at --time-scale {})",
            load.total.requests, canary, args.time_scale
        )?;
    }
    if record.prometheus_retries > 0 {
        writeln!(
            out,
            "prometheus: {} quer{} retried after a transient failure",
            record.prometheus_retries,
            if record.prometheus_retries == 1 {
                "y"
            } else {
                "ies"
            }
        )?;
    }
    for i in record.instances.iter().filter(|i| i.exits > 0) {
        writeln!(
            out,
            "{}: exited {} time{} and was restarted ({} processes)",
            i.name,
            i.exits,
            if i.exits == 1 { "" } else { "s" },
            i.pids.len()
        )?;
    }
    if let Some(dir) = &args.out {
        let mut study = results::study(&scenario, &result, args.seed);
        study.config = config.as_ref().map(|c| c.display().to_string());
        for s in &mut study.scenarios {
            s.analysis = analysis_name.clone();
        }
        for r in &mut study.example_runs {
            r.analysis = analysis_name.clone();
        }
        let written = reports::write_study(&study, dir)
            .with_context(|| format!("writing the report to {}", dir.display()))?;
        let judged: Vec<serde_json::Value> = intervals
            .iter()
            .map(|i| {
                serde_json::json!({
                    "index": i.window.index,
                    "start": i.start,
                    "end": i.end,
                    "result": i.result,
                    "pairs": i.pairs,
                })
            })
            .collect();
        let path = dir.join("intervals.json");
        std::fs::write(&path, serde_json::to_string_pretty(&judged)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(load) = &record.load {
            let path = dir.join("load.json");
            std::fs::write(&path, serde_json::to_string_pretty(load)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        writeln!(
            out,
            "results: {} (report: {}); judged intervals: {}",
            written.json.display(),
            written.html.display(),
            path.display()
        )?;
    }
    Ok(match verdict {
        ReleaseEnd::Promote => Exit::Success,
        // Paused (waiting for a person) is not a promotion: a gate fails it.
        ReleaseEnd::Rollback | ReleaseEnd::DeployFailed | ReleaseEnd::Paused if args.exit_code => {
            Exit::CanaryFailed
        }
        ReleaseEnd::Rollback | ReleaseEnd::DeployFailed | ReleaseEnd::Paused => Exit::Success,
        ReleaseEnd::Error | ReleaseEnd::BuildFailed => {
            // The report is written; the error itself goes to stderr.
            if let Err(f) = &result {
                eprintln!("error: local release of {}: {f}", scenario.name);
            }
            Exit::BadInput
        }
    })
}
