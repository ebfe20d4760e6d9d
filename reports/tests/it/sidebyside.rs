//! The side-by-side view of several analyses: it appears only when the
//! results hold two or more analyses, its numbers are the data's, its charts
//! draw one mark per scenario and analysis; paused runs show everywhere.

use reports::charts::study_charts;
use reports::compare::Comparison;
use reports::model::{Expect, ReleaseEnd, RunDetail, ScenarioResult, Study};

use crate::fixture::{self, ANALYSES};
use crate::{pictures, xml};

/// The report's percentage format, written out independently: whole
/// percentages at 0, 100 and from 10% when whole, else one decimal.
fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p == 0.0 || p >= 99.95 || (p >= 10.0 && (p - p.round()).abs() < 0.05) {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The report's time format for the fixture's range (2 min to 2 h).
fn minutes(s: f64) -> String {
    assert!((120.0..7200.0).contains(&s), "{s}");
    format!("{:.1} min", s / 60.0)
}

/// The report's count format below 1000.
fn count(x: f64) -> String {
    assert!(x < 1000.0, "{x}");
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The HTML table row of one scenario and analysis.
fn row<'h>(html: &'h str, s: &ScenarioResult) -> &'h str {
    let key = format!(
        "data-scenario=\"{}\" data-analysis=\"{}\"",
        s.name,
        s.analysis.as_deref().unwrap_or("-")
    );
    html.lines()
        .find(|l| l.contains(&key))
        .unwrap_or_else(|| panic!("no row with {key}"))
}

fn svg_of(study: &Study, id: &str) -> String {
    let chart = study_charts(study)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no chart {id}"));
    chart.svg().unwrap()
}

/// Filled circles of the given color in an SVG from plotters.
fn dots(svg: &str, color: &str) -> usize {
    svg.lines()
        .filter(|l| l.contains("<circle") && l.contains(&format!("fill=\"{color}\"")))
        .count()
}

/// Whether plotters drew `text` as one text element (it writes the text on
/// a line of its own).
fn has_text(svg: &str, text: &str) -> bool {
    svg.contains(&format!(">\n{text}\n</text>"))
}

const COLORS: [&str; 3] = ["#0072B2", "#D55E00", "#009E73"];

#[test]
fn the_view_appears_only_with_two_or_more_analyses() {
    // The classic study (no analysis field) and the same with one named
    // analysis: no side-by-side view, no side-by-side charts.
    let plain = fixture::study();
    let mut one = fixture::study();
    for s in &mut one.scenarios {
        s.analysis = Some("canary-config".into());
    }
    for study in [&plain, &one] {
        assert!(Comparison::of(study).is_none());
        let html = reports::render_html(study);
        assert!(!html.contains("id=\"side-by-side\""));
        assert!(!reports::render_markdown(study).contains("Side by side"));
        assert!(
            study_charts(study)
                .iter()
                .all(|c| !c.id.starts_with("side-by-side"))
        );
    }
    // One named analysis labels its rows by it.
    let html = reports::render_html(&one);
    assert!(html.contains("<strong>aa-baseline</strong> <span class=\"tag\">canary-config</span>"));

    let study = fixture::comparison();
    let cmp = Comparison::of(&study).unwrap();
    assert_eq!(cmp.analyses, ANALYSES);
    assert_eq!(cmp.rows.len(), 4);
    let html = reports::render_html(&study);
    xml::check(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("<section id=\"side-by-side\">"));
    assert!(html.contains("<h2>Side by side: 3 analyses</h2>"));
    assert!(html.contains("<title>canarylab study: 4 scenarios, 3 analyses side by side</title>"));
    for id in ["side-by-side", "side-by-side-cost"] {
        assert!(html.contains(&format!("<figure id=\"{id}\">")), "{id}");
    }
    // The figures sit in the side-by-side section, before the Charts section.
    let section = html.find("<section id=\"side-by-side\">").unwrap();
    let charts = html.find("<section id=\"charts\">").unwrap();
    let figure = html.find("<figure id=\"side-by-side\">").unwrap();
    assert!(section < figure && figure < charts);
    assert!(!html.contains("class=\"note\""), "a chart failed to draw");
}

#[test]
fn numbers_in_the_page_match_the_data() {
    let study = fixture::comparison();
    let html = reports::render_html(&study);
    let md = reports::render_markdown(&study);
    for s in &study.scenarios {
        let tr = row(&html, s);
        let r = &s.rollback_rate;
        let word = match s.expect {
            Expect::Fail => "detection",
            Expect::Pass => "false alarm",
        };
        let rate = format!(
            "<span class=\"muted small\">{word}</span> <strong>{}</strong> <span class=\"muted\">[{}–{}]</span>",
            pct(r.rate),
            pct(r.lower),
            pct(r.upper)
        );
        assert!(tr.contains(&rate), "{rate} not in {tr}");
        assert!(
            tr.contains(&format!("<td class=\"n\">{}</td>", s.runs)),
            "{tr}"
        );
        let paused = if s.verdicts.paused == 0 {
            "<td class=\"n\">0</td>".to_string()
        } else {
            let reached = s.runs;
            format!(
                "<td class=\"n\">{} <span class=\"muted small\">({})</span></td>",
                s.verdicts.paused,
                pct(f64::from(s.verdicts.paused) / f64::from(reached))
            )
        };
        assert!(tr.contains(&paused), "{paused} not in {tr}");
        let (t, b) = (&s.decision_time_s, &s.blast_radius);
        let times = format!(
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            minutes(t.p50),
            minutes(t.p90),
            count(b.p50),
            count(b.p90)
        );
        assert!(tr.contains(&times), "{times} not in {tr}");
        // The Markdown table has the same numbers.
        let md_row = format!(
            "| {} ({}) | {} | {} | {word} {} [{}–{}] |",
            s.name,
            if s.expect == Expect::Fail {
                "fail"
            } else {
                "pass"
            },
            s.analysis.as_deref().unwrap(),
            s.runs,
            pct(r.rate),
            pct(r.lower),
            pct(r.upper)
        );
        assert!(md.contains(&md_row), "{md_row} not in the Markdown");
    }
    // The fixture's argo-rollout latency-10pct: 20 of 200 paused (10%),
    // 120 of 200 rolled back (60%).
    let argo = study
        .scenarios
        .iter()
        .find(|s| s.name == "latency-10pct" && s.analysis.as_deref() == Some("argo-rollout"))
        .unwrap();
    assert!(row(&html, argo).contains("<strong>60%</strong>"));
    assert!(row(&html, argo).contains("20 <span class=\"muted small\">(10%)</span>"));
}

#[test]
fn what_this_shows_is_derived_from_the_numbers() {
    let study = fixture::comparison();
    let findings = Comparison::of(&study).unwrap().findings();
    let text = findings.join("\n");
    // Pooled over the three regressions: 562, 516 and 488 of 600.
    assert!(
        text.contains(
            "Catches the most regressions: canary-config, 93.7% of the runs of the 3 regression scenarios \
             rolled back (argo-rollout 86%, flagger-canary 81.3%)."
        ),
        "{text}"
    );
    // On the A/A scenario: 4, 2 and 20 of 200.
    assert!(
        text.contains("Raises the most false alarms: flagger-canary, 10% of the runs of the 1 harmless scenario rolled back (canary-config 2.0%, argo-rollout 1.0%)."),
        "{text}"
    );
    assert!(text.contains("argo-rollout 32 of 800 runs"), "{text}");
    assert!(!text.contains("canary-config 0 of"), "{text}");

    // Which decides soonest: worked out here from each scenario's median.
    let typical = |analysis: &str| {
        let mut m: Vec<f64> = study
            .scenarios
            .iter()
            .filter(|s| s.expect == Expect::Fail && s.analysis.as_deref() == Some(analysis))
            .map(|s| s.decision_time_s.p50)
            .collect();
        m.sort_by(f64::total_cmp);
        m[1]
    };
    let soonest = ANALYSES
        .iter()
        .min_by(|a, b| typical(a).total_cmp(&typical(b)))
        .unwrap();
    assert!(
        text.contains(&format!(
            "Decides soonest on regressions: {soonest}, {} (",
            minutes(typical(soonest))
        )),
        "{text}"
    );

    // Change the data and the words follow: make flagger-canary catch
    // everything and raise no false alarms.
    let mut better = study.clone();
    for s in &mut better.scenarios {
        if s.analysis.as_deref() == Some("flagger-canary") {
            let n = s.rollback_rate.total;
            s.rollback_rate =
                reports::model::wilson(if s.expect == Expect::Fail { n } else { 0 }, n);
        }
    }
    let text = Comparison::of(&better).unwrap().findings().join("\n");
    assert!(
        text.contains("Catches the most regressions: flagger-canary, 100%"),
        "{text}"
    );
    assert!(
        text.contains("Raises the most false alarms: canary-config, 2.0%"),
        "{text}"
    );

    // The page carries the same sentences.
    let html = reports::render_html(&study);
    for f in &findings {
        let escaped = f.replace('\'', "&#39;");
        assert!(html.contains(&format!("<li>{escaped}</li>")), "{f}");
    }
}

#[test]
fn charts_draw_one_mark_per_scenario_and_analysis() {
    let study = fixture::comparison();
    let rates = svg_of(&study, "side-by-side");
    xml::check(&rates).unwrap_or_else(|e| panic!("{e}"));
    // 4 scenarios x 3 analyses; in each analysis's color one dot per scenario.
    assert_eq!(rates.matches("<circle").count(), 12);
    for color in COLORS {
        assert_eq!(dots(&rates, color), 4, "{color}");
    }
    for name in ANALYSES.iter().chain(&["latency-10pct", "aa-baseline"]) {
        assert!(rates.contains(name), "{name} not labelled");
    }
    assert!(rates.contains("Detection: regressions"));
    assert!(rates.contains("False alarms: harmless releases"));
    // Decision time and blast radius: two panels of 12 marks.
    let cost = svg_of(&study, "side-by-side-cost");
    xml::check(&cost).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cost.matches("<circle").count(), 24);
    for color in COLORS {
        assert_eq!(dots(&cost, color), 8, "{color}");
    }

    // A scenario one analysis did not run: one mark fewer, and the table says so.
    let mut gap = study.clone();
    gap.scenarios
        .retain(|s| !(s.name == "errors-5pct" && s.analysis.as_deref() == Some("flagger-canary")));
    let rates = svg_of(&gap, "side-by-side");
    assert_eq!(rates.matches("<circle").count(), 11);
    assert_eq!(dots(&rates, COLORS[2]), 3);
    let html = reports::render_html(&gap);
    xml::check(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("not released with this analysis"));

    // PNGs of every chart decode and have content.
    for chart in study_charts(&study) {
        pictures::check_png(&chart, 0.02);
    }
}

#[test]
fn existing_charts_label_entries_by_analysis() {
    let study = fixture::comparison();
    let verdicts = svg_of(&study, "verdicts");
    assert!(verdicts.contains("latency-10pct (argo-rollout)"));
    assert!(verdicts.contains("latency-10pct (flagger-canary)"));
    for id in ["decision-time", "blast-radius"] {
        assert!(
            svg_of(&study, id).contains("errors-5pct (canary-config)"),
            "{id}"
        );
    }
    // Power: one line per analysis in the latency panel (two sizes each);
    // errors has one size and no panel.
    let power = svg_of(&study, "power");
    assert_eq!(power.matches("<circle").count(), 6);
    for color in COLORS {
        assert_eq!(dots(&power, color), 2, "{color}");
    }
    let junit = reports::junit_xml(&study);
    xml::check(&junit).unwrap();
    // One case per scenario and analysis, every name once.
    let names: Vec<&str> = junit
        .split("<testcase ")
        .skip(1)
        .filter_map(|c| c.split(" name=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(names.len(), study.scenarios.len());
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(names.contains(&"aa-baseline [flagger-canary]"), "{names:?}");
    assert!(names.contains(&"aa-baseline [argo-rollout]"), "{names:?}");
}

#[test]
fn paused_runs_show_in_tables_charts_and_words() {
    let study = fixture::comparison();
    let html = reports::render_html(&study);
    assert!(html.contains("<th class=\"n\">paused</th>"));
    assert!(html.contains("A *paused* run") || html.contains("A <em>paused</em> run"));
    let md = reports::render_markdown(&study);
    assert!(md.contains("| deploy failed | paused | build failed |"));
    // argo-rollout on the A/A scenario: 190 promoted, 2 rolled back, 0
    // deploy failed, 8 paused, 0 build failed.
    assert!(md.contains("| aa-baseline (argo-rollout) | pass | 200 | 190 | 2 | 0 | 8 | 0 |"));
    let verdicts = svg_of(&study, "verdicts");
    assert!(has_text(&verdicts, "paused"), "no paused legend");
    let confusion = study_charts(&study)
        .into_iter()
        .find(|c| c.id == "confusion")
        .unwrap();
    assert_eq!(confusion.size.0, 900);
    let svg = confusion.svg().unwrap();
    assert!(svg.contains("waiting for a person"));
    // 8 paused harmless runs, 24 paused regression runs.
    assert!(has_text(&svg, "8") && has_text(&svg, "24"), "{svg}");

    // Without paused runs none of it is there.
    let plain = fixture::study();
    let html = reports::render_html(&plain);
    assert!(!html.contains(">paused<"));
    assert!(!has_text(&svg_of(&plain, "verdicts"), "paused"));
    assert!(has_text(&svg_of(&plain, "verdicts"), "promoted"));

    // A paused run explained.
    let mut run: RunDetail = plain.example_runs[0].clone();
    run.decision = ReleaseEnd::Paused;
    run.reason = "analysis run Inconclusive".into();
    let words = reports::explain_run(&run);
    assert!(
        words.contains("paused by the analysis, waiting for a person"),
        "{words}"
    );
    assert!(
        words.contains(
            "Deciding rule: inconclusive analysis (last judged interval 3: score 0, Fail)"
        ),
        "{words}"
    );
    let chart = reports::Chart::run(&run, 0);
    assert!(chart.title.ends_with(": paused"), "{}", chart.title);
}

#[test]
fn write_study_writes_the_side_by_side_charts() {
    let study = fixture::comparison();
    let dir = match std::env::var_os("REPORTS_COMPARISON_DEMO_DIR") {
        // `REPORTS_COMPARISON_DEMO_DIR=/tmp/sbs cargo test -p reports` leaves one to look at.
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-it-sidebyside"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let written = reports::write_study(&study, &dir).unwrap();
    for id in ["side-by-side", "side-by-side-cost"] {
        assert!(
            written
                .svgs
                .contains(&dir.join("charts").join(format!("{id}.svg")))
        );
        assert!(
            written
                .pngs
                .contains(&dir.join("charts").join(format!("{id}.png")))
        );
    }
    let html = std::fs::read_to_string(&written.html).unwrap();
    assert!(html.contains("<a href=\"charts/side-by-side.png\">PNG</a>"));
    assert_eq!(reports::read_study(&written.json).unwrap(), study);
}

#[test]
fn comparison_markdown_snapshot() {
    insta::assert_snapshot!(
        "comparison_markdown",
        reports::render_markdown(&fixture::comparison())
    );
}
