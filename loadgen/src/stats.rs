//! Recording outcomes into HDR histograms, and the report built from them.
//!
//! Memory is fixed per target: a handful of preallocated histograms (run,
//! uncorrected, one per status class, current interval) that are reset, never
//! grown; each finished interval keeps only a small summary. So a 10-minute run
//! uses what a 10-second one does, plus a few hundred bytes per interval.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, 3 significant digits, up to an hour.
const HIST_MAX_US: u64 = 3_600_000_000;
/// Gateway mode: at most this many distinct versions, the rest go to `other`.
const MAX_VERSIONS: usize = 32;
/// Name of the bucket for gateway responses and errors without a version.
pub const UNATTRIBUTED: &str = "unattributed";

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; fall back to an
    // auto-resizing histogram rather than panicking if that ever changes.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).unwrap_or_else(|_| {
        let mut h = Histogram::new(3).unwrap_or_else(|_| unreachable!("sigfig 3 is valid"));
        h.auto(true);
        h
    })
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// TCP connect failed (refused, unreachable).
    Connect,
    /// No complete response within the timeout (a hang).
    Timeout,
    /// The connection was reset or closed mid-request.
    Reset,
    /// Anything else (e.g. an invalid response).
    Other,
}

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

    fn add(&mut self, kind: ErrorKind) {
        match kind {
            ErrorKind::Connect => self.connect += 1,
            ErrorKind::Timeout => self.timeout += 1,
            ErrorKind::Reset => self.reset += 1,
            ErrorKind::Other => self.other += 1,
        }
    }

    fn merge(&mut self, o: &ErrorCounts) {
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

/// How one request ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub target: usize,
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
    pub result: Result<Answer, ErrorKind>,
}

/// The part of a response loadgen keeps.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    /// Gateway mode: the version header's value.
    pub version: Option<hyper::header::HeaderValue>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    responses: u64,
    status: [u64; 6],
    errors: ErrorCounts,
    dropped: u64,
    late_starts: u64,
}

#[derive(Debug)]
struct TargetStats {
    name: String,
    url: Option<String>,
    run: Counts,
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    by_status: [Option<Histogram<u64>>; 6],
    interval: Counts,
    interval_hist: Histogram<u64>,
}

impl TargetStats {
    fn new(name: String, url: Option<String>) -> TargetStats {
        TargetStats {
            name,
            url,
            run: Counts::default(),
            corrected: histogram(),
            uncorrected: histogram(),
            by_status: Default::default(),
            interval: Counts::default(),
            interval_hist: histogram(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn class_of(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

/// Collects outcomes while a run goes; one per run, behind a mutex.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    interval: Duration,
    late_after: Duration,
    gateway_url: Option<String>,
    targets: Vec<TargetStats>,
    by_version: HashMap<String, usize>,
    interval_index: u64,
    /// End of the current interval: rolling is a comparison until then.
    interval_end: Instant,
    intervals: Vec<IntervalReport>,
    weight_changes: Vec<WeightChange>,
}

impl Recorder {
    /// `names` are the weighted targets (with URLs); for a gateway run, pass
    /// none and the gateway URL.
    pub(crate) fn new(
        start: Instant,
        interval: Duration,
        late_after: Duration,
        names: Vec<(String, String)>,
        gateway_url: Option<String>,
    ) -> Recorder {
        let mut targets: Vec<TargetStats> = names
            .into_iter()
            .map(|(n, u)| TargetStats::new(n, Some(u)))
            .collect();
        if gateway_url.is_some() {
            targets.push(TargetStats::new(UNATTRIBUTED.into(), gateway_url.clone()));
        }
        Recorder {
            start,
            interval,
            late_after,
            gateway_url,
            targets,
            by_version: HashMap::new(),
            interval_index: 0,
            interval_end: start + interval,
            intervals: Vec::new(),
            weight_changes: Vec::new(),
        }
    }

    fn slot(&mut self, target: usize, version: Option<&hyper::header::HeaderValue>) -> usize {
        if self.gateway_url.is_none() {
            return target;
        }
        let Some(name) = version.and_then(|v| v.to_str().ok()) else {
            return 0;
        };
        if let Some(&i) = self.by_version.get(name) {
            return i;
        }
        let name = if self.by_version.len() >= MAX_VERSIONS {
            "other"
        } else {
            name
        };
        if let Some(&i) = self.by_version.get(name) {
            return i;
        }
        self.targets
            .push(TargetStats::new(name.to_string(), self.gateway_url.clone()));
        let i = self.targets.len() - 1;
        self.by_version.insert(name.to_string(), i);
        i
    }

    pub(crate) fn record(&mut self, o: &Outcome) {
        self.roll(o.done);
        let late = o.sent.saturating_duration_since(o.intended) > self.late_after;
        let (slot, status) = match &o.result {
            Ok(a) => (self.slot(o.target, a.version.as_ref()), Some(a.status)),
            Err(_) => (self.slot(o.target, None), None),
        };
        let Some(t) = self.targets.get_mut(slot) else {
            return;
        };
        for c in [&mut t.run, &mut t.interval] {
            c.requests += 1;
            c.late_starts += u64::from(late);
            match (&o.result, status) {
                (Ok(_), Some(s)) => {
                    c.responses += 1;
                    c.status[class_of(s)] += 1;
                }
                (Err(kind), _) => c.errors.add(*kind),
                _ => {}
            }
        }
        if let Some(s) = status {
            let corrected = micros(o.done.saturating_duration_since(o.intended));
            let uncorrected = micros(o.done.saturating_duration_since(o.sent));
            t.corrected.saturating_record(corrected);
            t.uncorrected.saturating_record(uncorrected);
            t.interval_hist.saturating_record(corrected);
            t.by_status[class_of(s)]
                .get_or_insert_with(histogram)
                .saturating_record(corrected);
        }
    }

    pub(crate) fn record_dropped(&mut self, target: usize, n: u64, now: Instant) {
        self.roll(now);
        let slot = if self.gateway_url.is_some() {
            0
        } else {
            target
        };
        if let Some(t) = self.targets.get_mut(slot) {
            t.run.dropped += n;
            t.interval.dropped += n;
        }
    }

    pub(crate) fn record_weights(&mut self, at: Instant, weights: Vec<(String, f64)>) {
        self.weight_changes.push(WeightChange {
            at_s: secs3(at.saturating_duration_since(self.start)),
            weights: weights.into_iter().collect(),
        });
    }

    /// Closes every interval that ended before `now`.
    pub(crate) fn roll(&mut self, now: Instant) {
        if now < self.interval_end {
            return;
        }
        let elapsed = now.saturating_duration_since(self.start);
        let index = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64;
        while self.interval_index < index {
            let start = self.interval * self.interval_index as u32;
            self.close_interval(start, start + self.interval);
        }
        self.interval_end = self.start + self.interval * (self.interval_index as u32 + 1);
    }

    fn close_interval(&mut self, start: Duration, end: Duration) {
        let secs = (end - start).as_secs_f64().max(1e-9);
        let mut report = IntervalReport {
            start_s: secs3(start),
            end_s: secs3(end),
            requests: 0,
            errors: 0,
            rate: 0.0,
            targets: Vec::new(),
        };
        for t in &mut self.targets {
            let c = std::mem::take(&mut t.interval);
            report.requests += c.requests;
            report.errors += c.errors.total();
            if c.requests > 0 || c.dropped > 0 || self.gateway_url.is_none() {
                report.targets.push(IntervalTarget {
                    name: t.name.clone(),
                    requests: c.requests,
                    responses: c.responses,
                    status_5xx: c.status[4],
                    errors: c.errors,
                    dropped: c.dropped,
                    rate: round3(c.requests as f64 / secs),
                    latency_ms: Latency::of(&t.interval_hist),
                });
            }
            t.interval_hist.reset();
        }
        report.rate = round3(report.requests as f64 / secs);
        self.intervals.push(report);
        self.interval_index += 1;
    }

    pub(crate) fn progress(&self, now: Instant) -> crate::Progress {
        let mut p = crate::Progress {
            elapsed: now.saturating_duration_since(self.start),
            ..Default::default()
        };
        let mut p99 = 0u64;
        for t in &self.targets {
            p.requests += t.run.requests;
            p.responses += t.run.responses;
            p.errors += t.run.errors.total();
            p.dropped += t.run.dropped;
            if !t.corrected.is_empty() {
                p99 = p99.max(t.corrected.value_at_quantile(0.99));
            }
        }
        p.p99_ms = p99 as f64 / 1000.0;
        p.rate = match self.intervals.last() {
            Some(i) => i.rate,
            None => p.requests as f64 / p.elapsed.as_secs_f64().max(1e-3),
        };
        p
    }

    /// The client-side view in Prometheus text format, labelled by target.
    pub(crate) fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        const BUCKETS_S: [f64; 14] = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "loadgen_responses_total",
            "counter",
            "Responses received, by target and status class.",
        );
        for t in &self.targets {
            for (class, n) in CLASSES.iter().zip(t.run.status) {
                let _ = writeln!(
                    out,
                    "loadgen_responses_total{{target=\"{}\",class=\"{class}\"}} {n}",
                    escape(&t.name)
                );
            }
        }
        head(
            &mut out,
            "loadgen_errors_total",
            "counter",
            "Requests without a response, by target and kind.",
        );
        for t in &self.targets {
            let e = &t.run.errors;
            for (kind, n) in [
                ("connect", e.connect),
                ("timeout", e.timeout),
                ("reset", e.reset),
                ("other", e.other),
            ] {
                let _ = writeln!(
                    out,
                    "loadgen_errors_total{{target=\"{}\",kind=\"{kind}\"}} {n}",
                    escape(&t.name)
                );
            }
        }
        head(
            &mut out,
            "loadgen_dropped_total",
            "counter",
            "Open loop: requests dropped because no connection was free.",
        );
        for t in &self.targets {
            let _ = writeln!(
                out,
                "loadgen_dropped_total{{target=\"{}\"}} {}",
                escape(&t.name),
                t.run.dropped
            );
        }
        head(
            &mut out,
            "loadgen_late_starts_total",
            "counter",
            "Requests that started late against their intended time.",
        );
        for t in &self.targets {
            let _ = writeln!(
                out,
                "loadgen_late_starts_total{{target=\"{}\"}} {}",
                escape(&t.name),
                t.run.late_starts
            );
        }
        head(
            &mut out,
            "loadgen_request_duration_seconds",
            "histogram",
            "Latency from the intended send time (coordinated-omission corrected).",
        );
        for t in &self.targets {
            let name = escape(&t.name);
            let h = &t.corrected;
            let mut cumulative = 0u64;
            let mut values = h.iter_recorded().peekable();
            for le in BUCKETS_S {
                let limit_us = (le * 1e6) as u64;
                while let Some(v) = values.peek() {
                    if h.highest_equivalent(v.value_iterated_to()) > limit_us {
                        break;
                    }
                    cumulative += v.count_since_last_iteration();
                    values.next();
                }
                let _ = writeln!(
                    out,
                    "loadgen_request_duration_seconds_bucket{{target=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "loadgen_request_duration_seconds_bucket{{target=\"{name}\",le=\"+Inf\"}} {}",
                h.len()
            );
            let sum = h.mean() * h.len() as f64 / 1e6;
            let _ = writeln!(
                out,
                "loadgen_request_duration_seconds_sum{{target=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "loadgen_request_duration_seconds_count{{target=\"{name}\"}} {}",
                h.len()
            );
        }
        out
    }

    /// Closes the last, partial interval and builds the report.
    pub(crate) fn finish(
        &mut self,
        load_end: Instant,
        now: Instant,
        header: ReportHeader,
    ) -> Report {
        self.roll(now);
        let start = self.interval * self.interval_index as u32;
        let end = now.saturating_duration_since(self.start);
        let pending = self
            .targets
            .iter()
            .any(|t| t.interval.requests > 0 || t.interval.dropped > 0);
        if end > start && (pending || end - start >= self.interval / 10) {
            self.close_interval(start, end);
        }
        let load_s = load_end
            .saturating_duration_since(self.start)
            .as_secs_f64()
            .max(1e-9);
        let mut total = TargetStats::new("total".into(), None);
        let mut targets = Vec::new();
        for t in &self.targets {
            if self.gateway_url.is_some()
                && t.name == UNATTRIBUTED
                && t.run.requests == 0
                && t.run.dropped == 0
            {
                continue;
            }
            merge_counts(&mut total.run, &t.run);
            // Same bounds everywhere, so adding cannot fail; a failure would only lose the total's tail.
            let _ = total.corrected.add(&t.corrected);
            let _ = total.uncorrected.add(&t.uncorrected);
            for (i, h) in t.by_status.iter().enumerate() {
                if let Some(h) = h {
                    let _ = total.by_status[i].get_or_insert_with(histogram).add(h);
                }
            }
            targets.push(target_report(t, load_s));
        }
        let total = target_report(&total, load_s);
        Report {
            mode: header.mode,
            target_rate: header.target_rate,
            connections: header.connections,
            seed: header.seed,
            duration_s: secs3(Duration::from_secs_f64(load_s)),
            interval_s: self.interval.as_secs_f64(),
            achieved_rate: total.rate,
            total,
            targets,
            intervals: std::mem::take(&mut self.intervals),
            weight_changes: std::mem::take(&mut self.weight_changes),
        }
    }
}

/// Run-level facts the recorder does not know.
#[derive(Debug)]
pub(crate) struct ReportHeader {
    pub mode: String,
    pub target_rate: Option<f64>,
    pub connections: usize,
    pub seed: u64,
}

fn merge_counts(a: &mut Counts, b: &Counts) {
    a.requests += b.requests;
    a.responses += b.responses;
    for i in 0..6 {
        a.status[i] += b.status[i];
    }
    a.errors.merge(&b.errors);
    a.dropped += b.dropped;
    a.late_starts += b.late_starts;
}

fn target_report(t: &TargetStats, load_s: f64) -> TargetReport {
    let c = &t.run;
    TargetReport {
        name: t.name.clone(),
        url: t.url.clone(),
        requests: c.requests,
        responses: c.responses,
        status: CLASSES
            .iter()
            .zip(c.status)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        errors: c.errors,
        dropped: c.dropped,
        late_starts: c.late_starts,
        rate: round3(c.requests as f64 / load_s),
        latency_ms: Latency::of(&t.corrected),
        uncorrected_latency_ms: Latency::of(&t.uncorrected),
        latency_by_status_ms: CLASSES
            .iter()
            .zip(&t.by_status)
            .filter_map(|(k, h)| Some((k.to_string(), Latency::of(h.as_ref()?)?)))
            .collect(),
        histograms: crate::merge::Histograms::of(
            &t.corrected,
            &t.uncorrected,
            CLASSES
                .iter()
                .zip(&t.by_status)
                .filter_map(|(k, h)| Some((*k, h.as_ref()?))),
        ),
    }
}

/// Escapes a Prometheus label value (gateway versions come from response headers).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn secs3(d: Duration) -> f64 {
    round3(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        target: usize,
        start: Instant,
        intended_ms: u64,
        sent_ms: u64,
        done_ms: u64,
        status: u16,
    ) -> Outcome {
        Outcome {
            target,
            intended: start + Duration::from_millis(intended_ms),
            sent: start + Duration::from_millis(sent_ms),
            done: start + Duration::from_millis(done_ms),
            result: Ok(Answer {
                status,
                version: None,
            }),
        }
    }

    fn header() -> ReportHeader {
        ReportHeader {
            mode: "closed-loop".into(),
            target_rate: None,
            connections: 1,
            seed: 1,
        }
    }

    #[test]
    fn corrected_and_uncorrected_latency_and_intervals() {
        let start = Instant::now();
        let mut r = Recorder::new(
            start,
            Duration::from_secs(1),
            Duration::from_millis(10),
            vec![
                ("a".into(), "http://x/".into()),
                ("b".into(), "http://y/".into()),
            ],
            None,
        );
        // Intended at 0, started 100 ms late, answered 5 ms later.
        r.record(&outcome(0, start, 0, 100, 105, 200));
        r.record(&outcome(0, start, 1500, 1500, 1502, 503));
        r.record(&Outcome {
            result: Err(ErrorKind::Timeout),
            ..outcome(1, start, 1600, 1600, 2600, 0)
        });
        r.record_dropped(1, 2, start + Duration::from_millis(2700));
        let rep = r.finish(
            start + Duration::from_secs(3),
            start + Duration::from_secs(3),
            header(),
        );
        let a = rep.target("a").expect("a");
        assert_eq!((a.requests, a.responses, a.late_starts), (2, 2, 1));
        assert_eq!(a.status.get("2xx"), Some(&1));
        assert_eq!(a.status.get("5xx"), Some(&1));
        let lat = a.latency_ms.expect("latency");
        assert!((lat.max - 105.0).abs() < 0.2, "{lat:?}");
        let un = a.uncorrected_latency_ms.expect("uncorrected");
        assert!((un.max - 5.0).abs() < 0.1, "{un:?}");
        let b = rep.target("b").expect("b");
        assert_eq!((b.errors.timeout, b.dropped, b.responses), (1, 2, 0));
        assert!(b.latency_ms.is_none());
        assert_eq!(rep.total.requests, 3);
        assert_eq!(rep.intervals.len(), 3);
        assert_eq!(rep.intervals[0].requests, 1);
        assert_eq!(rep.intervals[1].requests, 1);
        assert_eq!(
            rep.intervals[2].requests, 1,
            "the timeout finished at 2.6 s"
        );
        assert_eq!(rep.intervals[2].targets[1].dropped, 2);
        assert!((rep.achieved_rate - 1.0).abs() < 1e-9);
    }

    #[test]
    fn gateway_attribution_by_header() {
        let start = Instant::now();
        let mut r = Recorder::new(
            start,
            Duration::from_secs(10),
            Duration::from_millis(10),
            vec![],
            Some("http://gw/".into()),
        );
        for v in ["v1", "v2", "v1"] {
            let mut o = outcome(0, start, 0, 0, 1, 200);
            o.result = Ok(Answer {
                status: 200,
                version: Some(hyper::header::HeaderValue::from_static(v)),
            });
            r.record(&o);
        }
        r.record(&outcome(0, start, 0, 0, 1, 200));
        let rep = r.finish(
            start + Duration::from_secs(1),
            start + Duration::from_secs(1),
            header(),
        );
        let names: Vec<_> = rep
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.requests))
            .collect();
        assert_eq!(names, vec![(UNATTRIBUTED, 1), ("v1", 2), ("v2", 1)]);
    }

    #[test]
    fn prometheus_text_is_labelled_by_target() {
        let start = Instant::now();
        let mut r = Recorder::new(
            start,
            Duration::from_secs(10),
            Duration::ZERO,
            vec![("canary".into(), "u".into())],
            None,
        );
        r.record(&outcome(0, start, 0, 0, 3, 200));
        r.record(&outcome(0, start, 0, 0, 30, 503));
        r.record(&Outcome {
            result: Err(ErrorKind::Reset),
            ..outcome(0, start, 0, 0, 1, 0)
        });
        let text = r.prometheus();
        for line in [
            "loadgen_responses_total{target=\"canary\",class=\"2xx\"} 1",
            "loadgen_responses_total{target=\"canary\",class=\"5xx\"} 1",
            "loadgen_errors_total{target=\"canary\",kind=\"reset\"} 1",
            "loadgen_request_duration_seconds_bucket{target=\"canary\",le=\"0.0025\"} 0",
            "loadgen_request_duration_seconds_bucket{target=\"canary\",le=\"0.005\"} 1",
            "loadgen_request_duration_seconds_bucket{target=\"canary\",le=\"0.025\"} 1",
            "loadgen_request_duration_seconds_bucket{target=\"canary\",le=\"0.05\"} 2",
            "loadgen_request_duration_seconds_bucket{target=\"canary\",le=\"+Inf\"} 2",
            "loadgen_request_duration_seconds_count{target=\"canary\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn memory_does_not_grow_with_requests() {
        let start = Instant::now();
        let mut r = Recorder::new(
            start,
            Duration::from_secs(3600),
            Duration::ZERO,
            vec![("a".into(), "u".into())],
            None,
        );
        let before = r.targets[0].corrected.distinct_values();
        for i in 0..100_000u64 {
            r.record(&outcome(0, start, 0, 0, i % 5000, 200));
        }
        assert_eq!(
            r.targets[0].corrected.distinct_values(),
            before,
            "no resizing"
        );
    }
}
