//! `canarylab cluster clean`: finds everything canarylab created in a
//! namespace by its ownership label and deletes it, routing first
//! (VirtualService, DestinationRule), then the Jobs, the Deployments, the
//! Service and the ConfigMap.
//!
//! Not for: a release's own cleanup after a run (see [`super::run`]),
//! which keeps production.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::manifests::{MANAGED_SELECTOR, RELEASE_LABEL, istio_resource};
use super::run::{Cleanup, delete};

/// The label selector of `clean`: every canarylab object, or one release's.
pub fn selector(release: Option<&str>) -> String {
    match release {
        Some(r) => format!("{MANAGED_SELECTOR},{RELEASE_LABEL}={r}"),
        None => MANAGED_SELECTOR.to_string(),
    }
}

/// Deletes every object with the ownership label in `namespace`. A kind
/// the cluster does not serve (no Istio installed) is skipped with a note
/// in `problems`.
pub async fn clean(client: Client, namespace: &str, release: Option<&str>) -> Cleanup {
    let lp = ListParams::default().labels(&selector(release));
    let mut cleanup = Cleanup::default();
    for kind in ["VirtualService", "DestinationRule"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &istio_resource(kind));
        remove(&api, kind, &lp, &mut cleanup).await;
    }
    remove(
        &Api::<Job>::namespaced(client.clone(), namespace),
        "Job",
        &lp,
        &mut cleanup,
    )
    .await;
    remove(
        &Api::<Deployment>::namespaced(client.clone(), namespace),
        "Deployment",
        &lp,
        &mut cleanup,
    )
    .await;
    remove(
        &Api::<Service>::namespaced(client.clone(), namespace),
        "Service",
        &lp,
        &mut cleanup,
    )
    .await;
    remove(
        &Api::<ConfigMap>::namespaced(client, namespace),
        "ConfigMap",
        &lp,
        &mut cleanup,
    )
    .await;
    cleanup
}

async fn remove<K>(api: &Api<K>, kind: &str, lp: &ListParams, cleanup: &mut Cleanup)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    // List then delete one by one: not every kind serves deletecollection
    // (Services did not before Kubernetes 1.31).
    let list = match api.list(lp).await {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            cleanup
                .problems
                .push(format!("{kind}: not served by this cluster (skipped)"));
            return;
        }
        Err(e) => {
            cleanup.problems.push(format!("list {kind}: {e}"));
            return;
        }
    };
    for obj in list.items {
        let name = obj.meta().name.clone().unwrap_or_default();
        delete(api, kind, &name, cleanup).await;
    }
}
