//! The human-readable rendering of a judge result: a verdict line and a
//! table with each metric's label, effect size and confidence interval.

use std::fmt::Write;

use crate::{CanaryJudgeResult, ScoreThresholds};

/// Render `result` as a text table.
pub fn render_text(result: &CanaryJudgeResult, thresholds: ScoreThresholds) -> String {
    let mut out = String::new();
    let s = &result.score;
    let _ = writeln!(
        out,
        "Canary {}: score {:.2} (pass >= {}, marginal >= {})",
        s.classification, s.score, thresholds.pass, thresholds.marginal
    );
    if !s.classification_reason.is_empty() {
        let _ = writeln!(out, "Reason: {}", s.classification_reason);
    }
    let _ = writeln!(out);
    let width = result
        .results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:<16}  {:>9}  {:>27}  {:>12}  {:>9}",
        "metric", "verdict", "ratio", "98% CI of canary - baseline", "estimate", "n (b/c)"
    );
    for r in &result.results {
        let mut label = r.classification.to_string();
        if r.critical {
            label.push_str(" critical");
        }
        if r.muted {
            label.push_str(" muted");
        }
        let (ci, est) = match &r.result_metadata.mann_whitney {
            Some(mw) => (
                format!("[{}, {}]", num(mw.ci_lower), num(mw.ci_upper)),
                num(mw.estimate),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:<16}  {:>9}  {:>27}  {:>12}  {:>9}",
            r.name,
            label,
            num(r.result_metadata.ratio),
            ci,
            est,
            format!(
                "{}/{}",
                r.control_metadata.stats.count, r.experiment_metadata.stats.count
            )
        );
    }
    if !result.group_scores.is_empty() {
        let _ = writeln!(out);
        let groups: Vec<String> = result
            .group_scores
            .iter()
            .map(|g| format!("{} {:.2}", g.name, g.score))
            .collect();
        let _ = writeln!(out, "Groups: {}", groups.join(", "));
    }
    out
}

/// Four significant digits, in plain or scientific notation as fits.
fn num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e6).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}
