//! The report types the recorder builds: the whole run per target, each
//! reporting interval, the weight changes; this is loadgen's `--json`
//! output, and what `loadgen merge` reads back.
//!
//! Not for: recording (the recorder owns the histograms these summarize).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::recorder::ErrorKind;

/// Name of the bucket for gateway responses and errors without a version.
pub const UNATTRIBUTED: &str = "unattributed";

/// Error counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// TCP connect failures.
    pub connect: u64,
    /// Timeouts (hangs).
    pub timeout: u64,
    /// Resets and connections closed mid-request.
    pub reset: u64,
    /// Other failures (protocol errors).
    pub other: u64,
}

impl ErrorCounts {
    /// All errors.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.reset + self.other
    }

    pub(super) fn add(&mut self, kind: ErrorKind) {
        match kind {
            ErrorKind::Connect => self.connect += 1,
            ErrorKind::Timeout => self.timeout += 1,
            ErrorKind::Reset => self.reset += 1,
            ErrorKind::Other => self.other += 1,
        }
    }

    pub(super) fn merge(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.reset += o.reset;
        self.other += o.other;
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: round3(h.mean() / 1000.0),
        })
    }
}

/// The whole run, per target; this is the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `open-loop constant`, `open-loop poisson` or `closed-loop`.
    pub mode: String,
    /// Open loop: the rate asked for at the start (requests per second).
    pub target_rate: Option<f64>,
    /// Connections (closed loop) or pool size (open loop).
    pub connections: usize,
    /// The seed of the weighted choice.
    pub seed: u64,
    /// Length of the load phase in seconds (in-flight requests finish after it).
    pub duration_s: f64,
    /// Length of a reporting interval in seconds.
    pub interval_s: f64,
    /// Requests finished per second of the load phase, all targets.
    pub achieved_rate: f64,
    /// All targets together.
    pub total: TargetReport,
    /// One entry per target (gateway mode: per version seen, plus `unattributed`).
    pub targets: Vec<TargetReport>,
    /// One entry per interval, in order.
    pub intervals: Vec<IntervalReport>,
    /// Weights in force from each change on (schedule steps and `Control::set_weights`).
    pub weight_changes: Vec<WeightChange>,
}

impl Report {
    /// The entry of the named target.
    pub fn target(&self, name: &str) -> Option<&TargetReport> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// Counts and latencies of one target over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Version name.
    pub name: String,
    /// URL requests were sent to (the gateway's in gateway mode; none for the total).
    pub url: Option<String>,
    /// Requests finished: responses plus errors.
    pub requests: u64,
    /// Requests that got an HTTP response (any status).
    pub responses: u64,
    /// Responses by status class (`2xx`, `5xx`, ...).
    pub status: BTreeMap<String, u64>,
    /// Requests without a response, by kind.
    pub errors: ErrorCounts,
    /// Open loop: requests dropped because no connection was free and the backlog was full.
    pub dropped: u64,
    /// Requests that started later than `late_after` after their intended time.
    pub late_starts: u64,
    /// Requests finished per second of the load phase.
    pub rate: f64,
    /// Latency from the intended send time (coordinated-omission corrected), responses only.
    pub latency_ms: Option<Latency>,
    /// Latency from the actual send time (what wrk, not wrk2, reports).
    pub uncorrected_latency_ms: Option<Latency>,
    /// Corrected latency by status class.
    pub latency_by_status_ms: BTreeMap<String, Latency>,
    /// The run's histograms (HDR V2 + DEFLATE, base64), what `loadgen
    /// merge` adds up across runs; absent in reports of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<crate::merge::Histograms>,
}

/// One reporting interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalReport {
    /// Start, seconds since the run started.
    pub start_s: f64,
    /// End, seconds since the run started.
    pub end_s: f64,
    /// Requests finished in the interval, all targets.
    pub requests: u64,
    /// Of which errors.
    pub errors: u64,
    /// `requests` per second.
    pub rate: f64,
    /// Per target active in the interval.
    pub targets: Vec<IntervalTarget>,
}

/// One target in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalTarget {
    /// Version name.
    pub name: String,
    /// Requests finished in the interval.
    pub requests: u64,
    /// Of which with a response.
    pub responses: u64,
    /// Responses with status 5xx.
    pub status_5xx: u64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Dropped in the interval.
    pub dropped: u64,
    /// Requests per second in the interval.
    pub rate: f64,
    /// Corrected latency of the interval's responses.
    pub latency_ms: Option<Latency>,
}

/// Weights in force from `at_s` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightChange {
    /// Seconds since the run started.
    pub at_s: f64,
    /// Weight by target name.
    pub weights: BTreeMap<String, f64>,
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
