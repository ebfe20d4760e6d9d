//! Every transition of the Kayenta pipeline, on the state machine alone.

use std::time::Duration;

use super::*;
use crate::{Outcome, Stage, Track};

fn spec() -> KayentaSpec {
    KayentaSpec {
        build_after_s: Some(5.0),
        deploy_timeout_s: 600.0,
        canary_pods: 2,
        baseline_pods: 1,
        shift_delay_s: 1.0,
        traffic: Split {
            canary: 10.0,
            baseline: 10.0,
            production: 80.0,
        },
        traffic_steps: Vec::new(),
        schedule: Schedule {
            lifetime: Duration::from_secs(1800),
            interval: Some(Duration::from_secs(600)),
            warmup: Duration::from_secs(300),
            lookback: None,
        },
        thresholds: ScoreThresholds {
            pass: 75.0,
            marginal: 50.0,
        },
        rolling_update: RollingUpdate {
            replicas: 4,
            max_surge: 1,
            max_unavailable: 0,
        },
    }
}

fn drain(c: &mut Kayenta<'_>) -> Vec<Command> {
    std::iter::from_fn(|| c.poll()).collect()
}

fn outcome(commands: &[Command]) -> Option<&Outcome> {
    commands.iter().find_map(|c| match c {
        Command::Done(o) => Some(o),
        _ => None,
    })
}

/// Start, build (ok) at 5 s taking 100 s; returns the deploy's commands.
fn built(c: &mut Kayenta<'_>) -> Vec<Command> {
    c.handle(0, Event::Start);
    assert_eq!(drain(c), vec![Command::WakeAt(5_000)]);
    c.handle(5_000, Event::TimeReached);
    assert_eq!(drain(c), vec![Command::Build]);
    c.handle(105_000, Event::BuildFinished { ok: true });
    drain(c)
}

/// Built and every pod ready at 130 s; traffic shifts at 131 s. Returns
/// the commands at the shift.
fn shifted(c: &mut Kayenta<'_>) -> Vec<Command> {
    built(c);
    for track in [Track::Canary, Track::Canary, Track::Baseline] {
        c.handle(130_000, Event::PodReady { track });
    }
    assert_eq!(drain(c), vec![Command::WakeAt(131_000)]);
    c.handle(131_000, Event::TimeReached);
    drain(c)
}

fn judge_request(commands: &[Command]) -> JudgeRequest {
    commands
        .iter()
        .find_map(|c| match c {
            Command::Judge(r) => Some(*r),
            _ => None,
        })
        .expect("a judge request")
}

/// Wakes at the next window's end and judges it with `score`.
fn judge_next(c: &mut Kayenta<'_>, wake: Millis, score: f64) -> Vec<Command> {
    c.handle(wake, Event::TimeReached);
    let r = judge_request(&drain(c));
    assert_eq!(r.origin + ms(r.window.end.as_secs_f64()), wake);
    c.handle(
        wake,
        Event::Judged {
            index: r.window.index,
            score,
        },
    );
    drain(c)
}

#[test]
fn build_failure_ends_at_once_without_a_deploy() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    c.handle(0, Event::Start);
    drain(&mut c);
    c.handle(5_000, Event::TimeReached);
    drain(&mut c);
    c.handle(185_000, Event::BuildFinished { ok: false });
    let commands = drain(&mut c);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::BuildFailed);
    assert_eq!((o.decided_at, o.ended_at), (185_000, 185_000));
    assert_eq!(o.deploy_started, None);
    assert_eq!(o.reason, "the build failed");
    assert_eq!(
        o.timeline,
        vec![Stage {
            name: "build",
            start: 5_000,
            end: 185_000
        }]
    );
}

#[test]
fn deploy_starts_every_pod_and_sets_the_deadline() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    assert_eq!(
        built(&mut c),
        vec![
            Command::StartPods {
                track: Track::Canary,
                count: 2
            },
            Command::StartPods {
                track: Track::Baseline,
                count: 1
            },
            Command::WakeAt(705_000),
        ]
    );
}

#[test]
fn deploy_timeout_rolls_back() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    built(&mut c);
    c.handle(
        200_000,
        Event::PodReady {
            track: Track::Canary,
        },
    );
    c.handle(
        210_000,
        Event::PodReady {
            track: Track::Baseline,
        },
    );
    assert!(drain(&mut c).is_empty(), "one canary pod is not ready yet");
    c.handle(705_000, Event::TimeReached);
    assert_eq!(drain(&mut c), vec![Command::RollBack]);
    c.handle(710_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::DeployFailed);
    assert_eq!((o.decided_at, o.ended_at), (705_000, 710_000));
    assert_eq!(o.deploy_started, Some(105_000));
    assert_eq!(o.traffic_at, None);
    assert_eq!(
        o.reason,
        "canary pods not ready after 600 s: deploy timed out, rolled back"
    );
    let names: Vec<_> = o
        .timeline
        .iter()
        .map(|s| (s.name, s.start, s.end))
        .collect();
    assert_eq!(
        names,
        vec![
            ("build", 5_000, 105_000),
            ("deploy", 105_000, 705_000),
            ("rollback", 705_000, 710_000)
        ]
    );
}

#[test]
fn crash_loop_is_never_ready_and_times_out() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    built(&mut c);
    c.handle(
        110_000,
        Event::PodReady {
            track: Track::Baseline,
        },
    );
    for t in [125_000, 185_000, 245_000] {
        for _ in 0..2 {
            c.handle(
                t,
                Event::PodCrashed {
                    track: Track::Canary,
                },
            );
        }
    }
    assert!(drain(&mut c).is_empty());
    c.handle(705_000, Event::TimeReached);
    assert_eq!(drain(&mut c), vec![Command::RollBack]);
    c.handle(710_000, Event::RolledBack);
    assert_eq!(
        outcome(&drain(&mut c)).map(|o| o.end),
        Some(ReleaseEnd::DeployFailed)
    );
}

#[test]
fn a_pod_ready_at_the_deadline_is_in_time_and_a_late_one_is_ignored() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    built(&mut c);
    for track in [Track::Canary, Track::Canary, Track::Baseline] {
        c.handle(705_000, Event::PodReady { track });
    }
    c.handle(705_000, Event::TimeReached);
    assert_eq!(drain(&mut c), vec![Command::WakeAt(706_000)]);

    let mut late = Kayenta::new(&s, false);
    built(&mut late);
    late.handle(705_000, Event::TimeReached);
    assert_eq!(drain(&mut late), vec![Command::RollBack]);
    late.handle(
        705_001,
        Event::PodReady {
            track: Track::Canary,
        },
    );
    assert!(drain(&mut late).is_empty());
}

#[test]
fn traffic_shift_sets_weights_then_waits_for_the_first_window() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    let commands = shifted(&mut c);
    // warmup 300 s + interval 600 s after the shift at 131 s
    assert_eq!(
        commands,
        vec![Command::SetWeights(s.traffic), Command::WakeAt(1_031_000)]
    );
    // the stale deploy deadline does nothing
    c.handle(705_000, Event::TimeReached);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn stepped_traffic_sets_each_split_at_its_time_before_a_window_then() {
    let mut s = spec();
    let step = |canary| Split {
        canary,
        baseline: canary,
        production: 100.0 - 2.0 * canary,
    };
    s.traffic_steps = vec![(600.0, step(25.0)), (900.0, step(50.0))];
    let mut c = Kayenta::new(&s, false);
    assert_eq!(
        shifted(&mut c),
        vec![
            Command::SetWeights(s.traffic),
            Command::WakeAt(731_000),
            Command::WakeAt(1_031_000),
            Command::WakeAt(1_031_000),
        ]
    );
    c.handle(731_000, Event::TimeReached);
    assert_eq!(drain(&mut c), vec![Command::SetWeights(step(25.0))]);
    // the step and the first window end together: weights first
    c.handle(1_031_000, Event::TimeReached);
    let commands = drain(&mut c);
    assert_eq!(commands[0], Command::SetWeights(step(50.0)));
    assert!(matches!(commands[1], Command::Judge(_)), "{commands:?}");
    assert_eq!(commands.len(), 2);
}

#[test]
fn warmup_delays_the_first_window_which_grows_from_the_warmup() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    shifted(&mut c);
    c.handle(1_030_999, Event::TimeReached);
    assert!(drain(&mut c).is_empty(), "not before the window's end");
    c.handle(1_031_000, Event::TimeReached);
    let r = judge_request(&drain(&mut c));
    assert_eq!(r.origin, 131_000);
    assert_eq!(r.window.index, 1);
    assert_eq!(r.window.start, Duration::from_secs(300));
    assert_eq!(r.window.end, Duration::from_secs(900));
}

#[test]
fn passing_every_window_promotes_with_a_rolling_update_then_cleans_up() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    shifted(&mut c);
    assert_eq!(
        judge_next(&mut c, 1_031_000, 90.0),
        vec![Command::WakeAt(1_631_000)]
    );
    assert_eq!(
        judge_next(&mut c, 1_631_000, 80.0),
        vec![Command::WakeAt(2_231_000)]
    );
    let update = RollingUpdate {
        replicas: 4,
        max_surge: 1,
        max_unavailable: 0,
    };
    assert_eq!(
        judge_next(&mut c, 2_231_000, 75.0),
        vec![Command::Promote(update)]
    );
    assert_eq!((update.per_batch(), update.batches()), (1, 4));
    c.handle(2_400_000, Event::Promoted(Ok(())));
    assert_eq!(drain(&mut c), vec![Command::Cleanup]);
    c.handle(2_405_000, Event::CleanedUp);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Promote);
    assert_eq!((o.decided_at, o.ended_at), (2_231_000, 2_405_000));
    assert_eq!(o.traffic_at, Some(131_000));
    assert_eq!(o.decided_at_interval, Some(2));
    assert!(
        o.reason.contains("at or above the pass threshold"),
        "{}",
        o.reason
    );
    let names: Vec<_> = o
        .timeline
        .iter()
        .map(|s| (s.name, s.start, s.end))
        .collect();
    assert_eq!(
        names,
        vec![
            ("build", 5_000, 105_000),
            ("deploy", 105_000, 131_000),
            ("warmup", 131_000, 431_000),
            ("analysis", 431_000, 2_231_000),
            ("promote", 2_231_000, 2_400_000),
        ]
    );
    assert!(c.poll().is_none());
}

#[test]
fn a_window_at_or_below_marginal_rolls_back_at_once() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    shifted(&mut c);
    assert_eq!(judge_next(&mut c, 1_031_000, 50.0), vec![Command::RollBack]);
    c.handle(1_036_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Rollback);
    assert_eq!(o.decided_at_interval, Some(0));
    assert_eq!((o.decided_at, o.ended_at), (1_031_000, 1_036_000));
    assert!(
        o.reason.contains("not above the marginal threshold"),
        "{}",
        o.reason
    );
    assert_eq!(
        o.timeline.last().map(|s| (s.name, s.start, s.end)),
        Some(("rollback", 1_031_000, 1_036_000))
    );
}

#[test]
fn a_marginal_final_window_rolls_back() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    shifted(&mut c);
    judge_next(&mut c, 1_031_000, 90.0);
    judge_next(&mut c, 1_631_000, 90.0);
    assert_eq!(judge_next(&mut c, 2_231_000, 74.9), vec![Command::RollBack]);
    c.handle(2_236_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Rollback);
    assert_eq!(o.decided_at_interval, Some(2));
    assert!(
        o.reason.contains("marginal: below the pass threshold"),
        "{}",
        o.reason
    );
}

#[test]
fn warmup_stage_is_cut_short_by_an_early_operator_abort() {
    let s = spec();
    let mut c = Kayenta::new(&s, true);
    shifted(&mut c);
    c.handle(231_000, Event::Operator(OperatorInput::Abort));
    assert_eq!(drain(&mut c), vec![Command::RollBack]);
    c.handle(236_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Rollback);
    assert_eq!(o.reason, "aborted by the operator");
    let stages: Vec<_> = o
        .timeline
        .iter()
        .map(|s| (s.name, s.start, s.end))
        .collect();
    assert_eq!(stages[2], ("warmup", 131_000, 231_000));
    assert_eq!(stages[3], ("analysis", 231_000, 231_000));
    // the window's timer, still pending in a driver, does nothing now
    c.handle(1_031_000, Event::TimeReached);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn operator_promote_skips_the_rest_of_the_analysis() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    shifted(&mut c);
    judge_next(&mut c, 1_031_000, 90.0);
    c.handle(1_100_000, Event::Operator(OperatorInput::Promote));
    assert_eq!(drain(&mut c), vec![Command::Promote(s.rolling_update)]);
    c.handle(1_200_000, Event::Operator(OperatorInput::Abort));
    assert!(
        drain(&mut c).is_empty(),
        "a promotion under way is not aborted"
    );
}

#[test]
fn a_failed_promotion_is_rolled_back_and_ends_in_error() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    shifted(&mut c);
    judge_next(&mut c, 1_031_000, 90.0);
    judge_next(&mut c, 1_631_000, 90.0);
    judge_next(&mut c, 2_231_000, 90.0);
    c.handle(
        2_300_000,
        Event::Promoted(Err("production-new-1 not ready".into())),
    );
    assert_eq!(drain(&mut c), vec![Command::RollBack]);
    c.handle(2_305_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Error);
    assert!(
        o.reason
            .ends_with("the promotion failed: production-new-1 not ready")
    );
}

#[test]
fn an_invalid_schedule_rolls_back_at_the_shift() {
    let mut s = spec();
    s.schedule.lifetime = Duration::ZERO;
    let mut c = Kayenta::new(&s, false);
    // the pods are deployed: they are rolled back
    assert_eq!(
        shifted(&mut c),
        vec![Command::SetWeights(s.traffic), Command::RollBack]
    );
    c.handle(140_000, Event::RolledBack);
    let commands = drain(&mut c);
    let o = outcome(&commands).expect("done");
    assert_eq!(o.end, ReleaseEnd::Rollback);
    assert!(
        o.reason.starts_with("invalid analysis schedule"),
        "{}",
        o.reason
    );
}

#[test]
fn without_a_build_the_release_starts_at_the_deploy() {
    let mut s = spec();
    s.build_after_s = None;
    s.baseline_pods = 0;
    let mut c = Kayenta::new(&s, false);
    c.handle(0, Event::Start);
    assert_eq!(
        drain(&mut c),
        vec![
            Command::StartPods {
                track: Track::Canary,
                count: 2
            },
            Command::WakeAt(600_000)
        ]
    );
}

#[test]
fn unexpected_events_are_ignored() {
    let s = spec();
    let mut c = Kayenta::new(&s, false);
    c.handle(
        0,
        Event::Judged {
            index: 1,
            score: 100.0,
        },
    );
    c.handle(0, Event::RolledBack);
    c.handle(0, Event::Promoted(Ok(())));
    c.handle(
        0,
        Event::PodReady {
            track: Track::Canary,
        },
    );
    assert!(drain(&mut c).is_empty());
    let commands = shifted(&mut c);
    assert_eq!(commands.len(), 2);
    // a judgment of a window that was not asked for
    c.handle(
        1_031_000,
        Event::Judged {
            index: 2,
            score: 0.0,
        },
    );
    assert!(drain(&mut c).is_empty());
}

#[test]
fn from_scenario_reads_the_pipeline() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog/latency-10pct-stepped-traffic.toml");
    let sc = scenarios::Scenario::load(&path, None).expect("catalog scenario loads");
    let s = KayentaSpec::from_scenario(&sc, sc.thresholds());
    assert_eq!(s.build_after_s, Some(sc.file.pipeline.webhook_s));
    assert_eq!(s.traffic_steps.len(), 2);
    assert_eq!(s.traffic_steps[0].0, 900.0);
    assert_eq!(s.canary_pods, sc.file.pipeline.canary_replicas);
}

/// A toy driver: carries out every command with fixed durations on a
/// (time, order) queue, answering each judgment with `score`; with
/// `spurious`, it also wakes the controller every `spurious` ms.
fn play(s: &KayentaSpec, score: f64, spurious: Option<Millis>) -> Outcome {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut c = Kayenta::new(s, true);
    let mut q: BinaryHeap<Reverse<(Millis, u64, usize)>> = BinaryHeap::new();
    let mut events: Vec<Event> = Vec::new();
    let mut seq = 0;
    let mut push = |q: &mut BinaryHeap<_>, at: Millis, e: Event, events: &mut Vec<Event>| {
        seq += 1;
        events.push(e);
        q.push(Reverse((at, seq, events.len() - 1)));
    };
    if let Some(every) = spurious {
        for k in 1..4_000 {
            push(&mut q, k * every, Event::TimeReached, &mut events);
        }
    }
    let mut now = 0;
    c.handle(0, Event::Start);
    loop {
        while let Some(command) = c.poll() {
            match command {
                Command::Done(o) => return o,
                Command::WakeAt(t) => push(&mut q, t, Event::TimeReached, &mut events),
                Command::Build => push(
                    &mut q,
                    now + 60_000,
                    Event::BuildFinished { ok: true },
                    &mut events,
                ),
                Command::StartPods { track, count } => {
                    for i in 0..count {
                        let at = now + 20_000 + u64::from(i) * 1_000;
                        push(&mut q, at, Event::PodReady { track }, &mut events);
                    }
                }
                Command::SetWeights(_) | Command::Measure(_) => {}
                Command::Judge(r) => c.handle(
                    now,
                    Event::Judged {
                        index: r.window.index,
                        score,
                    },
                ),
                Command::Promote(_) => {
                    push(&mut q, now + 40_000, Event::Promoted(Ok(())), &mut events)
                }
                Command::RollBack => push(&mut q, now + 5_000, Event::RolledBack, &mut events),
                Command::Cleanup => push(&mut q, now + 5_000, Event::CleanedUp, &mut events),
                Command::StopPods { .. } => panic!("the Kayenta pipeline never stops pods"),
            }
        }
        let Some(Reverse((t, _, i))) = q.pop() else {
            panic!("the controller stopped without Done");
        };
        now = t;
        c.handle(now, events[i].clone());
    }
}

#[test]
fn a_driver_loop_runs_to_done_and_spurious_wakes_change_nothing() {
    let mut s = spec();
    s.traffic_steps = vec![(600.0, s.traffic)];
    for score in [100.0, 60.0, 10.0] {
        let plain = play(&s, score, None);
        assert_eq!(plain, play(&s, score, Some(1_000)), "score {score}");
        assert_eq!(plain, play(&s, score, Some(7)), "score {score}");
        let expected = if score >= 75.0 {
            ReleaseEnd::Promote
        } else {
            ReleaseEnd::Rollback
        };
        assert_eq!(plain.end, expected);
        // build from 5 s to 65 s, the last pod ready 21 s later, shift 1 s later
        assert_eq!(plain.traffic_at, Some(87_000));
    }
}
