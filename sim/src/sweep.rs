//! Parameter sweeps: the same study at each value of a judge or pipeline
//! parameter, giving per value the false-alarm rate over the harmless
//! scenarios and the detection rate over the regressions: the data of ROC
//! and power curves. A sweep is counted first ([`SweepCounts`]), so the
//! sweeps of a sharded study's shards add up exactly.

use reports::model::{self, Sweep, SweepPoint};
use scenarios::{Expect, Scenario};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::run::{Decision, Prepared};
use crate::shard::Shard;
use crate::study::{StudyOptions, run_shard_outcomes};

/// Parameters a sweep can vary.
pub const PARAMETERS: &str = "pass, marginal, interval_s, lifetime_s, warmup_s, canary_weight, scrape_step_s, allowed_increase";

/// Parse `NAME=V1,V2,...`.
pub fn parse_grid(spec: &str) -> Result<(String, Vec<f64>), SimError> {
    let (name, values) = spec.split_once('=').ok_or_else(|| {
        SimError::Sweep(format!(
            "\"{spec}\": expected NAME=V1,V2,... (parameters: {PARAMETERS})"
        ))
    })?;
    if !PARAMETERS.split(", ").any(|p| p == name) {
        return Err(SimError::Sweep(format!(
            "unknown parameter \"{name}\" (parameters: {PARAMETERS})"
        )));
    }
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
    Ok((name.to_string(), values))
}

/// A copy of `sc` with `name` set to `value`.
fn with_parameter(sc: &Scenario, name: &str, value: f64) -> Scenario {
    let mut s = sc.clone();
    let p = &mut s.file.pipeline;
    match name {
        "pass" => p.pass = Some(value),
        "marginal" => p.marginal = Some(value),
        "interval_s" => p.interval_s = Some(value),
        "lifetime_s" => p.lifetime_s = value,
        "warmup_s" => p.warmup_s = value,
        "canary_weight" => {
            // canary and baseline get `value` percent each (or the canary
            // alone when comparing with production)
            let both = p.traffic.baseline > 0.0;
            p.traffic.canary = value;
            p.traffic.baseline = if both { value } else { 0.0 };
            p.traffic.production = 100.0 - p.traffic.canary - p.traffic.baseline;
            p.traffic_steps.clear();
        }
        "scrape_step_s" => s.file.analysis.scrape_step_s = value,
        "allowed_increase" => {
            for m in &mut s.config.metrics {
                let c = &mut m.analysis_configurations.canary;
                if c.direction != judge::Direction::Decrease {
                    c.effect_size
                        .get_or_insert_with(Default::default)
                        .allowed_increase = Some(value);
                }
            }
        }
        _ => {}
    }
    s
}

/// The value the scenarios use now, if they agree (marks the chosen point).
fn current(sc: &Scenario, name: &str) -> Option<f64> {
    let p = &sc.file.pipeline;
    match name {
        "pass" => Some(sc.thresholds().pass),
        "marginal" => Some(sc.thresholds().marginal),
        "interval_s" => p.interval_s,
        "lifetime_s" => Some(p.lifetime_s),
        "warmup_s" => Some(p.warmup_s),
        "canary_weight" => Some(p.traffic.canary),
        "scrape_step_s" => Some(sc.file.analysis.scrape_step_s),
        "allowed_increase" => Some(1.0),
        _ => None,
    }
}

/// Run the study at each value of `name`.
pub fn sweep(
    scenarios: &[Scenario],
    name: &str,
    values: &[f64],
    opts: StudyOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Sweep, SimError> {
    Ok(sweep_counts(scenarios, name, values, opts, Shard::WHOLE, progress)?.to_sweep())
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

/// Run the runs of `shard` of the study at each value of `name`, counting
/// what the sweep's rates need.
pub fn sweep_counts(
    scenarios: &[Scenario],
    name: &str,
    values: &[f64],
    opts: StudyOptions,
    shard: Shard,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SweepCounts, SimError> {
    let chosen = scenarios.first().and_then(|s| current(s, name));
    let mut points = Vec::with_capacity(values.len());
    let per_value = scenarios.len() * shard.len(opts.runs) as usize;
    for (vi, &value) in values.iter().enumerate() {
        let modified: Vec<Scenario> = scenarios
            .iter()
            .map(|s| with_parameter(s, name, value))
            .collect();
        let prepared: Vec<Prepared<'_>> = modified
            .iter()
            .map(|s| {
                // validate what the parameter changed, as loading would
                let t = s.thresholds();
                if t.marginal > t.pass {
                    return Err(SimError::Sweep(format!(
                        "{name}={value}: marginal {} above pass {}",
                        t.marginal, t.pass
                    )));
                }
                Prepared::new(s).map_err(|e| SimError::Scenario {
                    name: s.name.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let total = values.len() * per_value;
        let offset = vi * per_value;
        let outcomes =
            run_shard_outcomes(&prepared, opts, shard, &|d, _| progress(offset + d, total));
        let counts = modified
            .iter()
            .zip(&outcomes)
            .map(|(sc, runs)| {
                let deployed: Vec<_> = runs
                    .iter()
                    .filter(|o| o.decision != Decision::BuildFailed)
                    .collect();
                ScenarioCounts {
                    name: sc.name.clone(),
                    expect: match sc.file.expect {
                        Expect::Pass => model::Expect::Pass,
                        Expect::Fail => model::Expect::Fail,
                    },
                    deployed: deployed.len() as u32,
                    rolled_back: deployed
                        .iter()
                        .filter(|o| o.decision != Decision::Promote)
                        .count() as u32,
                }
            })
            .collect();
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
