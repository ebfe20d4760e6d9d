//! Recording outcomes into HDR histograms, and the report built from them.
//!
//! Memory is fixed per target: a handful of preallocated histograms (run,
//! uncorrected, one per status class, current interval) that are reset, never
//! grown; each finished interval keeps only a small summary. So a 10-minute run
//! uses what a 10-second one does, plus a few hundred bytes per interval.
//!
//! The pieces: `recorder` takes each request's outcome into the histograms
//! and counts, and closes intervals as time passes; `report` holds the
//! report types it builds (the `--json` output); `prometheus` renders the
//! recorder's counts as Prometheus text.
//!
//! Not for: sending requests or pacing them (`client`, `runner`).

mod prometheus;
mod recorder;
mod report;

pub(crate) use recorder::{Answer, ErrorKind, Outcome, Recorder, ReportHeader};
pub use report::{
    ErrorCounts, IntervalReport, IntervalTarget, Latency, Report, TargetReport, UNATTRIBUTED,
    WeightChange,
};
