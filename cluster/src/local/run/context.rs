//! What every part of a local release reads and nothing changes: the
//! scenario, plan, config, options, Ctrl-C, the judge and the names, and
//! the deploy's timings scaled ([`Context`]).
//!
//! Not for: state that changes as the release runs (`running.rs`, the
//! driver).

use std::sync::Arc;
use std::time::Duration;

use judge::Judge;
use scenarios::Scenario;
use tokio::sync::watch;

use super::ReleaseOptions;
use super::names::Names;
use crate::local::goose::Supervision;
use crate::plan::ReleasePlan;
use crate::query::ScopeVars;

/// Scenario seconds a crashed instance stays down before it serves again:
/// the simulator's crash loop (`sim/src/series.rs`) is down 30 s per cycle.
const CRASH_RESTART_S: f64 = 30.0;

pub(super) struct Context<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) plan: &'a ReleasePlan,
    pub(super) config: &'a judge::CanaryConfig,
    pub(super) options: &'a ReleaseOptions,
    /// Ctrl-C: `true` once the release is to stop.
    pub(super) cancel: &'a watch::Receiver<bool>,
    pub(super) control: ScopeVars,
    pub(super) experiment: ScopeVars,
    /// The Kayenta judge of `config`.
    pub(super) judge: Arc<Judge>,
    /// How each track's series are labelled.
    pub(super) names: Names,
    /// Canary slots reserved up front: the plan's pods, or every pod a
    /// peer's `setCanaryScale` may start
    /// ([`PeerSpec::canary_starts`](release::peer::PeerSpec::canary_starts); a
    /// stopped slot is not restarted).
    pub(super) canary_slots: u32,
    /// Production slots reserved beyond the plan's replicas, not started
    /// with them: every production pod a peer's `dynamicStableScale` may
    /// start again after stopping some
    /// ([`PeerSpec::production_starts`](release::peer::PeerSpec::production_starts));
    /// 0 for a Kayenta release.
    pub(super) production_spares: u32,
}

impl Context<'_> {
    /// How long an instance may take to become ready: the scenario's
    /// deploy timeout, scaled (at least a second).
    pub(super) fn ready_timeout(&self) -> Duration {
        let s = self.scenario.file.pipeline.deploy_timeout_s * self.options.time_scale;
        Duration::from_secs_f64(s.max(1.0))
    }

    /// How long an instance must be up before it counts as ready: the
    /// scenario's readiness time, scaled (a crash-looping canary crashes
    /// within it, as in the simulator).
    pub(super) fn min_ready(&self) -> Duration {
        let s = self.scenario.file.pipeline.readiness_s * self.options.time_scale;
        Duration::from_secs_f64(s.max(0.0))
    }

    /// Instances are restarted `CRASH_RESTART_S` scaled after they exit.
    pub(super) fn supervision(&self) -> Supervision {
        Supervision {
            restart_delay: Duration::from_secs_f64(
                (CRASH_RESTART_S * self.options.time_scale).max(0.05),
            ),
            ..Supervision::default()
        }
    }
}
