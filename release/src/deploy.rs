//! The part of a release every controller shares: the build (after the
//! webhook's delay; it may fail) and the deploy of the canary (and a
//! baseline) pods, each of which must be ready before the deploy timeout.
//! [`crate::kayenta::Kayenta`] and [`crate::peer::PeerRelease`] run this
//! first and their own analysis once every pod is ready.
//!
//! A crashed pod is restarted by Kubernetes and is not ready until the
//! driver says so; a canary in a crash loop therefore never becomes ready
//! and the deploy times out. A pod ready exactly at the deploy deadline is
//! in time.
//!
//! The end is shared too ([`Ending`]): once a controller has decided, the
//! promotion (a rolling update, then cleanup), the rollback, and the
//! [`Command::Done`] with its [`Outcome`] go the same way for every
//! controller; so does an operator's input before the analysis began.
//!
//! Not for: what happens between the pods ready and the decision (the
//! controllers').

use std::collections::VecDeque;

use crate::{Command, Event, Millis, Outcome, ReleaseEnd, RollingUpdate, Stage, Track, ms};

/// The build and deploy settings (seconds, as in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySpec {
    /// Commit to build start; `None`: no build, the release starts at the
    /// deploy (the real modes deploy an image that exists).
    pub build_after_s: Option<f64>,
    /// How long every canary and baseline pod has to become ready.
    pub deploy_timeout_s: f64,
    /// Canary pods to start.
    pub canary_pods: u32,
    /// Baseline pods to start (0 when comparing with production).
    pub baseline_pods: u32,
}

impl DeploySpec {
    /// The simulator's build and deploy of `scenario`; `baseline`: whether
    /// the analysis has a baseline deployment of its own (Kayenta with a
    /// fresh baseline), else no baseline pods are started.
    pub fn from_scenario(scenario: &scenarios::Scenario, baseline: bool) -> Self {
        let pl = &scenario.file.pipeline;
        DeploySpec {
            build_after_s: Some(pl.webhook_s),
            deploy_timeout_s: pl.deploy_timeout_s,
            canary_pods: pl.canary_replicas,
            baseline_pods: match pl.baseline {
                scenarios::BaselineKind::Fresh if baseline => pl.baseline_replicas,
                _ => 0,
            },
        }
    }
}

/// Commands, and the timeline when asked for: what a controller collects
/// for its driver.
#[derive(Debug)]
pub(crate) struct Out {
    pub commands: VecDeque<Command>,
    keep_timeline: bool,
    pub timeline: Vec<Stage>,
}

impl Out {
    pub fn new(keep_timeline: bool) -> Self {
        Out {
            commands: VecDeque::with_capacity(8),
            keep_timeline,
            timeline: Vec::new(),
        }
    }

    pub fn push(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    pub fn stage(&mut self, name: &'static str, start: Millis, end: Millis) {
        if self.keep_timeline {
            self.timeline.push(Stage { name, start, end });
        }
    }
}

/// Where the build and deploy are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Waiting {
        build_at: Millis,
    },
    Building {
        started: Millis,
    },
    Deploying {
        ready: u32,
        deadline: Millis,
    },
    /// Every pod ready, or failed: nothing more to do here.
    Over,
}

/// What the build and deploy came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// Still under way (or over before this event).
    Pending,
    /// Every pod is ready: the controller's analysis may begin.
    Ready,
    /// The release ends here: a failed build (nothing to roll back) or a
    /// timed-out deploy (the canary must be rolled back).
    Failed { end: ReleaseEnd, reason: String },
}

/// The build-and-deploy state machine; see the module docs.
#[derive(Debug)]
pub(crate) struct BuildDeploy {
    spec: DeploySpec,
    phase: Phase,
    /// When the deploy began, once it did.
    pub deploy_started: Option<Millis>,
}

impl BuildDeploy {
    pub fn new(spec: DeploySpec) -> Self {
        BuildDeploy {
            spec,
            phase: Phase::Idle,
            deploy_started: None,
        }
    }

    /// Before the deploy: nothing is running yet.
    fn before_deploy(&self) -> bool {
        matches!(
            self.phase,
            Phase::Idle | Phase::Waiting { .. } | Phase::Building { .. }
        )
    }

    /// The release begins (the commit).
    pub fn start(&mut self, now: Millis, out: &mut Out) -> Progress {
        if self.phase != Phase::Idle {
            return Progress::Pending;
        }
        match self.spec.build_after_s {
            Some(s) => {
                let build_at = now + ms(s);
                self.phase = Phase::Waiting { build_at };
                out.push(Command::WakeAt(build_at));
                Progress::Pending
            }
            None => self.start_deploy(now, out),
        }
    }

    /// Time has come to `now`.
    pub fn time_reached(&mut self, now: Millis, out: &mut Out) -> Progress {
        match self.phase {
            Phase::Waiting { build_at } if build_at <= now => {
                self.phase = Phase::Building { started: now };
                out.push(Command::Build);
                Progress::Pending
            }
            Phase::Deploying { deadline, .. } if deadline <= now => {
                self.phase = Phase::Over;
                out.stage("deploy", self.deploy_started.unwrap_or(now), now);
                Progress::Failed {
                    end: ReleaseEnd::DeployFailed,
                    reason: format!(
                        "canary pods not ready after {} s: deploy timed out, rolled back",
                        self.spec.deploy_timeout_s
                    ),
                }
            }
            _ => Progress::Pending,
        }
    }

    /// The build ended.
    pub fn build_finished(&mut self, now: Millis, ok: bool, out: &mut Out) -> Progress {
        let Phase::Building { started } = self.phase else {
            return Progress::Pending;
        };
        out.stage("build", started, now);
        if ok {
            self.start_deploy(now, out)
        } else {
            self.phase = Phase::Over;
            Progress::Failed {
                end: ReleaseEnd::BuildFailed,
                reason: "the build failed".into(),
            }
        }
    }

    /// A pod passed its readiness probe.
    pub fn pod_ready(&mut self, track: Track) -> Progress {
        let Phase::Deploying { ready, .. } = &mut self.phase else {
            return Progress::Pending;
        };
        if track == Track::Production {
            return Progress::Pending;
        }
        *ready += 1;
        if *ready >= self.spec.canary_pods + self.spec.baseline_pods {
            self.phase = Phase::Over;
            Progress::Ready
        } else {
            Progress::Pending
        }
    }

    /// An operator's input before the analysis began (while building,
    /// deploying, or before the traffic shift) stops the release: before
    /// the deploy there is nothing to roll back (an error, no verdict);
    /// after it, nothing to promote (a rollback).
    pub fn abort(&mut self, now: Millis, out: &mut Out) -> Progress {
        let before_deploy = self.before_deploy();
        self.phase = Phase::Over;
        if before_deploy {
            return Progress::Failed {
                end: ReleaseEnd::Error,
                reason: "aborted by the operator before the deploy".into(),
            };
        }
        if let Some(s) = self.deploy_started {
            out.stage("deploy", s, now);
        }
        Progress::Failed {
            end: ReleaseEnd::Rollback,
            reason: "aborted by the operator before the analysis".into(),
        }
    }

    fn start_deploy(&mut self, now: Millis, out: &mut Out) -> Progress {
        self.deploy_started = Some(now);
        let spec = &self.spec;
        if spec.canary_pods > 0 {
            out.push(Command::StartPods {
                track: Track::Canary,
                count: spec.canary_pods,
            });
        }
        if spec.baseline_pods > 0 {
            out.push(Command::StartPods {
                track: Track::Baseline,
                count: spec.baseline_pods,
            });
        }
        if spec.canary_pods + spec.baseline_pods == 0 {
            self.phase = Phase::Over;
            return Progress::Ready;
        }
        let deadline = now + ms(spec.deploy_timeout_s);
        self.phase = Phase::Deploying { ready: 0, deadline };
        out.push(Command::WakeAt(deadline));
        Progress::Pending
    }
}

/// The times an [`Outcome`] reports besides the decision's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Times {
    /// When the deploy began (`None`: nothing was deployed).
    pub deploy_started: Option<Millis>,
    /// When traffic first reached the canary.
    pub traffic_at: Option<Millis>,
}

/// A decision, once made.
#[derive(Debug)]
struct Decided {
    end: ReleaseEnd,
    reason: String,
    at: Millis,
    interval: Option<usize>,
}

/// Where the end of a release is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Not decided yet (or decided and not yet acted on).
    Open,
    Promoting,
    RollingBack,
    CleaningUp,
    Done,
}

/// The end of a release, the same for every controller: the decision,
/// then the promotion (a rolling update of production, then cleanup) or
/// the rollback, then [`Command::Done`] with the [`Outcome`]. A failed
/// promotion is rolled back and ends in [`ReleaseEnd::Error`].
#[derive(Debug)]
pub(crate) struct Ending {
    rolling_update: RollingUpdate,
    decision: Option<Decided>,
    closing: Closing,
}

impl Ending {
    pub fn new(rolling_update: RollingUpdate) -> Self {
        Ending {
            rolling_update,
            decision: None,
            closing: Closing::Open,
        }
    }

    /// Records the decision, without acting on it.
    fn decide(&mut self, now: Millis, end: ReleaseEnd, reason: String, interval: Option<usize>) {
        self.decision = Some(Decided {
            end,
            reason,
            at: now,
            interval,
        });
    }

    /// Decides and acts: a promotion is a rolling update; a pause (a
    /// person must decide) or a release that deployed nothing ends at
    /// once; anything else is rolled back.
    pub fn conclude(
        &mut self,
        now: Millis,
        (end, reason, interval): (ReleaseEnd, String, Option<usize>),
        times: Times,
        out: &mut Out,
    ) {
        self.decide(now, end, reason, interval);
        match end {
            ReleaseEnd::Promote => {
                self.closing = Closing::Promoting;
                out.push(Command::Promote(self.rolling_update));
            }
            ReleaseEnd::Paused => self.finish(now, times, out),
            _ if times.deploy_started.is_none() => self.finish(now, times, out),
            _ => self.roll_back(out),
        }
    }

    fn roll_back(&mut self, out: &mut Out) {
        self.closing = Closing::RollingBack;
        out.push(Command::RollBack);
    }

    /// The release is over: [`Command::Done`] with the decision (an
    /// [`ReleaseEnd::Error`] if there was none).
    pub fn finish(&mut self, now: Millis, times: Times, out: &mut Out) {
        self.closing = Closing::Done;
        let d = self.decision.take().unwrap_or_else(|| Decided {
            end: ReleaseEnd::Error,
            reason: "the release stopped without a decision".into(),
            at: now,
            interval: None,
        });
        let timeline = std::mem::take(&mut out.timeline);
        out.push(Command::Done(Outcome {
            end: d.end,
            reason: d.reason,
            decided_at: d.at,
            ended_at: now,
            deploy_started: times.deploy_started,
            traffic_at: times.traffic_at,
            decided_at_interval: d.interval,
            timeline,
        }));
    }

    /// The answers to the end's commands ([`Event::Promoted`],
    /// [`Event::RolledBack`], [`Event::CleanedUp`]); any other event, or
    /// an answer not waited for, is ignored.
    pub fn answered(&mut self, now: Millis, event: Event, times: Times, out: &mut Out) {
        let started = self.decision.as_ref().map_or(now, |d| d.at);
        match (event, self.closing) {
            (Event::Promoted(result), Closing::Promoting) => {
                out.stage("promote", started, now);
                match result {
                    Ok(()) => {
                        self.closing = Closing::CleaningUp;
                        out.push(Command::Cleanup);
                    }
                    Err(why) => {
                        if let Some(d) = &mut self.decision {
                            d.end = ReleaseEnd::Error;
                            d.reason = format!("{}; the promotion failed: {why}", d.reason);
                        }
                        self.roll_back(out);
                    }
                }
            }
            (Event::RolledBack, Closing::RollingBack) => {
                out.stage("rollback", started, now);
                self.finish(now, times, out);
            }
            (Event::CleanedUp, Closing::CleaningUp) => self.finish(now, times, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATE: RollingUpdate = RollingUpdate {
        replicas: 3,
        max_surge: 1,
        max_unavailable: 0,
    };

    const DEPLOYED: Times = Times {
        deploy_started: Some(10),
        traffic_at: Some(20),
    };

    fn drain(out: &mut Out) -> Vec<Command> {
        out.commands.drain(..).collect()
    }

    fn done(commands: &[Command]) -> &Outcome {
        match commands {
            [Command::Done(o)] => o,
            other => panic!("expected Done alone, got {other:?}"),
        }
    }

    #[test]
    fn a_promotion_is_a_rolling_update_then_cleanup_then_done() {
        let mut out = Out::new(true);
        let mut e = Ending::new(UPDATE);
        e.conclude(
            100,
            (ReleaseEnd::Promote, "passed".into(), Some(2)),
            DEPLOYED,
            &mut out,
        );
        assert_eq!(drain(&mut out), vec![Command::Promote(UPDATE)]);
        // answers not waited for change nothing
        e.answered(110, Event::RolledBack, DEPLOYED, &mut out);
        e.answered(110, Event::CleanedUp, DEPLOYED, &mut out);
        assert!(drain(&mut out).is_empty());
        e.answered(150, Event::Promoted(Ok(())), DEPLOYED, &mut out);
        assert_eq!(drain(&mut out), vec![Command::Cleanup]);
        e.answered(160, Event::CleanedUp, DEPLOYED, &mut out);
        let commands = drain(&mut out);
        let o = done(&commands);
        assert_eq!(o.end, ReleaseEnd::Promote);
        assert_eq!(o.reason, "passed");
        assert_eq!((o.decided_at, o.ended_at), (100, 160));
        assert_eq!((o.deploy_started, o.traffic_at), (Some(10), Some(20)));
        assert_eq!(o.decided_at_interval, Some(2));
        assert_eq!(
            o.timeline,
            vec![Stage {
                name: "promote",
                start: 100,
                end: 150
            }]
        );
        // over: nothing more
        e.answered(170, Event::CleanedUp, DEPLOYED, &mut out);
        assert!(drain(&mut out).is_empty());
    }

    #[test]
    fn a_failed_promotion_is_rolled_back_and_ends_in_error() {
        let mut out = Out::new(true);
        let mut e = Ending::new(UPDATE);
        e.conclude(
            100,
            (ReleaseEnd::Promote, "passed".into(), None),
            DEPLOYED,
            &mut out,
        );
        drain(&mut out);
        e.answered(
            150,
            Event::Promoted(Err("pod 2 not ready".into())),
            DEPLOYED,
            &mut out,
        );
        assert_eq!(drain(&mut out), vec![Command::RollBack]);
        e.answered(170, Event::RolledBack, DEPLOYED, &mut out);
        let commands = drain(&mut out);
        let o = done(&commands);
        assert_eq!(o.end, ReleaseEnd::Error);
        assert_eq!(o.reason, "passed; the promotion failed: pod 2 not ready");
        let stages: Vec<_> = o
            .timeline
            .iter()
            .map(|s| (s.name, s.start, s.end))
            .collect();
        assert_eq!(stages, vec![("promote", 100, 150), ("rollback", 100, 170)]);
    }

    #[test]
    fn a_rejection_after_the_deploy_is_rolled_back() {
        for end in [
            ReleaseEnd::Rollback,
            ReleaseEnd::DeployFailed,
            ReleaseEnd::Error,
        ] {
            let mut out = Out::new(false);
            let mut e = Ending::new(UPDATE);
            e.conclude(100, (end, "why".into(), None), DEPLOYED, &mut out);
            assert_eq!(drain(&mut out), vec![Command::RollBack], "{end}");
            e.answered(130, Event::RolledBack, DEPLOYED, &mut out);
            let commands = drain(&mut out);
            let o = done(&commands);
            assert_eq!((o.end, o.decided_at, o.ended_at), (end, 100, 130));
        }
    }

    #[test]
    fn nothing_deployed_or_a_pause_ends_at_once() {
        let nothing = Times::default();
        for (end, times) in [
            (ReleaseEnd::BuildFailed, nothing),
            (ReleaseEnd::Error, nothing),
            (ReleaseEnd::Paused, DEPLOYED),
        ] {
            let mut out = Out::new(false);
            let mut e = Ending::new(UPDATE);
            e.conclude(100, (end, "why".into(), None), times, &mut out);
            let commands = drain(&mut out);
            let o = done(&commands);
            assert_eq!((o.end, o.decided_at, o.ended_at), (end, 100, 100));
            assert_eq!(o.deploy_started, times.deploy_started);
        }
    }

    #[test]
    fn finishing_without_a_decision_is_an_error() {
        let mut out = Out::new(false);
        let mut e = Ending::new(UPDATE);
        e.finish(40, Times::default(), &mut out);
        let commands = drain(&mut out);
        let o = done(&commands);
        assert_eq!(o.end, ReleaseEnd::Error);
        assert_eq!(o.decided_at, 40);
    }

    #[test]
    fn an_operator_abort_before_the_deploy_is_an_error_and_after_it_a_rollback() {
        let spec = DeploySpec {
            build_after_s: Some(5.0),
            deploy_timeout_s: 60.0,
            canary_pods: 1,
            baseline_pods: 0,
        };
        let mut out = Out::new(true);
        let mut b = BuildDeploy::new(spec.clone());
        b.start(0, &mut out);
        let Progress::Failed { end, reason } = b.abort(1_000, &mut out) else {
            panic!("an abort fails the release");
        };
        assert_eq!(end, ReleaseEnd::Error);
        assert!(reason.contains("before the deploy"), "{reason}");
        assert!(out.timeline.is_empty());
        // once over, the deploy's deadline does nothing
        assert_eq!(b.time_reached(5_000, &mut out), Progress::Pending);

        let mut out = Out::new(true);
        let mut b = BuildDeploy::new(spec);
        b.start(0, &mut out);
        b.time_reached(5_000, &mut out);
        b.build_finished(8_000, true, &mut out);
        let Progress::Failed { end, reason } = b.abort(9_000, &mut out) else {
            panic!("an abort fails the release");
        };
        assert_eq!(end, ReleaseEnd::Rollback);
        assert!(reason.contains("before the analysis"), "{reason}");
        let stages: Vec<_> = out
            .timeline
            .iter()
            .map(|s| (s.name, s.start, s.end))
            .collect();
        assert_eq!(
            stages,
            vec![("build", 5_000, 8_000), ("deploy", 8_000, 9_000)]
        );
        assert_eq!(b.pod_ready(Track::Canary), Progress::Pending);
    }
}
