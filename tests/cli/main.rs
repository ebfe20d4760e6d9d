//! The `canarylab` command line, driven in-process (and once as a real
//! process, for exit codes and stderr).

#![allow(clippy::unwrap_used)]

#[cfg(feature = "local")]
mod calibrate;
mod judge;
mod judges;
mod query;
#[cfg(feature = "local")]
mod serve;
mod shard;
mod study;
mod tune;

use std::path::PathBuf;

use canarylab::{Cli, Exit, run};
use clap::Parser;

/// Path under the repository root.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Run the CLI in-process; returns the exit status and stdout, or the error.
pub fn canarylab(args: &[&str]) -> Result<(Exit, String), String> {
    let cli = Cli::try_parse_from(std::iter::once("canarylab").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let exit = run(cli, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok((exit, String::from_utf8(out).expect("utf-8 output")))
}
