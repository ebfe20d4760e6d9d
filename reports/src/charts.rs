//! The charts of a report, drawn with plotters: each [`Chart`] renders to
//! an SVG string (text left to the viewer's fonts) or to a PNG (text drawn
//! with the embedded DejaVu Sans, so a bare CI machine needs no fonts).
//!
//! Drawing code is generic over the plotters backend, so the SVG and the
//! PNG of a chart are the same picture. Colors are the Okabe-Ito palette,
//! which stays distinguishable for the common kinds of color blindness.
//!
//! Not for computing anything: every number drawn comes from the
//! [`Study`] as the drivers wrote it.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Error;
use judge::{Classification, ScoreClassification};

use crate::compare::{Comparison, Row};
use crate::model::{
    Distribution, Expect, Rate, ReleaseEnd, RunDetail, ScenarioResult, Study, Sweep,
};
use crate::text::{any_paused, count, num, pct, rate_name, scenario_label, seconds};

/// DejaVu Sans (Bitstream Vera license, see `assets/DejaVuSans-LICENSE.txt`):
/// plotters measures text with it for every backend and draws PNG text with it.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

// Okabe-Ito.
pub(crate) const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub(crate) const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
pub(crate) const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub(crate) const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub(crate) const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub(crate) const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
pub(crate) const GREY: RGBColor = RGBColor(0xA0, 0xA0, 0xA0);
pub(crate) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub(crate) const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
pub(crate) const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
pub(crate) const SERIES: [RGBColor; 6] = [BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY];

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(crate) fn ensure_font() -> Result<(), Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Chart {
            chart: "(font)".into(),
            message: "the embedded DejaVu Sans did not load".into(),
        })
    }
}

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

/// One panel of a side-by-side chart: one row per scenario, one mark per
/// analysis in each row.
#[derive(Debug, Clone)]
struct ComparePanel {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    DecisionTime,
    BlastRadius,
}

#[derive(Debug, Clone)]
struct PowerLine {
    kind: String,
    /// The analysis (in a study of several), which picks the line's color.
    analysis: Option<(usize, String)>,
    /// (size, rollback rate), by size.
    points: Vec<(f64, Rate)>,
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
        ensure_font()?;
        let (w, h) = self.size;
        // Every chart starts by filling its area white, so the buffer's
        // initial value is never seen: zeroed memory comes from the
        // allocator without a pass over it.
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, self.size).into_drawing_area();
            self.draw(&root).map_err(|e| self.err(e))?;
            root.present().map_err(|e| self.err(e))?;
        }
        Ok(pixels)
    }

    /// The chart as a PNG image (RGB, 8 bit), text in DejaVu Sans.
    ///
    /// Encoded for speed (a report of a catalog study writes one per
    /// example run, and zlib's default level was a tenth of the study's
    /// CPU time): fdeflate's fast mode, with the default adaptive row
    /// filters (cheap next to deflate, and they keep the files small).
    /// PNG is lossless, so the picture is the same; only the file is
    /// larger.
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        let pixels = self.pixels()?;
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
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&pixels).map_err(png_err)?;
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

/// The color of the `k`-th analysis in side-by-side charts.
fn analysis_color(k: usize) -> RGBColor {
    SERIES[k % SERIES.len()]
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

pub(crate) fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&INK)
}

fn anchored<'a>(style: TextStyle<'a>, h: HPos, v: VPos) -> TextStyle<'a> {
    style.pos(Pos::new(h, v))
}

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

fn note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        anchored(font(14.0).color(&MUTED), HPos::Center, VPos::Center),
    ))
}

/// Width of a left label column for `labels` at 13 px, within bounds.
fn label_width<DB: DrawingBackend>(
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
fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

/// Paused runs in the verdict bars: neither the good green nor the bad
/// vermillion.
const PAUSED: RGBColor = SKY;

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

fn draw_verdicts<DB: DrawingBackend>(
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
        .light_line_style(WHITE)
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

fn draw_confusion<DB: DrawingBackend>(
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

fn size_label(v: f64, as_pct: bool) -> String {
    if as_pct {
        format!("+{}", pct(v))
    } else {
        num(v)
    }
}

fn draw_power<DB: DrawingBackend>(
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
            .light_line_style(WHITE)
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

fn draw_roc<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, sweep: &Sweep) -> DrawResult<DB> {
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
        .light_line_style(WHITE)
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

fn dist(s: &ScenarioResult, which: Which) -> &Distribution {
    match which {
        Which::DecisionTime => &s.decision_time_s,
        Which::BlastRadius => &s.blast_radius,
    }
}

fn draw_histograms<DB: DrawingBackend>(
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
        .light_line_style(WHITE)
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

fn draw_compare<DB: DrawingBackend>(
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
        .light_line_style(WHITE)
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

fn draw_run<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &RunDetail) -> DrawResult<DB> {
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
            .light_line_style(WHITE)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Pass threshold (score)"), "pass-threshold-score");
        assert_eq!(slug("latency+10%"), "latency-10");
    }
}
