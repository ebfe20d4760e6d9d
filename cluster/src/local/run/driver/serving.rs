//! Which of the driver's pods serve: the traffic shift (production
//! ready, then loadgen with one target per instance), a peer's canary or
//! production (Argo's `dynamicStableScale`) scale-down, production's
//! pods ready before a weight brings traffic back to them, ready pods
//! reported (and a late canary or production pod joining the traffic),
//! and why a deploy that timed out was not ready.
//!
//! Not for: the weights a split gives each instance (`running.rs`), nor
//! the promotion and rollback (`promote.rs`).

use std::time::Duration;

use loadgen::{Arrival, Control, RateProfile, Target, Targets};
use release::{Event, Track as PodTrack};

use super::Driver;
use crate::local::run::instance::wait_ready;
use crate::local::run::running::{Load, Running, Track, indices};
use crate::local::run::{ReleaseError, ReleaseRecord, Step};
use crate::plan::Split;

impl Driver<'_, '_> {
    /// The traffic shift: production must serve, then loadgen starts with
    /// one target per instance (the reserved ones at 0).
    pub(super) async fn shift_traffic(
        &mut self,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<(), (Step, ReleaseError)> {
        let ctx = self.ctx;
        let plan = ctx.plan;
        for slot in running
            .slots
            .iter()
            .filter(|s| s.track == Track::Production && s.goose.is_some())
        {
            wait_ready(slot, ctx.min_ready(), ctx.ready_timeout(), ctx.cancel)
                .await
                .map_err(|e| (Step::Deploy, e))?;
        }
        for slot in running.slots.iter_mut() {
            slot.serving = slot.goose.is_some() && slot.track != Track::Next;
        }
        ctx.options.watch.set(Step::Traffic);
        let load_targets = running
            .weights(self.split)
            .iter()
            .zip(&running.slots)
            .map(|((name, w), slot)| Target::parse(&format!("{name}=http://{}/@{w}", slot.addr)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (Step::Traffic, e.into()))?;
        let mut load_plan = loadgen::Plan::new(
            Targets::Weighted(load_targets),
            Arrival::Constant(RateProfile::constant(plan.request_rate)),
        );
        let analysis_time = plan.schedule.warmup + plan.schedule.lifetime;
        // Generous: the release stops the load when it is done.
        load_plan.duration =
            Some(analysis_time * 2 + ctx.ready_timeout() * 4 + Duration::from_secs(60));
        load_plan.loopback_only = true;
        // Open loop: enough connections for 100 ms of arrivals in flight (the
        // catalog's latencies are 50 ms at the median), so a raised
        // --rate-scale is not capped by the pool (64 x 20 req/s at 50 ms).
        load_plan.connections = ((plan.request_rate * 0.1).ceil() as usize).clamp(64, 2048);
        // Per-step counts, so the canary's requests up to the decision can be
        // told from those after it.
        load_plan.interval = plan.step;
        load_plan.seed = ctx.options.seed;
        let control = Control::new();
        running.load = Some(Load {
            control: control.clone(),
            task: Some(tokio::spawn(loadgen::run(load_plan, control))),
        });
        // The windows count from here: the controller's time of the shift,
        // which is when loadgen started (it was asked for at `now`).
        self.traffic_at = Some(self.now);
        record.traffic_at = Some(self.unix(self.now));
        ctx.options.watch.set(Step::Analysis);
        Ok(())
    }

    /// Why the canary or baseline is not ready: the first such slot still
    /// waiting, its exits and last exit.
    pub(super) fn not_ready(&self, running: &Running) -> Option<ReleaseError> {
        let i = self.pods.first_starting()?;
        let slot = running.slots.get(i)?;
        let goose = slot.goose.as_ref()?;
        let why = match (goose.exits(), goose.last_exit()) {
            (0, _) | (_, None) => "/readyz never answered 200".to_string(),
            (n, Some(last)) => format!(
                "it exited {n} time{} and was restarted (a crash loop); last: {last}",
                if n == 1 { "" } else { "s" }
            ),
        };
        Some(ReleaseError::NotReady {
            instance: slot.name.clone(),
            waited: self.t0.elapsed(),
            why,
        })
    }

    /// Stops `count` pods of `track` (a peer's `setCanaryScale` down, or
    /// Argo's `dynamicStableScale` shrinking production): not yet ready
    /// ones first, then the last started (a ReplicaSet's scale-down
    /// ranking: not ready before ready, newer before older). Each stops
    /// serving first, so its requests in flight drain; the track's share
    /// goes to the rest, and Prometheus stops scraping them. A baseline is
    /// never scaled by a peer: nothing happens.
    pub(super) async fn stop_pods(
        &mut self,
        running: &mut Running,
        track: PodTrack,
        count: u32,
    ) -> Result<(), ReleaseError> {
        let ours = match track {
            PodTrack::Canary => Track::Canary,
            PodTrack::Production => Track::Production,
            PodTrack::Baseline => return Ok(()),
        };
        let not_ready: Vec<usize> = self
            .pods
            .starting_slots()
            .into_iter()
            .filter(|&i| running.slots[i].track == ours)
            .collect();
        let serving = indices(running, ours)
            .into_iter()
            .rev()
            .filter(|&i| running.slots[i].goose.is_some() && !not_ready.contains(&i));
        let mut victims: Vec<usize> = not_ready.iter().copied().chain(serving).collect();
        victims.truncate(count as usize);
        for &i in &victims {
            self.pods.forget(i);
            running.slots[i].serving = false;
        }
        running.set_weights(self.split)?;
        for i in victims {
            running.stop_slot(i).await;
        }
        running.update_targets()
    }

    /// Before `split` brings traffic back to production (Argo's
    /// `dynamicStableScale`: a lower canary weight, the abort's weight 0):
    /// production's pods started and not yet ready are waited for (at
    /// most the ready timeout each, as Argo's `checkReplicasAvailable`
    /// holds the weight) and serve from then on. One still not ready is
    /// left out of the traffic; it joins once ready (see
    /// [`Driver::look_at_pods`]).
    pub(super) async fn production_ready_for(&mut self, running: &mut Running, split: Split) {
        if running.load.is_none() || split.production <= self.split.production {
            return;
        }
        let ctx = self.ctx;
        let starting: Vec<usize> = self
            .pods
            .starting_slots()
            .into_iter()
            .filter(|&i| running.slots[i].track == Track::Production)
            .collect();
        for i in starting {
            let slot = &running.slots[i];
            if wait_ready(slot, ctx.min_ready(), ctx.ready_timeout(), ctx.cancel)
                .await
                .is_ok()
            {
                running.slots[i].serving = true;
            }
        }
    }

    /// Reports pods that became ready or crashed (also after they were
    /// ready) since the last look; a canary or production pod ready after
    /// the traffic shift (a peer's scale-up) starts serving (`true`: the
    /// weights must be set again).
    pub(super) async fn look_at_pods(&mut self, running: &mut Running) -> (Vec<Event>, bool) {
        let min_up = self.ctx.min_ready();
        let before = self.pods.ready_slots();
        let slots = &running.slots;
        let events = self
            .pods
            .look(min_up, |i| slots.get(i).and_then(|s| s.goose.as_ref()))
            .await;
        let mut serve = false;
        if running.load.is_some() {
            for i in self.pods.ready_slots() {
                let slot = &mut running.slots[i];
                let scaled = matches!(slot.track, Track::Canary | Track::Production);
                if !before.contains(&i) && scaled && !slot.serving {
                    slot.serving = true;
                    serve = true;
                }
            }
        }
        (events, serve)
    }
}
