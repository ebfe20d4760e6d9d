//! What the local mode tells a release controller about its pods, as a
//! kubelet and the Deployment controller would: [`Event::PodReady`] once a
//! started goldengoose process has been up for the readiness time and its
//! `/readyz` answers 200, and [`Event::PodCrashed`] for every unexpected
//! exit of its process, before it is ready (a crash loop) and after (a pod
//! that dies while serving; [`Goose`] restarts it, as a kubelet restarts a
//! crashed container).

use std::time::Duration;

use release::{Event, Track};

use crate::local::goose::Goose;

/// One started pod: its slot in the caller's list, its track, and the
/// exits already reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watched {
    slot: usize,
    track: Track,
    exits: u32,
}

impl Watched {
    /// One [`Event::PodCrashed`] per exit of `goose`'s process not
    /// reported yet.
    fn report_exits(&mut self, goose: &Goose, events: &mut Vec<Event>) {
        let exits = goose.exits();
        for _ in self.exits..exits {
            events.push(Event::PodCrashed { track: self.track });
        }
        self.exits = self.exits.max(exits);
    }
}

/// The pods a controller started: those not yet reported ready, and those
/// reported ready, whose crashes are still reported.
#[derive(Debug, Clone, Default)]
pub struct PodWatch {
    starting: Vec<Watched>,
    ready: Vec<Watched>,
}

impl PodWatch {
    /// A pod of `track` was started in `slot` (a fresh process: no exits
    /// seen yet).
    pub fn started(&mut self, slot: usize, track: Track) {
        self.forget(slot);
        self.starting.push(Watched {
            slot,
            track,
            exits: 0,
        });
    }

    /// Stops watching `slot` (its process was stopped on purpose).
    pub fn forget(&mut self, slot: usize) {
        self.starting.retain(|w| w.slot != slot);
        self.ready.retain(|w| w.slot != slot);
    }

    /// The first started pod not yet reported ready.
    pub fn first_starting(&self) -> Option<usize> {
        self.starting.first().map(|w| w.slot)
    }

    /// Slots started and not yet reported ready.
    pub fn starting_slots(&self) -> Vec<usize> {
        self.starting.iter().map(|w| w.slot).collect()
    }

    /// Slots reported ready and still watched.
    pub fn ready_slots(&self) -> Vec<usize> {
        self.ready.iter().map(|w| w.slot).collect()
    }

    /// The events since the last look: one [`Event::PodCrashed`] per exit
    /// of a watched pod's process not reported yet (also after it was
    /// ready), and [`Event::PodReady`] for each starting pod up for at
    /// least `min_up` whose `/readyz` answers 200. `goose` gives a slot's
    /// process handle; a slot without one (stopped) is forgotten.
    pub async fn look<'g>(
        &mut self,
        min_up: Duration,
        goose: impl Fn(usize) -> Option<&'g Goose>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut ready = Vec::with_capacity(self.ready.len());
        for mut w in std::mem::take(&mut self.ready) {
            let Some(g) = goose(w.slot) else {
                continue;
            };
            w.report_exits(g, &mut events);
            ready.push(w);
        }
        let mut starting = Vec::with_capacity(self.starting.len());
        for mut w in std::mem::take(&mut self.starting) {
            let Some(g) = goose(w.slot) else {
                continue;
            };
            w.report_exits(g, &mut events);
            if g.up_for().is_some_and(|up| up >= min_up) && g.is_ready().await {
                events.push(Event::PodReady { track: w.track });
                ready.push(w);
            } else {
                starting.push(w);
            }
        }
        self.ready = ready;
        self.starting = starting;
        events
    }
}
