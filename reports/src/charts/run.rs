//! The example-run chart: one run's baseline and canary series per metric,
//! the analysis intervals, and each interval's score and each metric's
//! classification.
//!
//! Not for anything summed over runs (the other chart kinds).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use judge::{Classification, ScoreClassification};

use super::layout::{Mark, legend, note};
use super::style::{BLUE, GREEN, GREY, GRID, MUTED, ORANGE, VERMILLION, anchored, font};
use super::{Chart, DrawResult, Plot, slug};
use crate::model::{ReleaseEnd, RunDetail};
use crate::text::{num, seconds};

impl<'a> Chart<'a> {
    /// One run: each metric's baseline and canary series, interval ends, and
    /// each interval's score and verdict. `index` numbers the chart id.
    pub fn run(run: &'a RunDetail, index: usize) -> Self {
        Chart {
            id: format!("run-{}-{}", index + 1, slug(&run.label())),
            title: format!("Example run: {} (seed {}): {}", run.label(), run.seed, decision_words(run.decision)),
            caption: "Baseline (control) and canary (experiment) series of each metric as the judge saw them. \
                      Dashed lines end the analysis intervals; above each interval its score and verdict, and \
                      in each panel that metric's classification."
                .into(),
            size: (980, 96 + 180 * run.series.len().max(1) as u32),
            plot: Plot::Run(run),
        }
    }
}

fn decision_words(decision: ReleaseEnd) -> &'static str {
    match decision {
        ReleaseEnd::Promote => "promoted",
        ReleaseEnd::Rollback => "rolled back",
        ReleaseEnd::DeployFailed => "deploy failed",
        ReleaseEnd::BuildFailed => "build failed",
        ReleaseEnd::Error => "error",
        ReleaseEnd::Paused => "paused",
    }
}

fn metric_color(c: Classification) -> &'static RGBColor {
    match c {
        Classification::Pass => &GREEN,
        Classification::High | Classification::Low | Classification::Error => &VERMILLION,
        Classification::Nodata | Classification::NodataFailMetric => &ORANGE,
    }
}

fn score_color(c: ScoreClassification) -> &'static RGBColor {
    match c {
        ScoreClassification::Pass => &GREEN,
        ScoreClassification::Marginal | ScoreClassification::Nodata => &ORANGE,
        ScoreClassification::Fail => &VERMILLION,
    }
}

pub(super) fn draw_run<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &RunDetail,
) -> DrawResult<DB> {
    legend(
        root,
        (16, 42),
        &[
            ("baseline (control)", BLUE, Mark::Line),
            ("canary (experiment)", VERMILLION, Mark::Line),
            ("interval end", GREY, Mark::Dashed),
        ],
    )?;
    if run.series.is_empty() {
        return note(
            root,
            &format!(
                "no analysis in this run: {} ({})",
                decision_words(run.decision),
                run.reason
            ),
        );
    }
    let header = 90;
    let (_, body) = root.split_vertically(header);
    let t_max = run
        .intervals
        .iter()
        .map(|i| i.end_s)
        .chain(run.series.iter().flat_map(|s| s.times_s.iter().copied()))
        .filter(|t| t.is_finite())
        .fold(0.0f64, f64::max);
    let t_max = if t_max > 0.0 { t_max } else { 1.0 };
    let panels = body.split_evenly((run.series.len(), 1));
    let mut interval_px: Vec<i32> = Vec::new();
    for (k, (series, panel)) in run.series.iter().zip(&panels).enumerate() {
        let values = series
            .control
            .iter()
            .chain(&series.experiment)
            .filter_map(|v| *v)
            .filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = (hi - lo) * 0.08;
            (
                (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY }),
                hi + (hi - lo) * 0.25,
            )
        } else if lo.is_finite() {
            (lo - 1.0, hi + 1.0)
        } else {
            (0.0, 1.0)
        };
        panel.draw(&Text::new(series.name.clone(), (84, 2), font(13.5)))?;
        let mut chart = ChartBuilder::on(panel)
            .margin_left(12)
            .margin_right(24)
            .margin_top(22)
            .margin_bottom(4)
            .x_label_area_size(26)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..t_max, lo..hi)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .y_labels(4)
            .x_label_formatter(&|v| seconds(*v))
            .y_label_formatter(&|v| num(*v))
            // no light lines: they were white on white, the same picture for
            // a third of an example run's SVG and its drawing
            .max_light_lines(0)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .label_style(font(11.5).color(&MUTED))
            .draw()?;
        for (values, color) in [(&series.control, BLUE), (&series.experiment, VERMILLION)] {
            // Missing points break the line rather than being bridged.
            let mut segment: Vec<(f64, f64)> = Vec::new();
            let mut segments = Vec::new();
            for (t, v) in series.times_s.iter().zip(values) {
                match v {
                    Some(v) if v.is_finite() => segment.push((*t, *v)),
                    _ => segments.push(std::mem::take(&mut segment)),
                }
            }
            segments.push(segment);
            for s in segments.into_iter().filter(|s| !s.is_empty()) {
                if s.len() == 1 {
                    chart.draw_series([Circle::new(s[0], 2, color.filled())])?;
                } else {
                    chart.draw_series(LineSeries::new(s, color.stroke_width(2)))?;
                }
            }
        }
        for iv in &run.intervals {
            chart.draw_series([DashedPathElement::new(
                vec![(iv.end_s, lo), (iv.end_s, hi)],
                5,
                4,
                GREY.stroke_width(1),
            )])?;
            let Some(m) = iv.metrics.iter().find(|m| m.name == series.name) else {
                continue;
            };
            let mut words = m.classification.to_string();
            if matches!(m.classification, Classification::High | Classification::Low)
                && let Some(r) = m.ratio
            {
                words.push_str(&format!(" ×{}", num(r)));
            }
            if m.critical && !m.passed() {
                words.push_str(" (critical)");
            }
            let style = anchored(
                font(11.5).color(metric_color(m.classification)),
                HPos::Center,
                VPos::Top,
            );
            chart.draw_series([EmptyElement::at(((iv.start_s + iv.end_s) / 2.0, hi))
                + Text::new(words, (0, 3), style)])?;
        }
        if k == 0 {
            interval_px = run
                .intervals
                .iter()
                .map(|iv| chart.backend_coord(&((iv.start_s + iv.end_s) / 2.0, hi)).0)
                .collect();
        }
    }
    for (iv, x) in run.intervals.iter().zip(interval_px) {
        let style = anchored(
            font(12.5).color(score_color(iv.classification)),
            HPos::Center,
            VPos::Center,
        );
        root.draw(&Text::new(
            format!(
                "interval {}: score {} {}",
                iv.index,
                num(iv.score),
                iv.classification
            ),
            (x, 74),
            style,
        ))?;
    }
    Ok(())
}
