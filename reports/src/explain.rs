//! A run's outcome in words: which metrics were High or Low and by how
//! much, and which rule of the judge decided.

use judge::{Classification, ScoreClassification};

use crate::model::{IntervalDetail, MetricVerdict, ReleaseEnd, RunDetail};
use crate::text::{num, seconds};

/// Explain one run in plain sentences (Markdown-compatible: a paragraph,
/// then one bullet per interval with the metrics that did not pass).
pub fn explain_run(run: &RunDetail) -> String {
    let mut out = format!(
        "{} (seed {}): {}.",
        run.label(),
        run.seed,
        outcome(run.decision)
    );
    if !run.reason.is_empty() {
        out.push_str(&format!(
            " The pipeline said: {}.",
            run.reason.trim_end_matches('.')
        ));
    }
    out.push_str(&format!(" Deciding rule: {}.\n", rule(run)));
    for iv in &run.intervals {
        out.push_str(&format!(
            "\n- Interval {} ({} to {}): score {}, {}.",
            iv.index,
            seconds(iv.start_s),
            seconds(iv.end_s),
            num(iv.score),
            iv.classification
        ));
        let (passed, flagged): (Vec<&MetricVerdict>, Vec<&MetricVerdict>) =
            iv.metrics.iter().partition(|m| m.passed());
        for m in &flagged {
            out.push_str(&format!(" {}.", metric_words(m)));
        }
        if flagged.is_empty() && !passed.is_empty() {
            out.push_str(&format!(" All {} metrics passed.", passed.len()));
        } else if !passed.is_empty() {
            let names: Vec<&str> = passed.iter().map(|m| m.name.as_str()).collect();
            out.push_str(&format!(" Passed: {}.", names.join(", ")));
        }
    }
    out.push('\n');
    out
}

fn outcome(decision: ReleaseEnd) -> &'static str {
    match decision {
        ReleaseEnd::Promote => "promoted",
        ReleaseEnd::Rollback => "rolled back by the canary analysis",
        ReleaseEnd::DeployFailed => "rolled back before analysis, the canary never became ready",
        ReleaseEnd::BuildFailed => "the build failed, nothing was deployed",
        ReleaseEnd::Error => "error",
        ReleaseEnd::Paused => "paused by the analysis, waiting for a person",
    }
}

fn metric_words(m: &MetricVerdict) -> String {
    let mut s = match m.classification {
        Classification::High => format!("{} was High (canary above baseline)", m.name),
        Classification::Low => format!("{} was Low (canary below baseline)", m.name),
        Classification::Nodata => format!("{} had no data", m.name),
        Classification::NodataFailMetric => {
            format!("{} had no data and is set to fail on no data", m.name)
        }
        Classification::Error => format!("{} could not be judged (error)", m.name),
        Classification::Pass => format!("{} was Pass", m.name),
    };
    let mut facts = Vec::new();
    if let Some(r) = m.ratio.filter(|r| r.is_finite()) {
        facts.push(format!("ratio {}", num(r)));
    }
    if let Some((lo, hi)) = m.ci {
        facts.push(format!(
            "95% CI of canary − baseline [{}, {}]",
            num(lo),
            num(hi)
        ));
    }
    if !facts.is_empty() {
        s.push_str(&format!(": {}", facts.join(", ")));
    }
    if m.critical {
        s.push_str("; critical metric, so the canary fails outright");
    }
    s
}

fn is_flagged(m: &MetricVerdict) -> bool {
    !m.passed()
}

/// The rule that decided, from the last judged interval.
fn rule(run: &RunDetail) -> String {
    match run.decision {
        ReleaseEnd::BuildFailed => return "none, no canary ran".into(),
        ReleaseEnd::DeployFailed => return "deployment readiness (no analysis ran)".into(),
        // Argo Rollouts pauses on an Inconclusive analysis: nothing failed
        // hard enough to abort, nothing passed well enough to go on.
        ReleaseEnd::Paused => {
            return match run.intervals.last() {
                Some(last) => format!(
                    "inconclusive analysis (last judged interval {}: score {}, {}), so the release pauses for \
                     a person, neither promoted nor rolled back",
                    last.index,
                    num(last.score),
                    last.classification
                ),
                None => "inconclusive analysis, so the release pauses for a person, neither promoted nor \
                         rolled back"
                    .into(),
            };
        }
        _ => {}
    }
    let Some(last) = run.intervals.last() else {
        return "unknown (no judged intervals recorded)".into();
    };
    if let Some(critical) = last.metrics.iter().find(|m| m.critical && is_flagged(m)) {
        return format!(
            "critical metric: {} was {} in interval {}, which scores the interval 0",
            critical.name, critical.classification, last.index
        );
    }
    let nodata = last
        .metrics
        .iter()
        .filter(|m| {
            matches!(
                m.classification,
                Classification::Nodata | Classification::NodataFailMetric
            )
        })
        .count();
    if !last.metrics.is_empty() && nodata * 2 >= last.metrics.len() {
        return format!(
            "no-data rule: {nodata} of {} metrics had no data in interval {} (50% or more scores 0)",
            last.metrics.len(),
            last.index
        );
    }
    match (run.decision, last.classification) {
        (ReleaseEnd::Promote, _) => {
            "every interval scored above marginal and the last reached pass".into()
        }
        (_, ScoreClassification::Fail) => score_rule(last, "score below marginal"),
        (_, ScoreClassification::Marginal) => score_rule(last, "final score below pass"),
        _ => "as the pipeline said above".into(),
    }
}

fn score_rule(iv: &IntervalDetail, rule: &str) -> String {
    let flagged: Vec<&str> = iv
        .metrics
        .iter()
        .filter(|m| is_flagged(m))
        .map(|m| m.name.as_str())
        .collect();
    if flagged.is_empty() {
        format!("{rule} (interval {} scored {})", iv.index, num(iv.score))
    } else {
        format!(
            "{rule} (interval {} scored {}; failing: {})",
            iv.index,
            num(iv.score),
            flagged.join(", ")
        )
    }
}
