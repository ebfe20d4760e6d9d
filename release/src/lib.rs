//! Release controllers as sans-IO state machines: the rules that decide what
//! a canary release does next, with no clock, no I/O and no randomness
//! inside, so that the simulator (virtual time on its event queue), the
//! local mode (processes, loadgen, a real Prometheus) and the Kubernetes
//! mode (kube) run the very same decisions. The style is quinn-proto's, as
//! in [`judge::analysis::Analysis`]: the driver feeds [`Event`]s and
//! carries out the [`Command`]s the controller answers.
//!
//! # The interface
//!
//! A controller implements [`Controller`]:
//!
//! ```text
//! fn handle(&mut self, now: Millis, event: Event);   // something happened at `now`
//! fn poll(&mut self) -> Option<Command>;             // what to do next, in order
//! fn queries(&self) -> &[Query];                     // what Measure commands may ask for
//! ```
//!
//! The driver's loop:
//!
//! 1. `handle(0, Event::Start)` at the commit (time 0).
//! 2. `poll()` until `None`, carrying out each [`Command`] in order. A command
//!    that has an answer (see the table) is answered by a later `handle`; the
//!    answer may come at once (same `now`) or after time has passed.
//! 3. Wait until the earliest pending [`Command::WakeAt`] time or the next
//!    answer, whichever comes first, `handle` it, go to 2.
//! 4. Stop after [`Command::Done`]; nothing is polled after it.
//!
//! | Command | The driver | Answer (event) |
//! |---|---|---|
//! | [`WakeAt(t)`](Command::WakeAt) | wakes the controller at `t` (not before) | [`TimeReached`](Event::TimeReached) at `t` |
//! | [`Build`](Command::Build) | builds the image | [`BuildFinished`](Event::BuildFinished) |
//! | [`StartPods`](Command::StartPods) | starts `count` pods of a track | one [`PodReady`](Event::PodReady) per pod that becomes ready, [`PodCrashed`](Event::PodCrashed) per crash |
//! | [`StopPods`](Command::StopPods) | stops `count` of a track's pods (ready ones last); the traffic share is unchanged | none: in force once carried out |
//! | [`SetWeights`](Command::SetWeights) | routes traffic as the [`Split`] says, from now | none: in force once carried out |
//! | [`Measure`](Command::Measure) | evaluates [`Query`] `query` at time `at` (a range query over `range`, if given) | [`Measured`](Event::Measured) with the same `id` |
//! | [`Judge`](Command::Judge) | fetches the window's series and judges them with the Kayenta judge | [`Judged`](Event::Judged) with the window's index |
//! | [`Promote`](Command::Promote) | replaces production with the new version, as the [`RollingUpdate`] says | [`Promoted`](Event::Promoted) |
//! | [`RollBack`](Command::RollBack) | all traffic to production, canary (and baseline) removed | [`RolledBack`](Event::RolledBack) |
//! | [`Cleanup`](Command::Cleanup) | after a promotion: canary and baseline removed | [`CleanedUp`](Event::CleanedUp) |
//! | [`Done`](Command::Done) | records the [`Outcome`] and stops | none |
//!
//! Rules every controller follows and every driver may rely on:
//!
//! - Times are [`Millis`] since the release began (the commit), in the
//!   controller's own time scale: the local mode's driver maps them onto
//!   real time with its time scale.
//! - Timers are not cancelled: a controller ignores a [`TimeReached`] that
//!   has nothing due, so a driver may wake it spuriously.
//! - A controller ignores an event it does not expect (a late pod, an
//!   answer to a command it never gave); it never panics on an event.
//! - Events at the same `now` are handled in the order the driver feeds
//!   them; a measurement or judgment of time `t` sees the weights of every
//!   [`SetWeights`](Command::SetWeights) polled before the
//!   [`Measure`](Command::Measure) or [`Judge`](Command::Judge) was polled.
//! - A driver that cannot carry out a command (Prometheus down, a kube
//!   error) answers with the failure where the event has one
//!   ([`BuildFinished`](Event::BuildFinished) `ok: false`,
//!   [`Measurement::Error`], [`Promoted`](Event::Promoted) `Err`), or stops
//!   with its own error; the controller decides nothing for it.
//!
//! # Controllers
//!
//! - [`kayenta::Kayenta`]: the Spinnaker pipeline with Kayenta's
//!   multi-interval analysis (webhook, build, deploy canary and baseline,
//!   traffic shift, stepped splits, warmup, judged windows, rolling
//!   promotion or rollback).
//!
//! - [`peer::PeerRelease`]: Argo Rollouts' or Flagger's rules (the `peers`
//!   crate's state machines) after the same build and deploy
//!   ([`deploy`], shared with the Kayenta pipeline).
//!
//! How the peers map onto the commands: Argo's measurements are [`Command::Measure`] of its
//! instant queries every `interval` (answered by [`Event::Measured`],
//! whose [`Measurement`] its `successCondition`/`failureCondition` read),
//! its `setWeight` steps [`Command::SetWeights`] and its `pause` durations
//! [`Command::WakeAt`]; Flagger's tick loop is a [`Command::WakeAt`] every
//! `interval` that steps the weight and measures its checks.
//!
//! # The result vocabulary
//!
//! [`ReleaseEnd`] is how a release ended, for every driver and every
//! report (`reports::summary` sums runs up with the one expectation rule);
//! [`Outcome`] is what a controller says at the end, and
//! [`AnalysisOutcome`] the verdict the real modes report from it.
//!
//! Not for: executing anything, waiting, or randomness (a driver draws how
//! long a build or a pod takes, the controller only hears when it is done).

#![warn(missing_docs)]

pub mod deploy;
pub mod kayenta;
pub mod peer;
mod vocabulary;

#[cfg(test)]
mod tests;

pub use vocabulary::ReleaseEnd;

use judge::analysis::Window;

/// Time since the release began (the commit), milliseconds.
pub type Millis = u64;

/// Seconds to milliseconds, rounded; negative and NaN clamp to 0.
pub fn ms(seconds: f64) -> Millis {
    (seconds * 1000.0).round().max(0.0) as Millis
}

/// Milliseconds to seconds.
pub fn secs(t: Millis) -> f64 {
    t as f64 / 1000.0
}

/// A group of pods running one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The new version, judged.
    Canary,
    /// A fresh deployment of the current version, to compare with.
    Baseline,
    /// The current version serving users.
    Production,
}

/// Traffic split in percent (adds up to 100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Canary share, percent.
    pub canary: f64,
    /// Baseline share, percent.
    pub baseline: f64,
    /// Production share, percent.
    pub production: f64,
}

impl Split {
    /// Everything to production: before a canary and after a rollback.
    pub const PRODUCTION: Split = Split {
        canary: 0.0,
        baseline: 0.0,
        production: 100.0,
    };
}

impl From<scenarios::Traffic> for Split {
    fn from(t: scenarios::Traffic) -> Self {
        Split {
            canary: t.canary,
            baseline: t.baseline,
            production: t.production,
        }
    }
}

impl From<&scenarios::TrafficStep> for Split {
    fn from(t: &scenarios::TrafficStep) -> Self {
        Split {
            canary: t.canary,
            baseline: t.baseline,
            production: t.production,
        }
    }
}

/// A query a controller measures: Prometheus's PromQL, evaluated by the
/// driver (the simulator's in-memory Prometheus, a real one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The metric's name in the controller's config (for messages).
    pub name: String,
    /// The PromQL text, variables already substituted.
    pub promql: String,
}

/// Ask for the value of [`Controller::queries`]`[query]` at time `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureRequest {
    /// Echoed in [`Event::Measured`]; unique within a release.
    pub id: u64,
    /// Index into [`Controller::queries`].
    pub query: usize,
    /// When the query is made: the evaluation time of an instant query.
    pub at: Millis,
    /// `Some`: a range query (`/api/v1/query_range`) over these times;
    /// `None`: an instant query (`/api/v1/query`) at `at`.
    pub range: Option<RangeRequest>,
}

/// The times of a range query, as Prometheus's `query_range` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeRequest {
    /// First evaluation time.
    pub start: Millis,
    /// Last evaluation time (at most `at`).
    pub end: Millis,
    /// Resolution (more than 0).
    pub step: Millis,
}

/// The answer to a [`MeasureRequest`], in the shape Prometheus's HTTP API
/// gives it (`resultType`), values only: the controllers read values, and
/// the order of series is the order Prometheus returns them in.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// `resultType: scalar`.
    Scalar(f64),
    /// `resultType: vector`: one value per series. Empty: no data.
    Vector(Vec<f64>),
    /// `resultType: matrix`: each series' values in time order.
    Matrix(Vec<Vec<f64>>),
    /// The query could not be evaluated (Prometheus down, a bad query,
    /// an HTTP error): the message.
    Error(String),
}

/// Ask for one Kayenta window to be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeRequest {
    /// The window, as offsets from `origin`.
    pub window: Window,
    /// When the window's offsets start (the traffic shift).
    pub origin: Millis,
}

/// How production is replaced on promotion (a Deployment's rolling
/// update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingUpdate {
    /// Production replicas.
    pub replicas: u32,
    /// Pods added above `replicas` at once.
    pub max_surge: u32,
    /// Pods that may be unavailable at once.
    pub max_unavailable: u32,
}

impl RollingUpdate {
    /// Pods replaced per batch (at least one).
    pub fn per_batch(&self) -> u32 {
        (self.max_surge + self.max_unavailable).max(1)
    }

    /// Batches of the update.
    pub fn batches(&self) -> u32 {
        self.replicas.div_ceil(self.per_batch())
    }
}

/// What the driver must do; see the crate docs for each one's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Wake the controller with [`Event::TimeReached`] at this time.
    WakeAt(Millis),
    /// Build the image.
    Build,
    /// Start `count` pods of `track`.
    StartPods {
        /// Which version.
        track: Track,
        /// How many pods.
        count: u32,
    },
    /// Stop `count` pods of `track` (Argo's `setCanaryScale` down):
    /// pods not yet ready first, then ready ones; the track's traffic
    /// share is unchanged (the remaining pods serve it).
    StopPods {
        /// Which version.
        track: Track,
        /// How many pods.
        count: u32,
    },
    /// Route traffic as this split says, from now on.
    SetWeights(Split),
    /// Evaluate a query.
    Measure(MeasureRequest),
    /// Judge a Kayenta window.
    Judge(JudgeRequest),
    /// Replace production with the new version.
    Promote(RollingUpdate),
    /// All traffic to production; remove the canary and baseline.
    RollBack,
    /// After a promotion: remove the canary and baseline.
    Cleanup,
    /// The release is over.
    Done(Outcome),
}

/// Input from a person running the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorInput {
    /// Promote now, skipping the rest of the analysis.
    Promote,
    /// Roll back now.
    Abort,
    /// Go on after an indefinite pause (Argo's `pause: {}`).
    Resume,
}

impl std::str::FromStr for OperatorInput {
    type Err = String;

    /// `promote`, `abort` or `resume` (any case, surrounding blanks
    /// ignored), as a person types them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "promote" => Ok(Self::Promote),
            "abort" => Ok(Self::Abort),
            "resume" => Ok(Self::Resume),
            other => Err(format!(
                "\"{other}\" is not an operator input: promote, abort or resume"
            )),
        }
    }
}

/// What happened, fed to [`Controller::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The release begins (the commit); fed once, first.
    Start,
    /// A time asked for with [`Command::WakeAt`] has come.
    TimeReached,
    /// The build ended.
    BuildFinished {
        /// Whether an image was pushed.
        ok: bool,
    },
    /// A pod of `track` passed its readiness probe.
    PodReady {
        /// Its track.
        track: Track,
    },
    /// A pod of `track` exited (Kubernetes restarts it).
    PodCrashed {
        /// Its track.
        track: Track,
    },
    /// The answer to [`Command::Measure`].
    Measured {
        /// The request's id.
        id: u64,
        /// The value(s) or the error.
        value: Measurement,
    },
    /// The answer to [`Command::Judge`]: the window's score.
    Judged {
        /// The window's 1-based index.
        index: usize,
        /// The judge's score, 0 to 100.
        score: f64,
    },
    /// The answer to [`Command::Promote`]: `Err` says why production was
    /// left on (or put back to) the current version.
    Promoted(Result<(), String>),
    /// The answer to [`Command::RollBack`].
    RolledBack,
    /// The answer to [`Command::Cleanup`].
    CleanedUp,
    /// A person intervened.
    Operator(OperatorInput),
}

/// A stage of the release's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// `build`, `deploy`, `warmup`, `analysis`, `promote` or `rollback`.
    pub name: &'static str,
    /// Start.
    pub start: Millis,
    /// End.
    pub end: Millis,
}

/// How a release ended, with the times a report needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub end: ReleaseEnd,
    /// Why, in words.
    pub reason: String,
    /// When the decision was made.
    pub decided_at: Millis,
    /// When the release was over (promotion or rollback and cleanup done).
    pub ended_at: Millis,
    /// When the deploy began (`None`: it never did).
    pub deploy_started: Option<Millis>,
    /// When traffic first reached the canary (`None`: it never did).
    pub traffic_at: Option<Millis>,
    /// 0-based interval at which the analysis decided, if it did.
    pub decided_at_interval: Option<usize>,
    /// The stages, in order (empty unless the controller was asked to keep
    /// them).
    pub timeline: Vec<Stage>,
}

/// How a real mode's analysis ended with a verdict: what `canarylab local`
/// and `canarylab kube run` report next to the judged windows. Only
/// [`ReleaseEnd::Promote`] and [`ReleaseEnd::Rollback`] are verdicts; a
/// release that ended otherwise has no analysis outcome (its driver
/// reports an error instead).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisOutcome {
    /// [`ReleaseEnd::Promote`] or [`ReleaseEnd::Rollback`].
    pub end: ReleaseEnd,
    /// Why, in words (the rule that decided, or the operator).
    pub reason: String,
    /// Score of each judged window, in order.
    pub scores: Vec<f64>,
    /// When the decision was made, from the traffic shift: the end of the
    /// last judged window when a window decided, else the decision's time.
    pub decided_at: std::time::Duration,
}

impl Outcome {
    /// The verdict of this release, for a driver that judged windows with
    /// `scores` (the last one ending `last_window_end` after the traffic
    /// shift, in the driver's time); `scale` converts controller seconds
    /// into the driver's (the local mode's time scale, 1 elsewhere).
    /// `None` unless the release ended promoted or rolled back.
    pub fn analysis(
        &self,
        scores: Vec<f64>,
        last_window_end: Option<std::time::Duration>,
        scale: f64,
    ) -> Option<AnalysisOutcome> {
        if !matches!(self.end, ReleaseEnd::Promote | ReleaseEnd::Rollback) {
            return None;
        }
        let decided_at = match last_window_end {
            Some(end) if self.decided_at_interval.is_some() => end,
            _ => std::time::Duration::from_secs_f64(
                secs(self.decided_at.saturating_sub(self.traffic_at.unwrap_or(0))) * scale,
            ),
        };
        Some(AnalysisOutcome {
            end: self.end,
            reason: self.reason.clone(),
            scores,
            decided_at,
        })
    }
}

impl From<judge::analysis::Outcome> for AnalysisOutcome {
    fn from(o: judge::analysis::Outcome) -> Self {
        AnalysisOutcome {
            end: match o.decision {
                judge::analysis::Decision::Promote => ReleaseEnd::Promote,
                judge::analysis::Decision::Rollback => ReleaseEnd::Rollback,
            },
            reason: o.reason,
            scores: o.scores,
            decided_at: o.decided_at,
        }
    }
}

/// A release controller; see the crate docs for the contract.
pub trait Controller {
    /// Feed an event that happened at `now` (never earlier than the last
    /// `now`).
    fn handle(&mut self, now: Millis, event: Event);

    /// The next command to carry out, in order; `None` until the next
    /// event.
    fn poll(&mut self) -> Option<Command>;

    /// The queries [`Command::Measure`] refers to by index; fixed for the
    /// controller's life, so a driver can prepare them once.
    fn queries(&self) -> &[Query] {
        &[]
    }
}
