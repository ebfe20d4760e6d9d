//! Time-scaling the durations inside a user's PromQL: range selectors
//! (`rate(x[1m])`), subquery ranges and resolutions (`[5m:30s]`) and
//! `offset` modifiers, all multiplied by the local mode's `--time-scale`.
//!
//! Why: a time-scaled release shrinks the scrape step and every interval by
//! the scale, but a `[1m]` inside the user's query is real time. At
//! `--time-scale 0.02` a one-minute rate window spans 50 scenario minutes,
//! longer than the whole scaled release, so every point would be a
//! cumulative figure and successive points would share almost all their
//! samples. The simulator models a rate window of `rate_window_s` scenario
//! seconds; scaling the selector keeps the real mode measuring the same
//! thing (and keeps the window's ratio to the scrape step). This is a
//! deliberate deviation from "exactly the query Kayenta sends", applied to
//! the templates before Kayenta's query building and recorded in every
//! pair's `attributes`, so the queries really sent are visible.
//!
//! Not for: anything but durations. The text is otherwise copied byte for
//! byte; string literals (`"..."`, `'...'`, `` `...` ``) are never touched.

use judge::CanaryConfig;

/// `promql` with every range, subquery and `offset` duration multiplied by
/// `scale` and written in milliseconds (at least `1ms`). Text that does not
/// parse as a PromQL duration is left as it is.
pub fn scale_ranges(promql: &str, scale: f64) -> String {
    let chars: Vec<char> = promql.chars().collect();
    let mut out = String::with_capacity(promql.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                // Copy the whole literal; backticks have no escapes.
                out.push(c);
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' && c != '`' && i < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' => {
                let close = chars[i + 1..].iter().position(|&d| d == ']');
                let Some(len) = close else {
                    out.push(c);
                    i += 1;
                    continue;
                };
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                out.push('[');
                out.push_str(&scale_bracket(&inner, scale).unwrap_or(inner));
                out.push(']');
                i += len + 2;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push_str(&word);
                // `offset` only as a keyword: not part of a label or metric
                // name (those would continue with name characters or `:`).
                let prev = start.checked_sub(1).map(|p| chars[p]);
                if word.eq_ignore_ascii_case("offset")
                    && !matches!(prev, Some(p) if p.is_ascii_alphanumeric() || p == '_' || p == ':')
                {
                    let mut j = i;
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                    let neg = j < chars.len() && chars[j] == '-';
                    let k0 = if neg { j + 1 } else { j };
                    let mut k = k0;
                    while k < chars.len() && chars[k].is_ascii_alphanumeric() {
                        k += 1;
                    }
                    let dur: String = chars[k0..k].iter().collect();
                    if let Some(ms) = parse_duration_ms(&dur) {
                        out.extend(&chars[i..k0]);
                        out.push_str(&format_ms(ms, scale));
                        i = k;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `1m` or `5m:30s` or `5m:` scaled; `None` when it is not a duration.
fn scale_bracket(inner: &str, scale: f64) -> Option<String> {
    let trimmed = inner.trim();
    match trimmed.split_once(':') {
        None => Some(format_ms(parse_duration_ms(trimmed)?, scale)),
        Some((range, resolution)) => {
            let range = format_ms(parse_duration_ms(range.trim())?, scale);
            let resolution = resolution.trim();
            if resolution.is_empty() {
                Some(format!("{range}:"))
            } else {
                Some(format!(
                    "{range}:{}",
                    format_ms(parse_duration_ms(resolution)?, scale)
                ))
            }
        }
    }
}

fn format_ms(ms: f64, scale: f64) -> String {
    format!("{}ms", ((ms * scale).round() as u64).max(1))
}

/// A PromQL duration (`90s`, `1h30m`, `500ms`) in milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut total = 0.0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: f64 = text[start..i].parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms = match &text[unit_start..i] {
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            "d" => 86_400e3,
            "w" => 7.0 * 86_400e3,
            "y" => 365.0 * 86_400e3,
            _ => return None,
        };
        total += n * unit_ms;
    }
    Some(total)
}

/// `config` with [`scale_ranges`] applied to every query text that may hold
/// a range: inline templates, named templates and the deprecated
/// `customFilter`. `metricName` queries have no ranges and are unchanged.
pub fn scale_config_ranges(config: &CanaryConfig, scale: f64) -> CanaryConfig {
    let mut config = config.clone();
    for template in config.templates.values_mut() {
        *template = scale_ranges(template, scale);
    }
    for metric in &mut config.metrics {
        let q = &mut metric.query;
        for text in [&mut q.custom_inline_template, &mut q.custom_filter]
            .into_iter()
            .flatten()
        {
            *text = scale_ranges(text, scale);
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_scale_to_milliseconds() {
        let q = r#"histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{version="${scope}"}[1m])))"#;
        assert_eq!(
            scale_ranges(q, 0.02),
            q.replace("[1m]", "[1200ms]"),
            "only the range changes"
        );
        assert_eq!(scale_ranges("rate(x[1h30m])", 0.01), "rate(x[54000ms])");
        assert_eq!(scale_ranges("rate(x[ 90s ])", 0.5), "rate(x[45000ms])");
        assert_eq!(scale_ranges("rate(x[1m])", 1.0), "rate(x[60000ms])");
    }

    #[test]
    fn subqueries_and_offsets_scale_too() {
        assert_eq!(
            scale_ranges("max_over_time(rate(x[1m])[10m:30s])", 0.1),
            "max_over_time(rate(x[6000ms])[60000ms:3000ms])"
        );
        assert_eq!(
            scale_ranges("max_over_time(x[5m:])", 0.1),
            "max_over_time(x[30000ms:])"
        );
        assert_eq!(
            scale_ranges("rate(x[1m] offset 10m)", 0.1),
            "rate(x[6000ms] offset 60000ms)"
        );
        assert_eq!(scale_ranges("x offset -1m", 0.5), "x offset -30000ms");
    }

    #[test]
    fn strings_and_names_are_untouched() {
        let q = r#"sum(rate(x{code=~"[45]..", path='a[1m]', offset="offset 5m"}[2m]))"#;
        assert_eq!(
            scale_ranges(q, 0.5),
            r#"sum(rate(x{code=~"[45]..", path='a[1m]', offset="offset 5m"}[60000ms]))"#
        );
        assert_eq!(
            scale_ranges(r#"x{a="q\"[1m]"}[1m]"#, 0.5),
            r#"x{a="q\"[1m]"}[30000ms]"#
        );
        // A metric merely named like the keyword.
        assert_eq!(scale_ranges("my_offset 5", 0.5), "my_offset 5");
        // Not durations: left alone.
        assert_eq!(scale_ranges("x[abc] [", 0.5), "x[abc] [");
    }

    #[test]
    fn durations_parse_as_promql_does() {
        assert_eq!(parse_duration_ms("1m"), Some(60e3));
        assert_eq!(parse_duration_ms("1h30m"), Some(5400e3));
        assert_eq!(parse_duration_ms("250ms"), Some(250.0));
        assert_eq!(parse_duration_ms("1.5m"), None);
        assert_eq!(parse_duration_ms("m"), None);
        assert_eq!(parse_duration_ms("5"), None);
    }

    #[test]
    fn catalog_config_windows_follow_the_scale() {
        let path = format!(
            "{}/../scenarios/catalog/canary-config.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = CanaryConfig::from_json(&std::fs::read_to_string(path).expect("readable"))
            .expect("parses");
        let scaled = scale_config_ranges(&config, 0.02);
        for (before, after) in config.metrics.iter().zip(&scaled.metrics) {
            let (b, a) = (
                before.query.custom_inline_template.as_deref().unwrap_or(""),
                after.query.custom_inline_template.as_deref().unwrap_or(""),
            );
            assert_eq!(a, b.replace("[1m]", "[1200ms]"), "{}", before.name);
        }
    }
}
