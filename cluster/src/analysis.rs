//! Kayenta's canary analysis against a real Prometheus: for each interval
//! of a [`Schedule`], build every metric's query for the control and the
//! experiment scope, fetch both with `/api/v1/query_range`, align them into
//! MetricSetPairs and judge them; [`judge::analysis::Analysis`] decides
//! whether to go on, promote or roll back.
//!
//! Blocking by design (it sleeps until each window has ended and makes
//! blocking HTTP calls): run it on its own thread or in
//! `tokio::task::spawn_blocking` while traffic flows. A cancel flag stops
//! it between sleeps (Ctrl-C).
//!
//! Not for: starting processes or moving traffic (that is the caller's).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use judge::analysis::{Analysis, Schedule, Step, Window};
use judge::{CanaryConfig, CanaryJudgeResult, Judge, MetricSetPair, ScoreThresholds};
use release::AnalysisOutcome;

use crate::local::metric_set_pair;
use crate::prom::{self, PromApi};
use crate::query::{QueryError, ScopeVars, build_query};

/// Why an analysis could not run or finish; each ends the run with a clear
/// message rather than a verdict.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("the canary config has no Prometheus queries: {0}")]
    NoPrometheusQueries(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("metric \"{metric}\", {scope} scope: {source}")]
    Prometheus {
        metric: String,
        scope: String,
        source: Box<prom::Error>,
    },
    #[error(
        "interval {interval}: Prometheus returned no data for any metric in [{start:.0}, {end:.0}]; are the targets scraped and labelled as the queries expect? first query: {query}"
    )]
    NoData {
        interval: usize,
        start: f64,
        end: f64,
        query: String,
    },
    #[error("canary config: {0}")]
    Config(judge::InputError),
    #[error("bad schedule or thresholds: {0}")]
    Schedule(judge::InputError),
    #[error("judge: {0}")]
    Judge(#[from] judge::JudgeError),
    #[error("the analysis was cancelled")]
    Cancelled,
}

/// Checks before anything starts that every metric of `config` yields a
/// query for both scopes (bad input must not touch a running system).
pub fn check_queries(
    config: &CanaryConfig,
    control: &ScopeVars,
    experiment: &ScopeVars,
) -> Result<(), AnalysisError> {
    let mut prometheus_metrics = 0;
    for (i, metric) in config.metrics.iter().enumerate() {
        let q = &metric.query;
        let is_prometheus = q.kind.as_deref() == Some("prometheus")
            || (q.kind.is_none()
                && (q.metric_name.is_some()
                    || q.custom_inline_template.is_some()
                    || q.custom_filter_template.is_some()
                    || q.custom_filter.is_some()));
        if !is_prometheus {
            continue;
        }
        prometheus_metrics += 1;
        build_query(config, i, control)?;
        build_query(config, i, experiment)?;
    }
    if prometheus_metrics == 0 {
        let names: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
        return Err(AnalysisError::NoPrometheusQueries(format!(
            "none of its metrics ({}) has a query of type \"prometheus\"",
            names.join(", ")
        )));
    }
    Ok(())
}

/// Fetches every metric's control and experiment series for `[start, end]`
/// (unix seconds) and aligns them on the `step` grid. Each pair records its
/// two queries under `attributes`, as Kayenta's pairs do.
pub fn fetch_pairs(
    prometheus: &PromApi,
    config: &CanaryConfig,
    control: &ScopeVars,
    experiment: &ScopeVars,
    start: f64,
    end: f64,
    step: Duration,
) -> Result<Vec<MetricSetPair>, AnalysisError> {
    let mut pairs = Vec::with_capacity(config.metrics.len());
    for (i, metric) in config.metrics.iter().enumerate() {
        let fetch = |scope: &ScopeVars, side: &str| {
            let query = build_query(config, i, scope)?;
            let points = prometheus
                .query_range_single(&query, start, end, step)
                .map_err(|source| AnalysisError::Prometheus {
                    metric: metric.name.clone(),
                    scope: format!("{side} ({})", scope.scope),
                    source: Box::new(source),
                })?;
            Ok::<_, AnalysisError>((query, points))
        };
        let (control_query, control_points) = fetch(control, "control")?;
        let (experiment_query, experiment_points) = fetch(experiment, "experiment")?;
        let mut pair = metric_set_pair(
            &metric.name,
            &control_points,
            &experiment_points,
            start,
            end,
            step,
        );
        pair.attributes = Some(serde_json::json!({
            "control": { "query": control_query },
            "experiment": { "query": experiment_query },
        }));
        pairs.push(pair);
    }
    Ok(pairs)
}

/// How one analysis went.
#[derive(Debug, Clone)]
pub struct AnalysisRun {
    /// Promote or roll back, why, the interval scores and when.
    pub outcome: AnalysisOutcome,
    /// Per judged interval: its window, its pairs and the judge's result.
    pub intervals: Vec<JudgedInterval>,
}

/// One judged interval.
#[derive(Debug, Clone)]
pub struct JudgedInterval {
    pub window: Window,
    /// Window bounds in unix seconds, as queried.
    pub start: f64,
    pub end: f64,
    pub pairs: Vec<MetricSetPair>,
    pub result: CanaryJudgeResult,
}

/// What [`run_analysis`] needs besides Prometheus and the config.
#[derive(Debug, Clone)]
pub struct AnalysisPlan {
    pub schedule: Schedule,
    pub thresholds: ScoreThresholds,
    /// The query step (Kayenta's `step`, the scenario's scrape step).
    pub step: Duration,
    /// Unix seconds at which the canary analysis starts (window offsets
    /// count from here).
    pub started_at: f64,
    pub control: ScopeVars,
    pub experiment: ScopeVars,
    /// Seed for the judge's noise on constant series.
    pub seed: u64,
}

/// Runs the multi-interval analysis in real time: waits until each window
/// has ended (plus one step, so its last scrape has landed), fetches,
/// judges, and lets [`Analysis`] decide. `cancel` is checked every 100 ms.
pub fn run_analysis(
    prometheus: &PromApi,
    config: &CanaryConfig,
    plan: &AnalysisPlan,
    cancel: &AtomicBool,
) -> Result<AnalysisRun, AnalysisError> {
    run_analysis_observed(prometheus, config, plan, cancel, &mut |_| {})
}

/// [`run_analysis`], calling `judged` with each interval as soon as it is
/// judged, so a caller keeps the intervals judged before an error.
pub fn run_analysis_observed(
    prometheus: &PromApi,
    config: &CanaryConfig,
    plan: &AnalysisPlan,
    cancel: &AtomicBool,
    judged: &mut dyn FnMut(&JudgedInterval),
) -> Result<AnalysisRun, AnalysisError> {
    check_queries(config, &plan.control, &plan.experiment)?;
    let judge = Judge::new(config).map_err(AnalysisError::Config)?;
    let mut analysis =
        Analysis::new(&plan.schedule, plan.thresholds).map_err(AnalysisError::Schedule)?;
    let mut window = analysis.first();
    let mut intervals = Vec::new();
    loop {
        // Epoch milliseconds, as Kayenta's scopes carry them.
        let ms = |t: f64| (t * 1000.0).round() / 1000.0;
        let start = ms(plan.started_at + window.start.as_secs_f64());
        let end = ms(plan.started_at + window.end.as_secs_f64());
        sleep_until(end + plan.step.as_secs_f64(), cancel)?;
        let pairs = fetch_pairs(
            prometheus,
            config,
            &plan.control,
            &plan.experiment,
            start,
            end,
            plan.step,
        )?;
        let empty = |v: &[f64]| v.iter().all(|x| x.is_nan());
        if pairs
            .iter()
            .all(|p| empty(&p.values.control) && empty(&p.values.experiment))
        {
            return Err(AnalysisError::NoData {
                interval: window.index,
                start,
                end,
                query: build_query(config, 0, &plan.control).unwrap_or_default(),
            });
        }
        let result = judge.judge_pairs(&pairs, plan.seed.wrapping_add(window.index as u64))?;
        let score = result.score.score;
        let interval = JudgedInterval {
            window,
            start,
            end,
            pairs,
            result,
        };
        judged(&interval);
        intervals.push(interval);
        match analysis.record(score) {
            Step::Judge(next) => window = next,
            Step::Done(outcome) => {
                return Ok(AnalysisRun {
                    outcome: outcome.into(),
                    intervals,
                });
            }
        }
    }
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn sleep_until(t: f64, cancel: &AtomicBool) -> Result<(), AnalysisError> {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(AnalysisError::Cancelled);
        }
        let left = t - unix_now();
        if left <= 0.0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs_f64(left.min(0.1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> CanaryConfig {
        CanaryConfig::from_json(json).expect("test config parses")
    }

    #[test]
    fn config_without_prometheus_queries_is_refused() {
        let c = config(
            r#"{"metrics":[{"name":"cpu","query":{"type":"stackdriver","metricType":"x"},
                "groups":["g"],"analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#,
        );
        let err = check_queries(&c, &ScopeVars::new("b"), &ScopeVars::new("c"))
            .expect_err("no prometheus");
        assert!(
            matches!(err, AnalysisError::NoPrometheusQueries(_)),
            "{err}"
        );
        assert!(err.to_string().contains("cpu"), "{err}");
    }

    #[test]
    fn unresolved_variable_is_found_before_anything_runs() {
        let c = config(
            r#"{"metrics":[{"name":"p50","query":{"type":"prometheus",
                "customInlineTemplate":"PromQL:up{a=\"${cluster}\"}"},
                "groups":["g"],"analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#,
        );
        let err =
            check_queries(&c, &ScopeVars::new("b"), &ScopeVars::new("c")).expect_err("unresolved");
        assert!(err.to_string().contains("${cluster}"), "{err}");
    }

    #[test]
    fn repo_configs_pass_the_check() {
        for path in [
            "examples/canary-config.json",
            "scenarios/catalog/canary-config.json",
        ] {
            let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
            let c = config(&std::fs::read_to_string(full).expect("readable"));
            check_queries(&c, &ScopeVars::new("baseline"), &ScopeVars::new("canary"))
                .expect("buildable");
        }
    }

    #[test]
    fn cancel_stops_the_wait() {
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            sleep_until(unix_now() + 60.0, &cancel),
            Err(AnalysisError::Cancelled)
        ));
    }
}
