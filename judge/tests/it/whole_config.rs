//! Whole judgements from a config and a metric-set-pair list: scoring
//! rules (critical, muted, no-data, weights), Kayenta's config files, and
//! bad input rejected with the JSON path of the problem.

use judge::{
    CanaryConfig, Classification, Judge, MetricSetPair, ScoreClassification, ScoreThresholds,
    parse_pairs,
};

use crate::fixture;

fn config(json: &str) -> CanaryConfig {
    CanaryConfig::from_json(json).unwrap_or_else(|e| panic!("{e}"))
}

/// 60 points around `level`, deterministic, no ties.
fn series(level: f64) -> Vec<f64> {
    (0..60)
        .map(|i| level * (1.0 + 0.05 * ((i * 37 % 61) as f64 / 61.0 - 0.5)))
        .collect()
}

#[test]
fn kayenta_config_files_load_unchanged() {
    for name in [
        "kayenta-integration-tests__src__test__resources__canary-configs__prometheus__integration-test-cpu.json",
        "kayenta-integration-tests__src__test__resources__canary-configs__prometheus__muted-metric.json",
        "kayenta-judge__src__test__resources__test-config.json",
        "kayenta-signalfx__src__integration-test__resources__integration-test-canary-config.json",
        "scratch__newrelic_canary_config.json",
    ] {
        let text = std::fs::read_to_string(fixture(&format!("kayenta/{name}"))).unwrap();
        let c = CanaryConfig::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        Judge::new(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Kayenta's sample Prometheus config names a judge we don't have.
    let text =
        std::fs::read_to_string(fixture("kayenta/scratch__prometheus_canary_config.json")).unwrap();
    let e = CanaryConfig::from_json(&text).unwrap_err();
    assert_eq!(e.path, "judge.name");
    assert!(
        e.message.contains("dredd-v1.0") && e.message.contains("NetflixACAJudge-v1.0"),
        "{e}"
    );
}

#[test]
fn muted_critical_metric_does_not_fail_the_canary() {
    let text = std::fs::read_to_string(fixture(
        "kayenta/kayenta-integration-tests__src__test__resources__canary-configs__prometheus__muted-metric.json",
    ))
    .unwrap();
    let judge = Judge::new(&config(&text)).unwrap();
    let base = series(10.0);
    let pairs = [
        MetricSetPair::new("Failing metric", base.clone(), series(30.0)),
        MetricSetPair::new("Successful metric", base.clone(), base.clone()),
    ];
    let r = judge.judge_pairs(&pairs, 1).unwrap();
    assert_eq!(r.results[0].classification, Classification::High);
    assert!(r.results[0].muted && r.results[0].critical);
    assert_eq!(r.score.classification, ScoreClassification::Pass);
    assert_eq!(r.score.score, 100.0);
}

#[test]
fn critical_failure_nodata_rule_and_weights() {
    let c = config(
        r#"{"metrics":[
            {"name":"latency","groups":["perf"],"analysisConfigurations":{"canary":{"direction":"increase","critical":true}}},
            {"name":"errors","groups":["errors"],"analysisConfigurations":{"canary":{"direction":"increase","nanStrategy":"replace"}}},
            {"name":"cpu","groups":["perf"],"analysisConfigurations":{"canary":{"mustHaveData":true}}},
            {"name":"memory","groups":["perf"]}
        ],
        "classifier":{"groupWeights":{"perf":70,"errors":30},"scoreThresholds":{"pass":90,"marginal":60}}}"#,
    );
    let judge = Judge::new(&c).unwrap();
    assert_eq!(
        judge.thresholds(),
        ScoreThresholds {
            pass: 90.0,
            marginal: 60.0
        }
    );
    let b = series(100.0);

    // critical latency regression: score forced to 0 with Kayenta's reason
    let r = judge
        .judge_pairs(
            &[
                MetricSetPair::new("latency", b.clone(), series(150.0)),
                MetricSetPair::new("errors", b.clone(), b.clone()),
                MetricSetPair::new("cpu", b.clone(), b.clone()),
                MetricSetPair::new("memory", b.clone(), b.clone()),
            ],
            0,
        )
        .unwrap();
    assert_eq!(
        (r.score.score, r.score.classification),
        (0.0, ScoreClassification::Fail)
    );
    assert_eq!(
        r.score.classification_reason,
        "Canary Failed: The metric latency was classified as High (Critical)"
    );
    let mw = r.results[0].result_metadata.mann_whitney.unwrap();
    assert!(
        mw.ci_lower > 40.0 && mw.ci_upper < 60.0 && mw.p_value < 1e-10,
        "{mw:?}"
    );

    // missing cpu data on a must-have metric fails only that metric: perf
    // 2 of 3 pass -> 66.67% x 0.7 + errors 100% x 0.3 = 76.67 -> Marginal
    let r = judge
        .judge_pairs(
            &[
                MetricSetPair::new("latency", b.clone(), b.clone()),
                MetricSetPair::new("errors", vec![f64::NAN; 60], vec![f64::NAN; 60]),
                MetricSetPair::new("cpu", vec![f64::NAN; 60], b.clone()),
                MetricSetPair::new("memory", b.clone(), b.clone()),
            ],
            0,
        )
        .unwrap();
    assert_eq!(
        r.results[1].classification,
        Classification::Pass,
        "replace: NaN -> 0 on both sides"
    );
    assert_eq!(
        r.results[2].classification,
        Classification::NodataFailMetric
    );
    assert_eq!(r.score.score, 76.67);
    assert_eq!(r.score.classification, ScoreClassification::Marginal);

    // half the metrics without data: the 50% rule fails the canary
    let r = judge
        .judge_pairs(
            &[
                MetricSetPair::new("latency", b.clone(), b.clone()),
                MetricSetPair::new("memory", vec![], b.clone()),
            ],
            0,
        )
        .unwrap();
    assert_eq!(r.score.score, 0.0);
    assert!(
        r.score
            .classification_reason
            .contains("50% or more metrics returned NODATA")
    );
}

#[test]
fn json_shape_is_kayentas() {
    let judge = Judge::new(&config(r#"{"metrics":[{"name":"m","groups":["g"]}]}"#)).unwrap();
    let pairs = parse_pairs(
        r#"[{"name":"m","id":"abc","tags":{"pod":"p1"},"values":{"control":[0,0,0],"experiment":[0,"NaN",0]}}]"#,
    )
    .unwrap();
    let r = judge.judge_pairs(&pairs, 0).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["judgeName"], "NetflixACAJudge-v1.0");
    assert_eq!(v["results"][0]["id"], "abc");
    assert_eq!(v["results"][0]["tags"]["pod"], "p1");
    assert_eq!(v["results"][0]["classification"], "Pass");
    assert_eq!(v["results"][0]["experimentMetadata"]["stats"]["count"], 2);
    assert_eq!(v["groupScores"][0]["name"], "g");
    assert_eq!(v["score"]["classification"], "Pass");
    // identical data: ratio 1, no test run
    assert_eq!(v["results"][0]["resultMetadata"]["ratio"], 1.0);
    assert!(
        v["results"][0]["resultMetadata"]
            .get("mannWhitney")
            .is_none()
    );
    // a zero mean makes the ratio NaN, written as Kayenta's string
    let r = judge
        .judge_pairs(
            &[MetricSetPair::new(
                "m",
                vec![0.0; 5],
                vec![1.0, 2.0, 3.0, 4.0, 5.0],
            )],
            0,
        )
        .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["results"][0]["resultMetadata"]["ratio"], "NaN");
    // and it reads back
    let back: judge::CanaryJudgeResult = serde_json::from_value(v).unwrap();
    assert!(back.results[0].result_metadata.ratio.is_nan());
}

#[test]
fn fast_path_agrees_with_the_report() {
    let c = config(
        r#"{"metrics":[{"name":"a","groups":["x"]},{"name":"b","groups":["x","y"],
            "analysisConfigurations":{"canary":{"critical":true,"outliers":{"strategy":"remove"}}}}]}"#,
    );
    let judge = Judge::new(&c).unwrap();
    let mut ws = judge::Workspace::new();
    for (k, shift) in [(0, 1.0), (1, 1.02), (2, 1.2), (3, 0.8)] {
        let (ca, ea, cb, eb) = (
            series(10.0),
            series(10.0 * shift),
            series(5.0),
            series(5.0 / shift),
        );
        let full = judge
            .judge_pairs(
                &[
                    MetricSetPair::new("a", ca.clone(), ea.clone()),
                    MetricSetPair::new("b", cb.clone(), eb.clone()),
                ],
                k,
            )
            .unwrap();
        let fast = judge.judge_series(
            &[
                judge::Series {
                    control: &ca,
                    experiment: &ea,
                },
                judge::Series {
                    control: &cb,
                    experiment: &eb,
                },
            ],
            k,
            &mut ws,
        );
        assert_eq!(fast.score, full.score.score);
        assert_eq!(fast.classification, full.score.classification);
        let labels: Vec<_> = full
            .results
            .iter()
            .map(|r| (r.classification, r.critical))
            .collect();
        assert_eq!(fast.metrics, labels);
    }
}

#[test]
fn bad_configs_name_the_path() {
    let cases = [
        (r#"{"metrics":[]}"#, "metrics", "empty"),
        (
            r#"{"metrics":[{"name":"m"}],"judge":{"name":"other"}}"#,
            "judge.name",
            "unknown judge",
        ),
        (
            r#"{"metrics":[{"name":"m"}],"classifier":{"scoreThresholds":{"pass":50,"marginal":75}}}"#,
            "classifier.scoreThresholds",
            "above pass",
        ),
        (
            r#"{"metrics":[{"name":"m"}],"classifier":{"groupWeights":{"g":-5}}}"#,
            "classifier.groupWeights.g",
            "negative",
        ),
        (
            r#"{"metrics":[{"name":"m","analysisConfigurations":{"canary":{"direction":"up"}}}]}"#,
            "metrics[0].analysisConfigurations.canary.direction",
            "unknown variant",
        ),
        (
            r#"{"metrics":[{"name":"m"},{"name":"m"}]}"#,
            "metrics[1].name",
            "unique",
        ),
        (
            r#"{"metrics":[{"name":"m","query":{"customFilterTemplate":"t"}}]}"#,
            "metrics[0].query.customFilterTemplate",
            "not defined",
        ),
        (
            r#"{"metrics":[{"name":"m","analysisConfigurations":{"canary":{"outliers":{"strategy":"remove","outlierFactor":0}}}}]}"#,
            "metrics[0].analysisConfigurations.canary.outliers.outlierFactor",
            "positive",
        ),
        (
            r#"{"metrics":[{"name":"m"}"#,
            "metrics",
            "EOF while parsing",
        ),
    ];
    for (json, path, words) in cases {
        let e = CanaryConfig::from_json(json).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.to_string().contains(words), "{json}: {e}");
    }
    let e = CanaryConfig::from_json("{\n  \"metrics\": 5\n}").unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.position),
        ("metrics", Some((2, 14))),
        "{e}"
    );
}

#[test]
fn pairs_that_do_not_fit_the_config_are_refused() {
    let judge = Judge::new(&config(
        r#"{"metrics":[{"name":"latency"},{"name":"errors"}]}"#,
    ))
    .unwrap();
    let e = judge
        .judge_pairs(&[MetricSetPair::new("cpu", vec![1.0], vec![1.0])], 0)
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("[0].name") && text.contains("\"cpu\"") && text.contains("errors, latency"),
        "{text}"
    );
    let e = judge
        .judge_pairs(
            &[
                MetricSetPair::new("errors", vec![1.0], vec![1.0]),
                MetricSetPair::new("errors", vec![], vec![]),
            ],
            0,
        )
        .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
}
