//! One goldengoose instance of a local release: its config, starting it
//! on its reserved listener, and waiting for it to be ready as a kubelet's
//! readiness probe would.
//!
//! Not for: which instances exist or serve (`running.rs`), nor the
//! process itself (`crate::local::goose`).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::context::Context;
use super::running::{Slot, Track};
use super::{ReleaseError, Step};
use crate::cancel::cancelled;
use crate::local::goose::Goose;

/// The goldengoose config of instance `index` of `track`: the plan's, with
/// a seed of its own so replicas differ.
pub(super) fn instance_config(ctx: &Context<'_>, track: Track, index: u64) -> goldengoose::Config {
    let plan = ctx.plan;
    let mut config = match track {
        Track::Production => plan.production.clone(),
        Track::Baseline => plan.baseline.clone(),
        Track::Canary | Track::Next => plan.canary.clone(),
    };
    config.version = track.label().to_string();
    // The Istio sidecar's families too, when the track's names allow
    // (always for a peer's analysis: checked when planned).
    config.istio = ctx.names.istio_of(track).ok();
    config.seed = config
        .seed
        .wrapping_add(1000 * (index + 1))
        .wrapping_add(track as u64);
    config
}

pub(super) async fn start_slot(
    ctx: &Context<'_>,
    slot: &mut Slot,
    config: goldengoose::Config,
) -> Result<(), ReleaseError> {
    let listener = slot
        .listener
        .take()
        .ok_or_else(|| ReleaseError::Task(format!("{} has no listener", slot.name)))?;
    let goose = Goose::spawn_on(
        &ctx.options.goldengoose,
        &slot.name,
        listener,
        &config,
        &ctx.supervision(),
    )
    .await?;
    slot.goose = Some(goose);
    Ok(())
}

/// Waits until the instance has been up `min_up` and `/readyz` answers
/// 200, at most `timeout`.
/// `true` on `cancel` ends the wait at once.
pub(super) async fn wait_ready(
    slot: &Slot,
    min_up: Duration,
    timeout: Duration,
    cancel: &watch::Receiver<bool>,
) -> Result<(), ReleaseError> {
    tokio::select! {
        ready = probe_until_ready(slot, min_up, timeout) => ready,
        () = cancelled(cancel) => Err(ReleaseError::Interrupted {
            step: Step::Deploy,
            detail: format!("while waiting for {} to become ready", slot.name),
        }),
    }
}

/// Probes the instance every 50 ms, as a kubelet's readiness probe does.
async fn probe_until_ready(
    slot: &Slot,
    min_up: Duration,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let Some(goose) = &slot.goose else {
        return Err(ReleaseError::Task(format!("{} is not running", slot.name)));
    };
    let started = Instant::now();
    loop {
        // Up long enough since its last (re)start, and answering 200.
        if goose.up_for().is_some_and(|up| up >= min_up) && goose.is_ready().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let why = match (goose.exits(), goose.last_exit()) {
                (0, _) | (_, None) => "/readyz never answered 200".to_string(),
                (n, Some(last)) => format!(
                    "it exited {n} time{} and was restarted (a crash loop); last: {last}",
                    if n == 1 { "" } else { "s" }
                ),
            };
            return Err(ReleaseError::NotReady {
                instance: slot.name.clone(),
                waited: timeout,
                why,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
