//! `canarylab calibrate`: the simulator's `[service]` fitted to a real
//! service's metrics in its Prometheus.
//!
//! - [`fit`]: the fitting core (pure): per-pod series in, every parameter
//!   with its standard error out;
//! - [`source`]: the range queries (chunked to Prometheus's 11,000 points
//!   per series) that read goldengoose's or Istio's metric families, under
//!   a `[telemetry]`'s renames ([`source::Names`]), into
//!   [`fit::Observations`];
//! - [`write`](mod@write): the scenario file with one comment per fitted value, the
//!   printed summary and the HTML page;
//! - [`uncertainty`]: the fit's uncertainty carried into a prediction
//!   (parameter draws for a parametric bootstrap, and the split of the
//!   predictions' spread into the simulation's noise and the fit's).
//!
//! Why here: `cluster` is where canarylab reads Prometheus (`PromApi`),
//! and it already depends on `scenarios` (the output) and `reports`; a
//! crate of its own would be one more for a reader to accept for three
//! files.

pub mod fit;
pub mod source;
pub mod uncertainty;
pub mod write;

pub use fit::{Calibration, Fit, Observations, calibrate};
pub use source::{Family, Names, Query, Window, read, read_named};
