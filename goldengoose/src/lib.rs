//! goldengoose: the web server under test.
//!
//! The application whose new versions canarylab releases: it serves a work
//! endpoint over HTTP/1.1 and HTTP/2 (h2c), can be made to regress on purpose
//! through injectable [faults](fault::Fault) (latency, errors, CPU, memory,
//! slow start, crash, hang), set at start or at run time through an admin
//! API, and exposes Prometheus metrics labelled with its version.
//!
//! Run one in-process:
//!
//! ```no_run
//! # async fn example() -> Result<(), goldengoose::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(goldengoose::Error::Listener)?;
//! let config = goldengoose::Config {
//!     version: "canary".into(),
//!     faults: vec!["latency=50ms@0.1".parse()?],
//!     ..Default::default()
//! };
//! let outcome = goldengoose::run(listener, config, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! Or as a child process: the binary is [`cli::main`] (also callable from
//! another binary), [`Config::to_args`] gives its command line, and
//! `--listen-stdin` makes it serve a listener the parent bound.
//!
//! Not for: generating load (that is `loadgen`) or judging (that is `judge`).

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod error;
pub mod fault;
pub mod istio;
pub mod metrics;
pub mod server;
mod timer;
pub mod units;

pub use admin::{FaultsStatus, FaultsUpdate};
pub use config::{ADMIN_TOKEN_ENV, Args, Config};
pub use error::Error;
pub use fault::{CrashAfter, Delay, Fault, FaultSpecError, LeakRate};
pub use istio::{Istio, IstioSpecError};
pub use server::{Outcome, run};

/// Exit status of the binary when a crash fault fires (EX_SOFTWARE).
pub const CRASH_EXIT_CODE: i32 = 70;
