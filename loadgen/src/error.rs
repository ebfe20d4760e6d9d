//! The one error type of the loadgen library: every variant says which input
//! was wrong and why, so the CLI can print it as is.

use std::path::PathBuf;

/// What went wrong before or while running a load.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value (or the matching [`crate::Plan`] field) is invalid.
    #[error("{flag} {value:?}: {problem}")]
    Invalid {
        /// The flag, e.g. `--target`.
        flag: &'static str,
        /// The value the user gave.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Neither targets nor a gateway were given.
    #[error("no targets: give --target NAME=URL[@WEIGHT] (repeatable) or --gateway URL")]
    NoTargets,
    /// Targets and a gateway were both given.
    #[error(
        "--target and --gateway cannot be combined: either loadgen splits the traffic (--target) or the gateway does (--gateway)"
    )]
    TargetsAndGateway,
    /// Weight steps make no sense when the gateway splits the traffic.
    #[error(
        "--step cannot be used with --gateway: the gateway decides the split; loadgen only measures it"
    )]
    StepsWithGateway,
    /// No bound was given, so the run would never stop.
    #[error("unbounded run: give --duration and/or --requests so loadgen stops by itself")]
    Unbounded,
    /// A weight set is unusable (unknown name, negative, or nothing positive).
    #[error("weights {context}: {problem}")]
    Weights {
        /// Where the weights came from, e.g. `--step 2` or `Control::set_weights`.
        context: String,
        /// What is wrong with them.
        problem: String,
    },
    /// A target host name did not resolve.
    #[error("cannot resolve {host}:{port}: {problem}")]
    Resolve {
        /// Host name from the URL.
        host: String,
        /// Port from the URL.
        port: u16,
        /// Resolver message.
        problem: String,
    },
    /// The JSON report could not be written.
    #[error("--json {path}: {source}")]
    WriteJson {
        /// The file given with `--json`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Prometheus endpoint could not listen.
    #[error("--metrics-addr {addr}: {source}")]
    Metrics {
        /// The address given with `--metrics-addr`.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The summary could not be written to the output.
    #[error("writing the summary: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn invalid(flag: &'static str, value: &str, problem: impl Into<String>) -> Self {
        Error::Invalid {
            flag,
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}
