//! `canarylab local`: one canary release for real on loopback, with real
//! goldengoose servers, real traffic and a real Prometheus.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use cluster::{ReleaseOptions, run_release};
use scenarios::Scenario;

use crate::Exit;

/// Arguments of `canarylab local`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab local scenarios/catalog/latency-25pct.toml            # about a minute
  canarylab local scenarios/catalog/aa-typical.toml --time-scale 0.05 --out run1

Needs Prometheus (Debian: apt-get install prometheus), found on PATH, by
--prometheus, or by $CANARYLAB_PROMETHEUS. Everything listens on 127.0.0.1.
Ctrl-C moves traffic back to production and stops every process it started.
Not there yet: several replicas per track, replacing production on promotion,
and the simulator's results.json (this writes the judged intervals instead).")]
pub struct LocalArgs {
    /// The scenario to release.
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
    /// Judge with this Kayenta canary config instead of the scenario's.
    #[arg(long, value_name = "CONFIG.json")]
    pub config: Option<PathBuf>,
    /// Multiply every duration of the scenario (scrape step, warmup,
    /// intervals) by this: 0.02 runs a 35-minute release in about 45 s.
    #[arg(long, default_value_t = 0.02)]
    pub time_scale: f64,
    /// The prometheus binary.
    #[arg(long, value_name = "PATH")]
    pub prometheus: Option<PathBuf>,
    /// Seed for the servers' faults and the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the judged intervals (metric set pairs and judge results) here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `canarylab local`.
pub fn run(args: &LocalArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    if !(args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale {}: must be in (0, 1]", args.time_scale);
    }
    let scenario = Scenario::load(&args.scenario, args.config.as_deref())?;
    let options = ReleaseOptions {
        time_scale: args.time_scale,
        prometheus: args.prometheus.clone(),
        temp_root: None,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let outcome = runtime.block_on(async {
        let flag = cancel.clone();
        // Ctrl-C asks the release to stop; it cleans up before returning.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: moving traffic back to production and stopping everything"
                );
                flag.store(true, Ordering::SeqCst);
            }
        });
        run_release(&scenario, &options, cancel.clone()).await
    });
    let outcome = outcome.with_context(|| format!("local release of {}", scenario.name))?;
    for i in &outcome.analysis.intervals {
        let r = &i.result;
        let failed: Vec<String> = r
            .results
            .iter()
            .filter(|m| m.classification != judge::Classification::Pass)
            .map(|m| format!("{} {}", m.name, m.classification))
            .collect();
        writeln!(
            out,
            "interval {}: score {:.2} {}{}",
            i.window.index,
            r.score.score,
            r.score.classification,
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        )?;
    }
    writeln!(
        out,
        "decision: {:?}: {}",
        outcome.decision, outcome.analysis.outcome.reason
    )?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let intervals: Vec<serde_json::Value> = outcome
            .analysis
            .intervals
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
        std::fs::write(&path, serde_json::to_string_pretty(&intervals)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(out, "judged intervals: {}", path.display())?;
    }
    Ok(Exit::Success)
}
