//! The peers' own example files (tests/fixtures/SOURCES.md): each loads and
//! builds a controller, or is refused with a reason naming file, document
//! and field.

use std::path::PathBuf;

use peers::{Bundle, PeersError, load};

fn fixture(rel: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (rel.to_string(), text)
}

fn load_fixture(rel: &str) -> Result<Bundle, PeersError> {
    let (name, text) = fixture(rel);
    load(&name, &text)
}

fn refused(rel: &str) -> String {
    match load_fixture(rel) {
        Ok(b) => match b.controller(&Default::default()) {
            Ok(_) => panic!("{rel} was accepted"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn argo_docs_background_analysis_loads_and_runs() {
    let b = load_fixture("argo/docs-background-analysis.yaml").expect("loads");
    let plan = b.argo.plan(&Default::default()).expect("plans");
    assert_eq!(plan.steps.len(), 8);
    let (run, starting) = plan.background.as_ref().expect("background analysis");
    assert_eq!(*starting, 2);
    let metric = &run.metrics[0];
    assert_eq!(metric.failure_limit, 3);
    assert_eq!(metric.interval, Some(std::time::Duration::from_secs(300)));
    match &metric.provider {
        peers::argo::Provider::Prometheus { query, .. } => {
            assert!(
                query.contains(r#"destination_service=~"guestbook-svc.default.svc.cluster.local""#),
                "{query}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(b.controller(&Default::default()).is_ok());
}

#[test]
fn argo_range_query_template_loads() {
    let b = load_fixture("argo/docs-range-query.yaml").expect("loads");
    assert_eq!(b.argo.templates(), 1);
}

#[test]
fn argo_secret_arg_is_read_and_noted() {
    let b = load_fixture("argo/docs-prometheus-oauth.yaml").expect("loads");
    assert_eq!(b.argo.templates(), 1);
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("spec.args[1].valueFrom.secretKeyRef read and ignored")),
        "{:?}",
        b.notes
    );
}

#[test]
fn argo_examples_refused_with_reasons() {
    let e = refused("argo/rollout-canary.yaml");
    assert!(
        e.contains("argo/rollout-canary.yaml, document 1 (Rollout rollout-canary)"),
        "{e}"
    );
    assert!(
        e.contains("spec.strategy.canary.steps[1].pause.duration")
            && e.contains("waits for a person"),
        "{e}"
    );

    let e = refused("argo/analysis-templates.yaml");
    assert!(
        e.contains("AnalysisTemplate pass") && e.contains("spec.metrics[0].provider.job"),
        "{e}"
    );

    let e = refused("argo/cluster-analysis-templates.yaml");
    assert!(
        e.contains("ClusterAnalysisTemplate always-pass") && e.contains("provider.job"),
        "{e}"
    );

    let e = refused("argo/rollout-experiment-step.yaml");
    assert!(
        e.contains(".experiment") && e.contains("cannot be simulated"),
        "{e}"
    );

    let e = refused("argo/rollout-background-analysis.yaml");
    assert!(e.contains("steps[1].pause.duration"), "{e}");

    let e = refused("argo/istio-subset-split.yaml");
    assert!(e.contains("document 4 (Rollout istio-subset-split)"), "{e}");

    let e = refused("argo/docs-kayenta-template.yaml");
    assert!(
        e.contains("provider.kayenta.scopes[0]") && e.contains("fixed start/end"),
        "{e}"
    );
}

#[test]
fn argo_rollout_without_its_templates_names_the_missing_one() {
    let b = load_fixture("argo/rollout-analysis-step.yaml").expect("loads");
    let e = b
        .argo
        .plan(&Default::default())
        .expect_err("templates are elsewhere")
        .to_string();
    assert!(
        e.contains("steps[1].analysis.templates") && e.contains("\"random-fail\""),
        "{e}"
    );
    // with the example templates file beside it, the job provider is refused
    let mut b = b;
    match load_fixture("argo/analysis-templates.yaml") {
        Ok(t) => {
            b.merge(t);
            panic!("job templates accepted");
        }
        Err(e) => assert!(e.to_string().contains("job"), "{e}"),
    }
}

#[test]
fn flagger_istio_tutorial_canary_loads_and_notes_webhooks() {
    let b = load_fixture("flagger/istio-podinfo-canary.yaml").expect("loads");
    let plan = b.flagger.plan().expect("plans");
    assert_eq!(plan.threshold, 5);
    assert_eq!(plan.interval, std::time::Duration::from_secs(60));
    assert_eq!(
        plan.strategy,
        peers::flagger::Strategy::Canary {
            step_weight: 10,
            step_weights: vec![],
            max_weight: 50
        }
    );
    assert_eq!(plan.checks.len(), 2);
    assert!(
        plan.checks[1].query.contains("[30s]"),
        "{}",
        plan.checks[1].query
    );
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("webhooks read and ignored") && n.contains("load-test")),
        "{:?}",
        b.notes
    );
    assert!(
        b.notes.iter().any(|n| n.contains("autoscalerRef")),
        "{:?}",
        b.notes
    );
}

#[test]
fn flagger_linkerd_tutorial_with_metric_templates_loads() {
    let b = load_fixture("flagger/linkerd-progressive-delivery-canary.yaml").expect("loads");
    let plan = b.flagger.plan().expect("plans");
    assert_eq!(plan.checks.len(), 2);
    assert!(
        plan.checks
            .iter()
            .all(|c| c.kind == peers::flagger::CheckKind::Query)
    );
    assert!(
        !plan.checks[0].query.contains("{{"),
        "{}",
        plan.checks[0].query
    );
}

#[test]
fn flagger_template_and_canary_in_separate_files() {
    let (_, canary) = fixture("flagger/istio-podinfo-canary.yaml");
    let canary = canary.replace(
        "    metrics:\n",
        "    metrics:\n    - name: \"404s percentage\"\n      templateRef:\n        name: not-found-percentage\n        namespace: istio-system\n      thresholdRange:\n        max: 5\n      interval: 1m\n",
    );
    let mut b = load("podinfo-404.yaml", &canary).expect("loads");
    let e = b.flagger.plan().expect_err("template missing").to_string();
    assert!(
        e.contains("templateRef") && e.contains("not-found-percentage"),
        "{e}"
    );
    b.merge(load_fixture("flagger/not-found-percentage.yaml").expect("loads"));
    let plan = b.flagger.plan().expect("plans");
    // built-ins first, then templates (runBuiltinMetricChecks before runMetricChecks)
    let names: Vec<&str> = plan.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "request-success-rate",
            "request-duration",
            "404s percentage"
        ]
    );
    assert!(
        plan.checks[2]
            .query
            .contains(r#"destination_workload_namespace="test""#)
    );
}

#[test]
fn flagger_refusals() {
    let e = refused("flagger/istio-ab-testing-canary.yaml");
    assert!(
        e.contains("spec.analysis.match") && e.contains("header"),
        "{e}"
    );
    let e = refused("flagger/kubernetes-blue-green-canary.yaml");
    assert!(
        e.contains("spec.provider") && e.contains("istio only"),
        "{e}"
    );
    let e = refused("flagger/linkerd-latency-template.yaml");
    assert!(e.contains("no Canary"), "{e}");
}

#[test]
fn other_kinds_are_read_and_ignored_with_a_note() {
    let b = load_fixture("flagger/kustomize-podinfo-deployment.yaml").expect("loads");
    assert_eq!(b.notes.len(), 1);
    assert!(
        b.notes[0].contains("Deployment read and ignored"),
        "{:?}",
        b.notes
    );
    assert!(b.peer().is_err());
}

#[test]
fn bad_yaml_and_bad_fields_name_the_place() {
    let e = load("x.yaml", "kind: Canary\n---\nkind: [unclosed")
        .expect_err("bad yaml")
        .to_string();
    assert!(e.starts_with("x.yaml, document 2: not valid YAML"), "{e}");
    let e = load(
        "x.yaml",
        "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  metrics:\n  - name: m\n    interval: fast\n    provider: {prometheus: {query: up}}\n",
    )
    .expect_err("bad interval")
    .to_string();
    assert!(
        e.contains("x.yaml, document 1 (AnalysisTemplate t)") && e.contains("interval"),
        "{e}"
    );
    let e = load(
        "x.yaml",
        "kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  metrics:\n  - name: m\n    successCondition: result[0] >=\n    provider: {prometheus: {query: up}}\n",
    )
    .expect_err("bad condition")
    .to_string();
    assert!(e.contains("successCondition"), "{e}");
    let e = load(
        "x.yaml",
        "kind: Canary\nmetadata: {name: c}\nspec:\n  analysis:\n    threshold: many\n",
    )
    .expect_err("bad threshold")
    .to_string();
    assert!(
        e.contains("(Canary c)") && e.contains("spec.analysis.threshold"),
        "{e}"
    );
}

/// Flagger's podinfo example canaries (artifacts/examples/).
#[test]
fn flagger_podinfo_examples() {
    let b = load_fixture("flagger/examples-istio-canary.yaml").expect("loads");
    let plan = b.flagger.plan().expect("plans");
    assert_eq!(plan.interval, std::time::Duration::from_secs(15));
    assert_eq!(plan.threshold, 10);
    assert_eq!(
        plan.strategy,
        peers::flagger::Strategy::Canary {
            step_weight: 5,
            step_weights: vec![],
            max_weight: 50
        }
    );

    let b = load_fixture("flagger/examples-kuma-canary.yaml").expect("loads");
    assert!(
        b.notes.iter().any(|n| n.contains("no spec.provider")),
        "{:?}",
        b.notes
    );
    assert!(b.flagger.plan().is_ok());

    let e = refused("flagger/examples-istio-abtest.yaml");
    assert!(e.contains("spec.analysis.match"), "{e}");
    for f in [
        "flagger/examples-linkerd-canary.yaml",
        "flagger/examples-linkerd-canary-steps.yaml",
    ] {
        let e = refused(f);
        assert!(
            e.contains("spec.provider") && e.contains("\"linkerd\"") && e.contains("istio only"),
            "{e}"
        );
    }
}

/// `count` may come from an argument (IntOrString after ResolveMetricArgs);
/// the Kayenta docs' `thresholds:` is not a field Argo reads (it reads
/// `threshold`), which a note says.
#[test]
fn argo_string_count_from_args_and_kayenta_thresholds_typo() {
    let text = r#"
kind: AnalysisTemplate
apiVersion: argoproj.io/v1alpha1
metadata: {name: k}
spec:
  args: [{name: n, value: "3"}]
  metrics:
  - name: q
    count: "{{args.n}}"
    interval: 1m
    provider:
      prometheus:
        query: up
  - name: kayenta
    interval: 5m
    provider:
      kayenta:
        canaryConfigName: my-test
        thresholds: {pass: 90, marginal: 75}
        scopes:
        - name: default
          controlScope: {scope: stable, step: 60}
          experimentScope: {scope: canary, step: 60}
"#;
    let b = load("k.yaml", text).expect("loads");
    assert!(
        b.notes
            .iter()
            .any(|n| n.contains("provider.kayenta.thresholds") && n.contains("every score passes")),
        "{:?}",
        b.notes
    );
    let bad = text.replace(r#"value: "3""#, r#"value: "three""#);
    let e = load("k.yaml", &bad).expect_err("not a number").to_string();
    assert!(
        e.contains("spec.metrics[0].count") && e.contains("\"three\" is not an integer"),
        "{e}"
    );
}
