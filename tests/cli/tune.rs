//! `canarylab tune`: a small search end to end, and bad input refused
//! before anything runs.

use canarylab::Exit;

use crate::{canarylab, repo};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("canarylab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn tune_searches_picks_rechecks_and_writes_a_deployable_config() {
    let out = tmp("tune");
    let catalog = repo("scenarios/catalog");
    let config = catalog.join("canary-config.json");
    let (exit, text) = canarylab(&[
        "tune",
        catalog.join("aa-typical.toml").to_str().unwrap(),
        catalog.join("latency-25pct.toml").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--candidates",
        "6",
        "--runs",
        "60",
        "--max-false-alarm",
        "0.2",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    for f in ["canary-config.json", "tune.md", "tune.json", "tradeoff.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let tuned = std::fs::read_to_string(out.join("canary-config.json")).unwrap();
    let tuned = judge::CanaryConfig::from_json(&tuned).unwrap();
    judge::Judge::new(&tuned).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tune.json")).unwrap()).unwrap();
    let candidates = file["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 6);
    // candidate 0 is the user's config
    assert_eq!(
        candidates[0]["candidate"]["judge"],
        judge::config::NETFLIX_ACA_JUDGE
    );
    // the fresh check ran on other seeds than the search
    assert_ne!(file["seed"], file["fresh_seed"]);
    // what the shared series saved: 6 candidates x 2 scenarios x 60 runs
    let sharing = &file["sharing"];
    let count = |k: &str| sharing[k].as_u64().unwrap_or_else(|| panic!("sharing.{k}"));
    assert_eq!(count("runs"), 720, "{sharing}");
    assert!(count("reused_series") > 0, "{sharing}");
    assert!(count("reused_series") + count("own_series") <= count("runs"));
    assert!(count("forked") <= count("reused_series"));
    assert!(count("verdicts_shared") <= count("judged"));
    assert!(text.contains("Shared series: "), "{text}");
    let fresh = file["fresh"].as_array().unwrap();
    assert!(!fresh.is_empty() && fresh.len() <= 2);
    // the pick keeps the target on the search's seeds, and its judge is
    // the deployed config's
    if let Some(i) = file["chosen"].as_u64() {
        let pick = &candidates[i as usize];
        assert!(pick["score"]["worst_false_alarm_upper"].as_f64().unwrap() <= 0.2);
        assert_eq!(pick["candidate"]["judge"], tuned.judge_name());
        // the deployed config carries the pick's thresholds and parameters
        let t = tuned.classifier.score_thresholds.unwrap();
        assert_eq!(pick["candidate"]["pass"].as_f64(), Some(t.pass));
        assert_eq!(pick["candidate"]["marginal"].as_f64(), Some(t.marginal));
        assert_eq!(
            pick["candidate"].get("params"),
            tuned.judge.as_ref().unwrap().judge_configurations.as_ref()
        );
        assert!(text.contains(&format!("Pick (candidate {i})")), "{text}");
    } else {
        assert!(text.contains("No candidate kept"), "{text}");
    }
    assert!(text.contains("fresh seeds"), "{text}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tunes_counts_are_each_candidates_own_sim_study() {
    // tune releases every seed under every candidate, generating its
    // series once: each candidate's counts must be those `canarylab sim`
    // gives that candidate's config alone on the same seeds
    let out = tmp("tune-alone");
    let catalog = repo("scenarios/catalog");
    let config = catalog.join("canary-config.json");
    let scenarios = [
        catalog.join("aa-typical.toml"),
        catalog.join("latency-10pct-stepped-traffic.toml"),
        catalog.join("errors-0.5pct.toml"),
    ];
    let mut args = vec!["tune"];
    args.extend(scenarios.iter().map(|p| p.to_str().unwrap()));
    args.extend([
        "--config",
        config.to_str().unwrap(),
        "--candidates",
        "12",
        "--runs",
        "40",
        "--seed",
        "9",
        "--max-false-alarm",
        "0.2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (exit, _) = canarylab(&args).unwrap();
    assert_eq!(exit, Exit::Success);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tune.json")).unwrap()).unwrap();
    let base = judge::CanaryConfig::from_json(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let mut compared = 0;
    for (i, c) in file["candidates"].as_array().unwrap().iter().enumerate() {
        let candidate: sim::sweep::Candidate =
            serde_json::from_value(c["candidate"].clone()).unwrap();
        if candidate.interval_s.is_some() {
            // `sim` takes the interval from the scenario file, not a flag
            continue;
        }
        let cfg = out.join(format!("candidate-{i}.json"));
        std::fs::write(
            &cfg,
            serde_json::to_string(&candidate.config(&base)).unwrap(),
        )
        .unwrap();
        let dir = out.join(format!("sim-{i}"));
        let mut args = vec!["sim"];
        args.extend(scenarios.iter().map(|p| p.to_str().unwrap()));
        args.extend([
            "--config",
            cfg.to_str().unwrap(),
            "--runs",
            "40",
            "--seed",
            "9",
            "--out",
            dir.to_str().unwrap(),
        ]);
        canarylab(&args).unwrap();
        let study: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        let counts = c["scenarios"].as_array().unwrap();
        for (tuned, alone) in counts.iter().zip(study["scenarios"].as_array().unwrap()) {
            assert_eq!(tuned["name"], alone["name"]);
            let v = &alone["verdicts"];
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            let deployed = n("promoted") + n("rolled_back") + n("deploy_failed") + n("paused");
            assert_eq!(
                (
                    tuned["deployed"].as_u64().unwrap(),
                    tuned["rolled_back"].as_u64().unwrap()
                ),
                (deployed, deployed - n("promoted")),
                "candidate {i} ({}) on {}",
                candidate.label(),
                tuned["name"]
            );
        }
        compared += 1;
    }
    assert!(
        compared >= 3,
        "only {compared} candidates without an interval"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tune_refuses_bad_input() {
    let catalog = repo("scenarios/catalog");
    let config = catalog.join("canary-config.json");
    let aa = catalog.join("aa-typical.toml");
    let reg = catalog.join("latency-25pct.toml");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "tune",
            "--config",
            config.to_str().unwrap(),
            "--out",
            "/nonexistent/x",
        ];
        args.extend_from_slice(extra);
        canarylab(&args).expect_err("refused")
    };
    let e = run(&[
        aa.to_str().unwrap(),
        reg.to_str().unwrap(),
        "--max-false-alarm",
        "2",
    ]);
    assert!(e.contains("--max-false-alarm 2"), "{e}");
    let e = run(&[
        aa.to_str().unwrap(),
        reg.to_str().unwrap(),
        "--judge",
        "nope",
    ]);
    assert!(
        e.contains("unknown judge") && e.contains("ratio-ess"),
        "{e}"
    );
    let e = run(&[aa.to_str().unwrap()]);
    assert!(e.contains("both kinds"), "{e}");
}
