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
    let per_value = scenarios.len() * shard.len(opts.runs) as usize;
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
    for (vi, (&value, modified)) in values.iter().zip(&copies).enumerate() {
        let prepared = Prepared::all(modified)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/catalog")
            .join(name);
        Scenario::load(&path, None).expect("catalog scenario loads")
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
}
