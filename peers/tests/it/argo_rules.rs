//! Argo Rollouts' decisions, with times worked out by hand from its code:
//! `analysis/analysis.go` (`generateMetricTasks`, `runMeasurements`,
//! `assessMetricStatus`, `assessMetricFailureInconclusiveOrError`,
//! `assessRunStatus`), `utils/evaluate/evaluate.go` (`EvaluateResult`),
//! `metricproviders/prometheus/prometheus.go` (`processResponse`),
//! `rollout/canary.go` and `rollout/analysis.go`.

use peers::{Command, Decision, QueryResult, load};

use crate::{measure_times, run, secs, weights};

/// A Rollout with background analysis from step 0 and the given steps, and
/// one AnalysisTemplate with one metric (extra YAML lines for the metric).
fn rollout(steps: &str, metric: &str) -> peers::ArgoRollout {
    let text = format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: catalog}}
spec:
  strategy:
    canary:
      analysis:
        templates: [{{templateName: t}}]
      steps:
{steps}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: t}}
spec:
  metrics:
  - name: m
    provider:
      prometheus:
        query: up
{metric}
"#
    );
    let b = load("test.yaml", &text).expect("loads");
    peers::ArgoRollout::new(b.argo.plan(&Default::default()).expect("plans"))
}

fn step_rollout(metric: &str) -> peers::ArgoRollout {
    let text = format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: catalog}}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 20
      - analysis:
          templates: [{{templateName: t}}]
      - setWeight: 50
      - pause: {{duration: 60}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: t}}
spec:
  metrics:
  - name: m
    provider:
      prometheus:
        query: up
{metric}
"#
    );
    let b = load("test.yaml", &text).expect("loads");
    peers::ArgoRollout::new(b.argo.plan(&Default::default()).expect("plans"))
}

const STEPS: &str = "      - setWeight: 20\n      - pause: {duration: 5m}\n      - setWeight: 50\n      - pause: {duration: 5m}";

/// analysis.go generateMetricTasks: first measurement at startedAt +
/// initialDelay, then each interval after the previous finished;
/// assessMetricFailureInconclusiveOrError: Failed when failed > failureLimit.
/// initialDelay 30 s, interval 60 s, failureLimit 2: failures at 30, 90,
/// 150 s; the third (3 > 2) aborts at 30 + 2 * 60 = 150 s.
#[test]
fn failing_analysis_aborts_at_initial_delay_plus_failure_limit_intervals() {
    let mut c = rollout(
        STEPS,
        "    initialDelay: 30s\n    interval: 60s\n    failureLimit: 2\n    successCondition: result[0] >= 0.95",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![0.5]));
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(30 + 2 * 60));
    assert_eq!(measure_times(&log), vec![30, 90, 150]);
    assert!(
        out.reason.contains("failed (3) > failureLimit (2)"),
        "{}",
        out.reason
    );
    assert_eq!(weights(&log), vec![(0, 20), (150, 0)]);
    // no trafficRouting: a basic canary is scaled down at once
    assert!(log.iter().any(
        |c| matches!(c, Command::Abort { scale_down_after, .. } if scale_down_after.is_zero())
    ));
}

/// rollout/canary.go: steps complete in order (setWeight at once, pause after
/// its duration); after the last step the background run is terminated
/// (assessMetricStatus with terminating: unfinished metric → Successful).
#[test]
fn passing_analysis_completes_when_the_last_step_ends() {
    let mut c = rollout(
        STEPS,
        "    interval: 60s\n    successCondition: result[0] >= 0.95",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![0.99]));
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.at, secs(600));
    assert_eq!(weights(&log), vec![(0, 20), (300, 50)]);
    // measurements every 60 s from 0 until the promotion
    assert_eq!(
        measure_times(&log),
        (0..=600).step_by(60).collect::<Vec<_>>()
    );
    assert_eq!(
        c.background_run().map(|r| r.phase()),
        Some(peers::argo::Phase::Successful)
    );
}

/// EvaluateResult + processResponse: an empty vector makes `result[0]` fail →
/// Error; generateMetricTasks retries errors after DefaultErrorRetryInterval
/// (10 s) whatever the interval; consecutiveErrorLimit defaults to 4, so the
/// 5th consecutive error (at 0, 10, 20, 30, 40 s) aborts at 40 s.
#[test]
fn empty_vector_errors_and_five_consecutive_errors_abort() {
    let mut c = rollout(
        STEPS,
        "    interval: 60s\n    successCondition: result[0] >= 0.95",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![]));
    assert_eq!(measure_times(&log), vec![0, 10, 20, 30, 40]);
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(40));
    assert!(
        out.reason
            .contains("consecutiveErrors (5) > consecutiveErrorLimit (4)"),
        "{}",
        out.reason
    );
    assert!(out.reason.contains("index out of range"), "{}", out.reason);
}

/// Errors are not counted in `count`; a success resets consecutiveError.
/// count 2, interval 60 s: Error at 0, Successful at 10, Successful at 70 →
/// the step's run is Successful at 70 and the rollout moves on.
#[test]
fn errors_are_retried_and_not_counted() {
    let mut c =
        step_rollout("    count: 2\n    interval: 60s\n    successCondition: result >= 0.95");
    let calls = std::cell::Cell::new(0);
    let (log, out) = run(&mut c, |_| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
            QueryResult::Failed("timeout".into())
        } else {
            QueryResult::Scalar(0.99)
        }
    });
    assert_eq!(measure_times(&log), vec![0, 10, 70]);
    assert_eq!(weights(&log), vec![(0, 20), (70, 50)]);
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.at, secs(130)); // pause 60 s after the second setWeight
}

/// EvaluateResult: with only a successCondition, failure = !success; NaN
/// compares false, so NaN is Failed; failureLimit 0 fails on the first.
#[test]
fn nan_with_only_a_success_condition_fails() {
    let mut c = rollout(
        STEPS,
        "    interval: 60s\n    successCondition: result >= 0.95",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Scalar(f64::NAN));
    assert_eq!(measure_times(&log), vec![0]);
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(0));
    // the docs' guard turns it into a success
    let mut c = rollout(
        STEPS,
        "    interval: 60s\n    successCondition: isNaN(result) || result >= 0.95",
    );
    let (_, out) = run(&mut c, |_| QueryResult::Scalar(f64::NAN));
    assert_eq!(out.decision, Decision::Promote);
}

/// Both conditions false → Inconclusive; Inconclusive when inconclusive >
/// inconclusiveLimit; rollout/analysis.go: an Inconclusive run pauses the
/// rollout. inconclusiveLimit 1, interval 60 s: second Inconclusive at 60 s.
#[test]
fn inconclusive_limit_pauses_the_rollout() {
    let mut c = rollout(
        STEPS,
        "    interval: 60s\n    inconclusiveLimit: 1\n    successCondition: result[0] >= 0.95\n    failureCondition: result[0] < 0.5",
    );
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![0.7]));
    assert_eq!(measure_times(&log), vec![0, 60]);
    assert_eq!(out.decision, Decision::Paused);
    assert_eq!(out.at, secs(60));
    assert!(
        out.reason
            .contains("inconclusive (2) > inconclusiveLimit (1)"),
        "{}",
        out.reason
    );
}

/// An analysis step blocks until its run is Successful: count 3, interval
/// 60 s, started at 0 → measurements at 0, 60, 120; Successful at 120.
#[test]
fn step_analysis_blocks_until_successful() {
    let mut c =
        step_rollout("    count: 3\n    interval: 60s\n    successCondition: result[0] >= 0.95");
    let (log, out) = run(&mut c, |_| QueryResult::Vector(vec![0.99]));
    assert_eq!(measure_times(&log), vec![0, 60, 120]);
    assert_eq!(weights(&log), vec![(0, 20), (120, 50)]);
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.at, secs(180));
}

/// assessMetricStatus: count reached with consecutiveSuccessLimit > 0 and
/// failureLimit −1 → Failed when the limit was not reached.
#[test]
fn consecutive_success_limit() {
    let seq = std::cell::RefCell::new(vec![0.99, 0.99, 0.1, 0.99, 0.99].into_iter());
    let mut c = step_rollout(
        "    count: 5\n    interval: 60s\n    failureLimit: -1\n    consecutiveSuccessLimit: 3\n    successCondition: result >= 0.95",
    );
    let (log, out) = run(&mut c, |_| {
        QueryResult::Scalar(seq.borrow_mut().next().unwrap_or(0.99))
    });
    assert_eq!(measure_times(&log), vec![0, 60, 120, 180, 240]);
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(240));
    // three in a row reached at the 5th measurement → Successful
    let seq = std::cell::RefCell::new(vec![0.99, 0.1, 0.99, 0.99, 0.99].into_iter());
    let mut c = step_rollout(
        "    count: 5\n    interval: 60s\n    failureLimit: -1\n    consecutiveSuccessLimit: 3\n    successCondition: result >= 0.95",
    );
    let (_, out) = run(&mut c, |_| {
        QueryResult::Scalar(seq.borrow_mut().next().unwrap_or(0.99))
    });
    assert_eq!(out.decision, Decision::Promote);
}

/// assessRunStatus / IsTerminating: dry-run metrics' phases are ignored.
#[test]
fn dry_run_metric_does_not_abort() {
    let text = r#"
kind: Rollout
apiVersion: argoproj.io/v1alpha1
metadata: {name: r}
spec:
  strategy:
    canary:
      analysis:
        templates: [{templateName: t}]
        dryRun: [{metricName: noisy}]
      steps: [{setWeight: 10}, {pause: {duration: 120}}]
---
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: t}
spec:
  metrics:
  - name: noisy
    interval: 30s
    successCondition: result[0] < 1
    provider: {prometheus: {query: noisy}}
  - name: good
    interval: 30s
    successCondition: result[0] < 1
    provider: {prometheus: {query: good}}
"#;
    let b = load("t.yaml", text).expect("loads");
    let mut c = peers::ArgoRollout::new(b.argo.plan(&Default::default()).expect("plans"));
    let (_, out) = run(&mut c, |q| {
        QueryResult::Vector(vec![if q.promql == "noisy" { 5.0 } else { 0.5 }])
    });
    assert_eq!(out.decision, Decision::Promote);
    assert_eq!(out.at, secs(120));
}

/// The first metric that fails ends the whole run (IsTerminating), even
/// while another metric still has measurements to take.
#[test]
fn first_failed_metric_ends_the_run() {
    let text = r#"
kind: Rollout
apiVersion: argoproj.io/v1alpha1
metadata: {name: r}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 10
      - analysis: {templates: [{templateName: t}]}
---
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: t}
spec:
  metrics:
  - name: slow
    count: 10
    interval: 60s
    successCondition: result[0] < 1
    provider: {prometheus: {query: slow}}
  - name: bad
    initialDelay: 90s
    successCondition: result[0] < 1
    provider: {prometheus: {query: bad}}
"#;
    let b = load("t.yaml", text).expect("loads");
    let mut c = peers::ArgoRollout::new(b.argo.plan(&Default::default()).expect("plans"));
    let (log, out) = run(&mut c, |q| {
        QueryResult::Vector(vec![if q.promql == "bad" { 5.0 } else { 0.5 }])
    });
    assert_eq!(out.decision, Decision::Rollback);
    assert_eq!(out.at, secs(90));
    assert_eq!(measure_times(&log), vec![0, 60, 90]);
    assert!(
        out.reason.contains("Step-based analysis phase Failed"),
        "{}",
        out.reason
    );
}

/// The kayenta provider (metricproviders/kayenta/kayenta.go): window
/// now − interval .. now, the score read 15 s later (resumeDelay), score ≥
/// pass → Successful, ≥ marginal → Inconclusive, else Failed.
#[test]
fn kayenta_provider_reads_the_score_after_15_s() {
    let text = r#"
kind: Rollout
apiVersion: argoproj.io/v1alpha1
metadata: {name: r}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 5m}
      - analysis:
          templates: [{templateName: k}]
          args:
          - {name: stable-hash, valueFrom: {podTemplateHashValue: Stable}}
          - {name: canary-hash, valueFrom: {podTemplateHashValue: Latest}}
---
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: k}
spec:
  args: [{name: stable-hash}, {name: canary-hash}]
  metrics:
  - name: kayenta
    interval: 5m
    provider:
      kayenta:
        canaryConfigName: goldengoose-default
        threshold: {pass: 75, marginal: 50}
        scopes:
        - name: default
          controlScope: {scope: "{{args.stable-hash}}", step: 60}
          experimentScope: {scope: "{{args.canary-hash}}", step: 60}
"#;
    let b = load("t.yaml", text).expect("loads");
    let mut c = peers::ArgoRollout::new(b.argo.plan(&Default::default()).expect("plans"));
    let log = peers::drive(&mut c, secs(0), secs(10_000), |cmd| match cmd {
        Command::Judge { request, .. } => {
            assert_eq!(request.scopes[0].control, "stable");
            assert_eq!(request.scopes[0].experiment, "canary");
            assert_eq!((request.start, request.end), (secs(0), secs(300)));
            Some(peers::Answer::Judged(Ok(60.0)))
        }
        _ => None,
    });
    let out = peers::Controller::outcome(&c).cloned().expect("decided");
    assert!(
        log.iter()
            .any(|c| matches!(c, Command::Judge { at, .. } if *at == secs(300)))
    );
    assert_eq!(out.decision, Decision::Paused);
    assert_eq!(out.at, secs(315));
}

/// helpers.go FlattenTemplates: a template's `templates` are included
/// (metrics appended, args merged); clusterScope picks a
/// ClusterAnalysisTemplate; a rangeQuery is asked over now − 5m .. now at
/// its step and its matrix is flattened into `result`.
#[test]
fn template_includes_cluster_scope_and_range_queries() {
    let text = r#"
kind: Rollout
apiVersion: argoproj.io/v1alpha1
metadata: {name: r}
spec:
  strategy:
    canary:
      steps:
      - setWeight: 10
      - analysis:
          templates: [{templateName: outer}]
          args: [{name: service, value: catalog}]
---
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: outer}
spec:
  args: [{name: service}]
  templates: [{templateName: shared, clusterScope: true}]
  metrics:
  - name: latency
    successCondition: "all(result, # < 1000)"
    provider:
      prometheus:
        query: latency{service="{{args.service}}"}
        rangeQuery:
          start: now() - duration("{{args.lookback}}")
          end: now()
          step: 1m
---
kind: ClusterAnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: shared}
spec:
  args: [{name: lookback, value: 5m}]
  metrics:
  - name: errors
    successCondition: result[0] < 0.01
    provider:
      prometheus:
        query: errors{service="{{args.service}}"}
"#;
    let b = load("t.yaml", text).expect("loads");
    let plan = b.argo.plan(&Default::default()).expect("plans");
    let names: Vec<&str> = plan.queries.iter().map(|q| q.promql.as_str()).collect();
    assert_eq!(
        names,
        [
            r#"latency{service="catalog"}"#,
            r#"errors{service="catalog"}"#
        ]
    );
    let mut c = peers::ArgoRollout::new(plan);
    let (log, out) = run(&mut c, |q| {
        if q.promql.starts_with("latency") {
            let r = q.range.expect("a range query");
            assert_eq!(
                (r.start, r.end, r.step),
                (q.at - secs(300).min(q.at), q.at, secs(60))
            );
            QueryResult::Matrix(vec![vec![100.0, 200.0], vec![1500.0]])
        } else {
            QueryResult::Vector(vec![0.001])
        }
    });
    assert_eq!(measure_times(&log), vec![0, 0]);
    assert_eq!(out.decision, Decision::Rollback);
    assert!(out.reason.contains("\"latency\""), "{}", out.reason);
}
