//! Flagger's decisions, with times worked out by hand from its code:
//! `pkg/controller/scheduler.go` (`advanceCanary`, `runCanary`,
//! `runBlueGreen`, `nextStepWeight`), `pkg/controller/scheduler_metrics.go`
//! (`runBuiltinMetricChecks`, `runMetricChecks`),
//! `pkg/metrics/providers/prometheus.go` (`RunQuery`) and
//! `pkg/metrics/observers/istio.go` (`GetRequestDuration`).
//!
//! Tick 0 is `start` (new revision detected, canary scaled up); tick 1, one
//! interval later, is the first traffic shift ("the first tick" of the docs).

use peers::{Decision, QueryResult, load};

use crate::{measure_times, run, secs, weights};

fn canary(analysis: &str) -> peers::FlaggerCanary {
    let text = format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: catalog, namespace: shop}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: catalog}}
  service: {{port: 8080}}
  analysis:
{analysis}
"#
    );
    let b = load("canary.yaml", &text).expect("loads");
    peers::FlaggerCanary::new(b.flagger.plan().expect("plans"))
}

const BUILTINS: &str = "    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}\n      interval: 1m\n    - name: request-duration\n      thresholdRange: {max: 500}\n      interval: 1m";

fn analysis(extra: &str) -> String {
    format!(
        "    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 10\n{extra}\n{BUILTINS}"
    )
}

fn healthy(q: &peers::Query) -> QueryResult {
    if q.promql.contains("histogram_quantile") {
        QueryResult::Vector(vec![120.0])
    } else {
        QueryResult::Vector(vec![99.9])
    }
}

/// advanceCanary: failedChecks >= threshold → rollback at the start of a
/// tick; tick 1 (60 s) steps the weight without checks; ticks 2..6 fail
/// once each (failedChecks 1..5); tick 7 (420 s) rolls back:
/// 60 * (threshold + 1) = 360 s after tick 1.
#[test]
fn rollback_at_interval_times_threshold_plus_one_after_the_first_tick() {
    let mut c = canary(&analysis(""));
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![90.0]));
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(60) + secs(60 * (5 + 1)));
    assert_eq!(weights(&log), vec![(60, 10), (420, 0)]);
    // at most one failure per tick: the first check fails, the second is never asked
    assert_eq!(measure_times(&log), vec![120, 180, 240, 300, 360]);
    assert_eq!(c.failed_checks(), 5);
}

/// runCanary: weight += stepWeight each passing tick; at maxWeight the next
/// passing tick promotes: 10..50 at ticks 1..5, promotion at tick 6 (360 s):
/// 60 * maxWeight / stepWeight = 300 s after tick 1.
#[test]
fn promotion_at_interval_times_max_weight_over_step_weight() {
    let mut c = canary(&analysis(""));
    let (log, out) = run(&mut c, healthy);
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.at, secs(60) + secs(60 * 50 / 10));
    assert_eq!(
        weights(&log),
        vec![(60, 10), (120, 20), (180, 30), (240, 40), (300, 50)]
    );
    // both checks on every tick after the first
    assert_eq!(
        measure_times(&log),
        vec![120, 120, 180, 180, 240, 240, 300, 300, 360, 360]
    );
}

/// RunQuery: no series → ErrNoValuesFound → the check fails (a canary with
/// no traffic is rolled back), same timing as any failure.
#[test]
fn no_data_is_a_failed_check() {
    let mut c = canary(&analysis(""));
    let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![]));
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(420));
    assert!(out.reason.contains("no values found"), "{}", out.reason);
    // NaN is "no values" too
    let mut c = canary(&analysis(""));
    let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![f64::NAN]));
    assert_eq!((out.decision, out.at), (Decision::Rollback, secs(420)));
}

/// RunQuery keeps the last series' value.
#[test]
fn the_last_series_is_used() {
    let mut c = canary(&analysis(""));
    let (_, out) = run(&mut c, |q| {
        if q.promql.contains("histogram_quantile") {
            QueryResult::Vector(vec![120.0])
        } else {
            QueryResult::Vector(vec![50.0, 99.5])
        }
    });
    assert_eq!(out.decision, Decision::Promote);
    let mut c = canary(&analysis(""));
    let (_, out) = run(&mut c, |q| {
        if q.promql.contains("histogram_quantile") {
            QueryResult::Vector(vec![120.0])
        } else {
            QueryResult::Vector(vec![99.5, 50.0])
        }
    });
    assert_eq!(out.decision, Decision::Rollback);
}

/// GetRequestDuration: time.Duration(int64(value)) * time.Millisecond, so
/// 500.9 ms is 500 ms and passes max 500; 501 fails.
#[test]
fn p99_is_truncated_to_whole_milliseconds() {
    for (p99, want) in [(500.9, Decision::Promote), (501.0, Decision::Rollback)] {
        let mut c = canary(&analysis(""));
        let (_, out) = run(&mut c, |q| {
            if q.promql.contains("histogram_quantile") {
                QueryResult::Vector(vec![p99])
            } else {
                QueryResult::Vector(vec![99.9])
            }
        });
        assert_eq!(out.decision, want, "p99 {p99}");
    }
}

/// failedChecks is never reset by a passing tick: threshold 2; tick 2 fails
/// (1), tick 3 passes (weight 20), tick 4 fails (2), tick 5 (300 s) rolls back.
#[test]
fn failed_checks_are_cumulative() {
    let mut c = canary(
        "    interval: 1m\n    threshold: 2\n    maxWeight: 50\n    stepWeight: 10\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}",
    );
    let (log, out) = run(&mut c, |q| {
        let ok = q.at != secs(120) && q.at != secs(240);
        QueryResult::Vector(vec![if ok { 99.9 } else { 90.0 }])
    });
    assert_eq!(weights(&log), vec![(60, 10), (180, 20), (300, 0)]);
    assert_eq!((out.decision, out.at), (Decision::Rollback, secs(300)));
}

/// nextStepWeight / maxWeight with stepWeights: 1, 5, 10, 50, then promotion.
#[test]
fn step_weights() {
    let mut c = canary(
        "    interval: 30s\n    threshold: 1\n    stepWeights: [1, 5, 10, 50]\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![100.0]));
    assert_eq!(weights(&log), vec![(30, 1), (60, 5), (90, 10), (120, 50)]);
    assert_eq!((out.decision, out.at), (Decision::Promote, secs(150)));
}

/// A scalar answer does not decode into Flagger's prometheusResponse: failure.
#[test]
fn scalar_results_fail() {
    let mut c = canary(
        "    interval: 1m\n    threshold: 1\n    stepWeight: 50\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}",
    );
    let (_, out) = run(&mut c, |_| QueryResult::Scalar(100.0));
    assert_eq!((out.decision, out.at), (Decision::Rollback, secs(180)));
}

/// runBlueGreen: iterations 3. Tick 1 no checks (iterations 1), ticks 2-3
/// pass (2, 3), tick 4 routes all traffic to the canary (iterations 4),
/// tick 5 promotes.
#[test]
fn blue_green_iterations() {
    let mut c = canary(
        "    interval: 1m\n    threshold: 2\n    iterations: 3\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![100.0]));
    assert_eq!(weights(&log), vec![(240, 100)]);
    assert_eq!((out.decision, out.at), (Decision::Promote, secs(300)));
}

/// GetAnalysisInterval raises intervals under 10 s; GetAnalysisThreshold
/// turns threshold ≤ 0 into 1.
#[test]
fn interval_and_threshold_defaults() {
    let c = canary(
        "    interval: 2s\n    stepWeight: 50\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {min: 99}",
    );
    assert_eq!(c.plan().interval, secs(10));
    assert_eq!(c.plan().threshold, 1);
}

/// The built-in success-rate query is Istio's, rendered with the Canary's
/// namespace and target and the metric's interval.
#[test]
fn builtin_queries_are_rendered() {
    let c = canary(&analysis(""));
    let q = &c.plan().checks[0].query;
    assert!(
        q.contains(r#"destination_workload_namespace="shop""#),
        "{q}"
    );
    assert!(q.contains(r#"destination_workload=~"catalog""#), "{q}");
    assert!(q.contains("[1m]"), "{q}");
    assert!(
        c.plan().checks[1]
            .query
            .contains("istio_request_duration_milliseconds_bucket")
    );
}

/// scheduler_metrics.go: inline `query` (deprecated) is checked with the
/// built-ins, templateRef metrics after them; a metric with neither fails
/// every tick (runMetricChecks' last branch); templateVariables fill
/// `{{ variables.X }}` (render.go, missingkey=error).
#[test]
fn inline_queries_templates_and_metrics_with_nothing_to_check() {
    let text = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: shop}
spec:
  provider: {type: prometheus, address: http://prometheus:9090}
  query: |
    histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}", deployment=~"{{ target }}", direction="{{ variables.direction }}"}[{{ interval }}])) by (le))
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: catalog, namespace: shop}
spec:
  targetRef: {name: catalog}
  analysis:
    interval: 1m
    threshold: 2
    stepWeight: 50
    metrics:
    - name: latency
      templateRef: {name: latency}
      templateVariables: {direction: inbound}
      thresholdRange: {max: 500}
      interval: 2m
    - name: errors
      query: sum(rate(errors{app="{{ target }}"}[1m]))
      threshold: 1
"#;
    let b = load("c.yaml", text).expect("loads");
    let plan = b.flagger.plan().expect("plans");
    let names: Vec<&str> = plan.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["errors", "latency"]);
    assert!(
        plan.checks[1].query.contains(r#"direction="inbound""#)
            && plan.checks[1].query.contains("[2m]")
    );
    assert_eq!(
        plan.checks[0].query,
        r#"sum(rate(errors{app="catalog"}[1m]))"#
    );
    let mut c = peers::FlaggerCanary::new(plan);
    let (_, out) = run(&mut c, |q| {
        QueryResult::Vector(vec![if q.promql.starts_with("sum") {
            0.5
        } else {
            120.0
        }])
    });
    assert_eq!((out.decision, out.at), (Decision::Promote, secs(180)));

    let missing_var = text.replace(
        "templateVariables: {direction: inbound}",
        "templateVariables: {}",
    );
    let e = load("c.yaml", &missing_var)
        .expect("loads")
        .flagger
        .plan()
        .expect_err("no variable")
        .to_string();
    assert!(
        e.contains("(MetricTemplate latency)") && e.contains("\"direction\""),
        "{e}"
    );

    let nothing = text.replace(
        "      query: sum(rate(errors{app=\"{{ target }}\"}[1m]))\n",
        "",
    );
    let mut c = peers::FlaggerCanary::new(
        load("c.yaml", &nothing)
            .expect("loads")
            .flagger
            .plan()
            .expect("plans"),
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![120.0]));
    // the template check passes, then "errors" fails without a query: one failure per tick
    assert_eq!(
        (out.decision, out.at),
        (Decision::Rollback, secs(60 + 60 * 3))
    );
    assert_eq!(measure_times(&log), vec![120, 180]);
}
