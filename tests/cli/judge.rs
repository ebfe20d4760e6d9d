use std::process::Command;

use canarylab::Exit;

use crate::{canarylab, repo};

fn example(name: &str) -> String {
    repo("examples").join(name).display().to_string()
}

#[test]
fn judges_the_examples() {
    let config = example("canary-config.json");
    let (exit, out) = canarylab(&[
        "judge",
        "--config",
        &config,
        "--pairs",
        &example("pairs-no-change.json"),
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["judgeName"], "NetflixACAJudge-v1.0");
    assert_eq!(v["score"]["classification"], "Pass");
    assert_eq!(v["results"].as_array().unwrap().len(), 4);
    assert!(v["results"][0]["resultMetadata"]["mannWhitney"]["ciLower"].is_number());

    let regression = example("pairs-latency-regression.json");
    let (exit, out) = canarylab(&[
        "judge",
        "--config",
        &config,
        "--pairs",
        &regression,
        "--format",
        "text",
        "--exit-code",
    ])
    .unwrap();
    assert_eq!(exit, Exit::CanaryFailed);
    assert!(out.starts_with("Canary Fail: score 0.00"), "{out}");
    assert!(out.contains("latency_p50  High critical"), "{out}");

    // without --exit-code a failing canary is still a successful judgement
    let (exit, _) = canarylab(&["judge", "--config", &config, "--pairs", &regression]).unwrap();
    assert_eq!(exit, Exit::Success);
}

#[test]
fn thresholds_from_flags() {
    let config = example("canary-config.json");
    let pairs = example("pairs-latency-regression.json");
    // a wide-open pass threshold turns the same score into a pass
    let (exit, out) = canarylab(&[
        "judge",
        "--config",
        &config,
        "--pairs",
        &pairs,
        "--pass",
        "0",
        "--marginal",
        "0",
        "--exit-code",
    ])
    .unwrap();
    assert_eq!(exit, Exit::Success, "{out}");
    let e = canarylab(&[
        "judge",
        "--config",
        &config,
        "--pairs",
        &pairs,
        "--pass",
        "40",
        "--marginal",
        "60",
    ])
    .unwrap_err();
    assert!(
        e.contains("--pass 40 / --marginal 60") && e.contains("above pass"),
        "{e}"
    );
    let e = canarylab(&[
        "judge", "--config", &config, "--pairs", &pairs, "--format", "yaml",
    ])
    .unwrap_err();
    assert!(e.contains("yaml"), "{e}");
}

#[test]
fn bad_input_names_file_and_path() {
    let dir = std::env::temp_dir().join(format!("canarylab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_config = dir.join("bad-config.json");
    std::fs::write(&bad_config, r#"{"metrics":[{"name":"latency","analysisConfigurations":{"canary":{"direction":"upward"}}}]}"#)
        .unwrap();
    let bad_pairs = dir.join("bad-pairs.json");
    std::fs::write(
        &bad_pairs,
        r#"[{"name":"nope","values":{"control":[1],"experiment":[2]}}]"#,
    )
    .unwrap();

    let e = canarylab(&[
        "judge",
        "--config",
        bad_config.to_str().unwrap(),
        "--pairs",
        &example("pairs-no-change.json"),
    ])
    .unwrap_err();
    assert!(
        e.contains("bad-config.json")
            && e.contains("metrics[0].analysisConfigurations.canary.direction"),
        "{e}"
    );
    assert!(e.contains("upward"), "{e}");

    let e = canarylab(&[
        "judge",
        "--config",
        &example("canary-config.json"),
        "--pairs",
        bad_pairs.to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(
        e.contains("bad-pairs.json") && e.contains("[0].name") && e.contains("\"nope\""),
        "{e}"
    );

    // as a real process: exit status 2 and the message on stderr
    let out = Command::new(env!("CARGO_BIN_EXE_canarylab"))
        .args([
            "judge",
            "--config",
            bad_config.to_str().unwrap(),
            "--pairs",
            bad_pairs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("bad-config.json"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
