//! The driver loop of a local release: feeds the controller (Kayenta or a
//! peer's rules) its events and carries out its commands on loopback, with
//! controller time mapped onto real time by the time scale; see the
//! module docs of [`super`].
//!
//! Not for: the processes it starts and their weights (`running.rs`,
//! `instance.rs`), the promotion and rollback (`promote.rs`), nor what is
//! asked of Prometheus (`prometheus.rs`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use judge::analysis::Window;
use loadgen::{Arrival, Control, RateProfile, Target, Targets};
use release::{
    Command, Controller, Event, Measurement, Millis, ReleaseEnd, Track as PodTrack, ms, secs,
};
use tokio::task::JoinSet;

use super::context::Context;
use super::instance::{instance_config, start_slot, wait_ready};
use super::prometheus::{fetch_series, measurement, prometheus_api, start_prometheus};
use super::promote::{cleanup, promote, rollback};
use super::running::{Load, Running, Slot, Track, indices};
use super::{Measured, ReleaseError, ReleaseRecord, StageSpan, Step};
use crate::analysis::{
    AnalysisError, AnalysisRun, JudgedInterval, fetch_pairs, judge_window, unix_now,
};
use crate::cancel::cancelled;
use crate::local::pods::PodWatch;
use crate::plan::Split;
use crate::ranges::scale_ranges;

/// What the driver's background work answers with.
enum Answer {
    /// A window fetched and judged.
    Judged(Box<JudgedInterval>),
    /// A window could not be fetched or judged: the release stops.
    JudgeFailed(ReleaseError),
    /// A [`Command::Measure`] evaluated.
    Measured { id: u64, value: Measurement },
}

/// Executes a [`Controller`]'s commands on loopback: the module docs' pods,
/// loadgen and Prometheus, with controller time (scenario milliseconds
/// since the commit) mapped onto real time by the time scale.
struct Driver<'c, 'a> {
    ctx: &'c Context<'a>,
    /// Real time of controller time 0.
    t0: Instant,
    /// Unix seconds of controller time 0.
    t0_unix: f64,
    /// The last `now` fed to the controller.
    now: Millis,
    /// Pending [`Command::WakeAt`] times.
    wakes: BinaryHeap<Reverse<Millis>>,
    /// Answers to feed at the current time, in order.
    immediate: VecDeque<Event>,
    /// The controller's pods: ready or not, and their crashes.
    pods: PodWatch,
    /// The split in force.
    split: Split,
    /// Controller time of the traffic shift.
    traffic_at: Option<Millis>,
    /// Fetching and judging windows, measuring.
    tasks: JoinSet<Answer>,
    /// Why the deploy failed, captured before the rollback stops the pods.
    not_ready: Option<ReleaseError>,
    /// Whether the judged series were fetched for the record.
    series_fetched: bool,
    /// The controller's queries: name and PromQL (ranges scaled).
    queries: Vec<(String, String)>,
    /// Measurements asked for and not answered: id, query, controller time.
    measuring: Vec<(u64, usize, Millis)>,
    /// Controller time of the decision (a promotion or rollback began).
    decided_at: Option<Millis>,
    /// `promote` or `rollback`, once begun.
    tail: Option<&'static str>,
}

impl<'c, 'a> Driver<'c, 'a> {
    fn scale(&self) -> f64 {
        self.ctx.options.time_scale
    }

    /// Real time of controller time `t`.
    fn real(&self, t: Millis) -> Instant {
        self.t0 + Duration::from_secs_f64(secs(t) * self.scale())
    }

    /// Unix seconds of controller time `t`, to the millisecond (as
    /// Kayenta's scopes carry them).
    fn unix(&self, t: Millis) -> f64 {
        ((self.t0_unix + secs(t) * self.scale()) * 1000.0).round() / 1000.0
    }

    /// Controller time now (never before the last `now`).
    fn clock(&self) -> Millis {
        ms(self.t0.elapsed().as_secs_f64() / self.scale()).max(self.now)
    }

    /// The step a failure or an interruption now belongs to.
    fn step(&self) -> Step {
        if self.traffic_at.is_some() {
            Step::Analysis
        } else {
            Step::Deploy
        }
    }

    fn handle<C: Controller>(&mut self, controller: &mut C, now: Millis, event: Event) {
        self.now = now.max(self.now);
        controller.handle(self.now, event);
    }

    /// Carries out one command; `Some` once the controller is done.
    async fn execute(
        &mut self,
        command: Command,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<Option<release::Outcome>, (Step, ReleaseError)> {
        let ctx = self.ctx;
        match command {
            Command::WakeAt(t) => self.wakes.push(Reverse(t)),
            // The local mode deploys the version it was given: nothing to
            // build.
            Command::Build => self.immediate.push_back(Event::BuildFinished { ok: true }),
            Command::StartPods { track, count } => {
                let ours = match track {
                    PodTrack::Canary => Track::Canary,
                    PodTrack::Baseline => Track::Baseline,
                    PodTrack::Production => Track::Production,
                };
                let slots: Vec<usize> = indices(running, ours)
                    .into_iter()
                    .filter(|&i| running.slots[i].listener.is_some())
                    .take(count as usize)
                    .collect();
                for i in slots {
                    // Seeded by the slot's place, as every local release is.
                    let config = instance_config(ctx, ours, i as u64);
                    start_slot(ctx, &mut running.slots[i], config)
                        .await
                        .map_err(|e| (Step::Deploy, e))?;
                    self.pods.started(i, track);
                }
                if running.load.is_some() {
                    // a scale-up during the analysis: scraped from now on,
                    // served once ready (see look_at_pods)
                    running.update_targets().map_err(|e| (self.step(), e))?;
                }
            }
            Command::StopPods { track, count } => {
                self.stop_pods(running, track, count)
                    .await
                    .map_err(|e| (self.step(), e))?;
            }
            Command::SetWeights(split) => {
                self.split = split.into();
                if running.load.is_none() {
                    self.shift_traffic(running, record).await?;
                } else {
                    running
                        .set_weights(self.split)
                        .map_err(|e| (self.step(), e))?;
                }
            }
            Command::Measure(request) => self.measure(running, request)?,
            Command::Judge(request) => self.judge(running, request)?,
            Command::Promote(_) => {
                self.decided(running, record).await;
                self.decided_at = Some(self.now);
                self.tail = Some("promote");
                ctx.options.watch.set(Step::Promote);
                promote(ctx, running, record, self.split).await?;
                let now = self.clock();
                self.handle_later(now, Event::Promoted(Ok(())));
            }
            Command::Cleanup => {
                cleanup(running).await?;
                let now = self.clock();
                self.handle_later(now, Event::CleanedUp);
            }
            Command::RollBack => {
                if self.traffic_at.is_none() {
                    self.not_ready = self.not_ready(running);
                } else {
                    self.decided(running, record).await;
                    self.decided_at = Some(self.now);
                    self.tail = Some("rollback");
                }
                ctx.options.watch.set(Step::Rollback);
                rollback(running).await?;
                let now = self.clock();
                self.handle_later(now, Event::RolledBack);
            }
            Command::Done(outcome) => return Ok(Some(outcome)),
        }
        Ok(None)
    }

    /// Feeds the controller until it is done: carries out its commands,
    /// wakes it on time, answers with what the pods, Prometheus and the
    /// judge say, and stops on Ctrl-C.
    async fn run<C: Controller>(
        &mut self,
        controller: &mut C,
        running: &mut Running,
        record: &mut ReleaseRecord,
    ) -> Result<release::Outcome, (Step, ReleaseError)> {
        self.t0_unix = unix_now();
        self.handle(controller, 0, Event::Start);
        loop {
            let mut done = None;
            while let Some(command) = controller.poll() {
                if let Some(o) = self.execute(command, running, record).await? {
                    done = Some(o);
                    break;
                }
            }
            if let Some(o) = done {
                return Ok(o);
            }
            if running.prometheus.is_none() {
                // After the commit's pods were started: Prometheus scrapes
                // them all from its first scrape. Its start-up does not count
                // against the deploy deadline (controller time waits for it).
                let waited = Instant::now();
                start_prometheus(self.ctx, running).await?;
                self.t0 += waited.elapsed();
                self.t0_unix += waited.elapsed().as_secs_f64();
                self.ctx.options.watch.set(Step::Deploy);
            }
            if let Some(event) = self.immediate.pop_front() {
                let now = self.now;
                self.handle(controller, now, event);
                continue;
            }
            let next_wake = self.wakes.peek().map(|Reverse(t)| *t);
            let wake_at = next_wake.map(|t| self.real(t));
            let cancel = self.ctx.cancel;
            tokio::select! {
                _ = async {
                    match wake_at {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let mut due = 0;
                    while let Some(&Reverse(t)) = self.wakes.peek() {
                        if self.real(t) > Instant::now() {
                            break;
                        }
                        self.wakes.pop();
                        due = due.max(t);
                    }
                    self.handle(controller, due, Event::TimeReached);
                }
                Some(answer) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    let now = self.clock();
                    match answer {
                        Ok(Answer::Judged(interval)) => {
                            let (index, score) = (interval.window.index, interval.result.score.score);
                            record.intervals.push(*interval);
                            self.handle(controller, now, Event::Judged { index, score });
                        }
                        Ok(Answer::Measured { id, value }) => {
                            self.record_measurement(record, id, &value);
                            self.handle(controller, now, Event::Measured { id, value });
                        }
                        Ok(Answer::JudgeFailed(e)) => {
                            self.decided(running, record).await;
                            return Err((Step::Analysis, e));
                        }
                        // Aborted by a decision: nothing to answer.
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => return Err((Step::Analysis, ReleaseError::Task(e.to_string()))),
                    }
                }
                () = cancelled(cancel) => {
                    let step = self.step();
                    if step == Step::Analysis {
                        self.decided(running, record).await;
                        return Err((step, AnalysisError::Cancelled.into()));
                    }
                    return Err((step, ReleaseError::Interrupted {
                        step,
                        detail: "nothing was judged; everything was stopped".into(),
                    }));
                }
                // The pods' readiness probes and crashes.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let now = self.clock();
                    let (events, serving) = self.look_at_pods(running).await;
                    if serving {
                        running
                            .set_weights(self.split)
                            .map_err(|e| (self.step(), e))?;
                    }
                    for event in events {
                        self.handle(controller, now, event);
                    }
                }
            }
        }
    }

    /// The stages up to a failure, as far as the release got.
    fn partial_timeline(&self) -> Vec<StageSpan> {
        let now = self.clock();
        let span = |name: &str, start: Millis, end: Millis| StageSpan {
            name: name.into(),
            start: self.unix(start),
            end: self.unix(end),
        };
        let Some(traffic) = self.traffic_at else {
            return vec![span("deploy", 0, now)];
        };
        let decided = self.decided_at.unwrap_or(now);
        let warmup_end =
            (traffic + ms(self.ctx.plan.schedule.warmup.as_secs_f64() / self.scale())).min(decided);
        let mut stages = vec![
            span("deploy", 0, traffic),
            span("warmup", traffic, warmup_end),
        ];
        if decided > warmup_end {
            stages.push(span("analysis", warmup_end, decided));
        }
        if let (Some(tail), Some(at)) = (self.tail, self.decided_at) {
            stages.push(span(tail, at, now));
        }
        stages
    }

    /// Queues an answer that comes at `now` (after real time passed).
    fn handle_later(&mut self, now: Millis, event: Event) {
        self.now = now.max(self.now);
        self.immediate.push_back(event);
    }

    /// The traffic shift: production must serve, then loadgen starts with
    /// one target per instance (the reserved ones at 0).
    async fn shift_traffic(
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

    /// Fetches the window's series once its last scrape has landed (one
    /// step after its end), judges them, and answers in the background.
    fn judge(
        &mut self,
        running: &Running,
        request: release::JudgeRequest,
    ) -> Result<(), (Step, ReleaseError)> {
        let ctx = self.ctx;
        let w = request.window;
        let start = self.unix(request.origin + ms(w.start.as_secs_f64()));
        let end = self.unix(request.origin + ms(w.end.as_secs_f64()));
        let due = self.real(request.origin + ms(w.end.as_secs_f64())) + ctx.plan.step;
        let api = prometheus_api(running, self.ctx.cancel)?;
        let (config, judge) = (ctx.config.clone(), ctx.judge.clone());
        let (control, experiment) = (ctx.control.clone(), ctx.experiment.clone());
        let (step, seed, scale) = (ctx.plan.step, ctx.options.seed, self.scale());
        self.tasks.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let judged = async {
                let pairs =
                    fetch_pairs(&api, &config, &control, &experiment, start, end, step).await?;
                // Real offsets from the traffic shift, as queried.
                let window = Window {
                    index: w.index,
                    start: w.start.mul_f64(scale),
                    end: w.end.mul_f64(scale),
                };
                judge_window(&judge, &config, &control, window, (start, end), pairs, seed)
            };
            match judged.await {
                Ok(interval) => Answer::Judged(Box::new(interval)),
                Err(e) => Answer::JudgeFailed(e.into()),
            }
        });
        Ok(())
    }

    /// Evaluates a query on the real Prometheus at the request's time (a
    /// range query if it asks for one) and answers in the background.
    fn measure(
        &mut self,
        running: &Running,
        request: release::MeasureRequest,
    ) -> Result<(), (Step, ReleaseError)> {
        let api = prometheus_api(running, self.ctx.cancel)?;
        let promql = self
            .queries
            .get(request.query)
            .map(|q| q.1.clone())
            .unwrap_or_default();
        self.measuring.push((
            request.id,
            request.query,
            request.range.map_or(request.at, |r| r.end),
        ));
        let at = self.unix(request.at);
        let range = request.range.map(|r| {
            (
                self.unix(r.start),
                self.unix(r.end),
                Duration::from_secs_f64(secs(r.step) * self.scale()),
            )
        });
        let due = self.real(request.at) + self.ctx.plan.step;
        self.tasks.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let id = request.id;
            let data = match range {
                Some((start, end, step)) => api.query_range_data(&promql, start, end, step).await,
                None => api.query_data(&promql, at).await,
            };
            let value = match data {
                Ok(data) => measurement(&data),
                Err(e) => Measurement::Error(e.to_string()),
            };
            Answer::Measured { id, value }
        });
        Ok(())
    }

    /// Keeps an answered measurement for the record.
    fn record_measurement(&mut self, record: &mut ReleaseRecord, id: u64, value: &Measurement) {
        let Some(k) = self.measuring.iter().position(|m| m.0 == id) else {
            return;
        };
        let (_, query, at) = self.measuring.swap_remove(k);
        let (name, promql) = self.queries.get(query).cloned().unwrap_or_default();
        let since_shift = at.saturating_sub(self.traffic_at.unwrap_or(0));
        record.measurements.push(Measured {
            query: name,
            promql,
            at: self.unix(at),
            scenario_s: secs(since_shift),
            value: value.clone(),
        });
    }

    /// The analysis is over: the series of the whole analysis for the
    /// report (once).
    async fn decided(&mut self, running: &Running, record: &mut ReleaseRecord) {
        self.tasks.abort_all();
        if self.series_fetched {
            return;
        }
        self.series_fetched = true;
        if let (Some(p), Some(traffic_at)) = (&running.prometheus, record.traffic_at) {
            fetch_series(self.ctx, p, traffic_at, record).await;
        }
    }

    /// Why the canary or baseline is not ready: the first such slot still
    /// waiting, its exits and last exit.
    fn not_ready(&self, running: &Running) -> Option<ReleaseError> {
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

    /// Stops `count` canary pods (a peer's `setCanaryScale` down): not yet
    /// ready ones first, then the last started; the canary's share goes to
    /// the rest.
    async fn stop_pods(
        &mut self,
        running: &mut Running,
        track: PodTrack,
        count: u32,
    ) -> Result<(), ReleaseError> {
        if track != PodTrack::Canary {
            return Ok(());
        }
        let not_ready: Vec<usize> = self
            .pods
            .starting_slots()
            .into_iter()
            .filter(|&i| running.slots[i].track == Track::Canary)
            .collect();
        let serving = indices(running, Track::Canary)
            .into_iter()
            .rev()
            .filter(|&i| running.slots[i].goose.is_some() && !not_ready.contains(&i));
        let mut victims: Vec<usize> = not_ready.iter().copied().chain(serving).collect();
        victims.truncate(count as usize);
        for i in victims {
            self.pods.forget(i);
            running.slots[i].serving = false;
            running.stop_slot(i).await;
        }
        running.set_weights(self.split)?;
        running.update_targets()
    }

    /// Reports pods that became ready or crashed (also after they were
    /// ready) since the last look; a canary pod ready after the traffic
    /// shift (a peer's scale-up) starts serving (`true`: the weights must be
    /// set again).
    async fn look_at_pods(&mut self, running: &mut Running) -> (Vec<Event>, bool) {
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
                if !before.contains(&i) && slot.track == Track::Canary && !slot.serving {
                    slot.serving = true;
                    serve = true;
                }
            }
        }
        (events, serve)
    }
}

/// Runs `controller` to its end on loopback. Production runs before the
/// commit (in a real cluster it would); the controller's pods, weights,
/// windows and promotion are carried out as the module docs say. A deploy
/// that times out ends as [`ReleaseError::NotReady`] naming the pod, after
/// the controller's rollback.
pub(super) async fn drive<C: Controller>(
    ctx: &Context<'_>,
    running: &mut Running,
    record: &mut ReleaseRecord,
    controller: &mut C,
) -> Result<(ReleaseEnd, AnalysisRun), (Step, ReleaseError)> {
    let plan = ctx.plan;
    let watch = &ctx.options.watch;
    watch.set(Step::Deploy);
    let deploy = |e: ReleaseError| (Step::Deploy, e);

    // Every listener first, so loadgen knows every address up front.
    let mut add = |name: String, track: Track| -> Result<(), ReleaseError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(ReleaseError::Reserve)?;
        let addr = listener.local_addr().map_err(ReleaseError::Reserve)?;
        let labels = ctx.names.target_labels(track, &name);
        running.slots.push(Slot {
            name,
            track,
            addr,
            listener: Some(listener),
            goose: None,
            serving: false,
            labels,
        });
        Ok(())
    };
    let production = plan.production_replicas.max(1);
    for i in 0..production {
        add(format!("production-{i}"), Track::Production).map_err(deploy)?;
    }
    for i in 0..plan.baseline_replicas {
        add(format!("baseline-{i}"), Track::Baseline).map_err(deploy)?;
    }
    for i in 0..ctx.canary_slots {
        add(format!("canary-{i}"), Track::Canary).map_err(deploy)?;
    }
    for i in 0..production {
        add(format!("production-new-{i}"), Track::Next).map_err(deploy)?;
    }
    for i in indices(running, Track::Production) {
        let config = instance_config(ctx, Track::Production, i as u64);
        start_slot(ctx, &mut running.slots[i], config)
            .await
            .map_err(deploy)?;
    }

    let mut driver = Driver {
        ctx,
        t0: Instant::now(),
        t0_unix: record.started_at,
        now: 0,
        wakes: BinaryHeap::new(),
        immediate: VecDeque::new(),
        pods: PodWatch::default(),
        split: plan.split_at(Duration::ZERO),
        traffic_at: None,
        tasks: JoinSet::new(),
        not_ready: None,
        series_fetched: false,
        // Range selectors follow the time scale, as in the config's queries.
        queries: controller
            .queries()
            .iter()
            .map(|q| {
                let promql = if ctx.options.scale_ranges {
                    scale_ranges(&q.promql, ctx.options.time_scale)
                } else {
                    q.promql.clone()
                };
                (q.name.clone(), promql)
            })
            .collect(),
        measuring: Vec::new(),
        decided_at: None,
        tail: None,
    };
    // The deploy counts from the commit (the release's start).
    let result = driver.run(controller, running, record).await;
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            if record.timeline.is_empty() {
                record.timeline = driver.partial_timeline();
            }
            return Err(e);
        }
    };

    record.timeline = outcome
        .timeline
        .iter()
        .map(|s| StageSpan {
            name: s.name.into(),
            start: driver.unix(s.start),
            end: driver.unix(s.end),
        })
        .collect();
    let scores = record
        .intervals
        .iter()
        .map(|i| i.result.score.score)
        .collect();
    let last_window_end = record.intervals.last().map(|i| i.window.end);
    let Some(verdict) = outcome.analysis(scores, last_window_end, ctx.options.time_scale) else {
        // Not promoted nor rolled back: no verdict.
        return Err(match outcome.end {
            ReleaseEnd::DeployFailed => (
                Step::Deploy,
                driver.not_ready.take().unwrap_or_else(|| {
                    ReleaseError::Task(format!("the deploy failed: {}", outcome.reason))
                }),
            ),
            other => (
                driver.step(),
                ReleaseError::Task(format!(
                    "the release ended with {other}: {}",
                    outcome.reason
                )),
            ),
        });
    };
    let end = verdict.end;
    let analysis = AnalysisRun {
        outcome: verdict,
        intervals: record.intervals.clone(),
    };
    record.outcome = Some(analysis.outcome.clone());
    Ok((end, analysis))
}
