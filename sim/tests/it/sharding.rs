//! Sharded studies: the merge of a study's shards is the unsharded study,
//! byte for byte, and mismatched, missing or duplicate shards are refused.

use std::path::PathBuf;

use sim::shard::{self, Shard, ShardError, ShardFile};
use sim::{StudyOptions, run_study};

use crate::catalog;

fn study_opts(runs: u32, seed: u64, threads: usize) -> StudyOptions {
    StudyOptions {
        runs,
        seed,
        threads,
        examples: true,
    }
}

fn scenarios() -> Vec<scenarios::Scenario> {
    vec![
        catalog("latency-25pct"),
        catalog("aa-independent-noise"),
        catalog("crash-loop"),
    ]
}

/// Every shard of the study, each on a different thread count.
fn shards(
    sc: &[scenarios::Scenario],
    runs: u32,
    seed: u64,
    count: u32,
    config: Option<&str>,
) -> Vec<(PathBuf, ShardFile)> {
    (0..count)
        .map(|index| {
            let s = Shard::new(index, count).unwrap();
            let f = shard::run_shard(
                sc,
                study_opts(runs, seed, 1 + index as usize % 3),
                s,
                config.map(String::from),
                &|_, _| {},
            )
            .unwrap();
            (PathBuf::from(s.file_name()), f)
        })
        .collect()
}

#[test]
fn merged_shards_are_the_unsharded_study_byte_for_byte() {
    let sc = scenarios();
    let runs = 37;
    let whole = run_study(&sc, study_opts(runs, 11, 2), &|_, _| {}).unwrap();
    let whole_json = serde_json::to_vec_pretty(&whole).unwrap();
    // 8 and 50 shards: some shards hold fewer runs, or none, of a scenario
    for count in [1, 2, 3, 8, 50] {
        let merged = shard::merge(shards(&sc, runs, 11, count, None)).unwrap();
        assert_eq!(merged, whole, "{count} shards");
        assert_eq!(
            serde_json::to_vec_pretty(&merged).unwrap(),
            whole_json,
            "{count} shards"
        );
    }
    // the order shards are given in does not matter
    let mut reversed = shards(&sc, runs, 11, 4, None);
    reversed.reverse();
    assert_eq!(shard::merge(reversed).unwrap(), whole);
}

#[test]
fn shard_files_round_trip_through_disk() {
    let sc = scenarios();
    let dir = std::env::temp_dir().join(format!("sim-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut written = Vec::new();
    for (_, f) in shards(&sc, 20, 3, 3, Some("my-config.json")) {
        written.push(shard::write(&f, &dir).unwrap());
    }
    assert_eq!(
        written[1].file_name().unwrap().to_str().unwrap(),
        "shard-1-of-3.json"
    );
    // no temporary files left behind
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    let read = shard::read_inputs(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(read.len(), 3);
    let merged = shard::merge(read).unwrap();
    let mut whole = run_study(&sc, study_opts(20, 3, 0), &|_, _| {}).unwrap();
    whole.config = Some("my-config.json".into());
    assert_eq!(
        serde_json::to_vec_pretty(&merged).unwrap(),
        serde_json::to_vec_pretty(&whole).unwrap()
    );

    // a directory without shard files, and a file that is no shard file
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = shard::read_inputs(std::slice::from_ref(&empty)).unwrap_err();
    assert!(matches!(e, ShardError::EmptyDir { .. }), "{e}");
    let results = dir.join("results.json");
    std::fs::write(&results, serde_json::to_vec(&whole).unwrap()).unwrap();
    let e = shard::read(&results).unwrap_err().to_string();
    assert!(
        e.contains("results.json") && e.contains("not a shard file"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn err(shards: Vec<(PathBuf, ShardFile)>) -> String {
    shard::merge(shards).unwrap_err().to_string()
}

#[test]
fn shards_of_different_studies_are_refused_naming_file_and_field() {
    let sc = scenarios();
    let mut s = shards(&sc, 10, 1, 2, None);

    // another seed
    let mut other = shards(&sc, 10, 2, 2, None).pop().unwrap();
    other.0 = PathBuf::from("pod-1/shard-1-of-2.json");
    let e = err(vec![s[0].clone(), other]);
    assert!(
        e.contains("pod-1/shard-1-of-2.json: seed is 2, but shard-0-of-2.json has 1"),
        "{e}"
    );

    // other run counts, shard counts, configs, versions
    let other = shards(&sc, 12, 1, 2, None).pop().unwrap();
    assert!(
        err(vec![s[0].clone(), other]).contains("runs_per_scenario is 12"),
        "runs"
    );
    let other = shards(&sc, 10, 1, 3, None).pop().unwrap();
    let e = err(vec![s[0].clone(), other]);
    assert!(e.contains("the shard count is 3"), "{e}");
    let other = shards(&sc, 10, 1, 2, Some("b.json")).pop().unwrap();
    let e = err(vec![s[0].clone(), other]);
    assert!(
        e.contains("config is b.json, but") && e.contains("(none)"),
        "{e}"
    );
    let mut other = s[1].clone();
    other.1.study.tool_version = "0.0.9".into();
    let e = err(vec![s[0].clone(), other]);
    assert!(e.contains("tool_version is 0.0.9"), "{e}");

    // other scenarios, or the same names with other contents
    let other = shards(&sc[..2], 10, 1, 2, None).pop().unwrap();
    let e = err(vec![s[0].clone(), other]);
    assert!(
        e.contains("scenarios is latency-25pct, aa-independent-noise,"),
        "{e}"
    );
    let mut changed = scenarios();
    changed[1].file.service.request_rate *= 2.0;
    let other = shards(&changed, 10, 1, 2, None).pop().unwrap();
    let e = err(vec![s[0].clone(), other]);
    assert!(
        e.contains("the fingerprint of scenario aa-independent-noise is"),
        "{e}"
    );

    // duplicate and missing shards
    let e = err(vec![s[0].clone(), s[0].clone()]);
    assert!(
        e.contains("shard 0/2 is given twice: shard-0-of-2.json and shard-0-of-2.json"),
        "{e}"
    );
    let e = err(vec![s[1].clone()]);
    assert!(e.contains("missing shard 0 of 2"), "{e}");
    let five = shards(&sc, 10, 1, 5, None);
    let e = err(vec![five[1].clone(), five[3].clone()]);
    assert!(e.contains("missing shards 0, 2, 4 of 5"), "{e}");
    assert!(matches!(
        shard::merge(Vec::new()),
        Err(ShardError::NoShards)
    ));

    // a shard whose runs do not fit its shard
    let mut short = s.pop().unwrap();
    short.1.runs[2].canary_requests.pop();
    let e = err(vec![s[0].clone(), short]);
    assert!(
        e.contains("shard-1-of-2.json: scenario crash-loop: canary_requests has 4 runs, but this shard holds 5"),
        "{e}"
    );
}

#[test]
fn merged_sweep_shards_are_the_unsharded_sweep() {
    let sc = scenarios();
    let (runs, seed) = (23, 4);
    let params = [
        "pass=50,75,95".to_string(),
        "canary_weight=5,25".to_string(),
    ];
    // what `canarylab sweep` computes on one machine
    let mut whole = run_study(&sc, study_opts(runs, seed, 0), &|_, _| {}).unwrap();
    for p in &params {
        let (name, values) = sim::sweep::parse_grid(p).unwrap();
        let o = StudyOptions {
            examples: false,
            ..study_opts(runs, seed, 0)
        };
        whole
            .sweeps
            .push(sim::sweep::sweep(&sc, name, &values, o, &|_, _| {}).unwrap());
    }
    let sweep_shards = |count: u32, params: &[String]| -> Vec<(PathBuf, ShardFile)> {
        (0..count)
            .map(|i| {
                let s = Shard::new(i, count).unwrap();
                let f = shard::run_sweep_shard(
                    &sc,
                    study_opts(runs, seed, 1),
                    s,
                    None,
                    params,
                    &|_, _| {},
                )
                .unwrap();
                (PathBuf::from(s.file_name()), f)
            })
            .collect()
    };
    let merged = shard::merge(sweep_shards(3, &params)).unwrap();
    assert_eq!(merged.sweeps.len(), 2);
    assert_eq!(
        serde_json::to_vec_pretty(&merged).unwrap(),
        serde_json::to_vec_pretty(&whole).unwrap()
    );

    // a sweep's shard and a plain study's, or another sweep's, do not mix
    let mut mixed = sweep_shards(2, &params);
    mixed[1] = shards(&sc, runs, seed, 2, None).pop().unwrap();
    let e = err(mixed);
    assert!(
        e.contains(
            "the sweep is (no sweep), but shard-0-of-2.json has pass=50,75,95 canary_weight=5,25"
        ),
        "{e}"
    );
    let mut other = sweep_shards(2, &params);
    other[1] = sweep_shards(2, &params[..1]).pop().unwrap();
    assert!(err(other).contains("the sweep is pass=50,75,95, but"));
    // counts that cannot come from the shard's runs
    let mut bad = sweep_shards(2, &params);
    bad[1].1.sweeps[0].points[1].scenarios[0].deployed = 1000;
    let e = err(bad);
    assert!(
        e.contains("shard-1-of-2.json: the sweep point pass = 75 counts more runs"),
        "{e}"
    );
}
