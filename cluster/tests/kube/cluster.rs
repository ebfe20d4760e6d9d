//! A whole release on a real cluster: compiled only with the
//! `real-cluster-test` feature (no API server can run on these machines, and
//! CI's `--include-ignored` must not try one). To run it, follow the walkthrough in
//! `cluster/KUBE.md` (kind + Istio + Prometheus, images loaded), then:
//!
//! ```sh
//! kubectl -n monitoring port-forward svc/prometheus-server 9090:80 &
//! CANARYLAB_KUBE_CONTEXT=kind-canarylab CANARYLAB_KUBE_NAMESPACE=canarylab \
//! CANARYLAB_PROMETHEUS_URL=http://127.0.0.1:9090 \
//!   cargo test -p cluster --features real-cluster-test --test kube -- --nocapture
//! ```
//!
//! It releases `aa-typical` at `--time-scale 0.1` (about 4 minutes) and
//! expects a promotion, then runs `clean` and expects nothing left.

use std::sync::Arc;

use cluster::kube::{Manifests, RenderOptions, RunOptions, clean, connect, run_release};
use cluster::plan::plan_release;
use cluster::prom::PromApi;
use release::ReleaseEnd;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name} (see cluster/KUBE.md)"))
}

#[tokio::test]
async fn aa_release_on_a_real_cluster_is_promoted_and_clean_removes_everything() {
    let context = env("CANARYLAB_KUBE_CONTEXT");
    let namespace = env("CANARYLAB_KUBE_NAMESPACE");
    let prometheus = PromApi::from_url(&env("CANARYLAB_PROMETHEUS_URL")).expect("prometheus url");
    let path = format!(
        "{}/../scenarios/catalog/aa-typical.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scenario = scenarios::Scenario::load(std::path::Path::new(&path), None).expect("loads");
    let plan = plan_release(&scenario, 0.1, 1).expect("plans");
    let options = RenderOptions {
        image_goldengoose: "canarylab/goldengoose:dev".into(),
        image_loadgen: "canarylab/loadgen:dev".into(),
        image_canarylab: "canarylab/canarylab:dev".into(),
        ..RenderOptions::new(namespace.clone(), "it-aa")
    };
    let manifests = Manifests::new(&scenario.name, &plan, &options, None).expect("renders");
    let client = connect(Some(&context)).await.expect("kubeconfig context");
    let outcome = run_release(
        client.clone(),
        &manifests,
        &plan,
        &scenario.config,
        Arc::new(prometheus),
        &RunOptions::default(),
        tokio::sync::watch::channel(false).1,
        None,
    )
    .await
    .expect("release finishes");
    assert_eq!(
        outcome.decision,
        ReleaseEnd::Promote,
        "{:?}",
        outcome.analysis.outcome
    );
    let cleanup = clean(client, &namespace, Some("it-aa")).await;
    assert!(cleanup.problems.is_empty(), "{cleanup:?}");
}
