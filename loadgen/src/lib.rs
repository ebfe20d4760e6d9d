//! loadgen: a weighted-traffic, open-loop HTTP load generator that
//! attributes every request to its version (production, baseline, canary).
//!
//! It is for producing canary traffic and measuring it honestly: weights that
//! change while the run goes, open-loop arrivals with latency measured from
//! the intended send time, HDR histograms per target, per status class and
//! per interval in constant memory. It is not a general HTTP client (GET
//! only, plain HTTP/1.1) and knows nothing of judges or scenarios.
//!
//! ```no_run
//! # async fn demo() -> Result<(), loadgen::Error> {
//! use std::time::Duration;
//! use loadgen::{Arrival, Control, Plan, RateProfile, Target, Targets};
//!
//! let targets = vec![
//!     Target::parse("baseline=http://127.0.0.1:8081/@95")?,
//!     Target::parse("canary=http://127.0.0.1:8082/@5")?,
//! ];
//! let mut plan = Plan::new(Targets::Weighted(targets), Arrival::Constant(RateProfile::constant(500.0)));
//! plan.duration = Some(Duration::from_secs(300));
//! let control = Control::new();
//! let running = tokio::spawn(loadgen::run(plan, control.clone()));
//! tokio::time::sleep(Duration::from_secs(60)).await;
//! control.set_weights(&[("baseline", 75.0), ("canary", 25.0)])?;
//! let report = running.await.expect("run task")?;
//! println!("{}", serde_json::to_string_pretty(&report).expect("json"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod cli;
mod client;
mod control;
mod error;
mod fdlimit;
pub mod merge;
mod plan;
mod runner;
mod stats;

pub use cli::{Cli, Command, run_cli, write_summary};
pub use control::{Control, Progress};
pub use error::Error;
pub use fdlimit::{RaiseError, raise_fd_limit};
pub use plan::{Arrival, Endpoint, Plan, RateProfile, Target, Targets, WeightStep, parse_duration};
pub use runner::run;
pub use stats::{
    ErrorCounts, IntervalReport, IntervalTarget, Latency, Report, TargetReport, UNATTRIBUTED,
    WeightChange,
};
