//! What a canary-config metric measures, so a simulator can produce it.
//!
//! Told from the metric's Prometheus query (the goldengoose metric names
//! are a contract), or said in the scenario's `[analysis.signals]`.

use std::fmt;
use std::str::FromStr;

use judge::MetricConfig;
use serde::{Deserialize, Serialize};

/// A measurable quantity, in Prometheus's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Signal {
    /// `histogram_quantile(q, rate(http_request_duration_seconds_bucket))`:
    /// seconds.
    LatencyQuantile(f64),
    /// Mean request duration (`_sum / _count`): seconds.
    LatencyMean,
    /// 5xx responses over all responses.
    ErrorRatio,
    /// 5xx responses per second.
    ErrorRate,
    /// Requests per second.
    RequestRate,
    /// CPU cores used (`rate(process_cpu_seconds_total)`), per pod.
    Cpu,
    /// Resident memory, bytes, per pod.
    Memory,
}

impl Signal {
    /// The forms [`Signal::from_str`] accepts.
    pub const FORMS: &'static str =
        "latency_quantile:Q, latency_mean, error_ratio, error_rate, request_rate, cpu, memory";
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LatencyQuantile(q) => write!(f, "latency_quantile:{q}"),
            Self::LatencyMean => f.write_str("latency_mean"),
            Self::ErrorRatio => f.write_str("error_ratio"),
            Self::ErrorRate => f.write_str("error_rate"),
            Self::RequestRate => f.write_str("request_rate"),
            Self::Cpu => f.write_str("cpu"),
            Self::Memory => f.write_str("memory"),
        }
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "latency_mean" => Self::LatencyMean,
            "error_ratio" => Self::ErrorRatio,
            "error_rate" => Self::ErrorRate,
            "request_rate" => Self::RequestRate,
            "cpu" => Self::Cpu,
            "memory" => Self::Memory,
            other => match other
                .strip_prefix("latency_quantile:")
                .map(str::parse::<f64>)
            {
                Some(Ok(q)) if q > 0.0 && q < 1.0 => Self::LatencyQuantile(q),
                Some(_) => {
                    return Err(format!(
                        "\"{other}\": the quantile must be a number in (0, 1)"
                    ));
                }
                None => {
                    return Err(format!(
                        "unknown signal \"{other}\"; known: {}",
                        Self::FORMS
                    ));
                }
            },
        })
    }
}

/// Tell what a metric measures from its query, if the query uses
/// goldengoose's metric names.
pub fn infer_signal(metric: &MetricConfig) -> Option<Signal> {
    let q = &metric.query;
    let text = [
        q.custom_inline_template.as_deref(),
        q.metric_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let bindings = q.label_bindings.join(",");
    let server_errors =
        |t: &str| t.contains("code=~\"5") || t.contains("code=~'5") || t.contains("status=~\"5");
    if let Some(rest) = text.split("histogram_quantile(").nth(1) {
        let number: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        return number
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0 && *v < 1.0)
            .map(Signal::LatencyQuantile);
    }
    if text.contains("http_request_duration_seconds_sum") {
        return Some(Signal::LatencyMean);
    }
    if text.contains("http_requests_total") {
        let errors = server_errors(&text) || server_errors(&bindings);
        return Some(match (errors, text.contains('/')) {
            (true, true) => Signal::ErrorRatio,
            (true, false) => Signal::ErrorRate,
            (false, _) => Signal::RequestRate,
        });
    }
    if text.contains("process_cpu_seconds_total") {
        return Some(Signal::Cpu);
    }
    if text.contains("process_resident_memory_bytes") || text.contains("goldengoose_heap_bytes") {
        return Some(Signal::Memory);
    }
    None
}
