//! What a local release did: its [`Step`]s, timeline, promotion, the
//! instances it ran and the measurements it took ([`ReleaseRecord`]), and
//! how it ended with a decision ([`ReleaseOutcome`]).
//!
//! Not for: failures (`error.rs`), nor producing any of this (the driver
//! fills the record).

use judge::MetricSetPair;
use release::{Measurement, ReleaseEnd};

use crate::analysis::{AnalysisRun, JudgedInterval};
use crate::plan::ReleasePlan;

/// A step of the local pipeline, as the timeline and failures name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Reading the scenario at the time scale and checking the queries;
    /// nothing runs yet.
    Plan,
    /// Starting goldengoose instances and waiting for them to be ready.
    Deploy,
    /// Starting Prometheus.
    Prometheus,
    /// Starting the traffic.
    Traffic,
    /// Warmup and the canary analysis.
    Analysis,
    /// The rolling replacement of production.
    Promote,
    /// Traffic back to production, canary stopped.
    Rollback,
}

impl Step {
    /// Lower-case name, as in results and messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Plan => "plan",
            Step::Deploy => "deploy",
            Step::Prometheus => "prometheus",
            Step::Traffic => "traffic",
            Step::Analysis => "analysis",
            Step::Promote => "promote",
            Step::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage on the release's timeline, unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpan {
    /// `deploy`, `warmup`, `analysis`, `promote` or `rollback`.
    pub name: String,
    /// Stage start, unix seconds.
    pub start: f64,
    /// Stage end, unix seconds.
    pub end: f64,
}

/// How far a promotion got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promotion {
    /// Production instances replaced by the new version.
    pub replaced: u32,
    /// Production instances in all.
    pub of: u32,
    /// Whether an interrupted or failed promotion was undone (production
    /// back on the current version).
    pub undone: bool,
}

/// What a release did, also when it ended early.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRecord {
    /// The plan, once the scenario was planned.
    pub plan: Option<ReleasePlan>,
    /// Unix seconds at which the release began.
    pub started_at: f64,
    /// Unix seconds at which traffic reached the canary (window offsets
    /// count from here); `None` if it never did.
    pub traffic_at: Option<f64>,
    /// Stages, in order.
    pub timeline: Vec<StageSpan>,
    /// Intervals judged (also those before a failure).
    pub intervals: Vec<JudgedInterval>,
    /// The analysis's decision, when it reached one.
    pub outcome: Option<release::AnalysisOutcome>,
    /// Every metric's series from `traffic_at` to the decision, on the
    /// query step grid (the last judged interval's when that fetch failed).
    pub series: Vec<MetricSetPair>,
    /// Unix seconds of the first point of `series`.
    pub series_start: f64,
    /// What loadgen counted.
    pub load: Option<loadgen::Report>,
    /// How far the promotion got, when one started.
    pub promotion: Option<Promotion>,
    /// Every goldengoose instance started, in the order they stopped.
    pub instances: Vec<Instance>,
    /// Prometheus queries retried after a transient failure.
    pub prometheus_retries: u64,
    /// What an Argo Rollouts or Flagger analysis measured, in the order
    /// the answers came.
    pub measurements: Vec<Measured>,
}

/// One answered [`Command::Measure`](release::Command::Measure).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The query's name (the peer's metric).
    pub query: String,
    /// The PromQL sent (range selectors scaled).
    pub promql: String,
    /// Unix seconds of the evaluation (a range query's end).
    pub at: f64,
    /// Seconds since the traffic shift, scaled back to the scenario's.
    pub scenario_s: f64,
    /// Prometheus's answer.
    pub value: Measurement,
}

/// A goldengoose instance of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `production-0`, `canary-1`, `production-new-0`, ...
    pub name: String,
    /// Its `version` label: production, baseline or canary.
    pub track: String,
    /// Its processes' PIDs: the first, then one per restart.
    pub pids: Vec<u32>,
    /// Unexpected exits (crashes), each followed by a restart.
    pub exits: u32,
}

/// How a release ended with a decision.
#[derive(Debug)]
pub struct ReleaseOutcome {
    /// The plan the release ran.
    pub plan: ReleasePlan,
    /// The canary analysis: its judged intervals and outcome.
    pub analysis: AnalysisRun,
    /// [`ReleaseEnd::Promote`] or [`ReleaseEnd::Rollback`] (also in
    /// `analysis.outcome`).
    pub decision: ReleaseEnd,
    /// What loadgen counted.
    pub load: loadgen::Report,
    /// Timeline, series, promotion (and the same plan, intervals, load).
    pub record: ReleaseRecord,
}
