//! Why a local release stopped: [`ReleaseError`], and [`ReleaseFailure`],
//! the failed step with what was measured up to it.
//!
//! Not for: deciding what a failure undoes (the driver and `promote.rs`
//! do).

use std::time::Duration;

use super::{ReleaseRecord, Step};
use crate::analysis::AnalysisError;
use crate::local::goose;
use crate::plan::PlanError;
use crate::prom;

/// Why a release ended without a verdict, or why its pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The scenario cannot be played at this time scale.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The canary analysis failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// Prometheus failed to start or to answer.
    #[error(transparent)]
    Prometheus(#[from] Box<prom::Error>),
    /// A goldengoose instance failed to start.
    #[error(transparent)]
    Goose(#[from] goose::Error),
    /// loadgen failed.
    #[error("loadgen: {0}")]
    Load(#[from] loadgen::Error),
    /// A goldengoose instance did not pass its readiness probe in time.
    #[error("goldengoose {instance} did not become ready within {waited:?}: {why}")]
    NotReady {
        /// The instance's name.
        instance: String,
        /// How long we waited.
        waited: Duration,
        /// The last probe's failure.
        why: String,
    },
    /// The release was interrupted (Ctrl-C).
    #[error("interrupted during {step}: {detail}")]
    Interrupted {
        /// The step it was interrupted in.
        step: Step,
        /// What was judged and what was stopped.
        detail: String,
    },
    /// The promotion failed part-way and was rolled back to the current
    /// version.
    #[error(
        "promotion undone after {replaced} of {of} production instances were replaced, production serves the current version: {cause}"
    )]
    PromotionUndone {
        /// Production instances replaced before the failure.
        replaced: u32,
        /// Production instances in all.
        of: u32,
        /// The failure that stopped the promotion.
        cause: Box<ReleaseError>,
    },
    /// No listener could be reserved on 127.0.0.1.
    #[error("cannot reserve a listener on 127.0.0.1: {0}")]
    Reserve(std::io::Error),
    /// A background task (loadgen) could not be joined or never started.
    #[error("a background task failed: {0}")]
    Task(String),
    /// The Argo Rollouts or Flagger analysis cannot be planned.
    #[error("analysis {name}: {error}")]
    Peer {
        /// The analysis's name.
        name: String,
        /// Why it cannot be planned.
        #[source]
        error: peers::PeersError,
    },
    /// The scenario names its series in a way the local mode cannot
    /// reproduce.
    #[error("scenario [telemetry] {field}: {problem}")]
    Telemetry {
        /// The `[telemetry]` field at fault.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A release that stopped at `step`; `record` holds what it measured.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {error}")]
pub struct ReleaseFailure {
    /// The step that failed.
    pub step: Step,
    /// Why it failed.
    #[source]
    pub error: ReleaseError,
    /// What the release measured up to the failure.
    pub record: ReleaseRecord,
}
