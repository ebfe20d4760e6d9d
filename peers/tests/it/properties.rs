//! The decision-time formulas hold over the parameters, not only for the
//! hand-worked examples (proptest).

use peers::{Decision, QueryResult, load};
use proptest::prelude::*;

use crate::{run, secs};

fn flagger(interval: u64, threshold: u32, step: u32, max: u32) -> peers::FlaggerCanary {
    let text = format!(
        "kind: Canary\nmetadata: {{name: c, namespace: n}}\nspec:\n  targetRef: {{name: c}}\n  analysis:\n    interval: {interval}s\n    threshold: {threshold}\n    stepWeight: {step}\n    maxWeight: {max}\n    metrics:\n    - name: request-success-rate\n      thresholdRange: {{min: 99}}\n"
    );
    peers::FlaggerCanary::new(
        load("c.yaml", &text)
            .expect("loads")
            .flagger
            .plan()
            .expect("plans"),
    )
}

fn argo(delay: u64, interval: u64, limit: u32, pause: u64) -> peers::ArgoRollout {
    let text = format!(
        "kind: Rollout\nmetadata: {{name: r}}\nspec:\n  strategy:\n    canary:\n      analysis: {{templates: [{{templateName: t}}]}}\n      steps: [{{setWeight: 10}}, {{pause: {{duration: {pause}}}}}]\n---\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  metrics:\n  - name: m\n    initialDelay: {delay}s\n    interval: {interval}s\n    failureLimit: {limit}\n    successCondition: result[0] < 1\n    provider: {{prometheus: {{query: q}}}}\n"
    );
    peers::ArgoRollout::new(
        load("r.yaml", &text)
            .expect("loads")
            .argo
            .plan(&Default::default())
            .expect("plans"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// scheduler.go: rollback at interval * (threshold + 1) after the first
    /// traffic shift (tick 1, one interval after start).
    #[test]
    fn flagger_rollback_time(interval in 10u64..300, threshold in 1u32..12, step in 1u32..60, extra in 0u32..60) {
        let max = (step + extra).min(100);
        let mut c = flagger(interval, threshold, step, max);
        let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![50.0]));
        prop_assert_eq!(out.decision, Decision::Rollback);
        prop_assert_eq!(out.at, secs(interval) + secs(interval * u64::from(threshold + 1)));
        prop_assert_eq!(c.failed_checks(), threshold);
    }

    /// scheduler.go runCanary: weight k*step after tick k; promotion on the
    /// tick after it reaches maxWeight: interval * ceil(max / step) after tick 1
    /// (interval * maxWeight / stepWeight when step divides max).
    #[test]
    fn flagger_promotion_time(interval in 10u64..300, step in 1u32..60, extra in 0u32..60) {
        let max = (step + extra).min(100);
        let mut c = flagger(interval, 3, step, max);
        let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![100.0]));
        prop_assert_eq!(out.decision, Decision::Promote);
        prop_assert_eq!(out.at, secs(interval) + secs(interval * u64::from(max.div_ceil(step))));
    }

    /// analysis.go: every measurement failing aborts at
    /// initialDelay + failureLimit * interval after the run starts; every one
    /// passing promotes when the last step (the pause) ends.
    #[test]
    fn argo_abort_and_promotion_times(delay in 0u64..600, interval in 1u64..600, limit in 0u32..6) {
        let abort_at = delay + u64::from(limit) * interval;
        let pause = abort_at + interval + 1;
        let mut c = argo(delay, interval, limit, pause);
        let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![5.0]));
        prop_assert_eq!(out.decision, Decision::Rollback);
        prop_assert_eq!(out.at, secs(abort_at));
        let mut c = argo(delay, interval, limit, pause);
        let (_, out) = run(&mut c, |_| QueryResult::Vector(vec![0.5]));
        prop_assert_eq!(out.decision, Decision::Promote);
        prop_assert_eq!(out.at, secs(pause));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Bad input never panics: any text is a condition or a parse error, and
    /// any parsed condition evaluates or errors.
    #[test]
    fn conditions_never_panic(src in "[-+*/%<>=!&|?:.,()\\[\\]{}# a-z0-9_\"']{0,40}", x in proptest::num::f64::ANY) {
        if let Ok(c) = peers::expr::Condition::parse(&src) {
            let _ = c.eval(&peers::expr::Value::Float(x));
            let _ = c.eval(&peers::expr::Value::Array(vec![peers::expr::Value::Float(x)]));
            let _ = c.eval(&peers::expr::Value::Array(vec![]));
        }
    }

    /// Any YAML-ish text loads or is refused with an error, never a panic.
    #[test]
    fn load_never_panics(text in "(kind: (Rollout|Canary|AnalysisTemplate|MetricTemplate)\n)?[-a-z: {}\\[\\],\n0-9]{0,120}") {
        if let Ok(b) = load("fuzz.yaml", &text) {
            let _ = b.controller(&Default::default());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Plausible files with odd numbers (weights past 0..100, negative and
    /// zero limits, counts below the limits): refused, or run to a decision,
    /// never a panic or a hang; about 80% run. Intervals of a second or more
    /// and pauses under a day keep a run under ~60,000 measurements.
    #[test]
    fn odd_numbers_never_panic_or_hang(
        weight in -1i64..=101, pause in "[0-9]{1,3}(s|m)?", interval in "[1-9][0-9]{0,2}(s|m)", count in -1i64..30,
        limit in -1i64..4, cel in 0i64..8, csl in 0i64..3, threshold in -3i64..20, step in -5i64..150, max in -5i64..150,
    ) {
        let argo = format!(
            "kind: Rollout\nmetadata: {{name: r}}\nspec:\n  strategy:\n    canary:\n      analysis: {{templates: [{{templateName: t}}]}}\n      steps: [{{setWeight: {weight}}}, {{pause: {{duration: \"{pause}\"}}}}]\n---\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  metrics:\n  - name: m\n    interval: \"{interval}\"\n    count: {count}\n    failureLimit: {limit}\n    consecutiveErrorLimit: {cel}\n    consecutiveSuccessLimit: {csl}\n    successCondition: result[0] < 1\n    provider: {{prometheus: {{query: q}}}}\n"
        );
        if let Ok(b) = load("a.yaml", &argo)
            && let Ok(mut c) = b.controller(&Default::default())
        {
            let _ = crate::run_until(c.as_mut(), |q| QueryResult::Vector(if q.at.as_secs() % 3 == 0 { vec![] } else { vec![0.5] }));
        }
        let flagger = format!(
            "kind: Canary\nmetadata: {{name: c}}\nspec:\n  targetRef: {{name: c}}\n  analysis:\n    interval: \"{interval}\"\n    threshold: {threshold}\n    stepWeight: {step}\n    maxWeight: {max}\n    metrics:\n    - name: request-duration\n      thresholdRange: {{max: 500}}\n"
        );
        if let Ok(b) = load("f.yaml", &flagger)
            && let Ok(mut c) = b.controller(&Default::default())
        {
            let _ = crate::run_until(c.as_mut(), |q| QueryResult::Vector(if q.at.as_secs() % 7 == 0 { vec![] } else { vec![100.0] }));
        }
    }
}
