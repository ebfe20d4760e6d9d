//! The real-cluster mode: a canary release on Kubernetes with Istio and
//! Prometheus (`canarylab cluster render|run|clean`).
//!
//! - [`manifests`]: the objects of a release from a scenario's plan (pure),
//!   and [`Manifests::to_yaml`] for `render`;
//! - [`run`]: the release controller's commands carried out through the
//!   API server (server-side apply, rollouts, weights, judged windows,
//!   promotion or rollback, cleanup);
//! - [`clean`](mod@clean): removal of everything carrying the ownership label;
//! - [`retry`]: the API server's 409/429/5xx answers retried within a
//!   bound, around the whole client ([`retry::with_retry`]);
//! - [`yaml`]: the small YAML emitter `render` prints with.
//!
//! The windows are fetched as the local mode fetches them
//! ([`crate::analysis::fetch_pairs`]), from the cluster's Prometheus. Not for: building images or installing
//! Istio and Prometheus (see `cluster/KUBE.md`).

pub mod clean;
pub mod manifests;
pub mod retry;
pub mod run;
pub mod yaml;

pub use clean::clean;
pub use manifests::{Manifests, RenderError, RenderOptions, ScenarioFiles, release_id};
pub use release::OperatorInput;
pub use run::{
    Cleanup, Crashes, KubeError, KubeOutcome, MetricsSource, ProductionState, RunFailure,
    RunOptions, run_release,
};

/// A client for `context` of the kubeconfig (`$KUBECONFIG` or
/// `~/.kube/config`), or its current context.
pub async fn connect(context: Option<&str>) -> Result<::kube::Client, ::kube::Error> {
    let options = ::kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match context {
        Some(_) => ::kube::Config::from_kubeconfig(&options)
            .await
            .map_err(::kube::Error::InferKubeconfig)?,
        // In a pod: the service account; else the kubeconfig.
        None => ::kube::Config::infer()
            .await
            .map_err(::kube::Error::InferConfig)?,
    };
    ::kube::Client::try_from(config)
}
