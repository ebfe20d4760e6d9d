//! The library's error type.

use std::path::PathBuf;

use crate::fault::FaultSpecError;

/// What went wrong setting up or running a goldengoose.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--fault` value (or admin API spec) that cannot be used.
    #[error("--fault: {0}")]
    Fault(#[from] FaultSpecError),
    #[error("--admin-token-file {path}: cannot read: {source}")]
    AdminTokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: the admin token is empty")]
    EmptyAdminToken { origin: String },
    #[error("--payload-bytes {0}: larger than the 64 MiB limit")]
    PayloadTooLarge(usize),
    #[error("cannot start the timer thread: {0}")]
    Timer(#[source] std::io::Error),
    #[error("cannot read the listener's address: {0}")]
    Listener(#[source] std::io::Error),
}
