//! An in-memory Prometheus: a columnar series store, OpenMetrics text in
//! and out (what `promtool tsdb create-blocks-from openmetrics` reads), a
//! PromQL evaluator on the `promql-parser` AST with Prometheus's semantics,
//! and the JSON of Prometheus's HTTP API.
//!
//! What it is for: answering a user's own PromQL on simulated or dumped
//! series exactly as a Prometheus holding the same samples would
//! (`canarylab query`, and later the simulator). What it is not: a TSDB
//! (no persistence, no compaction, no native histograms), a scraper, or an
//! HTTP server. Pure: no clock, no files, no threads; callers bring text
//! and times.
//!
//! ```
//! let store = prom::openmetrics::parse("up{job=\"a\"} 1 100\n# EOF\n", "inline").unwrap();
//! let q = prom::Query::parse("sum(up)").unwrap();
//! let v = prom::Engine::new(&store).instant(&q, 100_000).unwrap();
//! assert_eq!(prom::json::instant(&v, 100_000),
//!     r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[100,"1"]}]}}"#);
//! ```

pub mod eval;
pub mod json;
pub mod labels;
pub mod openmetrics;
pub mod store;

pub use eval::{Engine, Query, QueryCache, RangeSeries, Sample, Value};
pub use labels::Labels;
pub use store::{STALE_NAN, Series, SeriesId, Store};

/// Everything that can go wrong, with what the user did and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query does not parse.
    #[error("cannot parse the PromQL query: {message}\nquery: {query}")]
    Parse {
        /// The query text.
        query: String,
        /// The parser's message, with the position where it could be found.
        message: String,
    },
    /// The query uses something this evaluator does not implement.
    #[error(
        "`{function}` is not supported by canarylab's PromQL evaluator (see prom/README.md)\nquery: {query}"
    )]
    Unsupported {
        /// The function, aggregation or feature.
        function: String,
        /// The query text.
        query: String,
    },
    /// Evaluation failed the way Prometheus's does (duplicate series, ...).
    #[error("PromQL evaluation failed: {message}\nquery: {query}")]
    Eval {
        /// The query text.
        query: String,
        /// What went wrong, in Prometheus's words where it has some.
        message: String,
    },
    /// Bad OpenMetrics input.
    #[error("{source_name}:{line}: {message}")]
    OpenMetrics {
        /// The file (or other input) name.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A sample at or before the series' last timestamp.
    #[error(
        "sample of {series} at {t_ms} ms is not after the series' last sample at {last_ms} ms (samples must be in time order)"
    )]
    OutOfOrder {
        /// The series.
        series: String,
        /// The offending timestamp.
        t_ms: i64,
        /// The series' last timestamp.
        last_ms: i64,
    },
    /// Columns of different lengths given to [`Store::extend`].
    #[error("series {series}: {timestamps} timestamps but {values} values")]
    ColumnLengths {
        /// The series.
        series: String,
        /// Number of timestamps.
        timestamps: usize,
        /// Number of values.
        values: usize,
    },
}

/// A time as Prometheus's API takes it (`time=`, `start=`, `end=`): Unix
/// seconds with up to millisecond precision, in milliseconds.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let t: f64 = s.trim().parse().ok()?;
    if !t.is_finite() || t.abs() > 9.2e15 {
        return None;
    }
    let whole = t.trunc();
    let frac = ((t - whole) * 1000.0).round();
    Some(whole as i64 * 1000 + frac as i64)
}

/// A step or duration as Prometheus's API takes it: float seconds (`30`,
/// `0.5`) or a PromQL duration (`30s`, `1m30s`), in milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e15 {
            return None;
        }
        return Some((secs * 1000.0).round() as i64);
    }
    promql_parser::util::parse_duration(s)
        .ok()
        .map(|d| d.as_millis() as i64)
}
