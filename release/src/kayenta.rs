//! The Spinnaker demo pipeline with Kayenta's canary analysis, as a
//! [`Controller`]: webhook, build (may fail), deploy canary and baseline
//! (every pod must be ready before the deploy timeout, or the release is
//! rolled back), traffic shift (once the VirtualService update has reached
//! the gateways), stepped splits, warmup, Kayenta's analysis intervals
//! (each one a [`Command::Judge`], decided by
//! [`judge::analysis::Analysis`]), then a rolling promotion of production
//! and cleanup, or a rollback.
//!
//! The build and deploy are [`crate::deploy`]'s, shared with the peers'
//! controllers ([`crate::peer`]).
//!
//! Not for: how long a build or a pod takes, or what a window scores
//! (the driver's).

use judge::ScoreThresholds;
use judge::analysis::{Analysis, Decision, Schedule, Step, Window};

use crate::deploy::{BuildDeploy, DeploySpec, Ending, Out, Progress, Times};
use crate::{
    Command, Controller, Event, JudgeRequest, Millis, OperatorInput, ReleaseEnd, RollingUpdate,
    Split, ms,
};

/// The pipeline's settings (seconds, as in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct KayentaSpec {
    /// Commit to build start; `None`: no build, the release starts at the
    /// deploy (the real modes deploy an image that exists).
    pub build_after_s: Option<f64>,
    /// How long every canary and baseline pod has to become ready.
    pub deploy_timeout_s: f64,
    /// Canary pods to start.
    pub canary_pods: u32,
    /// Baseline pods to start (0 when comparing with production).
    pub baseline_pods: u32,
    /// From the last pod ready to the traffic shift (the VirtualService
    /// update reaching the gateways).
    pub shift_delay_s: f64,
    /// The split from the traffic shift on.
    pub traffic: Split,
    /// Later splits: seconds after the traffic shift, split.
    pub traffic_steps: Vec<(f64, Split)>,
    /// Kayenta's schedule (windows count from the traffic shift).
    pub schedule: Schedule,
    /// Pass and marginal thresholds.
    pub thresholds: ScoreThresholds,
    /// How production is replaced on promotion.
    pub rolling_update: RollingUpdate,
}

impl KayentaSpec {
    /// The simulator's pipeline of `scenario`, with `thresholds` (the
    /// judge's, which may override the scenario's).
    pub fn from_scenario(scenario: &scenarios::Scenario, thresholds: ScoreThresholds) -> Self {
        let f = &scenario.file;
        let pl = &f.pipeline;
        KayentaSpec {
            build_after_s: Some(pl.webhook_s),
            deploy_timeout_s: pl.deploy_timeout_s,
            canary_pods: pl.canary_replicas,
            baseline_pods: match pl.baseline {
                scenarios::BaselineKind::Fresh => pl.baseline_replicas,
                scenarios::BaselineKind::Production => 0,
            },
            shift_delay_s: 1.0,
            traffic: pl.traffic.into(),
            traffic_steps: pl
                .traffic_steps
                .iter()
                .map(|s| (s.after_s, s.into()))
                .collect(),
            schedule: scenario.schedule(),
            thresholds,
            rolling_update: RollingUpdate {
                replicas: f.service.replicas,
                max_surge: pl.max_surge,
                max_unavailable: pl.max_unavailable,
            },
        }
    }
}

impl KayentaSpec {
    /// The build and deploy part, shared with the other controllers.
    pub fn deploy(&self) -> DeploySpec {
        DeploySpec {
            build_after_s: self.build_after_s,
            deploy_timeout_s: self.deploy_timeout_s,
            canary_pods: self.canary_pods,
            baseline_pods: self.baseline_pods,
        }
    }
}

/// What a timer is for (the build's and deploy's are [`BuildDeploy`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    TrafficShift,
    TrafficStep(usize),
    Window(Window),
}

#[derive(Debug)]
enum Phase {
    /// Build and deploy, up to every pod ready.
    Preparing,
    /// Every pod ready; the shift is under way.
    Shifting,
    Analysing {
        analysis: Analysis,
        /// The window being judged, once asked for.
        judging: Option<usize>,
    },
    /// Decided: promotion, rollback, cleanup and the end are
    /// [`Ending`]'s.
    Closing,
}

/// The Spinnaker/Kayenta pipeline; see the module docs.
#[derive(Debug)]
pub struct Kayenta<'a> {
    spec: &'a KayentaSpec,
    phase: Phase,
    prepare: BuildDeploy,
    ending: Ending,
    out: Out,
    /// Pending timers: (time, order given, what for).
    timers: Vec<(Millis, u64, Timer)>,
    timer_seq: u64,
    traffic_at: Option<Millis>,
}

impl<'a> Kayenta<'a> {
    /// A controller for one release; with `keep_timeline` its
    /// [`crate::Outcome::timeline`] lists the stages.
    pub fn new(spec: &'a KayentaSpec, keep_timeline: bool) -> Self {
        Kayenta {
            spec,
            phase: Phase::Preparing,
            prepare: BuildDeploy::new(spec.deploy()),
            ending: Ending::new(spec.rolling_update),
            out: Out::new(keep_timeline),
            timers: Vec::with_capacity(4),
            timer_seq: 0,
            traffic_at: None,
        }
    }

    fn times(&self) -> Times {
        Times {
            deploy_started: self.prepare.deploy_started,
            traffic_at: self.traffic_at,
        }
    }

    /// Decided: the shared end carries it out (promote, roll back or end).
    fn conclude(&mut self, now: Millis, end: ReleaseEnd, reason: String, interval: Option<usize>) {
        self.phase = Phase::Closing;
        self.timers.clear();
        let times = self.times();
        self.ending
            .conclude(now, (end, reason, interval), times, &mut self.out);
    }

    fn wake_at(&mut self, at: Millis, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push((at, self.timer_seq, timer));
        self.out.push(Command::WakeAt(at));
    }

    /// The earliest due timer, removed.
    fn take_due(&mut self, now: Millis) -> Option<Timer> {
        let i = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (at, _, _))| *at <= now)
            .min_by_key(|(_, (at, seq, _))| (*at, *seq))
            .map(|(i, _)| i)?;
        Some(self.timers.swap_remove(i).2)
    }

    /// What the build and deploy came to.
    fn prepared(&mut self, now: Millis, progress: Progress) {
        match progress {
            Progress::Pending => {}
            Progress::Ready => {
                self.phase = Phase::Shifting;
                self.wake_at(now + ms(self.spec.shift_delay_s), Timer::TrafficShift);
            }
            Progress::Failed { end, reason } => self.conclude(now, end, reason, None),
        }
    }

    fn traffic_shift(&mut self, now: Millis) {
        let deploy_started = self.prepare.deploy_started.unwrap_or(now);
        self.out.stage("deploy", deploy_started, now);
        self.traffic_at = Some(now);
        self.out.push(Command::SetWeights(self.spec.traffic));
        // Steps first, so a step and a window ending at the same time see
        // the step's weights (the window's last point is after the step).
        for (i, (after_s, _)) in self.spec.traffic_steps.iter().enumerate() {
            self.wake_at(now + ms(*after_s), Timer::TrafficStep(i));
        }
        match Analysis::new(&self.spec.schedule, self.spec.thresholds) {
            Ok(analysis) => {
                let first = analysis.first();
                self.phase = Phase::Analysing {
                    analysis,
                    judging: None,
                };
                self.wake_at(now + ms(first.end.as_secs_f64()), Timer::Window(first));
            }
            // The pods are deployed: roll them back.
            Err(e) => self.conclude(
                now,
                ReleaseEnd::Rollback,
                format!("invalid analysis schedule: {e}"),
                None,
            ),
        }
    }

    /// Decided during the analysis: the warmup and analysis stages, then
    /// promote or roll back.
    fn analysis_decided(
        &mut self,
        now: Millis,
        end: ReleaseEnd,
        reason: String,
        interval: Option<usize>,
    ) {
        let traffic_at = self.traffic_at.unwrap_or(now);
        let warmup_end =
            traffic_at + ms(self.spec.schedule.warmup.as_secs_f64()).min(now - traffic_at);
        self.out.stage("warmup", traffic_at, warmup_end);
        self.out.stage("analysis", warmup_end, now);
        self.conclude(now, end, reason, interval);
    }

    fn on_timer(&mut self, now: Millis, timer: Timer) {
        match (timer, &mut self.phase) {
            (Timer::TrafficShift, Phase::Shifting) => self.traffic_shift(now),
            (Timer::TrafficStep(i), Phase::Analysing { .. }) => {
                if let Some((_, split)) = self.spec.traffic_steps.get(i) {
                    self.out.push(Command::SetWeights(*split));
                }
            }
            (Timer::Window(window), Phase::Analysing { judging, .. }) if judging.is_none() => {
                *judging = Some(window.index);
                let origin = self.traffic_at.unwrap_or(now);
                self.out
                    .push(Command::Judge(JudgeRequest { window, origin }));
            }
            _ => {}
        }
    }

    fn on_judged(&mut self, now: Millis, index: usize, score: f64) {
        let Phase::Analysing { analysis, judging } = &mut self.phase else {
            return;
        };
        if *judging != Some(index) {
            return;
        }
        *judging = None;
        match analysis.record(score) {
            Step::Judge(next) => {
                let at = self.traffic_at.unwrap_or(now) + ms(next.end.as_secs_f64());
                self.wake_at(at, Timer::Window(next));
            }
            Step::Done(o) => {
                let end = match o.decision {
                    Decision::Promote => ReleaseEnd::Promote,
                    Decision::Rollback => ReleaseEnd::Rollback,
                };
                let interval = o.scores.len().checked_sub(1);
                self.analysis_decided(now, end, o.reason, interval);
            }
        }
    }

    fn on_operator(&mut self, now: Millis, input: OperatorInput) {
        match (input, &self.phase) {
            (OperatorInput::Resume, _) | (_, Phase::Closing) => {}
            (OperatorInput::Promote, Phase::Analysing { .. }) => self.analysis_decided(
                now,
                ReleaseEnd::Promote,
                "promoted by the operator".into(),
                None,
            ),
            (OperatorInput::Abort, Phase::Analysing { .. }) => self.analysis_decided(
                now,
                ReleaseEnd::Rollback,
                "aborted by the operator".into(),
                None,
            ),
            // Before traffic: the release stops (see BuildDeploy::abort).
            (_, Phase::Preparing | Phase::Shifting) => {
                let progress = self.prepare.abort(now, &mut self.out);
                self.prepared(now, progress);
            }
        }
    }
}

impl Controller for Kayenta<'_> {
    fn handle(&mut self, now: Millis, event: Event) {
        match event {
            Event::Start => {
                let progress = self.prepare.start(now, &mut self.out);
                self.prepared(now, progress);
            }
            Event::TimeReached => {
                if matches!(self.phase, Phase::Preparing) {
                    let progress = self.prepare.time_reached(now, &mut self.out);
                    self.prepared(now, progress);
                }
                while let Some(timer) = self.take_due(now) {
                    self.on_timer(now, timer);
                }
            }
            Event::BuildFinished { ok } => {
                let progress = self.prepare.build_finished(now, ok, &mut self.out);
                self.prepared(now, progress);
            }
            Event::PodReady { track } => {
                let progress = self.prepare.pod_ready(track);
                self.prepared(now, progress);
            }
            // Kubernetes restarts a crashed pod; it counts once it is ready.
            Event::PodCrashed { .. } => {}
            Event::Measured { .. } => {}
            Event::Judged { index, score } => self.on_judged(now, index, score),
            Event::Promoted(_) | Event::RolledBack | Event::CleanedUp => {
                let times = self.times();
                self.ending.answered(now, event, times, &mut self.out);
            }
            Event::Operator(input) => self.on_operator(now, input),
        }
    }

    fn poll(&mut self) -> Option<Command> {
        self.out.commands.pop_front()
    }
}

#[cfg(test)]
mod tests;
