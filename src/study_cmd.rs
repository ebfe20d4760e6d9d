//! `canarylab sim`, `sweep`, `report`, `test` and `merge`: studies of
//! scenario files (whole, or one shard of many), and their reports.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use reports::model::{Expect, Study};
use scenarios::Scenario;
use sim::StudyOptions;

use crate::Exit;

/// Where the shipped catalog lives, for running without arguments.
const CATALOG: &str = "scenarios/catalog";

/// What every study command shares.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// Scenario files (*.toml) or directories of them [default:
    /// scenarios/catalog, the shipped known regressions and A/A releases].
    #[arg(value_name = "SCENARIO_OR_DIR")]
    pub scenarios: Vec<PathBuf>,
    /// Judge every scenario with this Kayenta canary config instead of
    /// each scenario's own `analysis.config`.
    #[arg(long, value_name = "CONFIG.json", conflicts_with = "analyses")]
    pub config: Option<PathBuf>,
    /// Release every scenario with this analysis, side by side with the
    /// other --analysis files (repeatable): a Kayenta canary config (JSON),
    /// an Argo Rollouts file (a Rollout and its AnalysisTemplates) or a
    /// Flagger file (a Canary and its MetricTemplates), read unchanged and
    /// told apart by content. Every analysis gets the same seeds; results
    /// get one entry per scenario and analysis, named by the file's stem.
    /// Files of one tool on the same traffic (Kayenta configs; Argo files
    /// on the same steps; Flagger files on the same stepping) generate each
    /// seed's series once, so comparing variants costs little more than
    /// one. An Argo or Flagger file's weights and pauses replace the scenario's
    /// `[pipeline]` traffic and timing; the scenario keeps its service,
    /// regression, build and deploy. A directory stands for its .json,
    /// .yaml and .yml files, in name order (the catalog's three:
    /// --analysis scenarios/catalog/analyses).
    #[arg(long = "analysis", value_name = "FILE_OR_DIR")]
    pub analyses: Vec<PathBuf>,
    /// Seeded releases simulated per scenario.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Study seed: the same seed gives byte-identical results, whatever
    /// the thread count.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Replace every scenario's `[service]` with this file's (e.g. one
    /// `canarylab calibrate` fitted to your service); regressions,
    /// pipelines and analyses stay the scenarios' own.
    #[arg(long, value_name = "SERVICE.toml")]
    pub service: Option<PathBuf>,
    /// Judge override for every scenario.
    #[command(flatten)]
    pub judge: crate::judges_cmd::JudgeOverride,
}

impl StudyArgs {
    fn load(&self) -> anyhow::Result<Vec<Scenario>> {
        self.load_with(self.config.as_deref())
    }

    /// The --analysis files, read; a Kayenta config's with the scenarios
    /// loaded with it (in `scenarios`' order). Notes on what the peers'
    /// files hold that is read and ignored go to `out`.
    fn analyses(
        &self,
        scenarios: &[Scenario],
        out: &mut dyn Write,
    ) -> anyhow::Result<Vec<sim::StudyAnalysis>> {
        let files = expand_analyses(&self.analyses)?
            .iter()
            .map(|p| sim::analysis::read(p))
            .collect::<Result<Vec<_>, _>>()?;
        sim::analysis::check_names(&files)?;
        let mut analyses = Vec::with_capacity(files.len());
        for file in files {
            for note in &file.notes {
                writeln!(out, "note: {note}")?;
            }
            let own = match file.kind {
                sim::analysis::FileKind::Kayenta => {
                    let loaded = self
                        .load_with(Some(&file.path))
                        .with_context(|| format!("--analysis {}", file.path.display()))?;
                    anyhow::ensure!(
                        loaded.len() == scenarios.len()
                            && loaded.iter().zip(scenarios).all(|(a, b)| a.name == b.name),
                        "--analysis {}: the scenarios changed while loading",
                        file.path.display()
                    );
                    loaded
                }
                sim::analysis::FileKind::Peer(_) => Vec::new(),
            };
            analyses.push(sim::StudyAnalysis {
                file,
                scenarios: own,
            });
        }
        Ok(analyses)
    }

    /// The study: side by side with --analysis, else each scenario's own.
    fn run(
        &self,
        scenarios: &[Scenario],
        examples: bool,
        out: &mut dyn Write,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> anyhow::Result<Study> {
        if self.analyses.is_empty() {
            let mut study = sim::run_study(scenarios, self.options(examples), progress)?;
            study.config = self.config.as_ref().map(|c| c.display().to_string());
            return Ok(study);
        }
        let analyses = self.analyses(scenarios, out)?;
        Ok(sim::run_study_side_by_side(
            scenarios,
            &analyses,
            self.options(examples),
            progress,
        )?)
    }

    fn load_with(&self, config: Option<&std::path::Path>) -> anyhow::Result<Vec<Scenario>> {
        let paths = if self.scenarios.is_empty() {
            if !std::path::Path::new(CATALOG).is_dir() {
                anyhow::bail!(
                    "no scenarios given, and the shipped catalog ({CATALOG}) is not below the current \
                     directory: run from the repository root, or name scenario files or directories"
                );
            }
            vec![PathBuf::from(CATALOG)]
        } else {
            self.scenarios.clone()
        };
        let mut loaded = scenarios::load_all(&paths, config)?;
        if let Some(path) = &self.service {
            let (service, step) = scenarios::load_service(path)?;
            for sc in &mut loaded {
                // AR(1) correlations are per scrape step: convert them
                sc.file.service = service.at_step(step, sc.file.analysis.scrape_step_s);
            }
        }
        for s in &mut loaded {
            self.judge
                .apply(&mut s.config)
                .with_context(|| format!("scenario {}", s.name))?;
        }
        Ok(loaded)
    }

    fn options(&self, examples: bool) -> StudyOptions {
        StudyOptions {
            runs: self.runs,
            seed: self.seed,
            threads: self.threads,
            examples,
        }
    }
}

/// Arguments of `canarylab sim`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab sim                                   # the shipped catalog, 1000 runs each
  canarylab sim scenarios/catalog --config my-kayenta-config.json --out review
  canarylab sim scenarios/catalog/latency-5pct.toml --runs 10000 --seed 7

Side by side: your Kayenta config, Argo Rollouts file and Flagger file, each
released in every scenario on the same seeds (one results entry per scenario
and analysis, named by the file's stem):
  canarylab sim scenarios/catalog \
    --analysis scenarios/catalog/analyses/kayenta.json \
    --analysis scenarios/catalog/analyses/argo-rollout.yaml \
    --analysis scenarios/catalog/analyses/flagger-canary.yaml
An Argo or Flagger file's steps (weights, pauses) replace the scenario's
[pipeline] traffic and analysis timing; the build, deploy, service and
regression stay the scenario's. Argo has no baseline (its queries compare
the canary with thresholds or the stable pods); Flagger's primary is
production. Their decision times count from the first traffic shift.
Variants of one file (other thresholds, conditions or queries on the same
steps) share each seed's series: two cost well under twice one.

Writes DIR/report.html (open it in a browser), DIR/report.md, DIR/results.json
(re-render with `canarylab report`) and DIR/charts/*.svg|png.

On many machines (e.g. a Kubernetes Indexed Job), each runs one shard and
`canarylab merge` puts them together into the same results as one machine:
  canarylab sim scenarios/catalog --runs 100000 --shard 0/4 --out shards   # ... 3/4
  canarylab merge shards --out review")]
pub struct SimArgs {
    /// The scenarios and how to run them (shared by sim, sweep and test).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Run only shard I of N: the runs r with r % N == I of each scenario,
    /// seeded as in the whole study; write DIR/shard-I-of-N.json for
    /// `canarylab merge` instead of a report.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<sim::shard::Shard>,
    /// Also write the raw series of each scenario's detail run (the
    /// report's example) as DIR/SCENARIO.om, OpenMetrics with timestamps,
    /// for `canarylab query --data DIR/SCENARIO.om`.
    #[arg(long, value_name = "DIR")]
    pub dump_series: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// Arguments of `canarylab merge`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  canarylab merge shards/ --out review        # shards/shard-0-of-4.json ... shard-3-of-4.json

Writes the same DIR/results.json and report as `canarylab sim` (or `sweep`)
without --shard (same scenarios, --runs, --seed, --config, --param and version)
would. Refuses missing or
duplicate shards and shards of different studies.")]
pub struct MergeArgs {
    /// Shard files written by `canarylab sim --shard I/N`, or directories
    /// of them (their shard-*.json files).
    #[arg(value_name = "SHARD_FILE_OR_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// Arguments of `canarylab sweep`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab sweep --param pass=50,60,70,75,80,90
  canarylab sweep scenarios/catalog --param canary_weight=1,5,10,25 --runs 300
  canarylab sweep --param interval_s=300,600,900 --param pass=60,75,90

Each value reruns the study; the report shows ROC and power curves. With
--analysis FILE, the main study is side by side (as `canarylab sim`); the
sweeps vary each scenario's own Kayenta pipeline. With
--shard I/N, as for `canarylab sim`: DIR/shard-I-of-N.json for `canarylab merge`.")]
pub struct SweepArgs {
    /// The scenarios and how to run them (shared by sim, sweep and test).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Run only shard I of N of the study's runs and of each setting's, and
    /// write DIR/shard-I-of-N.json for `canarylab merge` instead of a report.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<sim::shard::Shard>,
    /// NAME=V1,V2,...; repeatable. Parameters: pass, marginal, interval_s,
    /// lifetime_s, warmup_s, canary_weight, scrape_step_s, allowed_increase.
    #[arg(long = "param", value_name = "NAME=V1,V2,...", required = true)]
    pub params: Vec<String>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// Arguments of `canarylab report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results.json written by `canarylab sim`, `sweep` or `test`.
    #[arg(value_name = "RESULTS.json")]
    pub results: PathBuf,
    /// Output directory [default: the results file's directory].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `canarylab test`.
#[derive(Debug, Args)]
#[command(after_help = "\
Each scenario states what it expects: `expect = \"fail\"` with `min_detection = 0.9`,
or `expect = \"pass\"` with `max_false_alarm = 0.02`. Without a number, the majority
of runs must end as expected. Exit status: 0 when every expectation is met, 1 when
any is missed, 2 on bad input.

Example (in a team's CI):
  canarylab test canary-scenarios/ --config kayenta/checkout.json --junit junit.xml

With --analysis FILE (repeatable), every scenario's expectation is checked
for each analysis (Kayenta JSON, Argo Rollouts or Flagger YAML):
  canarylab test canary-scenarios/ --analysis rollout.yaml --junit junit.xml")]
pub struct TestArgs {
    /// The scenarios and how to run them (shared by sim, sweep and test).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the full report here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A progress line on a terminal, nothing otherwise.
struct Progress {
    label: &'static str,
    tty: bool,
    last: Mutex<usize>,
    started: Instant,
}

impl Progress {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            tty: std::io::stderr().is_terminal(),
            last: Mutex::new(0),
            started: Instant::now(),
        }
    }

    fn update(&self, done: usize, total: usize) {
        if !self.tty || total == 0 {
            return;
        }
        let pct = done * 100 / total;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pct > *last || done == total {
            *last = pct;
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\r{}: {done}/{total} runs ({pct}%), {rate:.0} runs/s   ",
                self.label
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

/// A result's name: the scenario's, and its analysis's in a side-by-side
/// study.
fn label(s: &reports::model::ScenarioResult) -> String {
    match &s.analysis {
        Some(a) => format!("{} [{a}]", s.name),
        None => s.name.clone(),
    }
}

fn summary(study: &Study, out: &mut dyn Write) -> anyhow::Result<()> {
    let width = study
        .scenarios
        .iter()
        .map(|s| label(s).len())
        .max()
        .unwrap_or(8)
        .max(8);
    writeln!(
        out,
        "{:<width$}  {:<6} {:>6}  {:<26} {:>10} {:>10}",
        "scenario", "expect", "runs", "rolled back (95% CI)", "decided p50", "blast p50"
    )?;
    for s in &study.scenarios {
        let r = s.rollback_rate;
        let what = match s.expect {
            Expect::Fail => "caught",
            Expect::Pass => "false alarm",
        };
        writeln!(
            out,
            "{:<width$}  {:<6} {:>6}  {:<26} {:>10} {:>10}",
            label(s),
            match s.expect {
                Expect::Fail => "fail",
                Expect::Pass => "pass",
            },
            s.runs,
            format!(
                "{:5.1}% [{:.1}, {:.1}] {what}",
                100.0 * r.rate,
                100.0 * r.lower,
                100.0 * r.upper
            ),
            format!("{:.0} s", s.decision_time_s.p50),
            format!("{:.0}", s.blast_radius.p50),
        )?;
    }
    Ok(())
}

fn write_report(study: &Study, dir: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let written = reports::write_study(study, dir)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    writeln!(out, "\nreport: {}", written.html.display())?;
    Ok(())
}

/// `canarylab sim`.
pub fn run_sim(args: &SimArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let scenarios = args.study.load()?;
    if let Some(shard) = args.shard {
        no_shard_analyses(&args.study)?;
        return run_shard(&args.study, &[], shard, &scenarios, &args.out, out);
    }
    let progress = Progress::new("sim");
    let started = Instant::now();
    let study = args
        .study
        .run(&scenarios, true, out, &|d, t| progress.update(d, t))?;
    let elapsed = started.elapsed().as_secs_f64();
    summary(&study, out)?;
    let total = study.scenarios.len() as f64 * f64::from(args.study.runs);
    writeln!(
        out,
        "\n{total} runs in {elapsed:.1} s ({:.0} runs/s)",
        total / elapsed.max(1e-9)
    )?;
    write_report(&study, &args.out, out)?;
    if let Some(dir) = &args.dump_series {
        dump_series(&scenarios, args.study.seed, dir, out)?;
    }
    Ok(Exit::Success)
}

/// The --analysis paths with each directory replaced by its `.json`,
/// `.yaml` and `.yml` files, in name order.
fn expand_analyses(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("--analysis {}: cannot list the directory", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "yaml" | "yml")
                    )
            })
            .collect();
        found.sort();
        anyhow::ensure!(
            !found.is_empty(),
            "--analysis {}: the directory holds no .json, .yaml or .yml file",
            path.display()
        );
        files.extend(found);
    }
    Ok(files)
}

/// Shards of side-by-side studies are not written yet: refuse rather than
/// write a shard of another study.
fn no_shard_analyses(study: &StudyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        study.analyses.is_empty(),
        "--shard with --analysis is not supported yet: run the side-by-side study on one machine"
    );
    Ok(())
}

/// `canarylab sim --dump-series DIR`: each detail run's raw series.
fn dump_series(
    scenarios: &[scenarios::Scenario],
    seed: u64,
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, run_seed, store) in sim::prometheus::example_series(scenarios, seed)? {
        let path = dir.join(format!("{name}.om"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        let mut file = std::io::BufWriter::new(file);
        prom::openmetrics::write_to(&store, &mut file)
            .and_then(|()| file.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(
            out,
            "series: {} (run seed {run_seed}, {} series, {} samples)",
            path.display(),
            store.len(),
            store.samples()
        )?;
    }
    Ok(())
}

/// `canarylab sim --shard I/N` (and `sweep --shard I/N` with `params`).
fn run_shard(
    study: &StudyArgs,
    params: &[String],
    shard: sim::shard::Shard,
    scenarios: &[Scenario],
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let progress = Progress::new("sim");
    let started = Instant::now();
    let config = study.config.as_ref().map(|c| c.display().to_string());
    let update = |d, t| progress.update(d, t);
    let file = if params.is_empty() {
        sim::shard::run_shard(scenarios, study.options(true), shard, config, &update)?
    } else {
        sim::shard::run_sweep_shard(
            scenarios,
            study.options(true),
            shard,
            config,
            params,
            &update,
        )?
    };
    let elapsed = started.elapsed().as_secs_f64();
    let per_scenario = shard.len(study.runs);
    let total = per_scenario as usize * scenarios.len();
    let path = sim::shard::write(&file, dir)?;
    let settings: usize = file.sweeps.iter().map(|s| s.points.len()).sum();
    let sweep = if settings > 0 {
        format!(", for the study and each of {settings} sweep settings,")
    } else {
        String::new()
    };
    writeln!(
        out,
        "shard {shard}: {per_scenario} of {} runs of each of {} scenarios ({total} runs){sweep} in {elapsed:.1} s",
        study.runs,
        scenarios.len(),
    )?;
    writeln!(out, "shard file: {}", path.display())?;
    Ok(Exit::Success)
}

fn print_sweep(sweep: &reports::model::Sweep, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "sweep over {}:", sweep.parameter)?;
    writeln!(
        out,
        "  {:<24} {:>22} {:>22}",
        "value", "false alarms", "detection"
    )?;
    for p in &sweep.points {
        writeln!(
            out,
            "  {:<24} {:>8.1}% [{:4.1},{:5.1}] {:>8.1}% [{:4.1},{:5.1}]{}",
            p.label,
            100.0 * p.false_alarm.rate,
            100.0 * p.false_alarm.lower,
            100.0 * p.false_alarm.upper,
            100.0 * p.detection.rate,
            100.0 * p.detection.lower,
            100.0 * p.detection.upper,
            if p.chosen { "  <- current" } else { "" }
        )?;
    }
    Ok(())
}

/// `canarylab merge`.
pub fn run_merge(args: &MergeArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let shards = sim::shard::read_inputs(&args.shards)?;
    let n = shards.len();
    let study = sim::shard::merge(shards)?;
    summary(&study, out)?;
    for sweep in &study.sweeps {
        writeln!(out)?;
        print_sweep(sweep, out)?;
    }
    writeln!(
        out,
        "\nmerged {n} shards: {} runs of each of {} scenarios, seed {}",
        study.runs_per_scenario,
        study.scenarios.len(),
        study.seed
    )?;
    write_report(&study, &args.out, out)?;
    Ok(Exit::Success)
}

/// `canarylab sweep`.
pub fn run_sweep(args: &SweepArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let grids = args
        .params
        .iter()
        .map(|p| sim::sweep::parse_grid(p).with_context(|| format!("--param {p}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scenarios = args.study.load()?;
    if let Some(shard) = args.shard {
        no_shard_analyses(&args.study)?;
        return run_shard(&args.study, &args.params, shard, &scenarios, &args.out, out);
    }
    let progress = Progress::new("sim");
    let mut study = args
        .study
        .run(&scenarios, true, out, &|d, t| progress.update(d, t))?;
    for (name, values) in &grids {
        let progress = Progress::new("sweep");
        let sweep = sim::sweep::sweep(
            &scenarios,
            *name,
            values,
            args.study.options(false),
            &|d, t| progress.update(d, t),
        )?;
        print_sweep(&sweep, out)?;
        study.sweeps.push(sweep);
    }
    write_report(&study, &args.out, out)?;
    Ok(Exit::Success)
}

/// `canarylab report`.
pub fn run_report(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let study = reports::read_study(&args.results)?;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => args
            .results
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    summary(&study, out)?;
    write_report(&study, &dir, out)?;
    Ok(Exit::Success)
}

/// `canarylab test`.
pub fn run_test(args: &TestArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let scenarios = args.study.load()?;
    let progress = Progress::new("test");
    let study = args
        .study
        .run(&scenarios, args.out.is_some(), out, &|d, t| {
            progress.update(d, t)
        })?;
    let mut missed = 0;
    for s in &study.scenarios {
        let r = s.rollback_rate;
        let (ok, requirement) = match &s.expectation {
            Some(e) => (e.met, e.requirement.clone()),
            None => (true, "nothing".to_string()),
        };
        let measured = match s.expect {
            Expect::Fail => format!(
                "detection {:.1}% [{:.1}, {:.1}]",
                100.0 * r.rate,
                100.0 * r.lower,
                100.0 * r.upper
            ),
            Expect::Pass => format!(
                "false alarms {:.1}% [{:.1}, {:.1}]",
                100.0 * r.rate,
                100.0 * r.lower,
                100.0 * r.upper
            ),
        };
        if !ok {
            missed += 1;
        }
        writeln!(
            out,
            "{} {}: {measured}; required {requirement}",
            if ok { "PASS" } else { "FAIL" },
            label(s)
        )?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, reports::junit_xml(&study))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &args.out {
        write_report(&study, dir, out)?;
    }
    let n = study.scenarios.len();
    writeln!(out, "\n{} passed, {} failed", n - missed, missed)?;
    Ok(if missed > 0 {
        Exit::CanaryFailed
    } else {
        Exit::Success
    })
}
