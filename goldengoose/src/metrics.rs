//! Prometheus metrics of the work endpoint and the process.
//!
//! The names are a contract (see README.md): the simulator, the local mode's
//! Prometheus queries and Kayenta canary configs use them. Every series
//! carries `version`. Only the work endpoint `/` is counted, so scrapes,
//! probes and admin calls do not dilute the canary signal.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::istio::{ISTIO_DURATION_BUCKETS_MS, Istio};

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of `http_request_duration_seconds`, 1 ms to 10 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseCodeLabel {
    response_code: u16,
}

type MsHistograms = Family<ResponseCodeLabel, Histogram, fn() -> Histogram>;

fn istio_histogram() -> Histogram {
    Histogram::new(ISTIO_DURATION_BUCKETS_MS)
}

/// The Istio-named families of `--istio` (see [`crate::istio`]), in a
/// registry of their own: their labels are Istio's, without `version`.
#[derive(Debug)]
struct IstioMetrics {
    registry: Registry,
    requests: Family<ResponseCodeLabel, Counter>,
    durations: MsHistograms,
    /// Handles for response code 200, so the hot path skips the families' locks.
    ok: Counter,
    ok_duration: Histogram,
}

impl IstioMetrics {
    fn new(istio: &Istio, version: &str) -> Self {
        let mut registry = Registry::with_labels(
            istio
                .labels(version)
                .into_iter()
                .map(|(name, value)| (Cow::Borrowed(name), Cow::Owned(value))),
        );
        let requests = Family::<ResponseCodeLabel, Counter>::default();
        registry.register(
            "istio_requests",
            "Requests to the work endpoint, as the destination's Istio sidecar counts them",
            requests.clone(),
        );
        let durations: MsHistograms = Family::new_with_constructor(istio_histogram);
        registry.register(
            "istio_request_duration_milliseconds",
            "Duration of work requests in whole milliseconds (truncated), as the destination's Istio sidecar records them",
            durations.clone(),
        );
        let code = ResponseCodeLabel { response_code: 200 };
        let ok = requests.get_or_create(&code).clone();
        let ok_duration = durations.get_or_create(&code).clone();
        IstioMetrics {
            registry,
            requests,
            durations,
            ok,
            ok_duration,
        }
    }

    fn observe(&self, code: u16, elapsed: Duration) {
        // Istio's stats filter records `duration / absl::Milliseconds(1)`,
        // an integer division: whole milliseconds, truncated.
        let ms = elapsed.as_millis() as f64;
        if code == 200 {
            self.ok.inc();
            self.ok_duration.observe(ms);
        } else {
            let label = ResponseCodeLabel {
                response_code: code,
            };
            self.requests.get_or_create(&label).inc();
            self.durations.get_or_create(&label).observe(ms);
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    goldengoose_version: &'static str,
}

/// The registry and the handles the server updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabel, Counter>,
    ok: Counter,
    duration: Histogram,
    in_flight: Gauge,
    heap_bytes: Arc<AtomicU64>,
    istio: Option<IstioMetrics>,
}

impl Metrics {
    /// `heap_bytes` is read at each scrape for `goldengoose_heap_bytes`.
    /// With `istio`, requests are also counted in the Istio-named families
    /// a sidecar would report for that workload.
    pub fn new(version: &str, heap_bytes: Arc<AtomicU64>, istio: Option<&Istio>) -> Self {
        let mut registry = Registry::with_labels(
            [(Cow::Borrowed("version"), Cow::Owned(version.to_string()))].into_iter(),
        );
        let requests = Family::<CodeLabel, Counter>::default();
        registry.register(
            "http_requests",
            "Requests to the work endpoint, by status code",
            requests.clone(),
        );
        let duration = Histogram::new(DURATION_BUCKETS);
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a work request to its response",
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Work requests being served, including hanging ones",
            in_flight.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                goldengoose_version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "goldengoose_build_info",
            "Always 1; labels name the version this process serves",
            build,
        );
        registry.register_collector(Box::new(ProcessCollector {
            heap_bytes: heap_bytes.clone(),
            start_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        }));
        // 200 is by far the most common code: keep its handle so the hot path
        // skips the family's lock.
        let ok = requests.get_or_create(&CodeLabel { code: 200 }).clone();
        Metrics {
            registry,
            requests,
            ok,
            duration,
            in_flight,
            heap_bytes,
            istio: istio.map(|istio| IstioMetrics::new(istio, version)),
        }
    }

    /// Records one finished work request.
    pub fn observe(&self, code: u16, elapsed: Duration) {
        if code == 200 {
            self.ok.inc();
        } else {
            self.requests.get_or_create(&CodeLabel { code }).inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(istio) = &self.istio {
            istio.observe(code, elapsed);
        }
    }

    /// Counts a work request in flight until the guard is dropped (also when
    /// the client goes away and the request future is dropped).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Bytes held by memory-leak faults, reported as `goldengoose_heap_bytes`.
    pub fn heap_bytes(&self) -> &AtomicU64 {
        &self.heap_bytes
    }

    /// The OpenMetrics text exposition, which Prometheus scrapes.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        if let Some(istio) = &self.istio {
            prometheus_client::encoding::text::encode_registry(&mut out, &istio.registry)?;
        }
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// See [`Metrics::in_flight`].
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Debug)]
struct ProcessCollector {
    heap_bytes: Arc<AtomicU64>,
    start_time: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = process_cpu_seconds() {
            let counter = ConstCounter::new(cpu);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of this process, in seconds",
                None,
                counter.metric_type(),
            )?)?;
        }
        if let Some(rss) = process_resident_memory_bytes() {
            let gauge = ConstGauge::new(rss as i64);
            gauge.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident set size of this process, in bytes",
                None,
                gauge.metric_type(),
            )?)?;
        }
        let start = ConstGauge::new(self.start_time);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of this process since the Unix epoch, in seconds",
            None,
            start.metric_type(),
        )?)?;
        let heap = ConstGauge::new(self.heap_bytes.load(Ordering::Relaxed) as i64);
        heap.encode(encoder.encode_descriptor(
            "goldengoose_heap_bytes",
            "Heap bytes held by the memory-leak fault",
            None,
            heap.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Linux's USER_HZ, the unit of the times in /proc/self/stat; 100 on every
/// architecture Linux ships (reading it exactly would need libc's sysconf).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime from /proc/self/stat; None off Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    parse_stat_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)
        .map(|ticks| ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// VmRSS from /proc/self/status; None off Linux.
pub fn process_resident_memory_bytes() -> Option<u64> {
    parse_status_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields are
    // counted after its last ')'. Field 3 is the first after it; utime and
    // stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_skips_odd_command_names() {
        let stat =
            "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 100 1000 200";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn status_parsing_reads_vmrss_in_kib() {
        let status = "Name:\tgg\nVmPeak:\t  999 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(status), Some(2 * 1024 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn proc_values_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_resident_memory_bytes().unwrap_or(0) > 0);
            assert!(process_cpu_seconds().is_some());
        }
    }

    #[test]
    fn exposition_has_the_contract_names_with_version() {
        let metrics = Metrics::new("canary", Arc::new(AtomicU64::new(42)), None);
        metrics.observe(200, Duration::from_millis(3));
        metrics.observe(503, Duration::from_millis(30));
        let _guard = metrics.in_flight();
        let text = metrics.encode().expect("encodes");
        for needle in [
            r#"http_requests_total{version="canary",code="200"} 1"#,
            r#"http_requests_total{version="canary",code="503"} 1"#,
            r#"http_request_duration_seconds_bucket{version="canary",le="0.001"} 0"#,
            r#"http_request_duration_seconds_bucket{version="canary",le="0.005"} 1"#,
            r#"http_request_duration_seconds_count{version="canary"} 2"#,
            r#"http_requests_in_flight{version="canary"} 1"#,
            r#"goldengoose_heap_bytes{version="canary"} 42"#,
            r#"goldengoose_build_info{version="canary",goldengoose_version=""#,
            "process_cpu_seconds_total{",
            "process_resident_memory_bytes{",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(!text.contains("istio_"), "istio families without --istio");
    }

    #[test]
    fn istio_durations_are_whole_milliseconds_in_envoys_buckets() {
        let istio = Istio::new("shop-canary");
        let metrics = Metrics::new("canary", Arc::new(AtomicU64::new(0)), Some(&istio));
        // 0.9 ms truncates to 0 (bucket 0.5); 1.9 ms to 1 (bucket 1).
        metrics.observe(200, Duration::from_micros(900));
        metrics.observe(200, Duration::from_micros(1900));
        metrics.observe(503, Duration::from_micros(30_700));
        let text = metrics.encode().expect("encodes");
        let common = r#"destination_canonical_revision="canary",destination_cluster="Kubernetes",request_protocol="http",response_flags="-",grpc_response_status="",connection_security_policy="none""#;
        // Encoded in this order: Istio's labels, `le`, `response_code`.
        let series = |le: Option<&str>, code: u16| match le {
            Some(le) => format!("{common},le=\"{le}\",response_code=\"{code}\"}}"),
            None => format!("{common},response_code=\"{code}\"}}"),
        };
        for (needle, value) in [
            (series(None, 200), 2),
            (series(None, 503), 1),
            (series(Some("0.5"), 200), 1),
            (series(Some("1.0"), 200), 2),
            (series(Some("25.0"), 503), 0),
            (series(Some("50.0"), 503), 1),
            (series(Some("+Inf"), 200), 2),
        ] {
            let needle = format!("{needle} {value}\n");
            assert!(text.contains(&needle), "missing {needle} in\n{text}");
        }
        assert!(text.contains(
            "istio_requests_total{reporter=\"destination\",source_workload=\"unknown\","
        ));
        assert!(text.contains("istio_request_duration_milliseconds_sum{reporter=\"destination\""));
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
