//! canarylab's real modes.
//!
//! - [`query`]: Kayenta's Prometheus query building (pure);
//! - [`prom`]: a real Prometheus as a child process, and its range queries;
//! - [`analysis`]: Kayenta's multi-interval analysis against Prometheus;
//! - [`plan`]: a scenario at a time scale, as goldengoose configs, traffic
//!   splits and a schedule: the [`ReleasePlan`] both real modes run (pure);
//! - [`local`]: the local mode (mirrors `kube`): [`local::run`], a whole
//!   time-scaled release on loopback driven by the simulator's release
//!   controller (replicas per track, stepped weights, judged windows,
//!   rolling promotion or rollback), and its pieces: goldengoose instances
//!   as supervised child processes ([`local::goose`]), what the controller
//!   hears of them ([`local::pods`]), a readiness probe, control/experiment
//!   series into a Kayenta `MetricSetPair`;
//! - [`ranges`]: range selectors in the user's PromQL scaled by the time
//!   scale (pure);
//! - [`results`]: a release as the simulator's results (`reports` model).
//! - [`serve`]: `canarylab serve`, the judge as an HTTP service for Kayenta,
//!   Argo Rollouts and Flagger.
//! - `kube`: the Kubernetes mode (see `KUBE.md`), with the default cargo
//!   feature `kube`.
//! - [`calibrate`]: the simulator's `[service]` fitted to a service's
//!   metrics in its Prometheus (`canarylab calibrate`).

#![warn(missing_docs)]

pub mod analysis;
pub mod calibrate;
mod cancel;
#[cfg(feature = "kube")]
pub mod kube;
pub mod local;
pub mod plan;
pub mod prom;
pub mod query;
pub mod ranges;
pub mod results;
pub mod serve;

pub use analysis::{
    AnalysisError, AnalysisPlan, AnalysisRun, JudgedInterval, run_analysis, run_analysis_observed,
};
pub use local::goose::{Goose, GooseCommand, Supervision};
pub use local::metric_set_pair;
pub use local::run::{
    Instance, Measured, PeerAnalysis, ReleaseError, ReleaseFailure, ReleaseOptions, ReleaseOutcome,
    ReleaseRecord, Step, StepWatch, run_release,
};
pub use plan::{PlanError, ReleasePlan, Split, plan_release};
pub use prom::{PromApi, Prometheus, Retry, RetryCount, ScrapeTarget, Series};
pub use query::{QueryError, ScopeVars, build_query};
