//! `render`'s YAML: a snapshot a human reviewed, read back by an
//! independent YAML parser (serde_norway) into exactly the objects, and
//! into the Kubernetes types.

use cluster::kube::manifests::{MANAGED_BY, RELEASE_LABEL};
use cluster::kube::{Manifests, RenderOptions, ScenarioFiles};
use cluster::plan::plan_release;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::DynamicObject;
use scenarios::Scenario;
use serde::Deserialize;
use serde_json::Value;

fn catalog_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!(
        "{}/../scenarios/catalog",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn files() -> ScenarioFiles {
    ScenarioFiles {
        scenario: ("latency-25pct.toml".into(), "[regression]\n".into()),
        config: Some(("canary-config.json".into(), "{}".into())),
    }
}

fn render(name: &str, options: &RenderOptions) -> Manifests {
    let scenario =
        Scenario::load(&catalog_dir().join(format!("{name}.toml")), None).expect("loads");
    let plan = plan_release(&scenario, 1.0, 1).expect("plans");
    Manifests::new(&scenario.name, &plan, options, Some(&files())).expect("renders")
}

fn scale_out() -> RenderOptions {
    RenderOptions {
        loadgen_pods: 3,
        sim_shards: 4,
        results_claim: Some("canarylab-results".into()),
        ..RenderOptions::new("shop", "latency-25pct")
    }
}

/// Every document, parsed by serde_norway.
fn parse(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("valid YAML document"))
        .collect()
}

#[test]
fn rendered_yaml_snapshot() {
    let m = render("latency-25pct", &scale_out());
    insta::assert_snapshot!("latency_25pct_scale_out", m.to_yaml());
}

#[test]
fn yaml_reads_back_as_the_objects_and_the_kubernetes_types() {
    for options in [RenderOptions::new("shop", "r1"), scale_out()] {
        let m = render("latency-25pct", &options);
        let docs = parse(&m.to_yaml());
        assert_eq!(docs, m.values(), "YAML and JSON agree document by document");
        let mut kinds = Vec::new();
        for doc in &docs {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let meta = match kind.as_str() {
                "Deployment" => {
                    serde_json::from_value::<Deployment>(doc.clone())
                        .expect("Deployment")
                        .metadata
                }
                "Service" => {
                    serde_json::from_value::<Service>(doc.clone())
                        .expect("Service")
                        .metadata
                }
                "Job" => {
                    serde_json::from_value::<Job>(doc.clone())
                        .expect("Job")
                        .metadata
                }
                "ConfigMap" => {
                    serde_json::from_value::<ConfigMap>(doc.clone())
                        .expect("ConfigMap")
                        .metadata
                }
                "DestinationRule" | "VirtualService" => {
                    let obj: DynamicObject =
                        serde_json::from_value(doc.clone()).expect("dynamic object");
                    assert_eq!(
                        obj.types.as_ref().map(|t| t.api_version.as_str()),
                        Some("networking.istio.io/v1")
                    );
                    obj.metadata
                }
                other => panic!("unexpected kind {other}"),
            };
            let labels = meta.labels.expect("labels");
            assert_eq!(
                labels.get(MANAGED_BY.0).map(String::as_str),
                Some(MANAGED_BY.1)
            );
            assert_eq!(labels.get(RELEASE_LABEL), Some(&options.release));
            assert_eq!(meta.namespace.as_deref(), Some("shop"));
            kinds.push(kind);
        }
        let expected: &[&str] = if options.sim_shards > 0 {
            &[
                "Deployment",
                "Deployment",
                "Deployment",
                "Service",
                "DestinationRule",
                "VirtualService",
                "Job",
                "ConfigMap",
                "Job",
            ]
        } else {
            &[
                "Deployment",
                "Deployment",
                "Deployment",
                "Service",
                "DestinationRule",
                "VirtualService",
                "Job",
            ]
        };
        assert_eq!(kinds, expected);
    }
}

#[test]
fn every_catalog_scenario_renders_and_its_flags_parse_as_goldengoose_flags() {
    for s in scenarios::load_all(&[catalog_dir()], None).expect("catalog loads") {
        let plan = match plan_release(&s, 1.0, 1) {
            Ok(plan) => plan,
            Err(e) => panic!("{}: {e}", s.name),
        };
        let m = Manifests::new(&s.name, &plan, &RenderOptions::new("shop", "r"), None)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(parse(&m.to_yaml()), m.values(), "{}", s.name);
        for d in [
            Some(&m.production),
            m.baseline.as_ref(),
            Some(&m.canary),
            Some(&m.promoted),
        ]
        .into_iter()
        .flatten()
        {
            let container = &d
                .spec
                .as_ref()
                .expect("spec")
                .template
                .spec
                .as_ref()
                .expect("pod")
                .containers[0];
            let args = container.args.clone().expect("args");
            let parsed = <goldengoose::Args as clap::Parser>::try_parse_from(
                std::iter::once("goldengoose".to_string()).chain(args.clone()),
            );
            assert!(parsed.is_ok(), "{}: {args:?}: {:?}", s.name, parsed.err());
        }
        // The VirtualService's weights are whole and add up to 100.
        let vs = serde_json::to_value(&m.virtual_service).expect("json");
        let total: i64 = vs["spec"]["http"][0]["route"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|r| r["weight"].as_i64().expect("integer weight"))
            .sum();
        assert_eq!(total, 100, "{}", s.name);
    }
}

#[test]
fn bad_names_are_refused() {
    let scenario = Scenario::load(&catalog_dir().join("latency-25pct.toml"), None).expect("loads");
    let plan = plan_release(&scenario, 1.0, 1).expect("plans");
    let err = Manifests::new("x", &plan, &RenderOptions::new("Shop", "r"), None)
        .expect_err("namespace with capitals");
    assert!(err.to_string().contains("\"Shop\""), "{err}");
    let err = Manifests::new("x", &plan, &RenderOptions::new("shop", "r_1"), None)
        .expect_err("release id with underscore");
    assert!(err.to_string().contains("r_1"), "{err}");
    let options = RenderOptions {
        sim_shards: 2,
        ..RenderOptions::new("shop", "r")
    };
    assert!(Manifests::new("x", &plan, &options, None).is_err());
}
