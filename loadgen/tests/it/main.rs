//! Integration tests of loadgen against in-process servers on 127.0.0.1:0.

mod cli;
mod errors;
mod goose;
mod server;
mod threads;
mod timing;
mod weights;

use std::time::Duration;

use loadgen::{Arrival, Plan, RateProfile, Target, Targets};

/// A weighted plan over `(name, url, weight)` targets, loopback only.
pub fn plan(targets: &[(&str, String, f64)], arrival: Arrival) -> Plan {
    let targets = targets
        .iter()
        .map(|(n, u, w)| Target::parse(&format!("{n}={u}@{w}")).expect("target"))
        .collect();
    let mut p = Plan::new(Targets::Weighted(targets), arrival);
    p.loopback_only = true;
    p.timeout = Duration::from_secs(2);
    p
}

pub fn open(rate: f64) -> Arrival {
    Arrival::Constant(RateProfile::constant(rate))
}

/// `k` lies within `sds` standard deviations of Binomial(n, p)'s mean.
pub fn within_binomial(k: u64, n: u64, p: f64, sds: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (k as f64 - mean).abs() <= sds * sd.max(0.5)
}
