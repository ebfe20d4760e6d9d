//! The `canarylab` command line: argument parsing and glue between the
//! library crates. Everything here is exposed so tests drive the CLI
//! in-process: `run(Cli::parse_from([...]), &mut out)`.
//!
//! Cargo features: `local` (default) adds the real modes on loopback and
//! their servers (`local`, `calibrate`, `serve`, `goldengoose`: tokio,
//! hyper, goldengoose, loadgen, cluster); `kube` (default) adds the
//! Kubernetes mode (`cluster`). Without them the binary has the main job
//! (`sim`, `sweep`, `merge`, `report`, `test`) and `judge`, `judges`,
//! `query`, and builds in about half the time.

#![warn(missing_docs)]

#[cfg(feature = "local")]
pub mod calibrate_cmd;
#[cfg(feature = "kube")]
pub mod cluster_cmd;
pub mod judge_cmd;
pub mod judges_cmd;
#[cfg(feature = "local")]
pub mod local_cmd;
pub mod query_cmd;
#[cfg(feature = "local")]
pub mod serve_cmd;
pub mod study_cmd;
pub mod tune_cmd;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// How canarylab ends, for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (and, with `--exit-code`, the canary passed).
    Success = 0,
    /// With `--exit-code`: the canary failed.
    CanaryFailed = 1,
    /// Bad input or usage; nothing was judged.
    BadInput = 2,
    /// With `--exit-code`: the canary was marginal.
    CanaryMarginal = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Test how good a canary release configuration is.
///
/// canarylab judges canary metrics exactly as Kayenta's NetflixACAJudge-v1.0
/// does, and simulates thousands of whole canary releases per second to
/// measure how often a canary config catches known regressions, how often
/// it fails harmless releases, and how long and how many user requests a
/// decision costs.
#[derive(Debug, Parser)]
#[command(name = "canarylab", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge one canary analysis window: a Kayenta canary config and a
    /// MetricSetPairList in, Kayenta's CanaryJudgeResult out.
    Judge(judge_cmd::JudgeArgs),
    /// List the judges (`--judge NAME`, or the config's `judge.name`),
    /// one line each.
    Judges(judges_cmd::JudgesArgs),
    /// Simulate seeded canary releases of scenarios (known regressions and
    /// A/A releases) and report how often the canary config caught them.
    Sim(study_cmd::SimArgs),
    /// Rerun a study over a grid of judge or pipeline parameters: ROC and
    /// power curves.
    Sweep(study_cmd::SweepArgs),
    /// Search candidate configs (judge, thresholds, interval, allowed
    /// increase) for the highest detection whose false alarms stay below
    /// a target; check the pick on fresh seeds.
    Tune(tune_cmd::TuneArgs),
    /// Merge the shard files of `canarylab sim --shard I/N` into the
    /// results and report of the whole study.
    Merge(study_cmd::MergeArgs),
    /// Re-render the report of a saved results.json.
    Report(study_cmd::ReportArgs),
    /// Regression tests for a canary config: run the study and check each
    /// scenario's expectation; JUnit XML for CI.
    Test(study_cmd::TestArgs),
    /// Run one scenario's release for real on loopback: goldengoose
    /// servers, weighted traffic, a real Prometheus, the same judge.
    #[cfg(feature = "local")]
    Local(local_cmd::LocalArgs),
    /// A canary release on a real Kubernetes cluster with Istio and
    /// Prometheus: render the manifests, run a release, clean up.
    #[cfg(feature = "kube")]
    Cluster(cluster_cmd::ClusterArgs),
    /// Fit a scenario's `[service]` to a service's own metrics in its
    /// Prometheus: traffic, latency, errors, CPU, memory, pod-to-pod
    /// variation and noise, each with its uncertainty.
    #[cfg(feature = "local")]
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Run goldengoose, the web server under test with injectable faults
    /// (the same as the goldengoose binary; `canarylab local` runs its
    /// instances this way).
    #[cfg(feature = "local")]
    Goldengoose(goldengoose::Args),
    /// Serve the judge over HTTP: Kayenta's remote judge (`POST /judge`),
    /// and `POST /analyze` for Argo Rollouts' web provider and Flagger's
    /// webhooks, judged from a Prometheus.
    #[cfg(feature = "local")]
    Serve(serve_cmd::ServeArgs),
    /// Answer a PromQL query on an OpenMetrics file with timestamps, as
    /// Prometheus's HTTP API would (instant or range).
    Query(query_cmd::QueryArgs),
}

/// Run a parsed command line, writing results to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Judge(args) => judge_cmd::run(&args, out),
        Command::Judges(args) => judges_cmd::run(&args, out),
        Command::Sim(args) => study_cmd::run_sim(&args, out),
        Command::Sweep(args) => study_cmd::run_sweep(&args, out),
        Command::Merge(args) => study_cmd::run_merge(&args, out),
        Command::Tune(args) => tune_cmd::run(&args, out),
        Command::Report(args) => study_cmd::run_report(&args, out),
        Command::Test(args) => study_cmd::run_test(&args, out),
        #[cfg(feature = "local")]
        Command::Local(args) => local_cmd::run(&args, out),
        #[cfg(feature = "kube")]
        Command::Cluster(args) => cluster_cmd::run(&args, out),
        #[cfg(feature = "local")]
        Command::Calibrate(args) => calibrate_cmd::run(&args, out),
        #[cfg(feature = "local")]
        Command::Serve(args) => serve_cmd::run(&args, out),
        Command::Query(args) => query_cmd::run(&args, out),
        // It owns the process (runtime, signals, exit status): main runs it.
        #[cfg(feature = "local")]
        Command::Goldengoose(_) => {
            anyhow::bail!("goldengoose runs as a process of its own: `canarylab goldengoose ...`")
        }
    }
}
