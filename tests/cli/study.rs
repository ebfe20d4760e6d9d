use canarylab::Exit;

use crate::{canarylab, repo};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("canarylab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn sim_writes_a_report_and_report_rerenders_it() {
    let out = tmp("sim");
    let catalog = repo("scenarios/catalog");
    let (exit, text) = canarylab(&[
        "sim",
        catalog.join("latency-25pct.toml").to_str().unwrap(),
        catalog.join("aa-independent-noise.toml").to_str().unwrap(),
        "--runs",
        "40",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    assert!(
        text.contains("latency-25pct") && text.contains("caught") && text.contains("false alarm"),
        "{text}"
    );
    for f in ["report.html", "report.md", "results.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let study = reports::read_study(&out.join("results.json")).unwrap();
    assert_eq!(study.scenarios.len(), 2);
    assert_eq!(study.scenarios[0].runs, 40);
    assert_eq!(study.example_runs.len(), 2);

    // re-render elsewhere from the saved results
    let again = tmp("report");
    let (exit, _) = canarylab(&[
        "report",
        out.join("results.json").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    assert_eq!(
        std::fs::read(out.join("report.md")).unwrap(),
        std::fs::read(again.join("report.md")).unwrap()
    );
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&again).unwrap();
}

#[test]
fn test_command_checks_expectations_and_writes_junit() {
    let dir = tmp("test-scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = repo("scenarios/catalog");
    std::fs::copy(
        catalog.join("canary-config.json"),
        dir.join("canary-config.json"),
    )
    .unwrap();
    std::fs::copy(
        catalog.join("errors-2pct.toml"),
        dir.join("errors-2pct.toml"),
    )
    .unwrap();
    // a 5% latency regression cannot be caught 99.9% of the time
    std::fs::write(
        dir.join("latency-5pct-strict.toml"),
        "description = \"x\"\nexpect = \"fail\"\nmin_detection = 0.999\n[regression]\nkind = \"latency\"\nincrease = 0.05\n\
         [analysis]\nconfig = \"canary-config.json\"\n",
    )
    .unwrap();
    let junit = dir.join("junit.xml");
    let (exit, text) = canarylab(&[
        "test",
        dir.to_str().unwrap(),
        "--runs",
        "60",
        "--junit",
        junit.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::CanaryFailed, "{text}");
    assert!(text.contains("PASS errors-2pct"), "{text}");
    assert!(
        text.contains("FAIL latency-5pct-strict") && text.contains("required detection >= 0.999"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite")
            && xml.contains("latency-5pct-strict")
            && xml.contains("<failure"),
        "{xml}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweep_and_bad_input() {
    let out = tmp("sweep");
    let catalog = repo("scenarios/catalog");
    let (exit, text) = canarylab(&[
        "sweep",
        catalog.join("latency-5pct.toml").to_str().unwrap(),
        catalog.join("aa-typical.toml").to_str().unwrap(),
        "--param",
        "pass=50,75,95",
        "--runs",
        "30",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    assert!(
        text.contains("pass = 75") && text.contains("<- current"),
        "{text}"
    );
    let study = reports::read_study(&out.join("results.json")).unwrap();
    let sweep = &study.sweeps[0];
    assert_eq!(sweep.points.len(), 3);
    // a stricter pass threshold never lowers detection
    assert!(sweep.points[2].detection.rate >= sweep.points[0].detection.rate);
    std::fs::remove_dir_all(&out).unwrap();

    let e = canarylab(&["sweep", "--param", "speed=1,2"]).unwrap_err();
    assert!(
        e.contains("unknown parameter \"speed\"") && e.contains("canary_weight"),
        "{e}"
    );
    let e = canarylab(&["sim", "no/such/dir"]).unwrap_err();
    assert!(e.contains("no/such/dir"), "{e}");
    let e = canarylab(&["sim", "--runs", "0"]).unwrap_err();
    assert!(e.contains("--runs"), "{e}");
}

#[test]
#[cfg(feature = "local")]
fn the_simulator_uses_goldengooses_histogram_buckets() {
    assert_eq!(
        sim::series::DURATION_BUCKETS,
        goldengoose::metrics::DURATION_BUCKETS
    );
}

#[test]
#[cfg(feature = "local")]
fn local_refuses_bad_input_before_starting_anything() {
    let e = canarylab(&[
        "local",
        "scenarios/catalog/latency-25pct.toml",
        "--time-scale",
        "0",
    ])
    .unwrap_err();
    assert!(e.contains("--time-scale 0"), "{e}");
    let e = canarylab(&["local", "no-such-scenario.toml"]).unwrap_err();
    assert!(
        e.contains("no-such-scenario.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn sim_side_by_side_writes_one_entry_per_scenario_and_analysis() {
    let out = tmp("side-by-side");
    let catalog = repo("scenarios/catalog");
    let analyses = catalog.join("analyses");
    let (exit, text) = canarylab(&[
        "sim",
        catalog.join("latency-25pct.toml").to_str().unwrap(),
        catalog.join("aa-typical.toml").to_str().unwrap(),
        "--analysis",
        analyses.join("kayenta.json").to_str().unwrap(),
        "--analysis",
        analyses.join("argo-rollout.yaml").to_str().unwrap(),
        "--analysis",
        analyses.join("flagger-canary.yaml").to_str().unwrap(),
        "--runs",
        "20",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    assert!(text.contains("latency-25pct [argo-rollout]"), "{text}");
    let study = reports::read_study(&out.join("results.json")).unwrap();
    let entries: Vec<_> = study
        .scenarios
        .iter()
        .map(|s| format!("{} {}", s.name, s.analysis.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(
        entries,
        [
            "latency-25pct kayenta",
            "latency-25pct argo-rollout",
            "latency-25pct flagger-canary",
            "aa-typical kayenta",
            "aa-typical argo-rollout",
            "aa-typical flagger-canary",
        ]
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn an_analysis_directory_stands_for_its_files_in_name_order() {
    let out = tmp("side-by-side-dir");
    let catalog = repo("scenarios/catalog");
    let (exit, _) = canarylab(&[
        "sim",
        catalog.join("aa-typical.toml").to_str().unwrap(),
        "--analysis",
        catalog.join("analyses").to_str().unwrap(),
        "--runs",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    let study = reports::read_study(&out.join("results.json")).unwrap();
    let analyses: Vec<_> = study
        .scenarios
        .iter()
        .map(|s| s.analysis.clone().unwrap_or_default())
        .collect();
    assert_eq!(analyses, ["argo-rollout", "flagger-canary", "kayenta"]);
    std::fs::remove_dir_all(&out).unwrap();
    // a directory with nothing to read is refused, naming it
    let empty = tmp("side-by-side-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = canarylab(&[
        "sim",
        catalog.join("aa-typical.toml").to_str().unwrap(),
        "--analysis",
        empty.to_str().unwrap(),
        "--runs",
        "5",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("holds no .json"), "{e}");
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn analysis_errors_name_the_file_and_field() {
    let dir = tmp("bad-analysis");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("rollout.yaml");
    std::fs::write(
        &bad,
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: a}\nspec:\n  strategy:\n    canary:\n      steps:\n      - experiment: {}\n",
    )
    .unwrap();
    let catalog = repo("scenarios/catalog");
    let scenario = catalog.join("aa-typical.toml");
    let e = canarylab(&[
        "sim",
        scenario.to_str().unwrap(),
        "--analysis",
        bad.to_str().unwrap(),
        "--runs",
        "1",
    ])
    .expect_err("an experiment step is refused");
    assert!(
        e.contains("rollout.yaml") && e.contains("experiment"),
        "{e}"
    );
    // --config and --analysis do not mix
    let e = canarylab(&[
        "sim",
        "--config",
        catalog.join("canary-config.json").to_str().unwrap(),
        "--analysis",
        bad.to_str().unwrap(),
    ])
    .expect_err("conflict");
    assert!(e.contains("--analysis"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The catalog's side-by-side Kayenta analysis is a copy of the config its
/// scenarios name, so that the plain study and the side-by-side one judge
/// alike: the two files must not drift apart.
#[test]
fn the_catalogs_kayenta_analysis_is_its_scenarios_config() {
    let catalog = repo("scenarios/catalog");
    let analysis = std::fs::read(catalog.join("analyses/kayenta.json")).unwrap();
    let config = std::fs::read(catalog.join("canary-config.json")).unwrap();
    assert!(
        analysis == config,
        "scenarios/catalog/analyses/kayenta.json differs from scenarios/catalog/canary-config.json: copy one onto the other"
    );
}
