//! `--istio`: who this server is in a mesh, so that it can also expose the
//! metrics an Istio sidecar would report for its requests
//! (`istio_requests_total`, `istio_request_duration_milliseconds`), and
//! Istio queries (Flagger's built-in checks, Argo Rollouts templates) work
//! on loopback without a mesh.
//!
//! Syntax: `workload=NAME[,namespace=NS][,service=SVC][,app=APP]`, e.g.
//! `workload=shop-canary,namespace=default,service=shop`. Values are
//! Kubernetes names: lowercase letters, digits, `-` and `.`.

use std::fmt;
use std::str::FromStr;

/// Upper bounds (milliseconds) of `istio_request_duration_milliseconds`:
/// Envoy's default histogram buckets (`HistogramStatisticsImpl::
/// supportedBuckets` in envoy's source/common/stats/histogram_impl.cc),
/// which Istio's sidecars use unless a pod sets
/// `sidecar.istio.io/statsHistogramBuckets`.
pub const ISTIO_DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The destination workload's identity in the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Istio {
    /// `destination_workload` (the Deployment's name, e.g. `shop-canary`).
    pub workload: String,
    /// `destination_workload_namespace` and `destination_service_namespace`.
    pub namespace: String,
    /// The Service's short name: `destination_service_name`, and
    /// `destination_service` is `SERVICE.NAMESPACE.svc.cluster.local`.
    pub service: String,
    /// `destination_app` and `destination_canonical_service` (the pod's
    /// `app` label).
    pub app: String,
}

/// A `--istio` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --istio value {spec:?}: {problem}; allowed: {ALLOWED}")]
pub struct IstioSpecError {
    /// The value as given.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

const ALLOWED: &str = "workload=NAME[,namespace=NS][,service=SVC][,app=APP], \
                       values of lowercase letters, digits, '-' and '.'";

impl Istio {
    /// The workload in namespace `default`, its Service and app named after it.
    pub fn new(workload: &str) -> Self {
        Istio {
            workload: workload.to_string(),
            namespace: "default".to_string(),
            service: workload.to_string(),
            app: workload.to_string(),
        }
    }

    /// `destination_service`: the Service's cluster-local host name.
    pub fn service_host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    /// The labels every `istio_*` series of a workload serving `version`
    /// carries, in Istio's names, for a request from outside the mesh
    /// (`source_* = "unknown"`) over plain HTTP without mTLS, reported by
    /// the destination's sidecar. `response_code` is added per series.
    pub fn labels(&self, version: &str) -> Vec<(&'static str, String)> {
        let unknown = || "unknown".to_string();
        vec![
            ("reporter", "destination".to_string()),
            ("source_workload", unknown()),
            ("source_workload_namespace", unknown()),
            ("source_principal", unknown()),
            ("source_app", unknown()),
            ("source_version", unknown()),
            ("source_canonical_service", unknown()),
            ("source_canonical_revision", unknown()),
            ("source_cluster", unknown()),
            ("destination_workload", self.workload.clone()),
            ("destination_workload_namespace", self.namespace.clone()),
            ("destination_principal", unknown()),
            ("destination_app", self.app.clone()),
            ("destination_version", version.to_string()),
            ("destination_service", self.service_host()),
            ("destination_service_name", self.service.clone()),
            ("destination_service_namespace", self.namespace.clone()),
            ("destination_canonical_service", self.app.clone()),
            ("destination_canonical_revision", version.to_string()),
            ("destination_cluster", "Kubernetes".to_string()),
            ("request_protocol", "http".to_string()),
            ("response_flags", "-".to_string()),
            ("grpc_response_status", String::new()),
            ("connection_security_policy", "none".to_string()),
        ]
    }
}

impl FromStr for Istio {
    type Err = IstioSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| IstioSpecError {
            spec: spec.to_string(),
            problem,
        };
        let mut workload = None;
        let mut namespace = None;
        let mut service = None;
        let mut app = None;
        for part in spec.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| fail(format!("{part:?} is not KEY=VALUE")))?;
            let slot = match key {
                "workload" => &mut workload,
                "namespace" => &mut namespace,
                "service" => &mut service,
                "app" => &mut app,
                _ => return Err(fail(format!("unknown key {key:?}"))),
            };
            if slot.is_some() {
                return Err(fail(format!("{key} given twice")));
            }
            check_name(key, value).map_err(fail)?;
            *slot = Some(value.to_string());
        }
        let workload = workload.ok_or_else(|| fail("workload is missing".to_string()))?;
        let service = service.unwrap_or_else(|| workload.clone());
        Ok(Istio {
            namespace: namespace.unwrap_or_else(|| "default".to_string()),
            app: app.unwrap_or_else(|| service.clone()),
            service,
            workload,
        })
    }
}

/// Kubernetes object names (DNS-1123 subdomains, at most 253 characters).
fn check_name(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{key} is empty"));
    }
    if value.len() > 253 {
        return Err(format!("{key} is longer than 253 characters"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!("{key} {value:?} has {bad:?}"));
    }
    Ok(())
}

/// The form [`FromStr`] reads, every key given.
impl fmt::Display for Istio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workload={},namespace={},service={},app={}",
            self.workload, self.namespace, self.service, self.app
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_workload() {
        let istio: Istio = "workload=shop-canary".parse().expect("valid");
        assert_eq!(istio, Istio::new("shop-canary"));
        assert_eq!(
            istio.service_host(),
            "shop-canary.default.svc.cluster.local"
        );
        let istio: Istio = "workload=shop-canary,namespace=prod,service=shop"
            .parse()
            .expect("valid");
        assert_eq!(istio.namespace, "prod");
        assert_eq!(istio.service, "shop");
        assert_eq!(istio.app, "shop", "app defaults to the service");
        assert_eq!(istio.service_host(), "shop.prod.svc.cluster.local");
    }

    #[test]
    fn display_round_trips() {
        let istio: Istio = "app=web,workload=shop-v2,service=shop,namespace=a.b"
            .parse()
            .expect("valid");
        assert_eq!(istio.to_string().parse::<Istio>(), Ok(istio));
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (spec, problem) in [
            ("", "\"\" is not KEY=VALUE"),
            ("namespace=default", "workload is missing"),
            ("workload=a,workload=b", "workload given twice"),
            ("workload=Shop", "has 'S'"),
            ("workload=a,service=", "service is empty"),
            ("workload=a,port=80", "unknown key \"port\""),
            ("workload=a,namespace=x\"y", "has '\"'"),
        ] {
            let err = spec.parse::<Istio>().expect_err(spec).to_string();
            assert!(err.contains(problem), "{spec}: {err}");
            assert!(err.contains("allowed: workload=NAME"), "{err}");
        }
    }
}
