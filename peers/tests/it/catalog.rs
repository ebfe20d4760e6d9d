//! The catalog's analyses (`scenarios/catalog/analyses/`) load, build their
//! controllers, and decide at the times their rules give.

use std::path::PathBuf;

use peers::{Bundle, Decision, QueryResult, load};

use crate::{measure_times, run, secs, weights};

fn catalog(file: &str) -> Bundle {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog/analyses")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load(file, &text).unwrap_or_else(|e| panic!("{e}"))
}

fn answer(success_rate: f64, p99_ms: f64) -> impl Fn(&peers::Query) -> QueryResult {
    move |q| {
        let v = if q.promql.contains("histogram_quantile") {
            p99_ms
        } else {
            success_rate
        };
        QueryResult::Vector(vec![v])
    }
}

#[test]
fn every_catalog_analysis_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/catalog/analyses");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("catalog/analyses") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let name = path
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            let b = catalog(&name);
            b.controller(&Default::default())
                .unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert_eq!(n, 2);
}

#[test]
fn argo_catalog_rollout() {
    let b = catalog("argo-rollout.yaml");
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("trafficRouting: weights applied exactly")),
        "{:?}",
        b.notes
    );
    let plan = b.argo.plan(&Default::default()).expect("plans");
    let (run_spec, _) = plan.background.as_ref().expect("background");
    assert_eq!(run_spec.metrics.len(), 2);

    let mut c = peers::ArgoRollout::new(plan.clone());
    let (log, out) = run(&mut c, answer(0.999, 160.0));
    assert_eq!((out.decision, out.at), (Decision::Promote, secs(1800)));
    assert_eq!(weights(&log), vec![(0, 5), (600, 25), (1200, 50)]);
    // two metrics every 5 minutes after the 5-minute delay
    let times = measure_times(&log);
    assert_eq!(times.len(), 12);
    assert_eq!(times.first(), Some(&300));

    // a latency regression fails every measurement: 300 + 3 * 300 s
    let mut c = peers::ArgoRollout::new(plan);
    let (_, out) = run(&mut c, answer(0.999, 360.0));
    assert_eq!((out.decision, out.at), (Decision::Rollback, secs(1200)));
    assert!(out.reason.contains("latency-p99"), "{}", out.reason);
    // Istio traffic routing: the canary's pods stay abortScaleDownDelaySeconds (30 s)
    assert_eq!(c.plan().abort_scale_down_delay, secs(30));
}

#[test]
fn flagger_catalog_canary() {
    let b = catalog("flagger-canary.yaml");
    let mut c = peers::FlaggerCanary::new(b.flagger.plan().expect("plans"));
    let (_, out) = run(&mut c, answer(99.9, 160.0));
    assert_eq!((out.decision, out.at), (Decision::Promote, secs(60 + 300)));
    let mut c = peers::FlaggerCanary::new(b.flagger.plan().expect("plans"));
    let (_, out) = run(&mut c, answer(99.9, 360.0));
    assert_eq!((out.decision, out.at), (Decision::Rollback, secs(60 + 360)));
}
