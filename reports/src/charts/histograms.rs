//! The distribution charts: per scenario, a histogram row of the time to
//! decision or of the blast radius (failed requests the canary served),
//! with the median marked.
//!
//! Not for comparing analyses' medians (see `side_by_side`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Mark, label_width, legend, note, row_y};
use super::style::{BLUE, GRID, INK, MUTED, VERMILLION, anchored, font};
use super::{Chart, DrawResult, Plot};
use crate::model::{Distribution, Expect, ScenarioResult};
use crate::text::{any_paused, count, scenario_label, seconds};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    DecisionTime,
    BlastRadius,
}

impl<'a> Chart<'a> {
    /// Time from canary start to the decision, one histogram row per scenario.
    pub fn decision_times(scenarios: &'a [ScenarioResult]) -> Self {
        let mut caption: String = "Per scenario, the histogram of time from canary start to promote or rollback; the black \
                      tick is the median. Regressions should be caught early; harmless releases take the full \
                      analysis."
            .into();
        if any_paused(scenarios) {
            caption.push_str(" A paused run counts at the time the analysis paused it.");
        }
        Chart {
            id: "decision-time".into(),
            title: "Time to decision".into(),
            caption,
            size: (980, 120 + 28 * scenarios.len().max(1) as u32),
            plot: Plot::Histograms {
                rows: scenarios,
                which: Which::DecisionTime,
            },
        }
    }

    /// Failed requests served by the canary before the decision, one
    /// histogram row per scenario.
    pub fn blast_radius(scenarios: &'a [ScenarioResult]) -> Self {
        let mut caption: String = "Per scenario, the histogram of failed user requests the canary served before the decision; \
                      the black tick is the median. This is what a regression costs users even when it is caught."
            .into();
        if any_paused(scenarios) {
            caption.push_str(
                " A paused run counts what the canary served until the analysis paused it.",
            );
        }
        Chart {
            id: "blast-radius".into(),
            title: "Blast radius: failed requests served by the canary".into(),
            caption,
            size: (980, 120 + 28 * scenarios.len().max(1) as u32),
            plot: Plot::Histograms {
                rows: scenarios,
                which: Which::BlastRadius,
            },
        }
    }
}

fn dist(s: &ScenarioResult, which: Which) -> &Distribution {
    match which {
        Which::DecisionTime => &s.decision_time_s,
        Which::BlastRadius => &s.blast_radius,
    }
}

pub(super) fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[ScenarioResult],
    which: Which,
) -> DrawResult<DB> {
    legend(
        root,
        (16, 42),
        &[
            ("harmless release (expect pass)", BLUE, Mark::Box),
            ("regression (expect fail)", VERMILLION, Mark::Box),
            ("median", INK, Mark::Line),
        ],
    )?;
    let n = rows.len();
    if n == 0 {
        return note(root, "no scenarios");
    }
    let fmt = |v: f64| match which {
        Which::DecisionTime => seconds(v),
        Which::BlastRadius => count(v),
    };
    let mut xmax = rows
        .iter()
        .map(|s| {
            let d = dist(s, which);
            (d.bins_start + d.bin_width * d.bins.len() as f64).max(d.max)
        })
        .fold(0.0f64, f64::max);
    if !(xmax.is_finite() && xmax > 0.0) {
        xmax = 1.0;
    }
    let (_, body) = root.split_vertically(66);
    let label_w = label_width(&body, rows.iter().map(scenario_label))?;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(200)
        .margin_bottom(10)
        .x_label_area_size(38)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..xmax * 1.02, 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .x_label_formatter(&|v| fmt(*v))
        .x_desc(match which {
            Which::DecisionTime => "time from canary start to decision",
            Which::BlastRadius => "failed requests served by the canary",
        })
        // no light lines: they were white on white, the same picture for
        // a third of an example run's SVG and its drawing
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(12.0).color(&MUTED))
        .draw()?;
    let label = anchored(font(13.0), HPos::Right, VPos::Center);
    let right = anchored(font(12.0).color(&MUTED), HPos::Left, VPos::Center);
    for (i, s) in rows.iter().enumerate() {
        let y0 = row_y(i, n);
        let d = dist(s, which);
        let color = match s.expect {
            Expect::Pass => BLUE,
            Expect::Fail => VERMILLION,
        };
        let peak = d.bins.iter().copied().max().unwrap_or(0).max(1);
        chart.draw_series([PathElement::new(
            vec![(0.0, y0 + 0.1), (xmax, y0 + 0.1)],
            GRID.stroke_width(1),
        )])?;
        chart.draw_series(
            d.bins
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(j, c)| {
                    let x = d.bins_start + d.bin_width * j as f64;
                    let h = 0.8 * f64::from(*c) / f64::from(peak);
                    Rectangle::new(
                        [(x, y0 + 0.1), (x + d.bin_width, y0 + 0.1 + h)],
                        color.mix(0.75).filled(),
                    )
                }),
        )?;
        if d.count > 0 {
            chart.draw_series([PathElement::new(
                vec![(d.p50, y0 + 0.02), (d.p50, y0 + 0.95)],
                INK.stroke_width(2),
            )])?;
        }
        let (px, py) = chart.backend_coord(&(0.0, y0 + 0.5));
        root.draw(&Text::new(scenario_label(s), (px - 8, py), label.clone()))?;
        let (rx, _) = chart.backend_coord(&(xmax * 1.02, y0 + 0.5));
        let words = if d.count == 0 {
            "no runs".to_string()
        } else {
            format!("median {}, p90 {}", fmt(d.p50), fmt(d.p90))
        };
        root.draw(&Text::new(words, (rx + 12, py), right.clone()))?;
    }
    Ok(())
}
