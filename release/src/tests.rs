//! The verdict a real mode reports from a controller's outcome.

use std::time::Duration;

use super::*;

fn outcome(end: ReleaseEnd, interval: Option<usize>) -> Outcome {
    Outcome {
        end,
        reason: "why".into(),
        decided_at: 70_000,
        ended_at: 80_000,
        deploy_started: Some(1_000),
        traffic_at: Some(10_000),
        decided_at_interval: interval,
        timeline: Vec::new(),
    }
}

#[test]
fn a_window_that_decided_dates_the_decision() {
    let o = outcome(ReleaseEnd::Rollback, Some(1));
    let a = o
        .analysis(vec![90.0, 20.0], Some(Duration::from_secs(55)), 1.0)
        .expect("a verdict");
    assert_eq!(a.end, ReleaseEnd::Rollback);
    assert_eq!(a.reason, "why");
    assert_eq!(a.scores, [90.0, 20.0]);
    assert_eq!(a.decided_at, Duration::from_secs(55));
}

#[test]
fn an_operator_decision_counts_from_the_traffic_shift_in_driver_time() {
    let o = outcome(ReleaseEnd::Promote, None);
    let a = o
        .analysis(vec![90.0], Some(Duration::from_secs(55)), 0.5)
        .expect("a verdict");
    // 60 s after the shift, at half speed
    assert_eq!(a.decided_at, Duration::from_secs(30));
}

#[test]
fn only_promote_and_rollback_are_verdicts() {
    for end in [
        ReleaseEnd::DeployFailed,
        ReleaseEnd::BuildFailed,
        ReleaseEnd::Error,
        ReleaseEnd::Paused,
    ] {
        assert_eq!(outcome(end, None).analysis(Vec::new(), None, 1.0), None);
    }
}

#[test]
fn the_judges_analysis_outcome_converts() {
    let o = judge::analysis::Outcome {
        decision: judge::analysis::Decision::Promote,
        reason: "passed".into(),
        scores: vec![100.0],
        decided_at: Duration::from_secs(9),
    };
    let a = AnalysisOutcome::from(o);
    assert_eq!(
        (a.end, a.reason.as_str(), a.decided_at),
        (ReleaseEnd::Promote, "passed", Duration::from_secs(9))
    );
}

#[test]
fn operator_input_parses_as_typed() {
    assert_eq!(" Promote\n".parse(), Ok(OperatorInput::Promote));
    assert_eq!("abort".parse(), Ok(OperatorInput::Abort));
    assert_eq!("RESUME".parse(), Ok(OperatorInput::Resume));
    let err = "rollback"
        .parse::<OperatorInput>()
        .expect_err("not an input");
    assert!(err.contains("promote, abort or resume"), "{err}");
}
