//! `canarylab calibrate`'s round trip on real components (goldengoose
//! processes, loadgen, a real Prometheus), in a test binary of its own.
//!
//! Why its own binary: it shares the machine with no CPU-bound test.
//! `.ci/run` runs it beside `tests/local` only (both mostly wait on real
//! time): at the 2 s median (round_trip.rs says why) their processes
//! moved no fitted value measurably (README "How long CI takes"); at the
//! old 200 ms median they moved the fitted sigma by 15 standard errors.

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
