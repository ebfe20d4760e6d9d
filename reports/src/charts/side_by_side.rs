//! The side-by-side charts of a study comparing analyses: per scenario,
//! one mark per analysis with its whisker, for detection and false alarms
//! (rates) and for time to decision and blast radius (medians to p90).
//!
//! Not for choosing what is compared (see [`crate::compare`]) or for a
//! study of one analysis (the other chart kinds).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::layout::{Mark, label_width, legend, note, row_y};
use super::style::{GREY, GRID, MUTED, analysis_color, anchored, font};
use super::{Chart, DrawResult, PAUSED_IN_RATES, Plot};
use crate::compare::{Comparison, Row};
use crate::model::{Distribution, Expect, ScenarioResult};
use crate::text::{count, pct, seconds};

/// One panel of a side-by-side chart: one row per scenario, one mark per
/// analysis in each row.
#[derive(Debug, Clone)]
pub(super) struct ComparePanel {
    title: String,
    axis: Axis,
    rows: Vec<CompareRow>,
}

/// A row of a side-by-side panel: its label, and per analysis `(value,
/// whisker from, whisker to)`, `None` where that analysis has no value.
type CompareRow = (String, Vec<Option<(f64, f64, f64)>>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    /// A rate from 0 to 1; `zoom` narrows the axis to the largest upper
    /// bound seen (false alarms are near 0).
    Rate {
        zoom: bool,
        desc: &'static str,
    },
    Seconds,
    Count,
}

impl<'a> Chart<'a> {
    /// Several analyses side by side: per scenario, each analysis's
    /// detection (regressions) or false-alarm rate (harmless releases) as a
    /// dot in the analysis's color with its Wilson 95% interval, the two
    /// kinds of scenario in separate panels.
    pub fn side_by_side(cmp: &Comparison<'_>) -> Self {
        let rate_rows = |expect: Expect| -> Vec<CompareRow> {
            cmp.rows_expecting(expect)
                .map(|r| {
                    let marks = r
                        .cells
                        .iter()
                        .map(|c| {
                            c.filter(|s| s.rollback_rate.total > 0).map(|s| {
                                let r = &s.rollback_rate;
                                (r.rate, r.lower, r.upper)
                            })
                        })
                        .collect();
                    (r.name.to_string(), marks)
                })
                .collect()
        };
        let panels: Vec<ComparePanel> = [
            ComparePanel {
                title: "Detection: regressions (expect fail), higher is better".into(),
                axis: Axis::Rate {
                    zoom: false,
                    desc: "detection rate (runs rolled back)",
                },
                rows: rate_rows(Expect::Fail),
            },
            ComparePanel {
                title: "False alarms: harmless releases (expect pass), lower is better".into(),
                axis: Axis::Rate {
                    zoom: true,
                    desc: "false-alarm rate (runs rolled back)",
                },
                rows: rate_rows(Expect::Pass),
            },
        ]
        .into_iter()
        .filter(|p| !p.rows.is_empty())
        .collect();
        let mut caption = format!(
            "One row per scenario, one dot per analysis ({}); the whisker is the rate's 95% interval. Where the \
             whiskers of two analyses overlap, the difference may be luck. The false-alarm axis is zoomed to the \
             rates seen.",
            cmp.analyses.join(", ")
        );
        if cmp
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().flatten())
            .any(|s| s.verdicts.paused > 0)
        {
            caption.push_str(PAUSED_IN_RATES);
        }
        Chart {
            id: "side-by-side".into(),
            title: format!(
                "Side by side: {} analyses, per scenario",
                cmp.analyses.len()
            ),
            caption,
            size: (980, compare_height(&panels, cmp.analyses.len())),
            plot: Plot::Compare {
                analyses: cmp.analyses.iter().map(|a| a.to_string()).collect(),
                panels,
                whisker: "95% interval",
            },
        }
    }

    /// Several analyses side by side: per scenario, each analysis's time to
    /// decision and blast radius (dot at the median, whisker to the 90th
    /// percentile).
    pub fn side_by_side_cost(cmp: &Comparison<'_>) -> Self {
        let dist_rows = |f: &dyn Fn(&ScenarioResult) -> &Distribution| {
            cmp.rows
                .iter()
                .map(|r: &Row<'_>| {
                    let marks = r
                        .cells
                        .iter()
                        .map(|c| {
                            c.map(f)
                                .filter(|d| d.count > 0)
                                .map(|d| (d.p50, d.p50, d.p90))
                        })
                        .collect();
                    (r.name.to_string(), marks)
                })
                .collect()
        };
        let panels = vec![
            ComparePanel {
                title: "Time to decision, from canary start".into(),
                axis: Axis::Seconds,
                rows: dist_rows(&|s| &s.decision_time_s),
            },
            ComparePanel {
                title: "Blast radius: failed requests the canary served to users".into(),
                axis: Axis::Count,
                rows: dist_rows(&|s| &s.blast_radius),
            },
        ];
        Chart {
            id: "side-by-side-cost".into(),
            title: "Side by side: how long each analysis takes, and what it costs users".into(),
            caption: format!(
                "One row per scenario, one dot per analysis ({}) at the median over runs; the whisker reaches the \
                 90th percentile. Sooner and fewer are better, for a regression most of all.",
                cmp.analyses.join(", ")
            ),
            size: (980, compare_height(&panels, cmp.analyses.len())),
            plot: Plot::Compare {
                analyses: cmp.analyses.iter().map(|a| a.to_string()).collect(),
                panels,
                whisker: "median to p90",
            },
        }
    }
}

/// Pixels per scenario row of a side-by-side panel with `m` analyses.
fn compare_row_px(m: usize) -> u32 {
    12 + 12 * m.max(1) as u32
}

/// Height of a side-by-side panel: title, rows, x axis.
fn compare_panel_px(rows: usize, m: usize) -> u32 {
    30 + 44 + compare_row_px(m) * rows.max(1) as u32
}

fn compare_height(panels: &[ComparePanel], m: usize) -> u32 {
    let body: u32 = panels
        .iter()
        .map(|p| compare_panel_px(p.rows.len(), m))
        .sum();
    76 + body.max(60)
}

pub(super) fn draw_compare<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    analyses: &[String],
    panels: &[ComparePanel],
    whisker: &str,
) -> DrawResult<DB> {
    let mut items: Vec<(&str, RGBColor, Mark)> = analyses
        .iter()
        .enumerate()
        .map(|(k, a)| (a.as_str(), analysis_color(k), Mark::Box))
        .collect();
    items.push((whisker, GREY, Mark::Line));
    legend(root, (16, 42), &items)?;
    if panels.is_empty() {
        return note(root, "no scenarios");
    }
    let m = analyses.len().max(1);
    let (_, mut rest) = root.split_vertically(72);
    let label_w = label_width(
        &rest,
        panels
            .iter()
            .flat_map(|p| p.rows.iter().map(|r| r.0.clone())),
    )?
    .saturating_sub(60)
    .max(120);
    for panel in panels {
        let (area, below) = rest.split_vertically(compare_panel_px(panel.rows.len(), m));
        rest = below;
        draw_compare_panel(root, &area, panel, m, label_w)?;
    }
    Ok(())
}

fn draw_compare_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    panel: &ComparePanel,
    m: usize,
    label_w: u32,
) -> DrawResult<DB> {
    area.draw(&Text::new(panel.title.clone(), (16, 6), font(14.0)))?;
    let n = panel.rows.len();
    if n == 0 {
        return Ok(());
    }
    let marks = || panel.rows.iter().flat_map(|r| r.1.iter().flatten());
    let widest = marks().map(|m| m.2.max(m.0)).fold(0.0f64, f64::max);
    let xmax = match panel.axis {
        Axis::Rate { zoom: false, .. } => 1.0,
        Axis::Rate { zoom: true, .. } => (widest * 1.15).clamp(0.05, 1.0),
        Axis::Seconds | Axis::Count if widest.is_finite() && widest > 0.0 => widest * 1.05,
        Axis::Seconds | Axis::Count => 1.0,
    };
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(30)
        .margin_top(30)
        .margin_bottom(6)
        .x_label_area_size(38)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..xmax, 0f64..n as f64)?;
    let fmt = |v: f64| match panel.axis {
        Axis::Rate { .. } => pct(v),
        Axis::Seconds => seconds(v),
        Axis::Count => count(v),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .x_label_formatter(&|v| fmt(*v))
        .x_desc(match panel.axis {
            Axis::Rate { desc, .. } => desc,
            Axis::Seconds => "time from canary start to decision",
            Axis::Count => "failed requests served by the canary",
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
    let slot = 1.0 / (m as f64 + 1.0);
    for (i, (name, cells)) in panel.rows.iter().enumerate() {
        let y0 = row_y(i, n);
        if i % 2 == 1 {
            chart.draw_series([Rectangle::new(
                [(0.0, y0), (xmax, y0 + 1.0)],
                RGBColor(0xF6, 0xF7, 0xF9).filled(),
            )])?;
        }
        for (k, cell) in cells.iter().enumerate() {
            let Some((v, lo, hi)) = *cell else { continue };
            // First analysis on top, as in the legend.
            let y = y0 + 1.0 - slot * (k as f64 + 1.0);
            let color = analysis_color(k);
            let w = color.stroke_width(2);
            let tick = slot * 0.35;
            chart.draw_series([
                PathElement::new(vec![(lo, y), (hi, y)], w),
                PathElement::new(vec![(hi, y - tick), (hi, y + tick)], w),
            ])?;
            if lo < v {
                chart.draw_series([PathElement::new(vec![(lo, y - tick), (lo, y + tick)], w)])?;
            }
            chart.draw_series([Circle::new((v, y), 5, color.filled())])?;
        }
        let (px, py) = chart.backend_coord(&(0.0, y0 + 0.5));
        root.draw(&Text::new(name.clone(), (px - 8, py), label.clone()))?;
    }
    Ok(())
}
