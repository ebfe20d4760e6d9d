//! A plain x-y chart (points, lines, interval bars) for pages outside the
//! study report, such as `canarylab calibrate`'s fits drawn over the data.
//! Drawn as the report's [`Chart`](crate::Chart)s are: plotters, the
//! embedded DejaVu Sans, the Okabe-Ito palette.
//!
//! Not for computing anything: the caller gives every point.

use plotters::prelude::*;

use crate::Error;
use crate::charts::{GRID, MUTED, Mark, SERIES, ensure_font, font, legend};
use crate::text::num;

/// How a curve is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Style {
    /// A dot per point.
    Points,
    /// A line through the points.
    Line,
    /// A dot per point with a vertical bar from `lo[i]` to `hi[i]`.
    Bars {
        /// Each bar's lower end, one per point, in y units.
        lo: Vec<f64>,
        /// Each bar's upper end, one per point, in y units.
        hi: Vec<f64>,
    },
}

/// One curve: its legend label (empty: not in the legend), points and
/// style; its color is the palette's `color`-th.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend label; empty leaves the curve out of the legend.
    pub label: String,
    /// The points' x values.
    pub xs: Vec<f64>,
    /// The points' y values, one per x.
    pub ys: Vec<f64>,
    /// How the curve is drawn.
    pub style: Style,
    /// Index into the palette (wraps around).
    pub color: usize,
}

/// An x-y chart: a title, axis names, curves, and optionally a fixed y
/// range (otherwise the data's, padded).
#[derive(Debug, Clone, PartialEq)]
pub struct XyChart {
    /// Title drawn above the plot.
    pub title: String,
    /// The x axis's name.
    pub x_label: String,
    /// The y axis's name.
    pub y_label: String,
    /// The curves, drawn in order (later ones on top).
    pub curves: Vec<Curve>,
    /// Fixed y range `(low, high)`; `None` takes the data's, padded.
    pub y_range: Option<(f64, f64)>,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

fn padded(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    }
}

impl XyChart {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> Result<String, Error> {
        ensure_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| Error::Chart {
                chart: self.title.clone(),
                message: e.to_string(),
            })?;
            root.present().map_err(|e| Error::Chart {
                chart: self.title.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(out)
    }

    /// The chart as a PNG image (RGB, 8 bit), text in DejaVu Sans.
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        ensure_font()?;
        let err = |message: String| Error::Chart {
            chart: self.title.clone(),
            message,
        };
        let (w, h) = self.size;
        let mut pixels = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| err(e.to_string()))?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| err(e.to_string()))?;
        writer.finish().map_err(|e| err(e.to_string()))?;
        Ok(out)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        root.draw(&Text::new(self.title.clone(), (16, 12), font(16.0)))?;
        let color = |c: &Curve| SERIES[c.color % SERIES.len()];
        let items: Vec<(&str, RGBColor, Mark)> = self
            .curves
            .iter()
            .filter(|c| !c.label.is_empty())
            .map(|c| {
                let mark = match c.style {
                    Style::Line => Mark::Line,
                    Style::Points => Mark::Box,
                    Style::Bars { .. } => Mark::Whisker,
                };
                (c.label.as_str(), color(c), mark)
            })
            .collect();
        legend(root, (16, 38), &items)?;
        let (_, body) = root.split_vertically(58);
        let (x0, x1) = padded(self.curves.iter().flat_map(|c| c.xs.iter().copied()));
        let (y0, y1) = self.y_range.unwrap_or_else(|| {
            padded(self.curves.iter().flat_map(|c| {
                let bars = match &c.style {
                    Style::Bars { lo, hi } => lo.iter().chain(hi).copied().collect(),
                    _ => Vec::new(),
                };
                c.ys.iter().copied().chain(bars)
            }))
        });
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| num(*v))
            .y_label_formatter(&|v| num(*v))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .label_style(font(11.5).color(&MUTED))
            .axis_desc_style(font(11.5).color(&MUTED))
            .draw()?;
        for c in &self.curves {
            let col = color(c);
            let pts: Vec<(f64, f64)> =
                c.xs.iter()
                    .zip(&c.ys)
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|(x, y)| (*x, *y))
                    .collect();
            match &c.style {
                Style::Line => {
                    chart.draw_series(LineSeries::new(pts, col.stroke_width(2)))?;
                }
                Style::Points => {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, col.filled())))?;
                }
                Style::Bars { lo, hi } => {
                    for ((x, y), (l, h)) in c.xs.iter().zip(&c.ys).zip(lo.iter().zip(hi)) {
                        if [*x, *y, *l, *h].iter().all(|v| v.is_finite()) {
                            chart.draw_series([PathElement::new(
                                vec![(*x, *l), (*x, *h)],
                                col.stroke_width(2),
                            )])?;
                            chart.draw_series([Circle::new((*x, *y), 4, col.filled())])?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_style_with_its_labels() {
        let chart = XyChart {
            title: "fit over data".into(),
            x_label: "lag (steps)".into(),
            y_label: "autocorrelation".into(),
            curves: vec![
                Curve {
                    label: "data".into(),
                    xs: vec![0.0, 1.0, 2.0],
                    ys: vec![1.0, 0.5, f64::NAN],
                    style: Style::Points,
                    color: 0,
                },
                Curve {
                    label: "AR(1) fit".into(),
                    xs: vec![0.0, 1.0, 2.0],
                    ys: vec![1.0, 0.6, 0.36],
                    style: Style::Line,
                    color: 1,
                },
                Curve {
                    label: "pods".into(),
                    xs: vec![0.0, 1.0],
                    ys: vec![0.1, -0.1],
                    style: Style::Bars {
                        lo: vec![0.0, -0.2],
                        hi: vec![0.2, 0.0],
                    },
                    color: 2,
                },
            ],
            y_range: None,
            size: (640, 300),
        };
        let svg = chart.svg().unwrap();
        if let Some(path) = std::env::var_os("XY_PNG") {
            std::fs::write(path, chart.png().unwrap()).unwrap();
        }
        assert!(chart.png().unwrap().starts_with(b"\x89PNG"));
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        for text in ["fit over data", "lag (steps)", "AR(1) fit", "pods"] {
            assert!(svg.contains(text), "{text} missing");
        }
        // an empty chart draws too
        let empty = XyChart {
            curves: Vec::new(),
            ..chart
        };
        assert!(empty.svg().unwrap().contains("fit over data"));
    }
}
