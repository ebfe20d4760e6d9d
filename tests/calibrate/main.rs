//! `canarylab calibrate`'s round trip on real components (goldengoose
//! processes, loadgen, a real Prometheus), in a test binary of its own.
//!
//! Why its own binary: cargo runs test binaries one after another, so no
//! other real-mode test shares the machine while this one measures. Run
//! beside the local mode's tests on two cores, their goldengoose processes
//! and Prometheus moved the fitted latency sigma by 15 standard errors.

#[path = "../../prom/tests/support/real.rs"]
mod real;
mod round_trip;
mod sim_round_trip;
mod sim_round_trip_renamed;

use cluster::GooseCommand;

/// goldengoose as `canarylab local` runs it: this package's binary.
pub fn goldengoose() -> GooseCommand {
    GooseCommand::new(env!("CARGO_BIN_EXE_canarylab")).arg("goldengoose")
}
