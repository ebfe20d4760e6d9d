//! `GET /metrics` of `canarylab serve`: requests by endpoint and status,
//! latency by endpoint, verdicts by judge, connections by worker thread.
//!
//! Label values come from fixed sets (the known endpoints, the known
//! judges' names, four verdicts, the server's worker threads), never from
//! the request, so a client cannot grow the series count.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of [`ServeMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, 100 us to 30 s: `/judge` answers in well under a
/// millisecond, `/analyze` waits for Prometheus.
const BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    30.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    endpoint: &'static str,
    judge: &'static str,
    verdict: &'static str,
}

/// The registry and the handles the server updates.
#[derive(Debug)]
pub struct ServeMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabel, Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    connections: Family<WorkerLabel, Counter>,
    in_flight: Gauge,
    rejected: Counter,
}

impl Default for ServeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeMetrics {
    /// Fresh counters.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("canarylab_serve");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by endpoint and status code",
            requests.clone(),
        );
        let duration =
            Family::<EndpointLabel, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "request_duration_seconds",
            "Time from a request's headers to its answer, by endpoint",
            duration.clone(),
        );
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "verdicts",
            "Judgments by endpoint, judge and summary verdict",
            verdicts.clone(),
        );
        let connections = Family::<WorkerLabel, Counter>::default();
        registry.register(
            "connections",
            "Connections accepted, by the worker thread (runtime) serving them",
            connections.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Judge and analyze requests being served",
            in_flight.clone(),
        );
        let rejected = Counter::default();
        registry.register(
            "saturated",
            "Requests refused with 503 because the concurrency limit was reached",
            rejected.clone(),
        );
        ServeMetrics {
            registry,
            requests,
            duration,
            verdicts,
            connections,
            in_flight,
            rejected,
        }
    }

    /// One answered request.
    pub fn observe(&self, endpoint: &'static str, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
        self.duration
            .get_or_create(&EndpointLabel { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// One judgment.
    pub fn verdict(&self, endpoint: &'static str, judge: &'static str, verdict: &'static str) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                endpoint,
                judge,
                verdict,
            })
            .inc();
    }

    /// One connection accepted by worker thread `worker` (0 for a server
    /// on one runtime).
    pub fn connection(&self, worker: u16) {
        self.connections
            .get_or_create(&WorkerLabel { worker })
            .inc();
    }

    /// Connections accepted by `worker` so far.
    pub fn connections(&self, worker: u16) -> u64 {
        self.connections
            .get_or_create(&WorkerLabel { worker })
            .get()
    }

    /// One request refused for saturation.
    pub fn saturated(&self) {
        self.rejected.inc();
    }

    /// Counts a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// See [`ServeMetrics::in_flight`].
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
