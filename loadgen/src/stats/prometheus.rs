//! The recorder's counts and corrected latencies as Prometheus text,
//! labelled by target: the client-side view a scrape of loadgen sees.
//!
//! Not for: the JSON report (`report`).

use super::recorder::{CLASSES, Recorder};

impl Recorder {
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
}

/// Escapes a Prometheus label value (gateway versions come from response headers).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::recorder::tests::outcome;
    use super::super::recorder::{ErrorKind, Outcome};
    use super::*;

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
}
