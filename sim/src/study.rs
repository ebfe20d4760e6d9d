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

use crate::SimError;
use crate::run::{Decision, Prepared, RunOutcome, run_once};

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
    let prepared: Vec<Prepared<'_>> = scenarios
        .iter()
        .map(|s| {
            Prepared::new(s).map_err(|e| SimError::Scenario {
                name: s.name.clone(),
                message: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let outcomes = run_all(&prepared, opts, progress);
    let mut results = Vec::with_capacity(scenarios.len());
    let mut examples = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        results.push(summarize(p.scenario(), &outcomes[i]));
        if opts.examples {
            let seed = run_seed(opts.seed, &p.scenario().name, 0);
            if let (_, Some(detail)) = run_once(p, seed, true, &mut Workspace::new()) {
                examples.push(detail);
            }
        }
    }
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

/// Every run's outcome, per scenario, in run order.
pub fn run_all(
    prepared: &[Prepared<'_>],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Vec<RunOutcome>> {
    let runs = opts.runs as usize;
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
                        let (sc, run) = (job / runs, job % runs);
                        let p = &prepared[sc];
                        let seed = run_seed(opts.seed, &p.scenario().name, run as u32);
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

/// A scenario's results from its runs.
pub fn summarize(sc: &Scenario, outcomes: &[RunOutcome]) -> ScenarioResult {
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
    let f = &sc.file;
    let (kind, size, label) = match &f.regression {
        Some(r) => {
            let (k, s, l) = r.describe();
            (k.to_string(), s, l)
        }
        None => ("none".into(), 0.0, "no change".into()),
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
    let expectation = Some(match (f.expect, f.min_detection, f.max_false_alarm) {
        (Expect::Fail, min, _) => {
            let min = min.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("detection >= {min}"),
                met: rollback_rate.rate >= min,
            }
        }
        (Expect::Pass, _, max) => {
            let max = max.unwrap_or(0.5);
            ExpectationCheck {
                requirement: format!("false alarms <= {max}"),
                met: rollback_rate.rate <= max,
            }
        }
    });
    ScenarioResult {
        name: sc.name.clone(),
        description: f.description.clone(),
        expect: match f.expect {
            Expect::Pass => model::Expect::Pass,
            Expect::Fail => model::Expect::Fail,
        },
        regression: ReportRegression { kind, size, label },
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
