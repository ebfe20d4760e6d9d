//! `canarylab sim --shard I/N` and `canarylab merge`: the merged shards
//! give the unsharded run's results.json byte for byte; bad shard specs and
//! bad shard sets are refused with messages naming the problem.

use canarylab::Exit;

use crate::{canarylab, repo};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("canarylab-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn merged_shards_give_the_unsharded_results_byte_for_byte() {
    let catalog = repo("scenarios/catalog");
    let a = catalog.join("latency-10pct.toml");
    let b = catalog.join("aa-typical.toml");
    let config = catalog.join("canary-config.json");
    let whole = tmp("whole");
    let shards = tmp("shards");
    let merged = tmp("merged");
    let study = [s(&a), s(&b), "--runs", "45", "--config", s(&config)];

    let mut args = vec!["sim"];
    args.extend(study);
    args.extend(["--seed", "5", "--threads", "2", "--out", s(&whole)]);
    let (exit, _) = canarylab(&args).unwrap();
    assert_eq!(exit, Exit::Success);

    for (i, threads) in [("0/4", "1"), ("1/4", "3"), ("2/4", "2"), ("3/4", "1")] {
        let mut args = vec!["sim"];
        args.extend(study);
        args.extend(["--seed", "5", "--shard", i, "--threads", threads]);
        args.extend(["--out", s(&shards)]);
        let (exit, text) = canarylab(&args).unwrap();
        assert_eq!(exit, Exit::Success);
        // 45 runs over 4 shards: 12, 11, 11, 11
        let n = if i == "0/4" { 12 } else { 11 };
        assert!(
            text.contains(&format!(
                "shard {i}: {n} of 45 runs of each of 2 scenarios ({} runs) in",
                2 * n
            )),
            "{text}"
        );
        let file = format!("shard-{}-of-4.json", &i[..1]);
        assert!(text.contains(&file), "{text}");
        // a shard writes its shard file only, no report
        assert!(!shards.join("results.json").exists());
    }

    let (exit, text) = canarylab(&["merge", s(&shards), "--out", s(&merged)]).unwrap();
    assert_eq!(exit, Exit::Success);
    assert!(
        text.contains("merged 4 shards: 45 runs of each of 2 scenarios, seed 5"),
        "{text}"
    );
    assert!(
        text.contains("latency-10pct") && text.contains("caught"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(whole.join("results.json")).unwrap(),
        std::fs::read(merged.join("results.json")).unwrap(),
        "merged results.json differs from the unsharded one"
    );
    assert_eq!(
        std::fs::read(whole.join("report.md")).unwrap(),
        std::fs::read(merged.join("report.md")).unwrap()
    );
    assert!(merged.join("report.html").is_file());

    // files named one by one work as well as their directory
    let files: Vec<String> = (0..4)
        .map(|i| s(&shards.join(format!("shard-{i}-of-4.json"))).to_string())
        .collect();
    let again = tmp("again");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--out", s(&again)]);
    canarylab(&args).unwrap();
    assert_eq!(
        std::fs::read(whole.join("results.json")).unwrap(),
        std::fs::read(again.join("results.json")).unwrap()
    );

    // duplicate: the same shard from two places
    let copy = tmp("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        shards.join("shard-2-of-4.json"),
        copy.join("shard-2-of-4.json"),
    )
    .unwrap();
    let e = canarylab(&["merge", s(&shards), s(&copy), "--out", s(&again)]).unwrap_err();
    assert!(
        e.contains("shard 2/4 is given twice") && e.contains(s(&copy)),
        "{e}"
    );

    // missing
    let e = canarylab(&["merge", &files[0], &files[2], "--out", s(&again)]).unwrap_err();
    assert!(e.contains("missing shards 1, 3 of 4"), "{e}");

    // another study's shard: same shard of another seed replaces shard 1
    let mut args = vec!["sim"];
    args.extend(study);
    args.extend(["--seed", "6", "--shard", "1/4", "--out", s(&shards)]);
    canarylab(&args).unwrap();
    let e = canarylab(&["merge", s(&shards), "--out", s(&again)]).unwrap_err();
    assert!(
        e.contains(&format!("{}: seed is 6, but {} has 5", files[1], files[0])),
        "{e}"
    );

    // not a shard file
    let e = canarylab(&["merge", s(&whole.join("results.json")), "--out", s(&again)]).unwrap_err();
    assert!(e.contains("not a shard file"), "{e}");

    for d in [whole, shards, merged, again, copy] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_sharded_sweep_merges_into_the_unsharded_sweep() {
    let catalog = repo("scenarios/catalog");
    let a = catalog.join("latency-5pct.toml");
    let b = catalog.join("aa-typical.toml");
    let whole = tmp("sweep-whole");
    let shards = tmp("sweep-shards");
    let merged = tmp("sweep-merged");
    let study = [
        "sweep",
        s(&a),
        s(&b),
        "--param",
        "pass=50,75,95",
        "--runs",
        "20",
    ];
    let mut args = study.to_vec();
    args.extend(["--out", s(&whole)]);
    canarylab(&args).unwrap();
    for i in ["0/2", "1/2"] {
        let mut args = study.to_vec();
        args.extend(["--shard", i, "--out", s(&shards)]);
        let (exit, text) = canarylab(&args).unwrap();
        assert_eq!(exit, Exit::Success);
        assert!(
            text.contains("for the study and each of 3 sweep settings"),
            "{text}"
        );
    }
    let (_, text) = canarylab(&["merge", s(&shards), "--out", s(&merged)]).unwrap();
    assert!(
        text.contains("sweep over pass:")
            && text.contains("pass = 75")
            && text.contains("<- current"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(whole.join("results.json")).unwrap(),
        std::fs::read(merged.join("results.json")).unwrap(),
        "merged sweep results.json differs from the unsharded one"
    );
    for d in [whole, shards, merged] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn bad_shard_specs_are_refused() {
    let scenario = repo("scenarios/catalog/aa-typical.toml");
    for (spec, why) in [
        ("3/3", "shard index 3 is not below the shard count 3"),
        ("0/0", "the shard count must be at least 1"),
        ("a/b", "the shard index \"a\" is not a whole number"),
        ("2", "expected I/N"),
    ] {
        let e = canarylab(&["sim", s(&scenario), "--shard", spec]).unwrap_err();
        assert!(e.contains("--shard") && e.contains(why), "{spec}: {e}");
    }
    let e = canarylab(&["sweep", "--param", "pass=50", "--shard", "2/2"]).unwrap_err();
    assert!(e.contains("--shard") && e.contains("not below"), "{e}");
    let e = canarylab(&["merge"]).unwrap_err();
    assert!(e.contains("SHARD_FILE_OR_DIR"), "{e}");
    let e = canarylab(&["merge", "no/such/shard.json"]).unwrap_err();
    assert!(e.contains("no/such/shard.json"), "{e}");
}
