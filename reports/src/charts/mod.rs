//! The charts of a report, drawn with plotters: each [`Chart`] renders to
//! an SVG string (text left to the viewer's fonts) or to a PNG (text drawn
//! with the embedded DejaVu Sans, so a bare CI machine needs no fonts).
//!
//! Drawing code is generic over the plotters backend, so the SVG and the
//! PNG of a chart are the same picture. Colors are the Okabe-Ito palette,
//! which stays distinguishable for the common kinds of color blindness.
//!
//! This file holds the [`Chart`] type, the list of a study's charts and
//! the rendering to SVG and PNG; each chart kind (how it is built and
//! drawn) has its own file, and `style` and `layout` hold what they share.
//!
//! Not for computing anything: every number drawn comes from the
//! [`Study`] as the drivers wrote it.

mod confusion;
mod glyphs;
mod histograms;
mod layout;
mod polygon;
mod power;
mod roc;
mod run;
mod side_by_side;
mod style;
mod verdicts;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Error;
use crate::compare::Comparison;
use crate::model::{RunDetail, ScenarioResult, Study, Sweep};

// What the rest of the crate draws with (`xy`), at its old path.
pub(crate) use layout::{Mark, legend};
pub(crate) use style::{GRID, MUTED, SERIES, ensure_font, font};

use style::INK;

use confusion::draw_confusion;
use histograms::{Which, draw_histograms};
use power::{PowerLine, draw_power};
use roc::draw_roc;
use run::draw_run;
use side_by_side::{ComparePanel, draw_compare};
use verdicts::draw_verdicts;

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One chart of a report.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// File stem and HTML anchor, e.g. `verdicts`, `roc-1-pass-threshold`.
    pub id: String,
    /// Heading shown above the chart.
    pub title: String,
    /// How to read it, one or two sentences.
    pub caption: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
    plot: Plot<'a>,
}

#[derive(Debug, Clone)]
enum Plot<'a> {
    Verdicts(&'a [ScenarioResult]),
    Confusion(&'a [ScenarioResult]),
    Power(Vec<PowerLine>),
    Roc(&'a Sweep),
    Histograms {
        rows: &'a [ScenarioResult],
        which: Which,
    },
    Run(&'a RunDetail),
    Compare {
        analyses: Vec<String>,
        panels: Vec<ComparePanel>,
        /// What the whisker of a mark spans, for the legend.
        whisker: &'static str,
    },
}

/// Every chart of a study's report, in report order: verdicts, the
/// side-by-side charts (when the study compares two or more analyses),
/// confusion matrix, power curves (when a regression kind has 2+ sizes), one ROC per
/// sweep, decision-time and blast-radius distributions, one per example run.
pub fn study_charts(study: &Study) -> Vec<Chart<'_>> {
    let mut charts = vec![Chart::verdicts(&study.scenarios)];
    if let Some(cmp) = Comparison::of(study) {
        charts.push(Chart::side_by_side(&cmp));
        charts.push(Chart::side_by_side_cost(&cmp));
    }
    charts.push(Chart::confusion(&study.scenarios));
    charts.extend(Chart::power(&study.scenarios));
    charts.extend(
        study
            .sweeps
            .iter()
            .enumerate()
            .map(|(i, s)| Chart::roc(s, i)),
    );
    charts.push(Chart::decision_times(&study.scenarios));
    charts.push(Chart::blast_radius(&study.scenarios));
    charts.extend(
        study
            .example_runs
            .iter()
            .enumerate()
            .map(|(i, r)| Chart::run(r, i)),
    );
    charts
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

impl<'a> Chart<'a> {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> Result<String, Error> {
        ensure_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| self.err(e))?;
            root.present().map_err(|e| self.err(e))?;
        }
        Ok(out)
    }

    /// The chart's pixels as its PNG holds them: rows top to bottom, RGB,
    /// 8 bit, text in DejaVu Sans.
    pub fn pixels(&self) -> Result<Vec<u8>, Error> {
        let mut pixels = Vec::new();
        self.pixels_into(&mut pixels)?;
        Ok(pixels)
    }

    /// [`Chart::pixels`] drawn by plotters' own bitmap backend alone,
    /// every glyph rasterized where it is drawn: the reference the glyph
    /// cache's pixels are tested against.
    pub fn pixels_uncached(&self) -> Result<Vec<u8>, Error> {
        ensure_font()?;
        let (w, h) = self.size;
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| self.err(e))?;
            root.present().map_err(|e| self.err(e))?;
        }
        Ok(pixels)
    }

    /// [`Chart::pixels`] into `pixels`, whose room is reused (a report
    /// draws dozens of charts of about the same size).
    fn pixels_into(&self, pixels: &mut Vec<u8>) -> Result<(), Error> {
        ensure_font()?;
        let (w, h) = self.size;
        // Every chart starts by filling its area white, so the buffer's
        // old contents are never seen: only its length is set.
        pixels.resize(w as usize * h as usize * 3, 0);
        {
            let backend = BitMapBackend::with_buffer(&mut pixels[..], self.size);
            let root = glyphs::GlyphCache(backend).into_drawing_area();
            self.draw(&root).map_err(|e| self.err(e))?;
            root.present().map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The chart as a PNG image (RGB, 8 bit), text in DejaVu Sans.
    ///
    /// Encoded for speed (a report of a catalog study writes one per
    /// example run, and zlib's default level was a tenth of the study's
    /// CPU time): fdeflate's fast mode, every row Paeth-filtered. The
    /// adaptive choice (all five filters tried on every row) was a quarter
    /// of a catalog report's instructions; Paeth alone on the catalog's
    /// charts: 1.26G instead of 1.44G for the whole report, PNGs 3.65 MB
    /// instead of 3.37 (Sub and Up: 1.14G, but 4.9 and 6.3 MB). PNG is
    /// lossless, so the picture is the same; only the file differs.
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        self.png_reusing(&mut Vec::new())
    }

    /// [`Chart::png`], drawing into `pixels` (its room reused).
    pub fn png_reusing(&self, pixels: &mut Vec<u8>) -> Result<Vec<u8>, Error> {
        self.pixels_into(pixels)?;
        let (w, h) = self.size;
        let mut out = Vec::new();
        let png_err = |e: png::EncodingError| Error::Chart {
            chart: self.id.clone(),
            message: e.to_string(),
        };
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        encoder.set_filter(png::Filter::Paeth);
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels[..]).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
        Ok(out)
    }

    fn err<E: std::error::Error + Send + Sync>(&self, e: DrawingAreaErrorKind<E>) -> Error {
        Error::Chart {
            chart: self.id.clone(),
            message: e.to_string(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            self.title.clone(),
            (16, 12),
            font(17.0).color(&INK),
        ))?;
        match &self.plot {
            Plot::Verdicts(rows) => draw_verdicts(root, rows),
            Plot::Confusion(rows) => draw_confusion(root, rows),
            Plot::Power(lines) => draw_power(root, lines),
            Plot::Roc(sweep) => draw_roc(root, sweep),
            Plot::Histograms { rows, which } => draw_histograms(root, rows, *which),
            Plot::Run(run) => draw_run(root, run),
            Plot::Compare {
                analyses,
                panels,
                whisker,
            } => draw_compare(root, analyses, panels, whisker),
        }
    }
}

/// Said under a chart of rates when some runs paused.
const PAUSED_IN_RATES: &str = " Paused runs (the analysis was inconclusive and waits for a person) count in a \
                               rate's runs but not as rollbacks.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Pass threshold (score)"), "pass-threshold-score");
        assert_eq!(slug("latency+10%"), "latency-10");
    }
}
