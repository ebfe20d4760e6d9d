use sim::{Decision, Prepared, run_once, run_study};

use crate::{catalog, opts, scenario};

#[test]
fn same_seed_same_study_whatever_the_thread_count() {
    let scenarios = vec![
        catalog("latency-5pct"),
        catalog("aa-typical"),
        catalog("errors-0.5pct"),
    ];
    let one = run_study(&scenarios, opts(64, 1), &|_, _| {}).unwrap();
    let two = run_study(&scenarios, opts(64, 2), &|_, _| {}).unwrap();
    let three = run_study(&scenarios, opts(64, 3), &|_, _| {}).unwrap();
    let json = |s| serde_json::to_string(s).unwrap();
    assert_eq!(json(&one), json(&two));
    assert_eq!(json(&one), json(&three));
    let other_seed = run_study(
        &scenarios,
        sim::StudyOptions {
            seed: 8,
            ..opts(64, 2)
        },
        &|_, _| {},
    )
    .unwrap();
    assert_ne!(json(&one), json(&other_seed), "the seed matters");
}

#[test]
fn failed_builds_and_crash_loops_never_reach_analysis() {
    let s = scenario(
        "build-fails",
        "description = \"x\"\nexpect = \"pass\"\n[pipeline]\nbuild_failure = 1.0\n[analysis]\nconfig = \"canary-config.json\"\n",
    );
    let p = Prepared::new(&s).unwrap();
    let (o, detail) = run_once(&p, 1, true, &mut judge::Workspace::new());
    assert_eq!(o.decision, Decision::BuildFailed);
    assert_eq!((o.canary_requests, o.decided_at_interval), (0, None));
    let detail = detail.unwrap();
    assert_eq!(
        detail
            .timeline
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["build"]
    );

    let s = catalog("crash-loop");
    let p = Prepared::new(&s).unwrap();
    let (o, _) = run_once(&p, 1, false, &mut judge::Workspace::new());
    assert_eq!(o.decision, Decision::DeployFailed);
    assert_eq!(o.decision_time_s, s.file.pipeline.deploy_timeout_s);
    assert_eq!(o.canary_requests, 0);
}

#[test]
fn a_run_plays_the_whole_pipeline() {
    let s = catalog("latency-25pct");
    let p = Prepared::new(&s).unwrap();
    let (o, detail) = run_once(&p, 3, true, &mut judge::Workspace::new());
    let d = detail.unwrap();
    assert_eq!(o.decision, Decision::Rollback);
    // fails fast at the first interval: warmup 300 s + interval 600 s
    assert_eq!(o.decided_at_interval, Some(0));
    assert_eq!(o.decision_time_s, 900.0);
    assert_eq!(d.intervals.len(), 1);
    assert!(d.intervals[0].score <= 50.0, "{:?}", d.intervals[0]);
    let p50 = d.intervals[0]
        .metrics
        .iter()
        .find(|m| m.name == "latency_p50")
        .unwrap();
    assert_eq!(p50.classification, judge::Classification::High);
    let names: Vec<&str> = d.timeline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["build", "deploy", "warmup", "analysis", "rollback"]);
    // timeline is ordered and contiguous
    for w in d.timeline.windows(2) {
        assert!((w[0].end_s - w[1].start_s).abs() < 1e-9, "{:?}", d.timeline);
    }
    // 5% of 200 req/s for 900 s, give or take
    assert!(
        (7000..11000).contains(&o.canary_requests),
        "{}",
        o.canary_requests
    );
    assert!(o.lead_time_s > o.decision_time_s + 180.0);
    // the fast path (no detail) decides the same
    let (fast, _) = run_once(&p, 3, false, &mut judge::Workspace::new());
    assert_eq!(fast, o);

    // a harmless release is promoted with a rolling update
    let s = catalog("aa-independent-noise");
    let p = Prepared::new(&s).unwrap();
    let (o, d) = run_once(&p, 3, true, &mut judge::Workspace::new());
    assert_eq!(o.decision, Decision::Promote);
    assert_eq!(o.decided_at_interval, Some(2));
    let d = d.unwrap();
    assert_eq!(d.intervals.len(), 3);
    assert_eq!(d.series.len(), 5);
    assert_eq!(d.series[0].times_s.len(), 210);
    assert_eq!(d.timeline.last().unwrap().name, "promote");
}
