//! The Markdown summary: the same tables and words as the HTML, with the
//! charts linked from `charts/` (as [`write_study`](crate::write_study)
//! writes them), for pasting into a pull request or a wiki.

use std::fmt::Write as _;

use crate::charts::study_charts;
use crate::explain::explain_run;
use crate::model::Study;
use crate::text::{expect_word, md_cell, median_blast, median_time, rate_ci, rate_name};

/// Render the study as Markdown.
pub fn render_markdown(study: &Study) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# canarylab study\n");
    let _ = writeln!(md, "{}\n", crate::html::provenance(study));
    if let Some(line) = crate::html::expectations_line(study) {
        let _ = writeln!(md, "**{line}**\n");
    }

    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "| scenario | expect | runs | promoted | rolled back | deploy failed | build failed | rollback rate [95% CI] | median decision | median blast radius | expectation |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|");
    for s in &study.scenarios {
        let v = &s.verdicts;
        let expectation = match &s.expectation {
            Some(c) if c.met => format!("met: {}", md_cell(&c.requirement)),
            Some(c) => format!("**MISSED**: {}", md_cell(&c.requirement)),
            None => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} {} | {} | {} | {} |",
            md_cell(&s.name),
            expect_word(s.expect),
            s.runs,
            v.promoted,
            v.rolled_back,
            v.deploy_failed,
            v.build_failed,
            rate_name(s.expect),
            rate_ci(&s.rollback_rate),
            median_time(s),
            median_blast(s),
            expectation
        );
    }
    let _ = writeln!(md, "\n{}\n", RATES_EXPLAINED);

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
            let _ = writeln!(md, "### {}\n\n{}", run.scenario, explain_run(run));
        }
    }
    md
}

/// What the rates mean, shared with the HTML.
pub(crate) const RATES_EXPLAINED: &str = "**Reading the rates.** A run is *rolled back* when the canary analysis \
fails it or the canary never becomes ready. For a regression (expect fail) the rollback rate is the **detection \
rate**: higher is better, a miss ships the regression. For a harmless release (expect pass, e.g. A/A) it is the \
**false-alarm rate**: lower is better, each false alarm blocks a good release. The bracket is the Wilson 95% \
interval: with few runs it is wide, so compare intervals, not point rates. Rates leave out runs whose build failed.";
