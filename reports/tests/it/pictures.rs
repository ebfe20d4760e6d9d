//! The pictures: the HTML page is well-formed and self-contained with one
//! SVG per chart; PNGs decode to the chart's size and are not blank.

use std::collections::HashSet;

use reports::charts::{Chart, study_charts};
use reports::model::Study;

use crate::{fixture, xml};

#[test]
fn html_is_well_formed_with_one_svg_per_chart() {
    let study = fixture::study();
    let html = reports::render_html(&study);
    let elements = xml::check(&html).unwrap_or_else(|e| panic!("{e}"));
    let charts = study_charts(&study);
    // verdicts, confusion, power, 1 ROC, decision time, blast radius, 2 runs
    assert_eq!(
        charts.len(),
        8,
        "{:?}",
        charts.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    assert_eq!(html.matches("<svg").count(), charts.len());
    assert_eq!(
        elements.iter().filter(|e| *e == "svg").count(),
        charts.len()
    );
    for chart in &charts {
        assert!(
            html.contains(&format!("<figure id=\"{}\">", chart.id)),
            "{} missing",
            chart.id
        );
    }
    // Self-contained: nothing fetched from anywhere.
    for banned in ["<script", "<link", "<img", "src=", "url(", "https://"] {
        assert!(!html.contains(banned), "HTML contains {banned}");
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    // The summary and the words are there.
    for s in &study.scenarios {
        assert!(html.contains(&format!("<strong>{}</strong>", s.name)));
    }
    assert!(html.contains("Deciding rule: critical metric: latency_p99 was High"));
    assert!(html.contains("1 of 4 expectations missed: noop-config-change."));
}

#[test]
fn empty_study_still_renders() {
    let study = Study {
        tool_version: "0.1.0".into(),
        driver: "sim".into(),
        seed: 1,
        runs_per_scenario: 0,
        config: None,
        scenarios: vec![],
        example_runs: vec![],
        sweeps: vec![],
    };
    let html = reports::render_html(&study);
    xml::check(&html).unwrap();
    assert!(!html.contains("class=\"note\""), "a chart failed to draw");
    assert_eq!(html.matches("<svg").count(), 4);
    for chart in study_charts(&study) {
        check_png(&chart, 0.001);
    }
}

/// Decode the chart's PNG; check its size and that it has content.
pub fn check_png(chart: &Chart<'_>, min_ink: f64) {
    let bytes = chart.png().unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), chart.size, "{}", chart.id);
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let colors: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        colors.len() > 8,
        "{}: only {} colors",
        chart.id,
        colors.len()
    );
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / pixels.len() as f64;
    assert!(
        ink > min_ink,
        "{}: only {:.2}% non-white pixels",
        chart.id,
        ink * 100.0
    );
}

#[test]
fn every_png_decodes_and_is_not_blank() {
    let study = fixture::study();
    for chart in study_charts(&study) {
        check_png(&chart, 0.02);
    }
}

#[test]
fn png_holds_exactly_the_drawn_pixels() {
    // The encoder is tuned for speed; the picture must not change.
    let study = fixture::study();
    for chart in study_charts(&study) {
        let bytes = chart.png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let drawn = chart.pixels().unwrap();
        assert_eq!(info.buffer_size(), drawn.len(), "{}", chart.id);
        assert!(buf[..info.buffer_size()] == drawn[..], "{}", chart.id);
    }
}

#[test]
fn cached_glyphs_draw_the_same_pixels() {
    // Text drawn from the glyph cache, twice (the second time every glyph
    // comes from the cache), against plotters' own text drawing.
    let study = fixture::study();
    for _ in 0..2 {
        for chart in study_charts(&study) {
            let want = chart.pixels_uncached().unwrap();
            let got = chart.pixels().unwrap();
            assert!(want == got, "{}", chart.id);
        }
    }
}

#[test]
fn png_text_is_drawn() {
    // Same chart, two titles: if text were not rasterized they would match.
    let study = fixture::study();
    let a = Chart::verdicts(&study.scenarios);
    let mut b = a.clone();
    b.title = "Something else entirely".into();
    assert_ne!(a.png().unwrap(), b.png().unwrap());
}
