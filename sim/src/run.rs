//! One simulated release, from commit to the end, as the Spinnaker demo
//! pipeline runs it: webhook, build (may fail), deploy canary and baseline
//! (pods start, become ready, or crash-loop until the deploy times out),
//! traffic shift (an Istio VirtualService update), warmup, Kayenta's
//! analysis intervals judged by the judge crate, then a rolling promotion
//! of production or a rollback, and cleanup.
//!
//! Everything happens on the discrete-event queue in virtual time; the
//! only randomness is the run's seeded generator.

use judge::analysis::{Analysis, Decision as AnalysisDecision, Step as AnalysisStep, Window};
use judge::{Judge, MetricSetPair, Series, Workspace};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use reports::model::{IntervalDetail, MetricSeries, MetricVerdict, RunDetail, Stage};
use scenarios::{BaselineKind, Regression, Scenario};

use crate::engine::{Millis, Queue, ms, secs};
use crate::series::{CANARY, CONTROL, Generator, TrackSpec};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The analysis passed; production was updated.
    Promote,
    /// The analysis failed; the canary was removed.
    Rollback,
    /// The canary never became ready; the deploy timed out.
    DeployFailed,
    /// The build failed; nothing was deployed.
    BuildFailed,
}

impl Decision {
    /// Name used in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::DeployFailed => "deploy_failed",
            Self::BuildFailed => "build_failed",
        }
    }
}

/// What a run produced, for the study's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// How it ended.
    pub decision: Decision,
    /// Seconds from traffic shift (or deploy start, for a failed deploy) to
    /// the decision; 0 for a failed build.
    pub decision_time_s: f64,
    /// Requests the canary served before the decision.
    pub canary_requests: u64,
    /// Of those, the ones that failed (5xx, or sent to a down pod).
    pub blast_radius: u64,
    /// Commit to the end of promotion or rollback, seconds.
    pub lead_time_s: f64,
    /// Interval (0-based) at which the analysis decided, if it ran.
    pub decided_at_interval: Option<usize>,
}

/// Per-run settings derived once per scenario.
#[derive(Debug)]
pub struct Prepared<'a> {
    scenario: &'a Scenario,
    judge: Judge,
    schedule: judge::analysis::Schedule,
}

impl<'a> Prepared<'a> {
    /// Resolve the scenario's judge and schedule.
    pub fn new(scenario: &'a Scenario) -> Result<Self, judge::InputError> {
        let mut judge = Judge::new(&scenario.config)?;
        judge.set_thresholds(scenario.thresholds())?;
        Ok(Self {
            scenario,
            judge,
            schedule: scenario.schedule(),
        })
    }

    /// [`Prepared::new`] for every scenario; an error names the scenario.
    pub fn all(scenarios: &'a [Scenario]) -> Result<Vec<Self>, crate::SimError> {
        scenarios
            .iter()
            .map(|s| {
                Self::new(s).map_err(|e| crate::SimError::Scenario {
                    name: s.name.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        self.scenario
    }
}

enum Event {
    BuildStart,
    BuildDone,
    TrafficShift,
    DeployTimeout,
    Judge(Window),
    Done,
}

/// Multiply `base` by a log-normal jitter with ~10% spread.
fn jitter(base: f64, rng: &mut Xoshiro256PlusPlus) -> f64 {
    let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
    base * (0.1 * z).exp()
}

/// Simulate one release with `seed`. With `detail`, also return the full
/// record (series, intervals, timeline) for reports.
pub fn run_once(
    p: &Prepared<'_>,
    seed: u64,
    detail: bool,
    ws: &mut Workspace,
) -> (RunOutcome, Option<RunDetail>) {
    let sc = p.scenario;
    let f = &sc.file;
    let pl = &f.pipeline;
    let svc = &f.service;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut q: Queue<Event> = Queue::new();
    let mut timeline: Vec<Stage> = Vec::new();
    let mut stage = |name: &str, start: Millis, end: Millis| {
        if detail {
            timeline.push(Stage {
                name: name.into(),
                start_s: secs(start),
                end_s: secs(end),
            });
        }
    };

    q.at(ms(pl.webhook_s), Event::BuildStart);
    let mut build_started = 0;
    let mut deploy_started = 0;
    let mut traffic_at: Millis = 0;
    let mut generator: Option<Generator<'_>> = None;
    let mut analysis: Option<Analysis> = None;
    let mut outcome: Option<(Decision, String, Millis, Option<usize>)> = None;
    let mut intervals: Vec<IntervalDetail> = Vec::new();
    let step_s = f.analysis.scrape_step_s;

    while let Some(event) = q.pop() {
        let now = q.now();
        match event {
            Event::BuildStart => {
                build_started = now;
                q.after(ms(jitter(pl.build_s, &mut rng)), Event::BuildDone);
            }
            Event::BuildDone => {
                stage("build", build_started, now);
                if rng.random_bool(pl.build_failure) {
                    outcome = Some((Decision::BuildFailed, "the build failed".into(), now, None));
                    break;
                }
                deploy_started = now;
                // canary and (fresh) baseline pods start and become ready
                let crash_after = match f.regression {
                    Some(Regression::CrashLoop { crash_after_s }) => Some(crash_after_s),
                    _ => None,
                };
                let extra_ready = match f.regression {
                    Some(Regression::SlowStart { extra_ready_s, .. }) => extra_ready_s,
                    _ => 0.0,
                };
                let mut all_ready: f64 = 0.0;
                let mut canary_never_ready = false;
                let fresh_baseline = pl.baseline == BaselineKind::Fresh;
                let pods = pl.canary_replicas
                    + if fresh_baseline {
                        pl.baseline_replicas
                    } else {
                        0
                    };
                for pod in 0..pods {
                    let is_canary = pod < pl.canary_replicas;
                    let started = jitter(pl.pod_start_s, &mut rng);
                    let ready = jitter(pl.readiness_s, &mut rng)
                        + if is_canary { extra_ready } else { 0.0 };
                    if is_canary && crash_after.is_some_and(|c| c <= ready) {
                        canary_never_ready = true;
                    }
                    all_ready = all_ready.max(started + ready);
                }
                if canary_never_ready || all_ready > pl.deploy_timeout_s {
                    q.after(ms(pl.deploy_timeout_s), Event::DeployTimeout);
                } else {
                    // the VirtualService update reaches the gateways in ~1 s
                    q.after(ms(all_ready + 1.0), Event::TrafficShift);
                }
            }
            Event::DeployTimeout => {
                stage("deploy", deploy_started, now);
                let reason = format!(
                    "canary pods not ready after {} s: deploy timed out, rolled back",
                    pl.deploy_timeout_s
                );
                outcome = Some((Decision::DeployFailed, reason, now, None));
                stage("rollback", now, now + ms(5.0));
                q.after(ms(5.0), Event::Done);
            }
            Event::TrafficShift => {
                stage("deploy", deploy_started, now);
                traffic_at = now;
                let offset = |n: u32, rng: &mut Xoshiro256PlusPlus| {
                    let n = n.max(1);
                    (0..n)
                        .map(|_| {
                            svc.pod_variation
                                * rand_distr::Distribution::<f64>::sample(
                                    &rand_distr::StandardNormal,
                                    rng,
                                )
                        })
                        .sum::<f64>()
                        / f64::from(n)
                };
                let canary = TrackSpec {
                    pods: pl.canary_replicas,
                    age_at_start_s: pl.readiness_s,
                    latency_offset: offset(pl.canary_replicas, &mut rng),
                    regression: f.regression,
                };
                let control = match pl.baseline {
                    BaselineKind::Fresh => TrackSpec {
                        pods: pl.baseline_replicas,
                        age_at_start_s: pl.readiness_s,
                        latency_offset: offset(pl.baseline_replicas, &mut rng),
                        regression: None,
                    },
                    BaselineKind::Production => TrackSpec {
                        pods: svc.replicas,
                        age_at_start_s: 7.0 * 86_400.0,
                        latency_offset: offset(svc.replicas, &mut rng),
                        regression: None,
                    },
                };
                let base = pl.traffic;
                let steps = pl.traffic_steps.clone();
                let production_control = pl.baseline == BaselineKind::Production;
                let shares = Box::new(move |t: f64| {
                    let (c, b, prod) = steps
                        .iter()
                        .rev()
                        .find(|s| s.after_s <= t)
                        .map_or((base.canary, base.baseline, base.production), |s| {
                            (s.canary, s.baseline, s.production)
                        });
                    [
                        c / 100.0,
                        if production_control {
                            prod / 100.0
                        } else {
                            b / 100.0
                        },
                    ]
                });
                let mut g = Generator::new(
                    svc,
                    step_s,
                    f.analysis.rate_window_s,
                    [canary, control],
                    shares,
                    &sc.signals,
                );
                // every step up to the end of the lifetime, at once
                g.reserve(((pl.warmup_s + pl.lifetime_s) / step_s).ceil() as usize + 1);
                generator = Some(g);
                let a = match Analysis::new(&p.schedule, p.judge.thresholds()) {
                    Ok(a) => a,
                    Err(e) => {
                        outcome = Some((
                            Decision::Rollback,
                            format!("invalid analysis schedule: {e}"),
                            now,
                            None,
                        ));
                        break;
                    }
                };
                let first = a.first();
                analysis = Some(a);
                q.after(ms(first.end.as_secs_f64()), Event::Judge(first));
            }
            Event::Judge(window) => {
                let (Some(generator), Some(a)) = (generator.as_mut(), analysis.as_mut()) else {
                    break;
                };
                let start = window.start.as_secs_f64();
                let end = window.end.as_secs_f64();
                let k_lo = (start / step_s + 1e-9).floor() as usize + 1;
                let k_hi = (end / step_s + 1e-9).floor() as usize;
                generator.advance_to(k_hi, &mut rng);
                let judge_seed = seed ^ (window.index as u64).wrapping_mul(0xD134_2543_DE82_EF95);
                let (score, label, reason, metrics) = if detail {
                    let pairs: Vec<MetricSetPair> = sc
                        .config
                        .metrics
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            MetricSetPair::new(
                                m.name.clone(),
                                generator.values[CONTROL][i][k_lo - 1..k_hi].to_vec(),
                                generator.values[CANARY][i][k_lo - 1..k_hi].to_vec(),
                            )
                        })
                        .collect();
                    match p.judge.judge_pairs(&pairs, judge_seed) {
                        Ok(r) => {
                            let metrics = r
                                .results
                                .iter()
                                .map(|m| MetricVerdict {
                                    name: m.name.clone(),
                                    classification: m.classification.to_string(),
                                    ratio: Some(m.result_metadata.ratio).filter(|v| v.is_finite()),
                                    ci: m
                                        .result_metadata
                                        .mann_whitney
                                        .map(|mw| (mw.ci_lower, mw.ci_upper)),
                                    critical: m.critical,
                                })
                                .collect();
                            (
                                r.score.score,
                                r.score.classification,
                                r.score.classification_reason,
                                metrics,
                            )
                        }
                        Err(e) => (
                            0.0,
                            judge::ScoreClassification::Fail,
                            e.to_string(),
                            Vec::new(),
                        ),
                    }
                } else {
                    let series: Vec<Series<'_>> = (0..sc.signals.len())
                        .map(|i| Series {
                            control: &generator.values[CONTROL][i][k_lo - 1..k_hi],
                            experiment: &generator.values[CANARY][i][k_lo - 1..k_hi],
                        })
                        .collect();
                    let v = p.judge.judge_series(&series, judge_seed, ws);
                    (v.score, v.classification, String::new(), Vec::new())
                };
                if detail {
                    intervals.push(IntervalDetail {
                        index: window.index as u32,
                        start_s: start,
                        end_s: end,
                        score,
                        classification: label.to_string(),
                        metrics,
                    });
                }
                match a.record(score) {
                    AnalysisStep::Judge(next) => {
                        q.at(traffic_at + ms(next.end.as_secs_f64()), Event::Judge(next))
                    }
                    AnalysisStep::Done(o) => {
                        let decision = match o.decision {
                            AnalysisDecision::Promote => Decision::Promote,
                            AnalysisDecision::Rollback => Decision::Rollback,
                        };
                        let mut why = o.reason.clone();
                        if !reason.is_empty() {
                            why = format!("{why} ({reason})");
                        }
                        outcome = Some((decision, why, now, Some(o.scores.len() - 1)));
                        stage(
                            "warmup",
                            traffic_at,
                            traffic_at + ms(pl.warmup_s).min(now - traffic_at),
                        );
                        stage(
                            "analysis",
                            traffic_at + ms(pl.warmup_s).min(now - traffic_at),
                            now,
                        );
                        let tail = match decision {
                            Decision::Promote => {
                                // rolling update of production, then cleanup
                                let per_batch = (pl.max_surge + pl.max_unavailable).max(1);
                                let batches = svc.replicas.div_ceil(per_batch);
                                let mut t = 0.0;
                                for _ in 0..batches {
                                    t += jitter(pl.pod_start_s, &mut rng)
                                        + jitter(pl.readiness_s, &mut rng);
                                }
                                stage("promote", now, now + ms(t));
                                t + 5.0
                            }
                            _ => {
                                stage("rollback", now, now + ms(5.0));
                                5.0
                            }
                        };
                        q.after(ms(tail), Event::Done);
                    }
                }
            }
            Event::Done => break,
        }
    }

    let end = q.now();
    let (decision, reason, decided, interval) = outcome.unwrap_or((
        Decision::Rollback,
        "the pipeline stopped without a decision".into(),
        end,
        None,
    ));
    let (mut canary_requests, mut blast_radius) = (0, 0);
    let mut decision_time_s = 0.0;
    if let Some(g) = &generator {
        decision_time_s = secs(decided.saturating_sub(traffic_at));
        let k_decided = ((decision_time_s / step_s) + 1e-9).floor() as usize;
        for k in 1..=k_decided.min(g.len()) {
            let (r, e) = g.canary_served(k);
            canary_requests += r;
            blast_radius += e;
        }
    } else if decision == Decision::DeployFailed {
        decision_time_s = secs(decided.saturating_sub(deploy_started));
    }
    let outcome = RunOutcome {
        decision,
        decision_time_s,
        canary_requests,
        blast_radius,
        lead_time_s: secs(end),
        decided_at_interval: interval,
    };
    let detail = detail.then(|| {
        let series = match &generator {
            Some(g) => sc
                .config
                .metrics
                .iter()
                .enumerate()
                .map(|(i, m)| MetricSeries {
                    name: m.name.clone(),
                    times_s: (1..=g.len()).map(|k| k as f64 * step_s).collect(),
                    control: g.values[CONTROL][i]
                        .iter()
                        .map(|v| Some(*v).filter(|v| v.is_finite()))
                        .collect(),
                    experiment: g.values[CANARY][i]
                        .iter()
                        .map(|v| Some(*v).filter(|v| v.is_finite()))
                        .collect(),
                })
                .collect(),
            None => Vec::new(),
        };
        RunDetail {
            scenario: sc.name.clone(),
            seed,
            decision: decision.as_str().into(),
            reason: reason.clone(),
            intervals,
            series,
            timeline,
        }
    });
    (outcome, detail)
}
