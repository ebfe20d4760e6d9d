//! How many pods Argo Rollouts gives the canary of a Rollout with traffic
//! routing (`utils/replicaset/canary.go`):
//!
//! - `CalculateReplicaCountsForTrafficRoutedCanary`: the canary's count is
//!   `setCanaryScale.replicas` when one is in force, else
//!   `trafficWeightToReplicas(spec.replicas, weight, maxWeight)` (rounded
//!   up) with `weight` from `GetCanaryReplicasOrWeight`; the stable
//!   ReplicaSet stays at `spec.replicas` (without `dynamicStableScale`),
//!   so the canary's pods come on top of production's and its traffic share
//!   is the router's weight, whatever its pod count;
//! - `GetCanaryReplicasOrWeight`: `setCanaryScale.replicas`, else
//!   `setCanaryScale.weight`, else the current `setWeight`
//!   (`GetCurrentSetWeight`: the last `setWeight` at or before the current
//!   step, 0 if none, `maxWeight` once past the last step);
//! - `UseSetCanaryScale`: the last `setCanaryScale` at or before the current
//!   step is in force, unless it has `matchTrafficWeight: true` (the canary
//!   follows the weight again); none without `trafficRouting` (Argo ignores
//!   the step then), none once past the last step.
//!
//! Not modelled: `minPodsPerReplicaSet`, `dynamicStableScale` and the
//! abort's step-down (the release crate removes the canary on an abort).

use crate::argo::spec::{RolloutPlan, Step};

/// Argo's `maxWeight` without `trafficRouting.maxTrafficWeight`.
pub const MAX_WEIGHT: u32 = 100;

/// `trafficWeightToReplicas`: `replicas * weight / max_weight`, rounded up.
pub fn traffic_weight_to_replicas(replicas: u32, weight: u32, max_weight: u32) -> u32 {
    if max_weight == 0 {
        return 0;
    }
    let n = u64::from(replicas) * u64::from(weight);
    n.div_ceil(u64::from(max_weight))
        .try_into()
        .unwrap_or(u32::MAX)
}

/// A `setCanaryScale` step's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryScale {
    /// `weight`: percent of `spec.replicas`
    pub weight: Option<u32>,
    /// `replicas`: absolute
    pub replicas: Option<u32>,
    /// `matchTrafficWeight`
    pub match_traffic_weight: bool,
}

impl CanaryScale {
    /// The canary's pod count this scale sets (`GetCanaryReplicasOrWeight`
    /// and `CalculateReplicaCountsForTrafficRoutedCanary` with it in
    /// force): `replicas`, else `weight` of `spec_replicas` rounded up;
    /// `None` when the canary follows the traffic weight (neither set, or
    /// `matchTrafficWeight`).
    pub fn replicas(&self, spec_replicas: u32) -> Option<u32> {
        if self.match_traffic_weight {
            return None;
        }
        match (self.replicas, self.weight) {
            (Some(r), _) => Some(r),
            (None, Some(w)) => Some(traffic_weight_to_replicas(spec_replicas, w, MAX_WEIGHT)),
            (None, None) => None,
        }
    }
}

impl RolloutPlan {
    /// `UseSetCanaryScale` at step index `step` (`steps.len()`: past the
    /// last step).
    pub fn set_canary_scale(&self, step: usize) -> Option<CanaryScale> {
        if !self.traffic_routing || step >= self.steps.len() {
            return None;
        }
        // the last one counts, even if it hands the size back to the weight
        self.steps[..=step]
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::SetCanaryScale {
                    weight,
                    replicas,
                    match_traffic_weight,
                } => Some(CanaryScale {
                    weight: *weight,
                    replicas: *replicas,
                    match_traffic_weight: *match_traffic_weight,
                }),
                _ => None,
            })
            .filter(|s| !s.match_traffic_weight)
    }

    /// `GetCurrentSetWeight` at step index `step` (not aborted).
    pub fn current_set_weight(&self, step: usize) -> u32 {
        if step >= self.steps.len() {
            return MAX_WEIGHT;
        }
        self.steps[..=step]
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::SetWeight(w) => Some(*w),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The canary's pod count a `setCanaryScale` sets at step `step`;
    /// `None` while the canary follows the traffic weight.
    pub fn scaled_canary_replicas(&self, step: usize, spec_replicas: u32) -> Option<u32> {
        self.set_canary_scale(step)
            .and_then(|s| s.replicas(spec_replicas))
    }

    /// Argo's canary count at step `step` with traffic routing
    /// (`CalculateReplicaCountsForTrafficRoutedCanary`'s canary count):
    /// the scaled count, else the current weight's share of
    /// `spec_replicas`, rounded up.
    pub fn canary_replicas(&self, step: usize, spec_replicas: u32) -> u32 {
        self.scaled_canary_replicas(step, spec_replicas)
            .unwrap_or_else(|| {
                traffic_weight_to_replicas(spec_replicas, self.current_set_weight(step), MAX_WEIGHT)
            })
    }

    /// The most canary pods any `setCanaryScale` of the plan asks for
    /// (`None` if none does): what a driver reserves up front.
    pub fn max_scaled_canary_replicas(&self, spec_replicas: u32) -> Option<u32> {
        (0..self.steps.len())
            .filter_map(|i| self.scaled_canary_replicas(i, spec_replicas))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argo::spec::Hashes;

    fn plan(steps: &str, traffic_routing: bool) -> RolloutPlan {
        let routing = if traffic_routing {
            "      trafficRouting: {istio: {virtualService: {name: vs}}}\n"
        } else {
            ""
        };
        let yaml = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: r}}\nspec:\n  replicas: 10\n  strategy:\n    canary:\n{routing}      steps:\n{steps}"
        );
        crate::load("r.yaml", &yaml)
            .expect("loads")
            .argo
            .plan(&Hashes::default())
            .expect("plans")
    }

    /// `trafficWeightToReplicas` rounds up: Argo's own vectors
    /// (utils/replicaset/canary_test.go `TestTrafficWeightToReplicas`), and
    /// the catalog Rollout's 6 replicas at its weights 5, 25 and 50.
    #[test]
    fn traffic_weight_to_replicas_rounds_up() {
        assert_eq!(traffic_weight_to_replicas(10, 0, 100), 0);
        assert_eq!(traffic_weight_to_replicas(10, 20, 100), 2);
        assert_eq!(traffic_weight_to_replicas(10, 25, 100), 3);
        assert_eq!(traffic_weight_to_replicas(10, 33, 100), 4);
        assert_eq!(traffic_weight_to_replicas(10, 99, 100), 10);
        assert_eq!(traffic_weight_to_replicas(10, 100, 100), 10);
        assert_eq!(traffic_weight_to_replicas(23, 100_000_000, 100_000_000), 23);
        assert_eq!(traffic_weight_to_replicas(6, 5, 100), 1);
        assert_eq!(traffic_weight_to_replicas(6, 25, 100), 2); // 1.5 -> 2
        assert_eq!(traffic_weight_to_replicas(6, 50, 100), 3);
    }

    /// Worked from utils/replicaset/canary.go `GetCanaryReplicasOrWeight`,
    /// `UseSetCanaryScale`, `GetCurrentSetWeight` and
    /// `CalculateReplicaCountsForTrafficRoutedCanary` for spec.replicas 10:
    ///
    /// | step | in force | canary |
    /// |---|---|---|
    /// | 0 setCanaryScale{replicas: 3} | replicas 3 | 3 (weight 0 does not matter) |
    /// | 1 setWeight 10 | replicas 3 | 3 |
    /// | 2 setCanaryScale{weight: 25} | weight 25 | ceil(2.5) = 3 |
    /// | 3 setWeight 40 | weight 25 | 3 |
    /// | 4 setCanaryScale{matchTrafficWeight} | none | ceil(10 * 40%) = 4 |
    /// | 5 setWeight 55 | none | ceil(5.5) = 6 |
    /// | 6 setCanaryScale{weight 15, replicas 2} | replicas wins | 2 |
    /// | past the last step | none | maxWeight: 10 |
    #[test]
    fn canary_counts_follow_argos_rules_step_by_step() {
        let p = plan(
            "      - setCanaryScale: {replicas: 3}\n      - setWeight: 10\n      - setCanaryScale: {weight: 25}\n      - setWeight: 40\n      - setCanaryScale: {matchTrafficWeight: true}\n      - setWeight: 55\n      - setCanaryScale: {weight: 15, replicas: 2}\n",
            true,
        );
        let counts: Vec<u32> = (0..=p.steps.len())
            .map(|i| p.canary_replicas(i, 10))
            .collect();
        assert_eq!(counts, [3, 3, 3, 3, 4, 6, 2, 10]);
        let scaled: Vec<Option<u32>> = (0..=p.steps.len())
            .map(|i| p.scaled_canary_replicas(i, 10))
            .collect();
        assert_eq!(
            scaled,
            [
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                None,
                None,
                Some(2),
                None
            ]
        );
        assert_eq!(p.max_scaled_canary_replicas(10), Some(3));
        assert_eq!(p.current_set_weight(0), 0);
        assert_eq!(p.current_set_weight(3), 40);
    }

    /// `UseSetCanaryScale` returns nil without `trafficRouting`: the step is
    /// ignored and the canary follows the weight (a basic canary's counts
    /// are `CalculateReplicaCountsForBasicCanary`'s, not modelled here).
    #[test]
    fn without_traffic_routing_set_canary_scale_is_ignored() {
        let p = plan(
            "      - setCanaryScale: {replicas: 3}\n      - setWeight: 20\n",
            false,
        );
        assert_eq!(p.set_canary_scale(0), None);
        assert_eq!(p.scaled_canary_replicas(1, 10), None);
        assert_eq!(p.max_scaled_canary_replicas(10), None);
    }

    /// An empty `setCanaryScale: {}` is in force but sets nothing:
    /// `GetCanaryReplicasOrWeight` falls through to the current setWeight.
    #[test]
    fn an_empty_scale_follows_the_weight() {
        let p = plan("      - setWeight: 30\n      - setCanaryScale: {}\n", true);
        assert!(p.set_canary_scale(1).is_some());
        assert_eq!(p.scaled_canary_replicas(1, 10), None);
        assert_eq!(p.canary_replicas(1, 10), 3);
    }

    /// rollout/canary.go `completedCurrentCanaryStep`: a `setCanaryScale`
    /// step is complete only when `AtDesiredReplicaCountsForCanary`; the
    /// machine asks for the scale and waits for the driver's word.
    #[test]
    fn the_rollout_waits_for_the_scaled_canary() {
        use crate::argo::ArgoRollout;
        use crate::control::{Command, Controller};
        use std::time::Duration;
        let p = plan(
            "      - setCanaryScale: {replicas: 2}\n      - setWeight: 20\n",
            true,
        );
        let mut r = ArgoRollout::new(p);
        let t0 = Duration::from_secs(100);
        let cmds = r.start(t0);
        assert!(
            matches!(
                cmds.as_slice(),
                [Command::SetCanaryScale {
                    replicas: Some(2),
                    ..
                }]
            ),
            "{cmds:?}"
        );
        assert!(r.scaling());
        assert_eq!(r.next_wake(), None);
        assert!(r.wake(t0 + Duration::from_secs(5)).is_empty());
        let t1 = t0 + Duration::from_secs(30);
        let cmds = r.canary_scaled(t1);
        assert!(
            matches!(
                cmds.first(),
                Some(Command::SetWeight {
                    canary_percent: 20,
                    at
                }) if *at == t1
            ),
            "{cmds:?}"
        );
        assert!(!r.scaling());
    }
}
