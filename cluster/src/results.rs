//! A local release as the results a simulated study writes
//! ([`reports::model::Study`], driver `local`, one run), so
//! `canarylab report RUN/results.json` renders it the way it renders the
//! simulator's: the verdict, the interval scores, the series the judge saw,
//! the decision time, and the requests (and failed requests) the canary
//! served, counted by loadgen.
//!
//! Units, as in the simulator: times are **scenario seconds** (real seconds
//! divided by the time scale), so a release at `--time-scale 0.02` shows
//! the same interval bounds and decision time as its scenario; request
//! counts are **real**, what loadgen sent (at a time scale `s` the canary
//! gets `s` times the requests the scenario's full-length release would).
//! The timeline's `deploy` stage also covers starting Prometheus.
//!
//! A release that stopped on an error is one run with decision `error` and
//! a reason naming the failed step; a canary that never became ready is
//! `deploy_failed`, as in the simulator.
//!
//! Not for: rendering (that is the `reports` crate) or running anything.

use judge::Classification;
use reports::model::{IntervalDetail, MetricSeries, MetricVerdict, RunDetail, Stage, Study};
use reports::summary::{RunOutcome, summarize};
use scenarios::Scenario;

use crate::analysis::JudgedInterval;
pub use release::ReleaseEnd;

use crate::local::run::{ReleaseError, ReleaseFailure, ReleaseOutcome, ReleaseRecord, Step};

/// The verdict, the reason in words, and the record of a release.
pub fn verdict(
    result: &Result<ReleaseOutcome, ReleaseFailure>,
) -> (ReleaseEnd, String, &ReleaseRecord) {
    match result {
        Ok(out) => {
            let mut reason = out.analysis.outcome.reason.clone();
            if let Some(p) = out.record.promotion {
                reason.push_str(&format!(
                    "; production promoted: {} of {} instances replaced one at a time",
                    p.replaced, p.of
                ));
            }
            (out.decision, reason, &out.record)
        }
        Err(f) => {
            let deploy_failed = f.step == Step::Deploy
                && matches!(&f.error, ReleaseError::NotReady { instance, .. }
                    if instance.starts_with("canary") || instance.starts_with("baseline"));
            let v = if deploy_failed {
                ReleaseEnd::DeployFailed
            } else {
                ReleaseEnd::Error
            };
            (v, format!("step {} failed: {}", f.step, f.error), &f.record)
        }
    }
}

/// The study of one local release of `scenario` (driver `local`).
pub fn study(
    scenario: &Scenario,
    result: &Result<ReleaseOutcome, ReleaseFailure>,
    seed: u64,
) -> Study {
    let (verdict, reason, record) = verdict(result);
    let scale = record.plan.as_ref().map_or(1.0, |p| p.time_scale);
    let to_scenario = |t: f64, from: f64| (t - from) / scale;
    let traffic_at = record.traffic_at.unwrap_or(record.started_at);

    let end = record
        .timeline
        .iter()
        .map(|s| s.end)
        .fold(record.started_at, f64::max);
    let (decision_time, cutoff_s) = match (&record.outcome, verdict) {
        (Some(o), _) => (
            o.decided_at.as_secs_f64() / scale,
            o.decided_at.as_secs_f64(),
        ),
        (None, ReleaseEnd::DeployFailed) => (to_scenario(end, record.started_at), 0.0),
        _ => (0.0, 0.0),
    };
    let (canary_requests, blast_radius) = canary_counts(record, cutoff_s);
    let run = RunOutcome {
        decision: verdict,
        decision_time_s: decision_time,
        canary_requests,
        blast_radius,
        lead_time_s: to_scenario(end, record.started_at),
        decided_at_interval: record
            .outcome
            .as_ref()
            .and_then(|o| o.scores.len().checked_sub(1)),
        decided_by: None,
    };
    let result = summarize(scenario, &[run]);

    let intervals = record
        .intervals
        .iter()
        .map(|i| interval_detail(i, scale))
        .collect();
    let step = record.plan.as_ref().map_or(0.0, |p| p.step.as_secs_f64());
    let mut series: Vec<MetricSeries> = record
        .series
        .iter()
        .map(|pair| {
            let n = pair.values.control.len().max(pair.values.experiment.len());
            let value = |v: &[f64], k: usize| v.get(k).copied().filter(|x| x.is_finite());
            MetricSeries {
                name: pair.name.clone(),
                times_s: (0..n)
                    .map(|k| to_scenario(record.series_start + k as f64 * step, traffic_at))
                    .collect(),
                control: (0..n).map(|k| value(&pair.values.control, k)).collect(),
                experiment: (0..n).map(|k| value(&pair.values.experiment, k)).collect(),
            }
        })
        .collect();
    if series.is_empty() {
        series = measured_series(record);
    }
    let timeline = record
        .timeline
        .iter()
        .map(|s| Stage {
            name: s.name.clone(),
            start_s: to_scenario(s.start, record.started_at),
            end_s: to_scenario(s.end, record.started_at),
        })
        .collect();
    Study {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        driver: "local".into(),
        seed,
        runs_per_scenario: 1,
        config: None,
        scenarios: vec![result],
        example_runs: vec![RunDetail {
            scenario: scenario.name.clone(),
            // the caller names a peer's analysis (`canarylab local --analysis`)
            analysis: None,
            seed,
            decision: verdict,
            reason,
            intervals,
            series,
            timeline,
        }],
        sweeps: Vec::new(),
    }
}

/// An Argo Rollouts or Flagger analysis's measurements as series, one per
/// query (the canary's value, as [`measurement_value`] reads it; a peer has
/// no control), at scenario seconds since the traffic shift.
fn measured_series(record: &ReleaseRecord) -> Vec<MetricSeries> {
    let mut series: Vec<MetricSeries> = Vec::new();
    for m in &record.measurements {
        let k = match series.iter().position(|s| s.name == m.query) {
            Some(k) => k,
            None => {
                series.push(MetricSeries {
                    name: m.query.clone(),
                    times_s: Vec::new(),
                    control: Vec::new(),
                    experiment: Vec::new(),
                });
                series.len() - 1
            }
        };
        let s = &mut series[k];
        s.times_s.push(m.scenario_s);
        s.control.push(None);
        s.experiment
            .push(measurement_value(&m.value).filter(|v| v.is_finite()));
    }
    series
}

/// The number a peer's condition usually reads: a scalar, a vector's first
/// element (`result[0]`), a matrix's first series' last point; `None` for
/// an empty result or an error.
pub fn measurement_value(m: &release::Measurement) -> Option<f64> {
    match m {
        release::Measurement::Scalar(x) => Some(*x),
        release::Measurement::Vector(v) => v.first().copied(),
        release::Measurement::Matrix(m) => m.first().and_then(|s| s.last()).copied(),
        release::Measurement::Error(_) => None,
    }
}

/// A measurement in words: the number(s), `no data`, or the error.
pub fn measurement_text(m: &release::Measurement) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match m {
        release::Measurement::Scalar(x) => format!("{x:.4}"),
        release::Measurement::Vector(v) if v.is_empty() => "no data (empty vector)".into(),
        release::Measurement::Vector(v) => format!("[{}]", list(v)),
        release::Measurement::Matrix(m) if m.is_empty() => "no data (empty matrix)".into(),
        release::Measurement::Matrix(m) => format!(
            "{} series, last points [{}]",
            m.len(),
            list(
                &m.iter()
                    .filter_map(|s| s.last().copied())
                    .collect::<Vec<_>>()
            )
        ),
        release::Measurement::Error(e) => format!("error: {e}"),
    }
}

/// Requests loadgen sent to canary instances in its intervals that began
/// before `cutoff_s` (seconds since traffic started), and how many of them
/// failed (5xx or no answer).
fn canary_counts(record: &ReleaseRecord, cutoff_s: f64) -> (u64, u64) {
    let Some(load) = &record.load else {
        return (0, 0);
    };
    let mut requests = 0;
    let mut failed = 0;
    for interval in load
        .intervals
        .iter()
        .filter(|i| i.start_s < cutoff_s - 1e-9)
    {
        for t in interval
            .targets
            .iter()
            .filter(|t| t.name.starts_with("canary-"))
        {
            requests += t.requests;
            let e = &t.errors;
            failed += t.status_5xx + e.connect + e.timeout + e.reset + e.other;
        }
    }
    (requests, failed)
}

/// One judged interval as the report shows it; times are the window offsets
/// divided by `scale` (1 for a release in real time).
pub fn interval_detail(i: &JudgedInterval, scale: f64) -> IntervalDetail {
    let r = &i.result;
    IntervalDetail {
        index: i.window.index as u32,
        // The window's own offsets: the queried bounds are rounded to
        // milliseconds of unix time.
        start_s: i.window.start.as_secs_f64() / scale,
        end_s: i.window.end.as_secs_f64() / scale,
        score: r.score.score,
        classification: r.score.classification,
        metrics: r.results.iter().map(MetricVerdict::of).collect(),
    }
}

/// Which metrics of an interval did not pass, for one-line summaries.
pub fn flagged(i: &JudgedInterval) -> Vec<String> {
    i.result
        .results
        .iter()
        .filter(|m| m.classification != Classification::Pass)
        .map(|m| format!("{} {}", m.name, m.classification))
        .collect()
}
