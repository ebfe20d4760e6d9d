//! One simulated release, from commit to the end, as the Spinnaker demo
//! pipeline runs it: webhook, build (may fail), deploy canary and baseline
//! (pods start, become ready, or crash-loop until the deploy times out),
//! traffic shift (an Istio VirtualService update), warmup, Kayenta's
//! analysis intervals judged by the judge crate, then a rolling promotion
//! of production or a rollback, and cleanup.
//!
//! The decisions are [`release::kayenta::Kayenta`]'s, a sans-IO
//! controller any driver can run; this module is the simulator's driver: it carries
//! out the controller's commands in virtual time on the discrete-event
//! queue (how long a build, a pod or a promotion takes, drawn from the
//! run's seeded generator), generates the metrics the judge sees, and
//! feeds the answers back. The only randomness is the run's generator.

use judge::{Judge, MetricSetPair, Series, Workspace};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use release::kayenta::{Kayenta, KayentaSpec};
use release::peer::{PeerPlan, PeerRelease, PeerSpec};
use release::{
    Command, Controller, Event, JudgeRequest, Measurement, Outcome, ReleaseEnd, RollingUpdate,
    Split, Track,
};
use reports::model::{IntervalDetail, MetricSeries, MetricVerdict, RunDetail, Stage};
use scenarios::{BaselineKind, Regression, Scenario};

use crate::engine::{Millis, Queue, ms, secs};
use crate::metrics::{Cursor, KayentaPlan, Point};
use crate::prometheus::{Families, Plan, Resolver, Scrape};
use crate::series::{CANARY, CONTROL, Generator, TrackSpec};

pub mod candidates;

/// How a run ended (the one vocabulary of every driver).
pub type Decision = ReleaseEnd;

pub use reports::summary::RunOutcome;

/// Per-run settings derived once per scenario (and analysis).
#[derive(Debug)]
pub struct Prepared<'a> {
    scenario: &'a Scenario,
    judge: Judge,
    analysis: AnalysisSpec,
    /// The controller's queries, parsed once (see [`Prepared::with_queries`]).
    plan: Plan,
    /// The canary config's metrics, compiled once.
    metrics: KayentaPlan,
    /// Unique in the process: runs of one id scrape series of one shape
    /// (see [`SPARE_SCRAPE`]).
    id: u64,
}

/// The next [`Prepared::id`].
fn next_prepared_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    /// The series of this thread's last run (not a detail run) and its
    /// [`Prepared::id`]: the next run of the same analysis restarts them
    /// ([`Scrape::restart`]) instead of building every series and label
    /// set again, the same series in the same order, so results do not
    /// move. A study's runs of one (scenario, analysis) follow each other
    /// on a thread, in the plain and in the side-by-side loop.
    static SPARE_SCRAPE: std::cell::RefCell<Vec<(u64, Scrape)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// The metric points' memo of this thread's last run
    /// ([`World::memo_fill`]): the next run starts from its buffers,
    /// emptied, instead of growing new ones step by step.
    static SPARE_MEMO: std::cell::RefCell<Vec<[PointMemo; 2]>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Scrapes [`SPARE_SCRAPE`] keeps per thread: a side by side's candidates
/// of one scenario (each its own series when their families differ).
const SPARE_SCRAPES: usize = 8;

/// Keep `s`, the raw series of a run of [`Prepared::id`] `id`, for the
/// thread's next run of it (the oldest other one goes when there are too
/// many).
fn spare_scrape(id: u64, s: Scrape) {
    let _ = SPARE_SCRAPE.try_with(|c| {
        if let Ok(mut spare) = c.try_borrow_mut() {
            spare.retain(|(of, _)| *of != id);
            if spare.len() >= SPARE_SCRAPES {
                spare.remove(0);
            }
            spare.push((id, s));
        }
    });
}

/// What a run's raw series are: runs of one seed whose keys are equal
/// (and whose series are the same, [`candidates`]) scrape the same
/// samples.
#[derive(Debug, Clone)]
struct ScrapeKey<'a> {
    families: [Families; 2],
    traffic_at: Millis,
    control: scenarios::telemetry::TelemetryTrack,
    telemetry: &'a scenarios::telemetry::Telemetry,
}

impl PartialEq for ScrapeKey<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.families == o.families
            && self.traffic_at == o.traffic_at
            && self.control == o.control
            && (std::ptr::eq(self.telemetry, o.telemetry) || self.telemetry == o.telemetry)
    }
}

/// Which controller releases the scenario.
#[derive(Debug)]
enum AnalysisSpec {
    /// The scenario's Spinnaker/Kayenta pipeline with its canary config.
    Kayenta(KayentaSpec),
    /// Argo Rollouts' or Flagger's rules: the peer's weights and pauses
    /// replace the scenario's `[pipeline]` traffic and analysis timing;
    /// the scenario keeps the service, regression, build and deploy.
    Peer(PeerSpec),
}

impl<'a> Prepared<'a> {
    /// Resolve the scenario's judge and schedule.
    pub fn new(scenario: &'a Scenario) -> Result<Self, judge::InputError> {
        let mut judge = Judge::new(&scenario.config)?;
        judge.set_thresholds(scenario.thresholds())?;
        let spec = KayentaSpec::from_scenario(scenario, judge.thresholds());
        let layout = layout(scenario, false);
        // both plans resolve against the same series: listed once
        let resolver = Resolver::new(&layout);
        let plan = Plan::with_resolver(Kayenta::new(&spec, false).queries(), &resolver);
        let metrics = KayentaPlan::with_resolver(scenario, &layout, &resolver)?;
        Ok(Self {
            scenario,
            judge,
            analysis: AnalysisSpec::Kayenta(spec),
            plan,
            metrics,
            id: next_prepared_id(),
        })
    }

    /// The scenario released by a peer's rules (`plan`, from an Argo
    /// Rollouts or Flagger file). The scenario's judge still judges the
    /// windows of Argo's `kayenta` provider; the peer's queries are
    /// measured on the simulated Prometheus, parsed here once.
    pub fn with_peer(scenario: &'a Scenario, plan: PeerPlan) -> Result<Self, judge::InputError> {
        let mut judge = Judge::new(&scenario.config)?;
        judge.set_thresholds(scenario.thresholds())?;
        let spec = PeerSpec::from_scenario(scenario, plan);
        let mut layout = layout(scenario, true);
        layout.pods[0] = layout.pods[0].max(spec.canary_slots());
        // both plans resolve against the same series: listed once
        let resolver = Resolver::new(&layout);
        let plan = Plan::with_resolver(PeerRelease::new(&spec, false).queries(), &resolver);
        let metrics = KayentaPlan::with_resolver(scenario, &layout, &resolver)?;
        Ok(Self {
            scenario,
            judge,
            analysis: AnalysisSpec::Peer(spec),
            plan,
            metrics,
            id: next_prepared_id(),
        })
    }

    /// Whether a peer's rules (not the Kayenta pipeline) release it.
    pub fn is_peer(&self) -> bool {
        matches!(self.analysis, AnalysisSpec::Peer(_))
    }

    /// Which tool's rules release it: `kayenta`, `argo` or `flagger`.
    pub fn tool(&self) -> &'static str {
        match &self.analysis {
            AnalysisSpec::Kayenta(_) => "kayenta",
            AnalysisSpec::Peer(spec) => match spec.plan {
                PeerPlan::Argo(_) => "argo",
                PeerPlan::Flagger(_) => "flagger",
            },
        }
    }

    /// Measure these queries (a controller's
    /// [`Controller::queries`]) on the simulated Prometheus: parsed here,
    /// once, for every run.
    pub fn with_queries(mut self, queries: &[release::Query]) -> Self {
        // other queries read other families: other series
        self.id = next_prepared_id();
        let mut layout = layout(self.scenario, self.is_peer());
        layout.pods[0] = layout.pods[0].max(self.canary_slots());
        self.plan = Plan::new(queries, &layout);
        self
    }

    /// Canary pods the run's series have room for: a peer's
    /// `setCanaryScale` may ask for more than the scenario deploys.
    fn canary_slots(&self) -> u32 {
        match &self.analysis {
            AnalysisSpec::Peer(spec) => spec.canary_slots(),
            AnalysisSpec::Kayenta(_) => 0,
        }
    }

    /// Canary pods the deploy starts: the scenario's, or an Argo
    /// Rollout's with traffic routing (step 0's count, Argo's rule).
    fn deployed_canary_pods(&self) -> u32 {
        match &self.analysis {
            AnalysisSpec::Peer(spec) => spec.deploy.canary_pods,
            AnalysisSpec::Kayenta(_) => self.scenario.file.pipeline.canary_replicas,
        }
    }

    /// The parsed queries.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The canary config's metrics, compiled.
    pub fn metrics(&self) -> &KayentaPlan {
        &self.metrics
    }

    /// [`Prepared::new`] for every scenario; an error names the scenario.
    pub fn all(scenarios: &'a [Scenario]) -> Result<Vec<Self>, crate::SimError> {
        scenarios
            .iter()
            .map(|s| {
                Self::new(s).map_err(|e| crate::SimError::Scenario {
                    name: s.name.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        self.scenario
    }
}

/// Whether production is the control: a peer has no baseline (its stable
/// or primary pods are production).
fn production_control(scenario: &Scenario, peer: bool) -> bool {
    scenario.file.pipeline.baseline == BaselineKind::Production || peer
}

/// The pods and names a run of `scenario` scrapes.
fn layout(scenario: &Scenario, peer: bool) -> crate::prometheus::Layout<'_> {
    let f = &scenario.file;
    let production = production_control(scenario, peer);
    crate::prometheus::Layout {
        telemetry: &f.telemetry,
        control: if production {
            scenarios::telemetry::TelemetryTrack::Production
        } else {
            scenarios::telemetry::TelemetryTrack::Baseline
        },
        pods: [
            f.pipeline.canary_replicas,
            if production {
                f.service.replicas
            } else {
                f.pipeline.baseline_replicas
            },
        ],
        step_ms: (f.analysis.scrape_step_s * 1000.0).round() as i64,
    }
}

/// Multiply `base` by a log-normal jitter with ~10% spread.
fn jitter(base: f64, rng: &mut Xoshiro256PlusPlus) -> f64 {
    let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
    base * (0.1 * z).exp()
}

/// Cleanup after a promotion, or a rollback: the canary removed, seconds.
const CLEANUP_S: f64 = 5.0;

/// The simulated world a run's controller acts on.
struct World<'p, 'a> {
    p: &'p Prepared<'a>,
    seed: u64,
    detail: bool,
    rng: Xoshiro256PlusPlus,
    q: Queue<Event>,
    /// When traffic reached the canary, once it did.
    traffic_at: Millis,
    generator: Option<Generator<'a>>,
    intervals: Vec<IntervalDetail>,
    /// The last window's verdict (fast path): the deciding one when the
    /// analysis decided.
    last_verdict: Option<judge::Verdict>,
    /// The judge's error on the last window, if any (detail runs only).
    judge_note: String,
    /// Why a metric's query could not be evaluated, if it could not.
    metric_error: Option<String>,
    /// Scratch for compiled points.
    points: Vec<Point>,
    /// Per metric and side, the points of the last window (without
    /// detail): the next window from the same start continues them.
    memo: Vec<[PointMemo; 2]>,
    /// The raw series, when the controller measures queries or they are
    /// dumped.
    scrape: Option<Scrape>,
    /// What the raw series are, and the [`Prepared::id`] whose spare they
    /// become (the run's, or the one whose run built them).
    scrape_key: Option<(ScrapeKey<'a>, u64)>,
    /// The raw series are another candidate's ([`candidates::Sharing`]).
    scrape_shared: bool,
    /// Scrape every family whose draws the run makes (for a dump).
    scrape_all: bool,
    /// Whether the deploy's canary pods were started: later ones are a
    /// peer's `setCanaryScale`.
    canary_deployed: bool,
    /// Ready times of canary pods started after the deploy, until stopped.
    canary_extra: Vec<Millis>,
    /// Canary pod changes (time, +/- pods) before the generator exists.
    canary_changes: Vec<(Millis, i64)>,
    /// One seed's series shared with the other candidates
    /// ([`candidates`]); `None` for a run on its own.
    sharing: Option<candidates::Sharing<'p, 'a>>,
}

/// [`World::memo_fill`]'s record for one metric and side.
#[derive(Debug, Default)]
struct PointMemo {
    /// The first step of the windows it holds (`usize::MAX` after a
    /// reset: none).
    k0: usize,
    /// The compiled program's pass (`None` before the first window; after
    /// a reset, the last run's, of any metric: the next fresh cursor is
    /// made in it, [`KayentaPlan::renew_cursor`]). Boxed: a memo is moved
    /// out of the world and back for every fill, and a quantile's state
    /// is most of its size.
    cursor: Option<Box<Cursor>>,
    /// The compiled points from `k0` on.
    compiled: Vec<Point>,
    /// The values Prometheus returns from `k0` on (steps without a
    /// result left out).
    values: Vec<f64>,
    /// The steps from `k0` whose values it holds.
    filled: usize,
    /// Of those, the ones without a value (counted from `k0`, increasing):
    /// few or none, so a window's values are counted from them rather
    /// than recorded per step.
    missing: Vec<usize>,
}

impl PointMemo {
    /// Empty, as new, keeping the buffers' room.
    fn reset(&mut self) {
        // no window starts there: the cursor is made fresh before its use
        self.k0 = usize::MAX;
        self.compiled.clear();
        self.values.clear();
        self.filled = 0;
        self.missing.clear();
    }

    /// The values of the window of `steps` steps from `k0`.
    fn window(&self, steps: usize) -> &[f64] {
        let s = steps.min(self.filled);
        &self.values[..s - self.missing.partition_point(|&i| i < s)]
    }
}

/// Simulate one release with `seed`. With `detail`, also return the full
/// record (series, intervals, timeline) for reports.
pub fn run_once(
    p: &Prepared<'_>,
    seed: u64,
    detail: bool,
    ws: &mut Workspace,
) -> (RunOutcome, Option<RunDetail>) {
    let (run, detail, _) = drive_prepared(p, seed, detail, false, ws, None);
    (run, detail)
}

/// [`run_once`] with the detail, also returning the run's raw series as
/// the simulated Prometheus scraped them (every family whose draws the run
/// makes, so the run is the same as without the series).
pub fn run_with_series(
    p: &Prepared<'_>,
    seed: u64,
    ws: &mut Workspace,
) -> (RunOutcome, Option<RunDetail>, Option<prom::Store>) {
    drive_prepared(p, seed, true, true, ws, None)
}

/// [`drive_sharing`] with the controller `p`'s analysis names.
fn drive_prepared<'p, 'a>(
    p: &'p Prepared<'a>,
    seed: u64,
    detail: bool,
    series: bool,
    ws: &mut Workspace,
    sharing: Option<candidates::Sharing<'p, 'a>>,
) -> (RunOutcome, Option<RunDetail>, Option<prom::Store>) {
    let (mut kayenta, mut peer);
    let controller: &mut dyn Controller = match &p.analysis {
        AnalysisSpec::Kayenta(spec) => {
            kayenta = Kayenta::new(spec, detail);
            &mut kayenta
        }
        AnalysisSpec::Peer(spec) => {
            peer = PeerRelease::new(spec, detail);
            &mut peer
        }
    };
    drive_sharing(p, seed, detail, series, ws, controller, sharing)
}

/// One release decided by `controller`, whose [`Controller::queries`] must
/// be those `p` was prepared with ([`Prepared::with_queries`]). With
/// `series`, also the run's raw series.
pub fn drive(
    p: &Prepared<'_>,
    seed: u64,
    detail: bool,
    series: bool,
    ws: &mut Workspace,
    controller: &mut dyn Controller,
) -> (RunOutcome, Option<RunDetail>, Option<prom::Store>) {
    drive_sharing(p, seed, detail, series, ws, controller, None)
}

/// [`drive`], reading the series of `sharing`'s seed when it has them
/// (see [`candidates`]).
fn drive_sharing<'p, 'a>(
    p: &'p Prepared<'a>,
    seed: u64,
    detail: bool,
    series: bool,
    ws: &mut Workspace,
    controller: &mut dyn Controller,
    sharing: Option<candidates::Sharing<'p, 'a>>,
) -> (RunOutcome, Option<RunDetail>, Option<prom::Store>) {
    let mut w = World {
        p,
        seed,
        detail,
        rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        q: Queue::new(),
        traffic_at: 0,
        generator: None,
        intervals: Vec::new(),
        judge_note: String::new(),
        metric_error: None,
        points: Vec::new(),
        memo: SPARE_MEMO
            .try_with(|c| c.try_borrow_mut().map(|mut m| std::mem::take(&mut *m)))
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        last_verdict: None,
        scrape: None,
        scrape_key: None,
        scrape_shared: false,
        scrape_all: series,
        canary_deployed: false,
        canary_extra: Vec::new(),
        canary_changes: Vec::new(),
        sharing,
    };
    controller.handle(0, Event::Start);
    let outcome = 'run: loop {
        while let Some(command) = controller.poll() {
            if let Command::Done(outcome) = command {
                break 'run outcome;
            }
            w.execute(command, controller, ws);
        }
        let Some(event) = w.q.pop() else {
            break Outcome {
                end: ReleaseEnd::Rollback,
                reason: "the pipeline stopped without a decision".into(),
                decided_at: w.q.now(),
                ended_at: w.q.now(),
                deploy_started: None,
                traffic_at: None,
                decided_at_interval: None,
                timeline: Vec::new(),
            };
        };
        controller.handle(w.q.now(), event);
    };
    let store = if series {
        w.scrape.take().map(|mut s| {
            if let Some(g) = &w.generator {
                // a failed write leaves the series as far as they went
                let _ = s.catch_up(g);
            }
            s.into_store()
        })
    } else {
        None
    };
    // every scrape a run builds for itself is keyed (`start_scrape`)
    if !w.detail
        && !w.scrape_all
        && let Some(s) = w.scrape.take()
        && let Some((key, owner)) = w.scrape_key.take()
    {
        let back = match &mut w.sharing {
            Some(sh) => sh.keep_scrape(key, owner, s),
            None => Some((owner, s)),
        };
        if let Some((owner, s)) = back {
            spare_scrape(owner, s);
        }
    }
    let (run, detail) = w.finish(outcome);
    (run, detail, store)
}

impl<'a> World<'_, 'a> {
    fn execute(&mut self, command: Command, controller: &mut dyn Controller, ws: &mut Workspace) {
        let pl = &self.p.scenario.file.pipeline;
        match command {
            Command::WakeAt(t) => self.q.at(t, Event::TimeReached),
            Command::Build => {
                // Both draws now: nothing else draws while the build runs.
                let took = jitter(pl.build_s, &mut self.rng);
                let failed = self.rng.random_bool(pl.build_failure);
                self.q.after(ms(took), Event::BuildFinished { ok: !failed });
            }
            Command::StartPods { track, count } => self.start_pods(track, count),
            Command::StopPods { track, count } => self.stop_pods(track, count),
            Command::SetWeights(split) => self.set_weights(split),
            Command::Judge(request) => {
                let (index, score) = self.judge(request, ws);
                controller.handle(self.q.now(), Event::Judged { index, score });
            }
            Command::Measure(m) => {
                let value = self.measure(&m);
                controller.handle(self.q.now(), Event::Measured { id: m.id, value });
            }
            Command::Promote(update) => {
                let took = self.rolling_update(update);
                self.q.after(ms(took), Event::Promoted(Ok(())));
            }
            Command::RollBack => self.q.after(ms(CLEANUP_S), Event::RolledBack),
            Command::Cleanup => self.q.after(ms(CLEANUP_S), Event::CleanedUp),
            Command::Done(_) => {}
        }
    }

    /// Evaluates a measurement's query on the raw series scraped up to
    /// its time, generating them up to there first.
    fn measure(&mut self, m: &release::MeasureRequest) -> Measurement {
        let q = match self.p.plan.query(m.query) {
            Ok(q) => q,
            Err(e) => return Measurement::Error(e),
        };
        match (&mut self.generator, &mut self.scrape) {
            (Some(g), Some(s)) => {
                if m.at >= self.traffic_at {
                    let since = secs(m.at - self.traffic_at);
                    let k = (since / g.step_s() + 1e-9).floor() as usize;
                    if let Some(sh) = &mut self.sharing
                        && sh.on()
                    {
                        if sh.advance(g, k, &mut self.rng) {
                            self.left_share();
                            return self.measure(m);
                        }
                    } else {
                        g.advance_to(k, &mut self.rng);
                    }
                }
                if let Err(e) = s.catch_up(g) {
                    return Measurement::Error(e.to_string());
                }
                s.measure(self.p.id, m.query, q, m)
            }
            // before the traffic shift: nothing scraped yet
            _ => crate::prometheus::answer(&prom::Store::new(), q, m),
        }
    }

    /// Each pod starts and becomes ready after its own (jittered) times; a
    /// canary in a crash loop crashes before it is ready and never is.
    fn start_pods(&mut self, track: Track, count: u32) {
        let f = &self.p.scenario.file;
        let pl = &f.pipeline;
        let crash_after = match f.regression {
            Some(Regression::CrashLoop { crash_after_s }) if track == Track::Canary => {
                Some(crash_after_s)
            }
            _ => None,
        };
        let extra_ready = match f.regression {
            Some(Regression::SlowStart { extra_ready_s, .. }) if track == Track::Canary => {
                extra_ready_s
            }
            _ => 0.0,
        };
        // The queue counts milliseconds; a pod ready after the deploy
        // timeout by less than half a millisecond must still be late.
        let deadline = ms(pl.deploy_timeout_s);
        let extra = track == Track::Canary && self.canary_deployed;
        if track == Track::Canary {
            self.canary_deployed = true;
        }
        for _ in 0..count {
            let started = jitter(pl.pod_start_s, &mut self.rng);
            let ready = jitter(pl.readiness_s, &mut self.rng) + extra_ready;
            match crash_after {
                Some(c) if c <= ready => {
                    self.q.after(ms(started + c), Event::PodCrashed { track });
                }
                _ => {
                    let at = started + ready;
                    let at = if at > pl.deploy_timeout_s {
                        ms(at).max(deadline + 1)
                    } else {
                        ms(at)
                    };
                    self.q.after(at, Event::PodReady { track });
                    if extra {
                        // serves the canary's share once ready
                        let ready = self.q.now() + at;
                        self.canary_extra.push(ready);
                        self.canary_change(ready, 1);
                    }
                    if track == Track::Production {
                        let ready = self.q.now() + at;
                        self.production_change(ready, 1);
                    }
                }
            }
        }
    }

    /// A peer's production pods (Argo's stable with `dynamicStableScale`)
    /// change by `delta` at `at`: production's series are the control's.
    /// Only once traffic flows (the stable shrinks only after traffic
    /// left it), and never for a Kayenta release (it never scales
    /// production).
    fn production_change(&mut self, at: Millis, delta: i64) {
        if !self.p.is_peer() {
            return;
        }
        let from_s = secs(at.saturating_sub(self.traffic_at));
        match (&mut self.generator, &mut self.sharing) {
            (Some(_), Some(s)) if s.on() => s.add_pods(CONTROL, from_s, delta),
            (Some(g), _) => g.add_pods(CONTROL, from_s, delta),
            (None, _) => {}
        }
    }

    /// A peer's `setCanaryScale` down: pods not yet ready first (their
    /// readiness is cancelled), then ready ones, stop now.
    fn stop_pods(&mut self, track: Track, count: u32) {
        if track == Track::Production {
            self.production_change(self.q.now(), -i64::from(count));
        }
        if track != Track::Canary {
            return;
        }
        let now = self.q.now();
        let mut left = i64::from(count);
        while left > 0 {
            match self.canary_extra.iter().rposition(|&r| r > now) {
                Some(i) => {
                    let ready = self.canary_extra.remove(i);
                    self.canary_change(ready, -1);
                }
                None => break,
            }
            left -= 1;
        }
        if left > 0 {
            self.canary_change(now, -left);
        }
    }

    /// The canary's serving pods change by `delta` at `at`.
    fn canary_change(&mut self, at: Millis, delta: i64) {
        let from_s = secs(at.saturating_sub(self.traffic_at));
        match (&mut self.generator, &mut self.sharing) {
            (Some(_), Some(s)) if s.on() => s.add_pods(CANARY, from_s, delta),
            (Some(g), _) => g.add_pods(CANARY, from_s, delta),
            (None, _) => self.canary_changes.push((at, delta)),
        }
    }

    /// The first split starts the traffic (and the metrics); later ones
    /// change the shares from now on.
    fn set_weights(&mut self, split: Split) {
        let now = self.q.now();
        let sc = self.p.scenario;
        let f = &sc.file;
        let pl = &f.pipeline;
        let production_control = production_control(sc, self.p.is_peer());
        let shares = [
            split.canary / 100.0,
            if production_control {
                split.production / 100.0
            } else {
                split.baseline / 100.0
            },
        ];
        if let Some(g) = &mut self.generator {
            let from_s = secs(now - self.traffic_at);
            match &mut self.sharing {
                Some(s) if s.on() => s.set_shares(from_s, shares),
                _ => g.set_shares(from_s, shares),
            }
            return;
        }
        self.traffic_at = now;
        let svc = &f.service;
        let offset = |n: u32, rng: &mut Xoshiro256PlusPlus| {
            let n = n.max(1);
            (0..n)
                .map(|_| {
                    svc.pod_variation
                        * rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, rng)
                })
                .sum::<f64>()
                / f64::from(n)
        };
        let canary_pods = self.p.deployed_canary_pods();
        let canary = TrackSpec {
            pods: canary_pods,
            age_at_start_s: pl.readiness_s,
            latency_offset: offset(canary_pods, &mut self.rng),
            regression: f.regression,
        };
        let control = match pl.baseline {
            BaselineKind::Fresh if !production_control => TrackSpec {
                pods: pl.baseline_replicas,
                age_at_start_s: pl.readiness_s,
                latency_offset: offset(pl.baseline_replicas, &mut self.rng),
                regression: None,
            },
            _ => TrackSpec {
                pods: svc.replicas,
                age_at_start_s: 7.0 * 86_400.0,
                latency_offset: offset(svc.replicas, &mut self.rng),
                regression: None,
            },
        };
        let step_s = f.analysis.scrape_step_s;
        let planned = self.p.plan.families();
        let read = planned.or(self.p.metrics.families());
        let tracks = [canary, control];
        let early_pods = || {
            let canary = self.canary_changes.iter();
            let canary = canary.map(|&(at, delta)| (secs(at.saturating_sub(now)), delta));
            [canary.collect(), Vec::new()]
        };
        if let Some(s) = &mut self.sharing
            && let Some(g) = s.start(
                svc,
                step_s,
                &tracks,
                read.draws(),
                shares,
                &self.rng,
                self.p.canary_slots(),
                early_pods(),
            )
        {
            self.canary_changes.clear();
            self.generator = Some(g);
            self.memo = s.take_memo();
            if !planned.is_empty() {
                self.start_scrape();
            }
            return;
        }
        let mut g = Generator::new(svc, step_s, tracks, read.draws());
        g.set_shares(0.0, shares);
        g.reserve_pods(CANARY, self.p.canary_slots());
        for (at, delta) in self.canary_changes.drain(..) {
            g.add_pods(CANARY, secs(at.saturating_sub(now)), delta);
        }
        // every step up to the end of the lifetime, at once
        g.reserve(((pl.warmup_s + pl.lifetime_s) / step_s).ceil() as usize + 1);
        self.generator = Some(g);
        if !planned.is_empty() || self.scrape_all {
            self.start_scrape();
        }
    }

    /// Scrape the raw series from the traffic shift on (every family the
    /// run's queries read; with `scrape_all`, every family it draws).
    fn start_scrape(&mut self) {
        let Some(g) = &self.generator else {
            return;
        };
        if !self.scrape_all {
            let key = self.scrape_key_now();
            if let Some(s) = &mut self.sharing
                && let Some((owner, shared)) = s.take_scrape(&key)
            {
                // another candidate's, written from the same series
                self.scrape = Some(shared);
                self.scrape_key = Some((key, owner));
                self.scrape_shared = true;
                return;
            }
            let id = self.p.id;
            let spare = SPARE_SCRAPE.with(|c| {
                let mut spare = c.borrow_mut();
                let i = spare.iter().position(|(of, _)| *of == id)?;
                Some(spare.remove(i).1)
            });
            self.scrape_key = Some((key, id));
            if let Some(mut s) = spare {
                s.restart(self.traffic_at, self.seed);
                self.scrape = Some(s);
                return;
            }
        }
        let families = if self.scrape_all {
            let all = Families::drawn(g.draws());
            [all, all]
        } else {
            self.read_families()
        };
        let f = &self.p.scenario.file;
        let control = self.control_track();
        self.scrape = Some(Scrape::new(
            families,
            &f.telemetry,
            control,
            g,
            self.traffic_at,
            self.seed,
        ));
    }

    /// The families of the raw series the run reads, per track.
    fn read_families(&self) -> [Families; 2] {
        let [a, b] = self.p.plan.per_track();
        let [c, d] = self.p.metrics.per_track();
        [a.or(c), b.or(d)]
    }

    /// The telemetry's name of the control track.
    fn control_track(&self) -> scenarios::telemetry::TelemetryTrack {
        if production_control(self.p.scenario, self.p.is_peer()) {
            scenarios::telemetry::TelemetryTrack::Production
        } else {
            scenarios::telemetry::TelemetryTrack::Baseline
        }
    }

    /// The run left the shared series ([`candidates::Sharing::advance`]):
    /// its raw series and metric points, made from them, are made again
    /// from its own steps.
    fn left_share(&mut self) {
        self.memo.iter_mut().flatten().for_each(PointMemo::reset);
        let Some(mut s) = self.scrape.take() else {
            return;
        };
        if self.scrape_shared {
            self.scrape_shared = false;
            if let (Some(sh), Some((key, owner))) = (&mut self.sharing, self.scrape_key.take()) {
                sh.give_back_scrape(key, owner, s);
            }
            self.start_scrape();
        } else {
            s.restart(self.traffic_at, self.seed);
            self.scrape = Some(s);
        }
    }

    /// What this run's raw series are ([`ScrapeKey`]).
    fn scrape_key_now(&self) -> ScrapeKey<'a> {
        let scenario: &'a Scenario = self.p.scenario;
        ScrapeKey {
            families: self.read_families(),
            traffic_at: self.traffic_at,
            control: self.control_track(),
            telemetry: &scenario.file.telemetry,
        }
    }

    /// Metric `m` for `side` at `at_ms` after the traffic shift,
    /// evaluated on the raw series (scraped for the purpose if they are
    /// not yet). An error is kept for the judge's note.
    fn evaluated(&mut self, m: usize, side: usize, at_ms: i64) -> Option<f64> {
        if self.scrape.is_none() {
            self.start_scrape();
        }
        let (Some(g), Some(s)) = (&self.generator, &mut self.scrape) else {
            return None;
        };
        if let Err(e) = s.catch_up(g) {
            self.metric_error = Some(e.to_string());
            return None;
        }
        match self
            .p
            .metrics
            .evaluate(m, side, s.store(), self.traffic_at, at_ms)
        {
            Ok(Point::Value(v)) => Some(v),
            Ok(_) => None,
            Err(e) => {
                self.metric_error = Some(e);
                None
            }
        }
    }

    /// Kayenta's fetch of metric `m` for `side` over `[start_ms, end_ms]`
    /// after the traffic shift, one point per scrape step: each from the
    /// metric's compiled program where it can tell, else evaluated on the
    /// raw series; `None` where Prometheus returns nothing.
    fn metric_points(
        &mut self,
        m: usize,
        side: usize,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<Option<f64>> {
        let step_ms = (self.p.scenario.file.analysis.scrape_step_s * 1000.0).round() as i64;
        if step_ms <= 0 || end_ms < start_ms || self.generator.is_none() {
            return Vec::new();
        }
        let mut compiled = std::mem::take(&mut self.points);
        compiled.clear();
        if let Some(g) = &self.generator
            && start_ms >= 0
            && start_ms % step_ms == 0
        {
            let (k0, k1) = (start_ms / step_ms, end_ms / step_ms);
            self.p
                .metrics
                .points(m, side, g, k0 as usize, k1 as usize, &mut compiled);
        }
        let mut out = Vec::with_capacity(compiled.len().max(1));
        let mut t = start_ms;
        let mut i = 0;
        while t <= end_ms {
            out.push(match compiled.get(i) {
                Some(Point::Value(v)) => Some(*v),
                Some(Point::Absent) => None,
                _ => self.evaluated(m, side, t),
            });
            t += step_ms;
            i += 1;
        }
        self.points = compiled;
        out
    }

    /// Fills metric `m`'s `side` memo through step `k1` for windows from
    /// step `k0`, continuing the last window's points when it started at
    /// `k0` (a growing window): the same values as [`World::metric_values`],
    /// the compiled ones by continuing their pass ([`Cursor`]), the
    /// evaluated ones because an instant query at a time reads no sample
    /// after it.
    ///
    /// A metric whose program slides the same window as a later one's
    /// ([`KayentaPlan::shares_window`]: a median and a tail over the same
    /// buckets) fills that one's memo with its own, in one pass, when both
    /// stand at the same step; that metric's own call then finds its memo
    /// filled.
    fn memo_fill(&mut self, m: usize, side: usize, k0: usize, k1: usize, step_ms: i64) {
        let partner = self.p.metrics.shares_window(m, side);
        let last = partner.unwrap_or(m);
        if self.memo.len() <= last {
            self.memo.resize_with(last + 1, Default::default);
        }
        let mut memo = self.memo_taken(m, side, k0);
        let have = memo.filled;
        if k1 < k0 + have || self.generator.is_none() {
            self.memo[m][side] = memo;
            return;
        }
        // the partner's memo if it stands where this one does
        let mut paired = partner
            .filter(|&m2| {
                let o = &self.memo[m2][side];
                let len = if o.cursor.is_none() || o.k0 != k0 {
                    0
                } else {
                    o.filled
                };
                len == have
            })
            .map(|m2| (m2, self.memo_taken(m2, side, k0)));
        if let Some(g) = &self.generator
            && let Some(cursor) = &mut memo.cursor
        {
            match &mut paired {
                Some((
                    m2,
                    PointMemo {
                        cursor: Some(cursor2),
                        compiled: compiled2,
                        ..
                    },
                )) => {
                    self.p.metrics.points_continued_pair(
                        (m, *m2),
                        side,
                        g,
                        (&mut **cursor, &mut **cursor2),
                        k0,
                        k1,
                        (&mut memo.compiled, compiled2),
                    );
                }
                _ => {
                    self.p
                        .metrics
                        .points_continued(m, side, g, cursor, k0, k1, &mut memo.compiled);
                }
            }
        }
        self.memo_values(m, side, &mut memo, have, step_ms);
        if let Some((m2, mut memo2)) = paired {
            self.memo_values(m2, side, &mut memo2, have, step_ms);
            self.memo[m2][side] = memo2;
        }
        self.memo[m][side] = memo;
    }

    /// Metric `m`'s `side` memo, taken out of the world, emptied with a
    /// fresh cursor unless it holds windows from `k0`.
    fn memo_taken(&mut self, m: usize, side: usize, k0: usize) -> PointMemo {
        let mut memo = std::mem::take(&mut self.memo[m][side]);
        if memo.cursor.is_none() || memo.k0 != k0 {
            memo.k0 = k0;
            match &mut memo.cursor {
                Some(c) => self.p.metrics.renew_cursor(m, side, c),
                None => memo.cursor = Some(Box::new(self.p.metrics.cursor(m, side))),
            }
            memo.compiled.clear();
            memo.values.clear();
            memo.filled = 0;
            memo.missing.clear();
        }
        memo
    }

    /// `memo`'s values and counts for its compiled points from the
    /// `have`-th on (metric `m`, `side`): the compiled values, the
    /// evaluator's where the program cannot tell.
    fn memo_values(
        &mut self,
        m: usize,
        side: usize,
        memo: &mut PointMemo,
        have: usize,
        step_ms: i64,
    ) {
        let n = memo.compiled.len();
        memo.values.reserve(n - have);
        memo.filled = n;
        let k0 = memo.k0;
        let mut i = have;
        // the usual case, every point a value: no scan for the stretch's
        // end (the test takes every point, so it has no early exit to
        // keep it from being vectorized)
        let values = |p: &[Point]| {
            p.iter()
                .fold(true, |all, p| all & matches!(p, Point::Value(_)))
        };
        if values(&memo.compiled[have..]) {
            i = n;
            memo.values
                .extend(memo.compiled[have..].iter().map(|p| match *p {
                    Point::Value(v) => v,
                    Point::Absent | Point::Fallback => f64::NAN,
                }));
        }
        while i < n {
            // a stretch of values: copied in one go
            let plain = memo.compiled[i..]
                .iter()
                .take_while(|p| matches!(p, Point::Value(_)))
                .count();
            if plain > 0 {
                memo.values
                    .extend(memo.compiled[i..i + plain].iter().map(|p| match *p {
                        Point::Value(v) => v,
                        // not in the stretch
                        Point::Absent | Point::Fallback => f64::NAN,
                    }));
                i += plain;
                continue;
            }
            let value = match memo.compiled[i] {
                Point::Fallback => self.evaluated(m, side, (k0 + i) as i64 * step_ms),
                _ => None,
            };
            match value {
                Some(v) => memo.values.push(v),
                None => memo.missing.push(i),
            }
            i += 1;
        }
    }

    /// [`World::metric_points`] as Kayenta hands them to the judge: the
    /// points Prometheus returned.
    fn metric_values(&mut self, m: usize, side: usize, start_ms: i64, end_ms: i64) -> Vec<f64> {
        self.metric_points(m, side, start_ms, end_ms)
            .into_iter()
            .flatten()
            .collect()
    }

    /// Judges one window of the generated series; returns its index and
    /// score.
    fn judge(&mut self, request: JudgeRequest, ws: &mut Workspace) -> (usize, f64) {
        let window = request.window;
        let p = self.p;
        let sc = p.scenario;
        let step_s = sc.file.analysis.scrape_step_s;
        let Some(generator) = self.generator.as_mut() else {
            // No traffic, no data: the judge would see nothing.
            return (window.index, 0.0);
        };
        let start = window.start.as_secs_f64();
        let end = window.end.as_secs_f64();
        let k_hi = (end / step_s + 1e-9).floor() as usize;
        match &mut self.sharing {
            Some(s) if s.on() => {
                if s.advance(generator, k_hi, &mut self.rng) {
                    self.left_share();
                }
            }
            _ => generator.advance_to(k_hi, &mut self.rng),
        }
        let judge_seed = self.seed ^ (window.index as u64).wrapping_mul(0xD134_2543_DE82_EF95);
        // Kayenta's fetches: a range query per metric and scope
        let (start_ms, end_ms) = (
            window.start.as_millis() as i64,
            window.end.as_millis() as i64,
        );
        // another candidate's verdict on the same window of the same series
        // by the same judge (the score does not read the thresholds)
        if !self.detail
            && let Some(v) = self
                .sharing
                .as_mut()
                .and_then(|s| s.verdict(window.index, start_ms, end_ms, p.judge.thresholds()))
        {
            let score = v.score;
            self.last_verdict = Some(v);
            return (window.index, score);
        }
        let step_ms = (step_s * 1000.0).round() as i64;
        if !self.detail && step_ms > 0 && start_ms >= 0 && start_ms % step_ms == 0 {
            // the windows' values from the memo, without copies
            let (k0, k1) = ((start_ms / step_ms) as usize, (end_ms / step_ms) as usize);
            let steps = (k1 + 1).saturating_sub(k0);
            if end_ms >= start_ms {
                for m in 0..p.metrics.len() {
                    self.memo_fill(m, CANARY, k0, k1, step_ms);
                    self.memo_fill(m, CONTROL, k0, k1, step_ms);
                }
            }
            let steps = if end_ms >= start_ms { steps } else { 0 };
            fn of(memo: Option<&[PointMemo; 2]>, side: usize, steps: usize) -> &[f64] {
                memo.map_or(&[][..], |sides| sides[side].window(steps))
            }
            let series: Vec<Series<'_>> = (0..p.metrics.len())
                .map(|m| Series {
                    control: of(self.memo.get(m), CONTROL, steps),
                    experiment: of(self.memo.get(m), CANARY, steps),
                })
                .collect();
            let v = p.judge.judge_series(&series, judge_seed, ws);
            let score = v.score;
            if let Some(s) = &mut self.sharing {
                s.keep(window.index, start_ms, end_ms, &v);
            }
            self.last_verdict = Some(v);
            return (window.index, score);
        }
        let values: Vec<[Vec<f64>; 2]> = (0..p.metrics.len())
            .map(|m| {
                [
                    self.metric_values(m, CANARY, start_ms, end_ms),
                    self.metric_values(m, CONTROL, start_ms, end_ms),
                ]
            })
            .collect();
        if !self.detail {
            let series: Vec<Series<'_>> = values
                .iter()
                .map(|[canary, control]| Series {
                    control,
                    experiment: canary,
                })
                .collect();
            let v = p.judge.judge_series(&series, judge_seed, ws);
            let score = v.score;
            if let Some(s) = &mut self.sharing {
                s.keep(window.index, start_ms, end_ms, &v);
            }
            self.last_verdict = Some(v);
            return (window.index, score);
        }
        let pairs: Vec<MetricSetPair> = sc
            .config
            .metrics
            .iter()
            .zip(values)
            .map(|(m, [canary, control])| MetricSetPair::new(m.name.clone(), control, canary))
            .collect();
        let (score, label, note, metrics) = match p.judge.judge_pairs(&pairs, judge_seed) {
            Ok(r) => {
                // the verdict the fast path would keep, for the same marks
                self.last_verdict =
                    (r.results.len() == sc.config.metrics.len()).then(|| judge::Verdict {
                        score: r.score.score,
                        classification: r.score.classification,
                        metrics: r
                            .results
                            .iter()
                            .map(|m| (m.classification, m.critical))
                            .collect(),
                    });
                let metrics = r.results.iter().map(MetricVerdict::of).collect();
                (
                    r.score.score,
                    r.score.classification,
                    r.score.classification_reason,
                    metrics,
                )
            }
            Err(e) => (
                {
                    self.last_verdict = None;
                    0.0
                },
                judge::ScoreClassification::Fail,
                e.to_string(),
                Vec::new(),
            ),
        };
        self.judge_note = match self.metric_error.take() {
            Some(e) => format!("{note}; {e}"),
            None => note,
        };
        self.intervals.push(IntervalDetail {
            index: window.index as u32,
            start_s: start,
            end_s: end,
            score,
            classification: label,
            metrics,
        });
        (window.index, score)
    }

    /// Seconds a rolling update of production takes: batch after batch,
    /// each as long as a pod takes to start and become ready.
    fn rolling_update(&mut self, update: RollingUpdate) -> f64 {
        let pl = &self.p.scenario.file.pipeline;
        let mut t = 0.0;
        for _ in 0..update.batches() {
            t += jitter(pl.pod_start_s, &mut self.rng) + jitter(pl.readiness_s, &mut self.rng);
        }
        t
    }

    /// Every metric's values at every step generated (the report's plots).
    fn detail_series(&mut self) -> Vec<MetricSeries> {
        let Some(steps) = self.generator.as_ref().map(Generator::len) else {
            return Vec::new();
        };
        let step_s = self.p.scenario.file.analysis.scrape_step_s;
        let step_ms = (step_s * 1000.0).round() as i64;
        let names: Vec<String> = self
            .p
            .scenario
            .config
            .metrics
            .iter()
            .map(|m| m.name.clone())
            .collect();
        names
            .into_iter()
            .enumerate()
            .map(|(m, name)| {
                let end = steps as i64 * step_ms;
                let mut side = |side: usize| -> Vec<Option<f64>> {
                    self.metric_points(m, side, step_ms, end)
                        .into_iter()
                        .map(|v| v.filter(|v| v.is_finite()))
                        .collect()
                };
                let experiment = side(CANARY);
                let control = side(CONTROL);
                MetricSeries {
                    name,
                    times_s: (1..=steps).map(|k| k as f64 * step_s).collect(),
                    control,
                    experiment,
                }
            })
            .collect()
    }

    fn finish(mut self, outcome: Outcome) -> (RunOutcome, Option<RunDetail>) {
        let sc = self.p.scenario;
        let step_s = sc.file.analysis.scrape_step_s;
        let decision = outcome.end;
        let (mut canary_requests, mut blast_radius) = (0, 0);
        let mut decision_time_s = 0.0;
        if let Some(g) = &mut self.generator {
            decision_time_s = secs(outcome.decided_at.saturating_sub(self.traffic_at));
            let k_decided = ((decision_time_s / step_s) + 1e-9).floor() as usize;
            // A Kayenta run has generated every step up to its decision
            // (its last window); a peer's only what it measured.
            if self.p.is_peer() {
                match &mut self.sharing {
                    // its raw series and points are not read any more
                    Some(s) if s.on() => _ = s.advance(g, k_decided, &mut self.rng),
                    _ => g.advance_to(k_decided, &mut self.rng),
                }
            }
            let g = &*g;
            // what this run generated (the shared series may go further)
            let generated = match &self.sharing {
                Some(s) if s.on() => s.generated(),
                _ => g.len(),
            };
            for k in 1..=k_decided.min(generated) {
                let (r, e) = g.canary_served(k);
                canary_requests += r;
                blast_radius += e;
            }
        } else if decision == ReleaseEnd::DeployFailed {
            let started = outcome.deploy_started.unwrap_or(0);
            decision_time_s = secs(outcome.decided_at.saturating_sub(started));
        }
        if let Some(s) = &mut self.sharing {
            // the series go back for the next candidate
            s.finish(self.generator.take(), std::mem::take(&mut self.memo));
        }
        if !self.memo.is_empty() {
            let mut memo = std::mem::take(&mut self.memo);
            memo.iter_mut().flatten().for_each(PointMemo::reset);
            let _ = SPARE_MEMO.try_with(|c| {
                if let Ok(mut spare) = c.try_borrow_mut() {
                    *spare = memo;
                }
            });
        }
        let run = RunOutcome {
            decision,
            decision_time_s,
            canary_requests,
            blast_radius,
            lead_time_s: secs(outcome.ended_at),
            decided_at_interval: outcome.decided_at_interval,
            decided_by: outcome
                .decided_at_interval
                .and(self.last_verdict.as_ref())
                .map(|v| judge::decided::marks(&self.p.judge, v)),
        };
        let series = if self.detail {
            self.detail_series()
        } else {
            Vec::new()
        };
        let detail = self.detail.then(|| {
            let mut reason = outcome.reason;
            if outcome.decided_at_interval.is_some() && !self.judge_note.is_empty() {
                reason = format!("{reason} ({})", self.judge_note);
            }
            RunDetail {
                scenario: sc.name.clone(),
                // named by the study, which knows the analysis's file
                analysis: None,
                seed: self.seed,
                decision,
                reason,
                intervals: self.intervals,
                series,
                timeline: outcome
                    .timeline
                    .iter()
                    .map(|s| Stage {
                        name: s.name.into(),
                        start_s: secs(s.start),
                        end_s: secs(s.end),
                    })
                    .collect(),
            }
        });
        (run, detail)
    }
}
