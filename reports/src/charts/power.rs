//! The power chart: detection against regression size, one panel per
//! regression kind with at least two sizes (one line per analysis in a
//! study of several).
//!
//! Not for a sweep of judge settings (see `roc`).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::layout::{Mark, legend};
use super::style::{GRID, MUTED, SERIES, analysis_color, font};
use super::{Chart, DrawResult, Plot};
use crate::compare::Comparison;
use crate::model::{Rate, ScenarioResult};
use crate::text::{num, pct};

#[derive(Debug, Clone)]
pub(super) struct PowerLine {
    kind: String,
    /// The analysis (in a study of several), which picks the line's color.
    analysis: Option<(usize, String)>,
    /// (size, rollback rate), by size.
    points: Vec<(f64, Rate)>,
}

impl<'a> Chart<'a> {
    /// Detection against regression size, one panel per regression kind
    /// with at least two sizes; `None` when no kind has.
    pub fn power(scenarios: &'a [ScenarioResult]) -> Option<Self> {
        let cmp = Comparison::of_results(scenarios);
        let mut lines: Vec<PowerLine> = Vec::new();
        for s in scenarios {
            let kind = &s.regression.kind;
            if kind == "none" || kind.is_empty() {
                continue;
            }
            // In a study of several analyses, one line per kind and analysis.
            let analysis = cmp.as_ref().map(|c| {
                let name = crate::compare::analysis_name(s);
                let k = c.analyses.iter().position(|a| *a == name).unwrap_or(0);
                (k, name.to_string())
            });
            match lines
                .iter_mut()
                .find(|l| &l.kind == kind && l.analysis == analysis)
            {
                Some(l) => l.points.push((s.regression.size, s.rollback_rate)),
                None => lines.push(PowerLine {
                    kind: kind.clone(),
                    analysis,
                    points: vec![(s.regression.size, s.rollback_rate)],
                }),
            }
        }
        for l in &mut lines {
            l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        lines.retain(|l| {
            let mut sizes: Vec<f64> = l.points.iter().map(|p| p.0).collect();
            sizes.dedup();
            sizes.len() >= 2
        });
        if lines.is_empty() {
            return None;
        }
        let panels = power_kinds(&lines).len();
        let cols = panels.min(3) as u32;
        let rows = panels.div_ceil(3) as u32;
        let legend_h = if cmp.is_some() { 24 } else { 0 };
        Some(Chart {
            id: "power".into(),
            title: "Power: detection against regression size".into(),
            caption: "One panel per kind of regression, sizes in the kind's own unit. Whiskers are 95% \
                      intervals. A good config reaches high detection at the smallest size that matters to you."
                .into(),
            size: (cols.max(2) * 330, 70 + legend_h + rows * 290),
            plot: Plot::Power(lines),
        })
    }
}

/// The kinds of regression of power lines, in first-seen order: one panel each.
fn power_kinds(lines: &[PowerLine]) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for l in lines {
        if !kinds.contains(&l.kind.as_str()) {
            kinds.push(&l.kind);
        }
    }
    kinds
}

fn size_label(v: f64, as_pct: bool) -> String {
    if as_pct {
        format!("+{}", pct(v))
    } else {
        num(v)
    }
}

pub(super) fn draw_power<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    lines: &[PowerLine],
) -> DrawResult<DB> {
    // In a study of several analyses, each panel has one line per analysis,
    // colored as in the side-by-side charts, with a legend of analyses.
    let mut analyses: Vec<(usize, &str)> = lines
        .iter()
        .filter_map(|l| l.analysis.as_ref().map(|(k, a)| (*k, a.as_str())))
        .collect();
    analyses.sort();
    analyses.dedup();
    let header = if analyses.is_empty() {
        44
    } else {
        let items: Vec<(&str, RGBColor, Mark)> = analyses
            .iter()
            .map(|(k, a)| (*a, analysis_color(*k), Mark::Line))
            .collect();
        legend(root, (16, 42), &items)?;
        68
    };
    let (_, body) = root.split_vertically(header);
    let kinds = power_kinds(lines);
    let cols = kinds.len().min(3);
    let rows = kinds.len().div_ceil(3);
    let panels = body.split_evenly((rows, cols.max(2)));
    for ((kind, panel), kind_color) in kinds.iter().zip(&panels).zip(SERIES.iter().cycle()) {
        let of_kind: Vec<&PowerLine> = lines.iter().filter(|l| l.kind == *kind).collect();
        let points = || of_kind.iter().flat_map(|l| l.points.iter());
        let max = points().map(|p| p.0).fold(0.0f64, f64::max);
        let as_pct = points().all(|p| p.0.abs() <= 5.0);
        let hi = if max > 0.0 { max * 1.12 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(kind.replace('_', " "), font(14.0))
            .x_label_area_size(38)
            .y_label_area_size(46)
            .build_cartesian_2d(0f64..hi, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(6)
            .x_label_formatter(&|v| size_label(*v, as_pct))
            .y_label_formatter(&|v| pct(*v))
            .x_desc("regression size")
            .y_desc("detection")
            // no light lines: they were white on white, the same picture for
            // a third of an example run's SVG and its drawing
            .max_light_lines(0)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .label_style(font(11.5).color(&MUTED))
            .axis_desc_style(font(11.5).color(&MUTED))
            .draw()?;
        for line in of_kind {
            let color = match &line.analysis {
                Some((k, _)) => analysis_color(*k),
                None => *kind_color,
            };
            chart.draw_series(LineSeries::new(
                line.points.iter().map(|(x, r)| (*x, r.rate)),
                color.stroke_width(2),
            ))?;
            for (x, r) in &line.points {
                let w = color.stroke_width(1);
                chart.draw_series([
                    PathElement::new(vec![(*x, r.lower), (*x, r.upper)], w),
                    PathElement::new(
                        vec![(*x - hi * 0.01, r.lower), (*x + hi * 0.01, r.lower)],
                        w,
                    ),
                    PathElement::new(
                        vec![(*x - hi * 0.01, r.upper), (*x + hi * 0.01, r.upper)],
                        w,
                    ),
                ])?;
                chart.draw_series([Circle::new((*x, r.rate), 4, color.filled())])?;
            }
        }
    }
    Ok(())
}
