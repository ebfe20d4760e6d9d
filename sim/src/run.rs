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
use crate::prometheus::{Families, Plan, Scrape};
use crate::series::{CANARY, CONTROL, Generator, TrackSpec};

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
        let plan = Plan::new(
            Kayenta::new(&spec, false).queries(),
            &scenario.file.telemetry,
        );
        Ok(Self {
            scenario,
            judge,
            analysis: AnalysisSpec::Kayenta(spec),
            plan,
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
        let plan = Plan::new(
            PeerRelease::new(&spec, false).queries(),
            &scenario.file.telemetry,
        );
        Ok(Self {
            scenario,
            judge,
            analysis: AnalysisSpec::Peer(spec),
            plan,
        })
    }

    /// Whether a peer's rules (not the Kayenta pipeline) release it.
    pub fn is_peer(&self) -> bool {
        matches!(self.analysis, AnalysisSpec::Peer(_))
    }

    /// Measure these queries (a controller's
    /// [`Controller::queries`]) on the simulated Prometheus: parsed here,
    /// once, for every run.
    pub fn with_queries(mut self, queries: &[release::Query]) -> Self {
        self.plan = Plan::new(queries, &self.scenario.file.telemetry);
        self
    }

    /// The parsed queries.
    pub fn plan(&self) -> &Plan {
        &self.plan
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
    /// The raw series, when the controller measures queries or they are
    /// dumped.
    scrape: Option<Scrape>,
    /// Scrape every family whose draws the run makes (for a dump).
    scrape_all: bool,
}

/// Simulate one release with `seed`. With `detail`, also return the full
/// record (series, intervals, timeline) for reports.
pub fn run_once(
    p: &Prepared<'_>,
    seed: u64,
    detail: bool,
    ws: &mut Workspace,
) -> (RunOutcome, Option<RunDetail>) {
    let (run, detail, _) = drive_prepared(p, seed, detail, false, ws);
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
    drive_prepared(p, seed, true, true, ws)
}

/// [`drive`] with the controller `p`'s analysis names.
fn drive_prepared(
    p: &Prepared<'_>,
    seed: u64,
    detail: bool,
    series: bool,
    ws: &mut Workspace,
) -> (RunOutcome, Option<RunDetail>, Option<prom::Store>) {
    match &p.analysis {
        AnalysisSpec::Kayenta(spec) => {
            drive(p, seed, detail, series, ws, &mut Kayenta::new(spec, detail))
        }
        AnalysisSpec::Peer(spec) => drive(
            p,
            seed,
            detail,
            series,
            ws,
            &mut PeerRelease::new(spec, detail),
        ),
    }
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
        last_verdict: None,
        scrape: None,
        scrape_all: series,
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
                    g.advance_to(k, &mut self.rng);
                }
                if let Err(e) = s.catch_up(g) {
                    return Measurement::Error(e.to_string());
                }
                s.measure(q, m)
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
                }
            }
        }
    }

    /// The first split starts the traffic (and the metrics); later ones
    /// change the shares from now on.
    fn set_weights(&mut self, split: Split) {
        let now = self.q.now();
        let sc = self.p.scenario;
        let f = &sc.file;
        let pl = &f.pipeline;
        // a peer has no baseline: its stable (Argo) or primary (Flagger)
        // pods are production
        let production_control = pl.baseline == BaselineKind::Production || self.p.is_peer();
        let shares = [
            split.canary / 100.0,
            if production_control {
                split.production / 100.0
            } else {
                split.baseline / 100.0
            },
        ];
        if let Some(g) = &mut self.generator {
            g.set_shares(secs(now - self.traffic_at), shares);
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
        let canary = TrackSpec {
            pods: pl.canary_replicas,
            age_at_start_s: pl.readiness_s,
            latency_offset: offset(pl.canary_replicas, &mut self.rng),
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
        let mut g = Generator::new(
            svc,
            step_s,
            f.analysis.rate_window_s,
            [canary, control],
            &sc.signals,
        );
        g.set_shares(0.0, shares);
        // every step up to the end of the lifetime, at once
        g.reserve(((pl.warmup_s + pl.lifetime_s) / step_s).ceil() as usize + 1);
        let planned = self.p.plan.families();
        if !planned.is_empty() || self.scrape_all {
            g.also_draw(planned.draws());
            let families = if self.scrape_all {
                planned.or(Families::drawn(g.draws()))
            } else {
                planned
            };
            let control = match pl.baseline {
                BaselineKind::Fresh => scenarios::telemetry::TelemetryTrack::Baseline,
                BaselineKind::Production => scenarios::telemetry::TelemetryTrack::Production,
            };
            self.scrape = Some(Scrape::new(
                families,
                &f.telemetry,
                control,
                &g,
                now,
                self.seed,
            ));
        }
        self.generator = Some(g);
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
        let k_lo = (start / step_s + 1e-9).floor() as usize + 1;
        let k_hi = (end / step_s + 1e-9).floor() as usize;
        generator.advance_to(k_hi, &mut self.rng);
        let judge_seed = self.seed ^ (window.index as u64).wrapping_mul(0xD134_2543_DE82_EF95);
        if !self.detail {
            let series: Vec<Series<'_>> = (0..sc.signals.len())
                .map(|i| Series {
                    control: &generator.values[CONTROL][i][k_lo - 1..k_hi],
                    experiment: &generator.values[CANARY][i][k_lo - 1..k_hi],
                })
                .collect();
            let v = p.judge.judge_series(&series, judge_seed, ws);
            let score = v.score;
            self.last_verdict = Some(v);
            return (window.index, score);
        }
        let pairs: Vec<MetricSetPair> = sc
            .config
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                MetricSetPair::new(
                    m.name.clone(),
                    generator.values[CONTROL][i][k_lo - 1..k_hi].to_vec(),
                    generator.values[CANARY][i][k_lo - 1..k_hi].to_vec(),
                )
            })
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
        self.judge_note = note;
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
                g.advance_to(k_decided, &mut self.rng);
            }
            let g = &*g;
            for k in 1..=k_decided.min(g.len()) {
                let (r, e) = g.canary_served(k);
                canary_requests += r;
                blast_radius += e;
            }
        } else if decision == ReleaseEnd::DeployFailed {
            let started = outcome.deploy_started.unwrap_or(0);
            decision_time_s = secs(outcome.decided_at.saturating_sub(started));
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
        let detail = self.detail.then(|| {
            let mut reason = outcome.reason;
            if outcome.decided_at_interval.is_some() && !self.judge_note.is_empty() {
                reason = format!("{reason} ({})", self.judge_note);
            }
            let series = match &self.generator {
                Some(g) => sc
                    .config
                    .metrics
                    .iter()
                    .enumerate()
                    .map(|(i, m)| MetricSeries {
                        name: m.name.clone(),
                        times_s: (1..=g.len()).map(|k| k as f64 * step_s).collect(),
                        control: g.values[CONTROL][i]
                            .iter()
                            .map(|v| Some(*v).filter(|v| v.is_finite()))
                            .collect(),
                        experiment: g.values[CANARY][i]
                            .iter()
                            .map(|v| Some(*v).filter(|v| v.is_finite()))
                            .collect(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            RunDetail {
                scenario: sc.name.clone(),
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
