//! Running a [`Plan`]: the open-loop scheduler, the connection workers, the
//! weight schedule and the interval ticker. Everything is spawned on the
//! caller's tokio runtime and torn down before [`run`] returns.

use std::collections::VecDeque;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::{HeaderName, HeaderValue};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::client::{self, Conn, Route};
use crate::control::{Picker, lock};
use crate::plan::{Arrival, Endpoint, Targets};
use crate::stats::{ErrorKind, Outcome, Recorder, ReportHeader};
use crate::{Control, Error, Plan, Report};

/// A closed-loop worker that cannot connect waits this long before trying
/// again, so a dead backend does not turn into a busy loop of refused connects.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// How often intervals are rolled and progress is published.
const TICK: Duration = Duration::from_millis(500);

/// Runs the plan until its duration or request count is reached or
/// `control.stop()` is called, and returns the report. In-flight requests
/// finish (bounded by the timeout) before it returns. Fails only on bad
/// input, before any request is sent; failing backends are counted, not fatal.
pub async fn run(plan: Plan, control: Control) -> Result<Report, Error> {
    plan.validate()?;
    let (routes, names, initial, gateway) = match &plan.targets {
        Targets::Weighted(ts) => {
            let mut routes = Vec::with_capacity(ts.len());
            for t in ts {
                routes.push(resolve("--target", &t.endpoint).await?);
            }
            let names: Vec<(String, String)> = ts
                .iter()
                .map(|t| (t.name.clone(), t.endpoint.url.clone()))
                .collect();
            (routes, names, ts.iter().map(|t| t.weight).collect(), None)
        }
        Targets::Gateway { endpoint, header } => {
            let h = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                Error::invalid("--version-header", header, "not a valid header name")
            })?;
            (
                vec![resolve("--gateway", endpoint).await?],
                Vec::new(),
                Vec::new(),
                Some((endpoint.url.clone(), h)),
            )
        }
    };
    control.install(names.iter().map(|(n, _)| n.clone()).collect(), initial)?;

    let start = Instant::now();
    let mut recorder = Recorder::new(
        start,
        plan.interval,
        plan.late_after,
        names,
        gateway.as_ref().map(|(u, _)| u.clone()),
    );
    if gateway.is_none() {
        control.take_weight_log();
        recorder.record_weights(start, control.weights());
        // The first step holds from the very first request, so apply it here
        // rather than in the schedule task, which may start a little later.
        if let Some(first) = plan.schedule.first() {
            control.apply_step(&first.weights, "--step 1")?;
        }
    }
    let shared = Arc::new(Shared {
        routes,
        version_header: gateway.map(|(_, h)| h),
        recorder: Mutex::new(recorder),
        control: control.clone(),
        timeout: plan.timeout,
        closing: AtomicBool::new(false),
        queue: Mutex::new(VecDeque::new()),
        queue_notify: tokio::sync::Notify::new(),
        idle: AtomicUsize::new(0),
        backlog: plan.backlog,
        issued: AtomicU64::new(0),
        max_requests: plan.requests,
    });

    let mut background = JoinSet::new();
    background.spawn(ticker(shared.clone()));
    if !plan.schedule.is_empty() {
        background.spawn(schedule(shared.clone(), plan.schedule.clone(), start));
    }

    let deadline = plan.duration.map(|d| start + d);
    // Threads of our own are not aborted with the run's future: if that future
    // is dropped mid-run, this tells their workers to finish.
    let _close_on_drop = CloseOnDrop(shared.clone());
    let roles: Vec<Role> = (0..plan.connections)
        .map(|i| match plan.arrival {
            Arrival::ClosedLoop => Role::Closed {
                seed: plan.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            },
            Arrival::Constant(_) | Arrival::Poisson(_) => Role::Open,
        })
        .collect();
    let mut workers = spawn_workers(&shared, &roles, plan.threads);
    match &plan.arrival {
        Arrival::ClosedLoop => {
            tokio::select! {
                _ = sleep_until(deadline) => {}
                _ = control.stopped() => {}
                _ = join_all(&mut workers) => {}
            }
        }
        Arrival::Constant(profile) | Arrival::Poisson(profile) => {
            let poisson = matches!(plan.arrival, Arrival::Poisson(_));
            schedule_arrivals(&shared, profile, poisson, plan.seed, start, deadline).await;
        }
    }
    let load_end = Instant::now();
    shared.closing.store(true, Ordering::SeqCst);
    shared.queue_notify.notify_waiters();
    // Requests already due still go out if a connection frees up within the
    // timeout; only what is left after that counts as dropped.
    let grace = load_end + plan.timeout;
    while !lock(&shared.queue).is_empty() && Instant::now() < grace && !control.is_stopped() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left: Vec<Job> = lock(&shared.queue).drain(..).collect();
    {
        let mut rec = lock(&shared.recorder);
        for job in left {
            rec.record_dropped(job.target, 1, load_end);
        }
    }
    join_all(&mut workers).await;
    background.abort_all();
    join_all(&mut background).await;

    let end = Instant::now();
    let header = ReportHeader {
        mode: plan.arrival.name().into(),
        target_rate: match &plan.arrival {
            Arrival::Constant(p) | Arrival::Poisson(p) => Some(p.rate_at(0.0)),
            Arrival::ClosedLoop => None,
        },
        connections: plan.connections,
        seed: plan.seed,
    };
    let mut rec = lock(&shared.recorder);
    for (at, w) in control.take_weight_log() {
        rec.record_weights(at, w);
    }
    control.set_progress(rec.progress(end));
    control.set_prometheus_text(rec.prometheus());
    Ok(rec.finish(load_end, end, header))
}

/// What one connection worker does.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Closed loop, choosing targets with its own seeded generator.
    Closed { seed: u64 },
    /// Open loop, taking due requests from the shared queue.
    Open,
}

async fn work(shared: Arc<Shared>, role: Role) {
    // The worker (its timer) is made here, on the runtime that will poll it.
    let w = Worker::new(shared);
    match role {
        Role::Closed { seed } => closed_loop(w, seed).await,
        Role::Open => open_loop(w).await,
    }
}

/// Starts one worker per role, dealt round-robin over `threads` threads: the
/// first share on the caller's runtime, each other share on a thread of the
/// blocking pool running a single-threaded runtime of its own (wrk's model:
/// one event loop per thread, no work stealing, no cross-thread wake-ups).
/// If such a runtime cannot be built, its share runs on the caller's runtime.
fn spawn_workers(shared: &Arc<Shared>, roles: &[Role], threads: usize) -> JoinSet<()> {
    let threads = threads.clamp(1, roles.len().max(1));
    let mut workers = JoinSet::new();
    for t in 1..threads {
        let mine: Vec<Role> = roles.iter().skip(t).step_by(threads).copied().collect();
        let built = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match built {
            Ok(rt) => {
                let shared = shared.clone();
                workers.spawn_blocking(move || {
                    rt.block_on(async move {
                        let mut set = JoinSet::new();
                        for role in mine {
                            set.spawn(work(shared.clone(), role));
                        }
                        join_all(&mut set).await;
                    });
                });
            }
            Err(_) => {
                for role in mine {
                    workers.spawn(work(shared.clone(), role));
                }
            }
        }
    }
    for role in roles.iter().step_by(threads) {
        workers.spawn(work(shared.clone(), *role));
    }
    workers
}

/// Sets `closing` when dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.closing.store(true, Ordering::SeqCst);
        self.0.queue_notify.notify_waiters();
    }
}

async fn resolve(flag: &'static str, e: &Endpoint) -> Result<Route, Error> {
    let problem = |p: String| Error::Resolve {
        host: e.host.clone(),
        port: e.port,
        problem: p,
    };
    let addrs: Vec<_> = tokio::net::lookup_host((e.host.as_str(), e.port))
        .await
        .map_err(|err| problem(err.to_string()))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| problem("no addresses".into()))?;
    // The request is written byte for byte: check what goes into it.
    e.path
        .parse::<hyper::Uri>()
        .map_err(|err| Error::invalid(flag, &e.url, format!("bad path: {err}")))?;
    HeaderValue::from_str(&e.authority)
        .map_err(|err| Error::invalid(flag, &e.url, format!("bad host: {err}")))?;
    Ok(Route::new(addr, &e.path, &e.authority))
}

#[derive(Debug)]
struct Job {
    target: usize,
    intended: Instant,
}

#[derive(Debug)]
struct Shared {
    routes: Vec<Route>,
    version_header: Option<HeaderName>,
    recorder: Mutex<Recorder>,
    control: Control,
    timeout: Duration,
    closing: AtomicBool,
    /// Open loop: requests due but not yet started.
    queue: Mutex<VecDeque<Job>>,
    queue_notify: tokio::sync::Notify,
    /// Open loop: workers waiting for a job.
    idle: AtomicUsize,
    backlog: usize,
    issued: AtomicU64,
    max_requests: Option<u64>,
}

impl Shared {
    /// Takes one request from the `--requests` budget.
    fn take_ticket(&self) -> bool {
        match self.max_requests {
            Some(max) => self.issued.fetch_add(1, Ordering::Relaxed) < max,
            None => true,
        }
    }

    fn dispatch(&self, job: Job, now: Instant) {
        let mut q = lock(&self.queue);
        if q.len() >= self.backlog + self.idle.load(Ordering::SeqCst) {
            drop(q);
            lock(&self.recorder).record_dropped(job.target, 1, now);
            return;
        }
        q.push_back(job);
        drop(q);
        self.queue_notify.notify_one();
    }
}

struct Worker {
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
    timer: Pin<Box<Sleep>>,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        let conns = shared.routes.iter().map(|_| None).collect();
        Worker {
            shared,
            conns,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Sends one request to `target` and records it; returns its error, if
    /// any. `intended` is the open-loop send time; closed loop passes `None`
    /// (intended = actual send time, and one clock read less).
    async fn execute(&mut self, target: usize, intended: Option<Instant>) -> Option<ErrorKind> {
        let route_index = if self.shared.version_header.is_some() {
            0
        } else {
            target
        };
        let sent = Instant::now();
        let intended = intended.unwrap_or(sent);
        let timeout = self.shared.timeout;
        let deadline = sent + timeout;
        // Re-registering a timer costs more than a request's bookkeeping, so
        // the timer is moved only when it would fire more than a tenth of the
        // timeout after this request's deadline; an early fire just re-arms it.
        let armed = self.timer.deadline().into_std();
        if armed < deadline || armed > deadline + timeout / 10 {
            self.timer.as_mut().reset((deadline + timeout / 20).into());
        }
        let (Some(route), Some(slot)) = (
            self.shared.routes.get(route_index),
            self.conns.get_mut(route_index),
        ) else {
            return Some(ErrorKind::Other);
        };
        let result = {
            let mut exchange = pin!(client::request(
                slot,
                route,
                self.shared.version_header.as_ref()
            ));
            loop {
                tokio::select! {
                    biased;
                    r = &mut exchange => break r,
                    _ = self.timer.as_mut() => {
                        if Instant::now() >= deadline {
                            break Err(ErrorKind::Timeout);
                        }
                        self.timer.as_mut().reset(deadline.into());
                    }
                }
            }
        };
        if result.is_err() {
            // A timed-out request leaves its connection mid-exchange: drop it.
            *slot = None;
        }
        let done = Instant::now();
        let error = result.as_ref().err().copied();
        let outcome = Outcome {
            target,
            intended,
            sent,
            done,
            result,
        };
        lock(&self.shared.recorder).record(&outcome);
        error
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

async fn closed_loop(mut w: Worker, seed: u64) {
    let control = w.shared.control.clone();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut picker = Picker::new(&control);
    while !w.shared.closing.load(Ordering::Relaxed) && w.shared.take_ticket() {
        let target = picker.pick(&control, rng.random::<f64>());
        if w.execute(target, None).await == Some(ErrorKind::Connect) {
            tokio::time::sleep(CONNECT_BACKOFF).await;
        }
    }
}

async fn open_loop(mut w: Worker) {
    let shared = w.shared.clone();
    loop {
        let job = lock(&shared.queue).pop_front();
        if let Some(job) = job {
            w.execute(job.target, Some(job.intended)).await;
            continue;
        }
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        shared.idle.fetch_add(1, Ordering::SeqCst);
        let mut notified = pin!(shared.queue_notify.notified());
        notified.as_mut().enable();
        let ready = !lock(&shared.queue).is_empty() || shared.closing.load(Ordering::SeqCst);
        if !ready {
            notified.await;
        }
        shared.idle.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Open loop: hands out requests at their intended times, whether or not
/// earlier ones have finished. Intended times are computed, never taken from
/// the clock, so a stalled server or a late wake-up shows up in corrected
/// latency instead of silently lowering the rate.
async fn schedule_arrivals(
    shared: &Shared,
    profile: &crate::RateProfile,
    poisson: bool,
    seed: u64,
    start: Instant,
    deadline: Option<Instant>,
) {
    let control = &shared.control;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut picker = Picker::new(control);
    let gateway = shared.version_header.is_some();
    let mut next = start;
    let mut burst = 0u32;
    loop {
        if control.is_stopped() || deadline.is_some_and(|d| next >= d) || !shared.take_ticket() {
            return;
        }
        let now = Instant::now();
        if next > now {
            burst = 0;
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = control.stopped() => return,
            }
        }
        let target = if gateway {
            0
        } else {
            picker.pick(control, rng.random::<f64>())
        };
        shared.dispatch(
            Job {
                target,
                intended: next,
            },
            now.max(next),
        );
        let rate = profile.rate_at(next.saturating_duration_since(start).as_secs_f64());
        let gap = if poisson {
            // 1 - u is in (0, 1], so the log is finite.
            -(1.0 - rng.random::<f64>()).ln() / rate
        } else {
            1.0 / rate
        };
        next += Duration::from_secs_f64(gap.clamp(0.0, 3600.0));
        burst += 1;
        if burst & 255 == 0 {
            // Catching up after a stall: let the workers run on a single-threaded runtime.
            tokio::task::yield_now().await;
        }
    }
}

async fn schedule(shared: Arc<Shared>, steps: Vec<crate::WeightStep>, start: Instant) {
    let mut at = start;
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep_until(at.into()).await;
        }
        // Steps were validated with the plan, but Control::set_weights may
        // have changed weights since; a step that no longer applies is skipped.
        if i > 0 {
            let _ = shared
                .control
                .apply_step(&step.weights, &format!("--step {}", i + 1));
        }
        match step.duration {
            Some(d) => at += d,
            None => return,
        }
    }
}

async fn ticker(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let log = shared.control.take_weight_log();
        let now = Instant::now();
        let progress = {
            let mut rec = lock(&shared.recorder);
            for (at, w) in log {
                rec.record_weights(at, w);
            }
            rec.roll(now);
            (rec.progress(now), rec.prometheus())
        };
        shared.control.set_progress(progress.0);
        shared.control.set_prometheus_text(progress.1);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Waits for every task of the set; cancel-safe, so it can sit in a select.
async fn join_all(set: &mut JoinSet<()>) {
    while set.join_next().await.is_some() {}
}
