//! Recording outcomes into HDR histograms while a run goes, closing
//! reporting intervals, and building the [`Report`] at the end.
//!
//! Memory is fixed per target: a handful of preallocated histograms that
//! are reset, never grown. Not for: the report's shape (`report`) or the
//! Prometheus text (`prometheus`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::report::{
    ErrorCounts, IntervalReport, IntervalTarget, Latency, Report, TargetReport, UNATTRIBUTED,
    WeightChange, round3,
};

/// Latencies are recorded in microseconds, 3 significant digits, up to an hour.
pub(super) const HIST_MAX_US: u64 = 3_600_000_000;
/// Gateway mode: at most this many distinct versions, the rest go to `other`.
pub(super) const MAX_VERSIONS: usize = 32;

pub(super) const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

pub(super) fn histogram() -> Histogram<u64> {
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
pub(super) struct Counts {
    pub(super) requests: u64,
    pub(super) responses: u64,
    pub(super) status: [u64; 6],
    pub(super) errors: ErrorCounts,
    pub(super) dropped: u64,
    pub(super) late_starts: u64,
}

#[derive(Debug)]
pub(super) struct TargetStats {
    pub(super) name: String,
    pub(super) url: Option<String>,
    pub(super) run: Counts,
    pub(super) corrected: Histogram<u64>,
    pub(super) uncorrected: Histogram<u64>,
    pub(super) by_status: [Option<Histogram<u64>>; 6],
    pub(super) interval: Counts,
    pub(super) interval_hist: Histogram<u64>,
}

impl TargetStats {
    pub(super) fn new(name: String, url: Option<String>) -> TargetStats {
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

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub(super) fn class_of(status: u16) -> usize {
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
    pub(super) targets: Vec<TargetStats>,
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

    pub(super) fn slot(
        &mut self,
        target: usize,
        version: Option<&hyper::header::HeaderValue>,
    ) -> usize {
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

    pub(super) fn close_interval(&mut self, start: Duration, end: Duration) {
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

pub(super) fn merge_counts(a: &mut Counts, b: &Counts) {
    a.requests += b.requests;
    a.responses += b.responses;
    for i in 0..6 {
        a.status[i] += b.status[i];
    }
    a.errors.merge(&b.errors);
    a.dropped += b.dropped;
    a.late_starts += b.late_starts;
}

pub(super) fn target_report(t: &TargetStats, load_s: f64) -> TargetReport {
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

pub(super) fn secs3(d: Duration) -> f64 {
    round3(d.as_secs_f64())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn outcome(
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

    pub(super) fn header() -> ReportHeader {
        ReportHeader {
            mode: "closed-loop".into(),
            target_rate: None,
            connections: 1,
            seed: 1,
        }
    }

    #[test]
    pub(super) fn corrected_and_uncorrected_latency_and_intervals() {
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
    pub(super) fn gateway_attribution_by_header() {
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
    pub(super) fn memory_does_not_grow_with_requests() {
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
