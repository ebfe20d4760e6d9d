//! The PromQL evaluator: a `promql-parser` AST evaluated on a [`Store`]
//! with Prometheus 2.x's semantics (the engine of Prometheus 2.42, the
//! oracle in this crate's tests): closed range windows `[t - range, t]`,
//! a 5-minute lookback for instant selectors, stale markers, `rate`
//! extrapolation, classic-bucket `histogram_quantile`, one-to-one and
//! group_left/group_right matching.
//!
//! A range query is its instant query evaluated at every step and stitched
//! by label set, which is what Prometheus's engine computes. Selector
//! matches are computed once per query; range selectors under a function
//! keep each series' window as two indices moved forward from step to step
//! (samples read in place), and `agg by (...) (f(selector[range]))` folds
//! the windows' values into groups found once per query (see prom/README.md).
//! Instant selectors find their sample by binary search.
//!
//! Anything the evaluator does not implement is refused when the query is
//! compiled ([`Query::parse`]) with an error naming the function and the
//! query, never answered with a silently wrong value.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Expr, LabelModifier, Offset, SubqueryExpr,
    VectorMatchCardinality, VectorSelector,
};

use crate::Error;
use crate::labels::{Labels, METRIC_NAME};
use crate::store::{Store, is_stale};

/// Prometheus's default lookback delta for instant selectors.
pub const LOOKBACK: Duration = Duration::from_secs(300);

/// Prometheus's default subquery step when none is given (the global
/// evaluation interval's default).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Prometheus's limit on points per series of a range query.
pub const MAX_POINTS: i64 = 11_000;

/// A value PromQL produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string literal.
    Str(String),
    /// An instant vector: one value per series, at the evaluation time.
    Vector(Vec<Sample>),
    /// A range vector (or a range query's result).
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// One series of a range vector: labels and columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: Labels,
    /// Timestamps in milliseconds.
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
}

/// A parsed and checked query.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    expr: Expr,
}

const RANGE_FUNCS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
];

const SIMPLE_FUNCS: &[&str] = &[
    "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn",
];

const OTHER_FUNCS: &[&str] = &[
    "clamp",
    "clamp_min",
    "clamp_max",
    "scalar",
    "vector",
    "absent",
    "absent_over_time",
    "time",
    "histogram_quantile",
    "sort",
    "sort_desc",
];

impl Query {
    /// Parses `text` and checks that everything in it is supported.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let expr = promql_parser::parser::parse(text).map_err(|message| Error::Parse {
            query: text.to_owned(),
            message: with_position(text, message),
        })?;
        check_supported(&expr, text)?;
        Ok(Self {
            text: text.to_owned(),
            expr,
        })
    }

    /// The query text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// promql-parser reports grammar errors without a position; find the
/// longest prefix, cut at a token boundary, after which the lexer still
/// accepts the text and the parser still has a chance, and name the first
/// token past it.
fn with_position(text: &str, message: String) -> String {
    // Token starts, approximately: the first character of each run of
    // non-space characters, and every bracket or operator character.
    let mut starts: Vec<usize> = Vec::new();
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if !space && (prev_space || "(){}[],=!~+-*/^%<>".contains(c)) {
            starts.push(i);
        }
        prev_space = space || "(){}[],".contains(c);
    }
    // The first prefix whose parse fails and cannot be completed by closing
    // brackets is where the error is.
    for &s in &starts {
        let end = text[s..]
            .char_indices()
            .nth(1)
            .map(|(k, _)| s + k)
            .unwrap_or(text.len());
        let prefix = &text[..end];
        if !completable(prefix) {
            let col = text[..s].chars().count() + 1;
            return format!("{message} at position {col} (near {:?})", &text[s..end]);
        }
    }
    format!(
        "{message} at position {} (unexpected end of query)",
        text.chars().count() + 1
    )
}

/// True when some short completion makes `prefix` parse: an operand
/// fragment, then whatever closes the brackets and quotes left open.
fn completable(prefix: &str) -> bool {
    const MIDS: &[&str] = &[
        "", "x", "1", "[5m]", "5m]", "m]", "[5m:]", ":]", "\"\"", "=\"\"", "x=\"\"", " x", "(x)",
        "1,x", "x[5m]", "1,x[5m]", " by (x)", ") by (x)", "le", "(x[5m])", "=~\"\"",
    ];
    MIDS.iter().any(|mid| {
        let mut candidate = format!("{prefix}{mid}");
        match closers(&candidate) {
            Some(c) => candidate.push_str(&c),
            None => return false,
        }
        promql_parser::parser::parse(&candidate).is_ok()
    })
}

/// The quotes and brackets that close what `s` leaves open, or `None`
/// when `s` closes a bracket it never opened.
fn closers(s: &str) -> Option<String> {
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' => stack.push(')'),
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            ')' | '}' | ']' => {
                let open = stack.pop();
                if open != Some(c) {
                    return None;
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    if let Some(q) = quote {
        out.push(q);
    }
    out.extend(stack.iter().rev());
    Some(out)
}

fn check_supported(expr: &Expr, query: &str) -> Result<(), Error> {
    let unsupported = |what: &str| Error::Unsupported {
        function: what.to_owned(),
        query: query.to_owned(),
    };
    match expr {
        Expr::Aggregate(a) => {
            let ok = [
                token::T_SUM,
                token::T_AVG,
                token::T_MIN,
                token::T_MAX,
                token::T_COUNT,
                token::T_QUANTILE,
                token::T_TOPK,
                token::T_BOTTOMK,
                token::T_GROUP,
                token::T_STDDEV,
                token::T_STDVAR,
            ];
            if !ok.contains(&a.op.id()) {
                return Err(unsupported(&a.op.to_string()));
            }
            check_supported(&a.expr, query)?;
            if let Some(p) = &a.param {
                check_supported(p, query)?;
            }
            Ok(())
        }
        Expr::Unary(u) => check_supported(&u.expr, query),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(unsupported("fill modifier"));
            }
            check_supported(&b.lhs, query)?;
            check_supported(&b.rhs, query)
        }
        Expr::Paren(p) => check_supported(&p.expr, query),
        Expr::Subquery(s) => check_supported(&s.expr, query),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs, query),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs, query),
        Expr::Call(c) => {
            let name = c.func.name;
            if !(RANGE_FUNCS.contains(&name)
                || SIMPLE_FUNCS.contains(&name)
                || OTHER_FUNCS.contains(&name))
            {
                return Err(unsupported(name));
            }
            for a in &c.args.args {
                check_supported(a, query)?;
            }
            Ok(())
        }
        Expr::Extension(_) => Err(unsupported("extension expression")),
    }
}

fn check_selector(vs: &VectorSelector, query: &str) -> Result<(), Error> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::Unsupported {
            function: "`or` inside label matchers".into(),
            query: query.to_owned(),
        });
    }
    Ok(())
}

/// Evaluates queries on a store.
#[derive(Debug)]
pub struct Engine<'a> {
    store: &'a Store,
    lookback_ms: i64,
}

/// What evaluations of one query on one store share: each selector's
/// matches and each fused aggregation's groups, which depend on the
/// store's series (their labels), not on their samples. A store only ever
/// adds series, so the cache is kept while the query (its address), the
/// store's series (their address) and their number are the same, and
/// dropped otherwise. The simulator evaluates each query of an analysis
/// many times on one store whose samples grow (and are cleared between
/// runs); keep one cache per query and store.
#[derive(Default)]
pub struct QueryCache {
    /// Address of the query's expression, of the store's series, and
    /// their number, when the maps were filled.
    key: Option<(usize, usize, usize)>,
    selected: HashMap<usize, Rc<Vec<usize>>>,
    fused: HashMap<usize, Option<Rc<Fused>>>,
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("selectors", &self.selected.len())
            .field("aggregations", &self.fused.len())
            .finish()
    }
}

impl QueryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands the kept maps to `ctx` (an evaluation of `q` on `store`),
    /// dropped first if they were filled for another query or store.
    fn lend(&mut self, store: &Store, q: &Query, ctx: &Ctx<'_>) {
        let key = (
            std::ptr::from_ref(&q.expr) as usize,
            store.series().as_ptr() as usize,
            store.len(),
        );
        if self.key != Some(key) {
            self.selected.clear();
            self.fused.clear();
            self.key = Some(key);
        }
        *ctx.selected.borrow_mut() = std::mem::take(&mut self.selected);
        *ctx.fused.borrow_mut() = std::mem::take(&mut self.fused);
    }

    /// Takes the maps back from the evaluation's `ctx`.
    fn keep(&mut self, ctx: Ctx<'_>) {
        self.selected = ctx.selected.into_inner();
        self.fused = ctx.fused.into_inner();
    }
}

/// Per-query state: the query's time bounds (for `@ start()`/`@ end()`),
/// the selector matches (computed once), each range selector's windows
/// (two indices per series, moved forward from step to step), and the
/// group of every series under a fused aggregation (computed once).
/// Keys are the addresses of the AST nodes, stable for the query.
struct Ctx<'q> {
    query: &'q str,
    start: i64,
    end: i64,
    selected: RefCell<HashMap<usize, Rc<Vec<usize>>>>,
    windows: RefCell<HashMap<usize, Windows>>,
    fused: RefCell<HashMap<usize, Option<Rc<Fused>>>>,
}

impl<'q> Ctx<'q> {
    fn new(query: &'q str, start: i64, end: i64) -> Self {
        Self {
            query,
            start,
            end,
            selected: RefCell::new(HashMap::new()),
            windows: RefCell::new(HashMap::new()),
            fused: RefCell::new(HashMap::new()),
        }
    }
}

/// A range selector's sliding windows: for every matched series (in match
/// order) the sample indices `lo..hi` of the window ending at `maxt`.
/// Moving to a later window only moves the indices forward; an earlier
/// window (a subquery stepping back) is found again by binary search.
#[derive(Default)]
struct Windows {
    maxt: Option<i64>,
    bounds: Vec<(usize, usize)>,
    /// Whether each matched series has a stale marker anywhere (its windows
    /// are then copied without the markers).
    stale: Vec<bool>,
}

/// `agg by (...) (f(selector[range]))` evaluated without building the
/// inner vector: each matched series' group, computed once per query.
struct Fused {
    /// Group index per matched series (match order).
    group_of: Vec<usize>,
    /// Each group's output label set.
    labels: Vec<Labels>,
}

/// The running value of one group of a fused aggregation.
struct Acc {
    group: usize,
    run: Running,
}

/// One group's running `sum`, `avg`, `min`, `max`, `count`, `group`,
/// `stddev` or `stdvar`, updated as Prometheus's aggregation does
/// (promql/engine.go, aggregation): the same values in the same order give
/// the same result, whichever path folds them.
struct Running {
    value: f64,
    mean: f64,
    count: usize,
}

impl Running {
    /// A group whose first value is `v`.
    fn first(op: u16, v: f64) -> Self {
        let value = match op {
            x if x == token::T_STDDEV || x == token::T_STDVAR => 0.0,
            x if x == token::T_GROUP => 1.0,
            _ => v,
        };
        Running {
            value,
            mean: v,
            count: 1,
        }
    }

    /// Fold in `v`; `false` when `op` is not one of the operators above.
    fn add(&mut self, op: u16, v: f64) -> bool {
        match op {
            x if x == token::T_SUM => self.value += v,
            x if x == token::T_AVG => {
                self.count += 1;
                let n = self.count as f64;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return true;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return true;
                    }
                }
                self.mean += v / n - self.mean / n;
            }
            x if x == token::T_MAX => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            x if x == token::T_MIN => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            x if x == token::T_COUNT => self.count += 1,
            x if x == token::T_GROUP => {}
            x if x == token::T_STDDEV || x == token::T_STDVAR => {
                self.count += 1;
                let delta = v - self.mean;
                self.mean += delta / self.count as f64;
                self.value += delta * (v - self.mean);
            }
            _ => return false,
        }
        true
    }

    /// The group's value.
    fn result(&self, op: u16) -> f64 {
        match op {
            x if x == token::T_AVG => self.mean,
            x if x == token::T_COUNT => self.count as f64,
            x if x == token::T_STDVAR => self.value / self.count as f64,
            x if x == token::T_STDDEV => (self.value / self.count as f64).sqrt(),
            _ => self.value,
        }
    }
}

impl<'a> Engine<'a> {
    /// An engine on `store` with Prometheus's default 5-minute lookback.
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            lookback_ms: LOOKBACK.as_millis() as i64,
        }
    }

    /// Sets the lookback delta (Prometheus's `--query.lookback-delta`).
    pub fn with_lookback(mut self, lookback: Duration) -> Self {
        self.lookback_ms = lookback.as_millis() as i64;
        self
    }

    /// `/api/v1/query` at `t_ms`.
    pub fn instant(&self, q: &Query, t_ms: i64) -> Result<Value, Error> {
        let ctx = Ctx::new(&q.text, t_ms, t_ms);
        self.eval(&ctx, &q.expr, t_ms)
    }

    /// [`Engine::instant`], keeping in `cache` what depends only on the
    /// query and the store's series (each selector's matches, each fused
    /// aggregation's groups), not on their samples: the next evaluation of
    /// `q` on this store, at any time and after any samples were added,
    /// starts from them. The same value as [`Engine::instant`].
    pub fn instant_cached(
        &self,
        q: &Query,
        t_ms: i64,
        cache: &mut QueryCache,
    ) -> Result<Value, Error> {
        let ctx = Ctx::new(&q.text, t_ms, t_ms);
        cache.lend(self.store, q, &ctx);
        let out = self.eval(&ctx, &q.expr, t_ms);
        cache.keep(ctx);
        out
    }

    /// [`Engine::range`] with a [`QueryCache`] (see
    /// [`Engine::instant_cached`]).
    pub fn range_cached(
        &self,
        q: &Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cache: &mut QueryCache,
    ) -> Result<Vec<RangeSeries>, Error> {
        self.range_with(q, start_ms, end_ms, step_ms, Some(cache))
    }

    /// `/api/v1/query_range` from `start_ms` to `end_ms` every `step_ms`:
    /// a matrix sorted by labels (a scalar expression gives one series
    /// with no labels).
    pub fn range(
        &self,
        q: &Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<RangeSeries>, Error> {
        self.range_with(q, start_ms, end_ms, step_ms, None)
    }

    fn range_with(
        &self,
        q: &Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        mut cache: Option<&mut QueryCache>,
    ) -> Result<Vec<RangeSeries>, Error> {
        let err = |message: String| Error::Eval {
            query: q.text.clone(),
            message,
        };
        if step_ms <= 0 {
            return Err(err(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(err("end timestamp must not be before start time".into()));
        }
        if (end_ms - start_ms) / step_ms > MAX_POINTS {
            return Err(err("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into()));
        }
        let ctx = Ctx::new(&q.text, start_ms, end_ms);
        if let Some(c) = cache.as_deref_mut() {
            c.lend(self.store, q, &ctx);
        }
        let out = self.range_steps(&ctx, q, start_ms, end_ms, step_ms);
        if let Some(c) = cache {
            c.keep(ctx);
        }
        out
    }

    fn range_steps(
        &self,
        ctx: &Ctx,
        q: &Query,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<RangeSeries>, Error> {
        let err = |message: String| Error::Eval {
            query: q.text.clone(),
            message,
        };
        let mut out: Vec<RangeSeries> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut t = start_ms;
        while t <= end_ms {
            match self.eval(ctx, &q.expr, t)? {
                Value::Scalar(v) => {
                    push_point(&mut out, &mut index, Labels::new(), t, v);
                }
                Value::Vector(vec) => {
                    for s in vec {
                        push_point(&mut out, &mut index, s.labels, t, s.value);
                    }
                }
                Value::Matrix(_) => {
                    return Err(err(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
                Value::Str(_) => {
                    return Err(err(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
            }
            t += step_ms;
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn err(&self, ctx: &Ctx, message: impl Into<String>) -> Error {
        Error::Eval {
            query: ctx.query.to_owned(),
            message: message.into(),
        }
    }

    fn eval(&self, ctx: &Ctx, expr: &Expr, ts: i64) -> Result<Value, Error> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(ctx, &p.expr, ts),
            Expr::Unary(u) => match self.eval(ctx, &u.expr, ts)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(vec) => {
                    let out = vec
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_name(),
                            value: -s.value,
                        })
                        .collect();
                    self.unique(ctx, out)
                }
                _ => Err(self.err(ctx, "unary minus needs a scalar or an instant vector")),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.select_instant(ctx, vs, ts))),
            Expr::MatrixSelector(ms) => {
                let (end, _) = self.window_end(ctx, &ms.vs.at, &ms.vs.offset, ts);
                let range = ms.range.as_millis() as i64;
                Ok(Value::Matrix(self.select_range(
                    ctx,
                    &ms.vs,
                    end - range,
                    end,
                )))
            }
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(ctx, sq, ts)?.0)),
            Expr::Call(c) => self.call(ctx, c, ts),
            Expr::Aggregate(a) => self.aggregate(ctx, a, ts),
            Expr::Binary(b) => self.binary(ctx, b, ts),
            Expr::Extension(_) => Err(self.err(ctx, "extension expressions are not supported")),
        }
    }

    /// The evaluation time with `@` and `offset` applied, and whether `@` was used.
    fn window_end(
        &self,
        ctx: &Ctx,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        ts: i64,
    ) -> (i64, bool) {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => ctx.start,
            Some(AtModifier::End) => ctx.end,
            Some(AtModifier::At(st)) => system_time_ms(*st),
        };
        let off = match offset {
            None => 0,
            Some(Offset::Pos(d)) => d.as_millis() as i64,
            Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        };
        (base - off, at.is_some())
    }

    /// Indices of the series a selector matches, sorted by labels as
    /// Prometheus's storage returns them; computed once per query.
    fn matches(&self, ctx: &Ctx, vs: &VectorSelector) -> Rc<Vec<usize>> {
        let key = std::ptr::from_ref(vs) as usize;
        if let Some(v) = ctx.selected.borrow().get(&key) {
            return Rc::clone(v);
        }
        let mut ids: Vec<usize> = self
            .store
            .candidates(vs.name.as_deref())
            .into_iter()
            .filter(|&i| matches_all(self.store.labels_of(i), &vs.matchers))
            .collect();
        ids.sort_by(|&a, &b| self.store.labels_of(a).cmp(self.store.labels_of(b)));
        let ids = Rc::new(ids);
        ctx.selected.borrow_mut().insert(key, Rc::clone(&ids));
        ids
    }

    /// Calls `f(position in the matches, timestamps, values)` with every
    /// matched series' samples in `[maxt - range, maxt]` (stale markers
    /// left out), in match order, skipping empty windows. The windows
    /// slide: from one step to the next each series' two indices move
    /// forward, and the samples are read in place (copied only for a
    /// series that has stale markers).
    fn for_each_window(
        &self,
        ctx: &Ctx,
        vs: &VectorSelector,
        range: i64,
        maxt: i64,
        mut f: impl FnMut(usize, &[i64], &[f64]),
    ) {
        let ids = self.matches(ctx, vs);
        let key = std::ptr::from_ref(vs) as usize;
        let mut all = ctx.windows.borrow_mut();
        let w = all.entry(key).or_insert_with(|| Windows {
            maxt: None,
            bounds: vec![(0, 0); ids.len()],
            stale: ids.iter().map(|&i| self.store.has_stale(i)).collect(),
        });
        let mint = maxt - range;
        let forward = w.maxt.is_some_and(|prev| prev <= maxt);
        w.maxt = Some(maxt);
        let (mut sts, mut svs) = (Vec::new(), Vec::new());
        for (pos, &i) in ids.iter().enumerate() {
            let s = &self.store.series()[i];
            let ts = &s.timestamps;
            let (lo, hi) = &mut w.bounds[pos];
            if forward {
                while *lo < ts.len() && ts[*lo] < mint {
                    *lo += 1;
                }
                if *hi < *lo {
                    *hi = *lo;
                }
                while *hi < ts.len() && ts[*hi] <= maxt {
                    *hi += 1;
                }
            } else {
                *lo = ts.partition_point(|&t| t < mint);
                *hi = ts.partition_point(|&t| t <= maxt);
            }
            let (lo, hi) = (*lo, *hi);
            if lo >= hi {
                continue;
            }
            if w.stale[pos] {
                sts.clear();
                svs.clear();
                for (&t, &v) in ts[lo..hi].iter().zip(&s.values[lo..hi]) {
                    if !is_stale(v) {
                        sts.push(t);
                        svs.push(v);
                    }
                }
                if !sts.is_empty() {
                    f(pos, &sts, &svs);
                }
            } else {
                f(pos, &ts[lo..hi], &s.values[lo..hi]);
            }
        }
    }

    fn select_instant(&self, ctx: &Ctx, vs: &VectorSelector, ts: i64) -> Vec<Sample> {
        let (reft, _) = self.window_end(ctx, &vs.at, &vs.offset, ts);
        let mut out = Vec::new();
        for &i in self.matches(ctx, vs).iter() {
            let s = &self.store.series()[i];
            let k = s.timestamps.partition_point(|&t| t <= reft);
            if k == 0 {
                continue;
            }
            let (t, v) = (s.timestamps[k - 1], s.values[k - 1]);
            if t < reft - self.lookback_ms || is_stale(v) {
                continue;
            }
            out.push(Sample {
                labels: s.labels.clone(),
                value: v,
            });
        }
        out
    }

    fn select_range(
        &self,
        ctx: &Ctx,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Vec<RangeSeries> {
        let mut out = Vec::new();
        for &i in self.matches(ctx, vs).iter() {
            let s = &self.store.series()[i];
            let lo = s.timestamps.partition_point(|&t| t < mint);
            let hi = s.timestamps.partition_point(|&t| t <= maxt);
            let mut rs = RangeSeries {
                labels: s.labels.clone(),
                timestamps: Vec::with_capacity(hi.saturating_sub(lo)),
                values: Vec::with_capacity(hi.saturating_sub(lo)),
            };
            for k in lo..hi {
                if !is_stale(s.values[k]) {
                    rs.timestamps.push(s.timestamps[k]);
                    rs.values.push(s.values[k]);
                }
            }
            if !rs.timestamps.is_empty() {
                out.push(rs);
            }
        }
        out
    }

    /// A subquery's points at `ts`: the inner expression evaluated at the
    /// step-aligned times in `[end - range, end]`. Returns the series, the
    /// range and the window end.
    fn subquery(
        &self,
        ctx: &Ctx,
        sq: &SubqueryExpr,
        ts: i64,
    ) -> Result<(Vec<RangeSeries>, i64, i64), Error> {
        let (end, _) = self.window_end(ctx, &sq.at, &sq.offset, ts);
        let range = sq.range.as_millis() as i64;
        let step = sq
            .step
            .map(|d| d.as_millis() as i64)
            .filter(|&s| s > 0)
            .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        let lo = end - range;
        let mut t = lo.div_euclid(step) * step;
        if t < lo {
            t += step;
        }
        let mut out = Vec::new();
        let mut index = HashMap::new();
        while t <= end {
            match self.eval(ctx, &sq.expr, t)? {
                Value::Scalar(v) => push_point(&mut out, &mut index, Labels::new(), t, v),
                Value::Vector(vec) => {
                    for s in vec {
                        push_point(&mut out, &mut index, s.labels, t, s.value);
                    }
                }
                _ => return Err(self.err(ctx, "subquery needs a scalar or an instant vector")),
            }
            t += step;
        }
        Ok((out, range, end))
    }

    fn scalar_arg(&self, ctx: &Ctx, e: &Expr, ts: i64) -> Result<f64, Error> {
        match self.eval(ctx, e, ts)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(self.err(ctx, format!("expected a scalar argument, got {e}"))),
        }
    }

    fn vector_arg(&self, ctx: &Ctx, e: &Expr, ts: i64) -> Result<Vec<Sample>, Error> {
        match self.eval(ctx, e, ts)? {
            Value::Vector(v) => Ok(v),
            _ => Err(self.err(ctx, format!("expected an instant vector argument, got {e}"))),
        }
    }

    /// A range-vector argument: its series, range and window end.
    fn range_arg(
        &self,
        ctx: &Ctx,
        e: &Expr,
        ts: i64,
    ) -> Result<(Vec<RangeSeries>, i64, i64), Error> {
        match e {
            Expr::Paren(p) => self.range_arg(ctx, &p.expr, ts),
            Expr::MatrixSelector(ms) => {
                let (end, _) = self.window_end(ctx, &ms.vs.at, &ms.vs.offset, ts);
                let range = ms.range.as_millis() as i64;
                Ok((self.select_range(ctx, &ms.vs, end - range, end), range, end))
            }
            Expr::Subquery(sq) => self.subquery(ctx, sq, ts),
            _ => Err(self.err(ctx, format!("expected a range vector argument, got {e}"))),
        }
    }

    fn call(&self, ctx: &Ctx, c: &Call, ts: i64) -> Result<Value, Error> {
        let name = c.func.name;
        let args = &c.args.args;
        let arg = |i: usize| -> Result<&Expr, Error> {
            args.get(i)
                .map(|b| b.as_ref())
                .ok_or_else(|| self.err(ctx, format!("{name}: missing argument {}", i + 1)))
        };
        if RANGE_FUNCS.contains(&name) {
            let (q, marg) = if name == "quantile_over_time" {
                (Some(self.scalar_arg(ctx, arg(0)?, ts)?), arg(1)?)
            } else {
                (None, arg(0)?)
            };
            if let Some(ms) = matrix_selector(marg) {
                let (end, _) = self.window_end(ctx, &ms.vs.at, &ms.vs.offset, ts);
                let range = ms.range.as_millis() as i64;
                let ids = self.matches(ctx, &ms.vs);
                let mut out = Vec::new();
                self.for_each_window(ctx, &ms.vs, range, end, |pos, wts, wvs| {
                    if let Some(v) = range_function(name, wts, wvs, range, end, q) {
                        let l = self.store.labels_of(ids[pos]);
                        let labels = if name == "last_over_time" {
                            l.clone()
                        } else {
                            l.without_name()
                        };
                        out.push(Sample { labels, value: v });
                    }
                });
                return self.unique(ctx, out);
            }
            let (series, range, end) = self.range_arg(ctx, marg, ts)?;
            let mut out = Vec::with_capacity(series.len());
            for s in series {
                let v = match range_function(name, &s.timestamps, &s.values, range, end, q) {
                    Some(v) => v,
                    None => continue,
                };
                let labels = if name == "last_over_time" {
                    s.labels
                } else {
                    s.labels.without_name()
                };
                out.push(Sample { labels, value: v });
            }
            return self.unique(ctx, out);
        }
        if SIMPLE_FUNCS.contains(&name) {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sqrt" => f64::sqrt,
                _ => |v: f64| {
                    if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        v
                    }
                },
            };
            let vec = self.vector_arg(ctx, arg(0)?, ts)?;
            let out = vec
                .into_iter()
                .map(|s| Sample {
                    labels: s.labels.without_name(),
                    value: f(s.value),
                })
                .collect();
            return self.unique(ctx, out);
        }
        match name {
            "time" => Ok(Value::Scalar(ts as f64 / 1000.0)),
            "vector" => Ok(Value::Vector(vec![Sample {
                labels: Labels::new(),
                value: self.scalar_arg(ctx, arg(0)?, ts)?,
            }])),
            "scalar" => {
                let v = self.vector_arg(ctx, arg(0)?, ts)?;
                Ok(Value::Scalar(if v.len() == 1 {
                    v[0].value
                } else {
                    f64::NAN
                }))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let vec = self.vector_arg(ctx, arg(0)?, ts)?;
                let (lo, hi) = match name {
                    "clamp" => (
                        self.scalar_arg(ctx, arg(1)?, ts)?,
                        self.scalar_arg(ctx, arg(2)?, ts)?,
                    ),
                    "clamp_min" => (self.scalar_arg(ctx, arg(1)?, ts)?, f64::NAN),
                    _ => (f64::NAN, self.scalar_arg(ctx, arg(1)?, ts)?),
                };
                if name == "clamp" && hi < lo {
                    return Ok(Value::Vector(Vec::new()));
                }
                let out = vec
                    .into_iter()
                    .map(|s| {
                        // Go's math.Max/math.Min: NaN wins.
                        let mut v = s.value;
                        if name != "clamp_max" {
                            v = go_max(lo, v);
                        }
                        if name != "clamp_min" {
                            v = go_min(hi, v);
                        }
                        Sample {
                            labels: s.labels.without_name(),
                            value: v,
                        }
                    })
                    .collect();
                self.unique(ctx, out)
            }
            "absent" => {
                let v = self.vector_arg(ctx, arg(0)?, ts)?;
                if !v.is_empty() {
                    return Ok(Value::Vector(Vec::new()));
                }
                Ok(Value::Vector(vec![Sample {
                    labels: absent_labels(arg(0)?),
                    value: 1.0,
                }]))
            }
            "absent_over_time" => {
                let (s, _, _) = self.range_arg(ctx, arg(0)?, ts)?;
                if !s.is_empty() {
                    return Ok(Value::Vector(Vec::new()));
                }
                Ok(Value::Vector(vec![Sample {
                    labels: absent_labels(arg(0)?),
                    value: 1.0,
                }]))
            }
            "sort" | "sort_desc" => {
                let mut v = self.vector_arg(ctx, arg(0)?, ts)?;
                if name == "sort" {
                    v.sort_by(|a, b| sort_key(a.value, b.value));
                } else {
                    v.sort_by(|a, b| sort_key(b.value, a.value));
                }
                Ok(Value::Vector(v))
            }
            "histogram_quantile" => {
                let q = self.scalar_arg(ctx, arg(0)?, ts)?;
                let vec = self.vector_arg(ctx, arg(1)?, ts)?;
                let out = histogram_quantile(q, vec);
                self.unique(ctx, out)
            }
            other => Err(Error::Unsupported {
                function: other.to_owned(),
                query: ctx.query.to_owned(),
            }),
        }
    }

    /// Prometheus refuses a vector with two equal label sets.
    fn unique(&self, ctx: &Ctx, v: Vec<Sample>) -> Result<Value, Error> {
        if v.len() > 1 {
            let mut seen = std::collections::HashSet::with_capacity(v.len());
            for s in &v {
                if !seen.insert(&s.labels) {
                    return Err(
                        self.err(ctx, "vector cannot contain metrics with the same labelset")
                    );
                }
            }
        }
        Ok(Value::Vector(v))
    }

    fn aggregate(&self, ctx: &Ctx, a: &AggregateExpr, ts: i64) -> Result<Value, Error> {
        let op = a.op.id();
        let param = match &a.param {
            Some(p) if op != token::T_COUNT_VALUES => Some(self.scalar_arg(ctx, p, ts)?),
            _ => None,
        };
        if let Some(v) = self.fused_aggregate(ctx, a, op, ts) {
            return Ok(v);
        }
        let input = self.vector_arg(ctx, &a.expr, ts)?;
        let (without, grouping) = grouping_of(a);
        let group_labels = |l: &Labels| group_key(l, without, &grouping);
        let mut k = 0i64;
        if op == token::T_TOPK || op == token::T_BOTTOMK {
            let f = param.unwrap_or(f64::NAN);
            if !(f.is_finite() || f.is_nan()) || f.abs() >= 9.2e18 || f.is_nan() {
                return Err(self.err(ctx, format!("Scalar value {} overflows int64", go_float(f))));
            }
            k = f as i64;
            if k < 1 {
                return Ok(Value::Vector(Vec::new()));
            }
        }
        struct Group {
            labels: Labels,
            run: Running,
            heap: Vec<Sample>,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in input {
            let key = group_labels(&s.labels);
            let gi = match index.get(&key) {
                Some(&gi) => gi,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(Group {
                        labels: key,
                        run: Running::first(op, s.value),
                        heap: vec![s],
                    });
                    continue;
                }
            };
            let g = &mut groups[gi];
            let v = s.value;
            if g.run.add(op, v) {
                continue;
            }
            match op {
                x if x == token::T_TOPK => {
                    let h = &mut g.heap;
                    if (h.len() as i64) < k || h[0].value < v || h[0].value.is_nan() {
                        if h.len() as i64 == k {
                            if k == 1 {
                                h[0] = s;
                                continue;
                            }
                            go_heap_pop(h, top_less);
                        }
                        go_heap_push(h, s, top_less);
                    }
                }
                x if x == token::T_BOTTOMK => {
                    let h = &mut g.heap;
                    if (h.len() as i64) < k || h[0].value > v || h[0].value.is_nan() {
                        if h.len() as i64 == k {
                            if k == 1 {
                                h[0] = s;
                                continue;
                            }
                            go_heap_pop(h, bottom_less);
                        }
                        go_heap_push(h, s, bottom_less);
                    }
                }
                x if x == token::T_QUANTILE => g.heap.push(s),
                _ => {
                    return Err(Error::Unsupported {
                        function: a.op.to_string(),
                        query: ctx.query.to_owned(),
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let value = match op {
                x if x == token::T_QUANTILE => {
                    let mut vals: Vec<f64> = g.heap.iter().map(|s| s.value).collect();
                    quantile(param.unwrap_or(f64::NAN), &mut vals)
                }
                x if x == token::T_TOPK || x == token::T_BOTTOMK => {
                    let mut h = g.heap;
                    if x == token::T_TOPK {
                        h.sort_by(|a, b| sort_key(b.value, a.value));
                    } else {
                        h.sort_by(|a, b| sort_key(a.value, b.value));
                    }
                    out.extend(h);
                    continue;
                }
                _ => g.run.result(op),
            };
            out.push(Sample {
                labels: g.labels,
                value,
            });
        }
        Ok(Value::Vector(out))
    }

    /// `sum/avg/min/max/count/group/stddev/stdvar by (...) (f(sel[r]))`
    /// with `f` a range function: each series' value is folded into its
    /// group (found once per query) straight from its sliding window,
    /// without building the inner vector's label sets at every step. The
    /// same values in the same order as the general path, so the same
    /// result. `None` when the expression has another shape, or when two
    /// matched series would give the same label set under `f` (the general
    /// path then reports the error Prometheus reports).
    fn fused_aggregate(&self, ctx: &Ctx, a: &AggregateExpr, op: u16, ts: i64) -> Option<Value> {
        let simple = [
            token::T_SUM,
            token::T_AVG,
            token::T_MIN,
            token::T_MAX,
            token::T_COUNT,
            token::T_GROUP,
            token::T_STDDEV,
            token::T_STDVAR,
        ];
        if !simple.contains(&op) {
            return None;
        }
        let Expr::Call(c) = strip_parens(&a.expr) else {
            return None;
        };
        let name = c.func.name;
        if !RANGE_FUNCS.contains(&name) || name == "quantile_over_time" {
            return None;
        }
        let ms = matrix_selector(c.args.args.first()?)?;
        let key = std::ptr::from_ref(a) as usize;
        let cached = ctx.fused.borrow().get(&key).cloned();
        let fused = match cached {
            Some(f) => f?,
            None => {
                let f = self
                    .fuse(ctx, a, &ms.vs, name == "last_over_time")
                    .map(Rc::new);
                ctx.fused.borrow_mut().insert(key, f.clone());
                f?
            }
        };
        let (end, _) = self.window_end(ctx, &ms.vs.at, &ms.vs.offset, ts);
        let range = ms.range.as_millis() as i64;
        let mut slot = vec![usize::MAX; fused.labels.len()];
        let mut accs: Vec<Acc> = Vec::new();
        self.for_each_window(ctx, &ms.vs, range, end, |pos, wts, wvs| {
            let Some(v) = range_function(name, wts, wvs, range, end, None) else {
                return;
            };
            let g = fused.group_of[pos];
            if slot[g] == usize::MAX {
                slot[g] = accs.len();
                accs.push(Acc {
                    group: g,
                    run: Running::first(op, v),
                });
                return;
            }
            accs[slot[g]].run.add(op, v);
        });
        let out = accs
            .into_iter()
            .map(|acc| Sample {
                labels: fused.labels[acc.group].clone(),
                value: acc.run.result(op),
            })
            .collect();
        Some(Value::Vector(out))
    }

    /// The groups of a fused aggregation, or `None` when two matched
    /// series have the same label set once the range function is applied.
    fn fuse(
        &self,
        ctx: &Ctx,
        a: &AggregateExpr,
        vs: &VectorSelector,
        keeps_name: bool,
    ) -> Option<Fused> {
        let (without, grouping) = grouping_of(a);
        let ids = self.matches(ctx, vs);
        let mut seen: HashSet<Labels> = HashSet::with_capacity(ids.len());
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut fused = Fused {
            group_of: Vec::with_capacity(ids.len()),
            labels: Vec::new(),
        };
        for &i in ids.iter() {
            let l = self.store.labels_of(i);
            let inner = if keeps_name {
                l.clone()
            } else {
                l.without_name()
            };
            let key = group_key(&inner, without, &grouping);
            if !seen.insert(inner) {
                return None;
            }
            let g = *index.entry(key.clone()).or_insert_with(|| {
                fused.labels.push(key);
                fused.labels.len() - 1
            });
            fused.group_of.push(g);
        }
        Some(fused)
    }

    fn binary(&self, ctx: &Ctx, b: &BinaryExpr, ts: i64) -> Result<Value, Error> {
        let op = b.op.id();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(ctx, &b.lhs, ts)?;
        let rhs = self.eval(ctx, &b.rhs, ts)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = elem_binop(op, l, r);
                if is_comparison(op) {
                    Ok(Value::Scalar(if keep { 1.0 } else { 0.0 }))
                } else {
                    Ok(Value::Scalar(v))
                }
            }
            (Value::Vector(l), Value::Scalar(r)) => {
                self.vector_scalar(ctx, op, l, r, false, return_bool)
            }
            (Value::Scalar(l), Value::Vector(r)) => {
                self.vector_scalar(ctx, op, r, l, true, return_bool)
            }
            (Value::Vector(l), Value::Vector(r)) => {
                self.vector_vector(ctx, b, op, l, r, return_bool)
            }
            _ => Err(self.err(
                ctx,
                format!("binary operator {} needs scalars or instant vectors", b.op),
            )),
        }
    }

    fn vector_scalar(
        &self,
        ctx: &Ctx,
        op: u16,
        vec: Vec<Sample>,
        scalar: f64,
        swap: bool,
        return_bool: bool,
    ) -> Result<Value, Error> {
        let mut out = Vec::with_capacity(vec.len());
        for mut s in vec {
            let (lv, rv) = if swap {
                (scalar, s.value)
            } else {
                (s.value, scalar)
            };
            let (mut value, mut keep) = elem_binop(op, lv, rv);
            if is_comparison(op) && swap {
                value = rv;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                s.value = value;
                if drops_name(op) || return_bool {
                    s.labels = s.labels.without_name();
                }
                out.push(s);
            }
        }
        self.unique(ctx, out)
    }

    fn vector_vector(
        &self,
        ctx: &Ctx,
        b: &BinaryExpr,
        op: u16,
        lhs: Vec<Sample>,
        rhs: Vec<Sample>,
        return_bool: bool,
    ) -> Result<Value, Error> {
        let (on, match_labels): (bool, Vec<String>) =
            match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
                None => (false, Vec::new()),
            };
        let card = b
            .modifier
            .as_ref()
            .map(|m| m.card.clone())
            .unwrap_or(VectorMatchCardinality::OneToOne);
        let sig = |l: &Labels| -> Labels {
            if on {
                l.keep(&match_labels)
            } else {
                let mut s = l.drop_names(&match_labels);
                s.remove(METRIC_NAME);
                s
            }
        };
        if op == token::T_LAND || op == token::T_LOR || op == token::T_LUNLESS {
            let out = match op {
                x if x == token::T_LAND => {
                    let rs: std::collections::HashSet<Labels> =
                        rhs.iter().map(|s| sig(&s.labels)).collect();
                    lhs.into_iter()
                        .filter(|s| rs.contains(&sig(&s.labels)))
                        .collect()
                }
                x if x == token::T_LUNLESS => {
                    let rs: std::collections::HashSet<Labels> =
                        rhs.iter().map(|s| sig(&s.labels)).collect();
                    lhs.into_iter()
                        .filter(|s| !rs.contains(&sig(&s.labels)))
                        .collect()
                }
                _ => {
                    let ls: std::collections::HashSet<Labels> =
                        lhs.iter().map(|s| sig(&s.labels)).collect();
                    let mut out = lhs;
                    out.extend(rhs.into_iter().filter(|s| !ls.contains(&sig(&s.labels))));
                    out
                }
            };
            return Ok(Value::Vector(out));
        }
        if lhs.is_empty() || rhs.is_empty() {
            return Ok(Value::Vector(Vec::new()));
        }
        let (include, one_to_many) = match &card {
            VectorMatchCardinality::ManyToOne(l) => (l.labels.clone(), false),
            VectorMatchCardinality::OneToMany(l) => (l.labels.clone(), true),
            _ => (Vec::new(), false),
        };
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
        let mut right: HashMap<Labels, Sample> = HashMap::with_capacity(rhs.len());
        for rs in rhs {
            let key = sig(&rs.labels);
            if let Some(dup) = right.get(&key) {
                let side = if one_to_many { "left" } else { "right" };
                return Err(self.err(
                    ctx,
                    format!(
                        "found duplicate series for the match group {key} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        rs.labels, dup.labels
                    ),
                ));
            }
            right.insert(key, rs);
        }
        let mut matched: HashMap<Labels, std::collections::HashSet<Labels>> = HashMap::new();
        let mut out = Vec::new();
        for ls in lhs {
            let key = sig(&ls.labels);
            let Some(rs) = right.get(&key) else { continue };
            let (vl, vr) = if one_to_many {
                (rs.value, ls.value)
            } else {
                (ls.value, rs.value)
            };
            let (mut value, keep) = elem_binop(op, vl, vr);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            // resultMetric
            let mut metric = ls.labels.clone();
            if drops_name(op) {
                metric.remove(METRIC_NAME);
            }
            if one_to_one {
                metric = if on {
                    metric.keep(&match_labels)
                } else {
                    metric.drop_names(&match_labels)
                };
            }
            for ln in &include {
                match rs.labels.get(ln) {
                    Some(v) => metric.set(ln.clone(), v.to_owned()),
                    None => metric.remove(ln),
                }
            }
            if return_bool {
                metric.remove(METRIC_NAME);
            }
            let entry = matched.entry(key);
            if one_to_one {
                if let std::collections::hash_map::Entry::Occupied(_) = entry {
                    return Err(self.err(ctx, "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"));
                }
                entry.or_default();
            } else {
                let set = entry.or_default();
                if !set.insert(metric.clone()) {
                    return Err(self.err(
                        ctx,
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
            out.push(Sample {
                labels: metric,
                value,
            });
        }
        self.unique(ctx, out)
    }
}

fn push_point(
    out: &mut Vec<RangeSeries>,
    index: &mut HashMap<Labels, usize>,
    labels: Labels,
    t: i64,
    v: f64,
) {
    let i = match index.get(&labels) {
        Some(&i) => i,
        None => {
            index.insert(labels.clone(), out.len());
            out.push(RangeSeries {
                labels,
                ..Default::default()
            });
            out.len() - 1
        }
    };
    out[i].timestamps.push(t);
    out[i].values.push(v);
}

/// An aggregation's grouping: (`without`?, the label names).
fn grouping_of(a: &AggregateExpr) -> (bool, Vec<String>) {
    match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    }
}

/// The group an element with labels `l` falls in.
fn group_key(l: &Labels, without: bool, grouping: &[String]) -> Labels {
    if without {
        let mut g = l.drop_names(grouping);
        g.remove(METRIC_NAME);
        g
    } else {
        l.keep(grouping)
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        _ => e,
    }
}

/// The matrix selector an expression is, through parentheses.
fn matrix_selector(e: &Expr) -> Option<&promql_parser::parser::MatrixSelector> {
    match e {
        Expr::Paren(p) => matrix_selector(&p.expr),
        Expr::MatrixSelector(ms) => Some(ms),
        _ => None,
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub(crate) fn matches_all(l: &Labels, m: &Matchers) -> bool {
    m.matchers.iter().all(|mt| {
        let v = l.get(&mt.name).unwrap_or("");
        match &mt.op {
            MatchOp::Equal => mt.value == v,
            MatchOp::NotEqual => mt.value != v,
            MatchOp::Re(r) => r.is_match(v),
            MatchOp::NotRe(r) => !r.is_match(v),
        }
    })
}

fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut out = Labels::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            out.set(m.name.clone(), m.value.clone());
            has.push(&m.name);
        } else {
            out.remove(&m.name);
        }
    }
    out
}

fn is_comparison(op: u16) -> bool {
    TokenType::new(op).is_comparison_operator()
}

fn drops_name(op: u16) -> bool {
    [
        token::T_ADD,
        token::T_SUB,
        token::T_MUL,
        token::T_DIV,
        token::T_POW,
        token::T_MOD,
    ]
    .contains(&op)
}

/// Prometheus's vectorElemBinop: (value, keep).
fn elem_binop(op: u16, l: f64, r: f64) -> (f64, bool) {
    match op {
        x if x == token::T_ADD => (l + r, true),
        x if x == token::T_SUB => (l - r, true),
        x if x == token::T_MUL => (l * r, true),
        x if x == token::T_DIV => (l / r, true),
        x if x == token::T_POW => (go_pow(l, r), true),
        x if x == token::T_MOD => (go_mod(l, r), true),
        x if x == token::T_EQLC => (l, l == r),
        x if x == token::T_NEQ => (l, l != r),
        x if x == token::T_GTR => (l, l > r),
        x if x == token::T_LSS => (l, l < r),
        x if x == token::T_GTE => (l, l >= r),
        x if x == token::T_LTE => (l, l <= r),
        x if x == token::T_ATAN2 => (l.atan2(r), true),
        _ => (f64::NAN, false),
    }
}

/// Go's math.Pow special cases that differ from Rust's powf.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    x.powf(y)
}

/// Go's math.Mod: the result has the sign of x; Rust's % on f64 is the same fmod.
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn go_float(f: f64) -> String {
    crate::openmetrics::format_value(f)
}

/// Order for sort/topk: NaN last in descending, as Prometheus's heaps.
fn sort_key(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// vectorByValueHeap.Less: NaN first, then ascending.
fn top_less(a: &Sample, b: &Sample) -> bool {
    if a.value.is_nan() {
        return true;
    }
    a.value < b.value
}

/// vectorByReverseValueHeap.Less: NaN first, then descending.
fn bottom_less(a: &Sample, b: &Sample) -> bool {
    if a.value.is_nan() {
        return true;
    }
    a.value > b.value
}

/// Go's container/heap Push.
fn go_heap_push(h: &mut Vec<Sample>, s: Sample, less: fn(&Sample, &Sample) -> bool) {
    h.push(s);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if i == j || !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's container/heap Pop (the popped element is dropped).
fn go_heap_pop(h: &mut Vec<Sample>, less: fn(&Sample, &Sample) -> bool) {
    let n = h.len() - 1;
    h.swap(0, n);
    // down(h, 0, n)
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    h.pop();
}

/// Prometheus's `quantile` (aggregation and quantile_over_time).
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Kahan summation step, as Prometheus's kahanSumInc.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The value of a range function on one series; `None` drops the series.
fn range_function(
    name: &str,
    ts: &[i64],
    vs: &[f64],
    range_ms: i64,
    end_ms: i64,
    q: Option<f64>,
) -> Option<f64> {
    let n = vs.len();
    if n == 0 {
        return None;
    }
    match name {
        "rate" => extrapolated_rate(ts, vs, range_ms, end_ms, true, true),
        "increase" => extrapolated_rate(ts, vs, range_ms, end_ms, true, false),
        "delta" => extrapolated_rate(ts, vs, range_ms, end_ms, false, false),
        "irate" | "idelta" => {
            if n < 2 {
                return None;
            }
            let (lt, lv) = (ts[n - 1], vs[n - 1]);
            let (pt, pv) = (ts[n - 2], vs[n - 2]);
            let is_rate = name == "irate";
            let mut v = if is_rate && lv < pv { lv } else { lv - pv };
            let dt = lt - pt;
            if dt == 0 {
                return None;
            }
            if is_rate {
                v /= dt as f64 / 1000.0;
            }
            Some(v)
        }
        // Prometheus's funcResets and funcChanges (float samples): a
        // decrease is a reset; a change is any difference, NaN to NaN not.
        "resets" => Some(vs.windows(2).filter(|w| w[1] < w[0]).count() as f64),
        "changes" => Some(
            vs.windows(2)
                .filter(|w| w[1] != w[0] && !(w[1].is_nan() && w[0].is_nan()))
                .count() as f64,
        ),
        "deriv" => {
            if n < 2 {
                return None;
            }
            Some(linear_regression(ts, vs, ts[0]).0)
        }
        "avg_over_time" => {
            let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
            for &v in vs {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(v / count - mean / count, mean, c);
            }
            Some(if mean.is_infinite() { mean } else { mean + c })
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0f64, 0.0f64);
            for &v in vs {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "min_over_time" => {
            let mut m = vs[0];
            for &v in vs {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        "max_over_time" => {
            let mut m = vs[0];
            for &v in vs {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        "count_over_time" => Some(n as f64),
        "last_over_time" => Some(vs[n - 1]),
        "quantile_over_time" => {
            let mut v = vs.to_vec();
            Some(quantile(q.unwrap_or(f64::NAN), &mut v))
        }
        "stddev_over_time" | "stdvar_over_time" => {
            let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
            for &v in vs {
                count += 1.0;
                let delta = v - (mean + cmean);
                (mean, cmean) = kahan_inc(delta / count, mean, cmean);
                (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
            }
            let var = (aux + caux) / count;
            Some(if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            })
        }
        _ => None,
    }
}

/// Prometheus 2.x's extrapolatedRate (rate, increase, delta).
fn extrapolated_rate(
    ts: &[i64],
    vs: &[f64],
    range_ms: i64,
    end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = vs.len();
    if n < 2 {
        return None;
    }
    let range_start = end_ms - range_ms;
    let range_end = end_ms;
    let mut result = vs[n - 1] - vs[0];
    if is_counter {
        let mut prev = vs[0];
        for &v in &vs[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut duration_to_start = (ts[0] - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - ts[n - 1]) as f64 / 1000.0;
    let sampled = (ts[n - 1] - ts[0]) as f64 / 1000.0;
    let avg = sampled / (n - 1) as f64;
    if is_counter && result > 0.0 && vs[0] >= 0.0 {
        let to_zero = sampled * (vs[0] / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold {
        duration_to_start
    } else {
        avg / 2.0
    };
    interval += if duration_to_end < threshold {
        duration_to_end
    } else {
        avg / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Prometheus's linearRegression (Kahan sums), x in seconds from `intercept_ms`.
fn linear_regression(ts: &[i64], vs: &[f64], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = vs[0];
    let mut const_y = true;
    for (i, (&t, &v)) in ts.iter().zip(vs).enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_ms) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Classic-bucket histogram_quantile over a vector of `_bucket` samples.
fn histogram_quantile(q: f64, vec: Vec<Sample>) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    // the last sample's labels and group: a group's buckets mostly come
    // one after the other, and then need no key built nor looked up
    let mut last: Option<(Labels, usize)> = None;
    for s in vec {
        let Some(ub) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let gi = match &last {
            Some((labels, gi)) if labels.eq_except(&s.labels, "le") => *gi,
            _ => {
                let mut key = s.labels.clone();
                key.remove("le");
                match index.get(&key) {
                    Some(&gi) => gi,
                    None => {
                        index.insert(key.clone(), groups.len());
                        key.remove(METRIC_NAME);
                        groups.push((key, Vec::new()));
                        groups.len() - 1
                    }
                }
            }
        };
        groups[gi].1.push((ub, s.value));
        last = Some((s.labels, gi));
    }
    groups
        .into_iter()
        .filter(|(_, b)| !b.is_empty())
        .map(|(labels, mut b)| Sample {
            labels,
            value: bucket_quantile(q, &mut b),
        })
        .collect()
}

/// strconv.ParseFloat for `le` values.
fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Prometheus 2.42's bucketQuantile.
pub fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(&(ub, _)) if ub == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // coalesceBuckets
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // ensureMonotonic
    let mut max = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    bucket_quantile_sorted(q, &merged)
}

/// [`bucket_quantile`] on buckets already as Prometheus prepares them:
/// bounds strictly increasing, the last `+Inf`, counts cumulative and
/// monotonic (allocates nothing).
pub fn bucket_quantile_sorted(q: f64, merged: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if merged.len() < 2 || merged[merged.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = merged.len() - 1;
    let b = merged[..last].partition_point(|x| x.1 < rank);
    if b == last {
        return merged[last - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_rules() {
        let mut b = vec![(0.1, 10.0), (0.5, 20.0), (f64::INFINITY, 20.0)];
        assert!((bucket_quantile(0.5, &mut b) - 0.1).abs() < 1e-12);
        let mut b = vec![(0.1, 0.0), (f64::INFINITY, 0.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan());
        let mut b = vec![(0.1, 1.0), (0.2, 2.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan(), "no +Inf bucket");
        let mut b = vec![(0.1, 1.0), (f64::INFINITY, 2.0)];
        assert_eq!(bucket_quantile(0.99, &mut b), 0.1, "rank in +Inf bucket");
        assert_eq!(bucket_quantile(2.0, &mut b), f64::INFINITY);
    }

    /// A store with counter resets, a gap, a late start, stale markers and
    /// a same-label pair under two names.
    fn windows_store() -> Store {
        use crate::store::labels_of;
        let mut st = Store::new();
        for (k, pod) in ["a", "b", "c", "d"].iter().enumerate() {
            for code in ["200", "500"] {
                let id = st.series_id(labels_of(
                    "req_total",
                    &[("pod", pod), ("code", code), ("le", &format!("{}", k % 2))],
                ));
                let mut v = 0.0;
                for i in 0..200i64 {
                    let t = 1_000_000 + i * 15_000 + k as i64 * 700;
                    if (k == 1 && (60..80).contains(&i)) || (k == 2 && i < 50) {
                        continue;
                    }
                    if k == 3 && i % 37 == 36 {
                        st.push_stale(SeriesId(id.0), t).expect("in order");
                        continue;
                    }
                    v = if i % 53 == 52 {
                        1.0
                    } else {
                        v + (i % 7) as f64 + k as f64
                    };
                    st.push(id, t, v).expect("in order");
                }
            }
        }
        let id = st.series_id(labels_of(
            "other_total",
            &[("pod", "a"), ("code", "200"), ("le", "0")],
        ));
        st.extend(id, &[1_000_000, 1_015_000], &[1.0, 2.0])
            .expect("in order");
        st
    }

    use crate::store::SeriesId;

    /// Sliding windows and fused aggregations give exactly what a fresh
    /// evaluation (binary search, the general aggregation path) gives.
    #[test]
    fn range_queries_equal_instant_queries_at_each_step() {
        let st = windows_store();
        let engine = Engine::new(&st);
        let queries = [
            (
                "sum by (code) (rate(req_total[1m]))",
                "sum by (code) (rate(req_total[1m]) * 1)",
            ),
            (
                "avg without (pod) (increase(req_total[2m]))",
                "avg without (pod) (increase(req_total[2m]) * 1)",
            ),
            (
                "max(irate(req_total[45s]))",
                "max(irate(req_total[45s]) * 1)",
            ),
            (
                "min by (pod) (delta(req_total[5m] offset 1m))",
                "min by (pod) (delta(req_total[5m] offset 1m) * 1)",
            ),
            (
                "count by (le) (deriv(req_total[3m]))",
                "count by (le) (deriv(req_total[3m]) * 1)",
            ),
            (
                "stddev(avg_over_time(req_total[2m]))",
                "stddev(avg_over_time(req_total[2m]) * 1)",
            ),
            (
                "stdvar by (code) (sum_over_time(req_total[90s]))",
                "stdvar by (code) (sum_over_time(req_total[90s]) * 1)",
            ),
            (
                "group by (pod) (count_over_time(req_total[1m]))",
                "group by (pod) (count_over_time(req_total[1m]) * 1)",
            ),
            (
                "sum by (pod) (last_over_time(req_total[1m]))",
                "sum by (pod) (last_over_time(req_total[1m]) * 1)",
            ),
            (
                "histogram_quantile(0.9, sum by (le, code) (rate(req_total[1m])))",
                "histogram_quantile(0.9, sum by (le, code) (rate(req_total[1m]) * 1))",
            ),
            ("rate(req_total[1m])", "rate(req_total[1m]) * 1"),
            (
                "max_over_time(req_total[2m]) - min_over_time(req_total[2m])",
                "max_over_time(req_total[2m]) * 1 - min_over_time(req_total[2m]) * 1",
            ),
            (
                "sum(rate({pod=\"b\"}[1m]))",
                "sum(rate({pod=\"b\"}[1m]) * 1)",
            ),
            (
                "max_over_time(rate(req_total[1m])[3m:30s])",
                "max_over_time((rate(req_total[1m]) * 1)[3m:30s])",
            ),
        ];
        let mut nonempty = 0;
        for (fast, general) in queries {
            let qf = Query::parse(fast).expect("parses");
            let qg = Query::parse(general).expect("parses");
            let (start, end, step) = (900_000, 4_200_000, 10_000);
            let rf = engine.range(&qf, start, end, step);
            let rg = engine.range(&qg, start, end, step);
            assert_eq!(format!("{rf:?}"), format!("{rg:?}"), "{fast}");
            let Ok(rf) = rf else { continue };
            let mut t = start;
            while t <= end {
                let inst = engine.instant(&qf, t).expect("evaluates");
                let Value::Vector(mut v) = inst else {
                    panic!("vector")
                };
                v.sort_by(|a, b| a.labels.cmp(&b.labels));
                let from_range: Vec<(Labels, f64)> = rf
                    .iter()
                    .filter_map(|s| {
                        let k = s.timestamps.iter().position(|&x| x == t)?;
                        Some((s.labels.clone(), s.values[k]))
                    })
                    .collect();
                let from_instant: Vec<(Labels, f64)> =
                    v.into_iter().map(|s| (s.labels, s.value)).collect();
                nonempty += usize::from(!from_instant.is_empty());
                assert_eq!(
                    format!("{from_range:?}"),
                    format!("{from_instant:?}"),
                    "{fast} at {t}"
                );
                t += step;
            }
        }
        assert!(nonempty > 1000, "{nonempty} non-empty steps");
    }

    /// A cache kept across evaluations of a query on a store whose
    /// samples grow, are cleared and grow again (the simulator's runs)
    /// answers what a fresh evaluation answers, and one handed another
    /// query or store starts over.
    #[test]
    fn cached_evaluations_equal_fresh_ones_as_samples_grow() {
        let full = windows_store();
        let mut st = Store::new();
        for s in full.series() {
            st.series_id(s.labels.clone());
        }
        let texts = [
            "sum(irate(req_total{code!~\"5.*\"}[45s])) / sum(irate(req_total[45s]))",
            "histogram_quantile(0.9, sum by (le) (rate(req_total[1m])))",
            "sum by (code) (rate(req_total{pod=~\"a|c|d\"}[2m]))",
            "req_total{pod=\"d\"}",
        ];
        let queries: Vec<Query> = texts
            .iter()
            .map(|t| Query::parse(t).expect("parses"))
            .collect();
        let mut caches: Vec<QueryCache> = queries.iter().map(|_| QueryCache::new()).collect();
        let mut shared = QueryCache::new();
        let mut nonempty = 0;
        for round in 0..2 {
            st.clear_samples();
            let mut next = vec![0usize; full.len()];
            for t in (1_000_000..4_100_000).step_by(60_000) {
                for (i, s) in full.series().iter().enumerate() {
                    while next[i] < s.timestamps.len() && s.timestamps[next[i]] <= t {
                        let (ts, v) = (s.timestamps[next[i]], s.values[next[i]]);
                        st.push(SeriesId(i), ts, v).expect("in order");
                        next[i] += 1;
                    }
                }
                let engine = Engine::new(&st);
                for (q, cache) in queries.iter().zip(&mut caches) {
                    let fresh = format!("{:?}", engine.instant(q, t));
                    let cached = format!("{:?}", engine.instant_cached(q, t, cache));
                    assert_eq!(cached, fresh, "{} at {t}, round {round}", q.text());
                    // one cache for every query: dropped at each change
                    let other = format!("{:?}", engine.instant_cached(q, t, &mut shared));
                    assert_eq!(other, fresh, "{} at {t} (shared cache)", q.text());
                    let range = engine.range(q, t - 300_000, t, 30_000);
                    let range_cached = engine.range_cached(q, t - 300_000, t, 30_000, cache);
                    assert_eq!(format!("{range_cached:?}"), format!("{range:?}"));
                    nonempty += usize::from(!fresh.contains("[]"));
                }
            }
        }
        assert!(nonempty > 100, "{nonempty} non-empty answers");
        // another store with the same number of series: the cache starts over
        let engine = Engine::new(&full);
        let t = 3_000_000;
        assert_eq!(
            format!(
                "{:?}",
                engine.instant_cached(&queries[2], t, &mut caches[2])
            ),
            format!("{:?}", engine.instant(&queries[2], t))
        );
    }

    /// Two series equal but for their name: the fused path steps aside and
    /// Prometheus's duplicate-labelset error comes out.
    #[test]
    fn duplicate_label_sets_are_still_refused() {
        let st = windows_store();
        let engine = Engine::new(&st);
        let q = Query::parse("sum(rate({pod=\"a\",code=\"200\"}[1m]))").expect("parses");
        let e = engine
            .range(&q, 1_000_000, 1_100_000, 10_000)
            .expect_err("duplicates");
        assert!(e.to_string().contains("same labelset"), "{e}");
    }

    #[test]
    fn unsupported_functions_are_named() {
        let e = Query::parse("predict_linear(x[5m], 60)").expect_err("unsupported");
        let msg = e.to_string();
        assert!(
            msg.contains("predict_linear") && msg.contains("x[5m]"),
            "{msg}"
        );
    }

    #[test]
    fn parse_errors_have_a_position() {
        let e = Query::parse("sum(rate(x[5m]) by (le)").expect_err("bad");
        assert!(e.to_string().contains("position"), "{e}");
        let e = Query::parse("foo{a=\"b\"} +* 3").expect_err("bad");
        assert!(e.to_string().contains("position"), "{e}");
    }
}
