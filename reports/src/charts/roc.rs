//! The ROC chart of a sweep: false-alarm rate against detection rate, one
//! point per setting, the chosen setting ringed.
//!
//! Not for detection against regression size (see `power`).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Mark, legend, note};
use super::style::{BLUE, GREY, GRID, MUTED, SKY, VERMILLION, anchored, font};
use super::{Chart, DrawResult, Plot, slug};
use crate::model::Sweep;
use crate::text::pct;

impl<'a> Chart<'a> {
    /// False-alarm rate against detection rate, one point per setting of a
    /// sweep, the chosen setting marked. `index` numbers the chart id.
    pub fn roc(sweep: &'a Sweep, index: usize) -> Self {
        Chart {
            id: format!("roc-{}-{}", index + 1, slug(&sweep.parameter)),
            title: format!("ROC: sweeping {}", sweep.parameter),
            caption: "Each point is one setting: how often it rolls back harmless releases (x) against how often \
                      it rolls back regressions (y). Up and to the left is better; the ringed point is the \
                      setting in your config. The x axis is zoomed to the false-alarm rates seen."
                .into(),
            size: (760, 540),
            plot: Plot::Roc(sweep),
        }
    }
}

pub(super) fn draw_roc<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
) -> DrawResult<DB> {
    legend(
        root,
        (16, 42),
        &[
            ("setting", BLUE, Mark::Box),
            ("chosen setting", VERMILLION, Mark::Box),
            ("95% intervals", GREY, Mark::Line),
            ("chance (x = y)", GREY, Mark::Dashed),
        ],
    )?;
    if sweep.points.is_empty() {
        return note(root, "no settings in this sweep");
    }
    let (_, body) = root.split_vertically(66);
    let widest = sweep
        .points
        .iter()
        .map(|p| p.false_alarm.upper)
        .fold(0.0f64, f64::max);
    let xmax = (widest * 1.15).clamp(0.05, 1.0);
    let mut chart = ChartBuilder::on(&body)
        .margin(14)
        .margin_right(30)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..xmax, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| pct(*v))
        .y_label_formatter(&|v| pct(*v))
        .x_desc("false-alarm rate (harmless releases rolled back)")
        .y_desc("detection rate (regressions rolled back)")
        // no light lines: they were white on white, the same picture for
        // a third of an example run's SVG and its drawing
        .max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(12.5).color(&MUTED))
        .draw()?;
    chart.draw_series([DashedPathElement::new(
        vec![(0.0, 0.0), (xmax, xmax)],
        5,
        4,
        GREY.stroke_width(1),
    )])?;
    let thin = GREY.mix(0.8).stroke_width(1);
    for p in &sweep.points {
        let (x, y) = (p.false_alarm.rate, p.detection.rate);
        chart.draw_series([
            PathElement::new(
                vec![(p.false_alarm.lower, y), (p.false_alarm.upper, y)],
                thin,
            ),
            PathElement::new(vec![(x, p.detection.lower), (x, p.detection.upper)], thin),
        ])?;
    }
    chart.draw_series(LineSeries::new(
        sweep
            .points
            .iter()
            .map(|p| (p.false_alarm.rate, p.detection.rate)),
        SKY.stroke_width(1),
    ))?;
    let label = anchored(font(12.0), HPos::Left, VPos::Bottom);
    for p in &sweep.points {
        let at = (p.false_alarm.rate, p.detection.rate);
        if p.chosen {
            chart.draw_series([EmptyElement::at(at)
                + Circle::new((0, 0), 9, VERMILLION.stroke_width(2))
                + Circle::new((0, 0), 5, VERMILLION.filled())
                + Text::new(
                    format!("{} (chosen)", p.label),
                    (10, -6),
                    label.clone().color(&VERMILLION),
                )])?;
        } else {
            chart.draw_series([EmptyElement::at(at)
                + Circle::new((0, 0), 5, BLUE.filled())
                + Text::new(p.label.clone(), (8, -5), label.clone())])?;
        }
    }
    Ok(())
}
