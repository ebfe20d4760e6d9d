//! Renders canarylab results (see [`model`]): what the judge caught and
//! missed, as pictures and words.
//!
//! One study becomes a directory: `report.html` (self-contained, inline SVG
//! charts, opens from disk), `report.md`, `results.json` (the [`Study`] it
//! was drawn from, readable again with [`read_study`]) and `charts/*.svg` +
//! `charts/*.png` for pasting into tickets. [`junit_xml`] turns the
//! expectations of `canarylab test` into JUnit XML.
//!
//! This crate only renders: it runs nothing and computes no statistics
//! beyond what a chart needs to be drawn.

#![warn(missing_docs)]

pub mod charts;
pub mod compare;
mod explain;
mod html;
mod junit;
mod markdown;
pub mod model;
pub mod summary;
mod text;
pub mod xy;

use std::path::{Path, PathBuf};

pub use charts::Chart;
pub use explain::explain_run;
pub use html::render_html;
pub use junit::junit_xml;
pub use markdown::render_markdown;
pub use model::Study;

/// What went wrong while reading or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A results file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A results file is not a canarylab study.
    #[error("{path}: not canarylab results: at `{json_path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the JSON document, e.g. `scenarios[2].rollback_rate.total`.
        json_path: String,
        /// What serde said.
        message: String,
    },
    /// An output file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A chart could not be drawn or encoded.
    #[error("cannot draw chart `{chart}`: {message}")]
    Chart {
        /// The chart's id.
        chart: String,
        /// What plotters or the PNG encoder said.
        message: String,
    },
}

/// The files [`write_study`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `results.json`.
    pub json: PathBuf,
    /// `charts/<id>.svg`, one per chart, in report order.
    pub svgs: Vec<PathBuf>,
    /// `charts/<id>.png`, one per chart, in report order.
    pub pngs: Vec<PathBuf>,
}

impl Written {
    /// Every file written, HTML first.
    pub fn all(&self) -> Vec<&Path> {
        let mut all = vec![
            self.html.as_path(),
            self.markdown.as_path(),
            self.json.as_path(),
        ];
        all.extend(self.svgs.iter().map(PathBuf::as_path));
        all.extend(self.pngs.iter().map(PathBuf::as_path));
        all
    }
}

/// Write the whole report for `study` into `out_dir` (created if missing):
/// `report.html`, `report.md`, `results.json`, `charts/*.svg`, `charts/*.png`.
pub fn write_study(study: &Study, out_dir: &Path) -> Result<Written, Error> {
    let charts_dir = out_dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| Error::Write {
        path: charts_dir.clone(),
        source,
    })?;
    let write = |path: PathBuf, bytes: &[u8]| -> Result<PathBuf, Error> {
        std::fs::write(&path, bytes).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };

    let mut svgs = Vec::new();
    let mut pngs = Vec::new();
    let mut rendered = Vec::new();
    // one pixel buffer for every chart's PNG
    let mut pixels = Vec::new();
    for chart in charts::study_charts(study) {
        let svg = chart.svg()?;
        svgs.push(write(
            charts_dir.join(format!("{}.svg", chart.id)),
            svg.as_bytes(),
        )?);
        pngs.push(write(
            charts_dir.join(format!("{}.png", chart.id)),
            &chart.png_reusing(&mut pixels)?,
        )?);
        rendered.push((chart, svg));
    }
    let html = write(
        out_dir.join("report.html"),
        html::render_with(study, &rendered).as_bytes(),
    )?;
    let markdown = write(out_dir.join("report.md"), render_markdown(study).as_bytes())?;
    let json = write(out_dir.join("results.json"), study_json(study).as_bytes())?;
    Ok(Written {
        html,
        markdown,
        json,
        svgs,
        pngs,
    })
}

/// The study as pretty JSON (what `results.json` holds), newline-terminated.
pub fn study_json(study: &Study) -> String {
    // Serializing plain data with string keys cannot fail; NaN and infinities
    // become null, as serde_json does for any f64.
    let mut json =
        serde_json::to_string_pretty(study).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// Read a study back from a `results.json` written by [`write_study`] (or
/// by the simulator). Errors name the file and the JSON path of the problem.
pub fn read_study(path: &Path) -> Result<Study, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Parse {
        path: path.to_owned(),
        json_path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}
