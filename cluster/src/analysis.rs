//! Kayenta's canary analysis against a real Prometheus: for each interval
//! of a [`Schedule`], build every metric's query for the control and the
//! experiment scope, fetch both with `/api/v1/query_range`, align them into
//! MetricSetPairs and judge them. What to judge when, and whether to go
//! on, promote or roll back, is the release controller's
//! ([`release::kayenta::Kayenta`], the same the simulator and the real
//! modes run, here without pods or traffic): this module only carries out
//! its `Judge` commands.
//!
//! Async: it sleeps until each window has ended and queries Prometheus
//! with the async [`PromApi`]; `true` on its cancel channel (Ctrl-C) ends a
//! wait at once.
//!
//! Not for: starting processes or moving traffic (that is the caller's).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use judge::analysis::{Analysis, Schedule, Window};
use judge::{CanaryConfig, CanaryJudgeResult, Judge, MetricSetPair, ScoreThresholds};
use release::kayenta::{Kayenta, KayentaSpec};
use release::{
    AnalysisOutcome, Command, Controller, Event, Millis, RollingUpdate, Split, ms, secs,
};
use tokio::sync::watch;

use crate::local::metric_set_pair;
use crate::prom::{self, PromApi};
use crate::query::{QueryError, ScopeVars, build_query};

/// Why an analysis could not run or finish; each ends the run with a clear
/// message rather than a verdict.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The canary config has no Prometheus metric to query.
    #[error("the canary config has no Prometheus queries: {0}")]
    NoPrometheusQueries(String),
    /// A metric's query could not be built for a scope.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Prometheus failed on one metric's query for one scope.
    #[error("metric \"{metric}\", {scope} scope: {source}")]
    Prometheus {
        /// The metric's name in the canary config.
        metric: String,
        /// `control` or `experiment`.
        scope: String,
        /// Prometheus's error.
        source: Box<prom::Error>,
    },
    /// No metric had a single value in an interval's window.
    #[error(
        "interval {interval}: Prometheus returned no data for any metric in [{start:.0}, {end:.0}]; are the targets scraped and labelled as the queries expect? first query: {query}"
    )]
    NoData {
        /// The interval's index, from 1.
        interval: usize,
        /// Window start, unix seconds.
        start: f64,
        /// Window end, unix seconds.
        end: f64,
        /// The first metric's query, to try by hand.
        query: String,
    },
    /// The canary config is not valid for the judge.
    #[error("canary config: {0}")]
    Config(judge::InputError),
    /// The schedule or the score thresholds are not valid.
    #[error("bad schedule or thresholds: {0}")]
    Schedule(judge::InputError),
    /// The judge failed on an interval's pairs.
    #[error("judge: {0}")]
    Judge(#[from] judge::JudgeError),
    /// The cancel channel said `true` (Ctrl-C).
    #[error("the analysis was cancelled")]
    Cancelled,
    /// The controller stopped without promoting or rolling back.
    #[error("the analysis ended without a verdict: {0}")]
    NoVerdict(String),
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
pub async fn fetch_pairs(
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
        let fetch = async |scope: &ScopeVars, side: &str| {
            let query = build_query(config, i, scope)?;
            let points = prometheus
                .query_range_single(&query, start, end, step)
                .await
                .map_err(|source| AnalysisError::Prometheus {
                    metric: metric.name.clone(),
                    scope: format!("{side} ({})", scope.scope),
                    source: Box::new(source),
                })?;
            Ok::<_, AnalysisError>((query, points))
        };
        let (control_query, control_points) = fetch(control, "control").await?;
        let (experiment_query, experiment_points) = fetch(experiment, "experiment").await?;
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
    /// The interval's window in the schedule (offsets from the analysis start).
    pub window: Window,
    /// Window bounds in unix seconds, as queried.
    pub start: f64,
    /// Window end, unix seconds, as queried.
    pub end: f64,
    /// The control/experiment pairs that were judged, one per metric.
    pub pairs: Vec<MetricSetPair>,
    /// The judge's result for the interval.
    pub result: CanaryJudgeResult,
}

/// What [`run_analysis`] needs besides Prometheus and the config.
#[derive(Debug, Clone)]
pub struct AnalysisPlan {
    /// When each interval's window starts and ends.
    pub schedule: Schedule,
    /// The interval scores that pass or fail the canary.
    pub thresholds: ScoreThresholds,
    /// The query step (Kayenta's `step`, the scenario's scrape step).
    pub step: Duration,
    /// Unix seconds at which the canary analysis starts (window offsets
    /// count from here).
    pub started_at: f64,
    /// The control scope's query variables.
    pub control: ScopeVars,
    /// The experiment scope's query variables.
    pub experiment: ScopeVars,
    /// Seed for the judge's noise on constant series.
    pub seed: u64,
}

/// Runs the multi-interval analysis in real time: waits until each window
/// has ended (plus one step, so its last scrape has landed), fetches,
/// judges, and lets the Kayenta controller decide. `true` on `cancel`
/// ends it ([`AnalysisError::Cancelled`]), also during a wait.
pub async fn run_analysis(
    prometheus: &PromApi,
    config: &CanaryConfig,
    plan: &AnalysisPlan,
    cancel: watch::Receiver<bool>,
) -> Result<AnalysisRun, AnalysisError> {
    run_analysis_observed(prometheus, config, plan, cancel, &mut |_| {}).await
}

/// [`run_analysis`], calling `judged` with each interval as soon as it is
/// judged, so a caller keeps the intervals judged before an error.
pub async fn run_analysis_observed(
    prometheus: &PromApi,
    config: &CanaryConfig,
    plan: &AnalysisPlan,
    cancel: watch::Receiver<bool>,
    judged: &mut dyn FnMut(&JudgedInterval),
) -> Result<AnalysisRun, AnalysisError> {
    check_queries(config, &plan.control, &plan.experiment)?;
    let mut live = Live {
        prometheus,
        config,
        plan,
        cancel,
    };
    drive_analysis(config, plan, &mut live, judged).await
}

/// Where [`drive_analysis`] waits and gets its windows' pairs.
trait Windows {
    /// Returns once unix time `t` has come.
    async fn wait_until(&mut self, t: f64) -> Result<(), AnalysisError>;
    /// The pairs of the window `[start, end]`, unix seconds.
    async fn fetch(&mut self, start: f64, end: f64) -> Result<Vec<MetricSetPair>, AnalysisError>;
}

/// Real time and a real Prometheus.
struct Live<'a> {
    prometheus: &'a PromApi,
    config: &'a CanaryConfig,
    plan: &'a AnalysisPlan,
    cancel: watch::Receiver<bool>,
}

impl Windows for Live<'_> {
    async fn wait_until(&mut self, t: f64) -> Result<(), AnalysisError> {
        sleep_until(t, &mut self.cancel).await
    }

    async fn fetch(&mut self, start: f64, end: f64) -> Result<Vec<MetricSetPair>, AnalysisError> {
        fetch_pairs(
            self.prometheus,
            self.config,
            &self.plan.control,
            &self.plan.experiment,
            start,
            end,
            self.plan.step,
        )
        .await
    }
}

/// The Kayenta controller's analysis alone (no build, no pods, no traffic:
/// those are the caller's), controller time 0 being `plan.started_at`:
/// each `Judge` waits with `windows.wait_until` (unix seconds) for the
/// window's end plus one step, gets the window's pairs from
/// `windows.fetch` (unix seconds `start`, `end`) and judges them.
async fn drive_analysis(
    config: &CanaryConfig,
    plan: &AnalysisPlan,
    windows: &mut impl Windows,
    judged: &mut dyn FnMut(&JudgedInterval),
) -> Result<AnalysisRun, AnalysisError> {
    let judge = Judge::new(config).map_err(AnalysisError::Config)?;
    Analysis::new(&plan.schedule, plan.thresholds).map_err(AnalysisError::Schedule)?;
    let spec = KayentaSpec {
        build_after_s: None,
        deploy_timeout_s: 0.0,
        canary_pods: 0,
        baseline_pods: 0,
        shift_delay_s: 0.0,
        traffic: Split::PRODUCTION,
        traffic_steps: Vec::new(),
        schedule: plan.schedule,
        thresholds: plan.thresholds,
        rolling_update: RollingUpdate {
            replicas: 1,
            max_surge: 1,
            max_unavailable: 0,
        },
    };
    let mut controller = Kayenta::new(&spec, false);
    // Epoch milliseconds, as Kayenta's scopes carry them.
    let unix = |t: Millis| ((plan.started_at + secs(t)) * 1000.0).round() / 1000.0;
    let mut events = VecDeque::from([(0, Event::Start)]);
    let mut wakes = BinaryHeap::new();
    let mut now = 0;
    let mut intervals: Vec<JudgedInterval> = Vec::new();
    loop {
        if let Some((t, event)) = events.pop_front() {
            now = t;
            controller.handle(now, event);
        } else if let Some(Reverse(t)) = wakes.pop() {
            now = now.max(t);
            controller.handle(now, Event::TimeReached);
        } else {
            return Err(AnalysisError::NoVerdict(
                "the controller stopped without a decision".into(),
            ));
        }
        while let Some(command) = controller.poll() {
            match command {
                Command::WakeAt(t) => wakes.push(Reverse(t)),
                Command::Judge(request) => {
                    let window = request.window;
                    let start = unix(request.origin + ms(window.start.as_secs_f64()));
                    let end = unix(request.origin + ms(window.end.as_secs_f64()));
                    windows.wait_until(end + plan.step.as_secs_f64()).await?;
                    let pairs = windows.fetch(start, end).await?;
                    let interval = judge_window(
                        &judge,
                        config,
                        &plan.control,
                        window,
                        (start, end),
                        pairs,
                        plan.seed,
                    )?;
                    let (index, score) = (window.index, interval.result.score.score);
                    judged(&interval);
                    intervals.push(interval);
                    events.push_back((now, Event::Judged { index, score }));
                }
                // Nothing runs here: every step is done at once.
                Command::Build => events.push_back((now, Event::BuildFinished { ok: true })),
                Command::Promote(_) => events.push_back((now, Event::Promoted(Ok(())))),
                Command::RollBack => events.push_back((now, Event::RolledBack)),
                Command::Cleanup => events.push_back((now, Event::CleanedUp)),
                Command::StartPods { .. }
                | Command::StopPods { .. }
                | Command::SetWeights(_)
                | Command::Measure(_) => {}
                Command::Done(outcome) => {
                    let scores = intervals.iter().map(|i| i.result.score.score).collect();
                    let last_end = intervals.last().map(|i| i.window.end);
                    return match outcome.analysis(scores, last_end, 1.0) {
                        Some(outcome) => Ok(AnalysisRun { outcome, intervals }),
                        None => Err(AnalysisError::NoVerdict(format!(
                            "{}: {}",
                            outcome.end, outcome.reason
                        ))),
                    };
                }
            }
        }
    }
}

/// Judges one window's pairs (unix seconds `start`, `end`); a window
/// without a single value is [`AnalysisError::NoData`].
pub fn judge_window(
    judge: &Judge,
    config: &CanaryConfig,
    control: &ScopeVars,
    window: Window,
    (start, end): (f64, f64),
    pairs: Vec<MetricSetPair>,
    seed: u64,
) -> Result<JudgedInterval, AnalysisError> {
    let empty = |v: &[f64]| v.iter().all(|x| x.is_nan());
    if pairs
        .iter()
        .all(|p| empty(&p.values.control) && empty(&p.values.experiment))
    {
        return Err(AnalysisError::NoData {
            interval: window.index,
            start,
            end,
            query: build_query(config, 0, control).unwrap_or_default(),
        });
    }
    let result = judge.judge_pairs(&pairs, seed.wrapping_add(window.index as u64))?;
    Ok(JudgedInterval {
        window,
        start,
        end,
        pairs,
        result,
    })
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until unix time `t`; [`AnalysisError::Cancelled`] as soon as
/// `cancel` says `true` (at once if it already does). A closed channel
/// never cancels.
async fn sleep_until(t: f64, cancel: &mut watch::Receiver<bool>) -> Result<(), AnalysisError> {
    if *cancel.borrow() {
        return Err(AnalysisError::Cancelled);
    }
    let left = Duration::from_secs_f64((t - unix_now()).max(0.0));
    tokio::select! {
        () = tokio::time::sleep(left) => Ok(()),
        Ok(_) = cancel.wait_for(|c| *c) => Err(AnalysisError::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use release::ReleaseEnd;

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

    /// Three 100 s windows from unix time 1000, query step 10 s.
    fn plan() -> AnalysisPlan {
        AnalysisPlan {
            schedule: Schedule {
                lifetime: Duration::from_secs(300),
                interval: Some(Duration::from_secs(100)),
                warmup: Duration::ZERO,
                lookback: None,
            },
            thresholds: ScoreThresholds {
                pass: 75.0,
                marginal: 50.0,
            },
            step: Duration::from_secs(10),
            started_at: 1000.0,
            control: ScopeVars::new("baseline"),
            experiment: ScopeVars::new("canary"),
            seed: 1,
        }
    }

    fn catalog_config() -> CanaryConfig {
        let path = format!(
            "{}/../scenarios/catalog/canary-config.json",
            env!("CARGO_MANIFEST_DIR")
        );
        config(&std::fs::read_to_string(path).expect("readable"))
    }

    /// Every metric's pairs for `[start, end]`: the canary's values `k`
    /// times the control's.
    fn pairs(config: &CanaryConfig, k: f64, start: f64, end: f64) -> Vec<MetricSetPair> {
        let control: Vec<(f64, f64)> = (0..=10)
            .map(|i| (start + i as f64 * 10.0, 1.0 + (i % 5) as f64 * 0.1))
            .collect();
        let canary: Vec<(f64, f64)> = control.iter().map(|&(t, v)| (t, v * k)).collect();
        config
            .metrics
            .iter()
            .map(|m| {
                crate::metric_set_pair(
                    &m.name,
                    &control,
                    &canary,
                    start,
                    end,
                    Duration::from_secs(10),
                )
            })
            .collect()
    }

    /// The analysis's result, the waits asked for (unix seconds) and the
    /// windows fetched.
    type Driven = (
        Result<AnalysisRun, AnalysisError>,
        Vec<f64>,
        Vec<(f64, f64)>,
    );

    /// Waits and windows from two closures.
    struct Scripted<W, F> {
        wait: W,
        fetch: F,
    }

    impl<W, F> Windows for Scripted<W, F>
    where
        W: FnMut(f64) -> Result<(), AnalysisError>,
        F: FnMut(f64, f64) -> Result<Vec<MetricSetPair>, AnalysisError>,
    {
        async fn wait_until(&mut self, t: f64) -> Result<(), AnalysisError> {
            (self.wait)(t)
        }

        async fn fetch(
            &mut self,
            start: f64,
            end: f64,
        ) -> Result<Vec<MetricSetPair>, AnalysisError> {
            (self.fetch)(start, end)
        }
    }

    /// Runs the analysis with canary values `k` times the control's.
    async fn drive(k: f64) -> Driven {
        let c = catalog_config();
        let (mut waits, mut fetched, mut seen) = (Vec::new(), Vec::new(), 0);
        let result = drive_analysis(
            &c,
            &plan(),
            &mut Scripted {
                wait: |t| {
                    waits.push(t);
                    Ok(())
                },
                fetch: |start, end| {
                    fetched.push((start, end));
                    Ok(pairs(&c, k, start, end))
                },
            },
            &mut |_| seen += 1,
        )
        .await;
        if let Ok(run) = &result {
            assert_eq!(seen, run.intervals.len(), "each judged interval observed");
        }
        (result, waits, fetched)
    }

    #[tokio::test]
    async fn the_controller_judges_every_growing_window_then_promotes() {
        let (result, waits, fetched) = drive(1.0).await;
        let run = result.expect("a verdict");
        assert_eq!(run.outcome.end, ReleaseEnd::Promote);
        assert_eq!(run.outcome.scores, [100.0, 100.0, 100.0]);
        assert_eq!(run.outcome.decided_at, Duration::from_secs(300));
        // Kayenta's growing windows from the start, each fetched one step
        // after its end.
        assert_eq!(
            fetched,
            [(1000.0, 1100.0), (1000.0, 1200.0), (1000.0, 1300.0)]
        );
        assert_eq!(waits, [1110.0, 1210.0, 1310.0]);
        let indices: Vec<usize> = run.intervals.iter().map(|i| i.window.index).collect();
        assert_eq!(indices, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failing_window_rolls_back_at_once() {
        let (result, _, fetched) = drive(10.0).await;
        let run = result.expect("a verdict");
        assert_eq!(run.outcome.end, ReleaseEnd::Rollback);
        assert_eq!(fetched.len(), 1);
        assert_eq!(run.outcome.decided_at, Duration::from_secs(100));
        assert!(
            run.outcome.reason.contains("interval 1 of 3"),
            "{}",
            run.outcome.reason
        );
    }

    #[tokio::test]
    async fn a_window_without_data_stops_the_analysis() {
        let c = catalog_config();
        let err = drive_analysis(
            &c,
            &plan(),
            &mut Scripted {
                wait: |_| Ok(()),
                fetch: |start, end| {
                    let mut p = pairs(&c, 1.0, start, end);
                    for pair in &mut p {
                        pair.values.control.fill(f64::NAN);
                        pair.values.experiment.fill(f64::NAN);
                    }
                    Ok(p)
                },
            },
            &mut |_| {},
        )
        .await
        .expect_err("no data");
        assert!(
            matches!(err, AnalysisError::NoData { interval: 1, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_cancelled_wait_stops_before_fetching() {
        let c = catalog_config();
        let mut fetched = 0;
        let err = drive_analysis(
            &c,
            &plan(),
            &mut Scripted {
                wait: |_| Err(AnalysisError::Cancelled),
                fetch: |start, end| {
                    fetched += 1;
                    Ok(pairs(&c, 1.0, start, end))
                },
            },
            &mut |_| {},
        )
        .await
        .expect_err("cancelled");
        assert!(matches!(err, AnalysisError::Cancelled), "{err}");
        assert_eq!(fetched, 0);
    }

    #[tokio::test]
    async fn an_unusable_schedule_is_refused_before_any_wait() {
        let mut p = plan();
        p.schedule.lifetime = Duration::ZERO;
        let err = drive_analysis(
            &catalog_config(),
            &p,
            &mut Scripted {
                wait: |_| panic!("no wait"),
                fetch: |_, _| panic!("no fetch"),
            },
            &mut |_| {},
        )
        .await
        .expect_err("bad schedule");
        assert!(matches!(err, AnalysisError::Schedule(_)), "{err}");
    }

    #[tokio::test]
    async fn cancel_stops_the_wait() {
        // Already cancelled: at once.
        let (_tx, mut rx) = watch::channel(true);
        assert!(matches!(
            sleep_until(unix_now() + 3600.0, &mut rx).await,
            Err(AnalysisError::Cancelled)
        ));
        // Cancelled during an hour's wait: the wait ends (the guard only
        // keeps a broken build from hanging).
        let (tx, mut rx) = watch::channel(false);
        let wait = tokio::spawn(async move { sleep_until(unix_now() + 3600.0, &mut rx).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send_replace(true);
        let got = tokio::time::timeout(Duration::from_secs(600), wait)
            .await
            .expect("ended by the cancel channel")
            .expect("joins");
        assert!(matches!(got, Err(AnalysisError::Cancelled)));
        // A closed channel never cancels: the time comes.
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        assert!(sleep_until(unix_now() + 0.05, &mut rx).await.is_ok());
    }
}
