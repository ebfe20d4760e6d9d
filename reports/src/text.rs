//! Number formatting and escaping shared by the HTML, Markdown, JUnit and
//! chart renderers, so every output shows a number the same way.

use crate::model::{Expect, Rate, ScenarioResult};

/// `0.0312` as `3.1%`; whole percentages without decimals at the ends.
pub(crate) fn pct(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let p = x * 100.0;
    if p == 0.0 || p == 100.0 || p >= 99.95 || (p - p.round()).abs() < 0.05 && p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `92.0% [88.1–94.8%]`.
pub(crate) fn rate_ci(r: &Rate) -> String {
    format!("{} [{}–{}]", pct(r.rate), pct(r.lower), pct(r.upper))
}

/// `12/200`.
pub(crate) fn ratio(r: &Rate) -> String {
    format!("{}/{}", r.count, r.total)
}

/// What a scenario's rollback rate means: detection for a regression,
/// false alarm for a harmless release.
pub(crate) fn rate_name(expect: Expect) -> &'static str {
    match expect {
        Expect::Fail => "detection",
        Expect::Pass => "false alarm",
    }
}

pub(crate) fn expect_word(expect: Expect) -> &'static str {
    match expect {
        Expect::Fail => "fail",
        Expect::Pass => "pass",
    }
}

/// Seconds as `45 s`, `12.5 min` or `2.1 h`.
pub(crate) fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "n/a".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// A count or a median of counts: `12`, `1.5k`, `2.3M`.
pub(crate) fn count(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() < 1000.0 {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    } else if x.abs() < 1e6 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{:.1}M", x / 1e6)
    }
}

/// A number in a compact general form (`0.5`, `12`, `3.14`, `1.2e-5`).
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e5 || x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// A scenario result's name as rows and headings show it: the scenario,
/// and the analysis that judged it when the study names one (a study of
/// several analyses has one entry per scenario and analysis).
pub(crate) fn scenario_label(s: &ScenarioResult) -> String {
    match &s.analysis {
        Some(a) => format!("{} ({a})", s.name),
        None => s.name.clone(),
    }
}

/// Whether any run of the study paused (neither promoted nor rolled back).
pub(crate) fn any_paused(results: &[ScenarioResult]) -> bool {
    results.iter().any(|s| s.verdicts.paused > 0)
}

/// Median decision time of a scenario, or `–` without runs.
pub(crate) fn median_time(s: &ScenarioResult) -> String {
    if s.decision_time_s.count == 0 {
        "–".into()
    } else {
        seconds(s.decision_time_s.p50)
    }
}

/// Median blast radius of a scenario, or `–` without runs.
pub(crate) fn median_blast(s: &ScenarioResult) -> String {
    if s.blast_radius.count == 0 {
        "–".into()
    } else {
        count(s.blast_radius.p50)
    }
}

/// Escape for XML/HTML text and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape for a Markdown table cell.
pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct(0.031_2), "3.1%");
        assert_eq!(pct(0.92), "92%");
        assert_eq!(seconds(45.0), "45 s");
        assert_eq!(seconds(750.0), "12.5 min");
        assert_eq!(count(1500.0), "1.5k");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(98.0), "98");
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
