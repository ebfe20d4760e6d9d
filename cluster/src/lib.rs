//! canarylab's real modes.
//!
//! - [`query`]: Kayenta's Prometheus query building (pure);
//! - [`prom`]: a real Prometheus as a child process, and its range queries;
//! - [`analysis`]: Kayenta's multi-interval analysis against Prometheus;
//! - [`plan`]: a scenario at a time scale, as goldengoose configs, traffic
//!   splits and a schedule (pure);
//! - [`local`]: pieces of the local real mode (goldengoose on loopback,
//!   control/experiment series into a Kayenta `MetricSetPair`);
//! - [`release`]: a whole time-scaled release on loopback (first version).
//!
//! Not here yet: rolling promotion, replicas, the results JSON and the
//! Kubernetes mode (see the crate README).

pub mod analysis;
pub mod local;
pub mod plan;
pub mod prom;
pub mod query;
pub mod release;

pub use analysis::{AnalysisError, AnalysisPlan, AnalysisRun, run_analysis};
pub use local::{Goose, metric_set_pair};
pub use plan::{LocalPlan, PlanError, Split, plan_release};
pub use prom::{PromApi, Prometheus, ScrapeTarget, Series};
pub use query::{QueryError, ScopeVars, build_query};
pub use release::{ReleaseError, ReleaseOptions, ReleaseOutcome, run_release};
