//! Pieces of layout the chart kinds share: the one-line legend, the note
//! drawn instead of an empty chart, the width of a label column, and rows
//! counted from the top.
//!
//! Not for styles or colors (see `style`), or for any one chart's layout.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::DrawResult;
use super::style::{MUTED, anchored, font};

#[derive(Clone, Copy)]
pub(crate) enum Mark {
    Box,
    Line,
    Dashed,
    Whisker,
}

/// A one-line legend starting at `(x, y)` (top-left) on `area`.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (mut x, y): (i32, i32),
    items: &[(&str, RGBColor, Mark)],
) -> DrawResult<DB> {
    let style = anchored(font(12.5).color(&MUTED), HPos::Left, VPos::Center);
    for &(label, color, mark) in items {
        let cy = y + 7;
        match mark {
            Mark::Box => area.draw(&Rectangle::new(
                [(x, y + 1), (x + 12, y + 13)],
                color.filled(),
            ))?,
            Mark::Line => area.draw(&PathElement::new(
                vec![(x, cy), (x + 18, cy)],
                color.stroke_width(2),
            ))?,
            Mark::Dashed => area.draw(&DashedPathElement::new(
                vec![(x, cy), (x + 18, cy)],
                4,
                3,
                color.stroke_width(1),
            ))?,
            Mark::Whisker => {
                area.draw(&PathElement::new(
                    vec![(x, cy), (x + 18, cy)],
                    color.stroke_width(2),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x, cy - 4), (x, cy + 4)],
                    color.stroke_width(2),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x + 18, cy - 4), (x + 18, cy + 4)],
                    color.stroke_width(2),
                ))?;
                area.draw(&Circle::new((x + 9, cy), 3, color.filled()))?;
            }
        }
        let mark_w = if matches!(mark, Mark::Box) { 12 } else { 18 };
        area.draw(&Text::new(
            label.to_string(),
            (x + mark_w + 6, cy),
            style.clone(),
        ))?;
        let (w, _) = area.estimate_text_size(label, &style)?;
        x += mark_w + 6 + w as i32 + 20;
    }
    Ok(())
}

pub(super) fn note<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        anchored(font(14.0).color(&MUTED), HPos::Center, VPos::Center),
    ))
}

/// Width of a left label column for `labels` at 13 px, within bounds.
pub(super) fn label_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = String>,
) -> Result<u32, DrawingAreaErrorKind<DB::ErrorType>> {
    let style = font(13.0);
    let mut widest = 0;
    for l in labels {
        widest = widest.max(area.estimate_text_size(&l, &style)?.0);
    }
    // room for the label, the "expect ..." tag at its left, and a gap
    Ok((widest + 84).clamp(120, 370))
}

/// Rows from the top: row `i` of `n` occupies y in `[n-1-i, n-i]`.
pub(super) fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}
