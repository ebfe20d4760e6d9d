//! A discrete-event simulator of canary releases and the Monte Carlo
//! studies built on it.
//!
//! [`run::run_once`] plays one release (build, deploy, traffic shift,
//! Kayenta analysis with the judge crate, promote or roll back) in virtual
//! time from a seed, carrying out the commands of a sans-IO release
//! controller ([`release::kayenta::Kayenta`]); [`study::run_study`] plays
//! thousands per scenario on all cores and sums them up as
//! [`reports::model::Study`]; [`sweep`]
//! repeats a study over a grid of judge and pipeline parameters;
//! [`shard`] splits a study over machines and merges the pieces back.

pub mod analysis;
pub mod engine;
pub mod metrics;
pub mod oracle;
pub mod prometheus;
pub mod run;
mod sample;
pub mod series;
pub mod shard;
pub mod study;
pub mod sweep;

/// A scenario of the shipped catalog, for unit tests.
#[cfg(test)]
pub(crate) fn catalog_scenario(name: &str) -> scenarios::Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog")
        .join(name);
    scenarios::Scenario::load(&path, None).expect("catalog scenario loads")
}

pub use run::{Decision, Prepared, RunOutcome, run_once};
pub use study::{StudyAnalysis, StudyOptions, run_seed, run_study, run_study_side_by_side};

/// What can stop a study.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A scenario's config or schedule is unusable.
    #[error("scenario {name}: {message}")]
    Scenario {
        /// Scenario name.
        name: String,
        /// The problem.
        message: String,
    },
    /// An `--analysis` file is unreadable or unusable.
    #[error("analysis {file}: {message}")]
    Analysis {
        /// The file.
        file: String,
        /// The problem (for YAML: the document and field).
        message: String,
    },
    /// A sweep parameter is unknown or has a bad value.
    #[error("sweep: {0}")]
    Sweep(String),
}
