//! Every case of Kayenta's own test suites (transcribed to JSON in
//! `tests/fixtures/kayenta/*.vectors.json`), run against this crate.

use judge::classifier::{ClassifyArgs, MannWhitneyClassifier, classify_mean_inequality};
use judge::config::{Direction, EffectSizeMeasure, NanStrategy, ScoreThresholds};
use judge::mannwhitney::{MannWhitney, mann_whitney, wilcoxon_diff};
use judge::scorer::{Scored, Weights};
use judge::{Classification, stats};
use serde_json::Value;

use crate::{json, num, nums};

const CLASSIFIER: &str = "kayenta/kayenta-judge__src__test__scala__com__netflix__kayenta__judge__ClassifierSuite.scala.vectors.json";
const SCORER: &str = "kayenta/kayenta-judge__src__test__scala__com__netflix__kayenta__judge__ScorerSuite.scala.vectors.json";
const STATS: &str = "kayenta/kayenta-judge__src__test__scala__com__netflix__kayenta__judge__StatisticDetectorTransformSuites.scala.vectors.json";
const MANN_WHITNEY: &str = "kayenta/kayenta-mannwhitney__src__test__scala__com__netflix__kayenta__mannwhitney__MannWhitneySuite.scala.vectors.json";

fn cases(file: &str) -> Vec<Value> {
    let doc = json(file);
    let cases = doc["cases"].as_array().expect("cases").clone();
    assert!(!cases.is_empty(), "{file} has no cases");
    cases
}

fn pair(v: &Value) -> (f64, f64) {
    let a = nums(v);
    assert_eq!(a.len(), 2, "threshold pair {v}");
    (a[0], a[1])
}

fn label(s: &str) -> Classification {
    serde_json::from_value(Value::String(s.into())).unwrap_or_else(|e| panic!("label {s}: {e}"))
}

#[test]
fn classifier_suite() {
    let mut checked_numbers = 0;
    let all = cases(CLASSIFIER);
    for case in &all {
        let name = case["test"].as_str().unwrap();
        let control = nums(&case["control"]);
        let experiment = nums(&case["experiment"]);
        let a = &case["classifyArgs"];
        let args = ClassifyArgs {
            name: "test-metric",
            direction: serde_json::from_value::<Direction>(a["direction"].clone()).unwrap(),
            nan_strategy: serde_json::from_value::<NanStrategy>(a["nanStrategy"].clone()).unwrap(),
            critical: a["isCriticalMetric"].as_bool().unwrap(),
            must_have_data: a["isDataRequired"].as_bool().unwrap(),
            noise_seed: 7,
        };
        let p = &case["classifierParams"];
        let result = match case["classifier"].as_str().unwrap() {
            "MannWhitneyClassifier" => {
                let classifier = MannWhitneyClassifier {
                    tolerance: p["tolerance"].as_f64().unwrap_or(0.25),
                    conf_level: p["confLevel"].as_f64().unwrap_or(0.95),
                    effect_size_thresholds: p.get("effectSizeThresholds").map_or((1.0, 1.0), pair),
                    critical_thresholds: p.get("criticalThresholds").map_or((1.0, 1.0), pair),
                    measure: match p.get("effectSizeMeasure").and_then(Value::as_str) {
                        Some("cles") => EffectSizeMeasure::Cles,
                        _ => EffectSizeMeasure::MeanRatio,
                    },
                };
                let full =
                    classifier.classify(&mut MannWhitney::new(), &control, &experiment, &args);
                // the fast path must agree on everything but the interval
                let fast =
                    classifier.classify_fast(&mut MannWhitney::new(), &control, &experiment, &args);
                assert_eq!(fast.classification, full.classification, "{name}: fast");
                assert_eq!(fast.critical, full.critical, "{name}: fast critical");
                assert_eq!(fast.reason, full.reason, "{name}: fast reason");
                assert!(
                    fast.deviation.to_bits() == full.deviation.to_bits()
                        || (fast.deviation.is_nan() && full.deviation.is_nan()),
                    "{name}: fast deviation"
                );
                full
            }
            "MeanInequalityClassifier" => classify_mean_inequality(&control, &experiment, &args),
            other => panic!("{name}: unknown classifier {other}"),
        };
        let expected = &case["expected"];
        if let Some(c) = expected.get("classification") {
            assert_eq!(
                result.classification,
                label(c.as_str().unwrap()),
                "{name}: {result:?}"
            );
        }
        if let Some(c) = expected.get("critical") {
            assert_eq!(result.critical, c.as_bool().unwrap(), "{name}: critical");
        }
        if expected.get("reasonNonEmpty").is_some() {
            assert!(
                result.reason.as_deref().is_some_and(|r| !r.is_empty()),
                "{name}: reason"
            );
        }
        if expected.get("deviationIsNaN").is_some() {
            assert!(
                result.deviation.is_nan(),
                "{name}: deviation {}",
                result.deviation
            );
        }
        if let Some(d) = expected.get("deviation") {
            assert_eq!(result.deviation, num(d), "{name}: deviation");
        }
        // Numbers from an outside transcription of Kayenta (not Kayenta's
        // assertions): the interval and estimate must match them closely,
        // which is only possible if our root finder takes Kayenta's steps.
        if let Some(r) = case.get("referenceComputed") {
            let mw = result
                .mann_whitney
                .unwrap_or_else(|| panic!("{name}: no interval computed"));
            for (field, ours) in [
                ("ciLower", mw.ci_lower),
                ("ciUpper", mw.ci_upper),
                ("estimate", mw.estimate),
            ] {
                let want = num(&r[field]);
                assert!(
                    (ours - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{name}: {field} {ours} vs {want}"
                );
            }
            let want = num(&r["effectSize"]);
            assert!(
                (want.is_nan() && result.deviation.is_nan())
                    || (result.deviation - want).abs() < 1e-12,
                "{name}: effect size {} vs {want}",
                result.deviation
            );
            checked_numbers += 1;
        }
    }
    assert!(
        checked_numbers >= 20,
        "only {checked_numbers} cases had reference numbers"
    );
}

#[test]
fn mann_whitney_suite() {
    for case in cases(MANN_WHITNEY) {
        let name = case["test"].as_str().unwrap();
        let expected = &case["expected"];
        match name {
            "Wilcoxon Diff Function" => {
                let (x, y) = (nums(&case["x"]), nums(&case["y"]));
                for e in expected.as_array().unwrap() {
                    let call = e["call"].as_str().unwrap();
                    let mu = if call.contains("mu=5") { 5.0 } else { 0.0 };
                    let got = wilcoxon_diff(mu, 0.0, &x, &y).unwrap();
                    assert!(
                        (got - num(&e["value"])).abs() < num(&e["abs_tol"]),
                        "{call}: {got}"
                    );
                }
            }
            "Test zQuant" => {
                let e = &expected[0];
                let got = stats::qnorm(0.02 / 2.0);
                assert!((got - num(&e["value"])).abs() < num(&e["abs_tol"]), "{got}");
            }
            "Mann-Whitney Intermediate Values / Variables" => {
                let (x, y) = (nums(&case["x"]), nums(&case["y"]));
                let tol = num(&case["abs_tol"]);
                let conf = num(&case["confidenceLevel"]);
                let close = |what: &str, got: f64| {
                    let want = num(&expected[what]);
                    assert!((got - want).abs() < tol, "{what}: {got} vs {want}");
                };
                let mu_min = x.iter().copied().fold(f64::INFINITY, f64::min)
                    - y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mu_max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    - y.iter().copied().fold(f64::INFINITY, f64::min);
                close("rMumin", mu_min);
                close("rMumax", mu_max);
                let zq = -stats::qnorm((1.0 - conf) / 2.0);
                close("rZqLower", zq);
                close("rZqUpper", -zq);
                close("rFlower1", wilcoxon_diff(mu_min, zq, &x, &y).unwrap());
                close("rFupper1", wilcoxon_diff(mu_max, zq, &x, &y).unwrap());
                close("rFlower2", wilcoxon_diff(mu_min, -zq, &x, &y).unwrap());
                close("rFupper2", wilcoxon_diff(mu_max, -zq, &x, &y).unwrap());
                let r = mann_whitney(&x, &y, conf).unwrap();
                crate::fast_band::check_band(&x, &y, conf, name);
                close("rCil", r.ci_lower);
                close("rCiu", r.ci_upper);
                close("rEst", r.estimate);
            }
            _ => {
                let (x, y) = (nums(&case["x_experiment"]), nums(&case["y_control"]));
                let r = mann_whitney(&x, &y, num(&case["confidenceLevel"])).unwrap();
                crate::fast_band::check_band(&x, &y, num(&case["confidenceLevel"]), name);
                for (field, got) in [
                    ("ciLower", r.ci_lower),
                    ("ciUpper", r.ci_upper),
                    ("estimate", r.estimate),
                ] {
                    let e = &expected[field];
                    let want = num(&e["value"]);
                    assert!(
                        (got - want).abs() < num(&e["abs_tol"]),
                        "{name}: {field} {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn scorer_suite() {
    for case in cases(SCORER) {
        let name = case["test"].as_str().unwrap();
        let metrics = case["metricResults"].as_array().unwrap();
        let mut groups: Vec<String> = metrics
            .iter()
            .flat_map(|m| {
                m["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| g.as_str().unwrap().to_string())
            })
            .chain(case["groupWeights"].as_object().unwrap().keys().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        let weights = Weights {
            weights: groups
                .iter()
                .map(|g| case["groupWeights"].get(g).map(num))
                .collect(),
        };
        let ids: Vec<Vec<usize>> = metrics
            .iter()
            .map(|m| {
                m["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| {
                        groups
                            .iter()
                            .position(|x| x == g.as_str().unwrap())
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        let scored: Vec<Scored<'_>> = metrics
            .iter()
            .zip(&ids)
            .map(|(m, ids)| Scored {
                classification: label(m["classification"].as_str().unwrap()),
                groups: ids,
                critical: m["critical"].as_bool().unwrap(),
                reason: None,
            })
            .collect();
        let result = weights.score(&scored, &mut Vec::new());
        let expected = &case["expected"];
        assert_eq!(
            result.score,
            num(&expected["summaryScore"]),
            "{name}: {result:?}"
        );
        if let Some(g) = expected.get("groupScores") {
            for (group, want) in g.as_object().unwrap() {
                let idx = groups.iter().position(|x| x == group).unwrap();
                let got = result.groups.iter().find(|s| s.group == idx).unwrap().score;
                assert_eq!(got, num(want), "{name}: group {group}");
            }
        }
        if let Some(g) = expected.get("groupScoresSorted") {
            let mut got: Vec<f64> = result.groups.iter().map(|s| s.score).collect();
            got.sort_by(f64::total_cmp);
            assert_eq!(got, nums(g), "{name}: group scores");
        }
    }
    // the thresholds are inclusive, as ThresholdScoreClassifier's are
    let t = ScoreThresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    assert_eq!(judge::scorer::classify_score(75.0, 1, t).as_str(), "Pass");
    assert_eq!(
        judge::scorer::classify_score(50.0, 1, t).as_str(),
        "Marginal"
    );
    assert_eq!(judge::scorer::classify_score(49.99, 1, t).as_str(), "Fail");
}

#[test]
fn statistics_detector_transform_suites() {
    for case in cases(STATS) {
        let name = case["test"].as_str().unwrap();
        let function = case["function"].as_str().unwrap();
        let inputs = &case["inputs"];
        let expected = &case["expected"];
        let tol = case.get("abs_tol").map_or(0.0, num);
        let close = |got: f64, want: f64, what: &str| {
            let ok = (got.is_nan() && want.is_nan()) || (got - want).abs() <= tol;
            assert!(ok, "{name}: {what} {got} vs {want}");
        };
        let (control, experiment) = (
            inputs.get("control").map(nums).unwrap_or_default(),
            inputs.get("experiment").map(nums).unwrap_or_default(),
        );
        let values = inputs.get("values").map(nums).unwrap_or_default();
        if function.starts_with("DescriptiveStatistics.summary") {
            let s = judge::Summary::of(&values);
            for (k, got) in [
                ("min", s.min),
                ("max", s.max),
                ("mean", s.mean),
                ("std", s.std),
            ] {
                close(got, num(&expected[k]), k);
            }
            assert_eq!(
                s.count as u64,
                expected["count"].as_u64().unwrap(),
                "{name}: count"
            );
        } else if function.starts_with("percentile") {
            for (k, want) in expected.as_object().unwrap() {
                let p: f64 = k[1..].parse().unwrap();
                close(stats::percentile(&values, p), num(want), k);
            }
        } else if function.starts_with("EffectSizes.meanRatio") {
            close(
                stats::mean_ratio(&control, &experiment),
                num(&expected["value"]),
                "ratio",
            );
        } else if function.starts_with("EffectSizes.cohenD") {
            close(
                stats::cohen_d(&experiment, &control),
                num(&expected["value"]),
                "cohen d",
            );
        } else if function.starts_with("EffectSizes.cles") {
            // Scala's `===` without a tolerance is exact; 0.12 is not exactly
            // representable as a rank-sum ratio, so allow one rounding.
            let tol = tol.max(1e-15);
            let got = stats::cles(&control, &experiment);
            let want = num(&expected["value"]);
            assert!((got - want).abs() <= tol, "{name}: cles {got} vs {want}");
        } else if function.contains("Detector") && function.ends_with(".detect") {
            let flags = if function.starts_with("KSigma") {
                let k = if function.contains("k=1.0") { 1.0 } else { 3.0 };
                stats::ksigma_outliers(&values, k)
            } else {
                stats::iqr_outliers(&values, 1.5, false)
            };
            let want: Vec<bool> = expected["outlier"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect();
            assert_eq!(flags, want, "{name}");
        } else if function.starts_with("Transforms.") {
            let got = if function.starts_with("Transforms.removeNaNs") {
                judge::preprocess(&values, NanStrategy::Remove, None)
            } else if function.starts_with("Transforms.replaceNaNs") {
                judge::preprocess(&values, NanStrategy::Replace, None)
            } else if function.contains("KSigma") {
                stats::remove_flagged(&values, &stats::ksigma_outliers(&values, 3.0))
            } else {
                stats::remove_flagged(&values, &stats::iqr_outliers(&values, 1.5, false))
            };
            assert_eq!(got, nums(&expected["values"]), "{name}");
        } else {
            panic!("{name}: no test for {function}");
        }
    }
}
