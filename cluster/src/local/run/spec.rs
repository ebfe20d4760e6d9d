//! The controller a local release runs, specified for loopback: the
//! simulator's Kayenta pipeline ([`local_spec`]) or an Argo Rollouts or
//! Flagger release ([`peer_spec`]), without a build.
//!
//! Not for: running the controller (the driver), nor the names its
//! queries select on (`names.rs`).

use release::kayenta::KayentaSpec;
use release::peer::{PeerPlan, PeerSpec};
use scenarios::Scenario;

use super::names::Names;
use super::running::Track;
use super::{PeerAnalysis, ReleaseError};
use crate::plan::ReleasePlan;

/// The simulator's Kayenta pipeline of `scenario` as the local mode runs
/// it: no build (the version to deploy exists), the plan's pods, and the
/// traffic shift as soon as every pod is ready (loadgen's weights apply at
/// once; there are no gateways to reach).
pub(super) fn local_spec(scenario: &Scenario, plan: &ReleasePlan) -> KayentaSpec {
    let mut spec = KayentaSpec::from_scenario(scenario, plan.thresholds);
    spec.build_after_s = None;
    spec.shift_delay_s = 0.0;
    spec.canary_pods = plan.canary_replicas.max(1);
    spec.baseline_pods = plan.baseline_replicas;
    spec
}

/// An Argo Rollouts or Flagger release of `scenario` as the local mode
/// runs it: no build, the plan's canary pods, the scenario's telemetry
/// names (Argo's `podTemplateHashValue` resolves to the hashes the pods'
/// series carry).
pub(super) fn peer_spec(
    scenario: &Scenario,
    plan: &ReleasePlan,
    peer: &PeerAnalysis,
    names: &Names,
) -> Result<PeerSpec, ReleaseError> {
    let t = &scenario.file.telemetry;
    let renamed = |what: &str, renames: &std::collections::BTreeMap<String, String>| match renames
        .iter()
        .next()
    {
        Some((from, to)) => Err(ReleaseError::Telemetry {
            field: format!("telemetry.{what}.{from}"),
            problem: format!(
                "renamed to {to:?}, but the local mode's goldengoose exposes the default names; remove the rename to run it locally"
            ),
        }),
        None => Ok(()),
    };
    renamed("metrics", &t.metrics)?;
    renamed("labels", &t.labels)?;
    for (field, track) in [("canary", Track::Canary), ("production", Track::Production)] {
        names
            .istio_of(track)
            .map_err(|problem| ReleaseError::Telemetry {
                field: format!("telemetry.{field}"),
                problem,
            })?;
    }
    let hashes = peers::argo::Hashes {
        stable: names.production.pod_template_hash.clone(),
        latest: names.canary.pod_template_hash.clone(),
    };
    let bad = |error| ReleaseError::Peer {
        name: peer.name.clone(),
        error,
    };
    let mut spec = PeerSpec::from_scenario(
        scenario,
        PeerPlan::with_hashes(&peer.bundle, &hashes).map_err(bad)?,
    );
    spec.deploy.build_after_s = None;
    // an Argo Rollout with trafficRouting deploys Argo's count for step 0
    if !spec.sizes_canary() {
        spec.deploy.canary_pods = plan.canary_replicas.max(1);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use release::kayenta::Kayenta;
    use release::{Command, Controller, Event, Track as PodTrack};

    use super::*;
    use crate::plan::plan_release;

    #[test]
    fn the_local_pipeline_has_no_build_and_shifts_at_once() {
        let path = format!(
            "{}/../scenarios/catalog/aa-typical.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let scenario = Scenario::load(std::path::Path::new(&path), None).expect("loads");
        let plan = plan_release(&scenario, 0.02, 1).expect("plans");
        let spec = local_spec(&scenario, &plan);
        assert_eq!(spec.build_after_s, None);
        assert_eq!(spec.shift_delay_s, 0.0);
        assert_eq!(spec.canary_pods, plan.canary_replicas.max(1));
        assert_eq!(spec.baseline_pods, plan.baseline_replicas);
        // The controller starts the deploy at the commit.
        let mut k = Kayenta::new(&spec, false);
        k.handle(0, Event::Start);
        let first = k.poll();
        assert!(
            matches!(
                first,
                Some(Command::StartPods {
                    track: PodTrack::Canary,
                    ..
                })
            ),
            "{first:?}"
        );
    }

    /// The catalog's Argo Rollout (trafficRouting, 6 replicas, weights 5,
    /// 25, 50) deploys ceil(5% of 6) = 1 canary pod and starts 1 more at
    /// 25% (2) and at 50% (3): utils/replicaset/canary.go
    /// `CalculateReplicaCountsForTrafficRoutedCanary`.
    #[test]
    fn the_catalogs_argo_canary_follows_the_weight_locally() {
        let root = env!("CARGO_MANIFEST_DIR");
        let path = format!("{root}/../scenarios/catalog/aa-typical.toml");
        let scenario = Scenario::load(std::path::Path::new(&path), None).expect("loads");
        let plan = plan_release(&scenario, 0.02, 1).expect("plans");
        let file = format!("{root}/../scenarios/catalog/analyses/argo-rollout.yaml");
        let text = std::fs::read_to_string(&file).expect("reads");
        let peer = PeerAnalysis::from_yaml("argo-rollout", &file, &text).expect("reads");
        let spec = peer_spec(&scenario, &plan, &peer, &Names::of(&scenario)).expect("plans");
        assert!(spec.sizes_canary());
        assert_eq!(spec.deploy.canary_pods, 1);
        assert_eq!(spec.canary_slots(), 3);
        assert_eq!(spec.canary_starts(), 3);
    }
}
