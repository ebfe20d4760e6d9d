//! How to run a local release: [`ReleaseOptions`], an Argo Rollouts or
//! Flagger file to release by ([`PeerAnalysis`]), and the [`StepWatch`]
//! through which a caller follows the release's step.
//!
//! Not for: what a release did or why it failed (`record.rs`,
//! `error.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::{ReleaseError, Step};
use crate::local::goose::GooseCommand;
use crate::prom;

/// How to run a release.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// Multiplies every scenario duration (0.02: a 30-minute analysis in
    /// 36 s).
    pub time_scale: f64,
    /// The `prometheus` binary; `None` looks at `$CANARYLAB_PROMETHEUS`,
    /// then `PATH`.
    pub prometheus: Option<PathBuf>,
    /// Where Prometheus's temporary directory goes; `None`: the system's.
    pub temp_root: Option<PathBuf>,
    /// Seed of the plan, the instances' randomness and loadgen's draws.
    pub seed: u64,
    /// Multiply the range selectors, subquery ranges and offsets inside
    /// the config's PromQL by the time scale (see [`crate::ranges`]);
    /// `false` sends the queries exactly as Kayenta would.
    pub scale_ranges: bool,
    /// Which step the release is in, for progress displays and tests.
    pub watch: StepWatch,
    /// How goldengoose is run (`canarylab goldengoose`, or a binary).
    pub goldengoose: GooseCommand,
    /// Multiplies the scenario's request rate (see
    /// [`ReleasePlan::with_rate_scale`](crate::plan::ReleasePlan::with_rate_scale));
    /// 1 keeps it.
    pub rate_scale: f64,
    /// How a failed Prometheus query is retried before the step fails.
    pub prometheus_retry: prom::Retry,
    /// Release by an Argo Rollouts or Flagger file's rules instead of the
    /// scenario's Kayenta pipeline.
    pub peer: Option<PeerAnalysis>,
}

/// An Argo Rollouts or Flagger analysis (a `Rollout` and its
/// `AnalysisTemplate`s, or a `Canary` and its `MetricTemplate`s), read.
#[derive(Debug, Clone)]
pub struct PeerAnalysis {
    /// Its name in results (the file's stem).
    pub name: String,
    /// The documents read.
    pub bundle: peers::Bundle,
}

impl PeerAnalysis {
    /// Reads `text` (multi-document YAML; kinds told by `kind`), `file`
    /// naming it in errors, as `name` in results.
    pub fn from_yaml(name: &str, file: &str, text: &str) -> Result<Self, ReleaseError> {
        let bad = |error| ReleaseError::Peer {
            name: name.to_string(),
            error,
        };
        let bundle = peers::load(file, text).map_err(bad)?;
        bundle.peer().map_err(bad)?;
        Ok(PeerAnalysis {
            name: name.to_string(),
            bundle,
        })
    }
}

/// The step a running release is in, a [`tokio::sync::watch`] channel:
/// clones share one state, and a subscriber awaits changes instead of
/// polling.
#[derive(Debug, Clone)]
pub struct StepWatch(Arc<watch::Sender<Option<Step>>>);

impl Default for StepWatch {
    fn default() -> Self {
        StepWatch(Arc::new(watch::Sender::new(None)))
    }
}

impl StepWatch {
    /// The current step (`None` before the release starts).
    pub fn get(&self) -> Option<Step> {
        *self.0.borrow()
    }

    /// A receiver that sees every later step (`changed`, `wait_for`).
    pub fn subscribe(&self) -> watch::Receiver<Option<Step>> {
        self.0.subscribe()
    }

    /// Resolves once the release is in `step` (at once if it is now).
    /// A step left before this looks again is missed: put a timeout on it.
    pub async fn reached(&self, step: Step) {
        let mut rx = self.subscribe();
        // Err only if the sender is gone, and this holds it.
        let _ = rx.wait_for(|s| *s == Some(step)).await;
    }

    pub(super) fn set(&self, step: Step) {
        self.0.send_replace(Some(step));
    }
}

impl ReleaseOptions {
    /// Defaults: system temp dir, Prometheus from `$CANARYLAB_PROMETHEUS`
    /// or `PATH`, seed 1, range selectors scaled; goldengoose run by
    /// `goldengoose`.
    pub fn new(time_scale: f64, goldengoose: GooseCommand) -> Self {
        ReleaseOptions {
            time_scale,
            prometheus: None,
            temp_root: None,
            seed: 1,
            scale_ranges: true,
            watch: StepWatch::default(),
            goldengoose,
            rate_scale: 1.0,
            prometheus_retry: prom::Retry::DEFAULT,
            peer: None,
        }
    }
}
