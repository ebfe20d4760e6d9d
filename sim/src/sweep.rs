//! Parameter sweeps: the same study at each value of a judge or pipeline
//! parameter, giving per value the false-alarm rate over the harmless
//! scenarios and the detection rate over the regressions: the data of ROC
//! and power curves.

use reports::model::{self, Sweep, SweepPoint};
use scenarios::{Expect, Scenario};

use crate::SimError;
use crate::run::{Decision, Prepared};
use crate::study::{StudyOptions, run_all};

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
    let chosen = scenarios.first().and_then(|s| current(s, name));
    let mut points = Vec::with_capacity(values.len());
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
        let total = values.len() * scenarios.len() * opts.runs as usize;
        let offset = vi * scenarios.len() * opts.runs as usize;
        let outcomes = run_all(&prepared, opts, &|d, _| progress(offset + d, total));
        let (mut fa, mut fa_n, mut det, mut det_n) = (0, 0, 0, 0);
        let mut per_scenario = Vec::new();
        for (sc, runs) in modified.iter().zip(&outcomes) {
            let deployed: Vec<_> = runs
                .iter()
                .filter(|o| o.decision != Decision::BuildFailed)
                .collect();
            let rolled = deployed
                .iter()
                .filter(|o| o.decision != Decision::Promote)
                .count() as u32;
            let n = deployed.len() as u32;
            match sc.file.expect {
                Expect::Pass => {
                    fa += rolled;
                    fa_n += n;
                }
                Expect::Fail => {
                    det += rolled;
                    det_n += n;
                    per_scenario.push((sc.name.clone(), model::wilson(rolled, n)));
                }
            }
        }
        points.push(SweepPoint {
            label: format!("{name} = {value}"),
            value,
            false_alarm: model::wilson(fa, fa_n),
            detection: model::wilson(det, det_n),
            per_scenario,
            chosen: chosen.is_some_and(|c| (c - value).abs() < 1e-9),
        });
    }
    Ok(Sweep {
        parameter: name.to_string(),
        points,
    })
}
