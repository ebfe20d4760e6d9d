//! The peer adapter on the state machine alone, with a small driver that
//! carries out commands at hand-picked times: build 100 s after the webhook
//! (5 s), every pod ready 30 s after it starts, so the peer's machine
//! starts at 135 s. Decision times are worked out by hand from the peers'
//! code (file and function named in each test) and counted from the
//! traffic shift.

use std::collections::BTreeMap;

use super::*;
use crate::{Outcome, Track};

const READY: Millis = 135_000;

fn deploy() -> DeploySpec {
    DeploySpec {
        build_after_s: Some(5.0),
        deploy_timeout_s: 600.0,
        canary_pods: 2,
        baseline_pods: 3,
    }
}

fn spec(yaml: &str) -> PeerSpec {
    let bundle = peers::load("test.yaml", yaml).expect("loads");
    PeerSpec::new(
        deploy(),
        RollingUpdate {
            replicas: 4,
            max_surge: 1,
            max_unavailable: 0,
        },
        PeerPlan::of(&bundle).expect("plans"),
    )
}

/// What a release did: its outcome and every command with its time.
struct Log {
    outcome: Outcome,
    commands: Vec<(Millis, Command)>,
}

impl Log {
    /// Canary weights set, with their times.
    fn weights(&self) -> Vec<(Millis, f64)> {
        self.commands
            .iter()
            .filter_map(|(t, c)| match c {
                Command::SetWeights(s) => {
                    assert_eq!(s.baseline, 0.0);
                    assert_eq!(s.canary + s.production, 100.0);
                    Some((*t, s.canary))
                }
                _ => None,
            })
            .collect()
    }

    fn measure_times(&self) -> Vec<Millis> {
        self.commands
            .iter()
            .filter_map(|(t, c)| match c {
                Command::Measure(m) => {
                    assert_eq!(m.at, *t);
                    Some(*t)
                }
                _ => None,
            })
            .collect()
    }

    /// The decision, counted from the traffic shift.
    fn decided_after_traffic(&self) -> Millis {
        let traffic = self.outcome.traffic_at.expect("traffic reached the canary");
        self.outcome.decided_at - traffic
    }
}

/// Drive a release: `build_ok`, pods that become ready (or not), and each
/// measurement answered by `answer(query index, time)`.
fn drive(
    spec: &PeerSpec,
    build_ok: bool,
    pods_ready: bool,
    answer: impl FnMut(usize, Millis) -> Measurement,
) -> Log {
    drive_with(spec, build_ok, |_| pods_ready, answer)
}

/// [`drive`] where pods started at a time `pods_ready(time)` is false
/// never become ready.
fn drive_with(
    spec: &PeerSpec,
    build_ok: bool,
    pods_ready: impl Fn(Millis) -> bool,
    mut answer: impl FnMut(usize, Millis) -> Measurement,
) -> Log {
    let mut c = PeerRelease::new(spec, true);
    let mut queue: BTreeMap<(Millis, u64), Event> = BTreeMap::new();
    let mut seq = 0;
    let mut at = |q: &mut BTreeMap<(Millis, u64), Event>, t: Millis, e: Event| {
        seq += 1;
        q.insert((t, seq), e);
    };
    let mut commands = Vec::new();
    let mut now = 0;
    c.handle(0, Event::Start);
    for _ in 0..100_000 {
        while let Some(command) = c.poll() {
            commands.push((now, command.clone()));
            match command {
                Command::WakeAt(t) => {
                    assert!(t >= now, "a wake in the past");
                    at(&mut queue, t, Event::TimeReached);
                }
                Command::Build => at(
                    &mut queue,
                    now + 100_000,
                    Event::BuildFinished { ok: build_ok },
                ),
                Command::StartPods { track, count } => {
                    assert_ne!(track, Track::Baseline, "no baseline for a peer");
                    if pods_ready(now) {
                        for _ in 0..count {
                            at(&mut queue, now + 30_000, Event::PodReady { track });
                        }
                    }
                }
                Command::Measure(m) => {
                    let value = answer(m.query, m.at);
                    c.handle(now, Event::Measured { id: m.id, value });
                }
                Command::Judge(j) => c.handle(
                    now,
                    Event::Judged {
                        index: j.window.index,
                        score: 100.0,
                    },
                ),
                Command::Promote(_) => at(&mut queue, now + 60_000, Event::Promoted(Ok(()))),
                Command::RollBack => at(&mut queue, now + 5_000, Event::RolledBack),
                Command::Cleanup => at(&mut queue, now + 5_000, Event::CleanedUp),
                Command::SetWeights(_) => {}
                Command::StopPods { track, .. } => {
                    assert_ne!(track, Track::Baseline, "no baseline for a peer")
                }
                Command::Done(outcome) => return Log { outcome, commands },
            }
        }
        let ((t, _), event) = queue.pop_first().expect("the release goes on");
        now = t;
        c.handle(now, event);
    }
    panic!("no decision")
}

const ARGO_STEPS: &str = "      - setWeight: 20\n      - pause: {duration: 10m}\n      - setWeight: 50\n      - pause: {duration: 10m}";

/// A Rollout with a background analysis from step 0 and one metric.
fn argo(steps: &str, metric: &str) -> PeerSpec {
    argo_with("", steps, metric)
}

/// [`argo`] with Istio traffic routing (`setCanaryScale` applies).
fn argo_routed(steps: &str, metric: &str) -> PeerSpec {
    argo_with(
        "      trafficRouting: {istio: {virtualService: {name: vs}}}\n",
        steps,
        metric,
    )
}

fn argo_with(canary: &str, steps: &str, metric: &str) -> PeerSpec {
    spec(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  strategy:
    canary:
{canary}      analysis:
        templates: [{{templateName: t}}]
      steps:
{steps}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: t}}
spec:
  metrics:
  - name: success-rate
    provider:
      prometheus:
        query: sum(rate(ok[1m])) / sum(rate(all[1m]))
{metric}
"#
    ))
}

const ARGO_METRIC: &str = "    initialDelay: 2m\n    interval: 1m\n    failureLimit: 3\n    successCondition: result[0] >= 0.95";

/// analysis/analysis.go generateMetricTasks (first measurement at the
/// run's start + initialDelay, then every interval) and
/// assessMetricFailureInconclusiveOrError (Failed when failed >
/// failureLimit): with failureLimit 3 the 4th failure, at initialDelay +
/// 3 intervals after the analysis starts, aborts; rollout/canary.go
/// starts the background run at step 0, with the first setWeight.
#[test]
fn argo_aborts_at_initial_delay_plus_failure_limit_intervals() {
    let s = argo(ARGO_STEPS, ARGO_METRIC);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.5]));
    assert_eq!(log.outcome.end, ReleaseEnd::Rollback);
    assert_eq!(log.outcome.traffic_at, Some(READY));
    assert_eq!(log.decided_after_traffic(), 120_000 + 3 * 60_000);
    assert_eq!(
        log.measure_times(),
        vec![255_000, 315_000, 375_000, 435_000]
    );
    // weight 20 at the start, back to 0 on the abort; then the rollback
    assert_eq!(log.weights(), vec![(READY, 20.0), (READY + 300_000, 0.0)]);
    assert!(log.commands.iter().any(|(_, c)| *c == Command::RollBack));
    assert_eq!(log.outcome.ended_at, READY + 300_000 + 5_000);
    assert!(
        log.outcome.reason.starts_with("Argo Rollouts: "),
        "{}",
        log.outcome.reason
    );
}

/// rollout/canary.go: the rollout completes when its last step ends (two
/// 10-minute pauses), and the background run is then terminated.
#[test]
fn argo_promotes_when_the_last_step_ends() {
    let s = argo(ARGO_STEPS, ARGO_METRIC);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.decided_after_traffic(), 20 * 60_000);
    assert_eq!(log.weights(), vec![(READY, 20.0), (READY + 600_000, 50.0)]);
    // promotion (60 s) and cleanup (5 s)
    assert_eq!(log.outcome.ended_at, READY + 1_200_000 + 65_000);
    let stages: Vec<&str> = log.outcome.timeline.iter().map(|s| s.name).collect();
    assert_eq!(stages, ["build", "deploy", "analysis", "promote"]);
}

/// metricproviders/prometheus/prometheus.go processResponse: an empty
/// vector makes `result[0]` fail, an Error; errors are retried every 10 s
/// and the 5th in a row (consecutiveErrorLimit 4) aborts. The simulator
/// answers Error until it evaluates PromQL: the same decision.
#[test]
fn argo_no_data_and_query_errors_abort_after_five_errors() {
    let s = argo(ARGO_STEPS, ARGO_METRIC);
    for answer in [
        Measurement::Vector(Vec::new()),
        Measurement::Error("no evaluator".into()),
    ] {
        let log = drive(&s, true, true, |_, _| answer.clone());
        assert_eq!(log.outcome.end, ReleaseEnd::Rollback, "{answer:?}");
        assert_eq!(log.decided_after_traffic(), 120_000 + 4 * 10_000);
    }
}

/// utils/evaluate/evaluate.go EvaluateResult: neither condition true is
/// Inconclusive; with inconclusiveLimit 0 the first one ends the run, and
/// rollout/analysis.go pauses the rollout for a person.
#[test]
fn argo_inconclusive_pauses_and_ends_the_simulated_release() {
    let metric = "    initialDelay: 1m\n    interval: 1m\n    successCondition: result[0] >= 0.95\n    failureCondition: result[0] < 0.5";
    let s = argo(ARGO_STEPS, metric);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.7]));
    assert_eq!(log.outcome.end, ReleaseEnd::Paused);
    assert_eq!(log.decided_after_traffic(), 60_000);
    assert_eq!(log.outcome.ended_at, log.outcome.decided_at);
    assert!(!log.commands.iter().any(|(_, c)| *c == Command::RollBack));
}

/// A Rollout whose first steps hold no traffic: the decision time counts
/// from the first weight above 0, not from the start.
#[test]
fn argo_traffic_counts_from_the_first_weight_above_zero() {
    let steps =
        "      - pause: {duration: 1m}\n      - setWeight: 10\n      - pause: {duration: 2m}";
    let s = argo(
        steps,
        "    interval: 30s\n    successCondition: result[0] >= 0.95",
    );
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.outcome.traffic_at, Some(READY + 60_000));
    assert_eq!(log.decided_after_traffic(), 120_000);
}

fn flagger(threshold: u32) -> PeerSpec {
    spec(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: app, namespace: shop}}
spec:
  targetRef: {{name: app}}
  analysis:
    interval: 1m
    threshold: {threshold}
    stepWeight: 10
    maxWeight: 50
    metrics:
    - name: request-success-rate
      thresholdRange: {{min: 99}}
    - name: request-duration
      thresholdRange: {{max: 500}}
"#
    ))
}

/// pkg/controller/scheduler.go advanceCanary: the first tick (one interval
/// after the new revision is found) steps the weight without checks; each
/// later tick with no data fails a check (pkg/metrics/providers/
/// prometheus.go RunQuery: "no values found"); the tick that finds
/// failedChecks >= threshold rolls back: interval * (threshold + 1) after
/// the first tick.
#[test]
fn flagger_rolls_back_at_interval_times_threshold_plus_one() {
    let s = flagger(5);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(Vec::new()));
    assert_eq!(log.outcome.end, ReleaseEnd::Rollback);
    assert_eq!(log.outcome.traffic_at, Some(READY + 60_000));
    assert_eq!(log.decided_after_traffic(), 60_000 * (5 + 1));
    // one failed check per tick: the first check only
    assert_eq!(log.measure_times().len(), 5);
    assert_eq!(
        log.weights(),
        vec![(READY + 60_000, 10.0), (READY + 420_000, 0.0)]
    );
}

/// scheduler.go advanceCanary: every check passing steps the weight by
/// stepWeight; the tick after maxWeight is reached promotes: interval *
/// maxWeight / stepWeight after the first tick.
#[test]
fn flagger_promotes_at_interval_times_max_weight_over_step_weight() {
    let s = flagger(5);
    let log = drive(&s, true, true, |q, _| match q {
        0 => Measurement::Vector(vec![100.0]),
        _ => Measurement::Vector(vec![120.0]),
    });
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.decided_after_traffic(), 60_000 * 50 / 10);
    let weights: Vec<f64> = log.weights().iter().map(|w| w.1).collect();
    assert_eq!(weights, [10.0, 20.0, 30.0, 40.0, 50.0]);
    // two checks on each of the 5 ticks after the first
    assert_eq!(log.measure_times().len(), 10);
}

#[test]
fn flagger_queries_are_the_built_in_istio_checks() {
    let s = flagger(1);
    let c = PeerRelease::new(&s, false);
    let names: Vec<&str> = c.queries().iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["request-success-rate", "request-duration"]);
    assert!(c.queries()[0].promql.contains("istio_requests_total"));
}

#[test]
fn a_failed_build_ends_without_a_deploy() {
    let s = flagger(1);
    let log = drive(&s, false, true, |_, _| unreachable!("no analysis"));
    assert_eq!(log.outcome.end, ReleaseEnd::BuildFailed);
    assert_eq!(log.outcome.deploy_started, None);
    assert_eq!(log.outcome.decided_at, 105_000);
}

#[test]
fn a_crash_looping_canary_fails_the_deploy_and_is_rolled_back() {
    let s = argo(ARGO_STEPS, ARGO_METRIC);
    let log = drive(&s, true, false, |_, _| unreachable!("no analysis"));
    assert_eq!(log.outcome.end, ReleaseEnd::DeployFailed);
    assert_eq!(log.outcome.deploy_started, Some(105_000));
    assert_eq!(log.outcome.decided_at, 705_000);
    assert_eq!(log.outcome.traffic_at, None);
    assert!(log.commands.iter().any(|(_, c)| *c == Command::RollBack));
    // two canary pods, no baseline (the spec's 3 baseline pods are dropped)
    assert!(log.commands.iter().any(|(_, c)| *c
        == Command::StartPods {
            track: Track::Canary,
            count: 2
        }));
}

#[test]
fn the_operator_can_abort_during_the_analysis() {
    let s = flagger(5);
    let mut c = PeerRelease::new(&s, false);
    c.handle(0, Event::Start);
    c.handle(5_000, Event::TimeReached);
    c.handle(105_000, Event::BuildFinished { ok: true });
    c.handle(
        130_000,
        Event::PodReady {
            track: Track::Canary,
        },
    );
    c.handle(
        130_000,
        Event::PodReady {
            track: Track::Canary,
        },
    );
    // answers to nothing asked, and a judgment never asked for, are ignored
    c.handle(
        131_000,
        Event::Measured {
            id: 99,
            value: Measurement::Scalar(1.0),
        },
    );
    c.handle(
        131_000,
        Event::Judged {
            index: 1,
            score: 0.0,
        },
    );
    c.handle(140_000, Event::Operator(OperatorInput::Abort));
    let commands: Vec<Command> = std::iter::from_fn(|| c.poll()).collect();
    assert_eq!(commands.last(), Some(&Command::RollBack));
    c.handle(145_000, Event::RolledBack);
    match c.poll() {
        Some(Command::Done(o)) => {
            assert_eq!(o.end, ReleaseEnd::Rollback);
            assert_eq!(o.decided_at, 140_000);
        }
        other => panic!("{other:?}"),
    }
}

impl Log {
    /// Canary pods started (+) and stopped (-) after the deploy, with
    /// their times.
    fn scaling(&self) -> Vec<(Millis, i64)> {
        self.commands
            .iter()
            .filter(|(t, _)| *t >= READY)
            .filter_map(|(t, c)| match c {
                Command::StartPods {
                    track: Track::Canary,
                    count,
                } => Some((*t, i64::from(*count))),
                Command::StopPods {
                    track: Track::Canary,
                    count,
                } => Some((*t, -i64::from(*count))),
                _ => None,
            })
            .collect()
    }
}

/// utils/replicaset/canary.go `CalculateReplicaCountsForTrafficRoutedCanary`
/// and `GetCanaryReplicasOrWeight`: with traffic routing the canary gets
/// `setCanaryScale.replicas` pods (4: step 0's count, so the deploy
/// starts 4), or `weight`% of spec.replicas rounded up (25% of 4: 1),
/// whatever the traffic weight; `matchTrafficWeight` hands the size back
/// to the weight (50% of 4: 2). rollout/canary.go
/// `completedCurrentCanaryStep`: a `setCanaryScale` step is complete once
/// the canary is at that count (`AtDesiredReplicaCountsForCanary`), so the
/// promotion after the last step waits the 30 s its extra pod takes;
/// scaling down completes at once. Traffic is untouched by the scaling.
#[test]
fn argo_set_canary_scale_sizes_the_canary_apart_from_the_weight() {
    let steps = "      - setCanaryScale: {replicas: 4}\n      - setWeight: 20\n      - pause: {duration: 10m}\n      - setCanaryScale: {weight: 25}\n      - setWeight: 50\n      - pause: {duration: 10m}\n      - setCanaryScale: {matchTrafficWeight: true}";
    let s = argo_routed(steps, ARGO_METRIC);
    assert_eq!(s.deploy.canary_pods, 4);
    assert_eq!(s.canary_slots(), 4);
    // 4 deployed, down to 1, then 1 more
    assert_eq!(s.canary_starts(), 5);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    let traffic = READY;
    assert_eq!(log.outcome.traffic_at, Some(traffic));
    assert_eq!(
        log.scaling(),
        vec![(traffic + 600_000, -3), (traffic + 1_200_000, 1)]
    );
    assert_eq!(
        log.weights(),
        vec![(traffic, 20.0), (traffic + 600_000, 50.0)]
    );
    // the last step waits for its pod: promoted 30 s after it
    assert_eq!(log.decided_after_traffic(), 1_230_000);
}

/// rollout/canary.go: the step waits for the canary's pods; Argo's default
/// progressDeadlineSeconds (600 s) then marks the Rollout Degraded without
/// aborting it (progressDeadlineAbort is false): the simulated release ends
/// paused for a person, 600 s after the scale.
#[test]
fn argo_set_canary_scale_waits_for_pods_then_pauses_at_the_progress_deadline() {
    let steps = "      - setWeight: 20\n      - setCanaryScale: {replicas: 3}\n      - pause: {duration: 10m}";
    let s = argo_routed(steps, ARGO_METRIC);
    let log = drive_with(
        &s,
        true,
        |t| t < READY,
        |_, _| Measurement::Vector(vec![0.99]),
    );
    assert_eq!(log.outcome.end, ReleaseEnd::Paused);
    assert_eq!(log.decided_after_traffic(), 600_000);
    // step 0's count is ceil(20% of 4) = 1 (deployed), then 2 more
    assert_eq!(log.scaling(), vec![(READY, 2)]);
    assert!(
        log.outcome.reason.contains("progressDeadlineSeconds"),
        "{}",
        log.outcome.reason
    );
}

/// utils/replicaset/canary.go `UseSetCanaryScale`: without traffic routing
/// the step is ignored (no pods started or stopped) and completes at once.
#[test]
fn argo_ignores_set_canary_scale_without_traffic_routing() {
    let steps = "      - setCanaryScale: {replicas: 4}\n      - setWeight: 20\n      - pause: {duration: 10m}";
    let s = argo(steps, ARGO_METRIC);
    assert_eq!(s.canary_slots(), 2);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.outcome.traffic_at, Some(READY));
    assert!(log.scaling().is_empty(), "{:?}", log.scaling());
}

/// Production pods started (+) and stopped (-), with their times.
fn production_scaling(log: &Log) -> Vec<(Millis, i64)> {
    log.commands
        .iter()
        .filter_map(|(t, c)| match c {
            Command::StartPods {
                track: Track::Production,
                count,
            } => Some((*t, i64::from(*count))),
            Command::StopPods {
                track: Track::Production,
                count,
            } => Some((*t, -i64::from(*count))),
            _ => None,
        })
        .collect()
}

const FOLLOW_STEPS: &str = "      - setWeight: 10\n      - pause: {duration: 10m}\n      - setWeight: 60\n      - pause: {duration: 10m}";

/// utils/replicaset/canary.go `CalculateReplicaCountsForTrafficRoutedCanary`
/// without `setCanaryScale`: canary = `trafficWeightToReplicas(4, weight,
/// 100)` (ceil: 10% -> 1, 60% -> 3), stable stays at 4.
/// rollout/trafficrouting.go `reconcileTrafficRouting`: the new weight
/// waits for `AtDesiredReplicaCountsForCanary`, so weight 60 comes 30 s
/// (the 2 new pods' start) after the pause ends, and the last pause starts
/// then: promoted 1230 s after the first traffic.
#[test]
fn argo_canary_pods_follow_the_weight_with_traffic_routing() {
    let s = argo_routed(FOLLOW_STEPS, ARGO_METRIC);
    assert_eq!(s.deploy.canary_pods, 1);
    assert_eq!(s.canary_slots(), 3);
    assert_eq!(s.canary_starts(), 3);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.outcome.traffic_at, Some(READY));
    assert_eq!(log.scaling(), vec![(READY + 600_000, 2)]);
    assert_eq!(log.weights(), vec![(READY, 10.0), (READY + 630_000, 60.0)]);
    assert_eq!(log.decided_after_traffic(), 1_230_000);
    assert!(production_scaling(&log).is_empty());
}

/// utils/replicaset/canary.go `CheckMinPodsPerReplicaSet` (capped at
/// spec.replicas: 9 -> 4) and, with `dynamicStableScale`,
/// `CalculateReplicaCountsForTrafficRoutedCanary`'s stable count: the
/// larger of ceil(4 x (100 - weight)%) and ceil(4 x actual stable weight%).
/// minPodsPerReplicaSet 2: canary max(ceil(0.4), 2) = 2 at 10%, 3 at 60%.
/// Stable: 4 until the weight 10 is in force, then ceil(3.6) = 4; at the
/// 60% step, ceil(1.6) = 2 once traffic left (max(2, 2) = 2 with the
/// minimum); the abort's weight 0 brings it back to 4.
#[test]
fn argo_min_pods_and_dynamic_stable_scale() {
    let canary = "      trafficRouting: {istio: {virtualService: {name: vs}}}\n      minPodsPerReplicaSet: 2\n      dynamicStableScale: true\n";
    let s = argo_with(canary, FOLLOW_STEPS, ARGO_METRIC);
    assert_eq!(s.deploy.canary_pods, 2);
    assert_eq!(s.canary_slots(), 3);
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(log.scaling(), vec![(READY + 600_000, 1)]);
    assert_eq!(production_scaling(&log), vec![(READY + 630_000, -2)]);
    assert_eq!(log.decided_after_traffic(), 1_230_000);
    // an abort: weight 0, production back to 4
    let log = drive(&s, true, true, |_, t| {
        Measurement::Vector(vec![if t > READY + 700_000 { 0.5 } else { 0.99 }])
    });
    assert_eq!(log.outcome.end, ReleaseEnd::Rollback);
    assert_eq!(
        production_scaling(&log)
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>(),
        vec![-2, 2]
    );
    let capped = "      trafficRouting: {istio: {virtualService: {name: vs}}}\n      minPodsPerReplicaSet: 9\n";
    let s = argo_with(capped, FOLLOW_STEPS, ARGO_METRIC);
    assert_eq!(s.deploy.canary_pods, 4);
}

/// rollout/trafficrouting.go `reconcileTrafficRouting`: with
/// `dynamicStableScale` a weight that brings traffic back to the stable
/// waits for `checkReplicasAvailable(stableRS, 100 - weight)`, and on an
/// abort `calculateDesiredWeightOnAbortOrStableRollback` moves traffic back
/// only as the stable's pods become available: the production pods are
/// started before the weight. Steps 50% then 10% on 4 replicas: stable
/// ceil(4 x 50%) = 2 once traffic left it, then ceil(4 x 90%) = 4 before
/// the 10%; the abort at 50% starts 2 before its weight 0. A driver that
/// does not restart a stopped pod reserves the 2 started on the way and
/// the 2 an abort from the smallest stable (2) may start.
#[test]
fn argo_dynamic_stable_scale_starts_production_before_the_weight() {
    let canary = "      trafficRouting: {istio: {virtualService: {name: vs}}}\n      dynamicStableScale: true\n";
    let steps = "      - setWeight: 50\n      - pause: {duration: 10m}\n      - setWeight: 10\n      - pause: {duration: 10m}";
    let s = argo_with(canary, steps, ARGO_METRIC);
    assert_eq!(s.production_starts(), 4);
    // production's pods (+ started, - stopped) and weights, in command order
    let order = |log: &Log| -> Vec<String> {
        log.commands
            .iter()
            .filter_map(|(_, c)| match c {
                Command::StartPods {
                    track: Track::Production,
                    count,
                } => Some(format!("+{count}")),
                Command::StopPods {
                    track: Track::Production,
                    count,
                } => Some(format!("-{count}")),
                Command::SetWeights(split) => Some(format!("{}%", split.canary)),
                _ => None,
            })
            .collect()
    };
    let log = drive(&s, true, true, |_, _| Measurement::Vector(vec![0.99]));
    assert_eq!(log.outcome.end, ReleaseEnd::Promote);
    assert_eq!(order(&log), vec!["50%", "-2", "+2", "10%"]);
    let log = drive(&s, true, true, |_, t| {
        Measurement::Vector(vec![if t > READY + 300_000 { 0.5 } else { 0.99 }])
    });
    assert_eq!(log.outcome.end, ReleaseEnd::Rollback);
    assert_eq!(order(&log), vec!["50%", "-2", "+2", "0%"]);
    // without dynamicStableScale production is never scaled
    let routed = argo_routed(steps, ARGO_METRIC);
    assert_eq!(routed.production_starts(), 0);
    assert_eq!(argo(steps, ARGO_METRIC).production_starts(), 0);
}
