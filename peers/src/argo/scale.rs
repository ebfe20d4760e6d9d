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
//! - `CheckMinPodsPerReplicaSet`: with `minPodsPerReplicaSet` (capped at
//!   `spec.replicas`), a count above 0 is raised to it; a
//!   `setCanaryScale.replicas` count is left alone unless
//!   `dynamicStableScale` is on (the function applies it once more to both
//!   counts then);
//! - `dynamicStableScale`: the stable count is the larger of the desired
//!   weight's complement (`maxWeight - weight`, 0 for a
//!   `setCanaryScale.replicas`, whose weight is 0) and the stable's actual
//!   traffic share, rounded up: stable shrinks only once traffic has left
//!   it, and grows before traffic comes back.
//!
//! Not modelled: the abort's step-down with `dynamicStableScale`
//! (`GetDesiredCanaryWeight` on abort; the release crate removes the canary
//! and restores production on an abort) and `maxTrafficWeight` (nginx and
//! plugins only).

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

/// The pod counts `CalculateReplicaCountsForTrafficRoutedCanary` gives the
/// canary and stable ReplicaSets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// the canary (new) ReplicaSet's
    pub canary: u32,
    /// the stable ReplicaSet's (`spec.replicas` without `dynamicStableScale`)
    pub stable: u32,
}

impl RolloutPlan {
    /// `CheckMinPodsPerReplicaSet`: a count above 0 is at least
    /// `minPodsPerReplicaSet`, capped at `spec_replicas` (traffic routing
    /// only).
    pub fn check_min_pods(&self, count: u32, spec_replicas: u32) -> u32 {
        match self.min_pods_per_replica_set {
            Some(min) if count > 0 && self.traffic_routing => count.max(min.min(spec_replicas)),
            _ => count,
        }
    }

    /// `GetCanaryReplicasOrWeight` at step `step` (not aborted): a
    /// `setCanaryScale.replicas` in force and weight 0, else `None` and
    /// the weight the canary is sized from (`setCanaryScale.weight`, else
    /// the current `setWeight`).
    pub fn canary_replicas_or_weight(&self, step: usize) -> (Option<u32>, u32) {
        match self.set_canary_scale(step) {
            Some(CanaryScale {
                replicas: Some(r), ..
            }) => (Some(r), 0),
            Some(CanaryScale {
                weight: Some(w), ..
            }) => (None, w),
            _ => (None, self.current_set_weight(step)),
        }
    }

    /// `CalculateReplicaCountsForTrafficRoutedCanary` at step `step` (not
    /// aborted) for `spec_replicas`, with the stable's actual traffic share
    /// `stable_weight` (percent; `None`: no weights known yet).
    pub fn replica_counts(
        &self,
        step: usize,
        spec_replicas: u32,
        stable_weight: Option<u32>,
    ) -> ReplicaCounts {
        let (scaled, weight) = self.canary_replicas_or_weight(step);
        let canary = scaled.unwrap_or_else(|| {
            self.check_min_pods(
                traffic_weight_to_replicas(spec_replicas, weight, MAX_WEIGHT),
                spec_replicas,
            )
        });
        if !self.dynamic_stable_scale {
            return ReplicaCounts {
                canary,
                stable: spec_replicas,
            };
        }
        let desired = traffic_weight_to_replicas(
            spec_replicas,
            MAX_WEIGHT.saturating_sub(weight),
            MAX_WEIGHT,
        );
        let actual = stable_weight.map_or(0, |w| {
            traffic_weight_to_replicas(spec_replicas, w.min(MAX_WEIGHT), MAX_WEIGHT)
        });
        ReplicaCounts {
            canary: self.check_min_pods(canary, spec_replicas),
            stable: self.check_min_pods(desired.max(actual), spec_replicas),
        }
    }

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
    /// (`CalculateReplicaCountsForTrafficRoutedCanary`'s canary count).
    pub fn canary_replicas(&self, step: usize, spec_replicas: u32) -> u32 {
        self.replica_counts(step, spec_replicas, None).canary
    }

    /// The most canary pods any step of the plan asks for (not past the
    /// last: a promotion is the driver's rolling update): what a driver
    /// reserves up front.
    pub fn max_canary_replicas(&self, spec_replicas: u32) -> u32 {
        (0..self.steps.len())
            .map(|i| self.canary_replicas(i, spec_replicas))
            .max()
            .unwrap_or(0)
    }

    /// The most canary pods any `setCanaryScale` of the plan asks for
    /// (`None` if none does).
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

    fn plan_with(canary: &str, steps: &str) -> RolloutPlan {
        let yaml = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: r}}\nspec:\n  replicas: 10\n  strategy:\n    canary:\n      trafficRouting: {{istio: {{virtualService: {{name: vs}}}}}}\n{canary}      steps:\n{steps}"
        );
        crate::load("r.yaml", &yaml)
            .expect("loads")
            .argo
            .plan(&Hashes::default())
            .expect("plans")
    }

    fn counts(canary: u32, stable: u32) -> ReplicaCounts {
        ReplicaCounts { canary, stable }
    }

    /// utils/replicaset/canary.go `CheckMinPodsPerReplicaSet` and
    /// `CalculateReplicaCountsForTrafficRoutedCanary` without
    /// `dynamicStableScale`, spec.replicas 10, minPodsPerReplicaSet 3:
    /// weight 0 keeps 0 (`count == 0` is returned as is), 10% -> max(1, 3)
    /// = 3, 50% -> 5; `setCanaryScale.replicas: 1` is not raised (the
    /// explicit count skips the check); `setCanaryScale.weight: 20` is
    /// (max(2, 3) = 3); the stable stays at 10 whatever the weight.
    #[test]
    fn min_pods_per_replica_set_raises_weight_counts_only() {
        let p = plan_with(
            "      minPodsPerReplicaSet: 3\n",
            "      - pause: {duration: 1m}\n      - setWeight: 10\n      - setWeight: 50\n      - setCanaryScale: {replicas: 1}\n      - setCanaryScale: {weight: 20}\n",
        );
        let got: Vec<ReplicaCounts> = (0..5).map(|i| p.replica_counts(i, 10, Some(40))).collect();
        assert_eq!(
            got,
            [
                counts(0, 10),
                counts(3, 10),
                counts(5, 10),
                counts(1, 10),
                counts(3, 10)
            ]
        );
        // capped at spec.replicas: minPodsPerReplicaSet 30 of 10 replicas
        let p = plan_with(
            "      minPodsPerReplicaSet: 30\n",
            "      - setWeight: 10\n",
        );
        assert_eq!(p.canary_replicas(0, 10), 10);
        assert_eq!(p.max_canary_replicas(10), 10);
    }

    /// `CalculateReplicaCountsForTrafficRoutedCanary` with
    /// `dynamicStableScale`, spec.replicas 10: stable =
    /// max(ceil(10 x (100 - desired)%), ceil(10 x actual stable%)).
    /// Going 10% -> 35%: before the weight moves (actual stable 90%)
    /// stable = max(ceil(6.5), 9) = 9; once moved (65%) = 7. A
    /// `setCanaryScale.replicas: 2` has weight 0 in
    /// `GetCanaryReplicasOrWeight`, so the stable wants all 10; with
    /// minPodsPerReplicaSet 4 both counts are raised, the explicit 2 too
    /// (the function's final `CheckMinPodsPerReplicaSet` on both).
    #[test]
    fn dynamic_stable_scale_shrinks_the_stable_once_traffic_left_it() {
        let p = plan_with(
            "      dynamicStableScale: true\n",
            "      - setWeight: 10\n      - setWeight: 35\n      - setCanaryScale: {replicas: 2}\n",
        );
        assert_eq!(p.replica_counts(0, 10, None), counts(1, 9));
        assert_eq!(p.replica_counts(1, 10, Some(90)), counts(4, 9));
        assert_eq!(p.replica_counts(1, 10, Some(65)), counts(4, 7));
        assert_eq!(p.replica_counts(2, 10, Some(65)), counts(2, 10));
        let p = plan_with(
            "      dynamicStableScale: true\n      minPodsPerReplicaSet: 4\n",
            "      - setWeight: 10\n      - setWeight: 95\n      - setCanaryScale: {replicas: 2}\n",
        );
        assert_eq!(p.replica_counts(0, 10, Some(100)), counts(4, 10));
        assert_eq!(p.replica_counts(1, 10, Some(5)), counts(10, 4));
        assert_eq!(p.replica_counts(2, 10, Some(5)), counts(4, 10));
    }

    /// pkg/apis/rollouts/validation/validation.go
    /// `ValidateRolloutStrategyCanary`: dynamicStableScale needs
    /// trafficRouting; a negative minPodsPerReplicaSet is refused.
    #[test]
    fn scale_fields_are_checked() {
        let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  strategy:\n    canary:\n      dynamicStableScale: true\n      steps: [{setWeight: 10}]\n";
        let err = crate::load("r.yaml", yaml)
            .expect("loads")
            .argo
            .plan(&Hashes::default())
            .expect_err("refused");
        assert!(err.to_string().contains("dynamicStableScale"), "{err}");
        let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  strategy:\n    canary:\n      trafficRouting: {istio: {}}\n      minPodsPerReplicaSet: -1\n      steps: [{setWeight: 10}]\n";
        let err = crate::load("r.yaml", yaml)
            .expect("loads")
            .argo
            .plan(&Hashes::default())
            .expect_err("refused");
        assert!(err.to_string().contains("minPodsPerReplicaSet"), "{err}");
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
        // rollout/trafficrouting.go reconcileTrafficRouting: setWeight 20
        // sizes the canary first and keeps the previous weight until
        // AtDesiredReplicaCountsForCanary
        let cmds = r.canary_scaled(t1);
        assert_eq!(cmds, [Command::ScaleForStep { at: t1, step: 1 }]);
        assert!(r.scaling());
        let t2 = t1 + Duration::from_secs(20);
        let cmds = r.canary_scaled(t2);
        assert!(
            matches!(
                cmds.first(),
                Some(Command::SetWeight {
                    canary_percent: 20,
                    at
                }) if *at == t2
            ),
            "{cmds:?}"
        );
        assert!(!r.scaling());
    }
}
