//! Kayenta's Prometheus query building: [`scenarios::query`], shared with
//! the simulator, which evaluates the same queries on its simulated
//! Prometheus.

pub use scenarios::query::*;
