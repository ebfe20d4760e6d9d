//! The interface every peer controller shares: events in, commands out.
//!
//! A controller owns the peer's rules and nothing else: no clock, no I/O.
//! Times are offsets from the moment the driver starts the release
//! ([`Controller::start`]); the driver decides what they mean (virtual time in
//! the simulator, wall time in local mode).
//!
//! The loop a driver runs:
//! 1. `start(t0)`, then execute each [`Command`] it returns;
//! 2. a [`Command::Measure`] is answered with [`Controller::measured`], a
//!    [`Command::Judge`] with [`Controller::judged`], at the command's time,
//!    before time moves on (their answers may bring more commands);
//! 3. when nothing is outstanding, `wake(next_wake())`, and so on until
//!    [`Controller::outcome`] is `Some`.
//!
//! [`drive`] does exactly that with a closure that answers measurements.

use std::time::Duration;

/// Identifies one measurement or judgement asked for.
pub type MeasureId = u64;

/// A query a controller may ask for, listed once by [`Controller::queries`]
/// so a driver can prepare (parse) every query before the release starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// The metric's or check's name in the peer's file (for messages).
    pub name: String,
    /// The PromQL text, arguments and template variables substituted.
    pub promql: String,
    /// `Some` for a range query, as offsets before the measurement time.
    pub range: Option<RangeOffsets>,
}

/// A range query's window relative to the measurement time (Argo's
/// `rangeQuery`: `start: now() - duration("5m")`, `end: now()`, `step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeOffsets {
    /// start = now − this
    pub start_before: Duration,
    /// end = now − this
    pub end_before: Duration,
    /// resolution
    pub step: Duration,
}

/// A PromQL query to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Index into [`Controller::queries`].
    pub index: usize,
    /// The PromQL text, arguments and template variables already substituted.
    pub promql: String,
    /// Evaluation time of an instant query (the controller's now); for a
    /// range query, the time the query is made.
    pub at: Duration,
    /// `Some` for a range query (Argo's `rangeQuery`).
    pub range: Option<QueryRange>,
}

/// A range query's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryRange {
    /// First evaluation time.
    pub start: Duration,
    /// Last evaluation time.
    pub end: Duration,
    /// Resolution.
    pub step: Duration,
}

/// What Prometheus answered, in the shape its API gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// `resultType: scalar`
    Scalar(f64),
    /// `resultType: vector`: one value per series, in the order returned.
    Vector(Vec<f64>),
    /// `resultType: matrix`: each series' samples, in the order returned.
    Matrix(Vec<Vec<f64>>),
    /// The query failed (bad PromQL, HTTP error, timeout): the message.
    Failed(String),
}

/// A Kayenta canary analysis to run (Argo's `kayenta` provider).
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeRequest {
    /// `canaryConfigName` from the AnalysisTemplate.
    pub canary_config_name: String,
    /// Scopes as the template names them, with the window below.
    pub scopes: Vec<KayentaScope>,
    /// Window start (the run's start with `lookback`, else now − interval).
    pub start: Duration,
    /// Window end (now).
    pub end: Duration,
    /// Score at or above which the measurement is Successful.
    pub pass: i64,
    /// Score at or above which (and below pass) it is Inconclusive.
    pub marginal: i64,
}

/// One Kayenta scope of a judge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KayentaScope {
    /// scope name (`default`)
    pub name: String,
    /// control (baseline) scope value
    pub control: String,
    /// experiment (canary) scope value
    pub experiment: String,
    /// metric resolution in seconds
    pub step_seconds: i64,
}

/// Something the controller wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send this percentage of requests to the canary (0 = all to the stable
    /// or primary version).
    SetWeight {
        /// when
        at: Duration,
        /// canary share in percent, 0..=100
        canary_percent: u32,
    },
    /// Argo's `setCanaryScale`: replicas of the canary without a traffic change.
    SetCanaryScale {
        /// when
        at: Duration,
        /// the step's index (for [`crate::argo::RolloutPlan::replica_counts`])
        step: usize,
        /// percent of the rollout's replicas
        weight: Option<u32>,
        /// absolute replicas
        replicas: Option<u32>,
        /// back to following the traffic weight
        match_traffic_weight: bool,
    },
    /// Argo with `trafficRouting`, at a `setWeight` step: size the canary
    /// (and, with `dynamicStableScale`, the stable) ReplicaSet for step
    /// `step` ([`crate::argo::RolloutPlan::replica_counts`]) before the
    /// weight changes; answer with [`Controller::canary_scaled`] once the
    /// canary has that many available pods.
    ScaleForStep {
        /// when
        at: Duration,
        /// the step's index
        step: usize,
    },
    /// Run a query; answer with [`Controller::measured`].
    Measure {
        /// answer with this id
        id: MeasureId,
        /// the query
        query: Query,
    },
    /// Run a Kayenta analysis; answer with [`Controller::judged`].
    Judge {
        /// answer with this id
        id: MeasureId,
        /// when the request is made
        at: Duration,
        /// what to judge
        request: JudgeRequest,
    },
    /// The canary passed: the new version becomes production.
    Promote {
        /// when
        at: Duration,
    },
    /// The canary failed: traffic back to production, canary scaled down.
    Abort {
        /// when
        at: Duration,
        /// the rule that decided, in the peer's words
        reason: String,
        /// delay before the canary's pods are removed (Argo's
        /// `abortScaleDownDelaySeconds`; zero for Flagger)
        scale_down_after: Duration,
    },
    /// The release stops and waits for a person (Argo: an Inconclusive analysis).
    Pause {
        /// when
        at: Duration,
        /// why
        reason: String,
    },
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// promoted
    Promote,
    /// rolled back / aborted
    Rollback,
    /// waiting for a person; the simulation cannot go on
    Paused,
}

/// The end of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// what
    pub decision: Decision,
    /// when (offset from `start`)
    pub at: Duration,
    /// the rule that decided
    pub reason: String,
}

/// A peer's release controller as a pure state machine.
pub trait Controller {
    /// The release starts at `now` (for Argo the new ReplicaSet exists and
    /// step 0 begins; for Flagger this is the tick that detects the new revision).
    fn start(&mut self, now: Duration) -> Vec<Command>;
    /// Time has come to `now` (at or after [`Controller::next_wake`]).
    fn wake(&mut self, now: Duration) -> Vec<Command>;
    /// The answer to a [`Command::Measure`].
    fn measured(&mut self, id: MeasureId, result: QueryResult) -> Vec<Command>;
    /// The answer to a [`Command::Judge`]: Kayenta's score, or why it failed.
    fn judged(&mut self, id: MeasureId, score: Result<f64, String>) -> Vec<Command>;
    /// The canary has as many available pods as the last
    /// [`Command::SetCanaryScale`] asked for (at once if the count did not
    /// change). Argo's `setCanaryScale` step waits for it; other peers
    /// ignore it.
    fn canary_scaled(&mut self, now: Duration) -> Vec<Command> {
        let _ = now;
        Vec::new()
    }
    /// When to call `wake` next; `None` while an answer is outstanding, a
    /// scale is awaited, or when done.
    fn next_wake(&self) -> Option<Duration>;
    /// The decision, once made.
    fn outcome(&self) -> Option<&Outcome>;
    /// Every query `Measure` may ask for, by [`Query::index`]; fixed for
    /// the controller's life.
    fn queries(&self) -> &[QuerySpec];
}

/// An answer to a command, for [`drive`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// for a `Measure`
    Measured(QueryResult),
    /// for a `Judge`
    Judged(Result<f64, String>),
}

/// Run a controller to its decision (or until `until`), answering each
/// `Measure`/`Judge` with `answer`; a `SetCanaryScale` is done at once.
/// Returns every command in order.
pub fn drive<C: Controller + ?Sized>(
    controller: &mut C,
    start: Duration,
    until: Duration,
    mut answer: impl FnMut(&Command) -> Option<Answer>,
) -> Vec<Command> {
    let mut log = Vec::new();
    let mut queue: std::collections::VecDeque<Command> = controller.start(start).into();
    // a controller that keeps asking to be woken at the same time without
    // doing anything is a bug; stop rather than spin
    let (mut last_wake, mut idle_wakes) = (None, 0u32);
    loop {
        while let Some(cmd) = queue.pop_front() {
            let more = match (&cmd, answer(&cmd)) {
                (Command::Measure { id, .. }, Some(Answer::Measured(r))) => {
                    controller.measured(*id, r)
                }
                (Command::Judge { id, .. }, Some(Answer::Judged(s))) => controller.judged(*id, s),
                (Command::Measure { id, .. }, _) => {
                    controller.measured(*id, QueryResult::Failed("no answer".into()))
                }
                (Command::Judge { id, .. }, _) => controller.judged(*id, Err("no answer".into())),
                // pods scale at once here
                (Command::SetCanaryScale { at, .. } | Command::ScaleForStep { at, .. }, _) => {
                    controller.canary_scaled(*at)
                }
                _ => Vec::new(),
            };
            log.push(cmd);
            queue.extend(more);
        }
        if controller.outcome().is_some() {
            return log;
        }
        match controller.next_wake() {
            Some(t) if t <= until => {
                queue.extend(controller.wake(t));
                idle_wakes = if queue.is_empty() && last_wake == Some(t) {
                    idle_wakes + 1
                } else {
                    0
                };
                if idle_wakes > 1000 {
                    return log;
                }
                last_wake = Some(t);
            }
            _ => return log,
        }
    }
}
