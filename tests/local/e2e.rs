//! End to end: goldengoose tracks under real traffic, scraped by a real
//! Prometheus, queried with Kayenta's query rules, judged interval by
//! interval as Kayenta's canary analysis does.

use std::sync::Arc;
use std::time::Duration;

use cluster::analysis::unix_now;
use cluster::results::ReleaseEnd;
use cluster::{AnalysisPlan, AnalysisRun, Goose, Prometheus, ScopeVars, ScrapeTarget, Supervision};
use judge::analysis::Schedule;
use judge::{CanaryConfig, Classification};
use loadgen::{Arrival, Control, Plan, RateProfile, Target, Targets};

const STEP: Duration = Duration::from_secs(1);
/// Both tracks' base service time, so latency quantiles fall inside
/// histogram buckets rather than all in the first one.
const SERVICE_TIME: Duration = Duration::from_millis(5);

fn example_config() -> CanaryConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/canary-config.json");
    let text = std::fs::read_to_string(path).expect("example config");
    CanaryConfig::from_json(&text).expect("example config parses")
}

/// Baseline and canary goldengoose processes, a Prometheus scraping both,
/// 100 requests/s split 50/50 while a short two-interval analysis runs.
async fn release(canary_faults: &[&str]) -> AnalysisRun {
    let config = example_config();
    let supervision = Supervision::default();
    let baseline = Goose::spawn(
        &crate::goldengoose(),
        "baseline-0",
        &goldengoose::Config {
            version: "baseline".into(),
            service_time: SERVICE_TIME,
            seed: 1,
            ..Default::default()
        },
        &supervision,
    )
    .await
    .expect("baseline starts");
    let canary = Goose::spawn(
        &crate::goldengoose(),
        "canary-0",
        &goldengoose::Config {
            version: "canary".into(),
            service_time: SERVICE_TIME,
            faults: canary_faults
                .iter()
                .map(|f| f.parse().expect("fault spec"))
                .collect(),
            seed: 2,
            ..Default::default()
        },
        &supervision,
    )
    .await
    .expect("canary starts");

    // goldengoose labels its metrics with version=TRACK itself; the target
    // label is `track` so the two do not clash.
    let targets = vec![
        ScrapeTarget::new("goldengoose", baseline.addr()).with_label("track", "baseline"),
        ScrapeTarget::new("goldengoose", canary.addr()).with_label("track", "canary"),
    ];
    let prom = Prometheus::start(None, &targets, STEP)
        .await
        .expect("prometheus starts");
    let prom = Arc::new(prom);

    let mut plan = Plan::new(
        Targets::Weighted(vec![
            Target::parse(&format!("baseline=http://{}/@50", baseline.addr())).expect("target"),
            Target::parse(&format!("canary=http://{}/@50", canary.addr())).expect("target"),
        ]),
        Arrival::Constant(RateProfile::constant(100.0)),
    );
    plan.duration = Some(Duration::from_secs(60));
    plan.connections = 16;
    let control = Control::new();
    let load = tokio::spawn(loadgen::run(plan, control.clone()));

    let analysis = AnalysisPlan {
        schedule: Schedule {
            lifetime: Duration::from_secs(12),
            interval: Some(Duration::from_secs(6)),
            warmup: Duration::from_secs(6),
            lookback: None,
        },
        thresholds: config.classifier.score_thresholds.unwrap_or_default(),
        step: STEP,
        started_at: unix_now().ceil(),
        control: ScopeVars::new("baseline"),
        experiment: ScopeVars::new("canary"),
        seed: 1,
    };
    let run = cluster::run_analysis(&prom.api(), &config, &analysis, crate::not_cancelled()).await;

    control.stop();
    let report = load.await.expect("joins").expect("load runs");
    assert!(
        report.targets.iter().all(|t| t.requests > 0),
        "both tracks got traffic"
    );
    drop(prom);
    assert!(canary.stop().await.is_some());
    assert!(baseline.stop().await.is_some());
    run.expect("analysis runs")
}

fn explain(run: &AnalysisRun) -> String {
    let mut text = format!("{:?}\n", run.outcome);
    for i in &run.intervals {
        text += &format!(
            "interval {} score {}\n",
            i.window.index, i.result.score.score
        );
        for (p, r) in i.pairs.iter().zip(&i.result.results) {
            text += &format!(
                "  {} {:?}\n    control {:?}\n    experiment {:?}\n",
                p.name, r.classification, p.values.control, p.values.experiment
            );
        }
    }
    text
}

pub(crate) async fn e2e_latency_canary_is_rolled_back_from_real_prometheus() {
    let run = release(&["latency=30ms"]).await;
    let why = explain(&run);
    assert_eq!(run.outcome.end, ReleaseEnd::Rollback, "{why}");
    let first = &run.intervals[0];
    assert_eq!(first.pairs[0].name, "latency_p50");
    let finite = |v: &[f64]| v.iter().filter(|x| x.is_finite()).count();
    assert!(
        finite(&first.pairs[0].values.control) >= 4
            && finite(&first.pairs[0].values.experiment) >= 4,
        "too few points: {why}"
    );
    assert_eq!(
        first.result.results[0].classification,
        Classification::High,
        "{why}"
    );
    let attributes = first.pairs[0]
        .attributes
        .as_ref()
        .expect("queries recorded");
    assert!(
        attributes["experiment"]["query"]
            .as_str()
            .is_some_and(|q| q.contains(r#"version="canary""#)),
        "{attributes}"
    );
}

pub(crate) async fn e2e_aa_release_is_promoted_from_real_prometheus() {
    let run = release(&[]).await;
    let why = explain(&run);
    eprintln!("{why}");
    assert_eq!(run.outcome.end, ReleaseEnd::Promote, "{why}");
    assert_eq!(run.intervals.len(), 2, "{why}");
}
