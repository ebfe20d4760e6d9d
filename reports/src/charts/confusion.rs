//! The confusion matrix: expected outcome (pass/fail) against what the
//! pipeline did (promoted/rolled back, and paused when any run paused),
//! summed over every run of every scenario.
//!
//! Not for per-scenario outcomes (see `verdicts`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{GREEN, MUTED, PAUSED, VERMILLION, anchored, font};
use super::{Chart, DrawResult, Plot};
use crate::compare::Comparison;
use crate::model::{Expect, ScenarioResult};
use crate::text::{any_paused, pct};

impl<'a> Chart<'a> {
    /// Expected outcome (pass/fail) against what happened (promoted/rolled
    /// back), summed over every run of every scenario.
    pub fn confusion(scenarios: &'a [ScenarioResult]) -> Self {
        let mut caption: String = "Rows are the truth, columns what the pipeline did; percentages are of the row. The \
                      off-diagonal cells are the judge's mistakes: harmless releases rolled back (false alarms) \
                      and regressions promoted (misses)."
            .into();
        let paused = any_paused(scenarios);
        if paused {
            caption.push_str(
                " The paused column counts runs the analysis paused for a person (neither promoted nor rolled back).",
            );
        }
        if let Some(cmp) = Comparison::of_results(scenarios) {
            caption.push_str(&format!(
                " Summed over all {} analyses; the side-by-side view shows each on its own.",
                cmp.analyses.len()
            ));
        }
        Chart {
            id: "confusion".into(),
            title: "Confusion matrix over the catalog".into(),
            caption,
            size: (if paused { 900 } else { 700 }, 420),
            plot: Plot::Confusion(scenarios),
        }
    }
}

pub(super) fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[ScenarioResult],
) -> DrawResult<DB> {
    // Rolled back = by the analysis or by a failed deployment, as in the
    // rollback rate; build failures never reach the canary and are left out.
    // Paused runs (neither promoted nor rolled back) get a third column
    // when there are any, so the old two-column matrix is unchanged.
    let (mut pp, mut pr, mut fp, mut fr, mut builds) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut ppause, mut fpause) = (0u64, 0u64);
    for s in rows {
        let v = &s.verdicts;
        let back = u64::from(v.rolled_back) + u64::from(v.deploy_failed);
        match s.expect {
            Expect::Pass => {
                pp += u64::from(v.promoted);
                pr += back;
                ppause += u64::from(v.paused);
            }
            Expect::Fail => {
                fp += u64::from(v.promoted);
                fr += back;
                fpause += u64::from(v.paused);
            }
        }
        builds += u64::from(v.build_failed);
    }
    let paused = any_paused(rows);
    let (x0, y0, cw, ch) = (250, 96, 200, 120);
    let head = anchored(font(13.5).color(&MUTED), HPos::Center, VPos::Bottom);
    root.draw(&Text::new("promoted", (x0 + cw / 2, y0 - 10), head.clone()))?;
    root.draw(&Text::new(
        "rolled back",
        (x0 + cw + cw / 2, y0 - 10),
        head.clone(),
    ))?;
    if paused {
        root.draw(&Text::new("paused", (x0 + 2 * cw + cw / 2, y0 - 10), head))?;
    }
    let side = anchored(font(13.5), HPos::Right, VPos::Center);
    let side_sub = anchored(font(11.5).color(&MUTED), HPos::Right, VPos::Center);
    let mut pass_cells = vec![(pp, "correct", GREEN), (pr, "false alarm", VERMILLION)];
    let mut fail_cells = vec![(fp, "missed", VERMILLION), (fr, "detected", GREEN)];
    if paused {
        pass_cells.push((ppause, "waiting for a person", PAUSED));
        fail_cells.push((fpause, "waiting for a person", PAUSED));
    }
    let cells = [
        (
            0,
            "expect pass",
            "harmless releases",
            pass_cells,
            pp + pr + ppause,
        ),
        (
            1,
            "expect fail",
            "regressions",
            fail_cells,
            fp + fr + fpause,
        ),
    ];
    for (row, name, sub, row_cells, total) in cells {
        let top = y0 + row * ch;
        root.draw(&Text::new(name, (x0 - 14, top + ch / 2 - 9), side.clone()))?;
        root.draw(&Text::new(
            format!("{sub} ({total} runs)"),
            (x0 - 14, top + ch / 2 + 10),
            side_sub.clone(),
        ))?;
        for (col, (n, word, color)) in row_cells.into_iter().enumerate() {
            let left = x0 + col as i32 * cw;
            let share = if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            };
            root.draw(&Rectangle::new(
                [(left, top), (left + cw, top + ch)],
                color.mix(0.08 + 0.5 * share).filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(left, top), (left + cw, top + ch)],
                WHITE.stroke_width(3),
            ))?;
            let cx = left + cw / 2;
            let centre = |size: f64| anchored(font(size), HPos::Center, VPos::Center);
            root.draw(&Text::new(n.to_string(), (cx, top + 34), centre(24.0)))?;
            let rate = if total == 0 {
                "–".to_string()
            } else {
                pct(share)
            };
            root.draw(&Text::new(
                format!("{rate} of row"),
                (cx, top + 66),
                centre(13.0),
            ))?;
            root.draw(&Text::new(word, (cx, top + 90), centre(12.5).color(&MUTED)))?;
        }
    }
    let foot = font(11.5).color(&MUTED);
    root.draw(&Text::new(
        format!("Rolled back includes deploy failures. {builds} build failures (nothing deployed) are left out."),
        (16, y0 + 2 * ch + 28),
        foot,
    ))?;
    Ok(())
}
