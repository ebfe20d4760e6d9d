//! `canarylab calibrate`'s round trips through the simulator: its series
//! dumped as OpenMetrics, backfilled into a real Prometheus by promtool,
//! calibrated back (with and without renamed telemetry). The round trip on
//! real components (goldengoose, loadgen, a real Prometheus) runs in
//! tests/local's harness (`tests/local/calibrate.rs` says why).

#[path = "../../prom/tests/support/real.rs"]
mod real;
mod sim_round_trip;
mod sim_round_trip_renamed;
