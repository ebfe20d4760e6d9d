//! The judges beside Kayenta's keep their promise: on synthetic A/A data
//! (generated here) their false-alarm rate stays within a binomial band of
//! the nominal rate, with independent points, AR(1) lag-1 correlation 0.5
//! and 0.8, 2% pod variation, and over 1, 3 and 10 growing intervals; and
//! they detect shifted data.
//!
//! The in-suite version runs 1,500 releases per case; the full version
//! 10,000 (`cargo test -p judge --test it -- --ignored
//! false_alarms_within_the_band_10000_runs`, which CI runs).

use judge::judges::{self, mixture_boundary};
use judge::{CanaryConfig, Classification, Judge, Series, Workspace};

/// A small seeded generator (SplitMix64, Box-Muller).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One synthetic A/A (or shifted) metric world.
#[derive(Debug, Clone, Copy)]
struct World {
    /// Lag-1 correlation of the per-point noise.
    rho: f64,
    /// Per-track (pod) log-level sd, fixed for a release.
    pod: f64,
    /// Canary's multiplicative shift (1.0: A/A).
    shift: f64,
    /// Points per interval.
    per_interval: usize,
    /// Intervals (growing windows).
    intervals: usize,
}

/// One track's values: `exp(offset + e_t)`, e an AR(1) with sd 0.1.
fn track(rng: &mut Rng, w: &World, shift: f64, len: usize) -> Vec<f64> {
    let offset = w.pod * rng.gauss() + shift.ln();
    let sd = 0.1;
    let mut e = sd * rng.gauss();
    (0..len)
        .map(|_| {
            let v = (offset + e).exp() * 100.0;
            e = w.rho * e + sd * (1.0 - w.rho * w.rho).sqrt() * rng.gauss();
            v
        })
        .collect()
}

fn judge_for(name: &str, params: &str) -> Judge {
    let text = format!(
        r#"{{"judge":{{"name":"{name}","judgeConfigurations":{params}}},
            "metrics":[{{"name":"m","groups":["g"],
            "analysisConfigurations":{{"canary":{{"direction":"increase"}}}}}}]}}"#
    );
    let config = CanaryConfig::from_json(&text).unwrap_or_else(|e| panic!("{e}"));
    Judge::new(&config).unwrap_or_else(|e| panic!("{e}"))
}

/// Share of `runs` releases with a High at any look.
fn rate(judge: &Judge, w: &World, runs: usize, seed: u64) -> f64 {
    let mut rng = Rng(seed);
    let mut ws = Workspace::new();
    let len = w.per_interval * w.intervals;
    let mut fails = 0usize;
    for _ in 0..runs {
        let control = track(&mut rng, w, 1.0, len);
        let canary = track(&mut rng, w, w.shift, len);
        let failed = (1..=w.intervals).any(|k| {
            let end = k * w.per_interval;
            let v = judge.judge_series(
                &[Series {
                    control: &control[..end],
                    experiment: &canary[..end],
                }],
                0,
                &mut ws,
            );
            v.metrics[0].0 == Classification::High
        });
        fails += usize::from(failed);
    }
    fails as f64 / runs as f64
}

/// Upper end of the band a rate at `p` over `n` runs stays under (3.3
/// standard errors: all cases of a test together stay below a 1% chance of
/// a spurious failure).
fn upper(p: f64, n: usize) -> f64 {
    p + 3.3 * (p * (1.0 - p) / n as f64).sqrt()
}

fn lower(p: f64, n: usize) -> f64 {
    p - 3.3 * (p * (1.0 - p) / n as f64).sqrt()
}

const ALPHA: f64 = 0.05;

/// Every case: (judge, params, world, whether the rate should be close to
/// nominal rather than only below it).
fn cases(intervals: &[usize]) -> Vec<(&'static str, String, World, bool)> {
    let mut out = Vec::new();
    for &k in intervals {
        for &(rho, pod) in &[(0.0, 0.0), (0.5, 0.0), (0.8, 0.0), (0.5, 0.02)] {
            let w = World {
                rho,
                pod,
                shift: 1.0,
                per_interval: 40,
                intervals: k,
            };
            // the pod variation as the judges' trackSd: sqrt(2) x 2%
            let track_sd = pod * std::f64::consts::SQRT_2;
            let fixed = format!(r#"{{"alpha":{ALPHA},"looks":{k},"trackSd":{track_sd}}}"#);
            // close to nominal only where the test's assumptions hold
            // exactly: independent points, one look
            let exact = rho == 0.0 && k == 1;
            out.push((judges::RATIO_ESS, fixed.clone(), w, exact));
            out.push((judges::GROUPED, fixed.clone(), w, exact));
            // with `recommended`'s test of a decaying excess (a quarter
            // of the level, no tolerance): the union of the two tests
            out.push((
                judges::GROUPED,
                format!(
                    r#"{{"alpha":{ALPHA},"looks":{k},"trackSd":{track_sd},"trend":0.25,"trendDecay":0.2}}"#
                ),
                w,
                false,
            ));
            // rank sums know nothing of a pod offset (trackSd): only
            // within-release dependence
            if pod == 0.0 {
                out.push((judges::MANN_WHITNEY_ESS, fixed.clone(), w, false));
            }
            // practical significance at its null's boundary: the canary
            // exactly `tolerance` (5%) worse
            let at_boundary = World { shift: 1.05, ..w };
            out.push((
                judges::TOLERANCE,
                format!(r#"{{"alpha":{ALPHA},"looks":{k},"tolerance":0.05,"trackSd":{track_sd}}}"#),
                at_boundary,
                false,
            ));
            out.push((
                judges::SEQUENTIAL,
                format!(r#"{{"alpha":{ALPHA},"tolerance":0.05,"trackSd":{track_sd}}}"#),
                at_boundary,
                false,
            ));
        }
    }
    out
}

fn check(runs: usize, intervals: &[usize]) {
    let mut failures = Vec::new();
    let mut table = String::new();
    for (i, (name, params, w, exact)) in cases(intervals).into_iter().enumerate() {
        let judge = judge_for(name, &params);
        let r = rate(&judge, &w, runs, 1000 + i as u64);
        let tag = if params.contains("trend") {
            format!("{name}+trend")
        } else {
            name.to_string()
        };
        let line = format!(
            "{tag:18} rho {:.1} pod {:.2} looks {:2}: false alarms {:.4} (nominal {ALPHA}, band {:.4}..{:.4})\n",
            w.rho,
            w.pod,
            w.intervals,
            r,
            if exact { lower(ALPHA, runs) } else { 0.0 },
            upper(ALPHA, runs)
        );
        table.push_str(&line);
        if r > upper(ALPHA, runs) || (exact && r < lower(ALPHA, runs)) {
            failures.push(line);
        }
    }
    println!("{table}");
    assert!(
        failures.is_empty(),
        "outside the band:\n{}",
        failures.join("")
    );
}

#[test]
fn false_alarms_within_the_band_quick() {
    check(1500, &[1, 3]);
}

#[test]
#[ignore = "10,000 runs per case, 69 cases: about 3 minutes in the test profile; CI runs it (--include-ignored): cargo test -p judge --test it -- --ignored false_alarms_within_the_band_10000_runs"]
fn false_alarms_within_the_band_10000_runs() {
    check(10_000, &[1, 3, 10]);
}

#[test]
fn tolerance_passes_a_pod_difference_and_fails_a_regression() {
    // 2% pod variation, tolerance 5%: an A/A release is not a failure
    // (well below alpha); a 20% regression is, almost always (about 94%:
    // with 60 points at lag-1 correlation 0.5 the variance of the log
    // ratio rests on about 11 degrees of freedom once the estimated
    // correlation's own error is counted, and the pods' 2.8% difference
    // is not in it).
    let judge = judge_for(judges::TOLERANCE, r#"{"alpha":0.05,"tolerance":0.05}"#);
    let mut w = World {
        rho: 0.5,
        pod: 0.02,
        shift: 1.0,
        per_interval: 60,
        intervals: 1,
    };
    let aa = rate(&judge, &w, 2000, 7);
    assert!(aa < 0.05, "A/A with 2% pods: {aa}");
    w.shift = 1.2;
    let hit = rate(&judge, &w, 2000, 8);
    assert!(hit > 0.9, "20% regression: {hit}");
}

#[test]
fn every_judge_detects_a_shift() {
    for name in [
        judges::MANN_WHITNEY_ESS,
        judges::RATIO_ESS,
        judges::TOLERANCE,
        judges::SEQUENTIAL,
        judges::GROUPED,
    ] {
        let judge = judge_for(name, r#"{"alpha":0.05}"#);
        let w = World {
            rho: 0.5,
            pod: 0.0,
            shift: 1.2,
            per_interval: 40,
            intervals: 3,
        };
        let hit = rate(&judge, &w, 500, 11);
        assert!(hit > 0.9, "{name}: detected {hit} of 20% shifts");
        // and a decrease of a metric whose direction is "increase" never fails
        let down = World { shift: 0.8, ..w };
        assert_eq!(rate(&judge, &down, 200, 12), 0.0, "{name}");
    }
}

#[test]
fn the_mixture_boundary_is_above_the_fixed_quantile_and_grows_with_data() {
    // at any variance the always-valid boundary is stricter than the
    // fixed-sample one at the same alpha; more data (smaller v) widens it
    // slowly (the log-log price of looking at every sample size)
    let z = judge::stats::qnorm(1.0 - 0.025);
    for v in [1e-2, 1e-3, 1e-4, 1e-5] {
        assert!(mixture_boundary(v, 0.1, 0.05) > z);
    }
    assert!(mixture_boundary(1e-5, 0.1, 0.05) > mixture_boundary(1e-3, 0.1, 0.05));
}

#[test]
fn names_and_parameters_are_checked() {
    let bad = |judge: &str| {
        CanaryConfig::from_json(&format!(
            r#"{{"judge":{judge},"metrics":[{{"name":"m"}}]}}"#
        ))
        .and_then(|c| Judge::new(&c).map(|_| ()))
        .unwrap_err()
    };
    let e = bad(r#"{"name":"sequential","judgeConfigurations":{"alpha":0.7}}"#);
    assert_eq!(e.path, "judge.judgeConfigurations.alpha");
    let e = bad(r#"{"name":"tolerance","judgeConfigurations":{"tolerence":0.1}}"#);
    assert!(e.message.contains("unknown parameter"), "{e}");
    let e = bad(r#"{"name":"nope"}"#);
    assert_eq!(e.path, "judge.name");
    // grouped's detrend: a degree 0, 1 or 2, and only for grouped
    let e = bad(r#"{"name":"grouped","judgeConfigurations":{"detrend":3}}"#);
    assert_eq!(e.path, "judge.judgeConfigurations.detrend");
    let e = bad(r#"{"name":"grouped","judgeConfigurations":{"detrendShare":0}}"#);
    assert_eq!(e.path, "judge.judgeConfigurations.detrendShare");
    let e = bad(r#"{"name":"tolerance","judgeConfigurations":{"detrend":1}}"#);
    assert!(e.message.contains("unknown parameter"), "{e}");
    // grouped's trend test: a share in [0, 1), a decay in (0, 10], a
    // tolerance in [0, 10), and only for grouped
    for (params, path) in [
        (r#"{"trend":1}"#, "trend"),
        (r#"{"trend":-0.1}"#, "trend"),
        (r#"{"trendDecay":0}"#, "trendDecay"),
        (r#"{"trendTolerance":-1}"#, "trendTolerance"),
    ] {
        let e = bad(&format!(
            r#"{{"name":"grouped","judgeConfigurations":{params}}}"#
        ));
        assert_eq!(e.path, format!("judge.judgeConfigurations.{path}"), "{e}");
    }
    let e = bad(r#"{"name":"ratio-ess","judgeConfigurations":{"trend":0.2}}"#);
    assert!(e.message.contains("unknown parameter"), "{e}");
    // recommended's trend can be switched off
    let j = judge_for(judges::RECOMMENDED, r#"{"trend":0}"#);
    assert_eq!(j.name(), judges::RECOMMENDED_JUDGE);
    // "recommended" resolves to the recommended judge
    let j = judge_for(judges::RECOMMENDED, "{}");
    assert_eq!(j.name(), judges::RECOMMENDED_JUDGE);
    // Kayenta's judge stays the default
    let c = CanaryConfig::from_json(r#"{"metrics":[{"name":"m"}]}"#).unwrap();
    assert_eq!(
        Judge::new(&c).unwrap().name(),
        judge::config::NETFLIX_ACA_JUDGE
    );
}

#[test]
fn detection_agrees_with_the_closed_form_bound_of_pod_variation() {
    // One canary and one baseline pod, 2% pod-to-pod variation, a 10%
    // regression, so much data per track that only the pods' difference
    // is left: no judge can beat Phi(ln 1.1 / (sqrt 2 x 0.02) - z_alpha)
    // (the oracle knows the model and tests the log ratio against its
    // known spread), and the tolerance judge told the spread reaches it.
    let alpha = 0.02;
    let pod = 0.02;
    let s_pod = pod * std::f64::consts::SQRT_2;
    let w = World {
        rho: 0.0,
        pod,
        shift: 1.1,
        per_interval: 2000,
        intervals: 1,
    };
    let judge = judge_for(
        judges::TOLERANCE,
        &format!(r#"{{"alpha":{alpha},"tolerance":0.0,"trackSd":{s_pod}}}"#),
    );
    // the data's own noise: log values with sd 0.1, 2000 points a side
    let closed = judge::oracle::ShiftModel {
        pod_sd: pod,
        point_sd: 0.1,
        effective_points: 2000.0,
    }
    .detection(0.10, alpha);
    // and the bound with all the data in the world is just above it
    let bound = judge::oracle::pod_bound(0.10, pod, alpha);
    assert!(closed < bound && bound - closed < 0.01, "{closed} {bound}");
    let runs = 4000;
    let got = rate(&judge, &w, runs, 21);
    let sd = (closed * (1.0 - closed) / runs as f64).sqrt();
    assert!(
        (got - closed).abs() < 3.3 * sd + 0.005,
        "detection {got}, closed form {closed}"
    );
    // and at the bound's false-alarm rate
    let aa = rate(&judge, &World { shift: 1.0, ..w }, runs, 22);
    assert!(aa < upper(alpha, runs), "false alarms {aa}");
}

/// A config of two metrics in one group ("latency", direction increase)
/// and one in another ("errors").
fn grouped_judge(params: &str) -> Judge {
    let m = |name: &str, group: &str| {
        format!(
            r#"{{"name":"{name}","groups":["{group}"],
                "analysisConfigurations":{{"canary":{{"direction":"increase"}}}}}}"#
        )
    };
    let text = format!(
        r#"{{"judge":{{"name":"grouped","judgeConfigurations":{params}}},
            "metrics":[{},{},{}],
            "classifier":{{"groupWeights":{{"latency":50,"errors":50}}}}}}"#,
        m("p50", "latency"),
        m("p99", "latency"),
        m("errors", "errors")
    );
    Judge::new(&CanaryConfig::from_json(&text).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Share of releases with any metric High over `w`'s looks, three
/// metrics: the first two share their pod offset (one group, two views of
/// the same latency), `shifts` multiplies each canary metric.
fn grouped_rate(judge: &Judge, w: &World, shifts: [f64; 3], runs: usize, seed: u64) -> (f64, f64) {
    let mut rng = Rng(seed);
    let mut ws = Workspace::new();
    let len = w.per_interval * w.intervals;
    let (mut any, mut whole_group) = (0usize, 0usize);
    for _ in 0..runs {
        let tracks: Vec<(Vec<f64>, Vec<f64>)> = (0..3)
            .map(|i| {
                (
                    track(&mut rng, w, 1.0, len),
                    track(&mut rng, w, shifts[i], len),
                )
            })
            .collect();
        let mut hit = false;
        let mut both = false;
        for k in 1..=w.intervals {
            let end = k * w.per_interval;
            let series: Vec<Series<'_>> = tracks
                .iter()
                .map(|(c, e)| Series {
                    control: &c[..end],
                    experiment: &e[..end],
                })
                .collect();
            let v = judge.judge_series(&series, 0, &mut ws);
            let high: Vec<bool> = v
                .metrics
                .iter()
                .map(|m| m.0 == Classification::High)
                .collect();
            hit |= high.iter().any(|&h| h);
            both |= high[0] && high[1];
        }
        any += usize::from(hit);
        whole_group += usize::from(both);
    }
    (any as f64 / runs as f64, whole_group as f64 / runs as f64)
}

#[test]
fn grouped_keeps_its_rate_over_groups_and_fails_a_whole_group() {
    // three metrics in two groups, 3 looks, lag-1 correlation 0.5, 2%
    // pods told as trackSd: at most alpha of A/A releases have any High
    let runs = 3000;
    let w = World {
        rho: 0.5,
        pod: 0.02,
        shift: 1.0,
        per_interval: 40,
        intervals: 3,
    };
    let judge = grouped_judge(&format!(
        r#"{{"alpha":{ALPHA},"looks":3,"trackSd":{}}}"#,
        0.02 * std::f64::consts::SQRT_2
    ));
    let (aa, _) = grouped_rate(&judge, &w, [1.0; 3], runs, 31);
    assert!(aa < upper(ALPHA, runs), "A/A: {aa}");
    // only p50 of the latency group moves: the whole group fails
    let (any, whole) = grouped_rate(&judge, &w, [1.3, 1.0, 1.0], 500, 32);
    assert!(any > 0.9 && whole == any, "any {any}, whole group {whole}");
    // errors alone: the latency group stays
    let (any, whole) = grouped_rate(&judge, &w, [1.0, 1.0, 1.3], 500, 33);
    assert!(any > 0.9 && whole < 0.05, "any {any}, whole group {whole}");
}

/// The band cases of `grouped` with the extra parameters in the
/// environment variable `GROUPED_PARAMS` (a JSON object's members, e.g.
/// `"detrend":2`), for trying a variant: `GROUPED_PARAMS='"detrend":2'
/// cargo test -p judge --test it -- --ignored grouped_variant_band --nocapture`.
#[test]
#[ignore = "a measurement of a variant named in GROUPED_PARAMS"]
fn grouped_variant_band() {
    let extra = std::env::var("GROUPED_PARAMS").unwrap_or_default();
    let runs: usize = std::env::var("BAND_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4000);
    let mut table = String::new();
    for (i, &k) in [1usize, 3, 10].iter().enumerate() {
        for (j, &(rho, pod)) in [(0.0, 0.0), (0.5, 0.0), (0.8, 0.0), (0.5, 0.02)]
            .iter()
            .enumerate()
        {
            let w = World {
                rho,
                pod,
                shift: 1.0,
                per_interval: 40,
                intervals: k,
            };
            let track_sd = pod * std::f64::consts::SQRT_2;
            let sep = if extra.is_empty() { "" } else { "," };
            let params =
                format!(r#"{{"alpha":{ALPHA},"looks":{k},"trackSd":{track_sd}{sep}{extra}}}"#);
            let r = rate(
                &judge_for(judges::GROUPED, &params),
                &w,
                runs,
                5000 + (i * 10 + j) as u64,
            );
            table.push_str(&format!(
                "rho {rho:.1} pod {pod:.2} looks {k:2}: {r:.4} (band up to {:.4})\n",
                upper(ALPHA, runs)
            ));
        }
    }
    println!("{extra}\n{table}");
}

#[test]
fn detrending_catches_a_decaying_slowdown_the_plain_fit_misses() {
    // a slow start: the canary 60% slower at first, decaying with a time
    // constant of a third of the window, over noise at lag-1 0.5; the
    // plain AR(1) fit reads the decay as dependence
    let w = World {
        rho: 0.5,
        pod: 0.0,
        shift: 1.0,
        per_interval: 60,
        intervals: 1,
    };
    // how many of 400 releases the grouped judge (`params`) calls High,
    // the canary's track made from a fresh one by `canary(t, v)`
    let hits = |params: &str, seed: u64, canary: &dyn Fn(usize, f64) -> f64| {
        let judge = judge_for(judges::GROUPED, params);
        let mut rng = Rng(seed);
        let mut ws = Workspace::new();
        let mut hits = 0usize;
        for _ in 0..400 {
            let control = track(&mut rng, &w, 1.0, 60);
            let canary: Vec<f64> = track(&mut rng, &w, 1.0, 60)
                .iter()
                .enumerate()
                .map(|(t, v)| canary(t, *v))
                .collect();
            let v = judge.judge_series(
                &[Series {
                    control: &control,
                    experiment: &canary,
                }],
                0,
                &mut ws,
            );
            hits += usize::from(v.metrics[0].0 == Classification::High);
        }
        hits
    };
    let detect = |params: &str, seed: u64| {
        let slow_start = |t: usize, v: f64| v * (1.0 + 0.6 * (-(t as f64) / 20.0).exp());
        hits(params, seed, &slow_start) as f64 / 400.0
    };
    let plain = detect(r#"{"alpha":0.05}"#, 31);
    let line = detect(r#"{"alpha":0.05,"detrend":1}"#, 31);
    let parabola = detect(r#"{"alpha":0.05,"detrend":2}"#, 31);
    assert!(line > plain + 0.2, "plain {plain}, line {line}");
    assert!(parabola > plain + 0.2, "plain {plain}, parabola {parabola}");
    // the test of the decaying excess itself (recommended's `trend`, a
    // quarter of the level): the decay is what it looks for
    let trend = detect(r#"{"alpha":0.05,"trend":0.25,"trendDecay":0.2}"#, 31);
    assert!(
        trend > 0.9 && trend > plain + 0.2,
        "plain {plain}, trend {trend}"
    );
    // a canary that gets worse over the window (a leak) is no slow start:
    // the trend test is one-sided like the metric's direction (the canary
    // worse late, by as much as the slow start was early, mean kept)
    let leak = |t: usize, v: f64| v * (1.0 + 0.6 * (-((59 - t) as f64) / 20.0).exp()) / 1.2;
    let hits = hits(r#"{"alpha":0.05,"trend":0.9,"trendDecay":0.2}"#, 41, &leak);
    assert!(hits < 40, "{hits} of 400");
}
