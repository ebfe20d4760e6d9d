//! Everything a local release starts, held in one place so one place
//! stops it: the goldengoose instances ([`Slot`]s, one per loadgen
//! target), Prometheus and loadgen ([`Running`]), and what follows from
//! which instances serve: loadgen's per-target weights for a split and
//! Prometheus's scrape targets.
//!
//! Not for: starting an instance or waiting for it (`instance.rs`), nor
//! deciding when traffic moves (the driver and `promote.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use loadgen::Control;
use tokio::task::JoinHandle;

use super::{Instance, ReleaseError};
use crate::local::goose::Goose;
use crate::plan::Split;
use crate::prom::{Prometheus, ScrapeTarget};

/// Stops loadgen when dropped, whatever happened.
pub(super) struct Load {
    pub(super) control: Control,
    pub(super) task: Option<JoinHandle<Result<loadgen::Report, loadgen::Error>>>,
}

impl Load {
    async fn finish(mut self) -> Result<loadgen::Report, ReleaseError> {
        self.control.stop();
        let task = self
            .task
            .take()
            .ok_or_else(|| ReleaseError::Task("loadgen".into()))?;
        task.await
            .map_err(|e| ReleaseError::Task(e.to_string()))?
            .map_err(Into::into)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Track {
    Production,
    Baseline,
    Canary,
    /// The new version replacing production on promotion.
    Next,
}

impl Track {
    /// goldengoose's `version` label, which the queries select on.
    pub(super) fn label(self) -> &'static str {
        match self {
            Track::Production | Track::Next => "production",
            Track::Baseline => "baseline",
            Track::Canary => "canary",
        }
    }
}

/// One goldengoose instance: its loadgen target, its listener (held until
/// the server starts) and the server.
pub(super) struct Slot {
    pub(super) name: String,
    pub(super) track: Track,
    pub(super) addr: SocketAddr,
    pub(super) listener: Option<std::net::TcpListener>,
    pub(super) goose: Option<Goose>,
    /// Whether it takes its track's share of traffic.
    pub(super) serving: bool,
    /// Prometheus target labels beyond `track` and `slot`: the pod's
    /// labels as a cluster's Prometheus adds them.
    pub(super) labels: Vec<(&'static str, String)>,
}

/// Everything a release starts, so one place stops it.
#[derive(Default)]
pub(super) struct Running {
    pub(super) slots: Vec<Slot>,
    pub(super) prometheus: Option<Arc<Prometheus>>,
    pub(super) load: Option<Load>,
    pub(super) stepper: Option<JoinHandle<()>>,
    /// The instances stopped so far.
    pub(super) stopped: Vec<Instance>,
}

impl Running {
    pub(super) fn scrape_targets(&self) -> Vec<ScrapeTarget> {
        self.slots
            .iter()
            .filter(|s| s.goose.is_some())
            .map(|s| {
                let target = ScrapeTarget::new("goldengoose", s.addr)
                    .with_label("track", s.track.label())
                    .with_label("slot", s.name.clone());
                s.labels
                    .iter()
                    .fold(target, |t, (k, v)| t.with_label(*k, v.clone()))
            })
            .collect()
    }

    pub(super) fn update_targets(&self) -> Result<(), ReleaseError> {
        if let Some(p) = &self.prometheus {
            p.set_targets(&self.scrape_targets()).map_err(Box::new)?;
        }
        Ok(())
    }

    /// Per-target weights for `split`: each track's share divided evenly
    /// among its serving instances (a baseline share without baseline
    /// instances goes to production).
    pub(super) fn weights(&self, split: Split) -> Vec<(String, f64)> {
        let serving = |t: Track| {
            self.slots
                .iter()
                .filter(|s| {
                    s.serving
                        && (s.track == t || (t == Track::Production && s.track == Track::Next))
                })
                .count() as f64
        };
        let has_baseline = serving(Track::Baseline) > 0.0;
        let production = split.production + if has_baseline { 0.0 } else { split.baseline };
        self.slots
            .iter()
            .map(|s| {
                let share = match s.track {
                    Track::Production | Track::Next => production / serving(Track::Production),
                    Track::Baseline => split.baseline / serving(Track::Baseline),
                    Track::Canary => split.canary / serving(Track::Canary),
                };
                let w = if s.serving && share.is_finite() {
                    share
                } else {
                    0.0
                };
                (s.name.clone(), w)
            })
            .collect()
    }

    pub(super) fn set_weights(&self, split: Split) -> Result<(), ReleaseError> {
        let Some(load) = &self.load else {
            return Ok(());
        };
        let weights = self.weights(split);
        let named: Vec<(&str, f64)> = weights.iter().map(|(n, w)| (n.as_str(), *w)).collect();
        load.control.set_weights(&named)?;
        Ok(())
    }

    /// Stops slot `i`'s server (SIGTERM, drain) and records it.
    pub(super) async fn stop_slot(&mut self, i: usize) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if let Some(g) = slot.goose.take() {
            let instance = Instance {
                name: slot.name.clone(),
                track: slot.track.label().to_string(),
                pids: g.pids(),
                exits: g.exits(),
            };
            g.stop().await;
            self.stopped.push(instance);
        }
    }

    /// Stops the traffic (returning loadgen's report), Prometheus and
    /// every server. Safe to call whatever was started.
    pub(super) async fn teardown(&mut self) -> Option<Result<loadgen::Report, ReleaseError>> {
        if let Some(s) = self.stepper.take() {
            s.abort();
        }
        let report = match self.load.take() {
            Some(load) => Some(load.finish().await),
            None => None,
        };
        // The analysis thread has joined by now, so this is the last handle
        // and dropping it kills Prometheus and removes its directory.
        self.prometheus = None;
        for i in 0..self.slots.len() {
            self.stop_slot(i).await;
            self.slots[i].listener = None;
        }
        report
    }
}

pub(super) fn indices(running: &Running, track: Track) -> Vec<usize> {
    running
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.track == track)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(tracks: &[(Track, bool)]) -> Running {
        Running {
            slots: tracks
                .iter()
                .enumerate()
                .map(|(i, &(track, serving))| Slot {
                    name: format!("s{i}"),
                    track,
                    addr: SocketAddr::from(([127, 0, 0, 1], 1)),
                    listener: None,
                    goose: None,
                    serving,
                    labels: Vec::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn split(production: f64, baseline: f64, canary: f64) -> Split {
        Split {
            production,
            baseline,
            canary,
        }
    }

    #[test]
    fn shares_split_evenly_over_serving_instances() {
        let r = running(&[
            (Track::Production, true),
            (Track::Production, true),
            (Track::Baseline, true),
            (Track::Canary, true),
            (Track::Next, false),
            (Track::Next, false),
        ]);
        let w: Vec<f64> = r
            .weights(split(90.0, 5.0, 5.0))
            .iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(w, vec![45.0, 45.0, 5.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn mid_promotion_keeps_production_share() {
        let r = running(&[
            (Track::Production, false),
            (Track::Production, true),
            (Track::Canary, true),
            (Track::Next, true),
            (Track::Next, false),
        ]);
        let w: Vec<f64> = r
            .weights(split(90.0, 5.0, 5.0))
            .iter()
            .map(|x| x.1)
            .collect();
        // No baseline: its share goes to production.
        assert_eq!(w, vec![0.0, 47.5, 5.0, 47.5, 0.0]);
        let total: f64 = w.iter().sum();
        assert!((total - 100.0).abs() < 1e-9);
    }
}
