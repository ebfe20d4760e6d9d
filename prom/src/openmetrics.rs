//! OpenMetrics text with timestamps: what `promtool tsdb
//! create-blocks-from openmetrics` reads, in and out.
//!
//! Reading: `name{label="value",...} value timestamp` lines, timestamps in
//! seconds (fractions allowed, truncated to milliseconds as Prometheus's
//! parser does: `int64(ts * 1000)`), `# TYPE`/`# HELP`/`# UNIT` lines
//! (accepted, not needed), exemplars after ` # ` ignored, `# EOF` ends the
//! data (promtool requires it; we accept its absence). Every sample must
//! carry a timestamp, and a series' samples must increase in time.
//!
//! Writing: every series of a [`Store`], grouped by metric name, each
//! series' samples in time order, then `# EOF`. Stale markers cannot be
//! expressed in OpenMetrics and are left out.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::Error;
use crate::labels::{Labels, METRIC_NAME};
use crate::store::{SeriesId, Store, is_stale};

/// Parses OpenMetrics text into a new store. `source` names the input in
/// errors (a file path, usually).
pub fn parse(text: &str, source: &str) -> Result<Store, Error> {
    let mut store = Store::new();
    load_into(&mut store, text, source)?;
    Ok(store)
}

/// Parses OpenMetrics text into an existing store.
pub fn load_into(store: &mut Store, text: &str, source: &str) -> Result<(), Error> {
    // The series part of a line (`name{...}`) as written maps to its id, so
    // a series' labels are parsed once, not once per sample.
    let mut ids: HashMap<&str, SeriesId> = HashMap::new();
    let mut eof = false;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |message: String| Error::OpenMetrics {
            source_name: source.to_owned(),
            line: line_no,
            message,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if eof {
            if line.is_empty() {
                continue;
            }
            return Err(err("data after `# EOF`".into()));
        }
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if rest.trim() == "EOF" {
                eof = true;
            }
            // TYPE, HELP, UNIT and other comments carry nothing we need.
            continue;
        }
        let (series_text, rest) = split_series(line).map_err(err)?;
        let mut fields = rest.split_ascii_whitespace();
        let value_text = fields
            .next()
            .ok_or_else(|| err(format!("no value after {series_text:?}")))?;
        let value =
            parse_float(value_text).ok_or_else(|| err(format!("bad value {value_text:?}")))?;
        let ts_text = fields.next().ok_or_else(|| {
            err(format!(
                "sample of {series_text} has no timestamp (backfilling needs one, in seconds)"
            ))
        })?;
        if ts_text == "#" {
            return Err(err(format!(
                "sample of {series_text} has no timestamp (backfilling needs one, in seconds)"
            )));
        }
        let ts = parse_float(ts_text)
            .filter(|t| t.is_finite())
            .ok_or_else(|| err(format!("bad timestamp {ts_text:?}")))?;
        match fields.next() {
            None | Some("#") => {}
            Some(other) => return Err(err(format!("unexpected {other:?} after the timestamp"))),
        }
        // Prometheus's openmetrics parser: int64(ts * 1000), truncating.
        let t_ms = (ts * 1000.0) as i64;
        let id = match ids.get(series_text) {
            Some(&id) => id,
            None => {
                let labels = parse_series(series_text).map_err(err)?;
                let id = store.series_id(labels);
                ids.insert(series_text, id);
                id
            }
        };
        store
            .push(id, t_ms, value)
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Splits a sample line into its series text (`name{...}`) and the rest.
fn split_series(line: &str) -> Result<(&str, &str), String> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'{' && bytes[i] != b' ' {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'{' {
        // Scan to the closing brace, skipping quoted values.
        let mut in_quote = false;
        let mut escaped = false;
        let mut j = i + 1;
        while j < bytes.len() {
            let c = bytes[j];
            if in_quote {
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    in_quote = false;
                }
            } else if c == b'"' {
                in_quote = true;
            } else if c == b'}' {
                break;
            }
            j += 1;
        }
        if j >= bytes.len() {
            return Err("unclosed `{` in the label set".into());
        }
        Ok((&line[..=j], &line[j + 1..]))
    } else {
        Ok((&line[..i], &line[i..]))
    }
}

/// Parses `name{a="x",b="y"}` into labels.
fn parse_series(text: &str) -> Result<Labels, String> {
    let (name, body) = match text.find('{') {
        Some(i) => (&text[..i], Some(&text[i + 1..text.len() - 1])),
        None => (text, None),
    };
    if !valid_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut pairs: Vec<(String, String)> = vec![(METRIC_NAME.to_owned(), name.to_owned())];
    if let Some(body) = body {
        let b = body.as_bytes();
        let mut i = 0;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && b[i] != b'=' {
                i += 1;
            }
            let lname = body[start..i].trim();
            if !valid_label_name(lname) {
                return Err(format!("bad label name {lname:?} in {text}"));
            }
            i += 1;
            if i >= b.len() || b[i] != b'"' {
                return Err(format!("label {lname} has no quoted value in {text}"));
            }
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            let mut chars = body[i..].char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        other => {
                            return Err(format!(
                                "bad escape \\{} in the value of {lname} in {text}",
                                other.map(|(_, c)| c).unwrap_or(' ')
                            ));
                        }
                    },
                    '"' => {
                        i += k + 1;
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated value of {lname} in {text}"));
            }
            if pairs.iter().any(|(n, _)| n == lname) {
                return Err(format!("duplicate label {lname} in {text}"));
            }
            pairs.push((lname.to_owned(), value));
        }
    }
    Ok(Labels::from_pairs(pairs))
}

fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Go's `strconv.ParseFloat` on the forms OpenMetrics uses.
fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Formats a value as OpenMetrics (and Prometheus's API) write floats.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-trip decimal without an
        // exponent: Go's strconv.FormatFloat(v, 'f', -1, 64).
        format!("{v}")
    }
}

/// A millisecond timestamp in seconds, written so that Prometheus's
/// `int64(parsed * 1000)` gives back exactly `t_ms`.
pub fn format_timestamp(t_ms: i64) -> String {
    if t_ms < 0 {
        // int64() truncates toward zero, so the negative side mirrors the positive.
        return format!("-{}", format_timestamp(-t_ms));
    }
    let secs = t_ms / 1000;
    let ms = t_ms % 1000;
    if ms == 0 {
        return secs.to_string();
    }
    let plain = format!("{secs}.{ms:03}");
    let back = plain.parse::<f64>().map(|f| (f * 1000.0) as i64);
    if back == Ok(t_ms) {
        plain
    } else {
        // Half a millisecond more truncates to the same millisecond.
        format!("{secs}.{ms:03}5")
    }
}

/// Writes every series of `store` as OpenMetrics text, ending in `# EOF`.
pub fn write(store: &Store) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and every byte written is UTF-8.
    let _ = write_to(store, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Streams every series of `store` as OpenMetrics text to `w` (a file for
/// `--dump-series`, say), sorted by labels, each series' samples in time
/// order, ending in `# EOF`. Stale markers are left out.
pub fn write_to(store: &Store, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut order: Vec<usize> = (0..store.len()).collect();
    order.sort_by(|&a, &b| store.series()[a].labels.cmp(&store.series()[b].labels));
    let mut line = String::new();
    for i in order {
        let s = &store.series()[i];
        let head = series_text(&s.labels);
        for (&t, &v) in s.timestamps.iter().zip(&s.values) {
            if is_stale(v) {
                continue;
            }
            line.clear();
            let _ = writeln!(line, "{head} {} {}", format_value(v), format_timestamp(t));
            w.write_all(line.as_bytes())?;
        }
    }
    w.write_all(b"# EOF\n")
}

/// `name{a="x",...}` with OpenMetrics escaping.
pub fn series_text(labels: &Labels) -> String {
    let mut out = String::from(labels.metric_name().unwrap_or_default());
    let mut first = true;
    for (n, v) in labels.iter() {
        if n == METRIC_NAME {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::labels_of;

    #[test]
    fn round_trip() {
        let text = "# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 1 10\nx_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 2.5 10.5\ny NaN 11.001 # {trace=\"a\"} 1\n# EOF\n";
        let st = parse(text, "t").expect("parses");
        assert_eq!(st.len(), 2);
        let id = SeriesId(0);
        assert_eq!(st.get(id).timestamps, vec![10_000, 10_500]);
        assert_eq!(st.get(id).labels.get("b"), Some("q\"\\\n"));
        let back = parse(&write(&st), "w").expect("round trip");
        assert_eq!(back.series().len(), 2);
        for s in st.series() {
            let other = back
                .series()
                .iter()
                .find(|o| o.labels == s.labels)
                .expect("same series");
            assert_eq!(other.timestamps, s.timestamps);
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("x 1 1\nx 2\n", "f.om").expect_err("no timestamp");
        assert!(e.to_string().contains("f.om:2"), "{e}");
        let e = parse("x 1 2\nx 2 1\n", "f.om").expect_err("out of order");
        assert!(e.to_string().contains("f.om:2"), "{e}");
        let e = parse("x{a=\"1\",a=\"2\"} 1 1\n", "f.om").expect_err("dup");
        assert!(e.to_string().contains("duplicate"), "{e}");
        assert!(parse("# EOF\nx 1 1\n", "f").is_err());
    }

    #[test]
    fn timestamps_survive_prometheus_truncation() {
        for t in [1_700_000_000_123i64, 1_700_000_000_001, 999, -1500, 1_000] {
            let s = format_timestamp(t);
            let back = (s.parse::<f64>().expect("float") * 1000.0) as i64;
            assert_eq!(back, t, "{s}");
        }
        let mut st = Store::new();
        let id = st.series_id(labels_of("m", &[]));
        st.push(id, 1, 0.1).expect("push");
        assert_eq!(write(&st), "m 0.1 0.001\n# EOF\n");
    }
}
