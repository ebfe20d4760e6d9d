//! Side-by-side studies: every scenario released once per analysis on the
//! same seeds, one result entry per scenario and analysis.

use std::path::{Path, PathBuf};

use release::ReleaseEnd;
use scenarios::Scenario;
use sim::analysis::{self, FileKind};
use sim::{StudyAnalysis, StudyOptions, run_study, run_study_side_by_side};

use crate::catalog;

fn analysis_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog/analyses")
        .join(name)
}

fn analyses(scenario: &Path, files: &[&str]) -> Vec<StudyAnalysis> {
    files
        .iter()
        .map(|f| {
            let file = analysis::read(&analysis_file(f)).unwrap();
            let scenarios = match file.kind {
                FileKind::Kayenta => vec![Scenario::load(scenario, Some(&file.path)).unwrap()],
                FileKind::Peer(_) => Vec::new(),
            };
            StudyAnalysis { file, scenarios }
        })
        .collect()
}

fn opts(runs: u32) -> StudyOptions {
    StudyOptions {
        runs,
        seed: 7,
        threads: 2,
        examples: false,
    }
}

#[test]
fn one_entry_per_scenario_and_analysis_on_common_seeds() {
    let sc = catalog("latency-25pct");
    let files = ["kayenta.json", "argo-rollout.yaml", "flagger-canary.yaml"];
    let a = analyses(&sc.path, &files);
    let study =
        run_study_side_by_side(std::slice::from_ref(&sc), &a, opts(40), &|_, _| {}).unwrap();
    let names: Vec<_> = study
        .scenarios
        .iter()
        .map(|s| (s.name.as_str(), s.analysis.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("latency-25pct", Some("kayenta")),
            ("latency-25pct", Some("argo-rollout")),
            ("latency-25pct", Some("flagger-canary")),
        ]
    );
    // the catalog's Kayenta config is the scenario's own: the same seeds
    // give the same result as the plain study
    let plain = run_study(std::slice::from_ref(&sc), opts(40), &|_, _| {}).unwrap();
    let mut kayenta = study.scenarios[0].clone();
    assert_eq!(kayenta.analysis.take().as_deref(), Some("kayenta"));
    assert_eq!(
        serde_json::to_value(&kayenta).unwrap(),
        serde_json::to_value(&plain.scenarios[0]).unwrap()
    );
}

/// Until the simulator evaluates PromQL every peer measurement is an
/// error, so the peers decide on their error rules, at times fixed from
/// the traffic shift: Argo's metrics (initialDelay 5m) retry errors every
/// 10 s and abort on the 5th (consecutiveErrorLimit 4): 5 min 40 s;
/// Flagger (interval 1m, threshold 5) fails one check per tick and rolls
/// back at interval * (threshold + 1) after the first tick: 6 min.
#[test]
fn peers_decide_at_their_rules_times_from_the_traffic_shift() {
    let sc = catalog("aa-typical");
    let a = analyses(&sc.path, &["argo-rollout.yaml", "flagger-canary.yaml"]);
    let study =
        run_study_side_by_side(std::slice::from_ref(&sc), &a, opts(30), &|_, _| {}).unwrap();
    for (r, expected_s) in study.scenarios.iter().zip([340.0, 360.0]) {
        let deployed = r.verdicts.promoted + r.verdicts.rolled_back + r.verdicts.deploy_failed;
        assert!(deployed > 0, "{r:?}");
        assert_eq!(r.verdicts.promoted, 0, "{r:?}");
        assert_eq!(r.decision_time_s.p50, expected_s, "{:?}", r.analysis);
        assert_eq!(r.decision_time_s.max, expected_s, "{:?}", r.analysis);
        // the canary served requests until the rollback
        assert!(r.blast_radius.max >= 0.0);
    }
    // a detail run of a peer records its stages
    let prepared = sim::study::prepare_side_by_side(std::slice::from_ref(&sc), &a).unwrap();
    let (outcome, detail) = sim::run_once(&prepared[1], 3, true, &mut judge::Workspace::new());
    assert_eq!(outcome.decision, ReleaseEnd::Rollback);
    let detail = detail.unwrap();
    assert!(detail.reason.starts_with("Flagger: "), "{}", detail.reason);
    let stages: Vec<&str> = detail.timeline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["build", "deploy", "analysis", "rollback"]);
}
