//! The handle a caller keeps while a run is going: change weights, stop the
//! run early, read progress. Cloneable and cheap; the run and every clone
//! share one state.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::Error;
use crate::plan::apply_named;

/// Locks a mutex, ignoring poisoning (a panicked worker must not hide the
/// numbers the others recorded).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A snapshot of a running load, for progress displays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Requests finished (responses and errors).
    pub requests: u64,
    /// Requests that got an HTTP response.
    pub responses: u64,
    /// Requests that failed without a response.
    pub errors: u64,
    /// Open loop: requests dropped because no connection was free.
    pub dropped: u64,
    /// Requests finished per second over the last completed interval (or so far).
    pub rate: f64,
    /// Corrected p99 latency in ms over the run so far.
    pub p99_ms: f64,
}

/// Controls a run started with [`crate::run`]: set weights while it goes,
/// stop it early, read progress. Clone it freely.
#[derive(Debug, Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stop: AtomicBool,
    stop_notify: Notify,
    weights: Mutex<WeightState>,
    /// Bumped on every weight change, so workers re-read weights only then.
    version: AtomicU64,
    progress: Mutex<Progress>,
    /// Prometheus text of the client-side view, refreshed with the progress.
    metrics: Mutex<String>,
}

#[derive(Debug, Default)]
struct WeightState {
    /// Target names, known once the run starts.
    names: Vec<String>,
    current: Arc<[f64]>,
    /// Weights set before the run started, applied (and checked) at its start.
    pending: Option<Vec<(String, f64)>>,
    /// Changes not yet logged in the report: when, and the weights by name.
    log: Vec<(Instant, Vec<(String, f64)>)>,
    /// Gateway runs have no weights to set.
    gateway: bool,
}

impl Control {
    /// A fresh handle for one run.
    pub fn new() -> Control {
        Control::default()
    }

    /// Sets the relative weights of the named targets (others keep theirs),
    /// effective for the next request. Before the run has started the
    /// weights are kept and checked when it starts.
    pub fn set_weights(&self, weights: &[(&str, f64)]) -> Result<(), Error> {
        let named: Vec<(String, f64)> = weights.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        let mut st = lock(&self.inner.weights);
        if st.gateway {
            return Err(Error::Weights {
                context: "Control::set_weights".into(),
                problem: "this run goes through a gateway, which decides the split".into(),
            });
        }
        if st.names.is_empty() {
            st.pending = Some(named);
            return Ok(());
        }
        self.apply_locked(&mut st, &named, "Control::set_weights")
    }

    /// The current weights by target name (empty before the run starts).
    pub fn weights(&self) -> Vec<(String, f64)> {
        let st = lock(&self.inner.weights);
        st.names
            .iter()
            .cloned()
            .zip(st.current.iter().copied())
            .collect()
    }

    /// Asks the run to stop: no new requests; in-flight ones finish (within
    /// the timeout) and the report is returned.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.stop_notify.notify_waiters();
    }

    /// Whether [`Control::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }

    /// The latest progress snapshot (updated about twice a second).
    pub fn progress(&self) -> Progress {
        lock(&self.inner.progress).clone()
    }

    pub(crate) fn set_progress(&self, p: Progress) {
        *lock(&self.inner.progress) = p;
    }

    /// The client-side metrics in Prometheus text format, labelled by target
    /// (refreshed about twice a second; empty before the run starts).
    pub fn prometheus_text(&self) -> String {
        lock(&self.inner.metrics).clone()
    }

    pub(crate) fn set_prometheus_text(&self, text: String) {
        *lock(&self.inner.metrics) = text;
    }

    /// Resolves once [`Control::stop`] has been called.
    pub(crate) async fn stopped(&self) {
        loop {
            let mut notified = pin!(self.inner.stop_notify.notified());
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }

    /// Called by the run at its start: installs names and initial weights,
    /// then applies weights set before the start.
    pub(crate) fn install(&self, names: Vec<String>, initial: Vec<f64>) -> Result<(), Error> {
        let mut st = lock(&self.inner.weights);
        st.gateway = names.is_empty();
        if st.gateway && st.pending.is_some() {
            return Err(Error::StepsWithGateway);
        }
        st.names = names;
        st.current = initial.into();
        st.log.clear();
        self.inner.version.fetch_add(1, Ordering::SeqCst);
        if let Some(pending) = st.pending.take() {
            self.apply_locked(&mut st, &pending, "Control::set_weights (before the start)")?;
        }
        Ok(())
    }

    /// Applies a schedule step (already validated by the plan).
    pub(crate) fn apply_step(&self, named: &[(String, f64)], context: &str) -> Result<(), Error> {
        let mut st = lock(&self.inner.weights);
        self.apply_locked(&mut st, named, context)
    }

    fn apply_locked(
        &self,
        st: &mut WeightState,
        named: &[(String, f64)],
        context: &str,
    ) -> Result<(), Error> {
        let next =
            apply_named(&st.names, &st.current, named).map_err(|problem| Error::Weights {
                context: context.to_string(),
                problem,
            })?;
        st.current = next.into();
        let snapshot = st
            .names
            .iter()
            .cloned()
            .zip(st.current.iter().copied())
            .collect();
        st.log.push((Instant::now(), snapshot));
        self.inner.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The weight version; changes whenever the weights do.
    pub(crate) fn weights_version(&self) -> u64 {
        self.inner.version.load(Ordering::Relaxed)
    }

    /// The current weights (indexed like the plan's targets) and their version.
    pub(crate) fn current_weights(&self) -> (u64, Arc<[f64]>) {
        let st = lock(&self.inner.weights);
        (
            self.inner.version.load(Ordering::SeqCst),
            st.current.clone(),
        )
    }

    /// Weight changes since the last call, for the report's log.
    pub(crate) fn take_weight_log(&self) -> Vec<(Instant, Vec<(String, f64)>)> {
        std::mem::take(&mut lock(&self.inner.weights).log)
    }
}

/// Weighted choice over a cached copy of the weights, refreshed only when
/// the control's version changes (one relaxed atomic load per request).
#[derive(Debug)]
pub(crate) struct Picker {
    version: u64,
    cumulative: Vec<f64>,
}

impl Picker {
    pub(crate) fn new(control: &Control) -> Picker {
        let mut p = Picker {
            version: u64::MAX,
            cumulative: Vec::new(),
        };
        p.refresh(control);
        p
    }

    fn refresh(&mut self, control: &Control) {
        let (version, weights) = control.current_weights();
        self.version = version;
        self.cumulative.clear();
        let mut acc = 0.0;
        for w in weights.iter() {
            acc += w;
            self.cumulative.push(acc);
        }
    }

    /// Picks a target index; `u` is uniform in [0, 1).
    pub(crate) fn pick(&mut self, control: &Control, u: f64) -> usize {
        if control.weights_version() != self.version {
            self.refresh(control);
        }
        pick_cumulative(&self.cumulative, u)
    }
}

pub(crate) fn pick_cumulative(cumulative: &[f64], u: f64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = u * total;
    // Strictly greater, so zero-weight targets (equal consecutive sums) are never picked.
    cumulative
        .iter()
        .position(|&c| c > x)
        .unwrap_or(cumulative.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_weights_never_picked() {
        let cum = [0.0, 5.0, 5.0, 10.0];
        for i in 0..1000 {
            let u = i as f64 / 1000.0;
            let t = pick_cumulative(&cum, u);
            assert!(t == 1 || t == 3, "u={u} picked {t}");
        }
        assert_eq!(pick_cumulative(&cum, 0.0), 1);
        assert_eq!(pick_cumulative(&cum, 0.5), 3);
    }

    #[test]
    fn set_weights_before_and_during() {
        let c = Control::new();
        c.set_weights(&[("b", 3.0)]).expect("kept until start");
        c.install(vec!["a".into(), "b".into()], vec![1.0, 1.0])
            .expect("install");
        assert_eq!(c.weights(), vec![("a".into(), 1.0), ("b".into(), 3.0)]);
        let mut p = Picker::new(&c);
        c.set_weights(&[("a", 0.0)]).expect("valid");
        assert_eq!(p.pick(&c, 0.0), 1, "picker sees the new weights");
        assert!(c.set_weights(&[("b", 0.0)]).is_err(), "all zero");
        assert!(c.set_weights(&[("zzz", 1.0)]).is_err(), "unknown");
        assert_eq!(c.weights()[1].1, 3.0, "refused change leaves weights alone");

        let bad = Control::new();
        bad.set_weights(&[("nope", 1.0)]).expect("kept");
        assert!(bad.install(vec!["a".into()], vec![1.0]).is_err());
    }
}
