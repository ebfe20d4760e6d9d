//! The verdicts chart: per scenario, how the runs ended (stacked bar),
//! with the rollback rate and its Wilson 95% interval over it.
//!
//! Not for the summed confusion matrix (see `confusion`) or for comparing
//! analyses (see `side_by_side`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Mark, label_width, legend, note, row_y};
use super::style::{GREEN, GREY, GRID, INK, MUTED, ORANGE, PAUSED, VERMILLION, anchored, font};
use super::{Chart, DrawResult, PAUSED_IN_RATES, Plot};
use crate::model::{Expect, ScenarioResult};
use crate::text::{any_paused, pct, rate_name, scenario_label};

impl<'a> Chart<'a> {
    /// Per scenario, how the runs ended (stacked bar) with the rollback rate
    /// and its Wilson 95% interval drawn over it.
    pub fn verdicts(scenarios: &'a [ScenarioResult]) -> Self {
        let mut caption: String = "Each bar is all runs of one scenario. The black dot and whisker are the rollback rate and its \
                      95% interval: detection for a regression (expect fail, should be near 100%), false alarm \
                      for a harmless release (expect pass, should be near 0%)."
            .into();
        if any_paused(scenarios) {
            caption.push_str(PAUSED_IN_RATES);
        }
        Chart {
            id: "verdicts".into(),
            title: "How the runs ended, per scenario".into(),
            caption,
            size: (980, 130 + 30 * scenarios.len().max(1) as u32),
            plot: Plot::Verdicts(scenarios),
        }
    }
}

fn verdict_segments(s: &ScenarioResult) -> [(u32, RGBColor); 5] {
    let v = &s.verdicts;
    [
        (v.promoted, GREEN),
        (v.rolled_back, VERMILLION),
        (v.deploy_failed, ORANGE),
        (v.paused, PAUSED),
        (v.build_failed, GREY),
    ]
}

fn expect_tag(expect: Expect) -> (&'static str, &'static RGBColor) {
    match expect {
        Expect::Fail => ("FAIL", &VERMILLION),
        Expect::Pass => ("PASS", &GREEN),
    }
}

pub(super) fn draw_verdicts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[ScenarioResult],
) -> DrawResult<DB> {
    let mut items = vec![
        ("promoted", GREEN, Mark::Box),
        ("rolled back", VERMILLION, Mark::Box),
        ("deploy failed", ORANGE, Mark::Box),
    ];
    if any_paused(rows) {
        items.push(("paused", PAUSED, Mark::Box));
    }
    items.push(("build failed", GREY, Mark::Box));
    items.push(("rollback rate, 95% interval", INK, Mark::Whisker));
    legend(root, (16, 42), &items)?;
    let n = rows.len();
    if n == 0 {
        return note(root, "no scenarios");
    }
    let (_, body) = root.split_vertically(70);
    let label_w = label_width(&body, rows.iter().map(scenario_label))?;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(250)
        .margin_bottom(10)
        .x_label_area_size(34)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..1f64, 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .x_label_formatter(&|v| pct(*v))
        .x_desc("share of runs")
        // no light lines: they were white on white, the same picture for
        // a third of an example run's SVG and its drawing
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(12.0).color(&MUTED))
        .draw()?;

    let label = anchored(font(13.0), HPos::Right, VPos::Center);
    let tag_style = |c: &'static RGBColor| anchored(font(10.5).color(c), HPos::Left, VPos::Center);
    let right = anchored(font(12.5), HPos::Left, VPos::Center);
    for (i, s) in rows.iter().enumerate() {
        let y0 = row_y(i, n);
        let yc = y0 + 0.5;
        let total: u32 = verdict_segments(s)
            .iter()
            .map(|(c, _)| c)
            .sum::<u32>()
            .max(1);
        let mut x = 0.0;
        let mut bars = Vec::new();
        for (c, color) in verdict_segments(s) {
            if c == 0 {
                continue;
            }
            let w = f64::from(c) / f64::from(total);
            bars.push(Rectangle::new(
                [(x, y0 + 0.2), (x + w, y0 + 0.8)],
                color.filled(),
            ));
            x += w;
        }
        chart.draw_series(bars)?;
        let r = &s.rollback_rate;
        let bar = INK.stroke_width(2);
        chart.draw_series([
            PathElement::new(vec![(r.lower, yc), (r.upper, yc)], bar),
            PathElement::new(vec![(r.lower, y0 + 0.32), (r.lower, y0 + 0.68)], bar),
            PathElement::new(vec![(r.upper, y0 + 0.32), (r.upper, y0 + 0.68)], bar),
        ])?;
        chart.draw_series([Circle::new((r.rate, yc), 4, INK.filled())])?;
        chart.draw_series([Circle::new((r.rate, yc), 4, WHITE.stroke_width(1))])?;

        let (px, py) = chart.backend_coord(&(0.0, yc));
        root.draw(&Text::new(scenario_label(s), (px - 8, py), label.clone()))?;
        let (tag, color) = expect_tag(s.expect);
        root.draw(&Text::new(
            format!("expect {}", tag.to_lowercase()),
            (14, py),
            tag_style(color),
        ))?;
        let (rx, _) = chart.backend_coord(&(1.0, yc));
        let mut words = format!(
            "{} {} [{}–{}]",
            rate_name(s.expect),
            pct(r.rate),
            pct(r.lower),
            pct(r.upper)
        );
        if let Some(check) = &s.expectation {
            words.push_str(if check.met { "  ✓" } else { "  ✗ missed" });
        }
        let color = match &s.expectation {
            Some(check) if !check.met => VERMILLION,
            _ => INK,
        };
        root.draw(&Text::new(
            words,
            (rx + 12, py),
            right.clone().color(&color),
        ))?;
    }
    Ok(())
}
