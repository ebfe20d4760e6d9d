//! The driver's background work: each window fetched from Prometheus
//! once its last scrape has landed and judged, each of a peer's
//! measurements evaluated, both answered as an [`Answer`]; and, once the
//! analysis is decided, the whole analysis's series for the record.
//!
//! Not for: the loop that feeds the answers to the controller
//! (`mod.rs`), nor the queries themselves (`crate::analysis`,
//! `crate::prom`).

use std::time::Duration;

use judge::analysis::Window;
use release::{Measurement, ms, secs};

use super::Driver;
use crate::analysis::{JudgedInterval, fetch_pairs, judge_window};
use crate::local::run::prometheus::{fetch_series, measurement, prometheus_api};
use crate::local::run::running::Running;
use crate::local::run::{Measured, ReleaseError, ReleaseRecord, Step};

/// What the driver's background work answers with.
pub(super) enum Answer {
    /// A window fetched and judged.
    Judged(Box<JudgedInterval>),
    /// A window could not be fetched or judged: the release stops.
    JudgeFailed(ReleaseError),
    /// A [`Command::Measure`](release::Command::Measure) evaluated.
    Measured { id: u64, value: Measurement },
}

impl Driver<'_, '_> {
    /// Fetches the window's series once its last scrape has landed (one
    /// step after its end), judges them, and answers in the background.
    pub(super) fn judge(
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
    pub(super) fn measure(
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
    pub(super) fn record_measurement(
        &mut self,
        record: &mut ReleaseRecord,
        id: u64,
        value: &Measurement,
    ) {
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
    pub(super) async fn decided(&mut self, running: &Running, record: &mut ReleaseRecord) {
        self.tasks.abort_all();
        if self.series_fetched {
            return;
        }
        self.series_fetched = true;
        if let (Some(p), Some(traffic_at)) = (&running.prometheus, record.traffic_at) {
            fetch_series(self.ctx, p, traffic_at, record).await;
        }
    }
}
