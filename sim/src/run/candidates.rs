//! One seed released under many candidates (the configs of a sweep or of
//! `canarylab tune`, the analyses of one tool in a side by side),
//! generating the seed's series once.
//!
//! A release draws its build, deploy and pod times, then at the traffic
//! shift starts a [`Generator`] whose steps are drawn one after the other
//! from the run's generator of random numbers; the analysis only reads
//! them. Two candidates that differ in the judge, its parameters, the
//! score thresholds, the allowed increases or the analysis timing
//! (interval, lookback, lifetime, warmup), or two peer files (Argo
//! Rollouts, Flagger) on the same steps whose queries or conditions
//! differ, therefore read the same steps, each as far as its own analysis
//! goes: generation is prefix-consistent (step `k` is the same whether the
//! series stop at `k` or go on). The first candidate of a seed generates;
//! the next ones continue the same generator, extending it when their
//! analysis runs longer, and take the random-number state a run on its own
//! would have after its last step (recorded per step), so what they draw
//! after the analysis (a promotion's rolling update) is what a run on its
//! own draws. Peers' runs also share the raw series scraped from them
//! when their queries read the same families (the scrape's draws are its
//! own streams', step by step).
//!
//! What is checked, not assumed, per run:
//! - the generator's inputs at the traffic shift (service, tracks, pods,
//!   draws, traffic shares, random-number state): a candidate that changes
//!   what is generated (traffic, pods, scrape step) runs on its own;
//! - per step read, the random-number state it was generated from (a
//!   peer's pod starts draw between steps), and the traffic shares and
//!   pods the candidate's own weights and pod changes give: at a step
//!   generated otherwise the run leaves the shared series and goes on on
//!   its own from the step before (a copy of the steps so far and of the
//!   generator's state after them: [`Generator::fork`]), its raw series
//!   and metric points made again from its own steps.
//!
//! Candidates whose canary configs differ only in the score thresholds
//! also share the judge's verdicts: a window (index, start, end) judged by
//! one is not judged again by the others; the score does not read the
//! thresholds, and the verdict's classification is the score's against
//! the candidate's own thresholds. A peer's verdicts (Argo's `kayenta`
//! provider) are its own.

use std::collections::HashMap;

use judge::{ScoreClassification, ScoreThresholds, Verdict, Workspace};
use rand_xoshiro::Xoshiro256PlusPlus;
use scenarios::Service;

#[cfg(test)]
use super::run_once;
use super::{
    AnalysisSpec, PointMemo, Prepared, RunOutcome, ScrapeKey, drive_prepared, spare_scrape,
};
use crate::prometheus::Scrape;
use crate::series::{ArState, CANARY, CONTROL, Draws, Generator, TrackSpec};

/// The inputs of a seed's generator at the traffic shift.
#[derive(Debug)]
struct Origin<'a> {
    service: &'a Service,
    step_s: f64,
    tracks: [TrackSpec; 2],
    draws: Draws,
    shares: [f64; 2],
    slots: u32,
}

impl Origin<'_> {
    fn same(&self, o: &Origin<'_>) -> bool {
        let track = |a: &TrackSpec, b: &TrackSpec| {
            a.pods == b.pods
                && a.age_at_start_s.to_bits() == b.age_at_start_s.to_bits()
                && a.latency_offset.to_bits() == b.latency_offset.to_bits()
                && a.regression == b.regression
        };
        self.step_s.to_bits() == o.step_s.to_bits()
            && self.draws == o.draws
            && self.shares.map(f64::to_bits) == o.shares.map(f64::to_bits)
            && self.slots == o.slots
            && track(&self.tracks[0], &o.tracks[0])
            && track(&self.tracks[1], &o.tracks[1])
            && (std::ptr::eq(self.service, o.service) || self.service == o.service)
    }
}

/// What one seed's candidates share: its series and verdicts.
#[derive(Debug, Default)]
pub struct Share<'a> {
    /// The first candidate's generator inputs (and random-number state at
    /// the traffic shift): the runs whose are the same share.
    origin: Option<(Origin<'a>, Xoshiro256PlusPlus)>,
    /// The series, when no run holds them.
    generator: Option<Generator<'a>>,
    /// The random-number state after step `k` (index `k`; 0: at the
    /// traffic shift).
    rng_at: Vec<Xoshiro256PlusPlus>,
    /// The random-number state step `k` was generated from (index
    /// `k - 1`): `rng_at[k - 1]` unless the run that generated it drew in
    /// between (a pod's start).
    rng_from: Vec<Xoshiro256PlusPlus>,
    /// The generator's autoregressive state after step `k` (index `k`),
    /// for a run that leaves the shared series there.
    ar_at: Vec<ArState>,
    /// The traffic shares each step was generated with (index `k - 1`).
    step_shares: Vec<[f64; 2]>,
    /// The share list last given to the generator.
    pushed: Vec<(f64, [f64; 2])>,
    /// The pod changes per track last given to the generator.
    pushed_pods: [Vec<(f64, i64)>; 2],
    /// The raw series scraped from the shared series, when no run holds
    /// them: what they are, and the [`Prepared::id`] whose spare they
    /// become after the seed.
    scrape: Option<(ScrapeKey<'a>, u64, Scrape)>,
    /// Verdicts by (judge group, window index, start ms, end ms).
    verdicts: HashMap<(usize, usize, i64, i64), Verdict>,
    /// The last run's metric points (its world's memo) and the group of
    /// compiled metrics that made them: a run with the same metrics
    /// continues them.
    memo: Option<(usize, Vec<[PointMemo; 2]>)>,
    /// Counts, for the caller's statistics.
    stats: ShareStats,
}

/// How much the candidates of a study shared (`canarylab tune` writes it
/// to tune.json as `sharing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShareStats {
    /// Candidate runs.
    pub runs: u64,
    /// Runs that read another candidate's series (their generation was
    /// saved, up to where they forked).
    pub reused_series: u64,
    /// Runs whose series could not be shared (other generator inputs).
    pub own_series: u64,
    /// Runs that read the shared series until a step generated under other
    /// traffic, pods or draws than theirs, and went on on their own from
    /// there.
    pub forked: u64,
    /// Steps generated.
    pub steps_generated: u64,
    /// Windows judged.
    pub judged: u64,
    /// Windows whose verdict another candidate had.
    pub verdicts_shared: u64,
}

impl ShareStats {
    /// Add `o`'s counts.
    pub fn add(&mut self, o: &ShareStats) {
        self.runs += o.runs;
        self.reused_series += o.reused_series;
        self.own_series += o.own_series;
        self.forked += o.forked;
        self.steps_generated += o.steps_generated;
        self.judged += o.judged;
        self.verdicts_shared += o.verdicts_shared;
    }
}

/// Whether the run's generator is the shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the traffic shift.
    Pending,
    /// Reading (and extending) the shared series.
    On,
    /// On its own (other generator inputs).
    Off,
}

/// One run's link to its seed's [`Share`] (held by the run's world).
#[derive(Debug)]
pub struct Sharing<'p, 'a> {
    share: &'p mut Share<'a>,
    group: usize,
    /// Runs of one metrics group compile the same points of the same
    /// series.
    metrics_group: usize,
    state: State,
    /// Steps this run has generated (as a run on its own would have).
    own_len: usize,
    /// The traffic shares this run set (as a run on its own gives its
    /// generator).
    own_shares: Vec<(f64, [f64; 2])>,
    /// The pod changes this run made, per track (as a run on its own gives
    /// its generator).
    own_pods: [Vec<(f64, i64)>; 2],
    step_s: f64,
}

/// The traffic shares of `list` at `t` seconds, as
/// [`Generator`] looks them up.
fn shares_at(list: &[(f64, [f64; 2])], t: f64) -> [f64; 2] {
    list.iter()
        .rev()
        .find(|(from, _)| *from <= t)
        .map_or([0.0; 2], |(_, s)| *s)
}

impl<'p, 'a> Sharing<'p, 'a> {
    fn new(share: &'p mut Share<'a>, group: usize, metrics_group: usize) -> Self {
        share.stats.runs += 1;
        Self {
            share,
            group,
            metrics_group,
            state: State::Pending,
            own_len: 0,
            own_shares: Vec::new(),
            own_pods: [Vec::new(), Vec::new()],
            step_s: 0.0,
        }
    }

    /// Whether the run reads the shared series.
    pub(super) fn on(&self) -> bool {
        self.state == State::On
    }

    /// Steps this run generated.
    pub(super) fn generated(&self) -> usize {
        self.own_len
    }

    /// At the traffic shift: the shared generator when its inputs are
    /// these (the run continues it), else `None` and the run builds its
    /// own (shared with the next candidates when it is the seed's first),
    /// giving it the pod changes `pods` made before the shift.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &mut self,
        service: &'a Service,
        step_s: f64,
        tracks: &[TrackSpec; 2],
        draws: Draws,
        shares: [f64; 2],
        rng: &Xoshiro256PlusPlus,
        slots: u32,
        pods: [Vec<(f64, i64)>; 2],
    ) -> Option<Generator<'a>> {
        let origin = Origin {
            service,
            step_s,
            tracks: tracks.clone(),
            draws,
            shares,
            slots,
        };
        self.step_s = step_s;
        self.own_shares = vec![(0.0, shares)];
        self.own_pods = pods;
        let share = &mut *self.share;
        match &share.origin {
            None => {
                // the seed's first: its generator will be the shared one
                share.origin = Some((origin, rng.clone()));
                share.rng_at = vec![rng.clone()];
                share.rng_from.clear();
                share.ar_at = vec![ArState::default()];
                share.step_shares.clear();
                share.pushed = vec![(0.0, shares)];
                share.pushed_pods.clone_from(&self.own_pods);
                self.state = State::On;
                None
            }
            Some((o, r)) if o.same(&origin) && r == rng => match share.generator.take() {
                Some(g) => {
                    self.state = State::On;
                    share.stats.reused_series += 1;
                    Some(g)
                }
                None => {
                    self.state = State::Off;
                    share.stats.own_series += 1;
                    None
                }
            },
            Some(_) => {
                self.state = State::Off;
                share.stats.own_series += 1;
                None
            }
        }
    }

    /// A later change of the traffic shares, from `from_s` on.
    pub(super) fn set_shares(&mut self, from_s: f64, shares: [f64; 2]) {
        self.own_shares.push((from_s, shares));
    }

    /// `track`'s pods change by `delta` from `from_s` on (a peer's
    /// `setCanaryScale`, Argo's pods following the weight).
    pub(super) fn add_pods(&mut self, track: usize, from_s: f64, delta: i64) {
        self.own_pods[track].push((from_s, delta));
    }

    /// Generate through step `k` as a run on its own would: check the
    /// steps others generated against this run's random-number state,
    /// traffic shares and pods, generate those nobody has yet, and leave
    /// `rng` where a run on its own would. At the first step generated
    /// otherwise, the run leaves the shared series: `g` becomes its own
    /// generator, with the steps before that one, going on as on its own;
    /// returns whether it did (its raw series and points, read from the
    /// shared ones, must be made again).
    pub(super) fn advance(
        &mut self,
        g: &mut Generator<'a>,
        k: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> bool {
        if k <= self.own_len {
            return false;
        }
        let share = &mut *self.share;
        let have = g.len();
        // on its own this run would generate steps own_len + 1 ..= k now,
        // one after the other, from `rng`: the steps another run generated
        // are this run's up to the first that was generated otherwise
        let mut kept = None;
        if self.own_len < have && *rng != share.rng_from[self.own_len] {
            kept = Some(self.own_len);
        }
        for j in self.own_len + 1..=k.min(have) {
            if kept.is_some() {
                break;
            }
            let other_draws = j > self.own_len + 1 && share.rng_from[j - 1] != share.rng_at[j - 1];
            let other_shares =
                share.step_shares[j - 1] != shares_at(&self.own_shares, j as f64 * self.step_s);
            let other_pods = [CANARY, CONTROL].into_iter().any(|track| {
                g.steps(track)[j - 1].pods != g.pods_with(track, &self.own_pods[track], j)
            });
            if other_draws || other_shares || other_pods {
                kept = Some(j - 1);
            }
        }
        if let Some(kept) = kept {
            if kept > self.own_len {
                rng.clone_from(&share.rng_at[kept]);
            }
            let mut own = g.fork(kept, share.ar_at[kept]);
            for &(from, s) in &self.own_shares {
                own.set_shares(from, s);
            }
            for track in [CANARY, CONTROL] {
                own.set_pod_changes(track, &self.own_pods[track]);
            }
            share.generator = Some(std::mem::replace(g, own));
            share.stats.forked += 1;
            self.state = State::Off;
            g.advance_to(k, rng);
            return true;
        }
        if k > have {
            if share.pushed != self.own_shares {
                // later entries win, and the list starts at 0: the
                // generator now looks up this run's list
                for &(from, s) in &self.own_shares {
                    g.set_shares(from, s);
                }
                share.pushed.clone_from(&self.own_shares);
            }
            if share.pushed_pods != self.own_pods {
                // steps generated keep their pods (the raw series written
                // later read them there)
                for track in [CANARY, CONTROL] {
                    g.set_pod_changes(track, &self.own_pods[track]);
                }
                share.pushed_pods.clone_from(&self.own_pods);
            }
            // past the shared steps this run's own state goes on, as it
            // would on its own
            let mut r = if self.own_len < have {
                share.rng_at[have].clone()
            } else {
                rng.clone()
            };
            for j in have + 1..=k {
                share.rng_from.push(r.clone());
                g.advance_to(j, &mut r);
                share.rng_at.push(r.clone());
                share.ar_at.push(g.ar_state());
                share
                    .step_shares
                    .push(shares_at(&self.own_shares, j as f64 * self.step_s));
            }
            share.stats.steps_generated += (k - have) as u64;
        }
        rng.clone_from(&share.rng_at[k]);
        self.own_len = k;
        false
    }

    /// Raw series taken from the seed's share ([`Sharing::take_scrape`])
    /// by a run that left the shared series: they stay the shared ones'.
    pub(super) fn give_back_scrape(&mut self, key: ScrapeKey<'a>, owner: u64, s: Scrape) {
        if self.share.scrape.is_none() {
            self.share.scrape = Some((key, owner, s));
        } else {
            spare_scrape(owner, s);
        }
    }

    /// Another candidate's verdict on this window, with this run's
    /// thresholds.
    pub(super) fn verdict(
        &mut self,
        index: usize,
        start_ms: i64,
        end_ms: i64,
        thresholds: ScoreThresholds,
    ) -> Option<Verdict> {
        if self.state != State::On {
            return None;
        }
        let mut v = self
            .share
            .verdicts
            .get(&(self.group, index, start_ms, end_ms))?
            .clone();
        // Nodata: no metric scored, whatever the thresholds
        if v.classification != ScoreClassification::Nodata {
            v.classification = judge::scorer::classify_score(v.score, 1, thresholds);
        }
        self.share.stats.verdicts_shared += 1;
        Some(v)
    }

    /// This run's verdict on a window, for the next candidates.
    pub(super) fn keep(&mut self, index: usize, start_ms: i64, end_ms: i64, v: &Verdict) {
        self.share.stats.judged += 1;
        if self.state == State::On {
            self.share
                .verdicts
                .insert((self.group, index, start_ms, end_ms), v.clone());
        }
    }

    /// The points another run of the same metrics compiled from the
    /// shared series (empty when none): a run's memo
    /// ([`super::World::memo_fill`]) continues them.
    pub(super) fn take_memo(&mut self) -> Vec<[PointMemo; 2]> {
        match self.share.memo.take() {
            Some((group, memo)) if self.state == State::On && group == self.metrics_group => memo,
            other => {
                self.share.memo = other;
                Vec::new()
            }
        }
    }

    /// The raw series scraped from the shared series, if they are what
    /// `key` says (the same families, names and traffic shift).
    pub(super) fn take_scrape(&mut self, key: &ScrapeKey<'a>) -> Option<(u64, Scrape)> {
        if self.state != State::On {
            return None;
        }
        match self.share.scrape.take() {
            Some((k, owner, s)) if k == *key => Some((owner, s)),
            other => {
                self.share.scrape = other;
                None
            }
        }
    }

    /// This run's raw series, scraped from the shared series, for the next
    /// candidates; given back when the seed's share has other ones (or this
    /// run does not read the shared series).
    pub(super) fn keep_scrape(
        &mut self,
        key: ScrapeKey<'a>,
        owner: u64,
        s: Scrape,
    ) -> Option<(u64, Scrape)> {
        if self.state != State::On || self.share.scrape.is_some() {
            return Some((owner, s));
        }
        self.share.scrape = Some((key, owner, s));
        None
    }

    /// The run is over: the shared series (and the run's points) go back.
    pub(super) fn finish(&mut self, g: Option<Generator<'a>>, memo: Vec<[PointMemo; 2]>) {
        if self.state == State::On {
            self.share.generator = g;
            if !memo.is_empty() {
                self.share.memo = Some((self.metrics_group, memo));
            }
        }
    }
}

/// One scenario's releases under several candidates, each prepared with
/// its own copy of the scenario ([`Prepared::new`]); see the module.
#[derive(Debug)]
pub struct Candidates<'p, 'a> {
    prepared: Vec<&'p Prepared<'a>>,
    /// Per candidate: candidates of one group have the same canary config
    /// but for the score thresholds (the same judge).
    groups: Vec<usize>,
    /// Per candidate: candidates of one group have the same compiled
    /// metrics.
    metrics_groups: Vec<usize>,
}

/// The canary config without its score thresholds, as text.
fn judge_key(p: &Prepared<'_>) -> String {
    let mut c = p.scenario.config.clone();
    c.classifier.score_thresholds = None;
    serde_json::to_string(&c).unwrap_or_default()
}

impl<'p, 'a> Candidates<'p, 'a> {
    /// The candidates, in the order their outcomes come.
    pub fn new(prepared: Vec<&'p Prepared<'a>>) -> Self {
        let groups_of = |keys: Vec<String>| -> Vec<usize> {
            keys.iter()
                .map(|k| keys.iter().position(|o| o == k).unwrap_or(0))
                .collect()
        };
        // a peer's verdicts are its own (its kayenta provider's config is
        // the peer's file's)
        let groups = groups_of(
            prepared
                .iter()
                .enumerate()
                .map(|(i, p)| match p.analysis {
                    AnalysisSpec::Kayenta(_) => judge_key(p),
                    AnalysisSpec::Peer(_) => format!("peer {i}"),
                })
                .collect(),
        );
        let metrics_groups = groups_of(
            prepared
                .iter()
                .map(|p| format!("{:?}", p.metrics))
                .collect(),
        );
        Self {
            prepared,
            groups,
            metrics_groups,
        }
    }

    /// The candidates.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// Release seed `seed` under every candidate: the outcomes
    /// [`run_once`] gives each on its own, in candidate order. `stats`
    /// adds what was shared.
    pub fn run(&self, seed: u64, ws: &mut Workspace, stats: &mut ShareStats) -> Vec<RunOutcome> {
        let mut share = Share::default();
        let mut out = Vec::with_capacity(self.prepared.len());
        for ((p, &group), &metrics_group) in self
            .prepared
            .iter()
            .zip(&self.groups)
            .zip(&self.metrics_groups)
        {
            let sharing = Some(Sharing::new(&mut share, group, metrics_group));
            let (run, _, _) = drive_prepared(p, seed, false, false, ws, sharing);
            out.push(run);
        }
        if let Some((_, owner, s)) = share.scrape.take() {
            // the next seed's first run restarts them
            spare_scrape(owner, s);
        }
        stats.add(&share.stats);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{Candidate, Parameter};
    use scenarios::Scenario;

    fn scenario(name: &str) -> Scenario {
        crate::catalog_scenario(name)
    }

    /// Candidates that share series and verdicts (thresholds, interval,
    /// allowed increase, judge) and some that change what is generated
    /// (traffic, scrape step).
    fn variants(sc: &Scenario) -> Vec<Scenario> {
        let base = Candidate::of(sc);
        let lifetime = sc.file.pipeline.lifetime_s;
        let grouped = Candidate {
            judge: judge::judges::GROUPED.into(),
            params: Some(serde_json::json!({"alpha": 0.06, "trackSd": 0.028, "looks": 3})),
            ..base.clone()
        };
        let candidates = [
            base.clone(),
            Candidate {
                pass: 90.0,
                marginal: 50.0,
                ..base.clone()
            },
            Candidate {
                pass: 60.0,
                marginal: 40.0,
                ..base.clone()
            },
            Candidate {
                interval_s: Some(lifetime),
                ..base.clone()
            },
            Candidate {
                allowed_increase: Some(1.1),
                ..base.clone()
            },
            grouped.clone(),
            Candidate {
                pass: 90.0,
                marginal: 50.0,
                ..grouped.clone()
            },
            Candidate {
                interval_s: Some(lifetime),
                pass: 60.0,
                marginal: 40.0,
                ..grouped
            },
        ];
        let mut out: Vec<Scenario> = candidates
            .iter()
            .map(|c| c.apply(sc).expect("applies"))
            .collect();
        out.push(Parameter::CanaryWeight.apply(sc, 20.0).expect("applies"));
        out.push(Parameter::ScrapeStepS.apply(sc, 5.0).expect("applies"));
        out.push(
            Parameter::LifetimeS
                .apply(sc, 2.0 * lifetime)
                .expect("applies"),
        );
        if !sc.file.pipeline.traffic_steps.is_empty() {
            // the same start, other weights after the first step: reads
            // steps generated under the first copies' weights
            let mut other = sc.clone();
            let step = &mut other.file.pipeline.traffic_steps[0];
            step.canary = 30.0;
            step.baseline = 30.0;
            step.production = 40.0;
            other.validate().expect("valid");
            out.push(other);
        }
        out
    }

    #[test]
    fn every_candidates_runs_are_its_runs_on_its_own() {
        let mut total = ShareStats::default();
        for name in [
            "aa-typical.toml",
            "latency-10pct.toml",
            "latency-10pct-stepped-traffic.toml",
            "slow-start.toml",
            "crash-loop.toml",
            "errors-0.5pct.toml",
            "aa-vs-production.toml",
        ] {
            let sc = scenario(name);
            let copies = variants(&sc);
            let prepared = Prepared::all(&copies).expect("prepares");
            let cands = Candidates::new(prepared.iter().collect());
            let mut ws = Workspace::new();
            let mut alone_ws = Workspace::new();
            for run in 0..12 {
                let seed = crate::study::run_seed(7, &sc.name, run);
                let shared = cands.run(seed, &mut ws, &mut total);
                for (i, (p, got)) in prepared.iter().zip(&shared).enumerate() {
                    let alone = run_once(p, seed, false, &mut alone_ws).0;
                    assert_eq!(got, &alone, "{name} run {run} candidate {i}");
                }
            }
        }
        // the sharing happened: series read by other candidates, verdicts
        // shared, the traffic and scrape-step copies on their own, the
        // stepped traffic's copy that changes the weights forks
        assert!(total.reused_series > total.runs / 2, "{total:?}");
        assert!(total.verdicts_shared > 0, "{total:?}");
        assert!(total.own_series > 0, "{total:?}");
        assert!(total.forked > 0, "{total:?}");
    }

    #[test]
    fn shares_are_looked_up_as_the_generator_does() {
        let list = [(0.0, [0.1, 0.1]), (60.0, [0.5, 0.5]), (30.0, [0.2, 0.2])];
        assert_eq!(shares_at(&list, 10.0), [0.1, 0.1]);
        // the last set wins from its time on
        assert_eq!(shares_at(&list, 40.0), [0.2, 0.2]);
        assert_eq!(shares_at(&list, 70.0), [0.2, 0.2]);
        assert_eq!(shares_at(&list[..2], 70.0), [0.5, 0.5]);
        assert_eq!(shares_at(&[], 70.0), [0.0, 0.0]);
    }
}
