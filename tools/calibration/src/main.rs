//! Sim-vs-real calibration: compares the runs of `canarylab local` with
//! those of `canarylab sim` on the same scenarios (issue 7, "Measured").
//!
//! ```sh
//! cargo run --release -p calibration -- \
//!     --real runs/real --sim runs/sim [--also "sim (no pod effects)=runs/sim0"] [--interval 1]
//! ```
//!
//! Every PATH is a `results.json`, a directory holding one, or a directory
//! whose subdirectories hold one each (a directory of runs). Both drivers
//! write the same `reports::model::Study`; runs are matched by scenario name.
//!
//! Per scenario it prints the verdicts of each source (promoted, rolled
//! back, ..., rollback rate with its Wilson 95% interval, summed over every
//! study given), then per judged interval and metric the statistics of the
//! points the judge saw in that interval's window, computed per example run
//! and then averaged over runs: control and canary mean and within-interval
//! sd (what the Mann-Whitney test sees), the canary/control mean ratio, the
//! lag-1 autocorrelation of the points (overlapping rate windows), the
//! control-canary correlation (noise both tracks share), missing points and
//! the share of runs in which the judge did not pass the metric. `±` is the
//! run-to-run sd of the per-run figure. The last rows per metric divide the
//! first source's figures by each other source's.
//!
//! Not for: running anything (cluster/calibration/run.sh does), or judging.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use reports::model::{Rate, RunDetail, Study, wilson};

/// Compare real (`canarylab local`) and simulated (`canarylab sim`) runs.
#[derive(Debug, Parser)]
#[command(name = "calibration")]
struct Args {
    /// Real runs: results.json files, run directories, or directories of them.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    real: Vec<PathBuf>,
    /// Simulated runs (the 1000-run study and the example runs).
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    sim: Vec<PathBuf>,
    /// A further source, LABEL=PATH (repeatable; the same label merges).
    #[arg(long, value_name = "LABEL=PATH")]
    also: Vec<String>,
    /// Only this interval (1-based) [default: every interval judged].
    #[arg(long, value_name = "N")]
    interval: Option<u32>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let mut sources = vec![
        Source::load("real", &args.real)?,
        Source::load("sim", &args.sim)?,
    ];
    for a in &args.also {
        let (label, path) = a
            .split_once('=')
            .ok_or_else(|| format!("--also {a:?}: expected LABEL=PATH"))?;
        let loaded = Source::load(label, &[PathBuf::from(path)])?;
        match sources.iter_mut().find(|s| s.label == label) {
            Some(s) => s.studies.extend(loaded.studies),
            None => sources.push(loaded),
        }
    }
    Ok(render(&sources, args.interval))
}

/// One kind of run (real, sim, ...): every study read for it.
#[derive(Debug, Clone)]
struct Source {
    label: String,
    studies: Vec<Study>,
}

impl Source {
    fn load(label: &str, paths: &[PathBuf]) -> Result<Self, String> {
        let mut studies = Vec::new();
        for p in paths {
            for file in results_files(p)? {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                let study: Study = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not a results.json: {e}", file.display()))?;
                studies.push(study);
            }
        }
        if studies.is_empty() {
            return Err(format!("{label}: no results.json under {paths:?}"));
        }
        Ok(Self {
            label: label.into(),
            studies,
        })
    }

    /// Example runs of a scenario, over every study.
    fn runs<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a RunDetail> + 'a {
        self.studies
            .iter()
            .flat_map(|s| &s.example_runs)
            .filter(move |r| r.scenario == scenario)
    }
}

/// `p` itself, `p/results.json`, or `p/*/results.json` (sorted).
fn results_files(p: &Path) -> Result<Vec<PathBuf>, String> {
    if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    }
    let direct = p.join("results.json");
    if direct.is_file() {
        return Ok(vec![direct]);
    }
    let entries = std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("results.json"))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: no results.json in it or in its subdirectories",
            p.display()
        ));
    }
    Ok(files)
}

/// How a source's runs of one scenario ended, summed over its studies.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct VerdictCounts {
    runs: u32,
    promoted: u32,
    rolled_back: u32,
    deploy_failed: u32,
    build_failed: u32,
}

impl VerdictCounts {
    fn of(source: &Source, scenario: &str) -> Self {
        let mut c = Self::default();
        for r in source
            .studies
            .iter()
            .flat_map(|s| &s.scenarios)
            .filter(|r| r.name == scenario)
        {
            c.runs += r.runs;
            c.promoted += r.verdicts.promoted;
            c.rolled_back += r.verdicts.rolled_back;
            c.deploy_failed += r.verdicts.deploy_failed;
            c.build_failed += r.verdicts.build_failed;
        }
        c
    }

    /// Runs that ended without a verdict (a real run's error).
    fn errors(&self) -> u32 {
        self.runs.saturating_sub(
            self.promoted + self.rolled_back + self.deploy_failed + self.build_failed,
        )
    }

    /// Rolled back (by the analysis or a failed deploy) over the runs that
    /// reached deployment: the simulator's `rollback_rate`.
    fn rollback_rate(&self) -> Rate {
        let deployed = self.promoted + self.rolled_back + self.deploy_failed;
        wilson(self.rolled_back + self.deploy_failed, deployed)
    }
}

/// Mean and sample sd of the finite values (NaN when there are none; sd
/// NaN for fewer than two).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Lag-1 autocorrelation over consecutive points that are both present.
fn lag1(points: &[Option<f64>]) -> f64 {
    let present: Vec<f64> = points.iter().flatten().copied().collect();
    let (mean, _) = mean_sd(&present);
    let var: f64 = present.iter().map(|x| (x - mean).powi(2)).sum();
    if var <= 0.0 || present.len() < 3 {
        return f64::NAN;
    }
    let cov: f64 = points
        .windows(2)
        .filter_map(|w| Some((w[0]? - mean) * (w[1]? - mean)))
        .sum();
    cov / var
}

/// Pearson correlation over the points where both are present.
fn correlation(a: &[Option<f64>], b: &[Option<f64>]) -> f64 {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    if pairs.len() < 3 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

/// One run's figures for one metric in one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunStats {
    points: usize,
    control_mean: f64,
    control_sd: f64,
    canary_mean: f64,
    canary_sd: f64,
    ratio: f64,
    control_lag1: f64,
    canary_lag1: f64,
    correlation: f64,
    control_missing: f64,
    canary_missing: f64,
    /// The judge's classification was not Pass (None: not recorded).
    flagged: Option<bool>,
}

/// The points of a run's series for `metric` within interval `index`'s
/// window, and the judge's verdict on it. A point at time t belongs when
/// start - step/2 <= t < end + step/2: both window bounds are query points
/// (Kayenta's query_range includes both), and the real mode's point times
/// are a few ms off the grid.
fn run_stats(run: &RunDetail, index: u32, metric: &str) -> Option<RunStats> {
    let interval = run.intervals.iter().find(|i| i.index == index)?;
    let series = run.series.iter().find(|s| s.name == metric)?;
    let t = &series.times_s;
    let step = {
        let mut d: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        d.sort_by(f64::total_cmp);
        d.get(d.len() / 2).copied().unwrap_or(0.0)
    };
    let (lo, hi) = (interval.start_s - step / 2.0, interval.end_s + step / 2.0);
    let keep: Vec<usize> = (0..t.len()).filter(|&k| t[k] >= lo && t[k] < hi).collect();
    if keep.is_empty() {
        return None;
    }
    let pick = |v: &[Option<f64>]| -> Vec<Option<f64>> {
        keep.iter()
            .map(|&k| v.get(k).copied().flatten().filter(|x| x.is_finite()))
            .collect()
    };
    let control = pick(&series.control);
    let canary = pick(&series.experiment);
    let present = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<f64>>();
    let missing =
        |v: &[Option<f64>]| v.iter().filter(|x| x.is_none()).count() as f64 / v.len() as f64;
    let (control_mean, control_sd) = mean_sd(&present(&control));
    let (canary_mean, canary_sd) = mean_sd(&present(&canary));
    let ratio = if control_mean != 0.0 {
        canary_mean / control_mean
    } else {
        f64::NAN
    };
    let flagged = interval
        .metrics
        .iter()
        .find(|m| m.name == metric)
        .map(|m| !m.passed());
    Some(RunStats {
        points: keep.len(),
        control_mean,
        control_sd,
        canary_mean,
        canary_sd,
        ratio,
        control_lag1: lag1(&control),
        canary_lag1: lag1(&canary),
        correlation: correlation(&control, &canary),
        control_missing: missing(&control),
        canary_missing: missing(&canary),
        flagged,
    })
}

/// A figure over runs: the mean of the per-run values and their sd.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OverRuns {
    mean: f64,
    sd: f64,
}

fn over_runs(stats: &[RunStats], f: impl Fn(&RunStats) -> f64) -> OverRuns {
    let (mean, sd) = mean_sd(&stats.iter().map(f).collect::<Vec<_>>());
    OverRuns { mean, sd }
}

/// One source's figures for one metric in one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    runs: usize,
    points: OverRuns,
    control_mean: OverRuns,
    control_sd: OverRuns,
    canary_mean: OverRuns,
    canary_sd: OverRuns,
    ratio: OverRuns,
    control_lag1: OverRuns,
    canary_lag1: OverRuns,
    correlation: OverRuns,
    control_missing: f64,
    canary_missing: f64,
    /// Runs in which the judge did not pass the metric, of those recorded.
    flagged: (u32, u32),
}

fn summarize(stats: &[RunStats]) -> Option<Summary> {
    if stats.is_empty() {
        return None;
    }
    let flagged = stats.iter().filter_map(|s| s.flagged);
    Some(Summary {
        runs: stats.len(),
        points: over_runs(stats, |s| s.points as f64),
        control_mean: over_runs(stats, |s| s.control_mean),
        control_sd: over_runs(stats, |s| s.control_sd),
        canary_mean: over_runs(stats, |s| s.canary_mean),
        canary_sd: over_runs(stats, |s| s.canary_sd),
        ratio: over_runs(stats, |s| s.ratio),
        control_lag1: over_runs(stats, |s| s.control_lag1),
        canary_lag1: over_runs(stats, |s| s.canary_lag1),
        correlation: over_runs(stats, |s| s.correlation),
        control_missing: over_runs(stats, |s| s.control_missing).mean,
        canary_missing: over_runs(stats, |s| s.canary_missing).mean,
        flagged: (
            flagged.clone().filter(|&f| f).count() as u32,
            flagged.count() as u32,
        ),
    })
}

/// A number to about 4 significant digits; `-` for NaN.
fn num(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.3e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    }
}

fn pm(o: OverRuns) -> String {
    if o.sd.is_finite() {
        format!("{} ±{}", num(o.mean), num(o.sd))
    } else {
        num(o.mean)
    }
}

fn pct(r: &Rate) -> String {
    format!(
        "{:.1}% [{:.1}, {:.1}]",
        100.0 * r.rate,
        100.0 * r.lower,
        100.0 * r.upper
    )
}

/// Scenario names: in the order the first source has them, then the rest.
fn scenario_names(sources: &[Source]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in sources {
        for study in &s.studies {
            for r in &study.scenarios {
                if !names.contains(&r.name) {
                    names.push(r.name.clone());
                }
            }
        }
    }
    names
}

fn render(sources: &[Source], only: Option<u32>) -> String {
    let mut out = String::new();
    for name in scenario_names(sources) {
        let _ = writeln!(out, "## {name}\n");
        let _ = writeln!(
            out,
            "| source | runs | promoted | rolled back | deploy failed | error | rollback rate [Wilson 95%] |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for s in sources {
            let c = VerdictCounts::of(s, &name);
            if c.runs == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                s.label,
                c.runs,
                c.promoted,
                c.rolled_back,
                c.deploy_failed,
                c.errors(),
                pct(&c.rollback_rate())
            );
        }
        out.push('\n');

        // Intervals and metrics as the runs have them, in order.
        let mut intervals: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        let mut metrics: Vec<String> = Vec::new();
        for r in sources.iter().flat_map(|s| s.runs(&name)) {
            for i in &r.intervals {
                intervals.entry(i.index).or_insert((i.start_s, i.end_s));
            }
            for m in &r.series {
                if !metrics.contains(&m.name) {
                    metrics.push(m.name.clone());
                }
            }
        }
        for (&index, &(start, end)) in intervals
            .iter()
            .filter(|(i, _)| only.is_none_or(|o| o == **i))
        {
            let _ = writeln!(
                out,
                "### {name}: interval {index} ({start:.0} - {end:.0} s)\n"
            );
            let _ = writeln!(
                out,
                "| metric | source | runs | points | control mean | control sd | canary mean | canary sd | canary/control | lag-1 autocorr control / canary | corr(control, canary) | missing control / canary | judge not Pass |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            for metric in &metrics {
                let summaries: Vec<(&str, Summary)> = sources
                    .iter()
                    .filter_map(|s| {
                        let stats: Vec<RunStats> = s
                            .runs(&name)
                            .filter_map(|r| run_stats(r, index, metric))
                            .collect();
                        summarize(&stats).map(|x| (s.label.as_str(), x))
                    })
                    .collect();
                for (label, x) in &summaries {
                    let _ = writeln!(
                        out,
                        "| {metric} | {label} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {:.0}% / {:.0}% | {} of {} |",
                        x.runs,
                        num(x.points.mean),
                        pm(x.control_mean),
                        pm(x.control_sd),
                        pm(x.canary_mean),
                        pm(x.canary_sd),
                        pm(x.ratio),
                        num(x.control_lag1.mean),
                        num(x.canary_lag1.mean),
                        num(x.correlation.mean),
                        100.0 * x.control_missing,
                        100.0 * x.canary_missing,
                        x.flagged.0,
                        x.flagged.1
                    );
                }
                if let Some(((a, x), rest)) = summaries.split_first() {
                    for (b, y) in rest {
                        let r = |p: f64, q: f64| num(p / q);
                        let _ = writeln!(
                            out,
                            "| {metric} | *{a} / {b}* | | | {} | {} | {} | {} | {} | | | | |",
                            r(x.control_mean.mean, y.control_mean.mean),
                            r(x.control_sd.mean, y.control_sd.mean),
                            r(x.canary_mean.mean, y.canary_mean.mean),
                            r(x.canary_sd.mean, y.canary_sd.mean),
                            r(x.ratio.mean, y.ratio.mean),
                        );
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reports::model::{
        Distribution, Expect, IntervalDetail, MetricSeries, MetricVerdict, Regression,
        ScenarioResult, Verdicts,
    };

    fn interval(index: u32, start_s: f64, end_s: f64, class: &str) -> IntervalDetail {
        IntervalDetail {
            index,
            start_s,
            end_s,
            score: 100.0,
            classification: judge::ScoreClassification::Pass,
            metrics: vec![MetricVerdict {
                name: "m".into(),
                classification: serde_json::from_value(serde_json::json!(class))
                    .expect("a classification"),
                ratio: None,
                ci: None,
                critical: false,
            }],
        }
    }

    /// Points at 0, 10, ..., 50 s (real-mode style, 2 ms off the grid);
    /// interval 1 is [10, 30] s: the points at 10, 20, 30.
    fn run(control: [Option<f64>; 6], canary: [Option<f64>; 6], class: &str) -> RunDetail {
        RunDetail {
            scenario: "s".into(),
            analysis: None,
            seed: 1,
            decision: reports::model::ReleaseEnd::Promote,
            reason: String::new(),
            intervals: vec![interval(1, 10.0, 30.0, class)],
            series: vec![MetricSeries {
                name: "m".into(),
                times_s: (0..6).map(|k| f64::from(k) * 10.0 + 0.002).collect(),
                control: control.to_vec(),
                experiment: canary.to_vec(),
            }],
            timeline: Vec::new(),
        }
    }

    fn study(runs: Vec<RunDetail>, verdicts: Verdicts, n: u32) -> Study {
        Study {
            tool_version: "t".into(),
            driver: "local".into(),
            seed: 1,
            runs_per_scenario: n,
            config: None,
            scenarios: vec![ScenarioResult {
                name: "s".into(),
                analysis: None,
                description: String::new(),
                expect: Expect::Pass,
                regression: Regression {
                    kind: "none".into(),
                    size: 0.0,
                    label: String::new(),
                },
                runs: n,
                verdicts,
                rollback_rate: wilson(verdicts.rolled_back, n),
                decision_time_s: Distribution::default(),
                canary_requests: Distribution::default(),
                blast_radius: Distribution::default(),
                lead_time_s: Distribution::default(),
                decided_at_interval: Vec::new(),
                expectation: None,
                decided: None,
                oracle: None,
            }],
            example_runs: runs,
            sweeps: Vec::new(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn window_takes_the_points_from_start_to_end_inclusive() {
        let s = Some;
        // outside the window (0, 40, 50 s) values that would shift every figure
        let r = run(
            [s(100.0), s(1.0), s(2.0), s(3.0), s(100.0), s(100.0)],
            [s(100.0), s(2.0), None, s(6.0), s(100.0), s(100.0)],
            "High",
        );
        let x = run_stats(&r, 1, "m").unwrap();
        assert_eq!(x.points, 3);
        assert!(
            close(x.control_mean, 2.0) && close(x.control_sd, 1.0),
            "{x:?}"
        );
        // canary 2 and 6 present: mean 4, sd sqrt(8)
        assert!(
            close(x.canary_mean, 4.0) && close(x.canary_sd, 8f64.sqrt()),
            "{x:?}"
        );
        assert!(close(x.ratio, 2.0));
        assert!(close(x.control_missing, 0.0) && close(x.canary_missing, 1.0 / 3.0));
        // control 1,2,3 around 2: (-1*0 + 0*1) / (1 + 0 + 1) = 0
        assert!(close(x.control_lag1, 0.0), "{}", x.control_lag1);
        // two canary points only: no autocorrelation; correlation needs 3 pairs
        assert!(x.canary_lag1.is_nan() && x.correlation.is_nan());
        assert_eq!(x.flagged, Some(true));
        assert!(run_stats(&r, 2, "m").is_none());
        assert!(run_stats(&r, 1, "other").is_none());
    }

    #[test]
    fn lag1_and_correlation_of_known_series() {
        let s = |v: &[f64]| v.iter().copied().map(Some).collect::<Vec<_>>();
        // 1,2,3,4: mean 2.5, cov (-1.5*-0.5 + -0.5*0.5 + 0.5*1.5) = 1.25, var 5
        assert!(close(lag1(&s(&[1.0, 2.0, 3.0, 4.0])), 0.25));
        // an alternating series: -3/4 (the estimator divides by all four squares)
        assert!(close(lag1(&s(&[1.0, -1.0, 1.0, -1.0])), -0.75));
        // a missing point breaks the pair on both sides
        let gap = [Some(1.0), None, Some(3.0), Some(4.0)];
        let m: f64 = 8.0 / 3.0;
        let want =
            ((3.0 - m) * (4.0 - m)) / ((1.0 - m).powi(2) + (3.0 - m).powi(2) + (4.0 - m).powi(2));
        assert!(close(lag1(&gap), want));
        assert!(close(
            correlation(&s(&[1.0, 2.0, 3.0]), &s(&[2.0, 4.0, 6.0])),
            1.0
        ));
        assert!(close(
            correlation(&s(&[1.0, 2.0, 3.0]), &s(&[3.0, 2.0, 1.0])),
            -1.0
        ));
        assert!(lag1(&s(&[5.0, 5.0, 5.0])).is_nan());
    }

    #[test]
    fn figures_average_over_runs_with_their_spread() {
        let s = Some;
        let a = run(
            [None, s(1.0), s(2.0), s(3.0), None, None],
            [None, s(1.0), s(2.0), s(3.0), None, None],
            "Pass",
        );
        let b = run(
            [None, s(3.0), s(4.0), s(5.0), None, None],
            [None, s(6.0), s(8.0), s(10.0), None, None],
            "High",
        );
        let stats: Vec<RunStats> = [a, b].iter().filter_map(|r| run_stats(r, 1, "m")).collect();
        let x = summarize(&stats).unwrap();
        assert_eq!(x.runs, 2);
        // control means 2 and 4: mean 3, sd sqrt(2); within-run sds 1 and 1
        assert!(close(x.control_mean.mean, 3.0) && close(x.control_mean.sd, 2f64.sqrt()));
        assert!(close(x.control_sd.mean, 1.0) && close(x.control_sd.sd, 0.0));
        // canary sds 1 and 2; ratios 1 and 2
        assert!(close(x.canary_sd.mean, 1.5) && close(x.ratio.mean, 1.5));
        assert!(close(x.correlation.mean, 1.0));
        assert_eq!(x.flagged, (1, 2));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn verdicts_sum_over_studies_with_a_wilson_interval() {
        let source = Source {
            label: "real".into(),
            studies: vec![
                study(
                    Vec::new(),
                    Verdicts {
                        promoted: 1,
                        ..Verdicts::default()
                    },
                    1,
                ),
                study(
                    Vec::new(),
                    Verdicts {
                        rolled_back: 1,
                        ..Verdicts::default()
                    },
                    1,
                ),
                // a run that ended in error: no verdict
                study(Vec::new(), Verdicts::default(), 1),
                study(
                    Vec::new(),
                    Verdicts {
                        promoted: 90,
                        rolled_back: 5,
                        deploy_failed: 2,
                        build_failed: 3,
                        paused: 0,
                    },
                    100,
                ),
            ],
        };
        let c = VerdictCounts::of(&source, "s");
        assert_eq!(
            (c.runs, c.promoted, c.rolled_back, c.deploy_failed),
            (103, 91, 6, 2)
        );
        assert_eq!(c.errors(), 1);
        let r = c.rollback_rate();
        assert_eq!((r.count, r.total), (8, 99));
        assert_eq!(r, wilson(8, 99));
        assert_eq!(VerdictCounts::of(&source, "other").runs, 0);
    }

    #[test]
    fn report_has_verdicts_statistics_and_the_ratio_row() {
        let s = Some;
        let real = Source {
            label: "real".into(),
            studies: vec![study(
                vec![run(
                    [None, s(1.0), s(2.0), s(3.0), None, None],
                    [None, s(2.0), s(4.0), s(6.0), None, None],
                    "High",
                )],
                Verdicts {
                    rolled_back: 1,
                    ..Verdicts::default()
                },
                1,
            )],
        };
        let sim = Source {
            label: "sim".into(),
            studies: vec![study(
                vec![run(
                    [None, s(1.0), s(1.5), s(2.0), None, None],
                    [None, s(1.0), s(1.5), s(2.0), None, None],
                    "Pass",
                )],
                Verdicts {
                    promoted: 10,
                    ..Verdicts::default()
                },
                10,
            )],
        };
        let other = Source {
            label: "other".into(),
            ..sim.clone()
        };
        let text = render(&[real, sim, other], None);
        assert!(
            text.contains("| real | 1 | 0 | 1 | 0 | 0 | 100.0% [20.7, 100.0] |"),
            "{text}"
        );
        assert!(
            text.contains("| sim | 10 | 10 | 0 | 0 | 0 | 0.0% [0.0, 27.8] |"),
            "{text}"
        );
        assert!(text.contains("### s: interval 1 (10 - 30 s)"), "{text}");
        // real control sd 1, sim 0.5: the ratio row says 2
        assert!(
            text.contains("| m | *real / sim* | | | 1.333 | 2.000 | 2.667 | 4.000 | 2.000 |"),
            "{text}"
        );
        assert!(
            text.contains("| 1 of 1 |") && text.contains("| 0 of 1 |"),
            "{text}"
        );
        // every other source gets its own ratio row
        assert!(
            text.contains("| m | *real / other* | | | 1.333 | 2.000 |"),
            "{text}"
        );
        assert!(!text.contains("*sim / other*"), "{text}");
        assert!(render(&[], Some(1)).is_empty());
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(0.051_62), "0.05162");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(3.1e8), "3.100e8");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "-");
    }
}
