//! Prometheus's HTTP API JSON, byte for byte: `/api/v1/query` and
//! `/api/v1/query_range` success bodies and the error body.
//!
//! Timestamps are seconds with the milliseconds written as Prometheus's
//! `marshalTimestamp` writes them (`1700000000`, `1700000000.500`), values
//! are strings in Go's `strconv.FormatFloat(v, 'f', -1, 64)` (`"NaN"`,
//! `"+Inf"`), label sets are objects with sorted keys and Go's HTML-safe
//! string escaping.

use std::fmt::Write as _;

use crate::eval::{RangeSeries, Value};
use crate::labels::Labels;
use crate::openmetrics::format_value;

/// The body of `/api/v1/query` at `t_ms` for `value`.
pub fn instant(value: &Value, t_ms: i64) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":""#);
    match value {
        Value::Scalar(v) => {
            out.push_str(r#"scalar","result":["#);
            point(&mut out, t_ms, *v);
            out.push(']');
        }
        Value::Str(s) => {
            out.push_str(r#"string","result":["#);
            timestamp(&mut out, t_ms);
            out.push(',');
            string(&mut out, s);
            out.push(']');
        }
        Value::Vector(vec) => {
            out.push_str(r#"vector","result":["#);
            for (i, s) in vec.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                out.push('[');
                point(&mut out, t_ms, s.value);
                out.push_str("]}");
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push_str(r#"matrix","result":"#);
            matrix(&mut out, m);
        }
    }
    out.push_str("}}");
    out
}

/// The body of `/api/v1/query_range`.
pub fn range(series: &[RangeSeries]) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":"#);
    matrix(&mut out, series);
    out.push_str("}}");
    out
}

/// Prometheus's error body (`errorType` `bad_data` for bad queries,
/// `execution` for evaluation failures).
pub fn error(error_type: &str, message: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    string(&mut out, error_type);
    out.push_str(r#","error":"#);
    string(&mut out, message);
    out.push('}');
    out
}

fn matrix(out: &mut String, m: &[RangeSeries]) {
    out.push('[');
    for (i, s) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        labels(out, &s.labels);
        out.push_str(r#","values":["#);
        for (k, (&t, &v)) in s.timestamps.iter().zip(&s.values).enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push('[');
            point(out, t, v);
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push(']');
}

fn point(out: &mut String, t_ms: i64, v: f64) {
    timestamp(out, t_ms);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push('"');
}

/// Prometheus's marshalTimestamp.
fn timestamp(out: &mut String, t_ms: i64) {
    let mut t = t_ms;
    if t < 0 {
        out.push('-');
        t = -t;
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

fn labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, n);
        out.push(':');
        string(out, v);
    }
    out.push('}');
}

/// A JSON string as Go's encoding/json writes it (HTML-safe).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Sample;

    #[test]
    fn shapes_and_formats() {
        assert_eq!(
            instant(&Value::Scalar(f64::NAN), 1_500),
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.500,"NaN"]}}"#
        );
        let v = Value::Vector(vec![Sample {
            labels: Labels::from_pairs([("a", "<x>\"")]),
            value: f64::INFINITY,
        }]);
        assert_eq!(
            instant(&v, 2_000),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\u003cx\u003e\""},"value":[2,"+Inf"]}]}}"#
        );
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
    }
}
