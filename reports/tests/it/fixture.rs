//! A realistic study built in code: harmless releases and regressions with
//! and without expectations (one missed), latency at three sizes and errors
//! at two (power curves), a crash loop (deploy failures), a pass-threshold
//! sweep, and two example runs with three intervals and two metrics.
//!
//! Only exact arithmetic and a fixed LCG, no transcendental functions, so
//! the JSON snapshot is the same on every platform.

use reports::model::*;

/// Deterministic pseudo-random numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

struct Spec {
    name: &'static str,
    description: &'static str,
    expect: Expect,
    kind: &'static str,
    size: f64,
    label: &'static str,
    verdicts: Verdicts,
    expectation: Option<(&'static str, bool)>,
    /// Mean failed requests per run served by the canary.
    blast: f64,
}

fn scenario(spec: Spec, rng: &mut Lcg) -> ScenarioResult {
    let v = spec.verdicts;
    let runs = v.promoted + v.rolled_back + v.deploy_failed + v.build_failed + v.paused;
    let reached = runs - v.build_failed;
    let rollback_rate = wilson(v.rolled_back + v.deploy_failed, reached);
    // Three 300 s intervals after a 60 s warmup; regressions are mostly
    // caught at the interval where they become visible, promotions take all.
    let mut times = Vec::new();
    let mut decided = vec![0u32; 3];
    for _ in 0..v.promoted {
        times.push(round1(960.0 + 20.0 * rng.next()));
        decided[2] += 1;
    }
    for _ in 0..v.rolled_back {
        let k = if rng.next() < 0.55 {
            0
        } else if rng.next() < 0.7 {
            1
        } else {
            2
        };
        decided[k] += 1;
        times.push(round1(360.0 + 300.0 * k as f64 + 20.0 * rng.next()));
    }
    for _ in 0..v.deploy_failed {
        times.push(round1(120.0 + 60.0 * rng.next()));
    }
    // Paused at the second interval's end, waiting for a person.
    for _ in 0..v.paused {
        times.push(round1(660.0 + 20.0 * rng.next()));
    }
    let requests: Vec<f64> = times
        .iter()
        .map(|t| (t * 9.5 * (0.9 + 0.2 * rng.next())).round())
        .collect();
    let blast: Vec<f64> = times
        .iter()
        .map(|t| (spec.blast * t / 960.0 * (0.5 + rng.next())).round())
        .collect();
    let lead: Vec<f64> = times
        .iter()
        .map(|t| round1(t + 240.0 + 60.0 * rng.next()))
        .collect();
    ScenarioResult {
        name: spec.name.into(),
        analysis: None,
        description: spec.description.into(),
        expect: spec.expect,
        regression: Regression {
            kind: spec.kind.into(),
            size: spec.size,
            label: spec.label.into(),
        },
        runs,
        verdicts: v,
        rollback_rate,
        decision_time_s: distribution(&times, 20),
        canary_requests: distribution(&requests, 20),
        blast_radius: distribution(&blast, 20),
        lead_time_s: distribution(&lead, 20),
        decided_at_interval: decided,
        expectation: spec.expectation.map(|(requirement, met)| ExpectationCheck {
            requirement: requirement.into(),
            met,
        }),
        decided: None,
        oracle: None,
    }
}

fn verdicts(promoted: u32, rolled_back: u32, deploy_failed: u32, build_failed: u32) -> Verdicts {
    Verdicts {
        promoted,
        rolled_back,
        deploy_failed,
        build_failed,
        paused: 0,
    }
}

fn metric(
    name: &str,
    classification: &str,
    ratio: f64,
    ci: (f64, f64),
    critical: bool,
) -> MetricVerdict {
    MetricVerdict {
        name: name.into(),
        classification: serde_json::from_value(serde_json::json!(classification))
            .expect("a metric classification"),
        ratio: Some(ratio),
        ci: Some(ci),
        critical,
    }
}

/// Series every 30 s over 0..=960 s; the canary's latency steps up by
/// `latency_lift` and its error rate by `error_lift` from `from_s` on.
fn series(
    rng: &mut Lcg,
    latency_lift: f64,
    error_lift: f64,
    from_s: f64,
    gap_at: Option<usize>,
) -> Vec<MetricSeries> {
    let times: Vec<f64> = (0..=32).map(|i| f64::from(i) * 30.0).collect();
    let mut lat = MetricSeries {
        name: "latency_p99".into(),
        times_s: times.clone(),
        control: vec![],
        experiment: vec![],
    };
    let mut err = MetricSeries {
        name: "error_rate".into(),
        times_s: times.clone(),
        control: vec![],
        experiment: vec![],
    };
    for (i, t) in times.iter().enumerate() {
        let on = *t >= from_s;
        lat.control.push(Some(round1(118.0 + 8.0 * rng.next())));
        let e = round1(118.0 * if on { 1.0 + latency_lift } else { 1.0 } + 8.0 * rng.next());
        lat.experiment
            .push(if gap_at == Some(i) { None } else { Some(e) });
        err.control.push(Some((2.0 + rng.next()).round() / 1000.0));
        err.experiment.push(Some(
            (2.0 + rng.next() + if on { error_lift } else { 0.0 }).round() / 1000.0,
        ));
    }
    vec![lat, err]
}

fn timeline(end: f64, last: &str) -> Vec<Stage> {
    let stage = |name: &str, start_s: f64, end_s: f64| Stage {
        name: name.into(),
        start_s,
        end_s,
    };
    vec![
        stage("build", 0.0, 180.0),
        stage("deploy", 180.0, 240.0),
        stage("warmup", 240.0, 300.0),
        stage("analysis", 300.0, 300.0 + end),
        stage(last, 300.0 + end, 360.0 + end),
    ]
}

pub fn study() -> Study {
    let mut rng = Lcg(42);
    let specs = vec![
        Spec {
            name: "aa-baseline",
            description: "A/A: the same version as canary and baseline",
            expect: Expect::Pass,
            kind: "none",
            size: 0.0,
            label: "no change",
            verdicts: verdicts(196, 4, 0, 0),
            expectation: Some(("false alarm <= 0.02", true)),
            blast: 2.0,
        },
        Spec {
            name: "noop-config-change",
            description: "A config-only change with no effect on behaviour",
            expect: Expect::Pass,
            kind: "none",
            size: 0.0,
            label: "no change",
            verdicts: verdicts(190, 9, 1, 0),
            expectation: Some(("false alarm <= 0.02", false)),
            blast: 2.0,
        },
        Spec {
            name: "latency-5pct",
            description: "Every request 5% slower",
            expect: Expect::Fail,
            kind: "latency",
            size: 0.05,
            label: "latency +5%",
            verdicts: verdicts(104, 96, 0, 0),
            expectation: None,
            blast: 3.0,
        },
        Spec {
            name: "latency-10pct",
            description: "Every request 10% slower",
            expect: Expect::Fail,
            kind: "latency",
            size: 0.10,
            label: "latency +10%",
            verdicts: verdicts(36, 164, 0, 0),
            expectation: Some(("detection >= 0.80", true)),
            blast: 4.0,
        },
        Spec {
            name: "latency-25pct",
            description: "Every request 25% slower",
            expect: Expect::Fail,
            kind: "latency",
            size: 0.25,
            label: "latency +25%",
            verdicts: verdicts(2, 196, 0, 2),
            expectation: None,
            blast: 6.0,
        },
        Spec {
            name: "errors-1pct",
            description: "1% of requests fail with HTTP 500",
            expect: Expect::Fail,
            kind: "errors",
            size: 0.01,
            label: "errors +1pp",
            verdicts: verdicts(50, 150, 0, 0),
            expectation: None,
            blast: 90.0,
        },
        Spec {
            name: "errors-5pct",
            description: "5% of requests fail with HTTP 500",
            expect: Expect::Fail,
            kind: "errors",
            size: 0.05,
            label: "errors +5pp",
            verdicts: verdicts(0, 199, 1, 0),
            expectation: Some(("detection >= 0.95", true)),
            blast: 420.0,
        },
        Spec {
            name: "crash-loop",
            description: "The canary crashes on start",
            expect: Expect::Fail,
            kind: "crash_loop",
            size: 1.0,
            label: "crash loop",
            verdicts: verdicts(0, 0, 200, 0),
            expectation: None,
            blast: 30.0,
        },
    ];
    let scenarios: Vec<ScenarioResult> = specs.into_iter().map(|s| scenario(s, &mut rng)).collect();

    let thresholds = [
        (60.0, 1, 120),
        (70.0, 3, 141),
        (75.0, 13, 156),
        (80.0, 22, 168),
        (90.0, 61, 183),
        (95.0, 118, 190),
    ];
    let sweep = Sweep {
        parameter: "pass threshold".into(),
        points: thresholds
            .iter()
            .map(|&(value, fa, det)| SweepPoint {
                label: format!("{value}"),
                value,
                false_alarm: wilson(fa, 400),
                detection: wilson(det, 200),
                per_scenario: vec![("latency-10pct".into(), wilson(det - 20, 200))],
                chosen: value == 75.0,
            })
            .collect(),
    };

    let interval = |index: u32, score: f64, classification: &str, metrics: Vec<MetricVerdict>| {
        IntervalDetail {
            index,
            start_s: 60.0 + 300.0 * f64::from(index - 1),
            end_s: 60.0 + 300.0 * f64::from(index),
            score,
            classification: serde_json::from_value(serde_json::json!(classification))
                .expect("a score classification"),
            metrics,
        }
    };
    let rollback = RunDetail {
        scenario: "latency-10pct".into(),
        analysis: None,
        seed: 7_315_002_417,
        decision: reports::model::ReleaseEnd::Rollback,
        reason: "interval 3 scored 0 (critical metric latency_p99 High)".into(),
        intervals: vec![
            interval(
                1,
                100.0,
                "Pass",
                vec![
                    metric("latency_p99", "Pass", 1.02, (-1.8, 4.9), true),
                    metric("error_rate", "Pass", 1.0, (-0.001, 0.001), false),
                ],
            ),
            interval(
                2,
                60.0,
                "Marginal",
                vec![
                    metric("latency_p99", "Pass", 1.04, (-0.6, 8.1), true),
                    metric("error_rate", "High", 1.5, (0.0005, 0.0015), false),
                ],
            ),
            interval(
                3,
                0.0,
                "Fail",
                vec![
                    metric("latency_p99", "High", 1.11, (8.7, 17.9), true),
                    metric("error_rate", "Pass", 1.2, (0.0, 0.001), false),
                ],
            ),
        ],
        series: series(&mut rng, 0.10, 0.4, 420.0, Some(20)),
        timeline: timeline(960.0, "rollback"),
    };
    let promote = RunDetail {
        scenario: "aa-baseline".into(),
        analysis: None,
        seed: 1_804_289_383,
        decision: reports::model::ReleaseEnd::Promote,
        reason: "all intervals passed".into(),
        intervals: (1..=3)
            .map(|i| {
                interval(
                    i,
                    100.0,
                    "Pass",
                    vec![
                        metric("latency_p99", "Pass", 1.0, (-3.1, 2.9), true),
                        metric("error_rate", "Pass", 1.0, (-0.001, 0.001), false),
                    ],
                )
            })
            .collect(),
        series: series(&mut rng, 0.0, 0.0, 0.0, None),
        timeline: timeline(960.0, "promote"),
    };

    Study {
        tool_version: "0.1.0".into(),
        driver: "sim".into(),
        seed: 42,
        runs_per_scenario: 200,
        config: Some("checkout-canary.json".into()),
        scenarios,
        example_runs: vec![rollback, promote],
        sweeps: vec![sweep],
    }
}

/// Every time of a distribution times `f` (its counts unchanged).
fn scale(d: &mut Distribution, f: f64) {
    for x in [
        &mut d.mean,
        &mut d.p50,
        &mut d.p90,
        &mut d.p99,
        &mut d.max,
        &mut d.bins_start,
        &mut d.bin_width,
    ] {
        *x = round1(*x * f);
    }
}

/// The name of each analysis of [`comparison`], in order.
pub const ANALYSES: [&str; 3] = ["canary-config", "argo-rollout", "flagger-canary"];

/// A study of three analyses side by side (as `canarylab sim --analysis A
/// --analysis B --analysis C` writes it): four scenarios, each once per
/// analysis, one entry per scenario and analysis; the Argo one pauses some
/// runs. Pooled detection over the three regressions: canary-config 562/600,
/// argo-rollout 516/600, flagger-canary 488/600; false alarms on the A/A
/// scenario: 4/200, 2/200, 20/200; paused: argo-rollout 32 runs.
pub fn comparison() -> Study {
    let mut rng = Lcg(7);
    // (scenario, expect, kind, size, label, blast, per analysis (promoted, rolled back, paused))
    type Cells = [(u32, u32, u32); 3];
    let table: [(&str, Expect, &str, f64, &str, f64, Cells); 4] = [
        (
            "aa-baseline",
            Expect::Pass,
            "none",
            0.0,
            "no change",
            2.0,
            [(196, 4, 0), (190, 2, 8), (180, 20, 0)],
        ),
        (
            "latency-10pct",
            Expect::Fail,
            "latency",
            0.10,
            "latency +10%",
            4.0,
            [(36, 164, 0), (60, 120, 20), (100, 100, 0)],
        ),
        (
            "latency-25pct",
            Expect::Fail,
            "latency",
            0.25,
            "latency +25%",
            6.0,
            [(2, 198, 0), (0, 200, 0), (10, 190, 0)],
        ),
        (
            "errors-5pct",
            Expect::Fail,
            "errors",
            0.05,
            "errors +5pp",
            420.0,
            [(0, 200, 0), (0, 196, 4), (2, 198, 0)],
        ),
    ];
    let mut scenarios = Vec::new();
    for (name, expect, kind, size, label, blast, cells) in table {
        for (k, (promoted, rolled_back, paused)) in cells.into_iter().enumerate() {
            let mut v = verdicts(promoted, rolled_back, 0, 0);
            v.paused = paused;
            let mut s = scenario(
                Spec {
                    name,
                    description: "released once per analysis",
                    expect,
                    kind,
                    size,
                    label,
                    verdicts: v,
                    expectation: None,
                    // Flagger's shorter steps serve fewer requests in this fixture.
                    blast: blast * [1.0, 1.5, 0.5][k],
                },
                &mut rng,
            );
            s.analysis = Some(ANALYSES[k].into());
            // flagger-canary's one-minute ticks decide sooner than the others.
            if k == 2 {
                scale(&mut s.decision_time_s, 0.5);
            }
            scenarios.push(s);
        }
    }
    Study {
        tool_version: "0.1.0".into(),
        driver: "sim".into(),
        seed: 7,
        runs_per_scenario: 200,
        config: None,
        scenarios,
        example_runs: vec![],
        sweeps: vec![],
    }
}
