//! Carrying out a local release's decision: the rolling promotion of
//! production (undone when it fails part-way), the clean-up after it, and
//! the rollback; see the module docs of [`super`].
//!
//! Not for: when these happen (the controller says, the driver runs
//! them).

use std::time::Duration;

use super::context::Context;
use super::instance::{instance_config, start_slot, wait_ready};
use super::running::{Running, Track, indices};
use super::{Promotion, ReleaseError, ReleaseRecord, Step};
use crate::cancel::is_cancelled;
use crate::plan::Split;

/// Traffic back to production, canary and baseline stopped.
pub(super) async fn rollback(running: &mut Running) -> Result<(), (Step, ReleaseError)> {
    let all_production = Split {
        production: 100.0,
        baseline: 0.0,
        canary: 0.0,
    };
    running
        .set_weights(all_production)
        .map_err(|e| (Step::Rollback, e))?;
    // Let requests already assigned to the canary finish before it stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..running.slots.len() {
        if matches!(running.slots[i].track, Track::Canary | Track::Baseline) {
            running.slots[i].serving = false;
            running.stop_slot(i).await;
        }
    }
    running.update_targets().map_err(|e| (Step::Rollback, e))
}

/// The rolling replacement of production, one instance at a time; see the
/// module docs. `split` is the split in force at the decision. The old
/// instances are those running (a peer's `dynamicStableScale` may have
/// stopped some): each new one takes the next old one's place, and the
/// new ones beyond them (production back to its replicas) are added.
pub(super) async fn promote(
    ctx: &Context<'_>,
    running: &mut Running,
    record: &mut ReleaseRecord,
    split: Split,
) -> Result<(), (Step, ReleaseError)> {
    let olds: Vec<usize> = indices(running, Track::Production)
        .into_iter()
        .filter(|&i| running.slots[i].goose.is_some())
        .collect();
    let news: Vec<usize> = indices(running, Track::Next);
    let of = news.len() as u32;
    record.promotion = Some(Promotion {
        replaced: 0,
        of,
        undone: false,
    });
    for (k, &new) in news.iter().enumerate() {
        let step = async {
            if is_cancelled(ctx.cancel) {
                return Err(ReleaseError::Interrupted {
                    step: Step::Promote,
                    detail: "Ctrl-C".into(),
                });
            }
            let config = instance_config(ctx, Track::Next, k as u64);
            start_slot(ctx, &mut running.slots[new], config).await?;
            wait_ready(
                &running.slots[new],
                ctx.min_ready(),
                ctx.ready_timeout(),
                ctx.cancel,
            )
            .await?;
            running.update_targets()?;
            if let Some(&old) = olds.get(k) {
                running.slots[old].serving = false;
            }
            running.slots[new].serving = true;
            running.set_weights(split)
        };
        if let Err(cause) = step.await {
            let replaced = k as u32;
            undo_promotion(running, split, &olds, &news).await;
            record.promotion = Some(Promotion {
                replaced,
                of,
                undone: true,
            });
            let cause = match cause {
                ReleaseError::Interrupted { .. } => ReleaseError::Interrupted {
                    step: Step::Promote,
                    detail: format!(
                        "undone after {replaced} of {of} production instances were replaced; production serves the current version"
                    ),
                },
                other => ReleaseError::PromotionUndone {
                    replaced,
                    of,
                    cause: Box::new(other),
                },
            };
            return Err((Step::Promote, cause));
        }
        record.promotion = Some(Promotion {
            replaced: k as u32 + 1,
            of,
            undone: false,
        });
    }
    Ok(())
}

/// After a promotion (production is the new version everywhere): all
/// traffic to it, then the old instances, the canary and the baseline go.
pub(super) async fn cleanup(running: &mut Running) -> Result<(), (Step, ReleaseError)> {
    let all_production = Split {
        production: 100.0,
        baseline: 0.0,
        canary: 0.0,
    };
    for slot in running
        .slots
        .iter_mut()
        .filter(|s| matches!(s.track, Track::Canary | Track::Baseline))
    {
        slot.serving = false;
    }
    running
        .set_weights(all_production)
        .map_err(|e| (Step::Promote, e))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..running.slots.len() {
        if !running.slots[i].serving {
            running.stop_slot(i).await;
        }
    }
    running.update_targets().map_err(|e| (Step::Promote, e))
}

/// Every old production instance serving again, the new ones stopped.
async fn undo_promotion(running: &mut Running, split: Split, olds: &[usize], news: &[usize]) {
    for &i in olds {
        running.slots[i].serving = true;
    }
    for &i in news {
        running.slots[i].serving = false;
    }
    let _ = running.set_weights(split);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for &i in news {
        running.stop_slot(i).await;
    }
    let _ = running.update_targets();
}
