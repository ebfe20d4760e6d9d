//! JUnit XML for `canarylab test`: one test case per scenario, so a CI
//! system shows which scenario's expectation a change broke.

use std::fmt::Write as _;

use crate::model::ScenarioResult;
use crate::model::Study;
use crate::text::{rate_ci, rate_name, ratio, xml_escape};

/// One `<testcase>` per scenario in a `<testsuite name="canarylab">`; a
/// scenario whose expectation was not met is a `<failure>` whose message
/// states the requirement. Scenarios without an expectation pass. In a
/// side-by-side study each scenario is a case per analysis, named
/// `scenario [analysis]` as `canarylab test` prints it, so names stay
/// unique and CI histories track each pair.
pub fn junit_xml(study: &Study) -> String {
    let failures = study
        .scenarios
        .iter()
        .filter(|s| s.expectation.as_ref().is_some_and(|c| !c.met))
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"canarylab\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        study.scenarios.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"canarylab\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
        study.scenarios.len()
    );
    for s in &study.scenarios {
        let name = xml_escape(&case_name(s));
        let observed = format!(
            "{} {} ({} of {} runs rolled back)",
            rate_name(s.expect),
            rate_ci(&s.rollback_rate),
            s.rollback_rate.count,
            s.rollback_rate.total
        );
        let _ = write!(
            xml,
            "    <testcase classname=\"canarylab.scenarios\" name=\"{name}\""
        );
        match &s.expectation {
            Some(check) if !check.met => {
                let message = format!("expected {}, got {}", check.requirement, observed);
                let _ = writeln!(xml, ">");
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\" type=\"expectation\">{}: {}; verdicts: {} promoted, {} rolled back, {} deploy failed, {}{} build failed (rollback {})</failure>",
                    xml_escape(&message),
                    name,
                    xml_escape(&message),
                    s.verdicts.promoted,
                    s.verdicts.rolled_back,
                    s.verdicts.deploy_failed,
                    if s.verdicts.paused > 0 {
                        format!("{} paused, ", s.verdicts.paused)
                    } else {
                        String::new()
                    },
                    s.verdicts.build_failed,
                    ratio(&s.rollback_rate)
                );
                let _ = writeln!(xml, "    </testcase>");
            }
            Some(check) => {
                let _ = writeln!(xml, ">");
                let _ = writeln!(
                    xml,
                    "      <system-out>{}: {}</system-out>",
                    xml_escape(&check.requirement),
                    xml_escape(&observed)
                );
                let _ = writeln!(xml, "    </testcase>");
            }
            None => {
                let _ = writeln!(xml, ">");
                let _ = writeln!(
                    xml,
                    "      <system-out>no expectation stated; {}</system-out>",
                    xml_escape(&observed)
                );
                let _ = writeln!(xml, "    </testcase>");
            }
        }
    }
    let _ = writeln!(xml, "  </testsuite>");
    let _ = writeln!(xml, "</testsuites>");
    xml
}

/// A test case's name: the scenario's, with its analysis's in brackets in
/// a side-by-side study.
fn case_name(s: &ScenarioResult) -> String {
    match &s.analysis {
        Some(a) => format!("{} [{a}]", s.name),
        None => s.name.clone(),
    }
}
