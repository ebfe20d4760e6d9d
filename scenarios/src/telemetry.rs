//! The `[telemetry]` section: how the simulated service's raw series are
//! named and labelled, so that a team's own queries (Argo Rollouts'
//! `destination_service=~"shop-canary..."`, Flagger's
//! `destination_workload=~"shop"`, a Kayenta config's
//! `http_requests_total{service="shop-canary", status="500"}`) select the
//! simulated pods as they select the real ones.
//!
//! ```toml
//! [telemetry]
//! app = "shop"                 # `app` label; default names derive from it
//! namespace = "shop"           # `namespace`, `destination_workload_namespace`
//! [telemetry.metrics]          # family renames (goldengoose's and Istio's names)
//! http_requests_total = "shop_requests_total"
//! [telemetry.labels]           # label renames
//! code = "status"
//! version = "service"
//! [telemetry.canary]           # per track: version label value, workload, service, hash
//! version = "shop-canary"
//! ```
//!
//! Every field is optional; the defaults are goldengoose's names and the
//! catalog's deployment (app `goldengoose`, namespace `default`, Flagger's
//! workload names `goldengoose` and `goldengoose-primary`, Argo's services
//! `goldengoose-canary` and `goldengoose-stable`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The families the simulator can generate, by their default names.
pub const FAMILIES: &[&str] = &[
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "istio_requests_total",
    "istio_request_duration_milliseconds_bucket",
    "istio_request_duration_milliseconds_sum",
    "istio_request_duration_milliseconds_count",
];

/// The labels the simulator sets, by their default names.
pub const LABELS: &[&str] = &[
    "app",
    "namespace",
    "pod",
    "rollouts_pod_template_hash",
    "version",
    "code",
    "le",
    "reporter",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service",
    "response_code",
];

/// The `[telemetry]` section as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// The `app` label (default `goldengoose`).
    pub app: Option<String>,
    /// The `namespace` label (default `default`).
    pub namespace: Option<String>,
    /// Family renames: default name (see [`FAMILIES`]) -> the service's.
    pub metrics: BTreeMap<String, String>,
    /// Label renames: default name (see [`LABELS`]) -> the service's.
    pub labels: BTreeMap<String, String>,
    /// The canary's names.
    pub canary: TrackNames,
    /// The fresh baseline's names.
    pub baseline: TrackNames,
    /// Production's (the stable or primary pods') names.
    pub production: TrackNames,
}

/// One track's names; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackNames {
    /// The `version` label's value (default: `canary`, `baseline`,
    /// `production`).
    pub version: Option<String>,
    /// `destination_workload` and the pods' name prefix (default: app,
    /// `APP-baseline`, `APP-primary`).
    pub workload: Option<String>,
    /// `destination_service` (default `APP-canary.NS.svc.cluster.local`,
    /// `APP-baseline...`, `APP-stable...`).
    pub service: Option<String>,
    /// `rollouts_pod_template_hash` (default: a stable hash of app and
    /// track, ten hex digits as Kubernetes writes them).
    pub pod_template_hash: Option<String>,
}

/// The tracks a run can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelemetryTrack {
    /// The new version.
    Canary,
    /// A fresh deployment of the old version.
    Baseline,
    /// The old version as it runs.
    Production,
}

/// A track's resolved names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTrack {
    /// `version` label value.
    pub version: String,
    /// `destination_workload`.
    pub workload: String,
    /// `destination_service`.
    pub service: String,
    /// `rollouts_pod_template_hash`.
    pub pod_template_hash: String,
}

impl Telemetry {
    /// The `app` label.
    pub fn app(&self) -> &str {
        self.app.as_deref().unwrap_or("goldengoose")
    }

    /// The `namespace` label.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// The name a family (by its default name) has in this service.
    pub fn metric<'a>(&'a self, family: &'a str) -> &'a str {
        self.metrics.get(family).map_or(family, String::as_str)
    }

    /// The name a label (by its default name) has in this service.
    pub fn label<'a>(&'a self, label: &'a str) -> &'a str {
        self.labels.get(label).map_or(label, String::as_str)
    }

    /// A track's names, defaults filled in.
    pub fn track(&self, track: TelemetryTrack) -> ResolvedTrack {
        let (app, ns) = (self.app(), self.namespace());
        let (names, version, workload, service) = match track {
            TelemetryTrack::Canary => (&self.canary, "canary", app.to_owned(), "canary"),
            TelemetryTrack::Baseline => (
                &self.baseline,
                "baseline",
                format!("{app}-baseline"),
                "baseline",
            ),
            TelemetryTrack::Production => (
                &self.production,
                "production",
                format!("{app}-primary"),
                "stable",
            ),
        };
        ResolvedTrack {
            version: names.version.clone().unwrap_or_else(|| version.into()),
            workload: names.workload.clone().unwrap_or(workload),
            service: names
                .service
                .clone()
                .unwrap_or_else(|| format!("{app}-{service}.{ns}.svc.cluster.local")),
            pod_template_hash: names
                .pod_template_hash
                .clone()
                .unwrap_or_else(|| template_hash(&format!("{app}/{version}"))),
        }
    }

    /// Checks names and renames; `Err((field, message))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |field: String, message: String| Err((field, message));
        for (field, v) in [
            ("telemetry.app", &self.app),
            ("telemetry.namespace", &self.namespace),
        ] {
            if let Some(v) = v
                && v.trim().is_empty()
            {
                return err(field.into(), "must not be empty".into());
            }
        }
        let mut seen = BTreeMap::new();
        for (from, to) in &self.metrics {
            let field = format!("telemetry.metrics.{from}");
            if !FAMILIES.contains(&from.as_str()) {
                return err(
                    field,
                    format!("no family of that name; known: {}", FAMILIES.join(", ")),
                );
            }
            if !is_metric_name(to) {
                return err(
                    field,
                    format!("\"{to}\" is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
                );
            }
            if let Some(other) = seen.insert(to.clone(), from.clone()) {
                return err(field, format!("\"{to}\" is also the name of {other}"));
            }
        }
        for family in FAMILIES {
            let to = self.metric(family);
            if !self.metrics.contains_key(*family)
                && let Some(other) = seen.get(to)
            {
                return err(
                    format!("telemetry.metrics.{other}"),
                    format!("\"{to}\" is the name of another family"),
                );
            }
        }
        let mut seen = BTreeMap::new();
        for (from, to) in &self.labels {
            let field = format!("telemetry.labels.{from}");
            if !LABELS.contains(&from.as_str()) {
                return err(
                    field,
                    format!("no label of that name; known: {}", LABELS.join(", ")),
                );
            }
            if !is_label_name(to) || to.starts_with("__") {
                return err(
                    field,
                    format!(
                        "\"{to}\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                    ),
                );
            }
            if let Some(other) = seen.insert(to.clone(), from.clone()) {
                return err(field, format!("\"{to}\" is also the name of label {other}"));
            }
        }
        for label in LABELS {
            let to = self.label(label);
            if !self.labels.contains_key(*label)
                && let Some(other) = seen.get(to)
            {
                return err(
                    format!("telemetry.labels.{other}"),
                    format!("\"{to}\" is the name of another label"),
                );
            }
        }
        for (track, names) in [
            ("canary", &self.canary),
            ("baseline", &self.baseline),
            ("production", &self.production),
        ] {
            for (field, v) in [
                ("version", &names.version),
                ("workload", &names.workload),
                ("service", &names.service),
                ("pod_template_hash", &names.pod_template_hash),
            ] {
                if let Some(v) = v
                    && v.trim().is_empty()
                {
                    return err(
                        format!("telemetry.{track}.{field}"),
                        "must not be empty".into(),
                    );
                }
            }
        }
        let tracks = [
            TelemetryTrack::Canary,
            TelemetryTrack::Baseline,
            TelemetryTrack::Production,
        ]
        .map(|t| self.track(t));
        let names = ["canary", "baseline", "production"];
        for i in 0..3 {
            for j in i + 1..3 {
                let (a, b) = (&tracks[i], &tracks[j]);
                if a.version == b.version
                    && a.workload == b.workload
                    && a.service == b.service
                    && a.pod_template_hash == b.pod_template_hash
                {
                    return err(
                        format!("telemetry.{}", names[j]),
                        format!(
                            "the same names as telemetry.{}: no query could tell the tracks apart",
                            names[i]
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

/// A Kubernetes-style pod-template hash: ten lowercase hex digits of an
/// FNV-1a hash of `key`.
pub fn template_hash(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_select_what_the_catalog_analyses_select() {
        let t = Telemetry::default();
        let c = t.track(TelemetryTrack::Canary);
        let p = t.track(TelemetryTrack::Production);
        assert_eq!(c.workload, "goldengoose");
        assert_eq!(p.workload, "goldengoose-primary");
        assert_eq!(c.service, "goldengoose-canary.default.svc.cluster.local");
        assert_ne!(c.pod_template_hash, p.pod_template_hash);
        assert_eq!(c.pod_template_hash.len(), 10);
        assert!(t.check().is_ok());
    }

    #[test]
    fn bad_renames_name_the_field() {
        let mut t = Telemetry::default();
        t.labels.insert("code".into(), "status".into());
        t.labels.insert("version".into(), "service".into());
        assert!(t.check().is_ok());
        t.labels.insert("pod".into(), "status".into());
        let (field, msg) = t.check().unwrap_err();
        assert_eq!(field, "telemetry.labels.pod", "{msg}");
        let mut t = Telemetry::default();
        t.metrics
            .insert("http_requests_total".into(), "9bad".into());
        assert_eq!(
            t.check().unwrap_err().0,
            "telemetry.metrics.http_requests_total"
        );
        let mut t = Telemetry::default();
        t.metrics.insert("http_requests".into(), "x".into());
        assert!(t.check().unwrap_err().1.contains("known"));
        let mut t = Telemetry::default();
        t.metrics
            .insert("http_requests_total".into(), "istio_requests_total".into());
        assert!(t.check().is_err());
        let mut t = Telemetry::default();
        t.production.version = Some("canary".into());
        t.production.workload = Some("goldengoose".into());
        t.production.service = Some("goldengoose-canary.default.svc.cluster.local".into());
        t.production.pod_template_hash = Some(t.track(TelemetryTrack::Canary).pod_template_hash);
        assert_eq!(t.check().unwrap_err().0, "telemetry.production");
    }
}
