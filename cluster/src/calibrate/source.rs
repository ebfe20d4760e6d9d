//! Reading a service's metrics from a Prometheus for [`super::fit`].
//!
//! Per pod (the `pod` label, else `instance`), at the query step: the raw
//! counters (requests, 5xx, latency sum and count, CPU seconds) and the
//! memory gauge, differenced here into per-step increments (a drop is a
//! counter reset), and the sample timestamps, so a step whose newest sample
//! is not one scrape after the previous one (a missed or repeated scrape, a
//! stale series) counts as missing instead of as a zero or a double. The
//! latency histogram is read per time block as `increase()` over the
//! block, summed over pods by `le`.
//!
//! Range queries are chunked to [`CHUNK_POINTS`] points per series, below
//! Prometheus's limit of 11,000, so a week at 10 s (60,480 steps) is seven
//! chunks per query. The sample times are the request counter's raw
//! samples (an instant query of the range selector `metric[d]` at each
//! chunk's end, [`CHUNK_POINTS`] steps per chunk), one linear pass in
//! Prometheus; the newest sample at or before each grid point is found
//! here ([`sample_times`]). Prometheus 2.42's `timestamp()`, which would
//! give the same per step, costs time quadratic in a range query's points.
//!
//! Every metric and label name queried comes from a `[telemetry]`
//! ([`scenarios::Telemetry`], `--telemetry`), the defaults being
//! goldengoose's and Istio's own: the family renames of
//! `[telemetry.metrics]` (the request counter, the duration histogram's
//! `_bucket`, `_sum` and `_count` each, the CPU and memory series) and the
//! label renames of `[telemetry.labels]` (`code`, `response_code`, `le`,
//! `pod`, `reporter`), exactly as the simulator writes them
//! (sim/src/prometheus.rs: every default name through
//! `Telemetry::metric` / `Telemetry::label`). See [`Names`].
//!
//! Not for: fitting (pure, in [`super::fit`]).

use std::collections::BTreeMap;
use std::time::Duration;

use scenarios::Telemetry;

use crate::prom::{self, PromApi, Series};

use super::fit::{HistogramBlocks, Observations, PodSeries, Sources};

/// Points per series in one range query (Prometheus refuses more than 11,000).
pub const CHUNK_POINTS: usize = 10_000;

/// How far before a chunk's first grid point its raw samples are read, in
/// steps. Enough: a step `k` is valid only when its newest sample lies in
/// (t(k-1), t(k)] and the one before it less than 1.5 steps earlier, so a
/// sample older than 2.5 steps before a grid point cannot make a step
/// valid, and a grid point without a sample in the chunk's reach (NaN) makes
/// exactly the steps invalid that Prometheus's older timestamp would.
const SAMPLE_MARGIN_STEPS: usize = 3;

/// Why calibration could not read its data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A range query failed.
    #[error("Prometheus at {url} failed: {source}\n  query: {query}")]
    Prometheus {
        /// The Prometheus asked.
        url: String,
        /// The PromQL sent.
        query: String,
        /// Prometheus's error.
        source: Box<prom::Error>,
    },
    /// A family the fit needs has no series in the window.
    #[error(
        "Prometheus at {url} has no matching series for {what} between {from} and {to} (unix seconds); tried:\n  {queries}\n  check --selector, the time window, and --telemetry if the service renames its metrics or labels"
    )]
    NoSeries {
        /// The Prometheus asked.
        url: String,
        /// What was looked for, in words.
        what: String,
        /// Window start, unix seconds.
        from: f64,
        /// Window end, unix seconds.
        to: f64,
        /// The queries tried, one per line.
        queries: String,
    },
    /// The `--selector` is not a label selector we can use.
    #[error("--selector '{selector}': {why} (expected e.g. '{{app=\"shop\"}}')")]
    Selector {
        /// The selector as given.
        selector: String,
        /// What is wrong with it.
        why: String,
    },
    /// The time window or step is not usable.
    #[error("the time window: {0}")]
    Window(String),
}

/// The time window and step of the range queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Unix seconds.
    pub from: f64,
    /// Unix seconds.
    pub to: f64,
    /// The query step (the fit's step).
    pub step: Duration,
}

impl Window {
    /// Steps (increments) in the window.
    pub fn steps(&self) -> usize {
        ((self.to - self.from) / self.step.as_secs_f64())
            .floor()
            .max(0.0) as usize
    }
}

/// Which metric names the service exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// goldengoose (and most Prometheus client libraries): `http_requests_total{code}`,
    /// `http_request_duration_seconds`, process metrics.
    Goldengoose,
    /// Istio's sidecar: `istio_requests_total{response_code}`,
    /// `istio_request_duration_milliseconds`, server side
    /// (`reporter="destination"` unless the selector says otherwise).
    Istio,
}

impl Family {
    /// Default names: request counter, its status-code label, the
    /// duration histogram's base name.
    fn defaults(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Family::Goldengoose => (
                "http_requests_total",
                "code",
                "http_request_duration_seconds",
            ),
            Family::Istio => (
                "istio_requests_total",
                "response_code",
                "istio_request_duration_milliseconds",
            ),
        }
    }
    /// Multiplies `le` into seconds.
    fn le_seconds(self) -> f64 {
        match self {
            Family::Goldengoose => 1.0,
            Family::Istio => 0.001,
        }
    }
    /// The family's name, as the written file and report give it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Goldengoose => "goldengoose",
            Family::Istio => "istio",
        }
    }
}

/// The names one family's series and labels have in a service, as a
/// `[telemetry]` renames them (the defaults: [`Telemetry::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The request counter (`http_requests_total`, `istio_requests_total`).
    pub requests: String,
    /// Its status-code label (`code`, `response_code`).
    pub code: String,
    /// The duration histogram's buckets (`..._bucket`).
    pub bucket: String,
    /// Its sum (`..._sum`).
    pub sum: String,
    /// Its count (`..._count`).
    pub count: String,
    /// The buckets' bound label (`le`).
    pub le: String,
    /// The CPU-seconds counter (`process_cpu_seconds_total`).
    pub cpu: String,
    /// The resident-memory gauge (`process_resident_memory_bytes`).
    pub memory: String,
    /// The pod label (`pod`); `instance` is the fallback, not renamed.
    pub pod: String,
    /// Istio's `reporter` label (set to `destination` unless the selector
    /// names it); `None` for goldengoose's family.
    pub reporter: Option<String>,
}

impl Names {
    /// `family`'s names as `t` renames them.
    pub fn of(family: Family, t: &Telemetry) -> Names {
        let (requests, code, duration) = family.defaults();
        let metric = |suffix: &str| {
            let default = format!("{duration}{suffix}");
            t.metric(&default).to_owned()
        };
        Names {
            requests: t.metric(requests).to_owned(),
            code: t.label(code).to_owned(),
            bucket: metric("_bucket"),
            sum: metric("_sum"),
            count: metric("_count"),
            le: t.label("le").to_owned(),
            cpu: t.metric("process_cpu_seconds_total").to_owned(),
            memory: t.metric("process_resident_memory_bytes").to_owned(),
            pod: t.label("pod").to_owned(),
            reporter: (family == Family::Istio).then(|| t.label("reporter").to_owned()),
        }
    }

    /// The user's matchers, with Istio's `reporter="destination"` unless
    /// they name the reporter label.
    pub fn matchers(&self, m: &str) -> String {
        match &self.reporter {
            Some(r) if !m.contains(r.as_str()) => {
                if m.is_empty() {
                    format!("{r}=\"destination\"")
                } else {
                    format!("{m},{r}=\"destination\"")
                }
            }
            _ => m.to_string(),
        }
    }

    /// The per-pod grouping: the pod label and `instance`.
    fn by(&self) -> String {
        if self.pod == "instance" {
            self.pod.clone()
        } else {
            format!("{}, instance", self.pod)
        }
    }

    /// The detection probe: whether the request counter has series.
    pub fn probe(&self, m: &str) -> String {
        format!("count({})", with(&self.requests, &self.matchers(m), ""))
    }

    /// The raw request-counter samples of `points` steps (plus a margin)
    /// before an instant query's time.
    pub fn sample_range(&self, m: &str, step_s: f64, points: usize) -> String {
        format!(
            "{}[{}ms]",
            with(&self.requests, &self.matchers(m), ""),
            (((points + SAMPLE_MARGIN_STEPS) as f64) * step_s * 1000.0).round() as u64
        )
    }

    /// The per-pod range queries, `(what, PromQL)`, in the order [`read`]
    /// sends them after the sample times.
    pub fn pod_queries(&self, m: &str) -> [(&'static str, String); 6] {
        let m = self.matchers(m);
        let by = self.by();
        let q = |metric: &str, extra: &str| format!("sum by ({by}) ({})", with(metric, &m, extra));
        [
            ("requests", q(&self.requests, "")),
            (
                "5xx responses",
                q(&self.requests, &format!("{}=~\"5..\"", self.code)),
            ),
            ("latency sum", q(&self.sum, "")),
            ("latency count", q(&self.count, "")),
            ("CPU seconds", q(&self.cpu, "")),
            ("resident memory", q(&self.memory, "")),
        ]
    }

    /// The latency histogram's increase per block of `block`, by bound.
    pub fn histogram_query(&self, m: &str, block: Duration) -> String {
        format!(
            "sum by ({}) (increase({}[{}ms]))",
            self.le,
            with(&self.bucket, &self.matchers(m), ""),
            block.as_millis()
        )
    }

    /// The series each fitted value came from, for the file's comments.
    fn sources(&self) -> Sources {
        Sources {
            requests: self.requests.clone(),
            errors: format!("{}{{{}=~\"5..\"}}", self.requests, self.code),
            latency: format!("{} / {}", self.sum, self.count),
            histogram: self.bucket.clone(),
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
        }
    }
}

/// One query sent, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// What the query fetches, in words (`requests`, `latency histogram`, ...).
    pub what: String,
    /// The PromQL sent.
    pub promql: String,
}

/// The matchers inside the user's selector, validated lightly: `{a="b",
/// c=~"d"}` or `a="b"` -> `a="b",c=~"d"` (empty for none).
pub fn matchers(selector: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Selector {
        selector: selector.to_string(),
        why: why.to_string(),
    };
    let s = selector.trim();
    let inner = match (s.starts_with('{'), s.ends_with('}')) {
        (true, true) => &s[1..s.len() - 1],
        (false, false) => s,
        _ => return Err(bad("unbalanced braces")),
    };
    let inner = inner.trim().trim_end_matches(',').trim();
    if inner.is_empty() {
        return Ok(String::new());
    }
    if inner.matches('"').count() % 2 != 0 {
        return Err(bad("unbalanced quotes"));
    }
    if !["=", "!=", "=~", "!~"].iter().any(|op| inner.contains(op)) {
        return Err(bad("no label matcher (label=\"value\")"));
    }
    Ok(inner.to_string())
}

fn with(metric: &str, matchers: &str, extra: &str) -> String {
    let all: Vec<&str> = [matchers, extra]
        .into_iter()
        .filter(|m| !m.is_empty())
        .collect();
    format!("{metric}{{{}}}", all.join(","))
}

/// Reads everything [`super::fit::calibrate`] needs, under goldengoose's
/// and Istio's default names. `progress` gets one line per request.
pub async fn read(
    api: &PromApi,
    url: &str,
    selector: &str,
    window: Window,
    progress: &mut dyn FnMut(&str),
) -> Result<(Observations, Family, Vec<Query>), Error> {
    read_named(api, url, selector, &Telemetry::default(), window, progress).await
}

/// [`read`] under the names `telemetry` gives the service's series and
/// labels ([`Names::of`]).
pub async fn read_named(
    api: &PromApi,
    url: &str,
    selector: &str,
    telemetry: &Telemetry,
    window: Window,
    progress: &mut dyn FnMut(&str),
) -> Result<(Observations, Family, Vec<Query>), Error> {
    let step = window.step.as_secs_f64();
    if step.is_nan() || step <= 0.0 {
        return Err(Error::Window("--step must be above 0".into()));
    }
    if window.to.is_nan() || window.from.is_nan() || window.to <= window.from {
        return Err(Error::Window(format!(
            "--from {} is not before --to {}",
            window.from, window.to
        )));
    }
    let steps = window.steps();
    if steps < 2 {
        return Err(Error::Window(format!(
            "{} s holds fewer than 2 steps of {step} s",
            window.to - window.from
        )));
    }
    let m = matchers(selector)?;
    let run = async |q: &str, start: f64, end: f64, st: Duration| -> Result<Vec<Series>, Error> {
        api.query_range(q, start, end, st)
            .await
            .map_err(|source| Error::Prometheus {
                url: url.to_string(),
                query: q.to_string(),
                source: Box::new(source),
            })
    };

    // Which family: the first whose request counter has series.
    let coarse = Duration::from_secs_f64(((window.to - window.from) / 200.0).max(step));
    let mut tried = Vec::new();
    let mut family = None;
    for f in [Family::Goldengoose, Family::Istio] {
        let q = Names::of(f, telemetry).probe(&m);
        progress(&format!("looking for {} ({q})", f.name()));
        let found = run(&q, window.from, window.to, coarse).await?;
        tried.push(q);
        if found.iter().any(|s| !s.points.is_empty()) {
            family = Some(f);
            break;
        }
    }
    let Some(family) = family else {
        return Err(Error::NoSeries {
            url: url.to_string(),
            what: if *telemetry == Telemetry::default() {
                "the request counter of goldengoose or Istio".into()
            } else {
                "the request counter of goldengoose or Istio, renamed by the telemetry".into()
            },
            from: window.from,
            to: window.to,
            queries: tried.join("\n  "),
        });
    };
    let names = Names::of(family, telemetry);
    // the sample times: raw samples per chunk, `req[range]` at its end
    let sample_range = |points: usize| names.sample_range(&m, step, points);
    let queries: Vec<(&str, String)> = std::iter::once((
        "sample times (raw samples, at each chunk's end)",
        sample_range(CHUNK_POINTS.min(steps)),
    ))
    .chain(names.pod_queries(&m))
    .collect();
    let points = CHUNK_POINTS;
    let total_requests = queries.len() * steps.div_ceil(points) + 1;
    let mut sent = 0;
    // per query: pod -> values at grid points 0..=steps
    let mut grids: Vec<BTreeMap<String, Vec<f64>>> = Vec::new();
    for (i, (what, q)) in queries.iter().enumerate() {
        let mut grid: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for c in 0..steps.div_ceil(points) {
            let a = c * points;
            let b = ((c + 1) * points).min(steps);
            sent += 1;
            let start = window.from + a as f64 * step;
            let end = window.from + b as f64 * step;
            if i == 0 {
                let q = sample_range(b - a);
                progress(&format!(
                    "[{sent}/{total_requests}] {what}, steps {a}-{b} of {steps}: {q} at {end:.3}"
                ));
                let raw = api
                    .query_samples(&q, end)
                    .await
                    .map_err(|source| Error::Prometheus {
                        url: url.to_string(),
                        query: format!("{q} (instant query at {end:.3})"),
                        source: Box::new(source),
                    })?;
                sample_times(&raw, &names.pod, window.from, step, a..=b, steps, &mut grid);
                continue;
            }
            progress(&format!(
                "[{sent}/{total_requests}] {what}, steps {a}-{b} of {steps}: {q}"
            ));
            for s in run(q, start, end, window.step).await? {
                let pod = pod_name(&s, &names.pod);
                let v = grid.entry(pod).or_insert_with(|| vec![f64::NAN; steps + 1]);
                for (t, x) in s.points {
                    let k = ((t - window.from) / step).round();
                    if k >= 0.0 && (k as usize) <= steps {
                        v[k as usize] = x;
                    }
                }
            }
        }
        grids.push(grid);
    }
    if grids[1].is_empty() {
        return Err(Error::NoSeries {
            url: url.to_string(),
            what: "per-pod requests".into(),
            from: window.from,
            to: window.to,
            queries: queries[1].1.clone(),
        });
    }

    let times = &grids[0];
    let pods: Vec<PodSeries> = grids[1]
        .keys()
        .map(|pod| {
            let ts = times.get(pod);
            let valid: Vec<bool> = (1..=steps)
                .map(|k| {
                    ts.is_some_and(|t| {
                        let dt = t[k] - t[k - 1];
                        dt.is_finite() && dt > 0.5 * step && dt < 1.5 * step
                    })
                })
                .collect();
            let counter = |g: &BTreeMap<String, Vec<f64>>| -> Vec<f64> {
                g.get(pod).map_or_else(Vec::new, |v| increments(v, &valid))
            };
            let gauge = |g: &BTreeMap<String, Vec<f64>>| -> Vec<f64> {
                g.get(pod).map_or_else(Vec::new, |v| v[1..].to_vec())
            };
            // a pod with requests but no 5xx series has had no errors
            let requests = counter(&grids[1]);
            let errors = if grids[2].is_empty() && !grids[1].is_empty() {
                requests
                    .iter()
                    .map(|r| if r.is_finite() { 0.0 } else { *r })
                    .collect()
            } else {
                let e = grids[2].get(pod).map_or_else(Vec::new, |v| {
                    increments(&absent_is_zero(v, &grids[1][pod]), &valid)
                });
                if e.is_empty() {
                    requests
                        .iter()
                        .map(|r| if r.is_finite() { 0.0 } else { *r })
                        .collect()
                } else {
                    e
                }
            };
            PodSeries {
                name: pod.clone(),
                requests,
                errors,
                latency_sum: counter(&grids[3]),
                latency_count: counter(&grids[4]),
                cpu_seconds: counter(&grids[5]),
                memory_bytes: gauge(&grids[6]),
            }
        })
        .collect();

    // The histogram, per block of the jackknife.
    let blocks = (steps / 50).clamp(1, super::fit::BLOCKS);
    let block_steps = steps / blocks;
    let block = Duration::from_secs_f64(block_steps as f64 * step);
    let hq = names.histogram_query(&m, block);
    sent += 1;
    progress(&format!(
        "[{sent}/{total_requests}] latency histogram per block: {hq}"
    ));
    let hs = run(
        &hq,
        window.from + block.as_secs_f64(),
        window.from + (blocks * block_steps) as f64 * step,
        block,
    )
    .await?;
    let histogram = histogram_blocks(&hs, &names.le, family.le_seconds(), blocks);
    let sources = names.sources();
    let query_list = queries
        .iter()
        .map(|(w, q)| Query {
            what: w.to_string(),
            promql: q.clone(),
        })
        .chain(std::iter::once(Query {
            what: "latency histogram".into(),
            promql: hq,
        }))
        .collect();
    Ok((
        Observations {
            start_unix: window.from,
            step_s: step,
            pods,
            histogram,
            sources,
        },
        family,
        query_list,
    ))
}

/// Per pod, the time of its newest raw sample (over all its series) at or
/// before each grid point `k` in `ks` (`from + k step`), what `max by (pod,
/// instance) (timestamp(m))` gives there, into `grid` (`steps + 1` points
/// per pod). `series` are the raw samples a range selector returned for
/// the chunk; a grid point with none of its pod's samples at or before it
/// is left as it was (NaN, or what the chunk before wrote). Times are
/// compared in whole milliseconds, as Prometheus stores them. Linear in
/// the samples after one sort per pod. `pod` is the pod label's name
/// ([`Names::pod`]).
pub fn sample_times(
    series: &[Series],
    pod: &str,
    from: f64,
    step: f64,
    ks: std::ops::RangeInclusive<usize>,
    steps: usize,
    grid: &mut BTreeMap<String, Vec<f64>>,
) {
    let ms = |t: f64| (t * 1000.0).round() as i64;
    let mut by_pod: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in series {
        by_pod
            .entry(pod_name(s, pod))
            .or_default()
            .extend(s.points.iter().map(|p| ms(p.0)));
    }
    for (pod, mut times) in by_pod {
        times.sort_unstable();
        times.dedup();
        let v = grid.entry(pod).or_insert_with(|| vec![f64::NAN; steps + 1]);
        let mut j = 0;
        for k in ks.clone() {
            if k > steps {
                break;
            }
            let at = ms(from + k as f64 * step);
            while j < times.len() && times[j] <= at {
                j += 1;
            }
            if j > 0 {
                v[k] = times[j - 1] as f64 / 1000.0;
            }
        }
    }
}

/// The series' pod: its `pod` label (as renamed), else `instance`.
fn pod_name(s: &Series, pod: &str) -> String {
    s.labels
        .get(pod)
        .or_else(|| s.labels.get("instance"))
        .cloned()
        .unwrap_or_else(|| "(no pod or instance label)".into())
}

/// A counter created at its first increment (a pod's 5xx series appears
/// with its first error): the points before its first sample, where the
/// pod's `present` series (its requests) was scraped, are 0, so the errors
/// counted in that first sample are an increment and not lost. Later gaps
/// stay missed scrapes.
pub fn absent_is_zero(v: &[f64], present: &[f64]) -> Vec<f64> {
    let first = v.iter().position(|x| x.is_finite()).unwrap_or(v.len());
    v.iter()
        .enumerate()
        .map(|(k, &x)| {
            if k < first && present.get(k).is_some_and(|p| p.is_finite()) {
                0.0
            } else {
                x
            }
        })
        .collect()
}

/// Per-step increments of a counter sampled at grid points `0..=steps`:
/// a drop is a reset (the increment is the new value); a step whose
/// sample is not one scrape after the last is missing.
pub fn increments(v: &[f64], valid: &[bool]) -> Vec<f64> {
    (1..v.len())
        .map(|k| {
            let (a, b) = (v[k - 1], v[k]);
            if !valid.get(k - 1).copied().unwrap_or(false) || !a.is_finite() || !b.is_finite() {
                f64::NAN
            } else if b >= a {
                b - a
            } else {
                b
            }
        })
        .collect()
}

/// Per block (one point per series), cumulative `le` counts into
/// per-bucket counts; `None` without usable buckets.
fn histogram_blocks(
    series: &[Series],
    le: &str,
    le_seconds: f64,
    blocks: usize,
) -> Option<HistogramBlocks> {
    let mut by_le: Vec<(f64, &Series)> = series
        .iter()
        .filter_map(|s| {
            let le = s.labels.get(le)?;
            let v = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().ok()?
            };
            Some((v, s))
        })
        .collect();
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    if by_le.len() < 2 || by_le.last().is_some_and(|(le, _)| le.is_finite()) {
        return None;
    }
    let times: Vec<f64> = {
        let mut t: Vec<f64> = by_le
            .iter()
            .flat_map(|(_, s)| s.points.iter().map(|p| p.0))
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    };
    let bounds: Vec<f64> = by_le[..by_le.len() - 1]
        .iter()
        .map(|(le, _)| le * le_seconds)
        .collect();
    let out: Vec<Vec<f64>> = times
        .iter()
        .take(blocks)
        .map(|t| {
            let cum: Vec<f64> = by_le
                .iter()
                .map(|(_, s)| {
                    s.points
                        .iter()
                        .find(|p| p.0 == *t)
                        .map_or(0.0, |p| if p.1.is_finite() { p.1 } else { 0.0 })
                })
                .collect();
            let mut prev = 0.0;
            cum.iter()
                .map(|c| {
                    let d = (c - prev).max(0.0);
                    prev = prev.max(*c);
                    d
                })
                .collect()
        })
        .collect();
    (!out.is_empty()).then_some(HistogramBlocks {
        bounds,
        blocks: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matchers() {
        assert_eq!(
            matchers(r#"{app="shop"}"#).unwrap_or_default(),
            r#"app="shop""#
        );
        assert_eq!(matchers(" {} ").unwrap_or_default(), "");
        assert_eq!(
            matchers(r#"app="shop",track!="canary""#).unwrap_or_default(),
            r#"app="shop",track!="canary""#
        );
        for bad in [r#"{app="shop""#, r#"{app="shop}"#, "{app}"] {
            let e = matchers(bad).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert_eq!(
            with("x", r#"a="b""#, r#"code=~"5..""#),
            r#"x{a="b",code=~"5.."}"#
        );
        assert_eq!(with("x", "", ""), "x{}");
        assert_eq!(
            Names::of(Family::Istio, &Telemetry::default()).matchers(r#"app="a""#),
            r#"app="a",reporter="destination""#
        );
    }

    #[test]
    fn counters_difference_with_resets_and_bad_steps() {
        let v = [10.0, 15.0, 15.0, 3.0, f64::NAN, 9.0, 12.0];
        let ok = [true, true, true, true, true, false];
        let d = increments(&v, &ok);
        assert_eq!(&d[..3], &[5.0, 0.0, 3.0]);
        assert!(d[3].is_nan() && d[4].is_nan() && d[5].is_nan());
    }

    #[test]
    fn an_error_counter_is_zero_before_its_first_sample() {
        // the pod is scraped from point 0; its 5xx series appears at point
        // 2 with the 2 errors since point 1; a scrape of both is missed at 4
        let requests = [0.0, 40.0, 80.0, 120.0, f64::NAN, 200.0];
        let errors = [f64::NAN, f64::NAN, 2.0, 3.0, f64::NAN, 5.0];
        let filled = absent_is_zero(&errors, &requests);
        assert_eq!(&filled[..4], &[0.0, 0.0, 2.0, 3.0]);
        assert!(filled[4].is_nan(), "a later gap stays missed");
        let d = increments(&filled, &[true; 5]);
        assert_eq!(&d[..3], &[0.0, 2.0, 1.0], "the first sample's errors count");
        // before the pod is scraped at all, nothing is known
        let late = absent_is_zero(&[f64::NAN, 1.0], &[f64::NAN, 10.0]);
        assert!(late[0].is_nan());
    }

    #[test]
    fn sample_times_are_the_newest_raw_sample_per_pod_at_each_grid_point() {
        let s = |pod: &str, code: &str, ts: &[f64]| Series {
            labels: [("pod", pod), ("code", code)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: ts.iter().map(|t| (*t, 1.0)).collect(),
        };
        // pod a: scrapes at 99.5 + 10 i, the one at 129.5 missed, the 5xx
        // series only since 119.5; pod b: a sample exactly on grid point 2
        // (from 100, step 10), then nothing.
        let raw = vec![
            s("a", "200", &[99.5, 109.5, 119.5, 139.5, 149.5]),
            s("a", "500", &[119.5, 139.5, 149.5]),
            s("b", "200", &[105.0, 120.0]),
        ];
        let mut grid = BTreeMap::new();
        sample_times(&raw, "pod", 100.0, 10.0, 0..=5, 7, &mut grid);
        assert_eq!(grid["a"][..6], [99.5, 109.5, 119.5, 119.5, 139.5, 149.5]);
        let b = &grid["b"];
        assert!(b[0].is_nan() && b[6].is_nan() && b[7].is_nan(), "{b:?}");
        assert_eq!(b[1..6], [105.0, 120.0, 120.0, 120.0, 120.0]);
        // the next chunk (grid points 5..=7; its raw samples reach back to
        // 142): point 5 keeps what the chunk before found, point 6 has no
        // sample in reach (NaN: steps 6 and 7 invalid, as a sample 4 steps
        // old would make them)
        let later = vec![s("b", "200", &[165.0])];
        sample_times(&later, "pod", 100.0, 10.0, 5..=7, 7, &mut grid);
        assert_eq!(grid["b"][5], 120.0);
        assert!(grid["b"][6].is_nan());
        assert_eq!(grid["b"][7], 165.0);
        // the validity the fit derives: a step is valid when its newest
        // sample is one scrape after the last
        let t = &grid["a"][..6];
        let valid: Vec<bool> = (1..t.len())
            .map(|k| {
                let dt = t[k] - t[k - 1];
                dt > 5.0 && dt < 15.0
            })
            .collect();
        assert_eq!(valid, vec![true, true, false, false, true]);
    }

    #[test]
    fn histogram_blocks_from_cumulative_le_series() {
        let s = |le: &str, pts: &[(f64, f64)]| Series {
            labels: [("le".to_string(), le.to_string())].into_iter().collect(),
            points: pts.to_vec(),
        };
        let series = vec![
            s("+Inf", &[(1.0, 10.0), (2.0, 20.0)]),
            s("50", &[(1.0, 4.0), (2.0, 5.0)]),
            s("100", &[(1.0, 9.0), (2.0, 15.0)]),
        ];
        let h = histogram_blocks(&series, "le", 0.001, 2).expect("buckets");
        assert_eq!(h.bounds, vec![0.05, 0.1]);
        assert_eq!(h.blocks, vec![vec![4.0, 5.0, 1.0], vec![5.0, 10.0, 5.0]]);
        assert!(
            histogram_blocks(&series[1..], "le", 1.0, 2).is_none(),
            "no +Inf"
        );
    }

    /// Every query of both families under renames: each family and label
    /// calibrate reads has its renamed name, and no default name is left.
    #[test]
    fn queries_use_the_telemetrys_names() {
        let t = scenarios::parse_telemetry(
            concat!(
                "[telemetry.metrics]\n",
                include_str!("../../tests/fixtures/shop-goldengoose-renames.toml"),
                r#"
istio_requests_total = "mesh_requests_total"
istio_request_duration_milliseconds_bucket = "mesh_latency_ms_bucket"
istio_request_duration_milliseconds_sum = "mesh_latency_ms_sum"
istio_request_duration_milliseconds_count = "mesh_latency_ms_count"
[telemetry.labels]
code = "status"
response_code = "http_status"
le = "upper"
pod = "kubernetes_pod_name"
reporter = "side"
version = "track"
"#
            ),
            std::path::Path::new("names.toml"),
        )
        .expect("a valid telemetry");
        let m = r#"track="stable""#;
        let all = |f: Family| {
            let n = Names::of(f, &t);
            let mut q = vec![n.probe(m), n.sample_range(m, 10.0, 100)];
            q.extend(n.pod_queries(m).into_iter().map(|(_, q)| q));
            q.push(n.histogram_query(m, Duration::from_secs(600)));
            let s = n.sources();
            q.extend([
                s.requests,
                s.errors,
                s.latency,
                s.histogram,
                s.cpu,
                s.memory,
            ]);
            q
        };
        let gg = all(Family::Goldengoose);
        assert_eq!(
            gg[..8],
            [
                r#"count(shop_requests_total{track="stable"})"#,
                r#"shop_requests_total{track="stable"}[1030000ms]"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_requests_total{track="stable"})"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_requests_total{track="stable",status=~"5.."})"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_latency_seconds_sum{track="stable"})"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_latency_seconds_count{track="stable"})"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_cpu_seconds_total{track="stable"})"#,
                r#"sum by (kubernetes_pod_name, instance) (shop_memory_bytes{track="stable"})"#,
            ]
        );
        assert_eq!(
            gg[8],
            r#"sum by (upper) (increase(shop_latency_seconds_bucket{track="stable"}[600000ms]))"#
        );
        let istio = all(Family::Istio);
        assert_eq!(
            istio[0],
            r#"count(mesh_requests_total{track="stable",side="destination"})"#
        );
        assert!(istio[3].contains(r#"http_status=~"5..""#), "{}", istio[3]);
        assert!(istio[8].starts_with("sum by (upper) (increase(mesh_latency_ms_bucket{"));
        // a selector naming the renamed reporter label keeps its own
        assert_eq!(
            Names::of(Family::Istio, &t).matchers(r#"side="source""#),
            r#"side="source""#
        );
        let defaults = [
            "http_request",
            "istio_request",
            "process_",
            "code=",
            "(le)",
            "pod,",
            "reporter",
        ];
        for q in gg.iter().chain(&istio) {
            for d in defaults {
                assert!(!q.contains(d), "default name {d} in {q}");
            }
        }
        // the defaults are today's names
        let n = Names::of(Family::Goldengoose, &Telemetry::default());
        assert_eq!(
            n.pod_queries("")[1].1,
            r#"sum by (pod, instance) (http_requests_total{code=~"5.."})"#
        );
        assert_eq!(
            n.histogram_query("", Duration::from_secs(1)),
            "sum by (le) (increase(http_request_duration_seconds_bucket{}[1000ms]))"
        );
        // the pod and le labels are read under their renamed names
        let series = |labels: &[(&str, &str)], points: &[(f64, f64)]| Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        };
        assert_eq!(
            pod_name(
                &series(&[("kubernetes_pod_name", "shop-1"), ("instance", "x")], &[]),
                "kubernetes_pod_name"
            ),
            "shop-1"
        );
        let h = histogram_blocks(
            &[
                series(&[("upper", "0.1")], &[(1.0, 3.0)]),
                series(&[("upper", "+Inf")], &[(1.0, 4.0)]),
            ],
            "upper",
            1.0,
            1,
        )
        .expect("buckets under the renamed le");
        assert_eq!(h.blocks, vec![vec![3.0, 1.0]]);
    }
}
