//! An AnalysisRun as Argo's analysis controller runs it (`analysis/analysis.go`):
//! which metrics are measured when (`generateMetricTasks`), how a measurement
//! counts (`runMeasurements`), a metric's phase (`assessMetricStatus`,
//! `assessMetricFailureInconclusiveOrError`), the run's phase
//! (`assessRunStatus`, `utils/analysis/helpers.go` `IsTerminating`, `IsWorse`)
//! and a measurement's phase from its value (`utils/evaluate/evaluate.go`
//! `EvaluateResult`; `metricproviders/prometheus/prometheus.go`
//! `processResponse`; `metricproviders/kayenta/kayenta.go` `evaluateResult`).

use std::time::Duration;

use crate::argo::spec::{Metric, Provider, RunSpec};
use crate::control::{JudgeRequest, Query, QueryRange, QueryResult};
use crate::expr::Value;

/// `analysis.go` `DefaultErrorRetryInterval`.
pub const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// `kayenta.go` `resumeDelay`: the score is read 15 s after the request.
pub const KAYENTA_RESUME_DELAY: Duration = Duration::from_secs(15);

/// `AnalysisPhase`, ordered best to worst as `analysisStatusOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Successful
    Successful,
    /// Running
    Running,
    /// Pending
    Pending,
    /// Inconclusive
    Inconclusive,
    /// Error
    Error,
    /// Failed
    Failed,
}

impl Phase {
    /// `AnalysisPhase.Completed`
    pub fn completed(self) -> bool {
        matches!(
            self,
            Phase::Successful | Phase::Failed | Phase::Error | Phase::Inconclusive
        )
    }
}

/// `EvaluateResult`: a measurement's phase from its value, and the error
/// message when it is an Error.
pub fn evaluate_result(metric: &Metric, result: &Value) -> (Phase, Option<String>) {
    let mut success = false;
    let mut fail = false;
    if let Some(c) = &metric.success {
        match c.eval(result) {
            Ok(b) => success = b,
            Err(e) => {
                return (
                    Phase::Error,
                    Some(format!(
                        "could not evaluate successCondition {:?}: {e}",
                        c.source()
                    )),
                );
            }
        }
    }
    if let Some(c) = &metric.failure {
        match c.eval(result) {
            Ok(b) => fail = b,
            Err(e) => {
                return (
                    Phase::Error,
                    Some(format!(
                        "could not evaluate failureCondition {:?}: {e}",
                        c.source()
                    )),
                );
            }
        }
    }
    match (&metric.success, &metric.failure) {
        (None, None) => return (Phase::Successful, None),
        (Some(_), None) => fail = !success,
        (None, Some(_)) => success = !fail,
        _ => {}
    }
    if fail {
        (Phase::Failed, None)
    } else if !success {
        (Phase::Inconclusive, None)
    } else {
        (Phase::Successful, None)
    }
}

/// `processResponse`: what `result` is for each Prometheus result type.
pub fn prometheus_value(result: &QueryResult) -> Result<Value, String> {
    let floats = |v: &mut dyn Iterator<Item = f64>| Value::Array(v.map(Value::Float).collect());
    match result {
        QueryResult::Scalar(f) => Ok(Value::Float(*f)),
        QueryResult::Vector(v) => Ok(floats(&mut v.iter().copied())),
        QueryResult::Matrix(m) => Ok(floats(&mut m.iter().flatten().copied())),
        QueryResult::Failed(msg) => Err(msg.clone()),
    }
}

/// Kayenta provider's `evaluateResult` on the score truncated to an int.
pub fn kayenta_phase(score: f64, pass: i64, marginal: i64) -> Phase {
    let s = score as i64;
    if s >= pass {
        Phase::Successful
    } else if s >= marginal {
        Phase::Inconclusive
    } else {
        Phase::Failed
    }
}

/// `MetricResult`'s counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Count (Successful + Failed + Inconclusive)
    pub count: u32,
    /// Successful
    pub successful: u32,
    /// Failed
    pub failed: u32,
    /// Inconclusive
    pub inconclusive: u32,
    /// Error
    pub error: u32,
    /// ConsecutiveError
    pub consecutive_error: u32,
    /// ConsecutiveSuccess
    pub consecutive_success: u32,
}

#[derive(Debug, Clone)]
struct MetricState {
    spec: Metric,
    /// `MetricResult` exists (after the first measurement started)
    has_result: bool,
    phase: Phase,
    counters: Counters,
    last_finished: Option<Duration>,
    last_phase: Option<Phase>,
    /// a measurement asked for and not yet answered: (id, started at)
    in_flight: Option<(u64, Duration)>,
    /// a Kayenta score read at this time: (ready at, phase)
    resume: Option<(Duration, Phase)>,
    message: String,
}

/// A measurement the run wants taken now.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Prometheus query
    Query(Query),
    /// Kayenta judgement
    Judge(JudgeRequest),
}

/// One AnalysisRun.
#[derive(Debug, Clone)]
pub struct AnalysisRun {
    metrics: Vec<MetricState>,
    started_at: Duration,
    terminate: bool,
    phase: Phase,
    message: String,
}

impl AnalysisRun {
    /// Created at `now` (the controller's first reconcile sets `startedAt`).
    pub fn new(spec: &RunSpec, now: Duration) -> Self {
        Self {
            metrics: spec
                .metrics
                .iter()
                .map(|m| MetricState {
                    spec: m.clone(),
                    has_result: false,
                    phase: Phase::Pending,
                    counters: Counters::default(),
                    last_finished: None,
                    last_phase: None,
                    in_flight: None,
                    resume: None,
                    message: String::new(),
                })
                .collect(),
            started_at: now,
            terminate: false,
            phase: Phase::Running,
            message: String::new(),
        }
    }

    /// The run's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why the run ended as it did.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A metric's counters, by name.
    pub fn counters(&self, name: &str) -> Option<&Counters> {
        self.metrics
            .iter()
            .find(|m| m.spec.name == name)
            .map(|m| &m.counters)
    }

    /// Any measurement asked for and not answered yet.
    pub fn waiting(&self) -> bool {
        self.metrics.iter().any(|m| m.in_flight.is_some())
    }

    /// `IsTerminating`
    fn terminating(&self) -> bool {
        self.terminate
            || self.metrics.iter().any(|m| {
                !m.spec.dry_run
                    && m.has_result
                    && matches!(m.phase, Phase::Failed | Phase::Error | Phase::Inconclusive)
            })
    }

    /// `spec.terminate = true` (the Rollout cancels the run), then a reconcile.
    pub fn terminate(&mut self, now: Duration) {
        self.terminate = true;
        self.settle(now);
    }

    /// `generateMetricTasks` at `now`: the measurements to take, with ids from `next_id`.
    pub fn tasks(&mut self, now: Duration, next_id: &mut u64) -> Vec<(u64, Task)> {
        if self.phase.completed() {
            return Vec::new();
        }
        // finish Kayenta measurements whose score is due
        let mut resumed = false;
        for m in &mut self.metrics {
            if let Some((ready, phase)) = m.resume
                && ready <= now
            {
                m.resume = None;
                record(m, phase, ready, String::new());
                resumed = true;
            }
        }
        if resumed {
            self.settle(now);
            if self.phase.completed() {
                return Vec::new();
            }
        }
        let terminating = self.terminating();
        let started = self.started_at;
        let mut out = Vec::new();
        for m in &mut self.metrics {
            if m.phase.completed() && m.has_result {
                continue;
            }
            if m.in_flight.is_some() || m.resume.is_some() || terminating {
                continue;
            }
            let due = match m.last_finished {
                None => started + m.spec.initial_delay.unwrap_or_default(),
                Some(fin) => {
                    if let Some(c) = m.spec.effective_count
                        && m.counters.count >= c
                    {
                        continue;
                    }
                    let interval = if m.last_phase == Some(Phase::Error) {
                        ERROR_RETRY_INTERVAL
                    } else {
                        m.spec.interval.unwrap_or(ERROR_RETRY_INTERVAL)
                    };
                    fin + interval
                }
            };
            if due > now {
                continue;
            }
            let id = *next_id;
            *next_id += 1;
            m.in_flight = Some((id, now));
            m.has_result = true;
            let task = match &m.spec.provider {
                Provider::Prometheus {
                    query,
                    range,
                    index,
                } => Task::Query(Query {
                    index: *index,
                    promql: query.clone(),
                    at: now,
                    range: range.map(|r| QueryRange {
                        start: now.saturating_sub(r.start_before),
                        end: now.saturating_sub(r.end_before),
                        step: r.step,
                    }),
                }),
                Provider::Kayenta {
                    canary_config_name,
                    pass,
                    marginal,
                    scopes,
                    lookback,
                } => {
                    let start = if *lookback {
                        started
                    } else {
                        now.saturating_sub(m.spec.interval.unwrap_or_default())
                    };
                    Task::Judge(JudgeRequest {
                        canary_config_name: canary_config_name.clone(),
                        scopes: scopes.clone(),
                        start,
                        end: now,
                        pass: *pass,
                        marginal: *marginal,
                    })
                }
            };
            out.push((id, task));
        }
        out
    }

    /// The answer to a Prometheus measurement. Returns false if `id` is not this run's.
    pub fn measured(&mut self, id: u64, result: &QueryResult) -> bool {
        let Some(m) = self
            .metrics
            .iter_mut()
            .find(|m| m.in_flight.map(|f| f.0) == Some(id))
        else {
            return false;
        };
        let (_, at) = m.in_flight.take().unwrap_or((id, Duration::ZERO));
        let (phase, msg) = match prometheus_value(result) {
            Err(e) => (Phase::Error, Some(e)),
            Ok(v) => evaluate_result(&m.spec, &v),
        };
        record(m, phase, at, msg.unwrap_or_default());
        if !self.waiting() {
            self.settle(at);
        }
        true
    }

    /// The answer to a Kayenta judgement: the score is read at
    /// request time + 15 s (`Resume`). Returns false if `id` is not this run's.
    pub fn judged(&mut self, id: u64, score: &Result<f64, String>) -> bool {
        let Some(m) = self
            .metrics
            .iter_mut()
            .find(|m| m.in_flight.map(|f| f.0) == Some(id))
        else {
            return false;
        };
        let (_, at) = m.in_flight.take().unwrap_or((id, Duration::ZERO));
        match (score, &m.spec.provider) {
            (Ok(s), Provider::Kayenta { pass, marginal, .. }) => {
                m.resume = Some((
                    at + KAYENTA_RESUME_DELAY,
                    kayenta_phase(*s, *pass, *marginal),
                ));
            }
            (Err(e), _) => {
                record(m, Phase::Error, at, e.clone());
                if !self.waiting() {
                    self.settle(at);
                }
            }
            _ => {}
        }
        true
    }

    /// When this run next needs a reconcile (`calculateNextReconcileTime`).
    pub fn next_wake(&self) -> Option<Duration> {
        if self.phase.completed() || self.waiting() {
            return None;
        }
        let mut best: Option<Duration> = None;
        for m in &self.metrics {
            if m.phase.completed() && m.has_result {
                continue;
            }
            let t = if let Some((ready, _)) = m.resume {
                Some(ready)
            } else {
                match m.last_finished {
                    None => Some(self.started_at + m.spec.initial_delay.unwrap_or_default()),
                    Some(fin) => {
                        if m.spec
                            .effective_count
                            .is_some_and(|c| m.counters.count >= c)
                        {
                            None
                        } else if m.last_phase == Some(Phase::Error) {
                            Some(fin + ERROR_RETRY_INTERVAL)
                        } else {
                            m.spec.interval.map(|i| fin + i)
                        }
                    }
                }
            };
            if let Some(t) = t {
                best = Some(best.map_or(t, |b: Duration| b.min(t)));
            }
        }
        best
    }

    /// `assessRunStatus`, repeated while a metric's completion makes the run
    /// terminate (the status update triggers an immediate second reconcile).
    fn settle(&mut self, _now: Duration) {
        for _ in 0..2 {
            let terminating = self.terminating();
            let (phase, msg) = self.assess(terminating);
            self.phase = phase;
            if !msg.is_empty() {
                self.message = msg;
            }
            if phase.completed() || !self.terminating() {
                break;
            }
        }
    }

    fn assess(&mut self, terminating: bool) -> (Phase, String) {
        let mut worst: Option<Phase> = None;
        let mut worst_msg = String::new();
        let mut everything_completed = true;
        for m in &mut self.metrics {
            if !m.has_result {
                everything_completed = false;
                continue;
            }
            let status = assess_metric(m, terminating);
            m.phase = status;
            if !status.completed() {
                everything_completed = false;
                continue;
            }
            if !m.spec.dry_run {
                if worst.is_none_or(|w| status > w) {
                    worst = Some(status);
                    let (_, why) = failure_inconclusive_error(&m.spec, &m.counters);
                    worst_msg = match why {
                        Some(why) => {
                            format!("Metric {:?} assessed {status:?} due to {why}", m.spec.name)
                        }
                        None => String::new(),
                    };
                    if !m.message.is_empty() && !worst_msg.is_empty() {
                        worst_msg += &format!(": \"Error Message: {}\"", m.message);
                    }
                }
            } else if worst.is_none() {
                worst = Some(Phase::Successful);
            }
        }
        if terminating {
            return (worst.unwrap_or(Phase::Successful), worst_msg);
        }
        match worst {
            Some(w) if everything_completed => (w, worst_msg),
            _ => (Phase::Running, String::new()),
        }
    }
}

/// `runMeasurements`' bookkeeping of a completed measurement.
fn record(m: &mut MetricState, phase: Phase, at: Duration, message: String) {
    let c = &mut m.counters;
    match phase {
        Phase::Successful => {
            c.successful += 1;
            c.count += 1;
            c.consecutive_error = 0;
            c.consecutive_success += 1;
        }
        Phase::Failed => {
            c.failed += 1;
            c.count += 1;
            c.consecutive_error = 0;
            c.consecutive_success = 0;
        }
        Phase::Inconclusive => {
            c.inconclusive += 1;
            c.count += 1;
            c.consecutive_error = 0;
            c.consecutive_success = 0;
        }
        _ => {
            c.error += 1;
            c.consecutive_error += 1;
            c.consecutive_success = 0;
        }
    }
    m.last_finished = Some(at);
    m.last_phase = Some(phase);
    m.message = message;
}

/// `assessMetricFailureInconclusiveOrError`: later rules override earlier
/// ones, so Error beats Inconclusive beats Failed.
fn failure_inconclusive_error(spec: &Metric, c: &Counters) -> (Option<Phase>, Option<String>) {
    let mut out = (None, None);
    if spec.failure_limit >= 0 && i64::from(c.failed) > spec.failure_limit {
        out = (
            Some(Phase::Failed),
            Some(format!(
                "failed ({}) > failureLimit ({})",
                c.failed, spec.failure_limit
            )),
        );
    }
    if i64::from(c.inconclusive) > spec.inconclusive_limit {
        out = (
            Some(Phase::Inconclusive),
            Some(format!(
                "inconclusive ({}) > inconclusiveLimit ({})",
                c.inconclusive, spec.inconclusive_limit
            )),
        );
    }
    if i64::from(c.consecutive_error) > spec.consecutive_error_limit {
        out = (
            Some(Phase::Error),
            Some(format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({})",
                c.consecutive_error, spec.consecutive_error_limit
            )),
        );
    }
    out
}

/// `assessMetricStatus`
fn assess_metric(m: &MetricState, terminating: bool) -> Phase {
    if m.phase.completed() {
        return m.phase;
    }
    if m.last_phase.is_none() {
        if m.in_flight.is_some() || m.resume.is_some() {
            return Phase::Running;
        }
        return if terminating {
            Phase::Successful
        } else {
            Phase::Pending
        };
    }
    if m.in_flight.is_some() || m.resume.is_some() {
        return Phase::Running;
    }
    if let (Some(p), _) = failure_inconclusive_error(&m.spec, &m.counters) {
        return p;
    }
    let csl = m.spec.consecutive_success_limit;
    if csl > 0 && i64::from(m.counters.consecutive_success) >= csl {
        return Phase::Successful;
    }
    if let Some(c) = m.spec.effective_count
        && m.counters.count >= c
    {
        let failure_applicable = m.spec.failure_limit >= 0;
        let success_applicable = csl > 0;
        return match (failure_applicable, success_applicable) {
            (true, true) => Phase::Inconclusive,
            (false, true) => Phase::Failed,
            _ => Phase::Successful,
        };
    }
    if terminating {
        return Phase::Successful;
    }
    Phase::Running
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argo::spec::{Metric, Provider};
    use crate::expr::Condition;

    fn metric(success: Option<&str>, failure: Option<&str>) -> Metric {
        Metric {
            name: "m".into(),
            interval: None,
            initial_delay: None,
            effective_count: Some(1),
            success: success.map(|s| Condition::parse(s).expect("parses")),
            failure: failure.map(|s| Condition::parse(s).expect("parses")),
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: 4,
            consecutive_success_limit: 0,
            provider: Provider::Prometheus {
                query: "q".into(),
                range: None,
                index: 0,
            },
            dry_run: false,
        }
    }

    /// evaluate.go EvaluateResult
    #[test]
    fn evaluate_result_table() {
        let f = |x: f64| Value::Float(x);
        assert_eq!(
            evaluate_result(&metric(None, None), &f(1.0)).0,
            Phase::Successful
        );
        assert_eq!(
            evaluate_result(&metric(Some("result > 1"), None), &f(2.0)).0,
            Phase::Successful
        );
        assert_eq!(
            evaluate_result(&metric(Some("result > 1"), None), &f(0.0)).0,
            Phase::Failed
        );
        assert_eq!(
            evaluate_result(&metric(None, Some("result > 1")), &f(2.0)).0,
            Phase::Failed
        );
        assert_eq!(
            evaluate_result(&metric(None, Some("result > 1")), &f(0.0)).0,
            Phase::Successful
        );
        let both = metric(Some("result > 2"), Some("result < 1"));
        assert_eq!(evaluate_result(&both, &f(1.5)).0, Phase::Inconclusive);
        assert_eq!(evaluate_result(&both, &f(3.0)).0, Phase::Successful);
        assert_eq!(evaluate_result(&both, &f(0.0)).0, Phase::Failed);
        // both true: failure wins
        let overlap = metric(Some("result > 0"), Some("result > 0"));
        assert_eq!(evaluate_result(&overlap, &f(1.0)).0, Phase::Failed);
        let (p, msg) = evaluate_result(&metric(Some("result[0] > 1"), None), &Value::Array(vec![]));
        assert_eq!(p, Phase::Error);
        assert!(
            msg.unwrap_or_default()
                .contains("could not evaluate successCondition")
        );
    }

    /// prometheus.go processResponse: scalar → float, vector → list, matrix → flattened
    #[test]
    fn prometheus_result_shapes() {
        assert_eq!(
            prometheus_value(&QueryResult::Scalar(1.0)),
            Ok(Value::Float(1.0))
        );
        assert_eq!(
            prometheus_value(&QueryResult::Vector(vec![1.0, 2.0])),
            Ok(Value::Array(vec![Value::Float(1.0), Value::Float(2.0)]))
        );
        assert_eq!(
            prometheus_value(&QueryResult::Matrix(vec![vec![1.0], vec![2.0, 3.0]])),
            Ok(Value::Array(vec![
                Value::Float(1.0),
                Value::Float(2.0),
                Value::Float(3.0)
            ]))
        );
        assert!(prometheus_value(&QueryResult::Failed("x".into())).is_err());
    }

    /// analysis.go assessMetricFailureInconclusiveOrError: later checks override
    /// earlier ones, so Error beats Inconclusive beats Failed.
    #[test]
    fn error_beats_inconclusive_beats_failed() {
        let m = metric(Some("true"), None);
        let c = |failed, inconclusive, consecutive_error| Counters {
            failed,
            inconclusive,
            consecutive_error,
            ..Counters::default()
        };
        assert_eq!(
            failure_inconclusive_error(&m, &c(1, 0, 0)).0,
            Some(Phase::Failed)
        );
        assert_eq!(
            failure_inconclusive_error(&m, &c(1, 1, 0)).0,
            Some(Phase::Inconclusive)
        );
        assert_eq!(
            failure_inconclusive_error(&m, &c(1, 1, 5)).0,
            Some(Phase::Error)
        );
        assert_eq!(failure_inconclusive_error(&m, &c(0, 0, 4)).0, None);
        let mut off = m.clone();
        off.failure_limit = -1;
        assert_eq!(failure_inconclusive_error(&off, &c(9, 0, 0)).0, None);
    }

    /// kayenta.go evaluateResult on int(score)
    #[test]
    fn kayenta_thresholds() {
        assert_eq!(kayenta_phase(75.9, 76, 50), Phase::Inconclusive);
        assert_eq!(kayenta_phase(76.0, 76, 50), Phase::Successful);
        assert_eq!(kayenta_phase(49.99, 76, 50), Phase::Failed);
    }
}
