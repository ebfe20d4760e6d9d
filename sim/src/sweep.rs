//! Parameter sweeps: the same study at each value of a judge or pipeline
//! parameter, giving per value the false-alarm rate over the harmless
//! scenarios and the detection rate over the regressions: the data of ROC
//! and power curves. A sweep is counted first ([`SweepCounts`]), so the
//! sweeps of a sharded study's shards add up exactly.

use reports::model::{self, Sweep, SweepPoint};
use scenarios::{Expect, Scenario};
use serde::{Deserialize, Serialize};

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::SimError;
use crate::run::candidates::{Candidates, ShareStats};
use crate::run::{Decision, Prepared, RunOutcome};
use crate::shard::Shard;
use crate::study::{StudyOptions, run_seed};

/// A parameter a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    /// The pass threshold (`pipeline.pass`).
    Pass,
    /// The marginal threshold (`pipeline.marginal`).
    Marginal,
    /// `pipeline.interval_s`.
    IntervalS,
    /// `pipeline.lifetime_s`.
    LifetimeS,
    /// `pipeline.warmup_s`.
    WarmupS,
    /// The canary's (and a fresh baseline's) traffic percent; traffic
    /// steps are dropped.
    CanaryWeight,
    /// `analysis.scrape_step_s`.
    ScrapeStepS,
    /// Every metric's allowed increase (effect size) but those that only
    /// fail on a decrease.
    AllowedIncrease,
}

impl Parameter {
    /// Every parameter, in the order help lists them.
    pub const ALL: [Parameter; 8] = [
        Parameter::Pass,
        Parameter::Marginal,
        Parameter::IntervalS,
        Parameter::LifetimeS,
        Parameter::WarmupS,
        Parameter::CanaryWeight,
        Parameter::ScrapeStepS,
        Parameter::AllowedIncrease,
    ];

    /// The name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Parameter::Pass => "pass",
            Parameter::Marginal => "marginal",
            Parameter::IntervalS => "interval_s",
            Parameter::LifetimeS => "lifetime_s",
            Parameter::WarmupS => "warmup_s",
            Parameter::CanaryWeight => "canary_weight",
            Parameter::ScrapeStepS => "scrape_step_s",
            Parameter::AllowedIncrease => "allowed_increase",
        }
    }

    /// Every name, comma-separated, for messages.
    pub fn names() -> String {
        Parameter::ALL.map(Parameter::name).join(", ")
    }

    /// A copy of `sc` with this parameter set to `value`, validated as
    /// loading validates a scenario (the copy's errors name the scenario
    /// file, the parameter and the value).
    pub fn apply(self, sc: &Scenario, value: f64) -> Result<Scenario, SimError> {
        let mut s = sc.clone();
        let p = &mut s.file.pipeline;
        match self {
            Parameter::Pass => p.pass = Some(value),
            Parameter::Marginal => p.marginal = Some(value),
            Parameter::IntervalS => p.interval_s = Some(value),
            Parameter::LifetimeS => p.lifetime_s = value,
            Parameter::WarmupS => p.warmup_s = value,
            Parameter::CanaryWeight => {
                // canary and baseline get `value` percent each (or the canary
                // alone when comparing with production)
                let both = p.traffic.baseline > 0.0;
                p.traffic.canary = value;
                p.traffic.baseline = if both { value } else { 0.0 };
                p.traffic.production = 100.0 - p.traffic.canary - p.traffic.baseline;
                p.traffic_steps.clear();
            }
            Parameter::ScrapeStepS => s.file.analysis.scrape_step_s = value,
            Parameter::AllowedIncrease => {
                for m in &mut s.config.metrics {
                    let c = &mut m.analysis_configurations.canary;
                    if c.direction != judge::Direction::Decrease {
                        c.effect_size
                            .get_or_insert_with(Default::default)
                            .allowed_increase = Some(value);
                    }
                }
            }
        }
        s.validate()
            .map_err(|e| SimError::Sweep(format!("{}={value}: {e}", self.name())))?;
        // what the scenario's thresholds become (the config's may apply)
        let t = s.thresholds();
        if t.marginal > t.pass {
            return Err(SimError::Sweep(format!(
                "{}={value}: {}: marginal {} above pass {}",
                self.name(),
                s.path.display(),
                t.marginal,
                t.pass
            )));
        }
        Ok(s)
    }

    /// The value `sc` uses now (marks the chosen point).
    fn current(self, sc: &Scenario) -> Option<f64> {
        let p = &sc.file.pipeline;
        match self {
            Parameter::Pass => Some(sc.thresholds().pass),
            Parameter::Marginal => Some(sc.thresholds().marginal),
            Parameter::IntervalS => p.interval_s,
            Parameter::LifetimeS => Some(p.lifetime_s),
            Parameter::WarmupS => Some(p.warmup_s),
            Parameter::CanaryWeight => Some(p.traffic.canary),
            Parameter::ScrapeStepS => Some(sc.file.analysis.scrape_step_s),
            Parameter::AllowedIncrease => Some(1.0),
        }
    }
}

impl std::fmt::Display for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Parameter {
    type Err = SimError;

    fn from_str(name: &str) -> Result<Self, SimError> {
        Parameter::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                SimError::Sweep(format!(
                    "unknown parameter \"{name}\" (parameters: {})",
                    Parameter::names()
                ))
            })
    }
}

/// Parse `NAME=V1,V2,...`.
pub fn parse_grid(spec: &str) -> Result<(Parameter, Vec<f64>), SimError> {
    let (name, values) = spec.split_once('=').ok_or_else(|| {
        SimError::Sweep(format!(
            "\"{spec}\": expected NAME=V1,V2,... (parameters: {})",
            Parameter::names()
        ))
    })?;
    let parameter: Parameter = name.parse()?;
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| SimError::Sweep(format!("{name}: \"{v}\" is not a number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(SimError::Sweep(format!("{name}: no values")));
    }
    Ok((parameter, values))
}

/// Run the study at each value of `parameter`.
pub fn sweep(
    scenarios: &[Scenario],
    parameter: Parameter,
    values: &[f64],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Sweep, SimError> {
    Ok(sweep_counts(scenarios, parameter, values, opts, Shard::WHOLE, progress)?.to_sweep())
}

/// A sweep as counts of runs (what its rates are made of), so the sweeps of
/// a study's shards add up to the whole study's sweep exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepCounts {
    /// The swept parameter.
    pub parameter: String,
    /// One per value, in the order given.
    pub points: Vec<PointCounts>,
}

/// One setting of a sweep, as counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointCounts {
    /// The parameter value, as shown.
    pub label: String,
    /// The parameter value.
    pub value: f64,
    /// The setting in the user's config.
    pub chosen: bool,
    /// Per scenario, in study order.
    pub scenarios: Vec<ScenarioCounts>,
}

/// One scenario's runs at one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioCounts {
    /// Scenario name.
    pub name: String,
    /// Whether it is a regression (`fail`) or harmless (`pass`).
    pub expect: model::Expect,
    /// Runs that reached deployment.
    pub deployed: u32,
    /// Of those, the ones rolled back (by analysis or a failed deploy).
    pub rolled_back: u32,
}

impl ScenarioCounts {
    /// The counts of `runs` of scenario `sc`: a run that failed its build
    /// never deployed; a deployed run not promoted was rolled back.
    fn of(sc: &Scenario, runs: &[RunOutcome]) -> Self {
        let [deployed, rolled_back] = runs
            .iter()
            .map(counted)
            .fold([0, 0], |[d, r], [a, b]| [d + a, r + b]);
        ScenarioCounts {
            name: sc.name.clone(),
            expect: match sc.file.expect {
                Expect::Pass => model::Expect::Pass,
                Expect::Fail => model::Expect::Fail,
            },
            deployed,
            rolled_back,
        }
    }
}

/// One run as [`ScenarioCounts`] counts it: `[deployed, rolled back]`.
fn counted(o: &RunOutcome) -> [u32; 2] {
    let deployed = o.decision != Decision::BuildFailed;
    [
        u32::from(deployed),
        u32::from(deployed && o.decision != Decision::Promote),
    ]
}

impl SweepCounts {
    /// Add the counts of `other`, the same sweep over other runs; `false`
    /// (and nothing added) when it is not the same sweep.
    pub fn add(&mut self, other: &SweepCounts) -> bool {
        let same = self.parameter == other.parameter
            && self.points.len() == other.points.len()
            && self.points.iter().zip(&other.points).all(|(a, b)| {
                a.label == b.label
                    && a.scenarios.len() == b.scenarios.len()
                    && a.scenarios
                        .iter()
                        .zip(&b.scenarios)
                        .all(|(x, y)| x.name == y.name && x.expect == y.expect)
            });
        if !same {
            return false;
        }
        for (a, b) in self.points.iter_mut().zip(&other.points) {
            for (x, y) in a.scenarios.iter_mut().zip(&b.scenarios) {
                x.deployed += y.deployed;
                x.rolled_back += y.rolled_back;
            }
        }
        true
    }

    /// The sweep's rates.
    pub fn to_sweep(&self) -> Sweep {
        let points = self
            .points
            .iter()
            .map(|p| {
                let (mut fa, mut fa_n, mut det, mut det_n) = (0, 0, 0, 0);
                let mut per_scenario = Vec::new();
                for sc in &p.scenarios {
                    match sc.expect {
                        model::Expect::Pass => {
                            fa += sc.rolled_back;
                            fa_n += sc.deployed;
                        }
                        model::Expect::Fail => {
                            det += sc.rolled_back;
                            det_n += sc.deployed;
                            per_scenario.push((
                                sc.name.clone(),
                                model::wilson(sc.rolled_back, sc.deployed),
                            ));
                        }
                    }
                }
                SweepPoint {
                    label: p.label.clone(),
                    value: p.value,
                    false_alarm: model::wilson(fa, fa_n),
                    detection: model::wilson(det, det_n),
                    per_scenario,
                    chosen: p.chosen,
                }
            })
            .collect();
        Sweep {
            parameter: self.parameter.clone(),
            points,
        }
    }
}

/// Run the runs of `shard` of the study at each value of `parameter`,
/// counting what the sweep's rates need. Every swept copy of a scenario is
/// validated first; a value that makes one invalid is an error.
pub fn sweep_counts(
    scenarios: &[Scenario],
    parameter: Parameter,
    values: &[f64],
    opts: StudyOptions,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SweepCounts, SimError> {
    let chosen = scenarios.first().and_then(|s| parameter.current(s));
    let name = parameter.name();
    let mut points = Vec::with_capacity(values.len());
    // Every copy is checked before anything runs.
    let copies = values
        .iter()
        .map(|&value| {
            let modified: Vec<Scenario> = scenarios
                .iter()
                .map(|s| parameter.apply(s, value))
                .collect::<Result<_, _>>()?;
            Prepared::all(&modified)?;
            Ok(modified)
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    let prepared = copies
        .iter()
        .map(|m| Prepared::all(m))
        .collect::<Result<Vec<_>, _>>()?;
    let (all, _) = shared_counts(&prepared, opts, shard, progress);
    for (&value, counts) in values.iter().zip(all) {
        points.push(PointCounts {
            label: format!("{name} = {value}"),
            value,
            chosen: chosen.is_some_and(|c| (c - value).abs() < 1e-9),
            scenarios: counts,
        });
    }
    Ok(SweepCounts {
        parameter: name.to_string(),
        points,
    })
}

/// One candidate config of `canarylab tune`: the judge and its
/// parameters, the score thresholds, the analysis interval and the
/// allowed increase, applied on top of each scenario's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Judge name (`canarylab judges`).
    pub judge: String,
    /// Its `judgeConfigurations` (none for Kayenta's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// Pass threshold.
    pub pass: f64,
    /// Marginal threshold.
    pub marginal: f64,
    /// Analysis interval, seconds (none: the scenario's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    /// Every metric's allowed increase (effect size, ratio) but those that
    /// only fail on a decrease (none: the config's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
}

impl Candidate {
    /// The candidate a scenario's own config and pipeline make.
    pub fn of(sc: &Scenario) -> Self {
        let t = sc.thresholds();
        Self {
            judge: sc.config.judge_name().to_string(),
            // an empty object is no parameters
            params: sc
                .config
                .judge
                .as_ref()
                .and_then(|j| j.judge_configurations.clone())
                .filter(|p| p.as_object().is_none_or(|o| !o.is_empty())),
            pass: t.pass,
            marginal: t.marginal,
            interval_s: None,
            allowed_increase: None,
        }
    }

    /// One line naming the candidate.
    pub fn label(&self) -> String {
        let mut s = self.judge.clone();
        if let Some(p) = &self.params {
            s.push(' ');
            s.push_str(&p.to_string());
        }
        s.push_str(&format!(", pass {} marginal {}", self.pass, self.marginal));
        if let Some(i) = self.interval_s {
            s.push_str(&format!(", interval {i} s"));
        }
        if let Some(a) = self.allowed_increase {
            s.push_str(&format!(", allowed increase {a}"));
        }
        s
    }

    /// `sc` under this candidate, validated as loading validates a
    /// scenario (errors name the scenario file and the candidate).
    pub fn apply(&self, sc: &Scenario) -> Result<Scenario, SimError> {
        let bad = |e: String| SimError::Sweep(format!("candidate {}: {e}", self.label()));
        let mut s = match self.allowed_increase {
            Some(a) => Parameter::AllowedIncrease.apply(sc, a)?,
            None => sc.clone(),
        };
        s.config.judge = Some(judge::config::JudgeConfig {
            name: self.judge.clone(),
            judge_configurations: self.params.clone(),
        });
        let p = &mut s.file.pipeline;
        p.pass = Some(self.pass);
        p.marginal = Some(self.marginal);
        if let Some(i) = self.interval_s {
            p.interval_s = Some(i);
        }
        s.validate().map_err(|e| bad(e.to_string()))?;
        if self.marginal > self.pass {
            return Err(bad(format!(
                "marginal {} above pass {}",
                self.marginal, self.pass
            )));
        }
        judge::Judge::new(&s.config).map_err(|e| bad(format!("{}: {e}", s.path.display())))?;
        Ok(s)
    }

    /// The Kayenta canary config this candidate makes of `config`: judge,
    /// score thresholds and allowed increases (the interval is the
    /// pipeline's, not the config's).
    pub fn config(&self, config: &judge::CanaryConfig) -> judge::CanaryConfig {
        let mut c = config.clone();
        c.judge = Some(judge::config::JudgeConfig {
            name: self.judge.clone(),
            judge_configurations: self.params.clone(),
        });
        c.classifier.score_thresholds = Some(judge::ScoreThresholds {
            pass: self.pass,
            marginal: self.marginal,
        });
        if let Some(a) = self.allowed_increase {
            for m in &mut c.metrics {
                let canary = &mut m.analysis_configurations.canary;
                if canary.direction != judge::Direction::Decrease {
                    canary
                        .effect_size
                        .get_or_insert_with(Default::default)
                        .allowed_increase = Some(a);
                }
            }
        }
        c
    }
}

/// The candidates `canarylab tune` may try on top of `base` (the user's
/// config as a candidate), `base` first; with `only_judge`, only that
/// judge's. Deterministic, in a fixed order: thresholds, then for
/// Kayenta's judge the allowed increase, for the others alpha, trackSd and
/// tolerance (for `grouped`, looks and the slow-start trend test on or off); each at the scenarios' own interval and at one look at the
/// end of the lifetime (`lifetime_s`).
pub fn tune_grid(base: &Candidate, only_judge: Option<&str>, lifetime_s: f64) -> Vec<Candidate> {
    let mut grid = vec![base.clone()];
    let thresholds = [(75.0, 50.0), (50.0, 25.0), (90.0, 50.0), (60.0, 40.0)];
    let intervals = [None, Some(lifetime_s)];
    let judges = [
        judge::config::NETFLIX_ACA_JUDGE,
        judge::judges::MANN_WHITNEY_ESS,
        judge::judges::RATIO_ESS,
        judge::judges::TOLERANCE,
        judge::judges::SEQUENTIAL,
        judge::judges::GROUPED,
    ];
    for name in judges
        .into_iter()
        .filter(|n| only_judge.is_none_or(|o| judge::judges::resolve(o) == *n))
    {
        for &(pass, marginal) in &thresholds {
            for &interval_s in &intervals {
                let mut push = |params: Option<serde_json::Value>, allowed: Option<f64>| {
                    let c = Candidate {
                        judge: name.to_string(),
                        params,
                        pass,
                        marginal,
                        interval_s,
                        allowed_increase: allowed,
                    };
                    if !grid.contains(&c) {
                        grid.push(c);
                    }
                };
                if name == judge::config::NETFLIX_ACA_JUDGE {
                    for allowed in [None, Some(1.05), Some(1.1), Some(1.25)] {
                        push(None, allowed);
                    }
                    continue;
                }
                if name == judge::judges::GROUPED {
                    // around `recommended` (alpha 0.1 over 3 looks, trackSd
                    // 0.028: one pod against one at 2% pod variation; a
                    // quarter of the level to the slow-start trend test)
                    for alpha in [0.02, 0.06, 0.1] {
                        for track_sd in [0.0, 0.028] {
                            for looks in [1, 3] {
                                for trend in [0.0, 0.25] {
                                    let mut params = serde_json::json!({
                                        "alpha": alpha,
                                        "trackSd": track_sd,
                                        "looks": looks,
                                    });
                                    if trend > 0.0 {
                                        params["trend"] = trend.into();
                                        params["trendDecay"] = 0.2.into();
                                        params["trendTolerance"] = 0.03.into();
                                    }
                                    push(Some(params), None);
                                }
                            }
                        }
                    }
                    continue;
                }
                for alpha in [0.005, 0.01, 0.02, 0.05] {
                    let track_sds: &[f64] = if name == judge::judges::MANN_WHITNEY_ESS {
                        &[0.0]
                    } else {
                        &[0.0, 0.005, 0.01, 0.02]
                    };
                    let tolerances: &[f64] =
                        if name == judge::judges::TOLERANCE || name == judge::judges::SEQUENTIAL {
                            &[0.02, 0.05]
                        } else {
                            &[0.0]
                        };
                    for &track_sd in track_sds {
                        for &tolerance in tolerances {
                            let mut p = serde_json::Map::new();
                            p.insert("alpha".into(), alpha.into());
                            if track_sd > 0.0 {
                                p.insert("trackSd".into(), track_sd.into());
                            }
                            if tolerance > 0.0 {
                                p.insert("tolerance".into(), tolerance.into());
                            }
                            push(Some(serde_json::Value::Object(p)), None);
                        }
                    }
                }
            }
        }
    }
    grid
}

/// `count` of `grid`'s candidates: the first (the user's config) and an
/// even spread of the rest chosen by `seed` (a seeded shuffle, so a larger
/// count tries more of the same grid).
pub fn pick_candidates(grid: &[Candidate], count: usize, seed: u64) -> Vec<Candidate> {
    if grid.len() <= count {
        return grid.to_vec();
    }
    let mut rest: Vec<(u64, &Candidate)> = grid[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| (crate::study::run_seed(seed, "tune", i as u32), c))
        .collect();
    rest.sort_by_key(|(k, _)| *k);
    std::iter::once(&grid[0])
        .chain(rest.into_iter().map(|(_, c)| c))
        .take(count)
        .cloned()
        .collect()
}

/// The counts of the runs of `shard` of every scenario under every
/// candidate (`prepared[candidate][scenario]`, each candidate's copies of
/// the same scenarios in the same order), per candidate, per scenario: each
/// (scenario, seed) is released under every candidate in turn
/// ([`Candidates`]: the seed's series generated once, verdicts shared
/// between candidates that differ only in thresholds), each run's outcome
/// the one it has on its own ([`run_shard_outcomes`] with the same
/// options). Also what was shared.
///
/// [`run_shard_outcomes`]: crate::study::run_shard_outcomes
pub fn shared_counts(
    prepared: &[Vec<Prepared<'_>>],
    opts: StudyOptions,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Vec<ScenarioCounts>>, ShareStats) {
    let n_cand = prepared.len();
    let n_sc = prepared.first().map_or(0, Vec::len);
    let per_scenario: Vec<Candidates<'_, '_>> = (0..n_sc)
        .map(|sc| Candidates::new(prepared.iter().map(|c| &c[sc]).collect()))
        .collect();
    let runs = shard.len(opts.runs) as usize;
    let jobs = n_sc * runs;
    let total = jobs * n_cand;
    const CHUNK: usize = 8;
    let chunks = jobs.div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // per candidate and scenario: (deployed, rolled back), summed over
    // threads (a sum: the same whatever the thread count)
    let tally: Mutex<(Vec<[u32; 2]>, ShareStats)> =
        Mutex::new((vec![[0, 0]; n_cand * n_sc], ShareStats::default()));
    let threads = crate::study::worker_threads(opts.threads, chunks);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut ws = judge::Workspace::new();
                let mut stats = ShareStats::default();
                let mut mine = vec![[0u32; 2]; n_cand * n_sc];
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        break;
                    }
                    let range = c * CHUNK..((c + 1) * CHUNK).min(jobs);
                    let n = range.len() * n_cand;
                    for job in range {
                        let (sc, k) = (job / runs, job % runs);
                        let name = &prepared[0][sc].scenario().name;
                        let seed = run_seed(opts.seed, name, shard.run(k as u32));
                        let outcomes = per_scenario[sc].run(seed, &mut ws, &mut stats);
                        for (cand, o) in outcomes.iter().enumerate() {
                            let [d, r] = counted(o);
                            let t = &mut mine[cand * n_sc + sc];
                            t[0] += d;
                            t[1] += r;
                        }
                    }
                    let d = done.fetch_add(n, Ordering::Relaxed) + n;
                    progress(d, total);
                }
                let mut all = tally
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (a, m) in all.0.iter_mut().zip(&mine) {
                    a[0] += m[0];
                    a[1] += m[1];
                }
                all.1.add(&stats);
            });
        }
    });
    let (tally, stats) = tally
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let counts = prepared
        .iter()
        .enumerate()
        .map(|(cand, ps)| {
            ps.iter()
                .enumerate()
                .map(|(sc, p)| {
                    let [deployed, rolled_back] = tally[cand * n_sc + sc];
                    ScenarioCounts {
                        rolled_back,
                        deployed,
                        ..ScenarioCounts::of(p.scenario(), &[])
                    }
                })
                .collect()
        })
        .collect();
    (counts, stats)
}

/// Release every scenario under every candidate, `opts.runs` times each on
/// the study's seeds (the same for every candidate: common random
/// numbers), each seed's series generated once for all candidates
/// ([`shared_counts`]), and count what a sweep counts: per candidate,
/// per scenario. Also what was shared.
pub fn candidates_counts(
    scenarios: &[Scenario],
    candidates: &[Candidate],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Vec<Vec<ScenarioCounts>>, ShareStats), SimError> {
    let modified: Vec<Vec<Scenario>> = candidates
        .iter()
        .map(|c| scenarios.iter().map(|s| c.apply(s)).collect())
        .collect::<Result<_, _>>()?;
    let prepared = modified
        .iter()
        .map(|m| Prepared::all(m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(shared_counts(&prepared, opts, Shard::WHOLE, progress))
}

/// Release every scenario under `candidate` alone, `opts.runs` times each
/// on the study's seeds (the same for every candidate: common random
/// numbers), and count what a sweep counts.
pub fn candidate_counts(
    scenarios: &[Scenario],
    candidate: &Candidate,
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<ScenarioCounts>, SimError> {
    let modified: Vec<Scenario> = scenarios
        .iter()
        .map(|s| candidate.apply(s))
        .collect::<Result<_, _>>()?;
    let prepared = Prepared::all(&modified)?;
    let outcomes = crate::study::run_shard_outcomes(&prepared, opts, Shard::WHOLE, progress);
    Ok(modified
        .iter()
        .zip(&outcomes)
        .map(|(sc, runs)| ScenarioCounts::of(sc, runs))
        .collect())
}

/// How a candidate did: the worst harmless scenario's false alarms (rate
/// and Wilson upper bound), the mean detection over the regressions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Highest false-alarm rate over the `expect = pass` scenarios.
    pub worst_false_alarm: f64,
    /// Highest Wilson 95% upper bound of those rates.
    pub worst_false_alarm_upper: f64,
    /// Mean detection over the `expect = fail` scenarios (each weighs the
    /// same).
    pub detection: f64,
}

impl Score {
    /// The score of one candidate's counts.
    pub fn of(counts: &[ScenarioCounts]) -> Self {
        let (mut worst, mut upper, mut det, mut n) = (0.0_f64, 0.0_f64, 0.0, 0u32);
        for c in counts {
            let r = model::wilson(c.rolled_back, c.deployed);
            match c.expect {
                model::Expect::Pass => {
                    worst = worst.max(r.rate);
                    upper = upper.max(r.upper);
                }
                model::Expect::Fail => {
                    det += r.rate;
                    n += 1;
                }
            }
        }
        Self {
            worst_false_alarm: worst,
            worst_false_alarm_upper: upper,
            detection: if n == 0 { 0.0 } else { det / f64::from(n) },
        }
    }

    /// Whether every harmless scenario's false-alarm rate is below
    /// `max_false_alarm` with 95% confidence (its Wilson upper bound is).
    pub fn keeps(&self, max_false_alarm: f64) -> bool {
        self.worst_false_alarm_upper <= max_false_alarm
    }
}

/// The best of `scores` that keeps `max_false_alarm`: highest detection,
/// then fewest false alarms, then the earliest; none when none keeps it.
pub fn choose(scores: &[Score], max_false_alarm: f64) -> Option<usize> {
    scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.keeps(max_false_alarm))
        .min_by(|(i, a), (j, b)| {
            b.detection
                .total_cmp(&a.detection)
                .then(a.worst_false_alarm.total_cmp(&b.worst_false_alarm))
                .then(i.cmp(j))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> Scenario {
        crate::catalog_scenario(name)
    }

    fn refused(parameter: Parameter, value: f64, words: &str) {
        let sc = scenario("latency-10pct-stepped-traffic.toml");
        let e = parameter
            .apply(&sc, value)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains(&format!("{parameter}={value}"))
                && e.contains("latency-10pct-stepped-traffic.toml")
                && e.contains(words),
            "{e}"
        );
    }

    #[test]
    fn grids_name_a_parameter() {
        let (p, values) = parse_grid("canary_weight=5, 25").expect("parses");
        assert_eq!((p, values), (Parameter::CanaryWeight, vec![5.0, 25.0]));
        for p in Parameter::ALL {
            assert_eq!(p.name().parse::<Parameter>().expect("round trip"), p);
        }
        let e = parse_grid("canary=5").expect_err("unknown").to_string();
        assert!(
            e.contains("unknown parameter \"canary\"") && e.contains("scrape_step_s"),
            "{e}"
        );
        let e = parse_grid("pass=high")
            .expect_err("not a number")
            .to_string();
        assert!(e.contains("\"high\" is not a number"), "{e}");
    }

    #[test]
    fn a_negative_lifetime_is_refused_not_a_panic() {
        refused(Parameter::LifetimeS, -5.0, "must be > 0");
    }

    #[test]
    fn a_zero_scrape_step_is_refused_not_a_hang() {
        refused(Parameter::ScrapeStepS, 0.0, "must be > 0");
    }

    #[test]
    fn a_canary_weight_above_100_is_refused() {
        refused(Parameter::CanaryWeight, 150.0, "add up to 100");
    }

    #[test]
    fn a_huge_lifetime_is_refused_not_allocated() {
        refused(Parameter::LifetimeS, 1e13, "30 days");
    }

    #[test]
    fn marginal_above_the_configs_pass_is_refused() {
        refused(Parameter::Marginal, 80.0, "marginal 80 above pass 75");
    }

    #[test]
    fn a_valid_value_changes_only_its_field() {
        let sc = scenario("latency-10pct-stepped-traffic.toml");
        let s = Parameter::CanaryWeight.apply(&sc, 20.0).expect("valid");
        let t = s.file.pipeline.traffic;
        assert_eq!((t.canary, t.baseline, t.production), (20.0, 20.0, 60.0));
        assert!(s.file.pipeline.traffic_steps.is_empty());
        let s = Parameter::ScrapeStepS.apply(&sc, 5.0).expect("valid");
        assert_eq!(s.file.analysis.scrape_step_s, 5.0);
        assert_eq!(s.file.pipeline, sc.file.pipeline);
    }

    #[test]
    fn a_sweep_with_an_invalid_value_is_an_error() {
        let sc = vec![scenario("aa-typical.toml")];
        let opts = StudyOptions {
            runs: 2,
            seed: 1,
            threads: 1,
            examples: false,
        };
        let e = sweep(&sc, Parameter::LifetimeS, &[600.0, -5.0], opts, &|_, _| {})
            .expect_err("refused")
            .to_string();
        assert!(e.contains("lifetime_s=-5"), "{e}");
    }

    #[test]
    fn the_grid_starts_with_the_users_config_and_every_candidate_applies() {
        let sc = scenario("latency-10pct.toml");
        let base = Candidate::of(&sc);
        let grid = tune_grid(&base, None, 1800.0);
        assert_eq!(grid[0], base);
        assert!(grid.len() > 100, "{}", grid.len());
        for c in &grid {
            let s = c.apply(&sc).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.config.judge_name(), c.judge);
        }
        let only = tune_grid(&base, Some(judge::config::NETFLIX_ACA_JUDGE), 1800.0);
        assert!(
            only.iter()
                .all(|c| c.judge == judge::config::NETFLIX_ACA_JUDGE)
        );
        assert!(grid.iter().any(|c| c.judge == judge::judges::GROUPED));
        let picked = pick_candidates(&grid, 100, 1);
        assert_eq!((picked.len(), &picked[0]), (100, &base));
        assert_eq!(picked, pick_candidates(&grid, 100, 1));
    }

    #[test]
    fn a_bad_candidate_is_an_error_naming_it() {
        let sc = scenario("latency-10pct.toml");
        let mut c = Candidate::of(&sc);
        c.judge = "ratio-ess".into();
        c.params = Some(serde_json::json!({"alpha": 2.0}));
        let e = c.apply(&sc).expect_err("refused").to_string();
        assert!(
            e.contains("candidate ratio-ess") && e.contains("alpha"),
            "{e}"
        );
        c.params = None;
        c.marginal = 90.0;
        let e = c.apply(&sc).expect_err("refused").to_string();
        assert!(
            e.contains("marginal 90") && e.contains("above pass 75"),
            "{e}"
        );
    }

    #[test]
    fn choosing_keeps_the_false_alarm_target_then_maximises_detection() {
        let counts = |fa: u32, det: u32| {
            vec![
                ScenarioCounts {
                    name: "aa".into(),
                    expect: model::Expect::Pass,
                    deployed: 1000,
                    rolled_back: fa,
                },
                ScenarioCounts {
                    name: "reg".into(),
                    expect: model::Expect::Fail,
                    deployed: 1000,
                    rolled_back: det,
                },
            ]
        };
        // 30 false alarms of 1000 cannot be below 2% with 95% confidence
        let scores = [
            Score::of(&counts(30, 990)),
            Score::of(&counts(5, 700)),
            Score::of(&counts(2, 700)),
            Score::of(&counts(11, 800)),
        ];
        assert!(!scores[0].keeps(0.02));
        assert_eq!(choose(&scores, 0.02), Some(3));
        assert_eq!(choose(&scores[1..3], 0.02), Some(1));
        assert_eq!(choose(&scores[..1], 0.02), None);
    }

    #[test]
    fn every_candidates_counts_are_its_counts_alone() {
        // a tune search's counts (seeds' series generated once, verdicts
        // shared) against each candidate released alone, as `canarylab
        // sim` releases it (the same seeds)
        let sc = vec![
            scenario("aa-typical.toml"),
            scenario("latency-10pct-stepped-traffic.toml"),
            scenario("slow-start.toml"),
            scenario("errors-0.5pct.toml"),
        ];
        let base = Candidate::of(&sc[0]);
        let grid = tune_grid(&base, None, 1800.0);
        let mut candidates = pick_candidates(&grid, 14, 5);
        // thresholds-only neighbours of the picks, which share verdicts
        for c in candidates.clone() {
            candidates.push(Candidate {
                pass: 95.0,
                marginal: 10.0,
                ..c
            });
        }
        let opts = StudyOptions {
            runs: 24,
            seed: 11,
            threads: 2,
            examples: false,
        };
        let (all, stats) = candidates_counts(&sc, &candidates, opts, &|_, _| {}).expect("runs");
        assert_eq!(all.len(), candidates.len());
        for (c, counts) in candidates.iter().zip(&all) {
            let alone = candidate_counts(&sc, c, opts, &|_, _| {}).expect("runs");
            assert_eq!(counts, &alone, "{}", c.label());
        }
        assert_eq!(stats.runs, (candidates.len() * sc.len() * 24) as u64);
        assert!(stats.reused_series > stats.runs / 2, "{stats:?}");
        assert!(stats.verdicts_shared > 0, "{stats:?}");
    }

    #[test]
    fn a_sweeps_counts_are_each_values_study() {
        let sc = vec![scenario("aa-typical.toml"), scenario("latency-10pct.toml")];
        let opts = StudyOptions {
            runs: 20,
            seed: 4,
            threads: 2,
            examples: false,
        };
        for (parameter, values) in [
            (Parameter::Pass, vec![60.0, 75.0, 95.0]),
            (Parameter::IntervalS, vec![300.0, 600.0, 1800.0]),
            (Parameter::CanaryWeight, vec![5.0, 20.0]),
        ] {
            let got = sweep_counts(&sc, parameter, &values, opts, Shard::WHOLE, &|_, _| {})
                .expect("runs");
            for (point, &value) in got.points.iter().zip(&values) {
                let modified: Vec<Scenario> = sc
                    .iter()
                    .map(|s| parameter.apply(s, value).expect("valid"))
                    .collect();
                let prepared = Prepared::all(&modified).expect("prepares");
                let outcomes =
                    crate::study::run_shard_outcomes(&prepared, opts, Shard::WHOLE, &|_, _| {});
                let alone: Vec<ScenarioCounts> = modified
                    .iter()
                    .zip(&outcomes)
                    .map(|(s, o)| ScenarioCounts::of(s, o))
                    .collect();
                assert_eq!(point.scenarios, alone, "{parameter}={value}");
            }
        }
    }

    #[test]
    fn candidates_share_their_seeds() {
        // the same candidate twice gives the same counts; a stricter pass
        // threshold never rolls back fewer of the same releases
        let sc = vec![scenario("aa-typical.toml"), scenario("latency-10pct.toml")];
        let opts = StudyOptions {
            runs: 40,
            seed: 3,
            threads: 2,
            examples: false,
        };
        let base = Candidate::of(&sc[0]);
        let a = candidate_counts(&sc, &base, opts, &|_, _| {}).expect("runs");
        let b = candidate_counts(&sc, &base, opts, &|_, _| {}).expect("runs");
        assert_eq!(a, b);
        let strict = Candidate {
            pass: 95.0,
            ..base.clone()
        };
        let c = candidate_counts(&sc, &strict, opts, &|_, _| {}).expect("runs");
        for (x, y) in a.iter().zip(&c) {
            assert!(y.rolled_back >= x.rolled_back, "{x:?} {y:?}");
        }
    }
}
