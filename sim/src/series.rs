//! Synthetic metrics as Prometheus would present them to Kayenta.
//!
//! Per scrape step and per track (canary, and its control: a fresh
//! baseline or old production) the generator draws what the pods served:
//! the latency histogram's bucket counts (the request count is Poisson and
//! each request lands in a bucket independently, so the bucket counts are
//! independent Poissons, see `fill_histogram`), the server errors
//! (binomial), CPU and memory; a draw no query of the run reads is
//! skipped. The queries read these through the simulated Prometheus
//! ([`crate::prometheus`], [`crate::metrics`]). Drawing aggregates per step instead of
//! requests keeps a run to microseconds while staying exactly faithful to
//! per-request sampling at any traffic level: every sampler it uses is
//! exact (`sample`'s tests check each against its pmf; the tests here
//! check the histograms against per-request draws).
//!
//! Not for: the pipeline (see `run`), which decides when tracks start and
//! what traffic share they get; the scalar samplers themselves (Poisson,
//! binomial, normal, AR(1): see `sample`).

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;
use scenarios::{Regression, Service};

// `binomial` also serves `prometheus` from here, as before the samplers
// moved to `sample`.
pub(crate) use crate::sample::binomial;
use crate::sample::{
    PTRS_FROM, ar1, gauss, poisson, poisson_given, poisson_near, poisson_ptrs_near,
};

/// goldengoose's `http_request_duration_seconds` bucket bounds (its
/// `metrics::DURATION_BUCKETS`; the root crate's tests check they agree).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const BUCKETS: usize = DURATION_BUCKETS.len() + 1;
/// Natural logs of the bucket bounds (a unit test checks them against
/// `DURATION_BUCKETS`); constants so the hot loop needs no lazy-init check.
#[allow(clippy::approx_constant)] // ln 0.1 is not quite -LN_10
const LN_BUCKETS: [f64; 16] = [
    -6.907_755_278_982_137,
    -5.991_464_547_107_982,
    -5.298_317_366_548_036,
    -4.605_170_185_988_091,
    -3.688_879_454_113_936,
    -2.995_732_273_553_991,
    -2.590_267_165_445_826_6,
    -2.302_585_092_994_045_5,
    -1.386_294_361_119_890_6,
    -std::f64::consts::LN_2,
    -0.287_682_072_451_780_9,
    0.0,
    0.916_290_731_874_155,
    1.609_437_912_434_100_3,
    2.014_903_020_542_265,
    std::f64::consts::LN_10,
];
/// Istio's default `istio_request_duration_milliseconds` bucket bounds,
/// in seconds (Istio's `DefaultHistogramBuckets`, milliseconds / 1000).
pub const ISTIO_BUCKETS: [f64; 19] = [
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0, 1800.0, 3600.0,
];
/// The union of goldengoose's and Istio's bounds, sorted: the histogram a
/// run reading both families draws once and sums into each.
pub const UNION_BOUNDS: [f64; 23] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Buckets of the union histogram (the last is +Inf).
pub const UNION: usize = UNION_BOUNDS.len() + 1;
/// Most bounds a table may have.
const MAX_BOUNDS: usize = UNION_BOUNDS.len();

/// A histogram's bucket bounds and their natural logs.
#[derive(Debug, Clone, Copy)]
struct BoundTable<'t> {
    le: &'t [f64],
    ln: &'t [f64],
}

/// Expected requests below which a run of tail buckets is drawn as one
/// Poisson count (split only when it is non-zero): it saves evaluating the
/// CDF at bounds almost no request reaches.
const TAIL_MEAN: f64 = 0.25;

/// One track's fixed properties for a run.
#[derive(Debug, Clone)]
pub struct TrackSpec {
    /// Pods serving the track.
    pub pods: u32,
    /// Pod age when traffic starts, seconds (fresh pods: their readiness
    /// time; production: days).
    pub age_at_start_s: f64,
    /// Mean log latency offset of the track's pods (pod-to-pod variation).
    pub latency_offset: f64,
    /// The regression, for the canary.
    pub regression: Option<Regression>,
}

/// Per step, per track: what was served.
#[derive(Debug, Clone, Copy, Default)]
pub struct Step {
    /// Requests sent to the track (all failed while it was down).
    pub requests: u64,
    /// Of those, server errors.
    pub errors: u64,
    /// Sum of the requests' latencies, seconds (if drawn).
    pub latency_sum: f64,
    /// The latency histogram over goldengoose's buckets (if drawn).
    pub buckets: [u64; BUCKETS],
    /// CPU cores a pod used on average over the step (if drawn).
    pub cpu_cores: f64,
    /// Of `cpu_cores`, the part spent serving requests (the rest is idle
    /// CPU): a pod's own share follows its own requests.
    pub cpu_busy_cores: f64,
    /// A pod's resident memory at the step's end, bytes (if drawn).
    pub memory_bytes: f64,
    /// The pods were down (crash loop): nothing was scraped.
    pub down: bool,
    /// Pods serving the track in the step ([`Generator::pods_at`] when it
    /// was generated).
    pub pods: u32,
}

/// Buckets of goldengoose's histogram (the last is +Inf).
pub const GOLDENGOOSE: usize = BUCKETS;

/// A generator's autoregressive state between steps: the load noise and
/// each track's pod drift.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArState {
    /// The load noise.
    pub load: f64,
    /// Per track, the drift of its pods' average.
    pub drift: [f64; 2],
}

/// Generates both tracks in lockstep (they share the load noise).
pub struct Generator<'a> {
    service: &'a Service,
    step_s: f64,
    tracks: [TrackSpec; 2],
    /// Traffic share of each track from a time on (seconds after traffic
    /// start), in the order the shares were set.
    shares: Vec<(f64, [f64; 2])>,
    load: f64,
    drift: [f64; 2],
    steps: [Vec<Step>; 2],
    needs: Draws,
    /// Per track, per step: the union histogram (only with `needs.union`).
    fine: [Vec<[u64; UNION]>; 2],
    /// Per track: pods started (+) or stopped (-) from a time on (seconds
    /// after traffic start), see [`Generator::add_pods`].
    pod_changes: [Vec<(f64, i64)>; 2],
    /// Per track: pods the raw series have room for.
    pod_slots: [u32; 2],
    ln_union: [f64; MAX_BOUNDS],
    /// The run-independent per-step factors (see [`Factors`]).
    factors: Factors,
}

/// Per-step factors that depend only on the scenario (the service, the
/// scrape step, each track's age at the traffic shift and regression),
/// never on a run's draws: the diurnal swing of the traffic, a fresh pod's
/// cold-start latency and memory warm-up, a slow start's decay, a crash
/// loop's down time. Every run of a scenario used to evaluate the same
/// `sin` and `exp` at every step; a thread keeps the table of its last
/// scenarios ([`SPARE`]) and a run reads it. Each entry is the very
/// expression the step evaluated before, with the same operands in the
/// same order, so the values are the same bits.
#[derive(Debug, Default)]
struct Factors {
    /// The inputs' bits ([`Factors::key`]): a table serves only a
    /// generator whose inputs have the same bits.
    key: Vec<u64>,
    /// Per step: the diurnal factor of the traffic.
    diurnal: Vec<f64>,
    /// Per track, per step: `1 + cold_latency * e^(-age / warm_up_s)`.
    cold: [Vec<f64>; 2],
    /// Per track, per step: a slow start's `1 + extra_latency *
    /// e^(-age / decay_s)` (empty for other regressions).
    slow: [Vec<f64>; 2],
    /// Per track, per step: the memory warm-up factor.
    warm: [Vec<f64>; 2],
    /// Per track, per step: a crash loop's pods are down (empty for other
    /// regressions).
    down: [Vec<bool>; 2],
}

impl Factors {
    /// The bits of everything the factors read.
    fn key(service: &Service, step_s: f64, tracks: &[TrackSpec; 2]) -> Vec<u64> {
        let fp = &service.fresh_pod;
        let mut key = vec![
            service.start_hour.to_bits(),
            service.diurnal_swing.to_bits(),
            step_s.to_bits(),
            fp.cold_latency.to_bits(),
            fp.warm_up_s.to_bits(),
            fp.memory_ratio.to_bits(),
        ];
        for spec in tracks {
            key.push(spec.age_at_start_s.to_bits());
            match spec.regression {
                Some(Regression::SlowStart {
                    extra_latency,
                    decay_s,
                    ..
                }) => key.extend([1, extra_latency.to_bits(), decay_s.to_bits()]),
                Some(Regression::CrashLoop { crash_after_s }) => {
                    key.extend([2, crash_after_s.to_bits(), 0]);
                }
                _ => key.extend([0, 0, 0]),
            }
        }
        key
    }

    /// Steps in the table.
    fn len(&self) -> usize {
        self.diurnal.len()
    }

    /// Extends the table through step `k` (1-based).
    #[cold]
    #[inline(never)]
    fn extend_to(&mut self, k: usize, svc: &Service, step_s: f64, tracks: &[TrackSpec; 2]) {
        let fp = &svc.fresh_pod;
        for k in self.len() + 1..=k {
            let t = k as f64 * step_s;
            let hour = svc.start_hour + t / 3600.0;
            self.diurnal
                .push(1.0 + svc.diurnal_swing * (std::f64::consts::TAU * hour / 24.0).sin());
            for (track, spec) in tracks.iter().enumerate() {
                let age = spec.age_at_start_s + t;
                self.cold[track].push(1.0 + fp.cold_latency * (-age / fp.warm_up_s).exp());
                self.warm[track]
                    .push(1.0 - (1.0 - fp.memory_ratio) * (-age / (10.0 * fp.warm_up_s)).exp());
                match spec.regression {
                    Some(Regression::SlowStart {
                        extra_latency,
                        decay_s,
                        ..
                    }) => self.slow[track].push(1.0 + extra_latency * (-age / decay_s).exp()),
                    Some(Regression::CrashLoop { crash_after_s }) => {
                        // up from readiness until the crash, then restarting
                        let cycle = crash_after_s + 30.0;
                        self.down[track].push(age % cycle > crash_after_s);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Per thread: what the generators of its last runs leave behind for the
/// next (their factors, most recent last, and their step buffers' room).
#[derive(Default)]
struct Spare {
    factors: Vec<Factors>,
    steps: Vec<[Vec<Step>; 2]>,
    fine: Vec<[Vec<[u64; UNION]>; 2]>,
}

/// Factor tables a thread keeps (scenarios it alternates between).
const SPARE_FACTORS: usize = 4;

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = std::cell::RefCell::default();
}

impl Drop for Generator<'_> {
    fn drop(&mut self) {
        let factors = std::mem::take(&mut self.factors);
        let mut steps = std::mem::take(&mut self.steps);
        let mut fine = std::mem::take(&mut self.fine);
        steps.iter_mut().for_each(Vec::clear);
        fine.iter_mut().for_each(Vec::clear);
        // a thread being torn down keeps nothing
        let _ = SPARE.try_with(|spare| {
            let Ok(mut spare) = spare.try_borrow_mut() else {
                return;
            };
            if !factors.key.is_empty() {
                spare.factors.retain(|f| f.key != factors.key);
                if spare.factors.len() >= SPARE_FACTORS {
                    spare.factors.remove(0);
                }
                spare.factors.push(factors);
            }
            if spare.steps.is_empty() {
                spare.steps.push(steps);
            }
            if spare.fine.is_empty() && fine.iter().any(|f| f.capacity() > 0) {
                spare.fine.push(fine);
            }
        });
    }
}

impl std::fmt::Debug for Generator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("steps", &self.len())
            .field("tracks", &self.tracks)
            .finish()
    }
}

/// Which per-step draws the queries (and the raw series) read: a draw no
/// query needs is skipped (it would only consume random numbers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Draws {
    /// The latency histogram over goldengoose's buckets.
    pub histogram: bool,
    /// The histogram over the union of goldengoose's and Istio's bounds
    /// (implies `histogram`: goldengoose's buckets are sums of it).
    pub union: bool,
    /// The latency sum.
    pub latency_sum: bool,
    /// CPU.
    pub cpu: bool,
    /// Memory.
    pub memory: bool,
}

impl Draws {
    /// Both sets of draws.
    pub fn or(self, o: Self) -> Self {
        Self {
            histogram: self.histogram || o.histogram || self.union || o.union,
            union: self.union || o.union,
            latency_sum: self.latency_sum || o.latency_sum,
            cpu: self.cpu || o.cpu,
            memory: self.memory || o.memory,
        }
    }
}

/// Index of the canary track.
pub const CANARY: usize = 0;
/// Index of the control track (baseline or production).
pub const CONTROL: usize = 1;

impl<'a> Generator<'a> {
    /// A generator making the per-step `draws` (what the run's queries
    /// read).
    pub fn new(service: &'a Service, step_s: f64, tracks: [TrackSpec; 2], draws: Draws) -> Self {
        let key = Factors::key(service, step_s, &tracks);
        let (factors, steps, fine) = SPARE
            .try_with(|spare| {
                let Ok(mut spare) = spare.try_borrow_mut() else {
                    return Default::default();
                };
                let factors = spare
                    .factors
                    .iter()
                    .position(|f| f.key == key)
                    .map(|i| spare.factors.remove(i));
                (factors, spare.steps.pop(), spare.fine.pop())
            })
            .unwrap_or_default();
        let factors = factors.unwrap_or(Factors {
            key,
            ..Factors::default()
        });
        Self {
            service,
            step_s,
            shares: Vec::with_capacity(4),
            load: 0.0,
            drift: [0.0; 2],
            steps: steps.unwrap_or_default(),
            needs: Draws::default().or(draws),
            fine: fine.unwrap_or_default(),
            factors,
            ln_union: UNION_BOUNDS.map(f64::ln),
            pod_changes: [Vec::new(), Vec::new()],
            pod_slots: [tracks[0].pods.max(1), tracks[1].pods.max(1)],
            tracks,
        }
    }

    /// Also draw what `draws` asks for (the raw series' needs); call
    /// before generating. Draws already made are unchanged.
    pub fn also_draw(&mut self, draws: Draws) {
        self.needs = self.needs.or(draws);
    }

    /// The draws made per step.
    pub fn draws(&self) -> Draws {
        self.needs
    }

    /// Step length, seconds.
    pub fn step_s(&self) -> f64 {
        self.step_s
    }

    /// The tracks (canary, control).
    pub fn tracks(&self) -> &[TrackSpec; 2] {
        &self.tracks
    }

    /// The service.
    pub fn service(&self) -> &Service {
        self.service
    }

    /// What `track` served, step by step (1-based step k at index k - 1).
    pub fn steps(&self, track: usize) -> &[Step] {
        &self.steps[track]
    }

    /// The union histogram of `track`, step by step (empty unless
    /// [`Draws::union`]).
    pub fn union_buckets(&self, track: usize) -> &[[u64; UNION]] {
        &self.fine[track]
    }

    /// Make room for `steps` steps, so a run's series grow without
    /// reallocating.
    pub fn reserve(&mut self, steps: usize) {
        for track in [CANARY, CONTROL] {
            self.steps[track].reserve(steps.saturating_sub(self.steps[track].len()));
        }
    }

    /// Steps generated so far.
    pub fn len(&self) -> usize {
        self.steps[0].len()
    }

    /// Whether nothing was generated yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests and server errors the canary served in step `k` (1-based),
    /// including requests that failed because its pods were down.
    pub fn canary_served(&self, k: usize) -> (u64, u64) {
        let s = &self.steps[CANARY][k - 1];
        (s.requests, s.errors)
    }

    /// From `from_s` seconds after traffic start on, each track (canary,
    /// control) gets this share of the requests (a fraction); steps not yet
    /// generated at or after `from_s` use it. Shares are set in time order.
    pub fn set_shares(&mut self, from_s: f64, shares: [f64; 2]) {
        self.shares.push((from_s, shares));
    }

    /// The autoregressive state after the last step generated.
    pub fn ar_state(&self) -> ArState {
        ArState {
            load: self.load,
            drift: self.drift,
        }
    }

    /// A generator with this one's first `k` steps whose autoregressive
    /// state after step `k` was `state` (recorded then): it goes on as
    /// this one would have from there, under the traffic shares and pod
    /// changes it is given (none yet).
    pub fn fork(&self, k: usize, state: ArState) -> Generator<'a> {
        let mut g = Generator::new(self.service, self.step_s, self.tracks.clone(), self.needs);
        g.pod_slots = self.pod_slots;
        for track in [CANARY, CONTROL] {
            g.steps[track].extend_from_slice(&self.steps[track][..k]);
            let fine = &self.fine[track];
            g.fine[track].extend_from_slice(&fine[..k.min(fine.len())]);
        }
        g.load = state.load;
        g.drift = state.drift;
        g
    }

    /// Generate up to step `k` (1-based) inclusive.
    pub fn advance_to(&mut self, k: usize, rng: &mut Xoshiro256PlusPlus) {
        while self.len() < k {
            self.next_step(rng);
        }
    }

    fn next_step(&mut self, rng: &mut Xoshiro256PlusPlus) {
        let svc = self.service;
        let k = self.len() + 1;
        let t = k as f64 * self.step_s;
        self.load = ar1(self.load, svc.load_noise, rng);
        let shares = self
            .shares
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map_or([0.0; 2], |(_, s)| *s);
        if self.factors.len() < k {
            self.factors.extend_to(k, svc, self.step_s, &self.tracks);
        }
        let diurnal = self.factors.diurnal[k - 1];
        let load_factor = self.load.exp();
        for track in [CANARY, CONTROL] {
            let serving = self.pods_at(track, k);
            let pods = f64::from(serving);
            let spec = &self.tracks[track];
            // the average of `pods` independent drifts
            let drift_sd = scenarios::Ar1 {
                sd: svc.pod_drift.sd / pods.sqrt(),
                rho: svc.pod_drift.rho,
            };
            self.drift[track] = ar1(self.drift[track], drift_sd, rng);
            let age = spec.age_at_start_s + t;
            let reg = spec.regression;
            let expected = svc.request_rate * shares[track] * diurnal * load_factor * self.step_s;

            let mut median = svc.latency_median_ms / 1000.0
                * (0.5 * self.load + self.drift[track] + spec.latency_offset).exp()
                * self.factors.cold[track][k - 1];
            let mut sigma = svc.latency_sigma;
            let mut error_rate = svc.error_rate;
            let mut cpu_per_request = svc.cpu_ms_per_request / 1000.0;
            let mut tail = (0.0, 0.0);
            let mut leak_bytes = 0.0;
            let mut down = false;
            match reg {
                Some(Regression::Latency { increase }) => median *= 1.0 + increase,
                Some(Regression::LatencyTail { fraction, added_ms }) => {
                    tail = (fraction, added_ms / 1000.0)
                }
                Some(Regression::Variance { sigma: s }) => sigma = s,
                Some(Regression::Errors { error_rate: e }) => error_rate = e,
                Some(Regression::Cpu { increase }) => cpu_per_request *= 1.0 + increase,
                Some(Regression::MemoryLeak { mib_per_minute }) => {
                    leak_bytes = mib_per_minute * 1_048_576.0 * age / 60.0
                }
                Some(Regression::SlowStart { .. }) => median *= self.factors.slow[track][k - 1],
                Some(Regression::CrashLoop { .. }) => down = self.factors.down[track][k - 1],
                None => {}
            }

            // built in its place in the track's steps (no copy of the
            // histogram)
            self.steps[track].push(Step {
                down,
                pods: serving,
                ..Step::default()
            });
            let Some(step) = self.steps[track].last_mut() else {
                unreachable!("a step was just pushed")
            };
            if down {
                // everything sent to the canary fails; nothing is scraped
                step.requests = poisson(expected, rng);
                step.errors = step.requests;
                if self.needs.union {
                    self.fine[track].push([0; UNION]);
                }
            } else {
                let needs = self.needs;
                let requests = if needs.union {
                    let mut fine = [0u64; UNION];
                    let table = BoundTable {
                        le: &UNION_BOUNDS,
                        ln: &self.ln_union,
                    };
                    let n = fill_histogram(&mut fine, table, expected, median, sigma, tail, rng);
                    fold_buckets(&fine, &UNION_BOUNDS, &mut step.buckets, &DURATION_BUCKETS);
                    self.fine[track].push(fine);
                    n
                } else if needs.histogram {
                    fill_histogram(
                        &mut step.buckets,
                        GOLDENGOOSE_TABLE,
                        expected,
                        median,
                        sigma,
                        tail,
                        rng,
                    )
                } else {
                    poisson(expected, rng)
                };
                step.requests = requests;
                step.errors = binomial(requests, error_rate, rng);
                if needs.latency_sum {
                    step.latency_sum = latency_sum(requests, median, sigma, tail, rng);
                }
                if needs.cpu {
                    let busy = requests as f64 * cpu_per_request / self.step_s / pods;
                    let noise = 1.0 + 0.02 * gauss(rng);
                    step.cpu_cores = (svc.cpu_idle_cores + busy) * noise;
                    step.cpu_busy_cores = busy * noise;
                }
                if needs.memory {
                    let warm = self.factors.warm[track][k - 1];
                    step.memory_bytes =
                        svc.memory_mib * 1_048_576.0 * warm * (1.0 + 0.003 * gauss(rng))
                            + leak_bytes;
                }
            }
        }
    }
}

// ---- pod counts that change during a run (Argo's setCanaryScale): a
// hook for the peers' driver; nothing changes for a run that never calls it.
impl Generator<'_> {
    /// From `from_s` seconds after traffic start on, `track` has `delta`
    /// more (or fewer) pods serving its share; steps not yet generated at
    /// or after `from_s` see them (each pod's drift averages over fewer or
    /// more pods, CPU spreads over them).
    pub fn add_pods(&mut self, track: usize, from_s: f64, delta: i64) {
        self.pod_changes[track].push((from_s, delta));
    }

    /// The changes of `track`'s pods ([`Generator::add_pods`]), in the
    /// order they were added.
    pub fn pod_changes(&self, track: usize) -> &[(f64, i64)] {
        &self.pod_changes[track]
    }

    /// Replace the changes of `track`'s pods by `changes` (steps already
    /// generated keep the pods they had).
    pub fn set_pod_changes(&mut self, track: usize, changes: &[(f64, i64)]) {
        let list = &mut self.pod_changes[track];
        list.clear();
        list.extend_from_slice(changes);
    }

    /// Room for `slots` pods of `track` in the raw series (at least its
    /// pods at the start): call before the series are scraped.
    pub fn reserve_pods(&mut self, track: usize, slots: u32) {
        self.pod_slots[track] = self.pod_slots[track].max(slots);
    }

    /// Pods the raw series of `track` have room for.
    pub fn pod_slots(&self, track: usize) -> u32 {
        self.pod_slots[track]
    }

    /// Whether a step of `track` may be down ([`Step::down`]): only a
    /// crash-looping canary's are.
    pub fn may_be_down(&self, track: usize) -> bool {
        matches!(
            self.tracks[track].regression,
            Some(Regression::CrashLoop { .. })
        )
    }

    /// Pods serving `track` in step `k` (1-based), at least 1 and at most
    /// its slots: those it was generated with, or for a step not yet
    /// generated, those the changes so far give.
    pub fn pods_at(&self, track: usize, k: usize) -> u32 {
        match self.steps[track].get(k.wrapping_sub(1)) {
            Some(step) => step.pods,
            None => self.pods_with(track, &self.pod_changes[track], k),
        }
    }

    /// Pods serving `track` in step `k` under the pod changes `changes`.
    pub fn pods_with(&self, track: usize, changes: &[(f64, i64)], k: usize) -> u32 {
        let t = k as f64 * self.step_s;
        let n = changes
            .iter()
            .filter(|(from, _)| *from <= t)
            .fold(i64::from(self.tracks[track].pods), |n, (_, d)| n + d);
        (n.max(1) as u32).min(self.pod_slots[track])
    }
}

/// Prometheus's `histogram_quantile` on per-bucket counts (the last is +Inf).
pub fn histogram_quantile(q: f64, counts: &[u64; BUCKETS]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    // a whole count reaches the rank exactly when it reaches its ceiling:
    // integer compares instead of a conversion per bucket
    let reach = rank.ceil() as u64;
    let mut cumulative = 0u64;
    for (b, &c) in counts.iter().enumerate() {
        let below = cumulative;
        cumulative += c;
        if cumulative >= reach {
            if b == BUCKETS - 1 {
                // in the +Inf bucket: Prometheus answers the highest bound
                return DURATION_BUCKETS[BUCKETS - 2];
            }
            let upper = DURATION_BUCKETS[b];
            let lower = if b == 0 { 0.0 } else { DURATION_BUCKETS[b - 1] };
            if c == 0 {
                return upper;
            }
            return lower + (upper - lower) * (rank - below as f64) / c as f64;
        }
    }
    DURATION_BUCKETS[BUCKETS - 2]
}

/// Per-request latency CDF at a bucket bound whose log is `ln_x`:
/// log-normal, optionally with a fraction shifted by a fixed delay.
fn latency_cdf(x: f64, ln_x: f64, ln_median: f64, sigma: f64, tail: (f64, f64)) -> f64 {
    let lognormal = |ln_v: f64| {
        if sigma == 0.0 {
            return if ln_v >= ln_median { 1.0 } else { 0.0 };
        }
        let z = (ln_v - ln_median) / sigma;
        // beyond 8.3 sd the normal tail is below 1e-16
        if z < -8.3 {
            0.0
        } else if z > 8.3 {
            1.0
        } else {
            judge::stats::pnorm(z)
        }
    };
    let (f, add) = tail;
    let base = lognormal(ln_x);
    if f == 0.0 {
        return base;
    }
    let shifted = if x > add {
        lognormal((x - add).ln())
    } else {
        0.0
    };
    (1.0 - f) * base + f * shifted
}

/// [`judge::stats::pnorm`] for |`x`| <= 8.3, inlined where the histogram
/// reads it: that function's expressions on the same operands (same bits;
/// a test compares them), without its branch for |x| > 37.
#[inline]
#[allow(clippy::excessive_precision, clippy::unreadable_literal)]
fn pnorm_within(x: f64) -> f64 {
    let z = x.abs();
    let e = (-z * z / 2.0).exp();
    let tail = if z < 7.07106781186547 {
        const NUM: [f64; 7] = [
            3.52624965998911e-02,
            0.700383064443688,
            6.37396220353165,
            33.912866078383,
            112.079291497871,
            221.213596169931,
            220.206867912376,
        ];
        const DEN: [f64; 8] = [
            8.83883476483184e-02,
            1.75566716318264,
            16.064177579207,
            86.7807322029461,
            296.564248779674,
            637.333633378831,
            793.826512519948,
            440.413735824752,
        ];
        let horner = |c: &[f64]| c.iter().fold(0.0, |acc, &k| acc * z + k);
        e * horner(&NUM) / horner(&DEN)
    } else {
        let b = z + 1.0 / (z + 2.0 / (z + 3.0 / (z + 4.0 / (z + 0.65))));
        e / b / 2.506628274631
    };
    if x > 0.0 { 1.0 - tail } else { tail }
}

/// Bound on |[`near_cdf`]`(z)` - [`pnorm_within`]`(z)`| for |z| <= 8.3.
/// The Taylor polynomial through d^4 about the nearest z_i = i / 16
/// (|d| <= 1/32) leaves at most |d|^5 / 5! max |Phi^(5)| = 2^-25 / 120 *
/// 3 phi(0) < 3.0e-10 (Phi^(5) = (z^4 - 6 z^2 + 3) phi(z), largest at 0);
/// the table's Phi(z_i) are `pnorm_within`'s own values, within 1e-15 of
/// the true ones, as is `pnorm_within(z)`; the coefficients' and the
/// evaluation's roundings are some 1e-16. A test checks 3.1e-10 on
/// millions of arguments; the constant has three times that.
const NEAR_CDF_ERROR: f64 = 1e-9;
const _: () = assert!(NEAR_CDF_ERROR >= 3.0 * 3.1e-10);

/// Rows of [`NEAR_CDF`]: z_i = i / 16 for i in -133..=133 (every |z| <=
/// 8.3 rounds to one of them).
const NEAR_ROWS: usize = 267;

/// Per z_i = (row - 133) / 16: Phi(z_i) and the Taylor coefficients of
/// Phi about z_i, Phi^(k)(z_i) / k! for k = 1..=4 (phi, -z phi / 2,
/// (z^2 - 1) phi / 6, z (3 - z^2) phi / 24).
type NearTable = [[f64; 5]; NEAR_ROWS];

static NEAR_CDF: std::sync::LazyLock<NearTable> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|row| {
        let z = (row as f64 - 133.0) / 16.0;
        let phi = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        [
            pnorm_within(z),
            phi,
            -z * phi / 2.0,
            (z * z - 1.0) * phi / 6.0,
            z * (3.0 - z * z) * phi / 24.0,
        ]
    })
});

/// The standard normal CDF within [`NEAR_CDF_ERROR`] of [`pnorm_within`]
/// for |`z`| <= 8.3, and of [`LazyCdf::get`]'s 0 or 1 beyond it, from
/// `table` ([`NEAR_CDF`]): a row and four multiply-adds instead of an
/// `exp` and a rational function; None where round(16 z) has no row (|z|
/// beyond 8.34, or NaN), so that the row's lookup is the only test of z.
/// Beyond 8.3 the Taylor step's bound holds as well (it is largest at 0)
/// and Phi is within Phi(-8.3) < 5.3e-17 of 0 or 1. Not `pnorm_within`'s
/// bits: only for deciding comparisons with a margin.
#[inline]
fn near_cdf(table: &NearTable, z: f64) -> Option<f64> {
    // i = round(16 z) by adding 1.5 2^52 (see `sample::exp_neg_near`);
    // z - i / 16 is exact (a multiple of z's ulp below 1/16). Where |16 z|
    // is beyond 2^51 (or z is NaN or infinite) the sum's bits are not
    // those of 1.5 2^52 + i for any row's i, so the lookup fails.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let shifted = z * 16.0 + ROUND;
    let row = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(133);
    let &[p, a1, a2, a3, a4] = table.get(row as usize)?;
    let d = z - (shifted - ROUND) / 16.0;
    Some(p + d * (a1 + d * (a2 + d * (a3 + d * a4))))
}

/// The latency CDF at the bucket bounds of a step: the exact value or a
/// near one, each evaluated where the draws need it (a step's draw
/// usually needs only the bounds near the median). [`fill_histogram`]
/// keeps the values it reads again.
struct LazyCdf<'t> {
    table: BoundTable<'t>,
    near: &'static NearTable,
    ln_median: f64,
    sigma: f64,
    tail: (f64, f64),
    /// No tail and a spread: the CDF is the log-normal's, computed here
    /// with [`latency_cdf`]'s own expression (most steps).
    plain: bool,
    /// `sigma` where `plain`, else NaN: [`LazyCdf::near`]'s z is then NaN,
    /// which [`near_cdf`] turns down with the same test as a z beyond its
    /// table.
    near_sigma: f64,
}

impl<'t> LazyCdf<'t> {
    fn new(table: BoundTable<'t>, median: f64, sigma: f64, tail: (f64, f64)) -> Self {
        let plain = tail.0 == 0.0 && sigma != 0.0;
        Self {
            table,
            near: &NEAR_CDF,
            ln_median: median.ln(),
            sigma,
            tail,
            plain,
            near_sigma: if plain { sigma } else { f64::NAN },
        }
    }

    /// CDF at bound `b` (the +Inf bound, the table's length, is 1).
    #[inline]
    fn get(&self, b: usize) -> f64 {
        let Some(&ln_x) = self.table.ln.get(b) else {
            return 1.0;
        };
        if self.plain {
            // latency_cdf with tail.0 == 0 and sigma != 0: its log-normal
            // at ln_x, the same operations on the same operands
            let z = (ln_x - self.ln_median) / self.sigma;
            if z < -8.3 {
                0.0
            } else if z > 8.3 {
                1.0
            } else {
                pnorm_within(z)
            }
        } else {
            latency_cdf(
                self.table.le[b],
                ln_x,
                self.ln_median,
                self.sigma,
                self.tail,
            )
        }
    }

    /// CDF at bound `b` (below the +Inf bound), whose log `ln_x` is
    /// `table.ln[b]`, within [`NEAR_CDF_ERROR`] of [`LazyCdf::get`]'s:
    /// [`near_cdf`] for the log-normal within its table (z the same as
    /// `get`'s), else [`LazyCdf::near_else`].
    #[inline(always)]
    fn near(&self, b: usize, ln_x: f64) -> f64 {
        debug_assert_eq!(ln_x.to_bits(), self.table.ln[b].to_bits());
        let z = (ln_x - self.ln_median) / self.near_sigma;
        match near_cdf(self.near, z) {
            Some(f) => f,
            None => self.near_else(b, ln_x),
        }
    }

    /// [`LazyCdf::near`] beyond the plain log-normal's table: a step with
    /// a tail (fraction in (0, 1]) and a spread gets [`latency_cdf`]'s
    /// mixture of two log-normals with [`near_cdf`] in place of
    /// `pnorm_within` (the same z's, the same clamps beyond 8.3 sd): each
    /// term is within NEAR_CDF_ERROR / 3 of the exact one's, so their
    /// mixture with weights 1 - f and f, computed alike, is too, but for
    /// its three roundings (2^-53 of values at most 1). Anything else
    /// (|z| beyond 8.3 in a plain step, no spread, a NaN) is `get` itself.
    #[inline(never)]
    fn near_else(&self, b: usize, ln_x: f64) -> f64 {
        let (f, add) = self.tail;
        let lognormal = |ln_v: f64| {
            let z = (ln_v - self.ln_median) / self.sigma;
            if z < -8.3 {
                Some(0.0)
            } else if z > 8.3 {
                Some(1.0)
            } else {
                near_cdf(self.near, z)
            }
        };
        if self.sigma != 0.0 && f > 0.0 && f <= 1.0 {
            let x = self.table.le[b];
            let shifted = if x > add {
                lognormal((x - add).ln())
            } else {
                Some(0.0)
            };
            if let (Some(base), Some(shifted)) = (lognormal(ln_x), shifted) {
                return (1.0 - f) * base + f * shifted;
            }
        }
        self.get(b)
    }

    /// The lower run's test at bound `b` from the exact CDF, where the near
    /// one left it open: the run ends at `b` where `lambda * F(b) <=
    /// TAIL_MEAN`.
    #[cold]
    #[inline(never)]
    fn lower_run_ends_exact(&self, b: usize, lambda: f64) -> bool {
        #[cfg(test)]
        tests::UNDECIDED.with(|c| c.set(c.get() + 1));
        lambda * self.get(b) <= TAIL_MEAN
    }

    /// The upper run's test at bound `b` from the exact CDF, where the near
    /// one left it open: the run starts above `b` unless `lambda * (1 -
    /// F(b)) > TAIL_MEAN`.
    #[cold]
    #[inline(never)]
    fn upper_run_goes_on_exact(&self, b: usize, lambda: f64) -> bool {
        #[cfg(test)]
        tests::UNDECIDED.with(|c| c.set(c.get() + 1));
        lambda * (1.0 - self.get(b)) > TAIL_MEAN
    }

    /// The exact mean of buckets `first..=last`: `lambda * (F(last) -
    /// F(first - 1)).max(0.0)` with F 0 below bound 0 and 1 at the +Inf
    /// bound (`get`'s).
    fn mean_exact(&self, (first, last): (usize, usize), lambda: f64) -> f64 {
        let hi = self.get(last);
        let lo = first.checked_sub(1).map_or(0.0, |b| self.get(b));
        lambda * (hi - lo).max(0.0)
    }

    /// [`poisson_mass`]'s PTRS draw where the near mean could not decide
    /// it: from the exact mean, the generator restored.
    #[cold]
    #[inline(never)]
    fn poisson_exact(
        &self,
        buckets: (usize, usize),
        lambda: f64,
        rng: &mut Xoshiro256PlusPlus,
    ) -> u64 {
        #[cfg(test)]
        tests::UNDECIDED.with(|c| c.set(c.get() + 1));
        poisson(self.mean_exact(buckets, lambda), rng)
    }

    /// [`poisson_mass`]'s draw from its uniform `u` where the near CDF
    /// could not decide it: the exact mean of `buckets`, inside (0,
    /// PTRS_FROM) as the near one showed.
    #[cold]
    #[inline(never)]
    fn poisson_given_exact(&self, buckets: (usize, usize), lambda: f64, u: f64) -> u64 {
        #[cfg(test)]
        tests::UNDECIDED.with(|c| c.set(c.get() + 1));
        let mean = self.mean_exact(buckets, lambda);
        debug_assert!(mean > 0.0 && mean < PTRS_FROM, "{mean}");
        poisson_given(mean, u)
    }
}

/// `poisson(lambda * (F(last) - F(first - 1)).max(0.0))` on the exact
/// CDF for the buckets `first..=last` (F is 0 below bound 0 and 1 at the
/// +Inf bound), given the near values `f_upper` and `f_lower` (each
/// within [`NEAR_CDF_ERROR`] of the exact one, or 0 or 1 exactly);
/// `slack` is [`fill_histogram`]'s `mean_slack`, at least the distance of
/// the two means, rounding included (for means above 20 too: each product
/// rounds by at most 2^-53 lambda, within its lambda 5e-16).
///
/// Where the near mean puts the exact one surely inside (0, PTRS_FROM),
/// the exact draw is an inversion of one uniform whose outcome depends on
/// the mean only through comparisons: that uniform is drawn and
/// [`poisson_near`] decides it, or where it cannot, the exact mean does
/// (the same uniform, the same draw). Where it puts it surely at or above
/// 20, PTRS's outcome too depends on the mean only through comparisons and
/// a floor: [`poisson_ptrs_near`] decides them, or where it cannot (17 of
/// 869K draws in the 100-run catalog), the generator is put back as it was
/// and the exact mean draws (the same random numbers, the same draw). A
/// mean that may be zero (no uniform is drawn) or sits within `slack` of
/// 20 is computed exactly.
#[inline(always)]
fn poisson_mass(
    cdf: &LazyCdf<'_>,
    buckets: (usize, usize),
    (f_lower, f_upper): (f64, f64),
    lambda: f64,
    slack: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> u64 {
    let m = lambda * (f_upper - f_lower);
    if m - slack > 0.0 && m + slack < PTRS_FROM {
        let u: f64 = rng.random();
        return match poisson_near(m, slack, u) {
            Some(k) => k,
            None => cdf.poisson_given_exact(buckets, lambda, u),
        };
    }
    if m - slack >= PTRS_FROM {
        let saved = rng.clone();
        if let Some(k) = poisson_ptrs_near(m, slack, rng) {
            return k;
        }
        *rng = saved;
        return cdf.poisson_exact(buckets, lambda, rng);
    }
    poisson(cdf.mean_exact(buckets, lambda), rng)
}

/// One step's latency histogram: fills `out` and returns the request
/// count, for Poisson(`lambda`) requests whose latencies follow
/// [`latency_cdf`].
///
/// Drawing the count and then a multinomial is the same joint law as
/// drawing every bucket independently as Poisson(lambda * its mass)
/// (Poisson splitting), which costs a few draws whatever the traffic. The
/// buckets near the median get one Poisson draw each; the runs of buckets
/// beyond them on either side, each holding at most `TAIL_MEAN` expected
/// requests, get one Poisson draw per run, split over the run's buckets by
/// conditional binomials only when it is non-zero. Every draw is exact, so
/// the counts are exact draws from the per-request model.
///
/// The CDF at the bounds reaches the draws only through comparisons
/// (where the runs end, each inversion's search, PTRS's comparisons and
/// floor): [`near_cdf`] decides them where its proven margin clears, and
/// the exact CDF only where it does not (376 of 1.23M inversions, 17 of
/// 869K PTRS draws and none of the run ends in the 100-run catalog), at a
/// mean within the margin of 0 or 20, and in the splits of a tail run
/// (whose binomials compute with it); the draws and the random numbers
/// used are the exact CDF's (a test compares the two fills).
///
/// `out` has one bucket per bound of `table` plus +Inf; with goldengoose's
/// table the draws are those of every earlier version.
#[inline(never)]
fn fill_histogram(
    out: &mut [u64],
    table: BoundTable<'_>,
    lambda: f64,
    median: f64,
    sigma: f64,
    tail: (f64, f64),
    rng: &mut Xoshiro256PlusPlus,
) -> u64 {
    // (indices below `ln`'s length, as `bounds`, are known in range: the
    // walks' loops carry no bounds checks)
    let ln = table.ln;
    let bounds = ln.len();
    let buckets = bounds + 1;
    debug_assert_eq!(out.len(), buckets);
    debug_assert!(out.iter().all(|&c| c == 0), "{out:?}");
    debug_assert_eq!(table.le.len(), bounds);
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    let cdf = LazyCdf::new(table, median, sigma, tail);
    // start at the bound nearest the median, where the mass is
    let start = ln.partition_point(|&l| l < cdf.ln_median).min(bounds - 1);
    // The near CDF at the bounds the walks reach, which are all the bounds
    // the draws read (the +Inf bound's is 1); the draws and the run tests
    // fall back to the exact one where they need it.
    //
    // A run's test compares lambda F or lambda (1 - F) with TAIL_MEAN:
    // from a near F within err = NEAR_CDF_ERROR the compared mean is
    // within lambda (err + 2^-54) of the exact one's real value, and each
    // product rounds by 2^-53 of itself (the exact one's, near the
    // threshold, by less than 1e-16); `run_slack` is twice that, so a
    // decided test is the exact one's (a mean beyond the threshold cannot
    // round back onto it).
    //
    // The near values live in `out` (as bits) until each bucket's count
    // replaces its value: the walks write bounds lo..=hi, every one of
    // them a single bucket but lo, which is read and cleared before the
    // lower run's split; `out` comes in cleared (the splits add to it),
    // so nothing else needs initialising.
    let near = &mut out[..buckets];
    let run_slack = lambda * (2.0 * NEAR_CDF_ERROR + 1e-15) + 1e-14;
    // lower run: buckets 0..=lo (mass F(lo)); None if every bucket from 0
    // is drawn on its own
    let mut lo = None;
    for (b, (slot, &ln_x)) in near[..=start]
        .iter_mut()
        .zip(&ln[..=start])
        .enumerate()
        .rev()
    {
        let f = cdf.near(b, ln_x);
        *slot = f.to_bits();
        let m = lambda * f;
        let ends = if m + run_slack < TAIL_MEAN {
            true
        } else if m - run_slack > TAIL_MEAN {
            false
        } else {
            cdf.lower_run_ends_exact(b, lambda)
        };
        if ends {
            lo = Some(b);
            break;
        }
    }
    // upper run: buckets hi+1..buckets (mass 1 - F(hi)); hi = bounds means
    // there is none
    let upper_goes_on = |b: usize, f: f64| {
        let m = lambda * (1.0 - f);
        if m + run_slack < TAIL_MEAN {
            false
        } else if m - run_slack > TAIL_MEAN {
            true
        } else {
            cdf.upper_run_goes_on_exact(b, lambda)
        }
    };
    let mut hi = start;
    if upper_goes_on(start, f64::from_bits(near[start])) {
        hi = bounds;
        let above = near[start + 1..bounds]
            .iter_mut()
            .zip(&ln[start + 1..])
            .zip(start + 1..);
        for ((slot, &ln_x), b) in above {
            let f = cdf.near(b, ln_x);
            *slot = f.to_bits();
            if !upper_goes_on(b, f) {
                hi = b;
                break;
            }
        }
    }
    // A bucket's near mass (a difference of two near values, or of one
    // and 0 or 1) is within 2 NEAR_CDF_ERROR plus two roundings (2^-53,
    // values about [0, 1]) of the exact one, so the real means are within
    // lambda (2 err + 2.3e-16) of each other; the products round by 2^-53
    // of means below about 20 (5e-15 both). `mean_slack` is twice that.
    // For PTRS (means from 20, up to lambda) the products round by at most
    // 2^-53 lambda each, so the means are within lambda (2 err + 4.5e-16),
    // under `mean_slack` itself, which `poisson_ptrs_near` takes as its
    // bound.
    let mean_slack = lambda * (4.0 * NEAR_CDF_ERROR + 5e-16) + 1e-14;
    let mut total = 0;
    // (lambda * F(lo) is lambda * (F(lo) - 0).max(0), F >= 0)
    if hi == bounds {
        // (the +Inf bound's)
        out[bounds] = 1f64.to_bits();
    }
    let mut below = 0.0;
    let first_single = match lo {
        Some(lo) => {
            below = f64::from_bits(std::mem::take(&mut out[lo]));
            let mass = (0.0, below);
            let n = poisson_mass(&cdf, (0, lo), mass, lambda, mean_slack, rng);
            if n > 0 {
                // split downwards: bucket b's share of buckets 0..=b
                let mut remaining = n;
                let mut upto = cdf.get(lo);
                for b in (1..=lo).rev() {
                    let below = cdf.get(b - 1);
                    let p = if upto <= 0.0 {
                        1.0
                    } else {
                        ((upto - below) / upto).clamp(0.0, 1.0)
                    };
                    let c = binomial(remaining, p, rng);
                    out[b] = c;
                    remaining -= c;
                    if remaining == 0 {
                        break;
                    }
                    upto = below;
                }
                out[0] += remaining;
            }
            total += n;
            lo + 1
        }
        None => 0,
    };
    for (slot, b) in out[first_single..=hi].iter_mut().zip(first_single..) {
        let upto = f64::from_bits(*slot);
        let c = poisson_mass(&cdf, (b, b), (below, upto), lambda, mean_slack, rng);
        *slot = c;
        total += c;
        below = upto;
    }
    if hi < bounds {
        let mass = (below, 1.0);
        let n = poisson_mass(&cdf, (hi + 1, bounds), mass, lambda, mean_slack, rng);
        if n > 0 {
            // split upwards: bucket b's share of buckets b..
            let mut below = cdf.get(hi);
            let mut remaining = n;
            for (b, slot) in out.iter_mut().enumerate().take(buckets - 1).skip(hi + 1) {
                let left = 1.0 - below;
                let upto = cdf.get(b);
                let p = if left <= 0.0 {
                    1.0
                } else {
                    ((upto - below) / left).clamp(0.0, 1.0)
                };
                let c = binomial(remaining, p, rng);
                *slot = c;
                remaining -= c;
                below = upto;
                if remaining == 0 {
                    break;
                }
            }
            out[buckets - 1] += remaining;
        }
        total += n;
    }
    total
}

/// goldengoose's bounds as a table.
const GOLDENGOOSE_TABLE: BoundTable<'static> = BoundTable {
    le: &DURATION_BUCKETS,
    ln: &LN_BUCKETS,
};

/// Sums a histogram over `fine` bounds into one over `coarse` bounds, every
/// coarse bound being a fine one (the last bucket of each is +Inf).
pub fn fold_buckets(fine: &[u64], fine_le: &[f64], coarse: &mut [u64], coarse_le: &[f64]) {
    coarse.iter_mut().for_each(|c| *c = 0);
    let mut j = 0;
    for (i, &c) in fine.iter().enumerate() {
        // fine bucket i holds (le[i-1], le[i]]: it goes to the first coarse
        // bucket whose bound is at or above le[i]
        let le = fine_le.get(i).copied().unwrap_or(f64::INFINITY);
        while j < coarse_le.len() && coarse_le[j] < le {
            j += 1;
        }
        coarse[j] += c;
    }
}

/// Sum of `n` latencies: exact draws for few requests, the normal limit
/// (with the log-normal's mean and variance) for many.
fn latency_sum(
    n: u64,
    median: f64,
    sigma: f64,
    tail: (f64, f64),
    rng: &mut Xoshiro256PlusPlus,
) -> f64 {
    let draw = |rng: &mut Xoshiro256PlusPlus| {
        let base = median * (sigma * gauss(rng)).exp();
        if tail.0 > 0.0 && rng.random_bool(tail.0.min(1.0)) {
            base + tail.1
        } else {
            base
        }
    };
    if n <= 30 {
        return (0..n).map(|_| draw(rng)).sum();
    }
    let s2 = sigma * sigma;
    let mean_ln = median * (s2 / 2.0).exp();
    let var_ln = (s2.exp() - 1.0) * median * median * s2.exp();
    let (f, add) = tail;
    let mean = mean_ln + f * add;
    let var = var_ln + f * (1.0 - f) * add * add;
    let nf = n as f64;
    (nf * mean + (nf * var).sqrt() * gauss(rng)).max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sample::tests::chi_square_limit;
    use rand_distr::{Distribution, Poisson};

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let mut c = [0u64; BUCKETS];
        // 100 requests: 50 in (0.025, 0.05], 50 in (0.05, 0.075]
        c[5] = 50;
        c[6] = 50;
        assert!((histogram_quantile(0.5, &c) - 0.05).abs() < 1e-12);
        assert!((histogram_quantile(0.75, &c) - 0.0625).abs() < 1e-12);
        c[BUCKETS - 1] = 900;
        assert_eq!(histogram_quantile(0.99, &c), 10.0);
        assert!(histogram_quantile(0.5, &[0; BUCKETS]).is_nan());
    }

    /// The factor tables hold the expressions the step used to evaluate,
    /// bit for bit (the old expressions, written out here).
    #[test]
    fn factors_are_the_expressions_they_replace() {
        let svc = Service {
            diurnal_swing: 0.3,
            start_hour: 9.5,
            ..Service::default()
        };
        let step_s = 10.0;
        let canary = |regression| TrackSpec {
            pods: 2,
            age_at_start_s: 45.0,
            latency_offset: 0.0,
            regression,
        };
        let control = TrackSpec {
            pods: 3,
            age_at_start_s: 7.0 * 86_400.0,
            latency_offset: 0.0,
            regression: None,
        };
        for regression in [
            Some(Regression::SlowStart {
                extra_ready_s: 30.0,
                extra_latency: 0.8,
                decay_s: 400.0,
            }),
            Some(Regression::CrashLoop {
                crash_after_s: 95.0,
            }),
            None,
        ] {
            let tracks = [canary(regression), control.clone()];
            let mut f = Factors::default();
            f.extend_to(200, &svc, step_s, &tracks);
            f.extend_to(700, &svc, step_s, &tracks);
            assert_eq!(f.len(), 700);
            let fp = &svc.fresh_pod;
            for k in 1..=700 {
                let t = k as f64 * step_s;
                let hour = svc.start_hour + t / 3600.0;
                let diurnal = 1.0 + svc.diurnal_swing * (std::f64::consts::TAU * hour / 24.0).sin();
                assert_eq!(f.diurnal[k - 1].to_bits(), diurnal.to_bits());
                for (track, spec) in tracks.iter().enumerate() {
                    let age = spec.age_at_start_s + t;
                    let cold = 1.0 + fp.cold_latency * (-age / fp.warm_up_s).exp();
                    assert_eq!(f.cold[track][k - 1].to_bits(), cold.to_bits());
                    let warm = 1.0 - (1.0 - fp.memory_ratio) * (-age / (10.0 * fp.warm_up_s)).exp();
                    assert_eq!(f.warm[track][k - 1].to_bits(), warm.to_bits());
                    match spec.regression {
                        Some(Regression::SlowStart {
                            extra_latency,
                            decay_s,
                            ..
                        }) => {
                            let slow = 1.0 + extra_latency * (-age / decay_s).exp();
                            assert_eq!(f.slow[track][k - 1].to_bits(), slow.to_bits());
                        }
                        Some(Regression::CrashLoop { crash_after_s }) => {
                            let down = age % (crash_after_s + 30.0) > crash_after_s;
                            assert_eq!(f.down[track][k - 1], down, "step {k}");
                        }
                        _ => {
                            assert!(f.slow[track].is_empty() && f.down[track].is_empty());
                        }
                    }
                }
            }
            // the crash loop's table has both states
            if let Some(Regression::CrashLoop { .. }) = regression {
                assert!(f.down[CANARY].contains(&true) && f.down[CANARY].contains(&false));
            }
        }
    }

    /// A generator that finds its thread's tables and buffers from an
    /// earlier run draws exactly what a fresh one draws, and a different
    /// scenario on the same thread gets its own tables.
    #[test]
    fn a_generator_reusing_its_threads_tables_draws_the_same_steps() {
        use rand::SeedableRng;
        fn draw(svc: &Service, regression: Option<Regression>, seed: u64) -> Vec<String> {
            let tracks = [
                TrackSpec {
                    pods: 2,
                    age_at_start_s: 45.0,
                    latency_offset: 0.01,
                    regression,
                },
                TrackSpec {
                    pods: 3,
                    age_at_start_s: 45.0,
                    latency_offset: -0.02,
                    regression: None,
                },
            ];
            let draws = Draws {
                histogram: true,
                union: true,
                latency_sum: true,
                cpu: true,
                memory: true,
            };
            let mut g = Generator::new(svc, 10.0, tracks, draws);
            g.set_shares(0.0, [0.1, 0.1]);
            g.set_shares(300.0, [0.5, 0.5]);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            g.advance_to(150, &mut rng);
            let mut out: Vec<String> = [CANARY, CONTROL]
                .iter()
                .flat_map(|&t| g.steps(t).iter().map(|s| format!("{s:?}")))
                .collect();
            out.extend(
                [CANARY, CONTROL]
                    .iter()
                    .flat_map(|&t| g.union_buckets(t).iter().map(|b| format!("{b:?}"))),
            );
            out.push(format!("{:?}", rng.random::<u64>()));
            out
        }
        let svc = Service {
            diurnal_swing: 0.2,
            ..Service::default()
        };
        let slow = Some(Regression::SlowStart {
            extra_ready_s: 0.0,
            extra_latency: 1.0,
            decay_s: 300.0,
        });
        let crash = Some(Regression::CrashLoop {
            crash_after_s: 200.0,
        });
        // fresh threads: no tables to find
        let fresh = |regression, seed| {
            let svc = svc.clone();
            std::thread::spawn(move || draw(&svc, regression, seed))
                .join()
                .unwrap()
        };
        let (fresh_slow, fresh_crash) = (fresh(slow, 5), fresh(crash, 6));
        // one thread, alternating scenarios: each run finds the tables the
        // last run of its scenario left
        for _ in 0..3 {
            assert_eq!(draw(&svc, slow, 5), fresh_slow);
            assert_eq!(draw(&svc, crash, 6), fresh_crash);
        }
        assert_ne!(fresh_slow, fresh_crash);
    }

    /// The inlined pnorm is the judge's, bit for bit, over |z| <= 8.3 (both
    /// of its branches, the branch point's neighbours, zeros).
    #[test]
    fn pnorm_within_is_the_judges() {
        let mut zs = vec![0.0, -0.0, 8.3, -8.3, 7.07106781186547, -7.07106781186547];
        zs.extend([
            7.07106781186547f64.next_up(),
            7.07106781186547f64.next_down(),
        ]);
        for i in 0..=2_000_000 {
            zs.push(-8.3 + 16.6 * f64::from(i) / 2e6);
        }
        for z in zs {
            assert_eq!(
                pnorm_within(z).to_bits(),
                judge::stats::pnorm(z).to_bits(),
                "{z}"
            );
        }
    }

    /// goldengoose's bound table and the union of every table's bounds
    /// (`ln_union`: their logs), the two tables the fill tests run on.
    fn both_tables(ln_union: &[f64; UNION_BOUNDS.len()]) -> [BoundTable<'_>; 2] {
        [
            GOLDENGOOSE_TABLE,
            BoundTable {
                le: &UNION_BOUNDS,
                ln: ln_union,
            },
        ]
    }

    /// The lazy CDF's own log-normal (no tail, a spread) is
    /// [`latency_cdf`] bit for bit, at every bound of both tables, for
    /// medians and spreads from far below to far above the bounds; and
    /// its other cases (a tail, no spread) are that function's answers.
    #[test]
    fn lazy_cdf_is_latency_cdf_bit_for_bit() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let ln_union = UNION_BOUNDS.map(f64::ln);
        let tables = both_tables(&ln_union);
        let mut plain = 0;
        for i in 0..200_000 {
            let median = 10f64.powf(rng.random_range(-5.0..4.0));
            let sigma = match i % 50 {
                0 => 0.0,
                _ => rng.random_range(0.001..3.0),
            };
            let tail = match i % 7 {
                0 => (rng.random_range(0.0..1.0), rng.random_range(0.0..2.0)),
                _ => (0.0, 0.0),
            };
            let table = tables[i % 2];
            let cdf = LazyCdf::new(table, median, sigma, tail);
            plain += usize::from(cdf.plain);
            for b in 0..=table.le.len() {
                let want = if b == table.le.len() {
                    1.0
                } else {
                    latency_cdf(table.le[b], table.ln[b], median.ln(), sigma, tail)
                };
                let got = cdf.get(b);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{median} {sigma} {tail:?} {b}"
                );
            }
        }
        assert!(plain > 100_000, "{plain}");
    }

    thread_local! {
        /// Draws and run ends the near CDF left to the exact one.
        pub(super) static UNDECIDED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// The near CDF is within a third of its bound of `pnorm_within` over
    /// |z| <= 8.3: random arguments, the table's points and the midpoints
    /// between them (where the Taylor step is longest) and their
    /// neighbours, the ends.
    #[test]
    fn near_cdf_is_within_its_bound() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        let mut zs = vec![8.3, -8.3, 0.0, -0.0, 7.07106781186547];
        for i in -133..=133 {
            for z in [f64::from(i) / 16.0, (f64::from(i) + 0.5) / 16.0] {
                zs.extend([z, z.next_up(), z.next_down()]);
            }
        }
        for _ in 0..3_000_000 {
            zs.push(rng.random_range(-8.3..=8.3));
        }
        let mut worst = 0.0f64;
        for z in zs.into_iter().filter(|z| z.abs() <= 8.3) {
            let err = (near_cdf(&NEAR_CDF, z).unwrap() - pnorm_within(z)).abs();
            assert!(err <= 3.1e-10, "{z}: {err}");
            worst = worst.max(err);
        }
        // the bound is not loose by orders of magnitude either
        assert!(worst > 1e-11, "{worst}");
    }

    /// `LazyCdf::near` is within its bound of `LazyCdf::get` at every
    /// bound, for plain steps and for steps with a tail (the mixture of two
    /// near log-normals, bounds above and below the delay), with no spread,
    /// with spreads and medians that put bounds far beyond 8.3 sd.
    #[test]
    fn lazy_near_is_within_its_bound_of_get() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(31);
        let ln_union = UNION_BOUNDS.map(f64::ln);
        let tables = both_tables(&ln_union);
        let (mut mixtures, mut worst) = (0, 0.0f64);
        for i in 0..200_000 {
            let median = 10f64.powf(rng.random_range(-5.0..4.0));
            let sigma = match i % 50 {
                0 => 0.0,
                _ => rng.random_range(0.001..3.0),
            };
            let tail = match i % 3 {
                0 => (0.0, 0.0),
                1 => (rng.random_range(0.0..=1.0), rng.random_range(0.0..2.0)),
                _ => ([1.0, 0.5, 1e-9][i % 9 / 3], UNION_BOUNDS[i % 23]),
            };
            let table = tables[i % 2];
            let cdf = LazyCdf::new(table, median, sigma, tail);
            for (b, &ln_x) in table.ln.iter().enumerate() {
                let (near, exact) = (cdf.near(b, ln_x), cdf.get(b));
                let err = (near - exact).abs();
                assert!(
                    err <= 3.1e-10 + 1e-15,
                    "{median} {sigma} {tail:?} {b}: {err}"
                );
                worst = worst.max(err);
                mixtures += usize::from(!cdf.plain && near != exact);
            }
        }
        assert!(mixtures > 100_000 && worst > 1e-11, "{mixtures} {worst}");
    }

    /// Beyond |z| = 8.3, where `LazyCdf::get` answers 0 or 1, the near CDF
    /// answers within its bound of that up to the table's last row (round(16
    /// z) = +-133) and None beyond it, for NaN and for the infinities, so
    /// that its lookup is the only test `LazyCdf::near` makes of z.
    #[test]
    fn near_cdf_beyond_its_table_is_none() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
        let last = 133.5 / 16.0;
        let mut zs = vec![8.3, last, 9.0, 16.0, 1e6, 2f64.powi(48), 1e300, f64::MAX];
        zs.extend([
            f64::INFINITY,
            f64::MIN_POSITIVE,
            8.3f64.next_up(),
            last.next_down(),
        ]);
        for _ in 0..100_000 {
            zs.push(rng.random_range(8.2..8.5));
            zs.push(10f64.powf(rng.random_range(0.9..300.0)));
        }
        let (mut some, mut none) = (0, 0);
        for z in zs.iter().flat_map(|&z| [z, -z]) {
            let exact = if z < -8.3 {
                0.0
            } else if z > 8.3 {
                1.0
            } else {
                pnorm_within(z)
            };
            match near_cdf(&NEAR_CDF, z) {
                Some(f) => {
                    assert!(z.abs() < last, "{z}");
                    assert!((f - exact).abs() <= 3.1e-10, "{z}: {f} {exact}");
                    some += 1;
                }
                None => {
                    assert!(z.abs() >= last, "{z}");
                    none += 1;
                }
            }
        }
        assert!(near_cdf(&NEAR_CDF, f64::NAN).is_none());
        assert!(some > 10_000 && none > 100_000, "{some} {none}");
    }

    /// [`fill_histogram`] as it was before the near CDF: every bound's
    /// exact CDF, the draws from it.
    fn fill_histogram_exact(
        out: &mut [u64],
        table: BoundTable<'_>,
        lambda: f64,
        median: f64,
        sigma: f64,
        tail: (f64, f64),
        rng: &mut Xoshiro256PlusPlus,
    ) -> u64 {
        let buckets = table.le.len() + 1;
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        let cdf = LazyCdf::new(table, median, sigma, tail);
        let start = table
            .ln
            .partition_point(|&l| l < cdf.ln_median)
            .min(buckets - 2);
        let mut lo = Some(start);
        while let Some(b) = lo {
            if lambda * cdf.get(b) <= TAIL_MEAN {
                break;
            }
            lo = b.checked_sub(1);
        }
        let mut hi = start;
        while hi < buckets - 1 && lambda * (1.0 - cdf.get(hi)) > TAIL_MEAN {
            hi += 1;
        }
        let mut total = 0;
        let first_single = match lo {
            Some(lo) => {
                let mass = cdf.get(lo);
                let n = poisson(lambda * mass, rng);
                if n > 0 {
                    let mut remaining = n;
                    for b in (1..=lo).rev() {
                        let below = cdf.get(b);
                        let p = if below <= 0.0 {
                            1.0
                        } else {
                            ((below - cdf.get(b - 1)) / below).clamp(0.0, 1.0)
                        };
                        let c = binomial(remaining, p, rng);
                        out[b] = c;
                        remaining -= c;
                        if remaining == 0 {
                            break;
                        }
                    }
                    out[0] += remaining;
                }
                total += n;
                lo + 1
            }
            None => 0,
        };
        let mut below = if first_single == 0 {
            0.0
        } else {
            cdf.get(first_single - 1)
        };
        for (slot, b) in out[first_single..=hi].iter_mut().zip(first_single..) {
            let upto = cdf.get(b);
            let c = poisson(lambda * (upto - below).max(0.0), rng);
            *slot = c;
            total += c;
            below = upto;
        }
        if hi < buckets - 1 {
            let n = poisson(lambda * (1.0 - below).max(0.0), rng);
            if n > 0 {
                let mut remaining = n;
                for (b, slot) in out.iter_mut().enumerate().take(buckets - 1).skip(hi + 1) {
                    let left = 1.0 - below;
                    let upto = cdf.get(b);
                    let p = if left <= 0.0 {
                        1.0
                    } else {
                        ((upto - below) / left).clamp(0.0, 1.0)
                    };
                    let c = binomial(remaining, p, rng);
                    *slot = c;
                    remaining -= c;
                    below = upto;
                    if remaining == 0 {
                        break;
                    }
                }
                out[buckets - 1] += remaining;
            }
            total += n;
        }
        total
    }

    /// The fill deciding from the near CDF draws what the exact CDF's fill
    /// draws, and consumes the same random numbers: on random steps over
    /// both tables (traffic from a trickle to thousands, medians across
    /// and beyond the bounds, spreads, tails, no spread) and on steps
    /// built so that a bound's run test (lambda F = 0.25, lambda (1 - F)
    /// = 0.25) or a bucket's mean (0, 1, PTRS's 20) sits at or within a
    /// few ulps to 1e-7 of its edge.
    #[test]
    fn the_near_fill_is_the_exact_fill() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
        let ln_union = UNION_BOUNDS.map(f64::ln);
        let tables = both_tables(&ln_union);
        let mut draw_seed = 0u64;
        let mut steps = 0u64;
        let mut compare = |table: BoundTable<'_>, lambda: f64, median, sigma, tail| {
            draw_seed += 1;
            let mut a = Xoshiro256PlusPlus::seed_from_u64(draw_seed);
            let mut b = a.clone();
            let (mut fast, mut exact) = ([0u64; UNION], [0u64; UNION]);
            let n = table.le.len() + 1;
            let got = fill_histogram(&mut fast[..n], table, lambda, median, sigma, tail, &mut a);
            let want =
                fill_histogram_exact(&mut exact[..n], table, lambda, median, sigma, tail, &mut b);
            let case = format!("{lambda} {median} {sigma} {tail:?} {}", table.le.len());
            assert_eq!((got, fast), (want, exact), "{case}");
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "{case}: rng");
            steps += 1;
        };
        let edges = [
            0.0, 1e-16, -1e-16, 3e-16, -3e-16, 1e-13, -1e-13, 1e-10, -1e-10, 1e-9, -1e-9, 1e-7,
            -1e-7,
        ];
        for i in 0..60_000 {
            let table = tables[i % 2];
            let median = 10f64.powf(rng.random_range(-3.7..1.2));
            let sigma = match i % 40 {
                0 => 0.0,
                _ => rng.random_range(0.02..2.0),
            };
            let tail = match i % 9 {
                0 => (rng.random_range(0.0..0.3), rng.random_range(0.0..2.0)),
                _ => (0.0, 0.0),
            };
            // (up to 1e6: PTRS buckets from a near mean)
            let lambda = 10f64.powf(rng.random_range(-2.0..6.0));
            compare(table, lambda, median, sigma, tail);
            // at the edges: the exact CDF at a bound and the one below it
            let cdf = LazyCdf::new(table, median, sigma, tail);
            let b = rng.random_range(0..table.le.len());
            let f = cdf.get(b);
            let below = if b == 0 { 0.0 } else { cdf.get(b - 1) };
            let r = edges[i % edges.len()];
            for target in [
                TAIL_MEAN / f,
                TAIL_MEAN / (1.0 - f),
                PTRS_FROM / (f - below),
                1.0 / (f - below),
                PTRS_FROM / f,
                PTRS_FROM / (1.0 - f),
            ] {
                let lambda = target * (1.0 + r);
                if lambda.is_finite() && lambda > 0.0 && lambda < 1e9 {
                    compare(table, lambda, median, sigma, tail);
                    compare(table, lambda.next_up(), median, sigma, tail);
                    compare(table, lambda.next_down(), median, sigma, tail);
                }
            }
        }
        assert!(steps > 500_000, "{steps}");
        // the edges reach the exact CDF, and random steps rarely do
        let undecided = UNDECIDED.with(std::cell::Cell::get);
        assert!(undecided > 1_000, "{undecided}");
    }

    #[test]
    fn log_bounds_are_the_bounds_logs() {
        for (l, b) in LN_BUCKETS.iter().zip(DURATION_BUCKETS) {
            assert!((l - b.ln()).abs() <= 1e-15, "{l} vs ln {b}");
        }
    }

    /// The per-request model itself: Poisson(lambda) requests, each with a
    /// log-normal latency (plus the tail delay for a fraction), binned the
    /// way Prometheus's `le` buckets count. Independent of the fast path:
    /// no CDF, no splitting.
    fn per_request_histogram(
        lambda: f64,
        median: f64,
        sigma: f64,
        tail: (f64, f64),
        rng: &mut Xoshiro256PlusPlus,
    ) -> [u64; BUCKETS] {
        let mut out = [0u64; BUCKETS];
        let n = Poisson::new(lambda).unwrap().sample(rng) as u64;
        for _ in 0..n {
            let mut x = median * (sigma * gauss(rng)).exp();
            if tail.0 > 0.0 && rng.random_bool(tail.0) {
                x += tail.1;
            }
            out[DURATION_BUCKETS.partition_point(|&b| b < x)] += 1;
        }
        out
    }

    /// Two-sample Kolmogorov-Smirnov distance between two samples.
    fn ks_distance(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (mut i, mut j, mut d) = (0, 0, 0.0f64);
        while i < a.len() && j < b.len() {
            let x = a[i].min(b[j]);
            while i < a.len() && a[i] <= x {
                i += 1;
            }
            while j < b.len() && b[j] <= x {
                j += 1;
            }
            d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
        }
        d
    }

    #[test]
    fn histograms_are_faithful_to_per_request_sampling_at_every_traffic_level() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
        // (requests per step, median, sigma, tail): from a trickle where most
        // steps see nothing, through the reference workload's ~100, to
        // thousands; a tail regression; a wide spread; medians at the edges
        // of the bucket range
        let cases = [
            (0.05, 0.05, 0.5, (0.0, 0.0)),
            (0.8, 0.05, 0.5, (0.0, 0.0)),
            (6.0, 0.05, 0.5, (0.0, 0.0)),
            (100.0, 0.05, 0.5, (0.0, 0.0)),
            (100.0, 0.05, 0.5, (0.01, 0.5)),
            (100.0, 0.2, 1.5, (0.0, 0.0)),
            (100.0, 0.0008, 0.3, (0.0, 0.0)),
            (100.0, 12.0, 0.3, (0.0, 0.0)),
            (2500.0, 0.05, 0.5, (0.005, 2.0)),
        ];
        let draws = 4000usize;
        for (lambda, median, sigma, tail) in cases {
            let case = format!("lambda {lambda} median {median} sigma {sigma} tail {tail:?}");
            let mut fast = Vec::with_capacity(draws);
            let mut slow = Vec::with_capacity(draws);
            for _ in 0..draws {
                let mut h = [0u64; BUCKETS];
                let n = fill_histogram(
                    &mut h,
                    GOLDENGOOSE_TABLE,
                    lambda,
                    median,
                    sigma,
                    tail,
                    &mut rng,
                );
                assert_eq!(n, h.iter().sum::<u64>(), "{case}: total is the sum");
                fast.push(h);
                slow.push(per_request_histogram(lambda, median, sigma, tail, &mut rng));
            }
            // 1. every bucket's count: same mean (summed counts of both are
            // Poisson with the same mean, so the difference over the root
            // of the sum is ~N(0, 1)); chi-square over the buckets
            let sum = |hs: &[[u64; BUCKETS]], b: usize| hs.iter().map(|h| h[b] as f64).sum::<f64>();
            let (mut stat, mut df) = (0.0, 0usize);
            for b in 0..BUCKETS {
                let (x, y) = (sum(&fast, b), sum(&slow, b));
                if x + y >= 10.0 {
                    stat += (x - y).powi(2) / (x + y);
                    df += 1;
                }
            }
            assert!(
                stat < chi_square_limit(df),
                "{case}: bucket means differ, chi-square {stat} on {df} df"
            );
            // 2. Poisson counts: each bucket's variance equals its mean, and
            // buckets are uncorrelated (the multinomial's negative
            // correlation cancels the shared total's positive one)
            for b in 0..BUCKETS {
                let m = sum(&fast, b) / draws as f64;
                if m * draws as f64 >= 200.0 {
                    let v = fast.iter().map(|h| (h[b] as f64 - m).powi(2)).sum::<f64>()
                        / (draws - 1) as f64;
                    // sd of a sample variance of Poisson counts ~ sqrt((2m^2 + m) / n)
                    let sd = ((2.0 * m * m + m) / draws as f64).sqrt();
                    assert!(
                        (v - m).abs() < 4.5 * sd,
                        "{case}: bucket {b} mean {m} variance {v}"
                    );
                }
            }
            // 3. what the judge sees: the p50 and p99 of a 6-step window
            // (rate(...[1m]) at a 10 s step), same distribution (KS at 0.1%)
            for q in [0.5, 0.99] {
                let window = |hs: &[[u64; BUCKETS]]| -> Vec<f64> {
                    hs.chunks(6)
                        .map(|c| {
                            let mut w = [0u64; BUCKETS];
                            for h in c {
                                for (a, x) in w.iter_mut().zip(h) {
                                    *a += x;
                                }
                            }
                            // an empty window (NaN) counts as beyond
                            // every value, in both samples alike
                            let v = histogram_quantile(q, &w);
                            if v.is_nan() { f64::INFINITY } else { v }
                        })
                        .collect()
                };
                let (a, b) = (window(&fast), window(&slow));
                let n = a.len() as f64;
                let d = ks_distance(a, b);
                let limit = 1.949_3 * (2.0 / n).sqrt();
                assert!(d < limit, "{case}: q {q} KS distance {d} above {limit}");
            }
        }
    }

    #[test]
    fn a_large_histogram_matches_the_distribution() {
        use rand::SeedableRng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut c = [0u64; BUCKETS];
        let n = fill_histogram(
            &mut c,
            GOLDENGOOSE_TABLE,
            1_000_000.0,
            0.05,
            0.5,
            (0.0, 0.0),
            &mut rng,
        );
        assert_eq!(c.iter().sum::<u64>(), n);
        assert!((n as f64 - 1e6).abs() < 5_000.0, "{n}");
        // median 50 ms: half the requests at or below the 0.05 bound
        let below: u64 = c[..6].iter().sum();
        assert!((below as f64 / n as f64 - 0.5).abs() < 0.002, "{below}");
        let q = histogram_quantile(0.5, &c);
        assert!((q - 0.05).abs() < 0.001, "{q}");
        // a zero rate or a degenerate spread still gives a valid histogram
        let mut z = [0u64; BUCKETS];
        assert_eq!(
            fill_histogram(
                &mut z,
                GOLDENGOOSE_TABLE,
                0.0,
                0.05,
                0.5,
                (0.0, 0.0),
                &mut rng
            ),
            0
        );
        let n = fill_histogram(
            &mut z,
            GOLDENGOOSE_TABLE,
            50.0,
            0.03,
            0.0,
            (0.0, 0.0),
            &mut rng,
        );
        assert_eq!(
            z[5], n,
            "sigma 0: every request at the median, in (0.025, 0.05]"
        );
    }
}
