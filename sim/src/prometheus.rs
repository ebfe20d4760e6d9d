//! The simulator's Prometheus: the raw series the simulated pods expose,
//! scraped into a [`prom::Store`], and the controller's PromQL evaluated on
//! them with the `prom` crate's evaluator.
//!
//! # What is scraped
//!
//! Per pod and scrape step, from the generator's per-track draws
//! ([`crate::series::Generator`]):
//!
//! - goldengoose's families, labelled `version` (the track) and `pod`:
//!   `http_requests_total{code="200"|"500"}`,
//!   `http_request_duration_seconds_{bucket,sum,count}` over goldengoose's
//!   buckets, `process_cpu_seconds_total`, `process_resident_memory_bytes`;
//! - Istio's sidecar families with `reporter="destination"`,
//!   `destination_workload`, `destination_workload_namespace`,
//!   `destination_service`, `response_code`, `pod`:
//!   `istio_requests_total` and
//!   `istio_request_duration_milliseconds_{bucket,sum,count}` over Istio's
//!   default millisecond buckets;
//! - on every series `rollouts_pod_template_hash` (stable per track),
//!   `app` and `namespace`.
//!
//! Names and labels can be renamed and the per-track names set in the
//! scenario's `[telemetry]` ([`scenarios::Telemetry`]).
//!
//! A track's step counts are split over its pods exactly: each histogram
//! bucket (or, without a histogram, the requests) multinomially with equal
//! shares, the server errors over the pods' requests by sequential
//! hypergeometric draws; all from a random stream of the scrape's own
//! (derived from the run seed), so the generator's draws, and the Kayenta
//! analysis that reads them, do not move. A pod's latency sum is the
//! track's sum times its share of the requests (the generator draws the sum
//! per track); each pod burns the track's idle CPU plus its own requests'
//! share of the track's busy CPU (so the pods' CPU sums to the track's);
//! memory is the track's per-pod gauge.
//!
//! Counters are cumulative: a fresh pod's start at 0 at the traffic shift,
//! production's with the count of its days in service. While a
//! crash-looping track is down nothing is scraped: its series get a stale
//! marker at the first failed scrape (as Prometheus writes them) and no
//! samples until it is up again, when its counters restart from 0 (a
//! counter reset, which `rate` handles). A canary that is down from the
//! start has series from its first successful scrape.
//!
//! Only the series the run's queries can read are generated: per track,
//! the families with a series some selector of a query matches (resolved
//! once per plan against every label set the run's pods could expose, with
//! the evaluator's own matching); a track no selector matches scrapes
//! nothing, and a family whose draw the run does not make otherwise is
//! drawn only then. Each track's pods split its counts from a random
//! stream of the track's own.
//!
//! # Time
//!
//! Simulated time is milliseconds since the commit ([`release::Millis`]);
//! the Prometheus timestamp of simulated time `t` is [`EPOCH_MS`]` + t`
//! (the commit happens at 2023-11-14T22:13:20Z). Step `k` (1-based) of
//! the generator, covering the `k`-th scrape interval after the traffic
//! shift, is scraped at `EPOCH_MS + traffic_at + k * step`; the counters'
//! starting values are scraped at `EPOCH_MS + traffic_at`. A `Measure` at
//! `at` (instant query) or over `start..=end` (range query) is evaluated at
//! `EPOCH_MS + at` (and so on) on everything scraped up to `at`.

use prom::{Engine, Labels, Query, SeriesId, Store};
use rand::SeedableRng;
use rand_distr::{Distribution, Hypergeometric};
use rand_xoshiro::Xoshiro256PlusPlus;
use release::{MeasureRequest, Measurement};
use scenarios::Telemetry;
use scenarios::telemetry::{ResolvedTrack, TelemetryTrack};

#[cfg(test)]
use crate::series::fold_buckets;
use crate::series::{
    DURATION_BUCKETS, Draws, GOLDENGOOSE, Generator, ISTIO_BUCKETS, UNION, UNION_BOUNDS, binomial,
};

/// The Prometheus timestamp of the commit (simulated time 0), ms.
pub const EPOCH_MS: i64 = 1_700_000_000_000;

/// Buckets of Istio's histogram (the last is +Inf).
const ISTIO: usize = ISTIO_BUCKETS.len() + 1;
/// Istio's bounds as its `le` labels write them, milliseconds.
const ISTIO_BUCKETS_MS: [f64; ISTIO - 1] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The families a run generates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Families {
    /// `http_requests_total`.
    pub requests: bool,
    /// `http_request_duration_seconds_bucket`.
    pub bucket: bool,
    /// `http_request_duration_seconds_sum`.
    pub sum: bool,
    /// `http_request_duration_seconds_count`.
    pub count: bool,
    /// `process_cpu_seconds_total`.
    pub cpu: bool,
    /// `process_resident_memory_bytes`.
    pub memory: bool,
    /// `istio_requests_total`.
    pub istio_requests: bool,
    /// `istio_request_duration_milliseconds_bucket`.
    pub istio_bucket: bool,
    /// `istio_request_duration_milliseconds_sum`.
    pub istio_sum: bool,
    /// `istio_request_duration_milliseconds_count`.
    pub istio_count: bool,
}

impl Families {
    /// Every family.
    pub fn all() -> Self {
        Self {
            requests: true,
            bucket: true,
            sum: true,
            count: true,
            cpu: true,
            memory: true,
            istio_requests: true,
            istio_bucket: true,
            istio_sum: true,
            istio_count: true,
        }
    }

    /// Every family whose draws `draws` already makes (dumping these
    /// changes no run).
    pub fn drawn(draws: Draws) -> Self {
        Self {
            requests: true,
            bucket: draws.histogram,
            sum: draws.latency_sum,
            count: true,
            cpu: draws.cpu,
            memory: draws.memory,
            istio_requests: true,
            istio_bucket: draws.union,
            istio_sum: draws.latency_sum,
            istio_count: true,
        }
    }

    /// Both sets.
    pub fn or(self, o: Self) -> Self {
        Self {
            requests: self.requests || o.requests,
            bucket: self.bucket || o.bucket,
            sum: self.sum || o.sum,
            count: self.count || o.count,
            cpu: self.cpu || o.cpu,
            memory: self.memory || o.memory,
            istio_requests: self.istio_requests || o.istio_requests,
            istio_bucket: self.istio_bucket || o.istio_bucket,
            istio_sum: self.istio_sum || o.istio_sum,
            istio_count: self.istio_count || o.istio_count,
        }
    }

    /// True when no family is generated.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The generator's draws these families need.
    pub fn draws(&self) -> Draws {
        Draws {
            histogram: self.bucket,
            union: self.istio_bucket,
            latency_sum: self.sum || self.istio_sum,
            cpu: self.cpu,
            memory: self.memory,
        }
    }

    /// Add family `f`.
    pub(crate) fn set_fam(&mut self, f: Fam) {
        match f {
            Fam::Requests => self.requests = true,
            Fam::Bucket => self.bucket = true,
            Fam::Sum => self.sum = true,
            Fam::Count => self.count = true,
            Fam::Cpu => self.cpu = true,
            Fam::Memory => self.memory = true,
            Fam::IstioRequests => self.istio_requests = true,
            Fam::IstioBucket => self.istio_bucket = true,
            Fam::IstioSum => self.istio_sum = true,
            Fam::IstioCount => self.istio_count = true,
        }
    }
}

/// A controller's queries, parsed once per scenario and analysis, and the
/// families they read on each track.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    queries: Vec<Result<Query, String>>,
    families: [Families; 2],
}

impl Plan {
    /// Parse `queries` (a controller's [`release::Controller::queries`])
    /// for a run whose pods and names `layout` gives. A query that does not
    /// parse, or uses what the evaluator lacks, is kept as its error: each
    /// measurement of it answers [`Measurement::Error`] with the message.
    pub fn new(queries: &[release::Query], layout: &Layout<'_>) -> Self {
        Self::with_resolver(queries, &Resolver::new(layout))
    }

    /// [`Plan::new`] against a layout's series already listed: a scenario
    /// lists them once for this plan and its [`crate::KayentaPlan`].
    pub(crate) fn with_resolver(queries: &[release::Query], resolver: &Resolver) -> Self {
        let mut families = [Families::default(); 2];
        let parsed = queries
            .iter()
            .map(|q| {
                let parsed = Query::parse(&q.promql).map_err(|e| format!("{}: {e}", q.name))?;
                let read = resolver.families(parsed.expr());
                families = [families[0].or(read[0]), families[1].or(read[1])];
                Ok(parsed)
            })
            .collect();
        Self {
            queries: parsed,
            families,
        }
    }

    /// No queries: nothing to scrape for them.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The families the queries read, on either track.
    pub fn families(&self) -> Families {
        self.families[0].or(self.families[1])
    }

    /// The families the queries read on the canary's and the control's
    /// series: only these are scraped.
    pub fn per_track(&self) -> [Families; 2] {
        self.families
    }

    /// Query `i`, or why it cannot be evaluated.
    pub fn query(&self, i: usize) -> Result<&Query, String> {
        match self.queries.get(i) {
            Some(Ok(q)) => Ok(q),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "no query {i}: the controller has {}",
                self.queries.len()
            )),
        }
    }
}

/// What the raw series of a run look like before any sample: the pods of
/// each track and their names.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Renames and names.
    pub telemetry: &'a Telemetry,
    /// The control's track.
    pub control: TelemetryTrack,
    /// Pods of the canary and the control.
    pub pods: [u32; 2],
    /// Scrape step, ms.
    pub step_ms: i64,
}

/// Every series a run could write (labels, no samples) and where each
/// comes from: what a plan resolves its selectors against, with the
/// evaluator's own matching.
#[derive(Debug)]
pub(crate) struct Resolver {
    pub store: Store,
    pub info: Vec<SeriesInfo>,
    /// Pods per track (at least 1).
    pub pods: [usize; 2],
}

impl Resolver {
    pub(crate) fn new(l: &Layout<'_>) -> Self {
        let (store, info) = layout(l.telemetry, l.control, l.pods);
        Self {
            store,
            info,
            pods: l.pods.map(|p| p.max(1) as usize),
        }
    }

    /// The families, per track, any selector of `e` matches a series of.
    pub(crate) fn families(&self, e: &promql_parser::parser::Expr) -> [Families; 2] {
        let mut out = [Families::default(); 2];
        crate::metrics::walk_selectors(e, &mut |vs| {
            for id in self.store.select(vs) {
                let i = self.info[id.0];
                out[i.track].set_fam(i.fam);
            }
        });
        out
    }
}

/// A counter series and its current value.
#[derive(Debug, Clone, Copy)]
struct Counter {
    id: SeriesId,
    value: f64,
}

/// One pod's series (empty where the family is not generated).
#[derive(Debug, Default)]
struct Pod {
    /// `http_requests_total` code 200, 500.
    requests: Vec<Counter>,
    bucket: Vec<Counter>,
    sum: Vec<Counter>,
    count: Vec<Counter>,
    cpu: Vec<Counter>,
    memory: Option<SeriesId>,
    istio_requests: Vec<Counter>,
    istio_bucket: Vec<Counter>,
    istio_sum: Vec<Counter>,
    istio_count: Vec<Counter>,
    /// Serving (a slot reserved for a scaled canary's pod is not until it
    /// starts, and not after it stops).
    live: bool,
}

impl Pod {
    /// The counters, family by family.
    fn counter_families(&mut self) -> [&mut Vec<Counter>; 9] {
        [
            &mut self.requests,
            &mut self.bucket,
            &mut self.sum,
            &mut self.count,
            &mut self.cpu,
            &mut self.istio_requests,
            &mut self.istio_bucket,
            &mut self.istio_sum,
            &mut self.istio_count,
        ]
    }

    /// Every counter back to 0 (a new process).
    fn zero_counters(&mut self) {
        for fam in self.counter_families() {
            for c in fam.iter_mut() {
                c.value = 0.0;
            }
        }
    }

    /// Every counter's value written at `t`.
    fn push_counters(&mut self, store: &mut Store, t: i64) -> Result<(), prom::Error> {
        for fam in self.counter_families() {
            for c in fam.iter() {
                store.push(c.id, t, c.value)?;
            }
        }
        Ok(())
    }

    fn ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.requests
            .iter()
            .chain(&self.bucket)
            .chain(&self.sum)
            .chain(&self.count)
            .chain(&self.cpu)
            .chain(&self.istio_requests)
            .chain(&self.istio_bucket)
            .chain(&self.istio_sum)
            .chain(&self.istio_count)
            .map(|c| c.id)
            .chain(self.memory)
    }
}

/// Per fine (union) bucket, the bucket of a coarser histogram bounded by
/// `coarse_le` (+Inf last) it falls in: [`fold_buckets`] as a table.
fn fold_table(coarse_le: &[f64]) -> [usize; UNION] {
    let mut to = [0; UNION];
    let mut j = 0;
    for (i, slot) in to.iter_mut().enumerate() {
        let le = UNION_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY);
        while j < coarse_le.len() && coarse_le[j] < le {
            j += 1;
        }
        *slot = j;
    }
    to
}

/// [`fold_table`] for goldengoose's buckets.
static TO_GG: std::sync::LazyLock<[usize; UNION]> =
    std::sync::LazyLock::new(|| fold_table(&DURATION_BUCKETS));
/// [`fold_table`] for Istio's buckets.
static TO_ISTIO: std::sync::LazyLock<[usize; UNION]> =
    std::sync::LazyLock::new(|| fold_table(&ISTIO_BUCKETS));

/// A step's split over the pods: buffers a scrape keeps across steps and
/// runs, so writing a step allocates nothing.
#[derive(Debug, Default)]
struct Scratch {
    split: Vec<PodStep>,
    pod_requests: Vec<u64>,
    counts: Vec<u64>,
    errors: Vec<u64>,
    chosen: Vec<u64>,
}

/// What one pod served in one step.
#[derive(Debug, Clone, Copy, Default)]
struct PodStep {
    ok: u64,
    errors: u64,
    bucket: [u64; GOLDENGOOSE],
    istio_bucket: [u64; ISTIO],
    latency_sum: f64,
    cpu_seconds: f64,
    memory: f64,
}

#[derive(Debug)]
struct TrackSeries {
    /// The families scraped from its pods.
    families: Families,
    pods: Vec<Pod>,
    /// A sample was written (the series exist in Prometheus's eyes).
    started: bool,
    /// Down at the last step written.
    down: bool,
    /// Production: pods in service for days before the release.
    age_steps: f64,
    /// Pods serving from the traffic shift (the rest are reserved slots).
    live_at_start: usize,
}

/// The raw series of one run, written step by step behind the generator.
#[derive(Debug)]
pub struct Scrape {
    store: Store,
    /// Per track: the pods' shares are drawn from a stream of the track's
    /// own, so what one track scrapes does not move the other's.
    rng: [Xoshiro256PlusPlus; 2],
    origin_ms: i64,
    step_ms: i64,
    written: usize,
    tracks: [TrackSeries; 2],
    /// Per plan (the runs' [`crate::run::Prepared`] reading these series)
    /// and query: what its evaluations on this store share (selector
    /// matches, aggregation groups), kept across measurements and, with
    /// the series, across restarts.
    caches: Vec<(u64, Vec<prom::QueryCache>)>,
    scratch: Scratch,
}

/// Label names, renamed as the telemetry says.
struct Names<'t>(&'t Telemetry);

impl Names<'_> {
    fn labels(&self, family: &str, pairs: &[(String, String)]) -> Labels {
        let t = self.0;
        let mut l = Labels::from_pairs(
            pairs
                .iter()
                .map(|(n, v)| (t.label(n).to_owned(), v.clone())),
        );
        l.set("__name__".into(), t.metric(family).to_owned());
        l
    }
}

impl Scrape {
    /// The series of `families` (per track) for the generator's tracks
    /// (canary, and a fresh baseline or production as `control`), scraped
    /// from `traffic_at` (simulated ms) on; `seed` is the run's.
    pub fn new(
        families: [Families; 2],
        telemetry: &Telemetry,
        control: TelemetryTrack,
        generator: &Generator<'_>,
        traffic_at: release::Millis,
        seed: u64,
    ) -> Self {
        let names = Names(telemetry);
        let mut store = Store::new();
        let step_s = generator.step_s();
        let tracks = [TelemetryTrack::Canary, control];
        let specs = generator.tracks();
        let mut out = Vec::with_capacity(2);
        for (t, ((track, spec), families)) in tracks.iter().zip(specs).zip(families).enumerate() {
            let resolved = telemetry.track(*track);
            let live_at_start = spec.pods.max(1) as usize;
            let pods = (0..generator.pod_slots(t))
                .map(|i| {
                    let pod = pod_name(&resolved, i);
                    let mut p = new_pod(&mut store, &names, telemetry, &resolved, &pod, families);
                    p.live = (i as usize) < live_at_start;
                    p
                })
                .collect();
            out.push(TrackSeries {
                families,
                pods,
                started: false,
                down: false,
                live_at_start,
                age_steps: if *track == TelemetryTrack::Production {
                    spec.age_at_start_s / step_s
                } else {
                    0.0
                },
            });
        }
        let [canary, control] = <[TrackSeries; 2]>::try_from(out)
            .unwrap_or_else(|_| unreachable!("two tracks were built"));
        Self {
            store,
            rng: Self::streams(seed),
            origin_ms: EPOCH_MS + traffic_at as i64,
            step_ms: (step_s * 1000.0).round() as i64,
            written: 0,
            tracks: [canary, control],
            caches: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// This scrape made ready for another run of the same analysis (the
    /// same families, names and generator shape) from `traffic_at`,
    /// seeded `seed`: exactly what [`Scrape::new`] would build, without
    /// building the series again (their labels and ids are kept, their
    /// samples dropped). Building them is a third of a peer's run.
    pub fn restart(&mut self, traffic_at: release::Millis, seed: u64) {
        self.store.clear_samples();
        self.rng = Self::streams(seed);
        self.origin_ms = EPOCH_MS + traffic_at as i64;
        self.written = 0;
        for ts in &mut self.tracks {
            ts.started = false;
            ts.down = false;
            for (i, pod) in ts.pods.iter_mut().enumerate() {
                pod.live = i < ts.live_at_start;
                pod.zero_counters();
            }
        }
    }

    /// Per track, the stream its pods' shares are drawn from.
    fn streams(seed: u64) -> [Xoshiro256PlusPlus; 2] {
        [0u64, 1].map(|t| {
            Xoshiro256PlusPlus::seed_from_u64(
                seed ^ 0x7072_6f6d_5343_5250 ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, taken.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Steps written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Write every step the generator has made and this has not yet.
    pub fn catch_up(&mut self, g: &Generator<'_>) -> Result<(), prom::Error> {
        while self.written < g.len() {
            let k = self.written + 1;
            for track in 0..2 {
                self.write_step(g, track, k)?;
            }
            self.written = k;
        }
        Ok(())
    }

    fn write_step(&mut self, g: &Generator<'_>, track: usize, k: usize) -> Result<(), prom::Error> {
        let step = &g.steps(track)[k - 1];
        let t = self.origin_ms + k as i64 * self.step_ms;
        let ts = &mut self.tracks[track];
        let f = ts.families;
        if f.is_empty() {
            // nothing of this track is read: nothing is scraped
            return Ok(());
        }
        if step.down {
            if ts.started && !ts.down {
                for pod in ts.pods.iter().filter(|p| p.live) {
                    for id in pod.ids() {
                        self.store.push_stale(id, t)?;
                    }
                }
            }
            ts.down = true;
            return Ok(());
        }
        // the pods serving this step (a scaled canary's may change)
        let n = (g.pods_at(track, k) as usize).clamp(1, ts.pods.len());
        for pod in &mut ts.pods[n..] {
            if pod.live && ts.started {
                // stopped: Prometheus marks its series stale
                for id in pod.ids() {
                    self.store.push_stale(id, t)?;
                }
            }
            pod.live = false;
        }
        // the step split over its pods, in buffers kept across steps and
        // runs (the same draws, in the same order, as ever)
        let sc = &mut self.scratch;
        sc.split.clear();
        sc.split.resize(n, PodStep::default());
        sc.pod_requests.clear();
        sc.pod_requests.resize(n, 0);
        let split = &mut sc.split[..];
        let pod_requests = &mut sc.pod_requests[..];
        // requests: per bucket of the finest histogram drawn, else in all
        let draws = g.draws();
        let buckets_read = f.bucket || f.istio_bucket;
        // fine bucket b goes to goldengoose's bucket TO_GG[b] and Istio's
        // TO_ISTIO[b] (integer sums: any order gives the same counts); a
        // family not read is not folded
        let (to_gg, to_istio) = (&*TO_GG, &*TO_ISTIO);
        if n == 1 {
            // one pod serves the track's step: nothing to split
            pod_requests[0] = step.requests;
            if buckets_read && draws.union {
                let fine = &g.union_buckets(track)[k - 1];
                let s = &mut split[0];
                for (b, &c) in fine.iter().enumerate() {
                    if f.bucket {
                        s.bucket[to_gg[b]] += c;
                    }
                    if f.istio_bucket {
                        s.istio_bucket[to_istio[b]] += c;
                    }
                }
            } else if buckets_read {
                split[0].bucket = step.buckets;
            }
        } else if buckets_read && draws.union {
            let fine = &g.union_buckets(track)[k - 1];
            sc.counts.clear();
            sc.counts.resize(n, 0);
            for (b, &c) in fine.iter().enumerate() {
                multinomial(c, &mut sc.counts, &mut self.rng[track]);
                let (gg, istio) = (to_gg[b], to_istio[b]);
                for ((s, r), &c) in split
                    .iter_mut()
                    .zip(pod_requests.iter_mut())
                    .zip(&sc.counts)
                {
                    *r += c;
                    if f.bucket {
                        s.bucket[gg] += c;
                    }
                    if f.istio_bucket {
                        s.istio_bucket[istio] += c;
                    }
                }
            }
        } else if buckets_read && draws.histogram {
            sc.counts.clear();
            sc.counts.resize(n, 0);
            for (b, &c) in step.buckets.iter().enumerate() {
                multinomial(c, &mut sc.counts, &mut self.rng[track]);
                for ((s, r), &c) in split
                    .iter_mut()
                    .zip(pod_requests.iter_mut())
                    .zip(&sc.counts)
                {
                    s.bucket[b] = c;
                    *r += c;
                }
            }
        } else {
            multinomial(step.requests, pod_requests, &mut self.rng[track]);
        }
        // errors over the pods' requests: which of the step's requests
        // failed is a uniform subset, so each pod's count is multivariate
        // hypergeometric
        split_errors_into(
            step.requests,
            step.errors,
            pod_requests,
            &mut self.rng[track],
            &mut sc.errors,
            &mut sc.chosen,
        );
        // busy CPU follows each pod's own requests; idle CPU is every pod's
        let served: u64 = pod_requests.iter().sum();
        let busy_per_request = if served == 0 {
            0.0
        } else {
            step.cpu_busy_cores * n as f64 / served as f64
        };
        let idle = step.cpu_cores - step.cpu_busy_cores;
        for (s, (&r, &e)) in split.iter_mut().zip(pod_requests.iter().zip(&sc.errors)) {
            s.errors = e;
            s.ok = r - e;
            s.latency_sum = if step.requests == 0 {
                0.0
            } else {
                step.latency_sum * r as f64 / step.requests as f64
            };
            s.cpu_seconds = (idle + busy_per_request * r as f64) * self.step_ms as f64 / 1000.0;
            s.memory = step.memory_bytes;
        }
        let restarted = ts.down;
        let first = !ts.started;
        if first && k == 1 {
            // the counters' values at the traffic shift: 0 for fresh pods,
            // the count of their days in service for production's
            for (pod, s) in ts.pods.iter_mut().zip(split.iter()) {
                let scale = ts.age_steps;
                apply(pod, s, f, |c, inc| c.value = (inc * scale).round());
                pod.push_counters(&mut self.store, self.origin_ms)?;
                if let Some(id) = pod.memory {
                    self.store.push(id, self.origin_ms, s.memory)?;
                }
            }
        }
        for (pod, s) in ts.pods.iter_mut().zip(split.iter()) {
            if !pod.live {
                // started since the last step: a new process from 0
                pod.live = true;
                pod.zero_counters();
            }
            if restarted || (first && k > 1) {
                // a new process: its counters start from 0
                pod.zero_counters();
            }
            apply(pod, s, f, |c, inc| c.value += inc);
            pod.push_counters(&mut self.store, t)?;
            if let Some(id) = pod.memory {
                self.store.push(id, t, s.memory)?;
            }
        }
        ts.started = true;
        ts.down = false;
        Ok(())
    }

    /// Answer a [`MeasureRequest`] with query `q` (plan `plan`'s query
    /// `index`: the evaluations of each query share a cache) on what was
    /// scraped.
    pub fn measure(
        &mut self,
        plan: u64,
        index: usize,
        q: &Query,
        m: &MeasureRequest,
    ) -> Measurement {
        let at = match self.caches.iter().position(|(of, _)| *of == plan) {
            Some(i) => i,
            None => {
                self.caches.push((plan, Vec::new()));
                self.caches.len() - 1
            }
        };
        let caches = &mut self.caches[at].1;
        if caches.len() <= index {
            caches.resize_with(index + 1, Default::default);
        }
        answer_with(&self.store, q, m, Some(&mut caches[index]))
    }
}

/// Evaluate `q` as `m` asks on `store` (simulated times mapped by
/// [`EPOCH_MS`]).
pub fn answer(store: &Store, q: &Query, m: &MeasureRequest) -> Measurement {
    answer_with(store, q, m, None)
}

/// [`answer`], with a cache of `q`'s evaluations on `store`.
fn answer_with(
    store: &Store,
    q: &Query,
    m: &MeasureRequest,
    cache: Option<&mut prom::QueryCache>,
) -> Measurement {
    let engine = Engine::new(store);
    let t = |ms: release::Millis| EPOCH_MS + ms as i64;
    match m.range {
        None => match match cache {
            Some(c) => engine.instant_cached(q, t(m.at), c),
            None => engine.instant(q, t(m.at)),
        } {
            Ok(prom::Value::Scalar(v)) => Measurement::Scalar(v),
            Ok(prom::Value::Vector(samples)) => {
                Measurement::Vector(samples.iter().map(|s| s.value).collect())
            }
            Ok(prom::Value::Matrix(series)) => {
                Measurement::Matrix(series.into_iter().map(|s| s.values).collect())
            }
            Ok(prom::Value::Str(_)) => Measurement::Error(format!(
                "the query gives a string, not a number\nquery: {}",
                q.text()
            )),
            Err(e) => Measurement::Error(e.to_string()),
        },
        Some(r) => match match cache {
            Some(c) => engine.range_cached(q, t(r.start), t(r.end), r.step as i64, c),
            None => engine.range(q, t(r.start), t(r.end), r.step as i64),
        } {
            Ok(series) => Measurement::Matrix(series.into_iter().map(|s| s.values).collect()),
            Err(e) => Measurement::Error(e.to_string()),
        },
    }
}

/// Adds a pod's step to its counters with `f(counter, increment)`.
fn apply(pod: &mut Pod, s: &PodStep, fam: Families, mut f: impl FnMut(&mut Counter, f64)) {
    let requests = (s.ok + s.errors) as f64;
    if fam.requests {
        f(&mut pod.requests[0], s.ok as f64);
        f(&mut pod.requests[1], s.errors as f64);
    }
    if fam.istio_requests {
        f(&mut pod.istio_requests[0], s.ok as f64);
        f(&mut pod.istio_requests[1], s.errors as f64);
    }
    if fam.bucket {
        let mut cumulative = 0;
        for (c, &n) in pod.bucket.iter_mut().zip(&s.bucket) {
            cumulative += n;
            f(c, cumulative as f64);
        }
    }
    if fam.istio_bucket {
        let mut cumulative = 0;
        for (c, &n) in pod.istio_bucket.iter_mut().zip(&s.istio_bucket) {
            cumulative += n;
            f(c, cumulative as f64);
        }
    }
    for c in &mut pod.sum {
        f(c, s.latency_sum);
    }
    for c in &mut pod.istio_sum {
        f(c, s.latency_sum * 1000.0);
    }
    for c in pod.count.iter_mut().chain(&mut pod.istio_count) {
        f(c, requests);
    }
    for c in &mut pod.cpu {
        f(c, s.cpu_seconds);
    }
}

/// Most errors placed one by one (a uniform subset of the requests, by
/// Floyd's algorithm); more are split by sequential hypergeometric draws.
const FEW_ERRORS: u64 = 64;

/// `errors` of `requests` (`pod_requests` summing to it) split over the
/// pods exactly: the failed requests are a uniformly random subset, so
/// the counts are multivariate hypergeometric.
#[cfg(test)]
fn split_errors(
    requests: u64,
    errors: u64,
    pod_requests: &[u64],
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<u64> {
    let (mut out, mut chosen) = (Vec::new(), Vec::new());
    split_errors_into(requests, errors, pod_requests, rng, &mut out, &mut chosen);
    out
}

/// [`split_errors`] into `out` (`chosen`: scratch), allocating nothing
/// once the buffers have grown.
fn split_errors_into(
    requests: u64,
    errors: u64,
    pod_requests: &[u64],
    rng: &mut Xoshiro256PlusPlus,
    out: &mut Vec<u64>,
    chosen: &mut Vec<u64>,
) {
    use rand::RngExt;
    out.clear();
    if errors == 0 || requests == 0 {
        out.resize(pod_requests.len(), 0);
        return;
    }
    if errors >= requests {
        out.extend_from_slice(pod_requests);
        return;
    }
    out.resize(pod_requests.len(), 0);
    if pod_requests.len() == 1 {
        out[0] = errors;
        return;
    }
    if errors <= FEW_ERRORS {
        // Floyd: a uniform `errors`-subset of 0..requests
        chosen.clear();
        for j in requests - errors..requests {
            let t = rng.random_range(0..=j);
            let pick = if chosen.contains(&t) { j } else { t };
            chosen.push(pick);
        }
        for &position in chosen.iter() {
            let mut below = 0;
            for (o, &r) in out.iter_mut().zip(pod_requests) {
                if position < below + r {
                    *o += 1;
                    break;
                }
                below += r;
            }
        }
        return;
    }
    let (mut left_requests, mut left_errors) = (requests, errors);
    for (o, &r) in out.iter_mut().zip(pod_requests) {
        let e = if left_errors == 0 || r == 0 {
            0
        } else if r >= left_requests {
            left_errors
        } else {
            Hypergeometric::new(left_requests, left_errors, r).map_or(0, |d| d.sample(rng))
        };
        *o = e;
        left_requests -= r;
        left_errors -= e;
    }
}

/// `n` split over `out.len()` equal shares, exactly (sequential binomials).
fn multinomial(n: u64, out: &mut [u64], rng: &mut Xoshiro256PlusPlus) {
    let k = out.len();
    let mut left = n;
    for (i, slot) in out.iter_mut().enumerate() {
        let c = if i + 1 == k || left == 0 {
            left
        } else {
            binomial(left, 1.0 / (k - i) as f64, rng)
        };
        *slot = c;
        left -= c;
    }
}

/// A pod's name as a Deployment or Rollout names it: workload, template
/// hash, five characters from Kubernetes' alphabet.
fn pod_name(track: &ResolvedTrack, i: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let h = scenarios::telemetry::template_hash(&format!("{}/{i}", track.workload));
    let mut v = u64::from_str_radix(&h, 16).unwrap_or(u64::from(i));
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(v % ALPHABET.len() as u64) as usize] as char;
            v /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("{}-{}-{suffix}", track.workload, track.pod_template_hash)
}

fn format_bound(b: f64) -> String {
    prom::openmetrics::format_value(b)
}

fn new_pod(
    store: &mut Store,
    names: &Names<'_>,
    t: &Telemetry,
    track: &ResolvedTrack,
    pod: &str,
    f: Families,
) -> Pod {
    let (app, ns) = (t.app(), t.namespace());
    let common = [
        ("app", app),
        ("namespace", ns),
        ("pod", pod),
        (
            "rollouts_pod_template_hash",
            track.pod_template_hash.as_str(),
        ),
    ];
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    let gg = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = owned(&common);
        v.extend(owned(&[("version", track.version.as_str())]));
        v.extend(owned(extra));
        v
    };
    let istio = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = owned(&common);
        v.extend(owned(&[
            ("reporter", "destination"),
            ("destination_workload", track.workload.as_str()),
            ("destination_workload_namespace", ns),
            ("destination_service", track.service.as_str()),
        ]));
        v.extend(owned(extra));
        v
    };
    let mut counter = |family: &str, pairs: Vec<(String, String)>| Counter {
        id: store.series_id(names.labels(family, &pairs)),
        value: 0.0,
    };
    let mut p = Pod::default();
    if f.requests {
        p.requests = ["200", "500"]
            .iter()
            .map(|code| counter("http_requests_total", gg(&[("code", code)])))
            .collect();
    }
    if f.bucket {
        let les: Vec<String> = DURATION_BUCKETS
            .iter()
            .map(|b| format_bound(*b))
            .chain(["+Inf".to_owned()])
            .collect();
        p.bucket = les
            .iter()
            .map(|le| counter("http_request_duration_seconds_bucket", gg(&[("le", le)])))
            .collect();
    }
    if f.sum {
        p.sum = vec![counter("http_request_duration_seconds_sum", gg(&[]))];
    }
    if f.count {
        p.count = vec![counter("http_request_duration_seconds_count", gg(&[]))];
    }
    if f.cpu {
        p.cpu = vec![counter("process_cpu_seconds_total", gg(&[]))];
    }
    if f.istio_requests {
        p.istio_requests = ["200", "500"]
            .iter()
            .map(|code| counter("istio_requests_total", istio(&[("response_code", code)])))
            .collect();
    }
    if f.istio_bucket {
        let les: Vec<String> = ISTIO_BUCKETS_MS
            .iter()
            .map(|b| format_bound(*b))
            .chain(["+Inf".to_owned()])
            .collect();
        p.istio_bucket = les
            .iter()
            .map(|le| {
                counter(
                    "istio_request_duration_milliseconds_bucket",
                    istio(&[("le", le)]),
                )
            })
            .collect();
    }
    if f.istio_sum {
        p.istio_sum = vec![counter(
            "istio_request_duration_milliseconds_sum",
            istio(&[]),
        )];
    }
    if f.istio_count {
        p.istio_count = vec![counter(
            "istio_request_duration_milliseconds_count",
            istio(&[]),
        )];
    }
    if f.memory {
        p.memory = Some(store.series_id(names.labels("process_resident_memory_bytes", &gg(&[]))));
    }
    p
}

/// A family of the raw series (for [`layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fam {
    Requests,
    Bucket,
    Sum,
    Count,
    Cpu,
    Memory,
    IstioRequests,
    IstioBucket,
    IstioSum,
    IstioCount,
}

/// Where a raw series comes from: track (0 canary, 1 control), pod, family
/// and index within the family (the code: 0 for 200, 1 for 500; the
/// bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesInfo {
    pub track: usize,
    pub pod: usize,
    pub fam: Fam,
    pub sub: usize,
}

/// Every series a run with `pods` pods per track (canary, control) could
/// write, with their labels (no samples), and where each comes from
/// (indexed by [`SeriesId`]): what a plan resolves its selectors against.
pub(crate) fn layout(
    telemetry: &Telemetry,
    control: TelemetryTrack,
    pods: [u32; 2],
) -> (Store, Vec<SeriesInfo>) {
    let names = Names(telemetry);
    let mut store = Store::new();
    let mut info = Vec::new();
    for (track, (kind, n)) in [(TelemetryTrack::Canary, pods[0]), (control, pods[1])]
        .into_iter()
        .enumerate()
    {
        let resolved = telemetry.track(kind);
        for pod in 0..n.max(1) {
            let name = pod_name(&resolved, pod);
            let p = new_pod(
                &mut store,
                &names,
                telemetry,
                &resolved,
                &name,
                Families::all(),
            );
            let groups: [(Fam, Vec<SeriesId>); 10] = [
                (Fam::Requests, p.requests.iter().map(|c| c.id).collect()),
                (Fam::Bucket, p.bucket.iter().map(|c| c.id).collect()),
                (Fam::Sum, p.sum.iter().map(|c| c.id).collect()),
                (Fam::Count, p.count.iter().map(|c| c.id).collect()),
                (Fam::Cpu, p.cpu.iter().map(|c| c.id).collect()),
                (Fam::Memory, p.memory.into_iter().collect()),
                (
                    Fam::IstioRequests,
                    p.istio_requests.iter().map(|c| c.id).collect(),
                ),
                (
                    Fam::IstioBucket,
                    p.istio_bucket.iter().map(|c| c.id).collect(),
                ),
                (Fam::IstioSum, p.istio_sum.iter().map(|c| c.id).collect()),
                (
                    Fam::IstioCount,
                    p.istio_count.iter().map(|c| c.id).collect(),
                ),
            ];
            for (fam, ids) in groups {
                for (sub, id) in ids.into_iter().enumerate() {
                    if info.len() <= id.0 {
                        info.resize(
                            id.0 + 1,
                            SeriesInfo {
                                track: 0,
                                pod: 0,
                                fam: Fam::Requests,
                                sub: 0,
                            },
                        );
                    }
                    info[id.0] = SeriesInfo {
                        track,
                        pod: pod as usize,
                        fam,
                        sub,
                    };
                }
            }
        }
    }
    (store, info)
}

/// Istio's bucket bounds as its `le` labels say them, milliseconds.
pub(crate) fn istio_bounds_ms() -> &'static [f64] {
    &ISTIO_BUCKETS_MS
}

/// The raw series of each scenario's detail run (run 0 of the study with
/// `seed`, the report's example run): scenario name, run seed, series.
/// The runs are the report's: the series add no draw to them.
pub fn example_series(
    scenarios: &[scenarios::Scenario],
    seed: u64,
) -> Result<Vec<(String, u64, Store)>, crate::SimError> {
    let prepared = crate::Prepared::all(scenarios)?;
    Ok(prepared
        .iter()
        .map(|p| {
            let name = p.scenario().name.clone();
            let run_seed = crate::run_seed(seed, &name, 0);
            let (_, _, store) =
                crate::run::run_with_series(p, run_seed, &mut judge::Workspace::new());
            (name, run_seed, store.unwrap_or_default())
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn istio_bounds_agree_and_fold_into_each_family() {
        for (ms, s) in ISTIO_BUCKETS_MS.iter().zip(ISTIO_BUCKETS) {
            assert!((ms / 1000.0 - s).abs() <= 1e-12 * s, "{ms} ms vs {s} s");
        }
        for b in DURATION_BUCKETS.iter().chain(&ISTIO_BUCKETS) {
            assert!(UNION_BOUNDS.contains(b), "{b} not in the union");
        }
        // one request per union bucket: each coarse bucket gets the fine
        // buckets at or below its bound and above the previous one
        let fine = [1u64; UNION];
        let mut gg = [0u64; GOLDENGOOSE];
        fold_buckets(&fine, &UNION_BOUNDS, &mut gg, &DURATION_BUCKETS);
        assert_eq!(gg.iter().sum::<u64>(), UNION as u64);
        assert_eq!(gg[0], 2, "0.0005 and 0.001 fall in le=0.001");
        assert_eq!(gg[GOLDENGOOSE - 1], 7, "above 10 s: six bounds and +Inf");
        let mut istio = [0u64; ISTIO];
        fold_buckets(&fine, &UNION_BOUNDS, &mut istio, &ISTIO_BUCKETS);
        assert_eq!(istio.iter().sum::<u64>(), UNION as u64);
        assert_eq!(istio[2], 2, "0.0025 and 0.005 fall in le=5 ms");
        assert_eq!(istio[ISTIO - 1], 1);
        // the tables the scrape folds with agree with fold_buckets on any
        // histogram
        let fine: [u64; UNION] = std::array::from_fn(|i| (i as u64 * 7919) % 13 + i as u64);
        let mut by_table = ([0u64; GOLDENGOOSE], [0u64; ISTIO]);
        for (b, &c) in fine.iter().enumerate() {
            by_table.0[TO_GG[b]] += c;
            by_table.1[TO_ISTIO[b]] += c;
        }
        fold_buckets(&fine, &UNION_BOUNDS, &mut gg, &DURATION_BUCKETS);
        fold_buckets(&fine, &UNION_BOUNDS, &mut istio, &ISTIO_BUCKETS);
        assert_eq!(by_table, (gg, istio));
    }

    #[test]
    fn errors_split_over_pods_as_a_uniform_subset_of_the_requests() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let pods = [300u64, 500, 200];
        for errors in [0u64, 1, 7, 64, 65, 400, 1000] {
            let draws = 4000;
            let mut mean = [0.0f64; 3];
            let mut var = [0.0f64; 3];
            for _ in 0..draws {
                let e = split_errors(1000, errors, &pods, &mut rng);
                assert_eq!(e.iter().sum::<u64>(), errors);
                for p in 0..3 {
                    assert!(e[p] <= pods[p]);
                    mean[p] += e[p] as f64 / draws as f64;
                    var[p] += (e[p] as f64).powi(2) / draws as f64;
                }
            }
            for p in 0..3 {
                // hypergeometric: mean n K/N, variance n K/N (1-K/N) (N-n)/(N-1)
                let (n, k, total) = (pods[p] as f64, errors as f64, 1000.0);
                let m = n * k / total;
                let v = m * (1.0 - k / total) * (total - n) / (total - 1.0);
                let got_v = var[p] - mean[p] * mean[p];
                let se = (v / draws as f64).sqrt();
                assert!(
                    (mean[p] - m).abs() <= 5.0 * se + 1e-9 * m.max(1.0),
                    "{errors} pod {p}: mean {} vs {m}",
                    mean[p]
                );
                assert!(
                    (got_v - v).abs() <= 0.1 * v + 1e-6 * m.max(1.0),
                    "{errors} pod {p}: variance {got_v} vs {v}"
                );
            }
        }
    }

    #[test]
    fn plans_read_the_families_their_selectors_match_on_each_track() {
        let q = |t: &str| release::Query {
            name: "m".into(),
            promql: t.into(),
        };
        let layout = |telemetry| Layout {
            telemetry,
            control: TelemetryTrack::Baseline,
            pods: [1, 2],
            step_ms: 10_000,
        };
        let t = Telemetry::default();
        let p = Plan::new(
            &[q("sum(rate(istio_requests_total[1m]))"), q("bad(")],
            &layout(&t),
        );
        assert!(p.families().istio_requests && !p.families().bucket);
        assert_eq!(p.per_track()[0], p.per_track()[1]);
        assert!(p.query(1).unwrap_err().contains("m:"));
        assert!(p.query(2).is_err());
        // a selector without a name: the families whose series it matches
        let p = Plan::new(&[q(r#"{__name__=~"http.*"}"#)], &layout(&t));
        let f = p.families();
        assert!(f.requests && f.bucket && f.sum && f.count);
        assert!(!f.cpu && !f.memory && !f.istio_requests && !f.istio_bucket);
        // only the canary's series are read: the control scrapes nothing
        let p = Plan::new(
            &[q(
                r#"sum(rate(istio_requests_total{destination_workload="goldengoose"}[1m]))"#,
            )],
            &layout(&t),
        );
        assert!(p.per_track()[0].istio_requests && p.per_track()[1].is_empty());
        let mut renamed = Telemetry::default();
        renamed
            .metrics
            .insert("process_cpu_seconds_total".into(), "cpu_total".into());
        let p = Plan::new(&[q("rate(cpu_total[1m])")], &layout(&renamed));
        assert!(p.families().cpu && p.families().draws().cpu);
        let p = Plan::new(
            &[q("rate(process_cpu_seconds_total[1m])")],
            &layout(&renamed),
        );
        assert!(p.families().is_empty());
    }
}
