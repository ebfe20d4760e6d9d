//! Monte Carlo studies: N seeded runs of each scenario on all cores, and
//! what they add up to (rates with Wilson intervals, distributions).
//!
//! Each run's seed derives from the study seed, the scenario's name and
//! the run's index, and results are gathered by index, so a study's output
//! is the same whatever the thread count.
//!
//! A side-by-side study ([`run_study_side_by_side`]) releases every
//! scenario once per analysis on the same seeds (common random numbers:
//! the seed does not depend on the analysis), so differences between the
//! analyses' results come from the analyses, not from luck.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use judge::Workspace;
use reports::model::{self, Study};
use scenarios::Scenario;

use crate::SimError;
use crate::analysis::{AnalysisFile, FileKind};
use crate::run::candidates::{Candidates, ShareStats};
use crate::run::{Prepared, RunOutcome, run_once};
use crate::shard::Shard;

/// How to run a study.
#[derive(Debug, Clone, Copy)]
pub struct StudyOptions {
    /// Runs per scenario.
    pub runs: u32,
    /// Study seed.
    pub seed: u64,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Also record one detailed example run per scenario.
    pub examples: bool,
}

/// The seed of run `run` of scenario `name` in a study seeded `seed`.
pub fn run_seed(seed: u64, name: &str, run: u32) -> u64 {
    // FNV-1a of the name, so adding or reordering scenarios changes nothing
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    splitmix(seed ^ splitmix(h ^ splitmix(u64::from(run))))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Run every scenario `opts.runs` times. `progress(done, total)` is called
/// from worker threads as runs finish.
pub fn run_study(
    scenarios: &[Scenario],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Study, SimError> {
    let prepared = Prepared::all(scenarios)?;
    let outcomes = run_all(&prepared, opts, progress);
    let mut results = prepared
        .iter()
        .zip(&outcomes)
        .map(|(p, o)| summarize(p.scenario(), o))
        .collect::<Vec<_>>();
    crate::oracle::annotate(&mut results, scenarios);
    let examples = if opts.examples {
        example_runs(&prepared, opts.seed)
    } else {
        Vec::new()
    };
    Ok(sim_study(opts, results, examples))
}

/// A simulator study's results: `results` per scenario (and analysis),
/// with `examples`.
fn sim_study(
    opts: StudyOptions,
    results: Vec<model::ScenarioResult>,
    examples: Vec<model::RunDetail>,
) -> Study {
    Study {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        driver: "sim".into(),
        seed: opts.seed,
        runs_per_scenario: opts.runs,
        config: None,
        scenarios: results,
        example_runs: examples,
        sweeps: Vec::new(),
    }
}

/// One analysis of a side-by-side study, ready to run.
#[derive(Debug)]
pub struct StudyAnalysis {
    /// Its file, read.
    pub file: AnalysisFile,
    /// For a Kayenta config: the study's scenarios loaded with it in place
    /// of their own config (in the same order). Empty for a peer's.
    pub scenarios: Vec<Scenario>,
}

/// Every scenario released by every analysis, `opts.runs` times each on
/// the same seeds. Results: one entry per scenario and analysis
/// (scenario by scenario, analyses in the order given), each naming its
/// analysis; example runs (with `opts.examples`) likewise, one per scenario
/// and analysis on the scenario's run-0 seed (common random numbers).
pub fn run_study_side_by_side(
    scenarios: &[Scenario],
    analyses: &[StudyAnalysis],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Study, SimError> {
    let prepared = prepare_side_by_side(scenarios, analyses)?;
    let (outcomes, _) = side_by_side_outcomes(&prepared, analyses.len(), opts, progress);
    let names = analyses.iter().map(|a| a.file.name.as_str()).cycle();
    let results = prepared
        .iter()
        .zip(&outcomes)
        .zip(names)
        .map(|((p, o), name)| {
            let mut r = summarize(p.scenario(), o);
            r.analysis = Some(name.to_string());
            r
        })
        .collect();
    let examples = if opts.examples {
        let names: Vec<&str> = analyses.iter().map(|a| a.file.name.as_str()).collect();
        example_runs_named(&prepared, &names, opts.seed)
    } else {
        Vec::new()
    };
    Ok(sim_study(opts, results, examples))
}

/// The (scenario, analysis) pairs, scenario by scenario.
pub fn prepare_side_by_side<'a>(
    scenarios: &'a [Scenario],
    analyses: &'a [StudyAnalysis],
) -> Result<Vec<Prepared<'a>>, SimError> {
    let mut prepared = Vec::with_capacity(scenarios.len() * analyses.len());
    for (i, sc) in scenarios.iter().enumerate() {
        for a in analyses {
            let scenario_error = |message: String| SimError::Scenario {
                name: sc.name.clone(),
                message: format!("with analysis {}: {message}", a.file.path.display()),
            };
            let p = match &a.file.kind {
                FileKind::Kayenta => {
                    let own = a
                        .scenarios
                        .get(i)
                        .filter(|s| s.name == sc.name)
                        .ok_or_else(|| {
                            scenario_error("not loaded with this Kayenta config".into())
                        })?;
                    Prepared::new(own)
                }
                FileKind::Peer(_) => {
                    let plan = a
                        .file
                        .plan_for(sc)
                        .map_err(|e| scenario_error(e.to_string()))?
                        .ok_or_else(|| scenario_error("not a peer's file".into()))?;
                    Prepared::with_peer(sc, plan)
                }
            };
            prepared.push(p.map_err(|e| scenario_error(e.to_string()))?);
        }
    }
    Ok(prepared)
}

/// Run 0 of each scenario, in detail (the report's example runs).
pub fn example_runs(prepared: &[Prepared<'_>], seed: u64) -> Vec<model::RunDetail> {
    prepared
        .iter()
        .filter_map(|p| {
            let seed = run_seed(seed, &p.scenario().name, 0);
            run_once(p, seed, true, &mut Workspace::new()).1
        })
        .collect()
}

/// Run 0 of each (scenario, analysis) pair of a side-by-side study (see
/// [`prepare_side_by_side`]: scenario by scenario, `analyses` in order), in
/// detail, each naming its analysis.
pub fn example_runs_named(
    prepared: &[Prepared<'_>],
    analyses: &[&str],
    seed: u64,
) -> Vec<model::RunDetail> {
    prepared
        .iter()
        .zip(analyses.iter().cycle())
        .filter_map(|(p, name)| {
            let seed = run_seed(seed, &p.scenario().name, 0);
            let mut detail = run_once(p, seed, true, &mut Workspace::new()).1?;
            detail.analysis = Some((*name).to_string());
            Some(detail)
        })
        .collect()
}

/// Every run's outcome of a side-by-side study's (scenario, analysis)
/// pairs ([`prepare_side_by_side`]'s order: scenario by scenario,
/// `analyses` each), in run order, and what the analyses shared. A
/// scenario's analyses of one tool (its Kayenta configs; its Argo
/// Rollouts files; its Flagger files) release each seed one after the
/// other ([`Candidates`]): those whose releases generate the same series
/// (the same traffic, pods, scrape step and metric families: Kayenta
/// configs that differ in queries, effect sizes, judge, thresholds or
/// analysis timing; peer files on the same steps whose queries read the
/// same families) generate them once, peers' runs scrape them once too,
/// and Kayenta configs that differ only in score thresholds share
/// verdicts. Analyses of different tools never share (each tool sets its
/// own weights and pods). Every outcome is the one the pair has on its own
/// ([`run_all`]).
pub fn side_by_side_outcomes(
    prepared: &[Prepared<'_>],
    analyses: usize,
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Vec<RunOutcome>>, ShareStats) {
    let analyses = analyses.max(1);
    // Per scenario and tool, its analyses together; a thread runs
    // consecutive seeds of one group (alternating tools seed by seed cools
    // the per-thread tables).
    let mut groups: Vec<Group<'_, '_>> = Vec::new();
    for (sc, pairs) in prepared.chunks(analyses).enumerate() {
        let mut tools: Vec<&str> = Vec::new();
        for tool in pairs.iter().map(Prepared::tool) {
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
        for tool in tools {
            let members: Vec<usize> = (0..pairs.len())
                .filter(|&a| pairs[a].tool() == tool)
                .map(|a| sc * analyses + a)
                .collect();
            if members.len() > 1 {
                let c = Candidates::new(members.iter().map(|&i| &prepared[i]).collect());
                groups.push((members, Some(c)));
            } else {
                groups.push((members, None));
            }
        }
    }
    run_groups(prepared, &groups, opts, Shard::WHOLE, progress)
}

/// Every run's outcome, per scenario, in run order.
pub fn run_all(
    prepared: &[Prepared<'_>],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Vec<RunOutcome>> {
    run_shard_outcomes(prepared, opts, Shard::WHOLE, progress)
}

/// The outcomes of the runs of `shard` (see [`Shard::runs`]), per scenario,
/// in run order. Each run is seeded by [`run_seed`] from its index in the
/// whole study, so a shard's runs are exactly the unsharded study's.
pub fn run_shard_outcomes(
    prepared: &[Prepared<'_>],
    opts: StudyOptions,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Vec<RunOutcome>> {
    let alone: Vec<Group<'_, '_>> = (0..prepared.len()).map(|i| (vec![i], None)).collect();
    run_groups(prepared, &alone, opts, shard, progress).0
}

/// Indices into the prepared releases that run each seed together: one
/// alone (`None`: [`run_once`]), or several through their [`Candidates`].
type Group<'p, 'a> = (Vec<usize>, Option<Candidates<'p, 'a>>);

/// The outcomes of the runs of `shard` of every group's members (every
/// prepared release in exactly one group), per prepared release, in run
/// order, and what the groups shared. A job is one group's release of one
/// seed, and a chunk is consecutive seeds of a group, so a thread's runs
/// follow one another in the same release and its per-thread tables and
/// buffers stay warm (alternating the catalog's three analyses seed by seed
/// doubled a side by side's CPU).
fn run_groups(
    prepared: &[Prepared<'_>],
    groups: &[Group<'_, '_>],
    opts: StudyOptions,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Vec<RunOutcome>>, ShareStats) {
    let runs = shard.len(opts.runs) as usize;
    let jobs = groups.len() * runs;
    let total = prepared.len() * runs;
    const CHUNK: usize = 32;
    let chunks = jobs.div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<(Vec<Option<RunOutcome>>, ShareStats)> =
        Mutex::new((vec![None; total], ShareStats::default()));
    let threads = worker_threads(opts.threads, chunks);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut ws = Workspace::new();
                let mut stats = ShareStats::default();
                let mut local = Vec::with_capacity(CHUNK);
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    local.clear();
                    for job in c * CHUNK..((c + 1) * CHUNK).min(jobs) {
                        let ((members, cands), k) = (&groups[job / runs], job % runs);
                        let first = &prepared[members[0]];
                        let run = shard.run(k as u32);
                        let seed = run_seed(opts.seed, &first.scenario().name, run);
                        match cands {
                            Some(cands) => {
                                let outcomes = cands.run(seed, &mut ws, &mut stats);
                                for (&i, o) in members.iter().zip(outcomes) {
                                    local.push((i * runs + k, o));
                                }
                            }
                            None => {
                                let o = run_once(first, seed, false, &mut ws).0;
                                local.push((members[0] * runs + k, o));
                            }
                        }
                    }
                    let n = local.len();
                    {
                        let mut slots = slots
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (i, o) in local.drain(..) {
                            slots.0[i] = Some(o);
                        }
                    }
                    let d = done.fetch_add(n, Ordering::Relaxed) + n;
                    progress(d, total);
                }
                slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .1
                    .add(&stats);
            });
        }
    });
    let (slots, stats) = slots
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut it = slots
        .into_iter()
        .map(|o| o.unwrap_or_else(|| unreachable!("every job ran")));
    let outcomes = (0..prepared.len())
        .map(|_| it.by_ref().take(runs).collect())
        .collect();
    (outcomes, stats)
}

pub use reports::summary::{ScenarioMeta, summarize, summarize_meta};

/// Threads for `chunks` pieces of work: `requested`, or one per core when it
/// is 0, and never more than there are chunks.
pub(crate) fn worker_threads(requested: usize, chunks: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(chunks.max(1))
}
