//! The Markdown summary: the same tables and words as the HTML, with the
//! charts linked from `charts/` (as [`write_study`](crate::write_study)
//! writes them), for pasting into a pull request or a wiki.

use std::fmt::Write as _;

use crate::charts::study_charts;
use crate::compare::Comparison;
use crate::explain::explain_run;
use crate::model::{Distribution, Study};
use crate::text::{
    any_paused, count, expect_word, md_cell, median_blast, median_time, pct, rate_ci, rate_name,
    scenario_label, seconds,
};

/// Render the study as Markdown.
pub fn render_markdown(study: &Study) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# canarylab study\n");
    let _ = writeln!(md, "{}\n", crate::html::provenance(study));
    if let Some(line) = crate::html::expectations_line(study) {
        let _ = writeln!(md, "**{line}**\n");
    }

    let _ = writeln!(md, "## Summary\n");
    // The paused column only when some run paused (see the HTML).
    let paused = any_paused(&study.scenarios);
    let _ = writeln!(
        md,
        "| scenario | expect | runs | promoted | rolled back | deploy failed |{} build failed | rollback rate [95% CI] | median decision | median blast radius | expectation |",
        if paused { " paused |" } else { "" }
    );
    let _ = writeln!(
        md,
        "|---|---|---:|---:|---:|---:|{}---:|---|---:|---:|---|",
        if paused { "---:|" } else { "" }
    );
    for s in &study.scenarios {
        let v = &s.verdicts;
        let expectation = match &s.expectation {
            Some(c) if c.met => format!("met: {}", md_cell(&c.requirement)),
            Some(c) => format!("**MISSED**: {}", md_cell(&c.requirement)),
            None => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |{} {} | {} {} | {} | {} | {} |",
            md_cell(&scenario_label(s)),
            expect_word(s.expect),
            s.runs,
            v.promoted,
            v.rolled_back,
            v.deploy_failed,
            if paused {
                format!(" {} |", v.paused)
            } else {
                String::new()
            },
            v.build_failed,
            rate_name(s.expect),
            rate_ci(&s.rollback_rate),
            median_time(s),
            median_blast(s),
            expectation
        );
    }
    let _ = writeln!(md, "\n{}\n", rates_explained(study));

    if let Some(cmp) = Comparison::of(study) {
        side_by_side(&mut md, &cmp);
    }

    for sweep in &study.sweeps {
        let _ = writeln!(md, "## Sweep: {}\n", sweep.parameter);
        let _ = writeln!(
            md,
            "| setting | false alarm [95% CI] | detection [95% CI] | |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for p in &sweep.points {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                md_cell(&p.label),
                rate_ci(&p.false_alarm),
                rate_ci(&p.detection),
                if p.chosen { "chosen" } else { "" }
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Charts\n");
    for chart in study_charts(study) {
        let _ = writeln!(
            md,
            "### {}\n\n![{}](charts/{}.svg)\n\n{} [PNG](charts/{}.png)\n",
            chart.title, chart.title, chart.id, chart.caption, chart.id
        );
    }

    if !study.example_runs.is_empty() {
        let _ = writeln!(md, "## Example runs\n");
        for run in &study.example_runs {
            let _ = writeln!(md, "### {}\n\n{}", run.label(), explain_run(run));
        }
    }
    md
}

/// The side-by-side section: what the numbers show, then per scenario one
/// row per analysis (its charts are listed with the others).
fn side_by_side(md: &mut String, cmp: &Comparison<'_>) {
    let _ = writeln!(md, "## Side by side: {} analyses\n", cmp.analyses.len());
    let _ = writeln!(md, "What this shows:\n");
    for line in cmp.findings() {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(
        md,
        "\n| scenario | analysis | runs | detection or false alarm [95% CI] | paused | decision median | p90 | blast radius median | p90 |"
    );
    let _ = writeln!(md, "|---|---|---:|---|---:|---:|---:|---:|---:|");
    let dist = |d: &Distribution, f: fn(f64) -> String| -> (String, String) {
        if d.count == 0 {
            ("–".into(), "–".into())
        } else {
            (f(d.p50), f(d.p90))
        }
    };
    for row in &cmp.rows {
        for (analysis, cell) in cmp.analyses.iter().zip(&row.cells) {
            let name = format!("{} ({})", md_cell(row.name), expect_word(row.expect));
            let Some(s) = cell else {
                let _ = writeln!(
                    md,
                    "| {name} | {} | – | not released with this analysis | | | | | |",
                    md_cell(analysis)
                );
                continue;
            };
            let r = &s.rollback_rate;
            let rate = if r.total == 0 {
                "no runs reached the canary".to_string()
            } else {
                format!("{} {}", rate_name(s.expect), rate_ci(r))
            };
            let v = &s.verdicts;
            let reached = v.promoted + v.rolled_back + v.deploy_failed + v.paused;
            let paused = if v.paused == 0 {
                "0".to_string()
            } else {
                format!(
                    "{} ({})",
                    v.paused,
                    pct(f64::from(v.paused) / f64::from(reached.max(1)))
                )
            };
            let (t50, t90) = dist(&s.decision_time_s, seconds);
            let (b50, b90) = dist(&s.blast_radius, count);
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {rate} | {paused} | {t50} | {t90} | {b50} | {b90} |",
                md_cell(analysis),
                s.runs
            );
        }
    }
    md.push('\n');
}

/// What the rates mean (with a word on paused runs when some paused),
/// shared with the HTML.
pub(crate) fn rates_explained(study: &Study) -> String {
    let mut s = RATES_EXPLAINED.to_string();
    if any_paused(&study.scenarios) {
        s.push_str(
            " A *paused* run (an inconclusive analysis that waits for a person, as Argo Rollouts does) is neither \
             promoted nor rolled back: it counts in a rate's runs but not as a rollback.",
        );
    }
    s
}

/// What the rates mean, shared with the HTML.
const RATES_EXPLAINED: &str = "**Reading the rates.** A run is *rolled back* when the canary analysis \
fails it or the canary never becomes ready. For a regression (expect fail) the rollback rate is the **detection \
rate**: higher is better, a miss ships the regression. For a harmless release (expect pass, e.g. A/A) it is the \
**false-alarm rate**: lower is better, each false alarm blocks a good release. The bracket is the Wilson 95% \
interval: with few runs it is wide, so compare intervals, not point rates. Rates leave out runs whose build failed.";
