//! The driver loop of a local release: feeds the controller (Kayenta or a
//! peer's rules) its events and carries out its commands on loopback, with
//! controller time mapped onto real time by the time scale; see the
//! module docs of [`super`]. Its background queries are `queries.rs`;
//! which pods serve, `serving.rs`.
//!
//! Not for: the processes it starts and their weights (`running.rs`,
//! `instance.rs`), the promotion and rollback (`promote.rs`), nor
//! starting and asking Prometheus (`prometheus.rs`).

mod queries;
mod serving;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use release::{Command, Controller, Event, Millis, ReleaseEnd, Track as PodTrack, ms, secs};
use tokio::task::JoinSet;

use super::context::Context;
use super::instance::{instance_config, start_slot};
use super::prometheus::start_prometheus;
use super::promote::{cleanup, promote, rollback};
use super::running::{Running, Slot, Track, indices};
use super::{ReleaseError, ReleaseRecord, StageSpan, Step};
use crate::analysis::{AnalysisError, AnalysisRun, unix_now};
use crate::cancel::cancelled;
use crate::local::pods::PodWatch;
use crate::plan::Split;
use crate::ranges::scale_ranges;
use queries::Answer;

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
                let split = split.into();
                self.production_ready_for(running, split).await;
                self.split = split;
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
    // A peer's scaled-up stable pods are new pods, as in a cluster: slots
    // of their own after the replicas, started when asked for.
    for i in 0..production + ctx.production_spares {
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
    for i in indices(running, Track::Production)
        .into_iter()
        .take(production as usize)
    {
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
