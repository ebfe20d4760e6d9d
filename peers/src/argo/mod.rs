//! Argo Rollouts: its files ([`spec`]), its AnalysisRun rules ([`run`]) and
//! its canary Rollout controller ([`rollout`]) and the canary's pod count
//! ([`scale`]).

pub mod rollout;
pub mod run;
pub mod scale;
pub mod spec;

pub use rollout::ArgoRollout;
pub use run::{AnalysisRun, Phase};
pub use spec::{ArgoDocs, Hashes, Metric, Provider, RolloutPlan, RunSpec, Step};
