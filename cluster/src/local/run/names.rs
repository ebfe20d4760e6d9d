//! How each local instance's series are named, as the simulator names its
//! tracks' pods' series ([`scenarios::Telemetry`]): goldengoose's Istio
//! identity (`--istio`) and the pod labels Prometheus adds to a target.
//!
//! Not for: which instances run (`running.rs`), nor checking a peer's
//! analysis against these names (`spec.rs`).

use scenarios::Scenario;
use scenarios::telemetry::TelemetryTrack;

use super::running::Track;

/// Every track's names as the simulator gives its pods' series
/// ([`scenarios::Telemetry`]): Istio's destination labels and the pods'
/// Kubernetes labels.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) app: String,
    pub(super) namespace: String,
    pub(super) production: scenarios::telemetry::ResolvedTrack,
    pub(super) baseline: scenarios::telemetry::ResolvedTrack,
    pub(super) canary: scenarios::telemetry::ResolvedTrack,
}

impl Names {
    pub(super) fn of(scenario: &Scenario) -> Self {
        let t = &scenario.file.telemetry;
        Names {
            app: t.app().to_string(),
            namespace: t.namespace().to_string(),
            production: t.track(TelemetryTrack::Production),
            baseline: t.track(TelemetryTrack::Baseline),
            canary: t.track(TelemetryTrack::Canary),
        }
    }

    /// Workload and service of `track`'s pods, and their template hash:
    /// the new production instances are production's Deployment (or
    /// Flagger's primary) running the canary's template.
    pub(super) fn of_track(&self, track: Track) -> (&scenarios::telemetry::ResolvedTrack, &str) {
        match track {
            Track::Production => (&self.production, &self.production.pod_template_hash),
            Track::Baseline => (&self.baseline, &self.baseline.pod_template_hash),
            Track::Canary => (&self.canary, &self.canary.pod_template_hash),
            Track::Next => (&self.production, &self.canary.pod_template_hash),
        }
    }

    /// goldengoose's `--istio` for `track`, or why the track's names
    /// cannot be one (a `destination_service` that is not
    /// `SERVICE.NAMESPACE.svc.cluster.local`, or not a Kubernetes name).
    pub(super) fn istio_of(&self, track: Track) -> Result<goldengoose::Istio, String> {
        let (names, _) = self.of_track(track);
        let suffix = format!(".{}.svc.cluster.local", self.namespace);
        let service = names.service.strip_suffix(&suffix).ok_or_else(|| {
            format!(
                "service {:?} is not SERVICE{suffix}, the only form an Istio sidecar reports",
                names.service
            )
        })?;
        format!(
            "workload={},namespace={},service={service},app={}",
            names.workload, self.namespace, self.app
        )
        .parse()
        .map_err(|e: goldengoose::IstioSpecError| e.to_string())
    }

    /// The pod's labels a cluster's Prometheus adds to every series of
    /// `slot` (the simulator puts the same ones on its pods' series).
    pub(super) fn target_labels(&self, track: Track, slot: &str) -> Vec<(&'static str, String)> {
        let (names, hash) = self.of_track(track);
        vec![
            ("app", self.app.clone()),
            ("namespace", self.namespace.clone()),
            ("pod", format!("{}-{hash}-{slot}", names.workload)),
            ("rollouts_pod_template_hash", hash.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_named_as_the_simulator_names_their_tracks() {
        let path = format!(
            "{}/../scenarios/catalog/aa-typical.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let scenario = Scenario::load(std::path::Path::new(&path), None).expect("loads");
        let names = Names::of(&scenario);
        let t = &scenario.file.telemetry;
        let canary = names.istio_of(Track::Canary).expect("an Istio identity");
        // Flagger's target and Argo's canary service, as the simulator's
        // series carry them (scenarios::telemetry's defaults)
        assert_eq!(canary.workload, "goldengoose");
        assert_eq!(
            canary.service_host(),
            t.track(TelemetryTrack::Canary).service
        );
        assert_eq!(
            canary.service_host(),
            "goldengoose-canary.default.svc.cluster.local"
        );
        let primary = names.istio_of(Track::Production).expect("identity");
        assert_eq!(primary.workload, "goldengoose-primary");
        assert_eq!(
            primary.service_host(),
            "goldengoose-stable.default.svc.cluster.local"
        );
        assert_eq!(names.istio_of(Track::Next), Ok(primary));
        let label = |track, slot| {
            names
                .target_labels(track, slot)
                .into_iter()
                .find(|(k, _)| *k == "rollouts_pod_template_hash")
                .map(|(_, v)| v)
        };
        let (canary_hash, stable_hash) = (
            t.track(TelemetryTrack::Canary).pod_template_hash,
            t.track(TelemetryTrack::Production).pod_template_hash,
        );
        assert_eq!(label(Track::Canary, "canary-0"), Some(canary_hash.clone()));
        assert_eq!(label(Track::Production, "production-0"), Some(stable_hash));
        // the new production pods run the canary's template
        assert_eq!(label(Track::Next, "production-new-0"), Some(canary_hash));
        // and Argo's podTemplateHashValue resolves to the same by default
        let defaults = release::peer::default_hashes();
        assert_eq!(
            defaults.latest,
            t.track(TelemetryTrack::Canary).pod_template_hash
        );
        assert_eq!(
            defaults.stable,
            t.track(TelemetryTrack::Production).pod_template_hash
        );
        // a destination_service no sidecar reports is refused
        let mut bad = scenario.clone();
        bad.file.telemetry.canary.service = Some("shop.example.com".into());
        let names = Names::of(&bad);
        let e = names
            .istio_of(Track::Canary)
            .expect_err("not a cluster service");
        assert!(e.contains("shop.example.com"), "{e}");
    }
}
