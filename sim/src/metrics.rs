//! Kayenta's metrics on the simulated Prometheus.
//!
//! Every metric of the canary config becomes two PromQL queries, one per
//! scope (canary and control), as Kayenta's Prometheus provider builds them
//! ([`scenarios::query::build_query`], or the scenario's
//! `[analysis.signals]` for other metric stores), parsed once per scenario
//! by the `prom` evaluator. A judged window is what Kayenta fetches: a range
//! query over `[start, end]` with the scrape step as its step, every point
//! Prometheus returns (a step without a result is no point; a `NaN` is a
//! `NaN`), the values handed to the judge.
//!
//! # Compiled plans
//!
//! Evaluating PromQL over per-pod series at every point of every window
//! would cost milliseconds a run; the main job runs thousands per second.
//! So each query is also compiled, once, from its syntax tree and its
//! selectors resolved against the label sets the run's pods expose
//! ([`crate::prometheus`]'s layout), into a [`Program`] over the
//! generator's per-track columns (what each track served per step). A
//! program exists only for shapes whose value it gives exactly as the
//! evaluator gives it on the raw series, under conditions checked at each
//! point:
//!
//! - `sum`/`avg` (and `min`/`max` of one series) of `rate` or `increase`
//!   over a selector that matches, for one track, every pod's series of one
//!   family (and a set of its codes): with the rate window a whole number
//!   of scrape steps, the point on the scrape grid and the track up (so
//!   scraped) at every scrape in the window, Prometheus's window holds a
//!   sample at each end and `extrapolatedRate` extrapolates nothing: the
//!   rate is the window's increments over its length, and the pods'
//!   increments sum to the track's;
//! - `histogram_quantile(q, sum by (le) (rate(BUCKETS[w])))` over every
//!   bucket series of one track, likewise (Prometheus's `bucketQuantile`
//!   on the summed rates);
//! - `avg`/`min`/`max`/`sum` of a memory gauge over a track's pods (every
//!   pod reports the same value; a track down at the point has a stale or
//!   no series: no point);
//! - numbers, and `+ - * /` between these.
//!
//! Anything else, and any point where a condition fails (the first rate
//! window after the traffic shift, a crash-looping track, a point off the
//! scrape grid), is answered by the evaluator itself on the raw series
//! ([`Point::Fallback`]), which the driver scrapes for the purpose. A test
//! checks programs against the evaluator at every step of catalog runs.

use prom::{Engine, Query, Store, Value};
use promql_parser::parser::token;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality, VectorSelector,
};
use scenarios::query::{ScopeVars, metric_query};
use scenarios::telemetry::TelemetryTrack;

use crate::prometheus::{EPOCH_MS, Fam, Families, Layout, Resolver, SeriesInfo, istio_bounds_ms};
use crate::series::{
    DURATION_BUCKETS, GOLDENGOOSE, Generator, ISTIO_BUCKETS, Step, UNION, UNION_BOUNDS,
    fold_buckets,
};

/// Buckets of Istio's histogram (the last is +Inf).
const ISTIO: usize = ISTIO_BUCKETS.len() + 1;

/// One point of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    /// Prometheus's value.
    Value(f64),
    /// Prometheus returns nothing at this time.
    Absent,
    /// The program cannot tell: evaluate the query.
    Fallback,
}

/// A per-step column of a track (summed over its pods).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    /// Requests answered 200.
    Ok,
    /// Requests answered 500.
    Errors,
    /// All requests.
    Requests,
    /// The latency sum, times a unit factor (1 s, 1000 ms).
    LatencySum(f64),
    /// CPU seconds.
    Cpu,
}

/// A compiled query (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// A number.
    Const(f64),
    /// `lhs op rhs`, `op` one of `+ - * /`.
    Binary(u16, Box<Program>, Box<Program>),
    /// `rate` (or `increase`) summed over the matched series, divided by
    /// `divisor` (the series count for `avg`).
    Rate {
        /// Track (0 canary, 1 control).
        track: usize,
        /// What is counted.
        col: Col,
        /// Rate window, scrape steps.
        steps: usize,
        /// `increase` rather than `rate`.
        increase: bool,
        /// 1, or the matched series for `avg`.
        divisor: f64,
    },
    /// `histogram_quantile(q, sum by (le) (rate(buckets[w])))`.
    Quantile {
        /// The quantile.
        q: f64,
        /// Track.
        track: usize,
        /// Istio's buckets (milliseconds), else goldengoose's.
        istio: bool,
        /// Rate window, scrape steps.
        steps: usize,
    },
    /// The memory gauge of a track's pods, times `factor` (1 for
    /// avg/min/max, the pods for sum).
    Memory {
        /// Track.
        track: usize,
        /// 1 or the pod count.
        factor: f64,
    },
    /// Evaluated by the evaluator.
    Fallback,
}

/// One scope's query of a metric.
#[derive(Debug, Clone)]
struct Scoped {
    query: Query,
    program: Program,
}

/// The canary config's metrics, compiled once per scenario.
#[derive(Debug, Clone, Default)]
pub struct KayentaPlan {
    /// Per metric: name, canary's and control's queries.
    metrics: Vec<(String, [Scoped; 2])>,
    /// Per track, the families the queries read.
    families: [Families; 2],
    step_ms: i64,
    /// Per metric and side, the next metric whose program on that side
    /// slides the same window (see [`KayentaPlan::shares_window`]).
    partners: Vec<[Option<usize>; 2]>,
}

impl KayentaPlan {
    /// Build, parse and compile every metric's queries of `scenario`
    /// (its `${scope}` the canary's and the control's `version`); an error
    /// names the metric and the query.
    pub fn new(
        scenario: &scenarios::Scenario,
        layout: &Layout<'_>,
    ) -> Result<Self, judge::InputError> {
        Self::with_resolver(scenario, layout, &Resolver::new(layout))
    }

    /// [`KayentaPlan::new`] against `layout`'s series already listed in
    /// `resolver` (a scenario lists them once for both of its plans).
    pub(crate) fn with_resolver(
        scenario: &scenarios::Scenario,
        layout: &Layout<'_>,
        resolver: &Resolver,
    ) -> Result<Self, judge::InputError> {
        let t = layout.telemetry;
        let scopes = [
            t.track(TelemetryTrack::Canary).version,
            t.track(layout.control).version,
        ];
        let compiler = Compiler {
            resolver,
            step_ms: layout.step_ms,
        };
        let mut families = [Families::default(); 2];
        let mut metrics = Vec::with_capacity(scenario.config.metrics.len());
        for (i, (m, source)) in scenario
            .config
            .metrics
            .iter()
            .zip(&scenario.sources)
            .enumerate()
        {
            let scoped = |scope: &str| -> Result<Scoped, judge::InputError> {
                let bad = |e: String| judge::InputError::at(format!("metrics[{i}].query"), e);
                let text = metric_query(&scenario.config, i, source, &ScopeVars::new(scope))
                    .map_err(|e| bad(e.to_string()))?;
                let query =
                    parse_once(&text).map_err(|e| bad(format!("metric \"{}\": {e}", m.name)))?;
                let program = compiler.compile(query.expr());
                Ok(Scoped { query, program })
            };
            let pair = [scoped(&scopes[0])?, scoped(&scopes[1])?];
            for s in &pair {
                let read = compiler.resolver.families(s.query.expr());
                families = [families[0].or(read[0]), families[1].or(read[1])];
            }
            metrics.push((m.name.clone(), pair));
        }
        let partners = (0..metrics.len())
            .map(|m| {
                [0, 1].map(|side| {
                    let window = |p: &Program| match *p {
                        Program::Quantile {
                            track,
                            istio,
                            steps,
                            ..
                        } => Some((track, istio, steps)),
                        _ => None,
                    };
                    let of = |m: usize| window(&metrics[m].1[side].program);
                    let mine = of(m)?;
                    (m + 1..metrics.len()).find(|&m2| of(m2) == Some(mine))
                })
            })
            .collect();
        Ok(Self {
            metrics,
            families,
            step_ms: layout.step_ms,
            partners,
        })
    }

    /// The families the queries read, on either track.
    pub fn families(&self) -> Families {
        self.families[0].or(self.families[1])
    }

    /// The families the queries read on the canary's and the control's
    /// series.
    pub fn per_track(&self) -> [Families; 2] {
        self.families
    }

    /// Metrics.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// No metrics.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The compiled program of metric `m`, side 0 (canary) or 1 (control).
    pub fn program(&self, m: usize, side: usize) -> &Program {
        &self.metrics[m].1[side].program
    }

    /// The query of metric `m`, side 0 (canary) or 1 (control).
    pub fn query(&self, m: usize, side: usize) -> &Query {
        &self.metrics[m].1[side].query
    }

    /// Metric `m`'s value for `side` at scrape step `k` (ms `k * step`
    /// after the traffic shift) from the generator's columns, if its
    /// program can tell.
    pub fn point(&self, m: usize, side: usize, g: &Generator<'_>, k: usize) -> Point {
        let mut out = Vec::with_capacity(1);
        self.points(m, side, g, k, k, &mut out);
        out[0]
    }

    /// [`KayentaPlan::point`] at every step from `k0` to `k1` (inclusive),
    /// appended to `out`.
    pub fn points(
        &self,
        m: usize,
        side: usize,
        g: &Generator<'_>,
        k0: usize,
        k1: usize,
        out: &mut Vec<Point>,
    ) {
        run(self.program(m, side), g, k0, k1, self.step_ms, out);
    }

    /// A fresh [`Cursor`] for metric `m`'s `side` program.
    pub fn cursor(&self, m: usize, side: usize) -> Cursor {
        Cursor {
            state: State::of(self.program(m, side)),
            next: None,
        }
    }

    /// Makes `cursor` (of any program) [`KayentaPlan::cursor`]`(m, side)`
    /// in place, its boxes reused where its state has the program's shape
    /// (a memo's cursor is made again for every run and window start; an
    /// error ratio's state has two boxes).
    pub fn renew_cursor(&self, m: usize, side: usize, cursor: &mut Cursor) {
        cursor.state.renew(self.program(m, side));
        cursor.next = None;
    }

    /// [`KayentaPlan::points`] continuing the pass of `cursor` (made by
    /// [`KayentaPlan::cursor`] for the same `m` and `side`): appends the
    /// points from the cursor's next step (`k0` if it has none) to `k1`
    /// inclusive, the same bits as one pass from where the cursor's first
    /// began.
    #[allow(clippy::too_many_arguments)]
    pub fn points_continued(
        &self,
        m: usize,
        side: usize,
        g: &Generator<'_>,
        cursor: &mut Cursor,
        k0: usize,
        k1: usize,
        out: &mut Vec<Point>,
    ) {
        let from = cursor.next.unwrap_or(k0);
        if k1 >= from {
            run_from(
                self.program(m, side),
                &mut cursor.state,
                g,
                from,
                k1,
                self.step_ms,
                out,
            );
            cursor.next = Some(k1 + 1);
        }
    }

    /// The next metric after `m` whose `side` program slides the same
    /// window as `m`'s (histogram quantiles over one track's buckets and
    /// rate window: a config's median and tail), whose points
    /// [`KayentaPlan::points_continued_pair`] computes with `m`'s in one
    /// pass.
    pub fn shares_window(&self, m: usize, side: usize) -> Option<usize> {
        self.partners.get(m).and_then(|p| p[side])
    }

    /// [`KayentaPlan::points_continued`] for metric `m` and `m2`
    /// ([`KayentaPlan::shares_window`]`(m, side)`) on `side`, their cursors
    /// at the same next step (both fresh, or both continued through the
    /// same steps): one slide of the window serves both; the same points
    /// as two calls. Else (not partners, cursors apart) the two calls.
    #[allow(clippy::too_many_arguments)]
    pub fn points_continued_pair(
        &self,
        (m, m2): (usize, usize),
        side: usize,
        g: &Generator<'_>,
        (cursor, cursor2): (&mut Cursor, &mut Cursor),
        k0: usize,
        k1: usize,
        (out, out2): (&mut Vec<Point>, &mut Vec<Point>),
    ) {
        let from = cursor.next.unwrap_or(k0);
        let paired = match (
            self.program(m, side),
            self.program(m2, side),
            &mut cursor.state,
            &mut cursor2.state,
        ) {
            (
                &Program::Quantile {
                    q,
                    track,
                    istio,
                    steps,
                },
                &Program::Quantile {
                    q: q2,
                    track: track2,
                    istio: istio2,
                    steps: steps2,
                },
                State::Quantile { up, cums, have },
                State::Quantile { .. },
            ) if (track, istio, steps) == (track2, istio2, steps2)
                && cursor2.next.unwrap_or(k0) == from =>
            {
                if k1 >= from {
                    quantiles(
                        [q, q2],
                        track,
                        istio,
                        steps,
                        (up, cums, have),
                        g,
                        from,
                        k1,
                        self.step_ms,
                        [&mut *out, &mut *out2],
                    );
                }
                true
            }
            _ => false,
        };
        if !paired {
            self.points_continued(m, side, g, cursor, k0, k1, out);
            self.points_continued(m2, side, g, cursor2, k0, k1, out2);
            return;
        }
        if k1 >= from {
            // the partner's pass stands where this one does
            cursor2.state = cursor.state.clone();
            cursor.next = Some(k1 + 1);
            cursor2.next = Some(k1 + 1);
        }
    }

    /// Metric `m`'s value for `side` at `at_ms` after the traffic shift
    /// (`traffic_at` ms after the commit), evaluated on `store`.
    pub fn evaluate(
        &self,
        m: usize,
        side: usize,
        store: &Store,
        traffic_at: release::Millis,
        at_ms: i64,
    ) -> Result<Point, String> {
        let q = self.query(m, side);
        let t = EPOCH_MS + traffic_at as i64 + at_ms;
        match Engine::new(store).instant(q, t) {
            Ok(Value::Scalar(v)) => Ok(Point::Value(v)),
            Ok(Value::Vector(s)) => match s.as_slice() {
                [] => Ok(Point::Absent),
                [one] => Ok(Point::Value(one.value)),
                many => Err(format!(
                    "metric \"{}\": the query returns {} series, Kayenta's judge takes one\nquery: {}",
                    self.metrics[m].0,
                    many.len(),
                    q.text()
                )),
            },
            Ok(_) => Err(format!(
                "metric \"{}\": the query gives no number\nquery: {}",
                self.metrics[m].0,
                q.text()
            )),
            Err(e) => Err(format!("metric \"{}\": {e}", self.metrics[m].0)),
        }
    }
}

thread_local! {
    /// The queries this thread parsed, by text: a study's scenarios
    /// mostly share a canary config, so most of their queries are the same
    /// text (the parser, built for compile time, is slow).
    static PARSED: std::cell::RefCell<Vec<Query>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Queries a thread keeps parsed ([`PARSED`]).
const PARSED_KEPT: usize = 64;

/// [`Query::parse`], or a copy of the query this thread parsed from the
/// same text (the parser is a function of the text alone).
fn parse_once(text: &str) -> Result<Query, prom::Error> {
    let kept = PARSED
        .try_with(|p| p.borrow().iter().find(|q| q.text() == text).cloned())
        .ok()
        .flatten();
    if let Some(q) = kept {
        return Ok(q);
    }
    let q = Query::parse(text)?;
    let _ = PARSED.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= PARSED_KEPT {
            p.remove(0);
        }
        p.push(q.clone());
    });
    Ok(q)
}

/// Compiles queries against a run's label sets.
struct Compiler<'r> {
    resolver: &'r Resolver,
    step_ms: i64,
}

impl Compiler<'_> {
    fn compile(&self, e: &Expr) -> Program {
        let p = match e {
            Expr::Paren(p) => self.compile(&p.expr),
            Expr::NumberLiteral(n) => Program::Const(n.val),
            Expr::Binary(b) => self.binary(b),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Call(c) if c.func.name == "histogram_quantile" => self.quantile(c),
            _ => Program::Fallback,
        };
        if contains_fallback(&p) {
            Program::Fallback
        } else {
            p
        }
    }

    fn binary(&self, b: &BinaryExpr) -> Program {
        let op = b.op.id();
        let arithmetic = [token::T_ADD, token::T_SUB, token::T_MUL, token::T_DIV];
        // no matching modifiers: `on`, `ignoring`, `group_*`, `bool`
        let plain = b.modifier.as_ref().is_none_or(|m| {
            m.matching.is_none() && !m.return_bool && m.card == VectorMatchCardinality::OneToOne
        });
        if !plain || !arithmetic.contains(&op) {
            return Program::Fallback;
        }
        Program::Binary(
            op,
            Box::new(self.compile(&b.lhs)),
            Box::new(self.compile(&b.rhs)),
        )
    }

    /// The track and series a selector matches, if they are all of one
    /// track and one family, with no offset or `@`.
    fn resolve(&self, vs: &VectorSelector) -> Option<(usize, Fam, Vec<SeriesInfo>)> {
        if vs.offset.is_some() || vs.at.is_some() {
            return None;
        }
        let r = self.resolver;
        let matched: Vec<SeriesInfo> = r
            .store
            .select(vs)
            .into_iter()
            .map(|id| r.info[id.0])
            .collect();
        let first = *matched.first()?;
        matched
            .iter()
            .all(|s| s.track == first.track && s.fam == first.fam)
            .then_some((first.track, first.fam, matched))
    }

    /// The rate window in scrape steps, if it is a whole number of them.
    fn window_steps(&self, range: std::time::Duration) -> Option<usize> {
        let ms = range.as_millis() as i64;
        (self.step_ms > 0 && ms > 0 && ms % self.step_ms == 0).then(|| (ms / self.step_ms) as usize)
    }

    /// Whether `matched` is every pod's series for each of its subs.
    fn every_pod(&self, track: usize, matched: &[SeriesInfo]) -> bool {
        let mut subs: Vec<usize> = matched.iter().map(|s| s.sub).collect();
        subs.sort_unstable();
        subs.dedup();
        subs.iter().all(|&sub| {
            matched.iter().filter(|s| s.sub == sub).count() == self.resolver.pods[track]
        })
    }

    fn aggregate(&self, a: &AggregateExpr) -> Program {
        if a.modifier.is_some() || a.param.is_some() {
            return Program::Fallback;
        }
        let op = a.op.id();
        let inner = strip_parens(&a.expr);
        match inner {
            Expr::Call(c) if matches!(c.func.name, "rate" | "increase") => {
                let Some(Expr::MatrixSelector(ms)) = c.args.args.first().map(|e| strip_parens(e))
                else {
                    return Program::Fallback;
                };
                let (Some((track, fam, matched)), Some(steps)) =
                    (self.resolve(&ms.vs), self.window_steps(ms.range))
                else {
                    return Program::Fallback;
                };
                if !self.every_pod(track, &matched) {
                    return Program::Fallback;
                }
                let has = |sub: usize| matched.iter().any(|s| s.sub == sub);
                let col = match fam {
                    Fam::Requests | Fam::IstioRequests => match (has(0), has(1)) {
                        (true, true) => Col::Requests,
                        (true, false) => Col::Ok,
                        _ => Col::Errors,
                    },
                    Fam::Count | Fam::IstioCount => Col::Requests,
                    Fam::Sum => Col::LatencySum(1.0),
                    Fam::IstioSum => Col::LatencySum(1000.0),
                    Fam::Cpu => Col::Cpu,
                    _ => return Program::Fallback,
                };
                let n = matched.len() as f64;
                let divisor = match op {
                    x if x == token::T_SUM => 1.0,
                    x if x == token::T_AVG => n,
                    x if (x == token::T_MIN || x == token::T_MAX) && matched.len() == 1 => 1.0,
                    _ => return Program::Fallback,
                };
                Program::Rate {
                    track,
                    col,
                    steps,
                    increase: c.func.name == "increase",
                    divisor,
                }
            }
            Expr::VectorSelector(vs) => {
                let Some((track, Fam::Memory, matched)) = self.resolve(vs) else {
                    return Program::Fallback;
                };
                if !self.every_pod(track, &matched) {
                    return Program::Fallback;
                }
                let factor = match op {
                    x if x == token::T_AVG || x == token::T_MIN || x == token::T_MAX => 1.0,
                    x if x == token::T_SUM => matched.len() as f64,
                    _ => return Program::Fallback,
                };
                Program::Memory { track, factor }
            }
            _ => Program::Fallback,
        }
    }

    fn quantile(&self, c: &Call) -> Program {
        let args = &c.args.args;
        let (Some(Expr::NumberLiteral(q)), Some(Expr::Aggregate(a))) = (
            args.first().map(|e| strip_parens(e)),
            args.get(1).map(|e| strip_parens(e)),
        ) else {
            return Program::Fallback;
        };
        let by_le = matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.labels == ["le"]);
        if a.op.id() != token::T_SUM || !by_le || a.param.is_some() || !(q.val > 0.0 && q.val < 1.0)
        {
            return Program::Fallback;
        }
        let Expr::Call(rate) = strip_parens(&a.expr) else {
            return Program::Fallback;
        };
        let Some(Expr::MatrixSelector(ms)) = rate.args.args.first().map(|e| strip_parens(e)) else {
            return Program::Fallback;
        };
        let (Some((track, fam, matched)), Some(steps)) =
            (self.resolve(&ms.vs), self.window_steps(ms.range))
        else {
            return Program::Fallback;
        };
        let buckets = match fam {
            Fam::Bucket => GOLDENGOOSE,
            Fam::IstioBucket => ISTIO,
            _ => return Program::Fallback,
        };
        if rate.func.name != "rate"
            || matched.len() != buckets * self.resolver.pods[track]
            || !self.every_pod(track, &matched)
        {
            return Program::Fallback;
        }
        Program::Quantile {
            q: q.val,
            track,
            istio: fam == Fam::IstioBucket,
            steps,
        }
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        _ => e,
    }
}

fn contains_fallback(p: &Program) -> bool {
    match p {
        Program::Fallback => true,
        Program::Binary(_, l, r) => contains_fallback(l) || contains_fallback(r),
        _ => false,
    }
}

/// Calls `f` with every vector selector of `e` (those of range selectors
/// too).
pub(crate) fn walk_selectors(e: &Expr, f: &mut dyn FnMut(&VectorSelector)) {
    use promql_parser::util::{ExprVisitor, walk_expr};
    struct V<'f>(&'f mut dyn FnMut(&VectorSelector));
    impl ExprVisitor for V<'_> {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, Self::Error> {
            match e {
                Expr::VectorSelector(vs) => (self.0)(vs),
                Expr::MatrixSelector(ms) => (self.0)(&ms.vs),
                _ => {}
            }
            Ok(true)
        }
    }
    let Ok(_) = walk_expr(&mut V(f), e);
}

/// Whether a track was scraped at every step from `k - w` to `k` (step 0,
/// the traffic shift, when it was up at step 1), for increasing `k`: the
/// last step looked at, and the latest down step up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct UpWindow {
    seen: usize,
    last_down: usize,
}

impl UpWindow {
    /// `may_be_down`: whether any of `steps` may be down
    /// ([`Generator::may_be_down`]); if not, the answer needs no look at
    /// them (and is the same: the latest down step stays none).
    #[inline(always)]
    fn at(&mut self, steps: &[Step], may_be_down: bool, w: usize, k: usize) -> bool {
        if !may_be_down {
            return k >= w && k <= steps.len();
        }
        self.at_scanned(steps, w, k)
    }

    /// [`UpWindow::at`] where steps may be down: out of line, so that the
    /// passes over tracks that are never down keep their registers.
    #[inline(never)]
    fn at_scanned(&mut self, steps: &[Step], w: usize, k: usize) -> bool {
        if k < w || k > steps.len() {
            return false;
        }
        let from = (k - w).max(1);
        if self.seen < from {
            // jumped ahead: only the window's own steps matter
            self.seen = from - 1;
            self.last_down = 0;
        }
        while self.seen < k {
            self.seen += 1;
            if steps[self.seen - 1].down {
                self.last_down = self.seen;
            }
        }
        self.last_down < from
    }
}

/// Where a program's pass over the steps stands: what it carries from one
/// step to the next, so that a pass can be continued later with the same
/// bits as one pass over the whole range (sums of floats are slid, so a
/// value depends on where its pass started).
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    state: State,
    /// The next step the pass computes (`None` before the first).
    next: Option<usize>,
}

#[derive(Debug, Clone, Default)]
enum State {
    #[default]
    Stateless,
    Binary(Box<State>, Box<State>),
    Rate {
        up: UpWindow,
        counted: u64,
        summed: f64,
        have: Option<usize>,
    },
    Quantile {
        up: UpWindow,
        /// The window's cumulative counts: through each bucket, summed
        /// over the window's steps (the last is the window's total).
        cums: [u64; ISTIO],
        have: Option<usize>,
    },
}

impl State {
    /// Makes this state `State::of(p)`, in place where it has `p`'s
    /// shape: a binary program's boxes are kept, every field below them
    /// made as `State::of` makes it.
    fn renew(&mut self, p: &Program) {
        match (p, self) {
            (Program::Binary(_, l, r), State::Binary(ls, rs)) => {
                ls.renew(l);
                rs.renew(r);
            }
            (p, s) => *s = State::of(p),
        }
    }

    fn of(p: &Program) -> State {
        match p {
            Program::Binary(_, l, r) => {
                State::Binary(Box::new(State::of(l)), Box::new(State::of(r)))
            }
            Program::Rate { .. } => State::Rate {
                up: UpWindow::default(),
                counted: 0,
                summed: 0.0,
                have: None,
            },
            Program::Quantile { .. } => State::Quantile {
                up: UpWindow::default(),
                cums: [0; ISTIO],
                have: None,
            },
            Program::Const(_) | Program::Memory { .. } | Program::Fallback => State::Stateless,
        }
    }
}

/// Appends `p`'s points at steps `k0..=k1` to `out`.
fn run(p: &Program, g: &Generator<'_>, k0: usize, k1: usize, step_ms: i64, out: &mut Vec<Point>) {
    run_from(p, &mut State::of(p), g, k0, k1, step_ms, out);
}

/// [`run`] continuing from `state` (that of `p` after its points up to
/// `k0 - 1`, or fresh).
fn run_from(
    p: &Program,
    state: &mut State,
    g: &Generator<'_>,
    k0: usize,
    k1: usize,
    step_ms: i64,
    out: &mut Vec<Point>,
) {
    let ks = k0..=k1;
    if k1 < k0 {
        return;
    }
    match (p, state) {
        (Program::Const(v), _) => out.extend(ks.map(|_| Point::Value(*v))),
        (Program::Binary(op, l, r), State::Binary(ls, rs)) => {
            if counted_ratio(*op, (l, r), (ls, rs), g, ks.clone(), step_ms, out) {
                return;
            }
            let from = out.len();
            run_from(l, ls, g, k0, k1, step_ms, out);
            let mut rhs = Vec::with_capacity(k1 + 1 - k0);
            run_from(r, rs, g, k0, k1, step_ms, &mut rhs);
            for (lhs, rhs) in out[from..].iter_mut().zip(rhs) {
                *lhs = match (*lhs, rhs) {
                    (Point::Fallback, _) | (_, Point::Fallback) => Point::Fallback,
                    (Point::Value(a), Point::Value(b)) => Point::Value(match *op {
                        x if x == token::T_ADD => a + b,
                        x if x == token::T_SUB => a - b,
                        x if x == token::T_MUL => a * b,
                        _ => a / b,
                    }),
                    _ => Point::Absent,
                };
            }
        }
        (
            &Program::Rate {
                track,
                col,
                steps: w,
                increase,
                divisor,
            },
            State::Rate {
                up,
                counted,
                summed,
                have,
            },
        ) => {
            let steps = g.steps(track);
            let may_be_down = g.may_be_down(track);
            let step_s = step_ms as f64 / 1000.0;
            let pods = f64::from(g.tracks()[track].pods.max(1));
            let value = |total: f64| {
                let v = if increase {
                    total
                } else {
                    total / (w as f64 * step_s)
                };
                v / divisor
            };
            // counts in integers (exact), sums of floats slid in floats;
            // one pass per column, so that no step reads the column kind
            let window = (steps, may_be_down, w);
            let counts = (up, counted, have);
            fn slid(count: impl Fn(&Step) -> u64) -> impl Fn(u64, &Step, &Step) -> u64 {
                move |total, new, old| total + count(new) - count(old)
            }
            fn summed_up(count: impl Fn(&Step) -> u64) -> impl Fn(&[Step]) -> u64 {
                move |window| window.iter().map(&count).sum()
            }
            let as_counts = |total: u64| value(total as f64);
            match col {
                Col::Ok => {
                    let c = |s: &Step| s.requests - s.errors;
                    rate_pass(ks, window, counts, slid(c), summed_up(c), as_counts, out);
                }
                Col::Errors => {
                    let c = |s: &Step| s.errors;
                    rate_pass(ks, window, counts, slid(c), summed_up(c), as_counts, out);
                }
                Col::Requests => {
                    let c = |s: &Step| s.requests;
                    rate_pass(ks, window, counts, slid(c), summed_up(c), as_counts, out);
                }
                Col::LatencySum(_) | Col::Cpu => {
                    let amount = |s: &Step| match col {
                        Col::LatencySum(unit) => s.latency_sum * unit,
                        Col::Cpu => s.cpu_cores * step_s * pods,
                        _ => 0.0,
                    };
                    rate_pass(
                        ks,
                        window,
                        (counts.0, summed, counts.2),
                        |total: f64, new: &Step, old: &Step| total + (amount(new) - amount(old)),
                        |window: &[Step]| window.iter().map(amount).sum(),
                        value,
                        out,
                    );
                }
            }
        }
        (
            &Program::Quantile {
                q,
                track,
                istio,
                steps: w,
            },
            State::Quantile { up, cums, have },
        ) => quantiles(
            [q],
            track,
            istio,
            w,
            (up, cums, have),
            g,
            k0,
            k1,
            step_ms,
            [out],
        ),
        (&Program::Memory { track, factor }, _) => {
            let steps = g.steps(track);
            out.extend(ks.map(|k| {
                if k == 0 || k > steps.len() {
                    Point::Fallback
                } else if steps[k - 1].down {
                    Point::Absent
                } else {
                    Point::Value(steps[k - 1].memory_bytes * factor)
                }
            }));
        }
        // a state of another program: none is ever made (State::of)
        (Program::Fallback | Program::Binary(..) | Program::Rate { .. }, _)
        | (Program::Quantile { .. }, _) => out.extend(ks.map(|_| Point::Fallback)),
    }
}

/// `l op r` where both are rates of request counts over one track and
/// rate window (an error ratio: errors or successes over requests), their
/// states at the same step: one pass for both, each count slid as its own
/// pass slides it and each rate made as its own pass makes it, so the
/// points [`run_from`]'s two passes and their combination give. Does
/// nothing and returns false for any other pair.
fn counted_ratio(
    op: u16,
    (l, r): (&Program, &Program),
    (ls, rs): (&mut State, &mut State),
    g: &Generator<'_>,
    ks: std::ops::RangeInclusive<usize>,
    step_ms: i64,
    out: &mut Vec<Point>,
) -> bool {
    let (
        &Program::Rate {
            track,
            col,
            steps: w,
            increase,
            divisor,
        },
        &Program::Rate {
            track: track2,
            col: col2,
            steps: w2,
            increase: increase2,
            divisor: divisor2,
        },
        State::Rate {
            up, counted, have, ..
        },
        State::Rate {
            up: up2,
            counted: counted2,
            have: have2,
            ..
        },
    ) = (l, r, ls, rs)
    else {
        return false;
    };
    if (track, w) != (track2, w2) || (*up, *have) != (*up2, *have2) {
        return false;
    }
    let steps = g.steps(track);
    let window = (steps, g.may_be_down(track), w);
    let step_s = step_ms as f64 / 1000.0;
    // the rate's range, seconds: computed once (in the closure, the
    // conversion and product were made per point)
    let range_s = w as f64 * step_s;
    // Rate's value, for each side
    let value = |total: u64, increase: bool, divisor: f64| {
        let total = total as f64;
        let v = if increase { total } else { total / range_s };
        v / divisor
    };
    let values = |a: u64, b: u64| (value(a, increase, divisor), value(b, increase2, divisor2));
    let point = |a: u64, b: u64| {
        let (a, b) = values(a, b);
        match op {
            x if x == token::T_ADD => a + b,
            x if x == token::T_SUB => a - b,
            x if x == token::T_MUL => a * b,
            _ => a / b,
        }
    };
    // a ratio (the usual operator) without the match per point
    let ratio = |a: u64, b: u64| {
        let (a, b) = values(a, b);
        a / b
    };
    let totals = (counted, counted2);
    let requests = |s: &Step| s.requests;
    let errors = |s: &Step| s.errors;
    let ok = |s: &Step| s.requests - s.errors;
    let div = op == token::T_DIV;
    out.reserve(ks.clone().count());
    let state = (&mut *up, &mut *have);
    match (col, col2) {
        (Col::Errors, Col::Requests) if div => {
            counted_pass(ks, window, state, totals, (errors, requests), ratio, out);
        }
        (Col::Errors, Col::Requests) => {
            counted_pass(ks, window, state, totals, (errors, requests), point, out);
        }
        (Col::Ok, Col::Requests) if div => {
            counted_pass(ks, window, state, totals, (ok, requests), ratio, out);
        }
        (Col::Ok, Col::Requests) => {
            counted_pass(ks, window, state, totals, (ok, requests), point, out);
        }
        _ => return false,
    }
    // the right side's pass stands where the left's does
    (*up2, *have2) = (*up, *have);
    true
}

/// [`counted_ratio`]'s pass: [`rate_pass`] over two counts at once, their
/// totals slid or summed as that pass does each.
#[inline(always)]
fn counted_pass(
    ks: std::ops::RangeInclusive<usize>,
    window: (&[Step], bool, usize),
    (up, have): (&mut UpWindow, &mut Option<usize>),
    (total, total2): (&mut u64, &mut u64),
    (count, count2): (impl Fn(&Step) -> u64, impl Fn(&Step) -> u64),
    point: impl Fn(u64, u64) -> f64,
    out: &mut Vec<Point>,
) {
    let mut totals = (*total, *total2);
    rate_pass(
        ks,
        window,
        (up, &mut totals, have),
        |(t, t2), new, old| (t + count(new) - count(old), t2 + count2(new) - count2(old)),
        |window| {
            (
                window.iter().map(&count).sum(),
                window.iter().map(&count2).sum(),
            )
        },
        |(t, t2)| point(t, t2),
        out,
    );
    (*total, *total2) = totals;
}

/// A rate program's pass over `ks` on a track's `(steps, may_be_down,
/// window)`, from its state (its up window, its total, the step of that
/// total): the total slid from the last step's by `slide(total, new step,
/// step leaving)`, else summed over the window by `sum`; `value` makes it
/// the point.
#[inline(always)]
fn rate_pass<T: Copy>(
    ks: std::ops::RangeInclusive<usize>,
    (steps, may_be_down, w): (&[Step], bool, usize),
    (up, total, have): (&mut UpWindow, &mut T, &mut Option<usize>),
    slide: impl Fn(T, &Step, &Step) -> T,
    sum: impl Fn(&[Step]) -> T,
    value: impl Fn(T) -> f64,
    out: &mut Vec<Point>,
) {
    let (mut k, k1) = (*ks.start(), *ks.end());
    while k <= k1 {
        if let Some((new, old)) = sliding(steps, may_be_down, w, *have, k, k1) {
            let mut t = *total;
            for (new, old) in new.iter().zip(old) {
                t = slide(t, new, old);
                out.push(Point::Value(value(t)));
            }
            *total = t;
            k += new.len();
            *have = Some(k - 1);
            continue;
        }
        if up.at(steps, may_be_down, w, k) {
            *total = match *have {
                Some(prev) if prev + 1 == k => slide(*total, &steps[k - 1], &steps[k - w - 1]),
                _ => sum(&steps[k - w..k]),
            };
            *have = Some(k);
            out.push(Point::Value(value(*total)));
        } else {
            out.push(Point::Fallback);
        }
        k += 1;
    }
}

/// The steps entering and leaving the window from step `k` to `k1` (or
/// the track's last step, if before) where a pass only slides its window:
/// its total is that of step `k - 1` (`have`), a window that was up, and
/// the track is never down, so every window from `k` to its last step is
/// up ([`UpWindow::at`] answers so without a look at the steps, and
/// changes nothing). `None` where the pass must look at each step itself.
#[inline(always)]
fn sliding(
    steps: &[Step],
    may_be_down: bool,
    w: usize,
    have: Option<usize>,
    k: usize,
    k1: usize,
) -> Option<(&[Step], &[Step])> {
    if may_be_down || k > steps.len() || have.is_none_or(|prev| prev + 1 != k) {
        return None;
    }
    let end = k1.min(steps.len());
    // an up window at k - 1 ended there, so k - 1 >= w
    let first = (k - 1).checked_sub(w)?;
    Some((steps.get(k - 1..end)?, steps.get(first..end - w)?))
}

/// A quantile program's pass (`Program::Quantile` on `track`'s buckets,
/// Istio's or goldengoose's, over windows of `w` steps) from `state`, for
/// each of the quantiles `qs` into its `outs`: one slide of the window's
/// cumulative counts serves them all (the counts are integers, so the
/// window's sums at a step are the same whatever pass reached them), and
/// each point is the one [`run_from`] gives for that quantile alone. The
/// window is kept cumulative (through each bucket), so that its total is
/// its last and the scan for a rank's bucket reads them in place.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn quantiles<const N: usize>(
    qs: [f64; N],
    track: usize,
    istio: bool,
    w: usize,
    state: (&mut UpWindow, &mut [u64; ISTIO], &mut Option<usize>),
    g: &Generator<'_>,
    k0: usize,
    k1: usize,
    step_ms: i64,
    mut outs: [&mut Vec<Point>; N],
) {
    let (up, cums, have) = state;
    let steps = g.steps(track);
    let may_be_down = g.may_be_down(track);
    let range_s = w as f64 * step_ms as f64 / 1000.0;
    let (bounds, n): (&[f64], usize) = if istio {
        (istio_bounds_ms(), ISTIO)
    } else {
        (&DURATION_BUCKETS, GOLDENGOOSE)
    };
    // one step's counts per bucket: goldengoose's read in place,
    // Istio's folded from the union histogram
    let fine = g.union_buckets(track);
    let (mut one, mut two) = ([0u64; ISTIO], [0u64; ISTIO]);
    fn counts<'c>(
        istio: bool,
        fine: &'c [[u64; UNION]],
        steps: &'c [Step],
        j: usize,
        one: &'c mut [u64; ISTIO],
    ) -> &'c [u64] {
        if istio {
            fold_buckets(&fine[j - 1], &UNION_BOUNDS, one, &ISTIO_BUCKETS);
            &one[..]
        } else {
            &steps[j - 1].buckets[..]
        }
    }
    for out in outs.iter_mut() {
        out.reserve(k1 + 1 - k0);
    }
    let plain = quantiles_plain(&qs, bounds, n, range_s);
    let at = (n, bounds, range_s, plain);
    // each quantile's bucket at the step before ([`first_reaching_from`])
    let mut hints = [0; N];
    // the window's counts, slid from one step to the next
    let mut k = k0;
    while k <= k1 {
        if !istio && let Some((new, old)) = sliding(steps, may_be_down, w, *have, k, k1) {
            // goldengoose's buckets in place: one pass of fixed length
            for (new, old) in new.iter().zip(old) {
                slide_cumulative(&mut cums[..GOLDENGOOSE], &new.buckets, &old.buckets);
                quantile_points(&qs, cums, at, &mut outs, &mut hints);
            }
            k += new.len();
            *have = Some(k - 1);
            continue;
        }
        if !up.at(steps, may_be_down, w, k) {
            for out in outs.iter_mut() {
                out.push(Point::Fallback);
            }
            k += 1;
            continue;
        }
        match *have {
            Some(prev) if prev + 1 == k => {
                let new = counts(istio, fine, steps, k, &mut one);
                let old = counts(istio, fine, steps, k - w, &mut two);
                slide_cumulative(cums, new, old);
            }
            _ => {
                *cums = [0; ISTIO];
                for j in k + 1 - w..=k {
                    let new = counts(istio, fine, steps, j, &mut one);
                    slide_cumulative(cums, new, &[0; ISTIO]);
                }
            }
        }
        *have = Some(k);
        quantile_points(&qs, cums, at, &mut outs, &mut hints);
        k += 1;
    }
}

/// [`quantiles`]' points at a step, one for each of `qs` into its `outs`,
/// from the window's cumulative counts `cums` over `n` buckets whose upper
/// bounds are `bounds` (then +Inf), rates over `range_s` seconds, `plain`
/// where [`quantiles_plain`] admits them.
#[inline(always)]
fn quantile_points<const N: usize>(
    qs: &[f64; N],
    cums: &[u64; ISTIO],
    (n, bounds, range_s, plain): (usize, &[f64], f64, bool),
    outs: &mut [&mut Vec<Point>; N],
    hints: &mut [usize; N],
) {
    let cums = &cums[..n];
    let total = cums[n - 1];
    if plain && total < 1 << 53 {
        // quantile_of_cumulative's checks of q and the buckets passed for
        // the pass; the counts convert exactly, and the total's rate
        // serves every quantile
        let observations = exact_f64(total) / range_s;
        for ((&q, out), hint) in qs.iter().zip(outs.iter_mut()).zip(hints) {
            out.push(Point::Value(if observations == 0.0 {
                f64::NAN
            } else {
                quantile_near(q, cums, total, observations, bounds, range_s, hint)
            }));
        }
        return;
    }
    for (&q, out) in qs.iter().zip(outs.iter_mut()) {
        out.push(Point::Value(quantile_of_cumulative(
            q, cums, bounds, range_s,
        )));
    }
}

/// Adds to the cumulative counts `cums` those of the counts `new` less
/// those of `old`, bucket by bucket (the running difference of the two,
/// added through each bucket). Wrapping: the running difference may be
/// negative, but every result is the window's true cumulative count, a
/// `u64`, and sums modulo 2^64 are exact where the result fits.
#[inline(always)]
fn slide_cumulative(cums: &mut [u64], new: &[u64], old: &[u64]) {
    let mut d = 0u64;
    for ((s, &a), &b) in cums.iter_mut().zip(new).zip(old) {
        d = d.wrapping_add(a).wrapping_sub(b);
        *s = s.wrapping_add(d);
    }
}

/// Whether [`quantile_near`] may stand for [`quantile_of_cumulative`] in a pass
/// of the quantiles `qs` over buckets whose upper bounds are `bounds`
/// (then +Inf) and `n` counts, with rates over `range_s` seconds: every
/// `q` strictly between 0 and 1 (none of that function's early answers),
/// the buckets ending in +Inf, at least two of them, and a range whose
/// rates of counts from 1 to 2^53 are normal numbers
/// ([`count_reaching_near`]'s margin).
fn quantiles_plain(qs: &[f64], bounds: &[f64], n: usize, range_s: f64) -> bool {
    qs.iter().all(|&q| q > 0.0 && q < 1.0)
        && n >= 2
        && n == bounds.len() + 1
        && (RANGE_LEAST..=RANGE_MOST).contains(&range_s)
}

/// The range of rate windows, seconds, in which [`quantile_near`] runs:
/// far wider than any scrape step and window (milliseconds to days).
const RANGE_LEAST: f64 = f64::from_bits((1023 - 60) << 52);
const RANGE_MOST: f64 = f64::from_bits((1023 + 60) << 52);

/// `c as f64` for `c` below 2^53, the same value (both exact), converted
/// as a signed integer: masked, the compiler knows the sign bit clear
/// (baseline x86-64 has no unsigned conversion; Rust's takes 6
/// instructions, the signed one 2).
#[inline(always)]
fn exact_f64(c: u64) -> f64 {
    debug_assert!(c < 1 << 53);
    (c & ((1 << 53) - 1)) as f64
}

/// [`quantile_of_cumulative`] for `q` strictly between 0 and 1, buckets
/// [`quantiles_plain`] admits, a `total` (the last of `cums`) below 2^53
/// and its rate `observations` (`exact_f64(total) / range_s`, not 0): the same
/// computation without the checks those settle, the least reaching count
/// from [`count_reaching_near`] where it can tell.
#[inline(always)]
fn quantile_near(
    q: f64,
    cums: &[u64],
    total: u64,
    observations: f64,
    bounds: &[f64],
    range_s: f64,
    hint: &mut usize,
) -> f64 {
    let rank = q * observations;
    let reach = count_reaching_near(rank, range_s)
        .unwrap_or_else(|| least_count_reaching(rank, total, range_s));
    interpolated(rank, reach, cums, bounds, range_s, exact_f64, hint)
}

/// [`least_count_reaching`] with one division at most, for `x` (`rank *
/// range_s`, rounded) in [2^-900, 2^46) and `range_s` within
/// [`RANGE_LEAST`, `RANGE_MOST`]: there every quotient and product here is
/// a normal number, so each rounds within a relative u = 2^-53, and `x`
/// is `rank * range_s * (1 + d)` with |d| <= u. A count `c` reaches `rank`
/// when `c >= rank * range_s` (then `c / range_s >= rank`: rounding is
/// monotone and `rank` a float), which holds when `c - x >= x * u / (1 -
/// u)`, less than `x * 2^-52`; `c` falls short when `c <= rank * range_s *
/// (1 - 2^-52)` (then `c / range_s` rounds to at most
/// `rank * (1 - 2^-52) * (1 + u)`, below `rank`; for `c = 0` the quotient
/// is 0, below `rank`, which is positive), which holds when
/// `x - c >= x * 2^-51`. The margin, `x * 2^-48`, is
/// eight times both and below 1/4. So where `x` stands at least the margin
/// from the nearest whole number `r`, the answer is `ceil(x)` (the whole
/// numbers either side of `x` are clear: one by the margin, the other by
/// at least 1/2); where it stands closer, `r - 1` falls short and `r + 1`
/// reaches (both at least 3/4 away), and the rate of `r` itself decides,
/// as the search's test decides it. `r` is `x + 2^52 - 2^52` (below 2^52
/// the sum rounds to a whole number, ties to even, and the subtraction is
/// exact), its integer the sum's mantissa; `x` less it is exact (it is
/// `x` where `r` is 0, else by Sterbenz's lemma). `None` where `x` is out
/// of that range.
#[inline(always)]
fn count_reaching_near(rank: f64, range_s: f64) -> Option<u64> {
    let x = rank * range_s;
    if !(NEAR_LEAST..NEAR_MOST).contains(&x) {
        return None;
    }
    let shifted = x + TWO_52;
    let off = x - (shifted - TWO_52);
    let nearest = shifted.to_bits() - TWO_52.to_bits();
    Some(if off.abs() >= x * MARGIN {
        nearest + u64::from(off > 0.0)
    } else if exact_f64(nearest) / range_s >= rank {
        nearest
    } else {
        nearest + 1
    })
}

/// [`count_reaching_near`]'s range of `x`, its margin relative to `x`, and
/// the shift that rounds to whole numbers.
const NEAR_LEAST: f64 = f64::from_bits((1023 - 900) << 52);
const NEAR_MOST: f64 = f64::from_bits((1023 + 46) << 52);
const MARGIN: f64 = f64::from_bits((1023 - 48) << 52);
const TWO_52: f64 = f64::from_bits((1023 + 52) << 52);

/// [`quantile_of_cumulative`] on the running sums of `counts`.
#[cfg(test)]
fn quantile_of_counts(q: f64, counts: &[u64], bounds: &[f64], range_s: f64) -> f64 {
    quantile_of_cumulative(q, &cumulative(counts), bounds, range_s)
}

/// The running sums of `counts`.
#[cfg(test)]
fn cumulative(counts: &[u64]) -> Vec<u64> {
    counts
        .iter()
        .scan(0u64, |running, &c| {
            *running += c;
            Some(*running)
        })
        .collect()
}

/// [`prom::eval::bucket_quantile_sorted`] on the buckets whose upper
/// bounds are `bounds` (then +Inf) and whose cumulative rates are the
/// cumulative counts `cums` over `range_s`, with the same bits: it
/// computes only the rates that function reads (the total, and the
/// cumulative ones up to the bucket holding the rank, which it finds by a
/// scan where that function bisects: the rates never decrease, since
/// conversion and division by a positive number are monotone).
#[inline(always)]
fn quantile_of_cumulative(q: f64, cums: &[u64], bounds: &[f64], range_s: f64) -> f64 {
    let le = |b: usize| bounds.get(b).copied().unwrap_or(f64::INFINITY);
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let rate = |c: u64| c as f64 / range_s;
    if cums.len() < 2 || le(cums.len() - 1) != f64::INFINITY {
        return f64::NAN;
    }
    let total = cums[cums.len() - 1];
    let observations = rate(total);
    if observations == 0.0 {
        return f64::NAN;
    }
    let rank = q * observations;
    let reach = least_count_reaching(rank, total, range_s);
    interpolated(rank, reach, cums, bounds, range_s, |c| c as f64, &mut 0)
}

/// The rest of [`quantile_of_cumulative`] from the rank and the least count
/// reaching it, with `to_f64` for `c as f64` (the same values); the scan
/// for its bucket tries `hint` first ([`first_reaching_from`]).
#[inline(always)]
fn interpolated(
    mut rank: f64,
    reach: u64,
    cums: &[u64],
    bounds: &[f64],
    range_s: f64,
    to_f64: impl Fn(u64) -> f64,
    hint: &mut usize,
) -> f64 {
    let le = |b: usize| bounds.get(b).copied().unwrap_or(f64::INFINITY);
    let rate = |c: u64| to_f64(c) / range_s;
    let last = cums.len() - 1;
    // the first bucket below the last whose cumulative rate reaches rank:
    // a cumulative count reaches it when it reaches `reach`, the least
    // count whose rate does (rates grow with counts), so the scan compares
    // integers
    let found = match <&[u64; GOLDENGOOSE]>::try_from(cums) {
        // goldengoose's buckets: a scan of fixed length, unrolled
        Ok(fixed) => first_reaching_from(fixed, reach, hint),
        Err(_) => first_reaching_from(cums, reach, hint),
    };
    let Some(b) = found else {
        return le(last - 1);
    };
    if b == 0 && le(0) <= 0.0 {
        return le(0);
    }
    let mut start = 0.0;
    let end = le(b);
    let mut count = rate(cums[b]);
    if b > 0 {
        let below = rate(cums[b - 1]);
        start = le(b - 1);
        count -= below;
        rank -= below;
    }
    start + (end - start) * (rank / count)
}

/// The first bucket below the last (+Inf) whose cumulative count (of
/// `cums`) reaches `reach`; `None` if none does.
#[inline(always)]
fn first_reaching<C: AsRef<[u64]> + ?Sized>(cums: &C, reach: u64) -> Option<usize> {
    let cums = cums.as_ref();
    cums[..cums.len() - 1].iter().position(|&c| c >= reach)
}

/// [`first_reaching`], trying the bucket `hint` first (the one a pass found
/// for its quantile at the step before: a window slid by one step mostly
/// keeps it): it is the answer when its cumulative count reaches `reach`
/// and the one before it does not (cumulative counts never decrease, so
/// none before it does); else the scan's answer, which becomes the hint.
#[inline(always)]
fn first_reaching_from<C: AsRef<[u64]> + ?Sized>(
    cums: &C,
    reach: u64,
    hint: &mut usize,
) -> Option<usize> {
    let cums = cums.as_ref();
    let h = *hint;
    if h < cums.len().saturating_sub(1) && cums[h] >= reach && (h == 0 || cums[h - 1] < reach) {
        return Some(h);
    }
    let found = first_reaching(cums, reach);
    if let Some(b) = found {
        *hint = b;
    }
    found
}

/// The least count `c` with `c as f64 / range_s >= rank`, for `rank` at
/// most `total`'s rate (so `total` is one) and `range_s` positive: the
/// rate is non-decreasing in the count (the conversion and the division
/// round monotonically), so the counts reaching `rank` are those from this
/// one on. Found from the nearest guess, checked with the rate itself.
fn least_count_reaching(rank: f64, total: u64, range_s: f64) -> u64 {
    let rate = |c: u64| c as f64 / range_s;
    // beyond 2^53 counts convert with gaps: step through them by halves
    if total >= 1 << 53 || !(rank * range_s).is_finite() {
        let (mut lo, mut hi) = (0u64, total);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if rate(mid) >= rank {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }
    // the guess ceil(rank * range_s), at least 0 and at most total, in
    // integers (total is below 2^53: the same guess as through floats)
    let x = rank * range_s;
    let guess = if x.abs() < 9.0e18 {
        ceil_int(x)
    } else if x > 0.0 {
        i64::MAX
    } else {
        0
    };
    let mut c = (guess.max(0) as u64).min(total);
    while c > 0 && rate(c - 1) >= rank {
        c -= 1;
    }
    while rate(c) < rank {
        c += 1;
    }
    c
}

/// `f64::ceil` as an integer, without a libm call (baseline x86-64 has no
/// rounding instruction), for `x` below 9e18 in magnitude (so its
/// truncation and that plus one are `i64`s; from 2^53 on `x` is whole).
fn ceil_int(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) < x { t + 1 } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marsaglia's xorshift64 from `state`: the tests' random numbers.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The libm-free ceil is `f64::ceil` on whole numbers, their
    /// neighbours and random values below 9e18 in magnitude.
    #[test]
    fn ceil_is_f64_ceil() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            8.9e18,
            -8.9e18,
            9e15,
            2f64.powi(53),
            2f64.powi(60),
        ];
        for i in 0..200_000u64 {
            let state = next();
            let whole = (state % 1_000_000) as f64 - 500_000.0;
            values.extend([whole, whole.next_up(), whole.next_down()]);
            values.push(f64::from_bits(state) % 1e18);
            values.push(i as f64 / 7.0);
        }
        for x in values
            .into_iter()
            .filter(|x| x.is_finite() && x.abs() < 9.0e18)
        {
            assert_eq!(ceil_int(x), x.ceil() as i64, "{x}");
        }
    }

    /// The least reaching count is the least count whose rate reaches the
    /// rank, found by a scan, around guesses that round either way.
    #[test]
    fn least_count_reaching_is_the_scans() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for case in 0..20_000 {
            let total = [1, 2, 7, 100, 5_000, 1_000_003][(next() % 6) as usize];
            let range_s = [60.0, 30.0, 120.0, 7.0, 0.3, 1e-3, 3e5][(next() % 7) as usize];
            let q =
                [0.5, 0.99, 0.9, 0.01, 1.0, 0.0, 1e-9, 0.999_999, 1.0 / 3.0][(next() % 9) as usize];
            let rank = q * (total as f64 / range_s);
            let want = (0..=total)
                .find(|&c| c as f64 / range_s >= rank)
                .unwrap_or(total);
            let got = least_count_reaching(rank, total, range_s);
            assert_eq!(
                got, want,
                "case {case}: rank {rank}, total {total}, range {range_s}"
            );
        }
        // past 2^53 counts: the bisection
        let total = (1u64 << 60) + 12_345;
        let range_s = 60.0;
        let rank = 0.5 * (total as f64 / range_s);
        let c = least_count_reaching(rank, total, range_s);
        assert!(c as f64 / range_s >= rank);
        assert!((c - 1) as f64 / range_s < rank);
    }

    /// The near least reaching count, where it answers, is the exact
    /// search's, for ranks drawn as the passes draw them (it answers all of
    /// them) and ranks within ulps of a count's rate (where `rank *
    /// range_s` rounds onto or next to a whole number) or at the margin's
    /// edge.
    #[test]
    fn count_reaching_near_is_least_count_reaching() {
        let mut next = xorshift(0x51_7cc1_b727_220a_u64);
        let ranges = [60.0, 30.0, 120.0, 10.0, 7.0, 0.3, 1e-3, 3e5, 1.0 / 3.0];
        let (mut answered, mut drawn) = (0u64, 0u64);
        let check = |rank: f64, total: u64, range_s: f64| {
            let near = count_reaching_near(rank, range_s);
            if let Some(c) = near {
                assert_eq!(
                    c,
                    least_count_reaching(rank, total, range_s),
                    "rank {rank:e}, total {total}, range {range_s}"
                );
            }
            near.is_some()
        };
        for _ in 0..300_000 {
            let total = match next() % 4 {
                0 => next() % 10 + 1,
                1 => next() % 1_000 + 1,
                2 => next() % 1_000_000 + 1,
                _ => next() % (1 << 45) + 1,
            };
            let range_s = ranges[(next() % ranges.len() as u64) as usize];
            let q = match next() % 4 {
                0 => 0.5,
                1 => 0.99,
                2 => 0.9,
                _ => (next() % 1_000_000 + 1) as f64 / 1_000_001.0,
            };
            let observations = total as f64 / range_s;
            drawn += 1;
            answered += u64::from(check(q * observations, total, range_s));
            // around a count's rate: ranks a few ulps either side
            let c = next() % total + 1;
            let mut at = c as f64 / range_s;
            for _ in 0..4 {
                at = at.next_down();
            }
            for _ in 0..9 {
                check(at, total, range_s);
                at = at.next_up();
            }
            // at the margin's edge: x about c * (1 -+ 2^-48) and beyond
            for f in [0.5, 1.0, 1.5, 3.0, 16.0] {
                for sign in [-1.0, 1.0] {
                    let x = c as f64 * (1.0 + sign * f * MARGIN);
                    check(x / range_s, total, range_s);
                }
            }
        }
        assert_eq!(answered, drawn);
    }

    /// A random bucket set for the quantile tests: Istio's table on odd
    /// cases, goldengoose's on even ones; the counts up to a scale drawn
    /// from `scales`, a third of the buckets empty. The bounds, the
    /// table's bucket count and the counts (zero beyond it).
    fn random_buckets(
        next: &mut impl FnMut() -> u64,
        case: usize,
        scales: &[u64],
    ) -> (&'static [f64], usize, [u64; ISTIO]) {
        let (bounds, n): (&'static [f64], usize) = if case % 2 == 1 {
            (istio_bounds_ms(), ISTIO)
        } else {
            (&DURATION_BUCKETS, GOLDENGOOSE)
        };
        let scale = scales[(next() % scales.len() as u64) as usize];
        let mut counts = [0u64; ISTIO];
        for c in counts[..n].iter_mut() {
            *c = if next().is_multiple_of(3) || scale == 0 {
                0
            } else {
                next() % (scale + 1)
            };
        }
        (bounds, n, counts)
    }

    /// The pass's quantile is `quantile_of_counts`'s bit for bit: both
    /// tables, sparse and dense counts, totals whose ranks fall on or next
    /// to a count's rate (medians of even totals).
    #[test]
    fn quantile_near_is_quantile_of_counts() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let qs = [0.5, 0.99, 0.9, 0.01, 0.25, 0.75, 1e-9, 0.999_999];
        for case in 0..200_000 {
            let (bounds, n, counts) =
                random_buckets(&mut next, case, &[0, 1, 2, 3, 50, 10_000, 1 << 40]);
            let counts = &counts[..n];
            let cums = cumulative(counts);
            let total = cums[n - 1];
            let range_s = [60.0, 30.0, 120.0, 10.0, 7.0, 0.3][(next() % 6) as usize];
            let q = qs[(next() % qs.len() as u64) as usize];
            assert!(quantiles_plain(&[q], bounds, n, range_s));
            let want = quantile_of_counts(q, counts, bounds, range_s);
            let observations = exact_f64(total) / range_s;
            let got = if observations == 0.0 {
                f64::NAN
            } else {
                // any bucket, or none, as the hint
                let mut hint = (next() % (n as u64 + 2)) as usize;
                quantile_near(q, &cums, total, observations, bounds, range_s, &mut hint)
            };
            assert!(
                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                "case {case}: q {q}, counts {counts:?}: {got} != {want}"
            );
        }
    }

    /// The signed conversion of a masked count is the unsigned one below
    /// 2^53; the near path's constants are the powers of two they say.
    #[test]
    fn exact_f64_is_as_f64() {
        assert_eq!(TWO_52, 2f64.powi(52));
        assert_eq!(NEAR_MOST, 2f64.powi(46));
        assert_eq!(NEAR_LEAST, 2f64.powi(-900));
        assert_eq!(MARGIN, 2f64.powi(-48));
        assert_eq!((RANGE_LEAST, RANGE_MOST), (2f64.powi(-60), 2f64.powi(60)));
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for c in (0..100_000).chain([(1 << 53) - 1, (1 << 52) + 1, 1 << 52]) {
            assert_eq!(exact_f64(c).to_bits(), (c as f64).to_bits());
            let r = next() % (1 << 53);
            assert_eq!(exact_f64(r).to_bits(), (r as f64).to_bits());
        }
    }

    /// Points compared bit for bit: a value's bits, None for absent,
    /// Some(1) (the least subnormal's bits, which no tested value has) for
    /// a fallback.
    fn point_bits(v: &[Point]) -> Vec<Option<u64>> {
        v.iter()
            .map(|p| match p {
                Point::Value(v) => Some(v.to_bits()),
                Point::Absent => None,
                Point::Fallback => Some(1),
            })
            .collect()
    }

    /// `steps` ten-second steps of a crash-looping canary (down from 95 s)
    /// and a steady control, both with 5% of `svc`'s traffic and every
    /// draw on: the tracks the programs' pass tests read.
    fn crash_looping_and_steady(
        svc: &scenarios::Service,
        seed: u64,
        steps: usize,
    ) -> Generator<'_> {
        use crate::series::{Draws, TrackSpec};
        use rand::SeedableRng;
        let track = |regression| TrackSpec {
            pods: 2,
            age_at_start_s: 20.0,
            latency_offset: 0.01,
            regression,
        };
        let crash = Some(scenarios::Regression::CrashLoop {
            crash_after_s: 95.0,
        });
        let draws = Draws {
            histogram: true,
            union: false,
            latency_sum: true,
            cpu: true,
            memory: true,
        };
        let mut g = Generator::new(svc, 10.0, [track(crash), track(None)], draws);
        g.set_shares(0.0, [0.05, 0.05]);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        g.advance_to(steps, &mut rng);
        g
    }

    /// An error ratio's one pass (`counted_ratio`) is its two rates'
    /// passes combined as `Binary` combines any two programs' points, bit
    /// for bit: errors or successes over requests, every operator, rate and
    /// increase, several windows, on a crash-looping track and a steady
    /// one, from several first steps and continued in pieces of every
    /// length.
    #[test]
    fn counted_ratio_is_its_rates_passes() {
        let svc = scenarios::Service::default();
        let steps = 150;
        let g = crash_looping_and_steady(&svc, 3, steps);
        let step_ms = 10_000;
        let ops = [token::T_DIV, token::T_ADD, token::T_SUB, token::T_MUL];
        for (col, col2) in [(Col::Errors, Col::Requests), (Col::Ok, Col::Requests)] {
            for (i, &op) in ops.iter().enumerate() {
                for w in [1, 3, 6] {
                    for track in [0, 1] {
                        let rate = |col, increase, divisor| Program::Rate {
                            track,
                            col,
                            steps: w,
                            increase,
                            divisor,
                        };
                        let (l, r) = (rate(col, i == 1, 1.0), rate(col2, false, 2.0));
                        let ratio = Program::Binary(op, Box::new(l.clone()), Box::new(r.clone()));
                        for k0 in [0, 3, 30] {
                            let (mut a, mut b) = (Vec::new(), Vec::new());
                            run(&l, &g, k0, steps, step_ms, &mut a);
                            run(&r, &g, k0, steps, step_ms, &mut b);
                            let want: Vec<Point> = a
                                .iter()
                                .zip(&b)
                                .map(|(&a, &b)| match (a, b) {
                                    (Point::Fallback, _) | (_, Point::Fallback) => Point::Fallback,
                                    (Point::Value(a), Point::Value(b)) => Point::Value(match op {
                                        x if x == token::T_ADD => a + b,
                                        x if x == token::T_SUB => a - b,
                                        x if x == token::T_MUL => a * b,
                                        _ => a / b,
                                    }),
                                    _ => Point::Absent,
                                })
                                .collect();
                            assert!(want.iter().any(|p| matches!(p, Point::Value(_))));
                            let mut state = State::of(&ratio);
                            let mut got = Vec::new();
                            let (mut from, mut piece) = (k0, 1);
                            while from <= steps {
                                let to = (from + piece - 1).min(steps);
                                run_from(&ratio, &mut state, &g, from, to, step_ms, &mut got);
                                from = to + 1;
                                piece += 1;
                            }
                            assert_eq!(
                                point_bits(&got),
                                point_bits(&want),
                                "{col:?} {op} {w} {track} {k0}"
                            );
                            // the one pass, not the two
                            let mut fresh = State::of(&ratio);
                            let State::Binary(ls, rs) = &mut fresh else {
                                panic!("a ratio's state");
                            };
                            let mut one = Vec::new();
                            let ks = k0..=steps;
                            assert!(counted_ratio(
                                op,
                                (&l, &r),
                                (ls, rs),
                                &g,
                                ks,
                                step_ms,
                                &mut one
                            ));
                            assert_eq!(point_bits(&one), point_bits(&want));
                        }
                    }
                }
            }
        }
    }

    /// The unrolled scan over goldengoose's buckets finds what the slice's
    /// scan finds, for every count to reach from 0 to one past the total;
    /// so does the scan from every hint.
    #[test]
    fn fixed_scan_is_the_slices() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..3_000 {
            let mut counts = [0u64; GOLDENGOOSE];
            for c in &mut counts {
                *c = if next().is_multiple_of(3) {
                    0
                } else {
                    next() % 9
                };
            }
            let total: u64 = counts.iter().sum();
            let mut cums = [0u64; GOLDENGOOSE];
            cums.copy_from_slice(&cumulative(&counts));
            for reach in 0..=total + 1 {
                let mut running = 0u64;
                let mut want = None;
                for (b, &c) in counts[..GOLDENGOOSE - 1].iter().enumerate() {
                    running += c;
                    if running >= reach {
                        want = Some(b);
                        break;
                    }
                }
                assert_eq!(first_reaching(&cums, reach), want, "{counts:?} {reach}");
                assert_eq!(first_reaching(&cums[..], reach), want);
                // from every hint, and the hint left is the answer
                for h in 0..GOLDENGOOSE + 2 {
                    let mut hint = h;
                    assert_eq!(first_reaching_from(&cums, reach, &mut hint), want);
                    assert_eq!(hint, want.unwrap_or(h), "{counts:?} {reach} {h}");
                    let mut hint = h;
                    assert_eq!(first_reaching_from(&cums[..], reach, &mut hint), want);
                }
            }
        }
    }

    /// Bit for bit what the evaluator's function gives on the same
    /// buckets: empty, sparse, one-bucket and dense counts, both tables,
    /// every kind of quantile.
    #[test]
    fn quantile_of_counts_is_the_evaluators_bit_for_bit() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let qs = [0.5, 0.99, 0.9, 0.01, 1.0, 0.0, 1e-9, 0.999_999];
        for case in 0..20_000 {
            let (bounds, n, counts) = random_buckets(&mut next, case, &[0, 1, 3, 50, 10_000]);
            let range_s = [60.0, 30.0, 120.0, 7.0][(next() % 4) as usize];
            let q = qs[(next() % qs.len() as u64) as usize];
            let mut running = 0u64;
            let merged: Vec<(f64, f64)> = (0..n)
                .map(|b| {
                    running += counts[b];
                    (
                        bounds.get(b).copied().unwrap_or(f64::INFINITY),
                        running as f64 / range_s,
                    )
                })
                .collect();
            let want = prom::eval::bucket_quantile_sorted(q, &merged);
            let got = quantile_of_counts(q, &counts[..n], bounds, range_s);
            assert!(
                want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()),
                "case {case}: q {q}, counts {counts:?}: {got} != {want}"
            );
        }
    }

    /// A state renewed from any other program's, used or fresh, is that
    /// program's fresh state, and its pass gives a fresh pass's points.
    #[test]
    fn renewed_state_is_a_fresh_one() {
        let svc = scenarios::Service::default();
        let steps = 80;
        let g = crash_looping_and_steady(&svc, 5, steps);
        let step_ms = 10_000;
        let rate = |track, col| Program::Rate {
            track,
            col,
            steps: 3,
            increase: false,
            divisor: 1.0,
        };
        let quantile = |track, q| Program::Quantile {
            q,
            track,
            istio: false,
            steps: 2,
        };
        let binary =
            |l: Program, r: Program| Program::Binary(token::T_DIV, Box::new(l), Box::new(r));
        let programs = [
            Program::Const(2.0),
            Program::Fallback,
            Program::Memory {
                track: 0,
                factor: 1.0,
            },
            rate(0, Col::Errors),
            rate(1, Col::Cpu),
            quantile(0, 0.5),
            binary(rate(0, Col::Errors), rate(0, Col::Requests)),
            binary(rate(1, Col::Ok), rate(1, Col::Requests)),
            binary(quantile(1, 0.9), rate(0, Col::Requests)),
            binary(
                binary(rate(0, Col::Errors), quantile(0, 0.99)),
                Program::Const(3.0),
            ),
            binary(
                Program::Const(1.0),
                binary(rate(1, Col::Cpu), rate(1, Col::Errors)),
            ),
        ];
        for old in &programs {
            for used in [false, true] {
                for p in &programs {
                    let mut state = State::of(old);
                    if used {
                        run_from(old, &mut state, &g, 5, 40, step_ms, &mut Vec::new());
                    }
                    state.renew(p);
                    assert_eq!(format!("{state:?}"), format!("{:?}", State::of(p)));
                    let (mut got, mut want) = (Vec::new(), Vec::new());
                    run_from(p, &mut state, &g, 2, steps, step_ms, &mut got);
                    run(p, &g, 2, steps, step_ms, &mut want);
                    let values = want.iter().any(|p| matches!(p, Point::Value(_)));
                    assert!(values || *p == Program::Fallback);
                    assert_eq!(
                        point_bits(&got),
                        point_bits(&want),
                        "{old:?} ({used}) to {p:?}"
                    );
                }
            }
        }
    }
}
