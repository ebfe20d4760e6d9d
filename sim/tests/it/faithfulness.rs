use reports::model::Rate;
use scenarios::Scenario;
use sim::run_study;

use crate::{fixture, opts, scenario};

fn rollback_rate(s: &Scenario, runs: u32) -> Rate {
    let study = run_study(std::slice::from_ref(s), opts(runs, 0), &|_, _| {}).unwrap();
    study.scenarios[0].rollback_rate
}

/// A binomial band of `sigmas` standard deviations around `p` for `n` runs.
fn band(p: f64, n: u32, sigmas: f64) -> (f64, f64) {
    let sd = (p * (1.0 - p) / f64::from(n)).sqrt();
    (p - sigmas * sd, p + sigmas * sd)
}

#[test]
fn independent_points_false_alarm_rate_matches_theory() {
    // STATISTICS.md: Kayenta's rule on independent points, n = 60 per arm:
    // about 0.15% per window. One metric, one window: the run's rate.
    let s = Scenario::load(&fixture("aa-iid.toml"), None).unwrap();
    let runs = 6000;
    let r = rollback_rate(&s, runs);
    let (lo, hi) = band(0.0015, runs, 3.5);
    assert!(
        r.rate >= lo.max(0.0) && r.rate <= hi,
        "false alarms {r:?}, theory 0.15% band [{lo}, {hi}]"
    );
}

#[test]
fn autocorrelated_points_inflate_false_alarms_as_theory_predicts() {
    // STATISTICS.md: lag-1 correlation 0.5 multiplies the Mann-Whitney
    // variance by 2.92; Kayenta's rule then fails about 6.6% of windows.
    let s = Scenario::load(&fixture("aa-ar1-rho0.5.toml"), None).unwrap();
    let runs = 4000;
    let r = rollback_rate(&s, runs);
    let (lo, hi) = band(0.066, runs, 3.5);
    assert!(
        r.rate >= lo && r.rate <= hi,
        "false alarms {r:?}, theory 6.6% band [{lo}, {hi}]"
    );
}

#[test]
fn detection_rises_with_effect_size_and_with_traffic() {
    let latency = |increase: f64, rate: f64| {
        scenario(
            &format!("latency-{increase}-{rate}"),
            &format!(
                "description = \"latency\"\nexpect = \"fail\"\n[service]\nrequest_rate = {rate}\n\
                 [regression]\nkind = \"latency\"\nincrease = {increase}\n[analysis]\nconfig = \"canary-config.json\"\n\
                 rate_window_s = 10\n"
            ),
        )
    };
    let runs = 300;
    let mut previous = -1.0;
    for increase in [0.0, 0.02, 0.05, 0.10, 0.25] {
        let r = rollback_rate(&latency(increase, 200.0), runs);
        // rates are noisy: require a rise beyond the earlier one's band
        assert!(
            r.upper + 1e-9 >= previous,
            "increase {increase}: {r:?} below previous {previous}"
        );
        previous = r.rate;
    }
    assert!(previous > 0.95, "a 25% regression is caught: {previous}");
    let low = rollback_rate(&latency(0.05, 10.0), runs);
    let high = rollback_rate(&latency(0.05, 400.0), runs);
    assert!(
        high.lower > low.upper,
        "more traffic, more power: low {low:?} high {high:?}"
    );
}
