//! The text outputs: Markdown and JSON snapshots, JUnit XML, reading
//! results back, and the files `write_study` writes.

use std::path::PathBuf;

use reports::model::Study;
use reports::{Error, read_study, render_markdown, study_json, write_study};

use crate::{fixture, xml};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("reports-it")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("study_markdown", render_markdown(&fixture::study()));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("study_json", study_json(&fixture::study()));
}

#[test]
fn explain_run_snapshot() {
    let study = fixture::study();
    insta::assert_snapshot!(
        "explain_rollback",
        reports::explain_run(&study.example_runs[0])
    );
}

#[test]
fn junit_has_one_failure_for_the_missed_expectation() {
    let study = fixture::study();
    let junit = reports::junit_xml(&study);
    let elements = xml::check(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    assert_eq!(
        elements.iter().filter(|e| *e == "testcase").count(),
        study.scenarios.len()
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "failure").count(),
        1,
        "{junit}"
    );
    assert!(junit.contains("<testsuite name=\"canarylab\""));
    assert!(junit.contains("failures=\"1\""));
    let failure = junit.lines().find(|l| l.contains("<failure")).unwrap();
    assert!(failure.contains("false alarm &lt;= 0.02"), "{failure}");
    assert!(failure.contains("noop-config-change"), "{failure}");
    insta::assert_snapshot!("junit", junit);
}

#[test]
fn write_study_writes_everything_and_reads_back() {
    let study = fixture::study();
    let dir = match std::env::var_os("REPORTS_DEMO_DIR") {
        // `REPORTS_DEMO_DIR=/tmp/reports-demo cargo test -p reports` leaves a report to look at.
        Some(d) => PathBuf::from(d),
        None => scratch("write"),
    };
    let written = write_study(&study, &dir).unwrap();
    let charts = reports::charts::study_charts(&study);
    assert_eq!(written.svgs.len(), charts.len());
    assert_eq!(written.pngs.len(), charts.len());
    for path in written.all() {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len > 100, "{} is {len} bytes", path.display());
    }
    for svg in &written.svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        xml::check(&text).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    }
    assert_eq!(written.html, dir.join("report.html"));
    let back: Study = read_study(&written.json).unwrap();
    assert_eq!(back, study);
    assert_eq!(
        std::fs::read_to_string(&written.markdown).unwrap(),
        render_markdown(&study)
    );
}

#[test]
fn read_study_names_file_and_json_path() {
    let dir = scratch("read-error");
    let mut value = serde_json::to_value(fixture::study()).unwrap();
    value["scenarios"][2]["rollback_rate"]["total"] = serde_json::json!("two hundred");
    let path = dir.join("broken-results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let err = read_study(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    assert!(msg.contains("broken-results.json"), "{msg}");
    assert!(msg.contains("scenarios[2].rollback_rate.total"), "{msg}");

    let missing = dir.join("nope.json");
    let msg = read_study(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope.json"), "{msg}");

    std::fs::write(&path, "{\"tool_version\": \"0.1.0\"").unwrap();
    let msg = read_study(&path).unwrap_err().to_string();
    assert!(msg.contains("broken-results.json"), "{msg}");
}
