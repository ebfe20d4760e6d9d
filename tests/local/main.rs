//! Integration tests of the local real mode: goldengoose processes run as
//! `canarylab goldengoose` (this package's binary), a real Prometheus
//! (`apt-get install prometheus`, or $CANARYLAB_PROMETHEUS), real traffic.

mod e2e;
mod goose;
mod release;

use cluster::GooseCommand;

/// goldengoose as `canarylab local` runs it: this package's binary.
pub fn goldengoose() -> GooseCommand {
    GooseCommand::new(env!("CARGO_BIN_EXE_canarylab")).arg("goldengoose")
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (comm) STATE ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
