//! peers' integration tests: the peers' own files, and decision times worked
//! out by hand from the peers' code.

mod argo_rules;
mod catalog;
mod expr_vectors;
mod fixtures;
mod flagger_rules;
mod properties;

use std::time::Duration;

use peers::{Answer, Command, Controller, Outcome, Query, QueryResult, drive};

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Run to the end (at most 10 simulated hours), answering every query with `answer`.
pub fn run(
    c: &mut dyn Controller,
    answer: impl Fn(&Query) -> QueryResult,
) -> (Vec<Command>, Outcome) {
    let log = drive(c, Duration::ZERO, secs(36_000), |cmd| match cmd {
        Command::Measure { query, .. } => Some(Answer::Measured(answer(query))),
        _ => None,
    });
    let outcome = c.outcome().cloned().expect("the controller decided");
    (log, outcome)
}

/// Times of the Measure commands.
pub fn measure_times(log: &[Command]) -> Vec<u64> {
    log.iter()
        .filter_map(|c| match c {
            Command::Measure { query, .. } => Some(query.at.as_secs()),
            _ => None,
        })
        .collect()
}

/// (time, weight) of the SetWeight commands.
pub fn weights(log: &[Command]) -> Vec<(u64, u32)> {
    log.iter()
        .filter_map(|c| match c {
            Command::SetWeight { at, canary_percent } => Some((at.as_secs(), *canary_percent)),
            _ => None,
        })
        .collect()
}

/// Run for at most 10 simulated hours and 200,000 commands; the outcome if any.
pub fn run_until(
    c: &mut dyn Controller,
    answer: impl Fn(&Query) -> QueryResult,
) -> Option<Outcome> {
    let mut n = 0u32;
    drive(c, Duration::ZERO, secs(36_000), |cmd| {
        n += 1;
        assert!(n < 200_000, "the controller keeps asking");
        match cmd {
            Command::Measure { query, .. } => Some(Answer::Measured(answer(query))),
            _ => None,
        }
    });
    c.outcome().cloned()
}
