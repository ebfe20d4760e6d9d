//! The library's error type.

use std::path::PathBuf;

use crate::fault::FaultSpecError;

/// What went wrong setting up or running a goldengoose.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--fault` value (or admin API spec) that cannot be used.
    #[error("--fault: {0}")]
    Fault(#[from] FaultSpecError),
    /// `--admin-token-file` could not be read.
    #[error("--admin-token-file {path}: cannot read: {source}")]
    AdminTokenFile {
        /// The file given.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The admin token is empty or only whitespace.
    #[error("{origin}: the admin token is empty")]
    EmptyAdminToken {
        /// Where the token came from (the file or the environment variable).
        origin: String,
    },
    /// `--payload-bytes` over the 64 MiB limit (the value, in bytes).
    #[error("--payload-bytes {0}: larger than the 64 MiB limit")]
    PayloadTooLarge(usize),
    /// The thread that checks time-based faults could not be started.
    #[error("cannot start the timer thread: {0}")]
    Timer(#[source] std::io::Error),
    /// The listener's local address could not be read.
    #[error("cannot read the listener's address: {0}")]
    Listener(#[source] std::io::Error),
}
