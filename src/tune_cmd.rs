//! `canarylab tune`: search candidate configs (judge and its parameters,
//! score thresholds, analysis interval, allowed increase) on scenarios for
//! the one with the highest detection whose false alarms stay below a
//! target, then check the pick on fresh seeds. The search itself is
//! `sim::sweep` (candidates, counts, choice); this is the glue: files in,
//! progress on stderr, files out.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use scenarios::Scenario;
use sim::StudyOptions;
use sim::sweep::{Candidate, ScenarioCounts, Score};

use crate::Exit;

/// Arguments of `canarylab tune`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab tune scenarios/catalog --config scenarios/catalog/canary-config.json \\
    --max-false-alarm 0.02 --out tuned
  canarylab tune my-scenarios/ --config kayenta.json --judge NetflixACAJudge-v1.0 --out tuned

What it does:
  1. Builds candidate configs on top of yours: the judge (Kayenta's and each
     judge of `canarylab judges`) with its alpha, trackSd and tolerance; the
     pass/marginal score thresholds; every metric's allowed increase
     (Kayenta's judge); the analysis interval (your scenarios' own, or one
     look at the end). Your config is candidate 0; --candidates of the grid
     are tried (a seeded spread).
  2. Releases every scenario --runs times under each candidate, on the
     same seeds for every candidate (common random numbers: differences
     between candidates are the candidates', not luck).
  3. Keeps the candidates whose false-alarm rate on EVERY `expect = \"pass\"`
     scenario is below --max-false-alarm with 95% confidence (its Wilson
     upper bound is), and picks the one with the highest mean detection
     over the `expect = \"fail\"` scenarios.
  4. Releases the pick (and your config) again on fresh seeds, and reports
     both: the search's numbers flatter the pick (it won on those seeds);
     the fresh ones are what to expect.

Writes DIR/canary-config.json (your Kayenta config with the pick's judge,
score thresholds and allowed increases: deploy it), DIR/tune.md (what
changed and why, both checks), DIR/tune.json (every candidate's counts)
and DIR/tradeoff.svg (detection against the worst false-alarm rate, one
point per candidate). An interval is a pipeline setting (the canary
stage's), not the config's: tune.md says when the pick changes it.

With --judge NetflixACAJudge-v1.0 the search stays with what stock Kayenta
runs. Bad input (a scenario, the config, a judge name) is an error before
anything runs. Progress goes to stderr.")]
pub struct TuneArgs {
    /// Scenario files (*.toml) or directories of them: the regressions to
    /// catch (`expect = "fail"`) and the harmless releases to pass
    /// (`expect = "pass"`) [default: scenarios/catalog].
    #[arg(value_name = "SCENARIO_OR_DIR")]
    pub scenarios: Vec<PathBuf>,
    /// The Kayenta canary config to start from (every scenario is judged
    /// with it, as `canarylab sim --config`).
    #[arg(long, value_name = "CONFIG.json")]
    pub config: PathBuf,
    /// Highest false-alarm rate allowed on every harmless scenario (with
    /// 95% confidence).
    #[arg(long, default_value_t = 0.02, value_name = "RATE")]
    pub max_false_alarm: f64,
    /// Candidate configs to try (the first is yours).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub candidates: u32,
    /// Seeded releases per scenario and candidate.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Search only this judge's candidates (`canarylab judges`).
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// Seed of the search (the fresh check uses other seeds derived from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Output directory.
    #[arg(long, default_value = "tune")]
    pub out: PathBuf,
}

/// One candidate's result.
#[derive(Debug)]
struct Tried {
    candidate: Candidate,
    score: Score,
    scenarios: Vec<ScenarioCounts>,
}

impl Tried {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "candidate": self.candidate,
            "score": self.score,
            "scenarios": self.scenarios,
        })
    }
}

/// The seed of the fresh check: not one the search used.
fn fresh_seed(seed: u64) -> u64 {
    sim::run_seed(seed, "canarylab tune: fresh seeds", 0)
}

/// Run `canarylab tune`.
pub fn run(args: &TuneArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        args.max_false_alarm > 0.0 && args.max_false_alarm < 1.0,
        "--max-false-alarm {}: must be a rate in (0, 1), e.g. 0.02",
        args.max_false_alarm
    );
    if let Some(name) = &args.judge {
        anyhow::ensure!(
            judge::judges::NAMES.contains(&name.as_str()),
            "--judge {name}: unknown judge; known judges: {}",
            judge::judges::NAMES.join(", ")
        );
    }
    let paths = if args.scenarios.is_empty() {
        vec![PathBuf::from("scenarios/catalog")]
    } else {
        args.scenarios.clone()
    };
    let scenarios = scenarios::load_all(&paths, Some(&args.config))?;
    anyhow::ensure!(!scenarios.is_empty(), "no scenarios in {paths:?}");
    let has = |e: scenarios::Expect| scenarios.iter().any(|s| s.file.expect == e);
    anyhow::ensure!(
        has(scenarios::Expect::Pass) && has(scenarios::Expect::Fail),
        "tune needs scenarios of both kinds: harmless ones (expect = \"pass\") to hold false \
         alarms down and regressions (expect = \"fail\") to catch"
    );
    let config_text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = judge::CanaryConfig::from_json(&config_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;

    let base = Candidate::of(&scenarios[0]);
    let lifetime = scenarios[0].file.pipeline.lifetime_s;
    let grid = sim::sweep::tune_grid(&base, args.judge.as_deref(), lifetime);
    let candidates = sim::sweep::pick_candidates(&grid, args.candidates as usize, args.seed);
    // every candidate is checked on every scenario before anything runs
    for c in &candidates {
        for s in &scenarios {
            c.apply(s)?;
        }
    }
    let opts = StudyOptions {
        runs: args.runs,
        seed: args.seed,
        threads: args.threads,
        examples: false,
    };
    let started = Instant::now();
    let per_candidate = scenarios.len() * args.runs as usize;
    eprintln!(
        "tune: {} candidates (of {} in the grid) x {} scenarios x {} runs = {} releases",
        candidates.len(),
        grid.len(),
        scenarios.len(),
        args.runs,
        candidates.len() * per_candidate
    );
    // every candidate on each seed in turn: the seed's series generated
    // once, verdicts shared between candidates that differ in thresholds
    let total = candidates.len() * per_candidate;
    let step = (total / 20).max(1);
    let shown = std::sync::atomic::AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        let tenth = done / step;
        if shown.fetch_max(tenth, std::sync::atomic::Ordering::Relaxed) < tenth {
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "tune: {done}/{total} releases [{elapsed:.0} s, ~{:.0} s left]",
                elapsed / done as f64 * (total - done) as f64
            );
        }
    };
    let (all, shared) = sim::sweep::candidates_counts(&scenarios, &candidates, opts, &progress)?;
    eprintln!(
        "tune: {} candidate releases: {} read another candidate's series, {} their own, {} went \
         on on their own from a step generated otherwise; {} steps generated; {} windows \
         judged, {} verdicts shared",
        shared.runs,
        shared.reused_series,
        shared.own_series,
        shared.forked,
        shared.steps_generated,
        shared.judged,
        shared.verdicts_shared
    );
    let mut tried = Vec::with_capacity(candidates.len());
    for (i, (c, counts)) in candidates.iter().zip(all).enumerate() {
        let score = Score::of(&counts);
        eprintln!(
            "tune: {}/{} worst false alarm {:.1}% (upper {:.1}%), detection {:.1}%  {}",
            i + 1,
            candidates.len(),
            100.0 * score.worst_false_alarm,
            100.0 * score.worst_false_alarm_upper,
            100.0 * score.detection,
            c.label()
        );
        tried.push(Tried {
            candidate: c.clone(),
            score,
            scenarios: counts,
        });
    }
    let search_s = started.elapsed().as_secs_f64();
    let scores: Vec<Score> = tried.iter().map(|t| t.score).collect();
    let chosen = sim::sweep::choose(&scores, args.max_false_alarm);

    // the fresh check: the pick and the user's config on seeds the search
    // never saw
    let fresh_opts = StudyOptions {
        seed: fresh_seed(args.seed),
        ..opts
    };
    let mut again: Vec<usize> = chosen.into_iter().collect();
    if !again.contains(&0) {
        again.push(0);
    }
    for &i in &again {
        eprintln!("tune: fresh seeds: {}", tried[i].candidate.label());
    }
    let again_candidates: Vec<Candidate> =
        again.iter().map(|&i| tried[i].candidate.clone()).collect();
    let (fresh_counts, _) =
        sim::sweep::candidates_counts(&scenarios, &again_candidates, fresh_opts, &|_, _| {})?;
    let fresh: Vec<(usize, Tried)> = again
        .iter()
        .zip(fresh_counts)
        .map(|(&i, counts)| {
            (
                i,
                Tried {
                    candidate: tried[i].candidate.clone(),
                    score: Score::of(&counts),
                    scenarios: counts,
                },
            )
        })
        .collect();
    let wall_s = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let pick = chosen.map(|i| &tried[i].candidate).unwrap_or(&base);
    let tuned = pick.config(&config);
    write(
        "canary-config.json",
        &(serde_json::to_string_pretty(&tuned)? + "\n"),
    )?;
    let file = serde_json::json!({
        "tool_version": env!("CARGO_PKG_VERSION"),
        "seed": args.seed,
        "fresh_seed": fresh_opts.seed,
        "runs_per_scenario": args.runs,
        "max_false_alarm": args.max_false_alarm,
        // index into candidates of the pick, if any kept the target
        "chosen": chosen,
        "candidates": tried.iter().map(Tried::json).collect::<Vec<_>>(),
        // the pick and the user's config (candidate 0) on fresh seeds
        "fresh": fresh.iter().map(|(i, t)| {
            let mut v = t.json();
            v["index"] = (*i).into();
            v
        }).collect::<Vec<_>>(),
        "search_s": search_s,
        "wall_s": wall_s,
        // what the search's shared-series path shared (the counts stderr
        // shows): candidate releases, those that read another candidate's
        // series, those on their own series, those run again; steps
        // generated; windows judged and verdicts shared
        "sharing": shared,
    });
    write("tune.json", &(serde_json::to_string_pretty(&file)? + "\n"))?;
    write(
        "tradeoff.svg",
        &tradeoff_svg(&scores, chosen, args.max_false_alarm),
    )?;
    let mut md = explanation(args, &scenarios, &tried, chosen, &fresh, search_s, wall_s);
    md.push_str(&format!(
        "\nShared series: {} of {} candidate releases read another candidate's series (not \
         generated again), {} on their own series, {} went on on their own from a step generated otherwise; {} of {} \
         windows' verdicts were another candidate's.\n",
        shared.reused_series,
        shared.runs,
        shared.own_series,
        shared.forked,
        shared.verdicts_shared,
        shared.judged
    ));
    write("tune.md", &md)?;
    out.write_all(md.as_bytes())?;
    writeln!(
        out,
        "\nwrote {}/canary-config.json, tune.md, tune.json, tradeoff.svg",
        args.out.display()
    )?;
    Ok(Exit::Success)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// tune.md: what was searched, what was picked and why, both checks.
fn explanation(
    args: &TuneArgs,
    scenarios: &[Scenario],
    tried: &[Tried],
    chosen: Option<usize>,
    fresh: &[(usize, Tried)],
    search_s: f64,
    wall_s: f64,
) -> String {
    let mut s = String::new();
    let base = &tried[0];
    s.push_str("# canarylab tune\n\n");
    s.push_str(&format!(
        "{} candidates x {} scenarios x {} runs, seed {} (the same seeds for every candidate); \
         target: false alarms below {} on every harmless scenario with 95% confidence. \
         Search {:.0} s, with the fresh check {:.0} s wall.\n\n",
        tried.len(),
        scenarios.len(),
        args.runs,
        args.seed,
        pct(args.max_false_alarm),
        search_s,
        wall_s
    ));
    s.push_str(&format!("Your config: {}\n\n", base.candidate.label()));
    match chosen {
        None => {
            let best = tried
                .iter()
                .min_by(|a, b| {
                    a.score
                        .worst_false_alarm_upper
                        .total_cmp(&b.score.worst_false_alarm_upper)
                })
                .map(|t| t.candidate.label())
                .unwrap_or_default();
            s.push_str(&format!(
                "No candidate kept false alarms below {} with 95% confidence. The closest: {best}. \
                 canary-config.json is your config unchanged. Try more --runs (a tighter bound), \
                 a higher --max-false-alarm, or more --candidates.\n\n",
                pct(args.max_false_alarm)
            ));
        }
        Some(i) => {
            let t = &tried[i];
            s.push_str(&format!(
                "Pick (candidate {i}): {}\n\n",
                t.candidate.label()
            ));
            s.push_str(&changes(&base.candidate, &t.candidate));
            s.push_str(
                "\nWhy: of the candidates whose worst harmless scenario stays below the target \
                 (Wilson upper bound), it detects the most on average over the regressions.\n\n",
            );
        }
    }
    s.push_str("| scenario | expect | your config (search) | pick (search) | your config (fresh) | pick (fresh) |\n|---|---|---|---|---|---|\n");
    let find = |i: usize| fresh.iter().find(|(j, _)| *j == i).map(|(_, t)| t);
    let pick = chosen.map(|i| &tried[i]);
    let pick_fresh = chosen.and_then(find);
    let base_fresh = find(0);
    let cell = |t: Option<&Tried>, k: usize| {
        t.map(|t| {
            let c = &t.scenarios[k];
            pct(f64::from(c.rolled_back) / f64::from(c.deployed.max(1)))
        })
        .unwrap_or_else(|| "-".into())
    };
    for (k, c) in base.scenarios.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.name,
            match c.expect {
                reports::model::Expect::Pass => "pass",
                reports::model::Expect::Fail => "fail",
            },
            cell(Some(base), k),
            cell(pick, k),
            cell(base_fresh, k),
            cell(pick_fresh, k),
        ));
    }
    let line = |name: &str, t: Option<&Tried>| {
        t.map(|t| {
            format!(
                "{name}: worst false alarm {} (upper {}), mean detection {}\n",
                pct(t.score.worst_false_alarm),
                pct(t.score.worst_false_alarm_upper),
                pct(t.score.detection)
            )
        })
        .unwrap_or_default()
    };
    s.push('\n');
    s.push_str(&line("Your config, search seeds", Some(base)));
    s.push_str(&line("Your config, fresh seeds", base_fresh));
    s.push_str(&line("Pick, search seeds", pick));
    s.push_str(&line("Pick, fresh seeds", pick_fresh));
    if let (Some(p), Some(f)) = (pick, pick_fresh) {
        if !f.score.keeps(args.max_false_alarm) {
            s.push_str(&format!(
                "\nOn fresh seeds the pick's worst false-alarm bound is {} (target {}): the search \
                 chose it partly for its luck; rerun with more --runs.\n",
                pct(f.score.worst_false_alarm_upper),
                pct(args.max_false_alarm)
            ));
        }
        let drop = p.score.detection - f.score.detection;
        if drop > 0.0 {
            s.push_str(&format!(
                "\nDetection fell by {:.1} points on fresh seeds: the winner's curse of picking \
                 the best of {} on the same seeds.\n",
                100.0 * drop,
                tried.len()
            ));
        }
    }
    s
}

/// What the pick changes relative to the user's config, in words.
fn changes(base: &Candidate, pick: &Candidate) -> String {
    let mut s = String::new();
    if pick.judge != base.judge || pick.params != base.params {
        s.push_str(&format!(
            "- judge: {} -> {}{} (config's `judge` block)\n",
            base.judge,
            pick.judge,
            pick.params
                .as_ref()
                .map(|p| format!(" with judgeConfigurations {p}"))
                .unwrap_or_default()
        ));
    }
    if (pick.pass, pick.marginal) != (base.pass, base.marginal) {
        s.push_str(&format!(
            "- score thresholds: pass {} marginal {} -> pass {} marginal {} (config's \
             `classifier.scoreThresholds`; in Spinnaker, the canary stage's scoreThresholds)\n",
            base.pass, base.marginal, pick.pass, pick.marginal
        ));
    }
    if let Some(i) = pick.interval_s {
        s.push_str(&format!(
            "- analysis interval: {} minutes (a pipeline setting: the canary stage's \
             canaryAnalysisIntervalMins; one look at the end of the lifetime)\n",
            i / 60.0
        ));
    }
    if let Some(a) = pick.allowed_increase {
        s.push_str(&format!(
            "- every metric's effectSize.allowedIncrease: {a} (fails only a larger increase)\n"
        ));
    }
    if s.is_empty() {
        s.push_str("- nothing: your config is the best candidate that keeps the target\n");
    }
    s
}

/// Detection against the worst false-alarm rate, one point per candidate;
/// the pick circled, the target a dashed line.
fn tradeoff_svg(scores: &[Score], chosen: Option<usize>, target: f64) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 420.0, 60.0, 50.0, 30.0, 20.0);
    let xmax = scores
        .iter()
        .map(|s| s.worst_false_alarm)
        .fold(target * 2.0, f64::max)
        .min(1.0);
    let x = |v: f64| left + (w - left - right) * v / xmax;
    let y = |v: f64| h - bottom - (h - bottom - top) * v;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">canarylab tune: each candidate's detection against its worst false-alarm rate</text>\n",
        w / 2.0
    );
    s.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        y(0.0),
        w - right,
        y(0.0),
        y(0.0)
    ));
    for k in 0..=4 {
        let v = f64::from(k) / 4.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}%</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.1}%</text>\n",
            left - 6.0,
            y(v) + 4.0,
            100.0 * v,
            x(v * xmax),
            y(0.0) + 16.0,
            100.0 * v * xmax
        ));
    }
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">worst false-alarm rate over the harmless scenarios</text>\n\
         <text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">mean detection over the regressions</text>\n\
         <line x1=\"{}\" y1=\"{top}\" x2=\"{}\" y2=\"{}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>\n",
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
        x(target),
        x(target),
        y(0.0)
    ));
    for (i, sc) in scores.iter().enumerate() {
        let color = if i == 0 {
            "#555"
        } else if sc.keeps(target) {
            "#1f77b4"
        } else {
            "#aaa"
        };
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>candidate {i}</title></circle>\n",
            x(sc.worst_false_alarm.min(xmax)),
            y(sc.detection)
        ));
    }
    if let Some(i) = chosen {
        let sc = scores[i];
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"8\" fill=\"none\" stroke=\"#c00\" stroke-width=\"2\"><title>the pick</title></circle>\n",
            x(sc.worst_false_alarm.min(xmax)),
            y(sc.detection)
        ));
    }
    s.push_str("</svg>\n");
    s
}
