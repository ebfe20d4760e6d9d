//! Monte Carlo studies: N seeded runs of each scenario on all cores, and
//! what they add up to (rates with Wilson intervals, distributions).
//!
//! Each run's seed derives from the study seed, the scenario's name and
//! the run's index, and results are gathered by index, so a study's output
//! is the same whatever the thread count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use judge::Workspace;
use reports::model::{
    self, ExpectationCheck, Regression as ReportRegression, ScenarioResult, Study, Verdicts,
};
use scenarios::{Expect, Scenario};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::run::{Decision, Prepared, RunOutcome, run_once};
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
    let results = prepared
        .iter()
        .zip(&outcomes)
        .map(|(p, o)| summarize(p.scenario(), o))
        .collect();
    let examples = if opts.examples {
        example_runs(&prepared, opts.seed)
    } else {
        Vec::new()
    };
    Ok(Study {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        driver: "sim".into(),
        seed: opts.seed,
        runs_per_scenario: opts.runs,
        config: None,
        scenarios: results,
        example_runs: examples,
        sweeps: Vec::new(),
    })
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
    let runs = shard.len(opts.runs) as usize;
    let total = prepared.len() * runs;
    const CHUNK: usize = 32;
    let chunks = total.div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<RunOutcome>>> = Mutex::new(vec![None; total]);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(chunks.max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut ws = Workspace::new();
                let mut local = Vec::with_capacity(CHUNK);
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    local.clear();
                    for job in c * CHUNK..((c + 1) * CHUNK).min(total) {
                        let (sc, k) = (job / runs, job % runs);
                        let p = &prepared[sc];
                        let seed = run_seed(opts.seed, &p.scenario().name, shard.run(k as u32));
                        local.push((job, run_once(p, seed, false, &mut ws).0));
                    }
                    let n = local.len();
                    {
                        let mut slots = slots
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (job, o) in local.drain(..) {
                            slots[job] = Some(o);
                        }
                    }
                    let d = done.fetch_add(n, Ordering::Relaxed) + n;
                    progress(d, total);
                }
            });
        }
    });
    let slots = slots
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut it = slots
        .into_iter()
        .map(|o| o.unwrap_or_else(|| unreachable!("every job ran")));
    (0..prepared.len())
        .map(|_| it.by_ref().take(runs).collect())
        .collect()
}

/// What summing up a scenario's runs needs to know of the scenario: kept
/// in shard files, so merging needs no scenario files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioMeta {
    /// Scenario name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Ground truth.
    pub expect: model::Expect,
    /// The injected regression.
    pub regression: ReportRegression,
    /// The scenario's stated minimum detection rate, if any.
    pub min_detection: Option<f64>,
    /// The scenario's stated maximum false-alarm rate, if any.
    pub max_false_alarm: Option<f64>,
}

impl ScenarioMeta {
    /// The summary-relevant facts of `sc`.
    pub fn of(sc: &Scenario) -> Self {
        let f = &sc.file;
        let (kind, size, label) = match &f.regression {
            Some(r) => {
                let (k, s, l) = r.describe();
                (k.to_string(), s, l)
            }
            None => ("none".into(), 0.0, "no change".into()),
        };
        Self {
            name: sc.name.clone(),
            description: f.description.clone(),
            expect: match f.expect {
                Expect::Pass => model::Expect::Pass,
                Expect::Fail => model::Expect::Fail,
            },
            regression: ReportRegression { kind, size, label },
            min_detection: f.min_detection,
            max_false_alarm: f.max_false_alarm,
        }
    }
}

/// A scenario's results from its runs.
pub fn summarize(sc: &Scenario, outcomes: &[RunOutcome]) -> ScenarioResult {
    summarize_meta(&ScenarioMeta::of(sc), outcomes)
}

/// A scenario's results from its runs (all of them, in run order).
pub fn summarize_meta(meta: &ScenarioMeta, outcomes: &[RunOutcome]) -> ScenarioResult {
    let mut v = Verdicts::default();
    for o in outcomes {
        match o.decision {
            Decision::Promote => v.promoted += 1,
            Decision::Rollback => v.rolled_back += 1,
            Decision::DeployFailed => v.deploy_failed += 1,
            Decision::BuildFailed => v.build_failed += 1,
        }
    }
    let deployed = v.promoted + v.rolled_back + v.deploy_failed;
    let rollback_rate = model::wilson(v.rolled_back + v.deploy_failed, deployed);
    let deployed_runs: Vec<&RunOutcome> = outcomes
        .iter()
        .filter(|o| o.decision != Decision::BuildFailed)
        .collect();
    let dist = |f: &dyn Fn(&RunOutcome) -> f64| {
        let values: Vec<f64> = deployed_runs.iter().map(|o| f(o)).collect();
        model::distribution(&values, 20)
    };
    let mut decided_at = Vec::new();
    for o in outcomes {
        if let Some(i) = o.decided_at_interval {
            if decided_at.len() <= i {
                decided_at.resize(i + 1, 0);
            }
            decided_at[i] += 1;
        }
    }
    // Without a stated number, the majority of runs must end as expected.
    let expectation = Some(match meta.expect {
        model::Expect::Fail => {
            let min = meta.min_detection.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("detection >= {min}"),
                met: rollback_rate.rate >= min,
            }
        }
        model::Expect::Pass => {
            let max = meta.max_false_alarm.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("false alarms <= {max}"),
                met: rollback_rate.rate <= max,
            }
        }
    });
    ScenarioResult {
        name: meta.name.clone(),
        description: meta.description.clone(),
        expect: meta.expect,
        regression: meta.regression.clone(),
        runs: outcomes.len() as u32,
        verdicts: v,
        rollback_rate,
        decision_time_s: dist(&|o| o.decision_time_s),
        canary_requests: dist(&|o| o.canary_requests as f64),
        blast_radius: dist(&|o| o.blast_radius as f64),
        lead_time_s: dist(&|o| o.lead_time_s),
        decided_at_interval: decided_at,
        expectation,
    }
}
