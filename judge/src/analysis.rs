//! Kayenta's multi-interval canary analysis, as Spinnaker runs it (orca's
//! `RunCanaryIntervalsStage` and `CompleteCanaryStage`), as a pure state
//! machine: the caller fetches and judges each window and feeds the score
//! back; the machine says which window comes next or what was decided.
//!
//! - `lifetime` is split into `lifetime / interval` intervals (one interval
//!   when `interval` is absent or longer than the lifetime);
//! - interval `i` (1-based) ends at `warmup + i * interval`;
//! - with no `lookback` every window starts at `warmup` (a growing window);
//!   with a lookback it starts `lookback` before its end (a sliding window);
//! - an interval whose score is not above the marginal threshold fails the
//!   canary at once; after the last interval, a score at or above the pass
//!   threshold promotes, anything else (a final Marginal too) fails.
//!
//! Not for: waiting. Times are offsets from the start of the canary; the
//! simulator and the real modes decide what they mean.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ScoreThresholds;
use crate::error::InputError;

/// When the canary is analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Total analysis time after the warmup.
    #[serde(with = "secs")]
    pub lifetime: Duration,
    /// Time between judgements; `None` judges once at the end.
    #[serde(default, with = "opt_secs")]
    pub interval: Option<Duration>,
    /// Time before the first window starts (`beginCanaryAnalysisAfter`).
    #[serde(default, with = "secs")]
    pub warmup: Duration,
    /// Sliding-window length; `None` grows each window from the warmup.
    #[serde(default, with = "opt_secs")]
    pub lookback: Option<Duration>,
}

/// One analysis window, as offsets from the canary start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// 1-based interval number.
    pub index: usize,
    /// Window start.
    #[serde(with = "secs")]
    pub start: Duration,
    /// Window end (when the interval is judged).
    #[serde(with = "secs")]
    pub end: Duration,
}

impl Schedule {
    /// The windows, in order.
    pub fn windows(&self) -> Result<Vec<Window>, InputError> {
        if self.lifetime.is_zero() {
            return Err(InputError::at(
                "lifetime",
                "the canary lifetime is zero; nothing would be analysed",
            ));
        }
        let interval = match self.interval {
            Some(i) if !i.is_zero() && i <= self.lifetime => i,
            _ => self.lifetime,
        };
        let count = (self.lifetime.as_nanos() / interval.as_nanos()) as usize;
        Ok((1..=count)
            .map(|index| {
                let end = self.warmup + interval * index as u32;
                let start = match self.lookback {
                    Some(l) if !l.is_zero() => end.saturating_sub(l),
                    _ => self.warmup,
                };
                Window { index, start, end }
            })
            .collect())
    }
}

/// What the analysis decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// The canary passed: promote it.
    Promote,
    /// The canary failed: roll it back.
    Rollback,
}

/// The end of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Promote or roll back.
    pub decision: Decision,
    /// Which rule decided, in words.
    pub reason: String,
    /// Score of each judged interval, in order.
    pub scores: Vec<f64>,
    /// When the decision was made (end of the last judged window).
    #[serde(with = "secs")]
    pub decided_at: Duration,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Judge this window next.
    Judge(Window),
    /// The analysis is over.
    Done(Outcome),
}

/// The multi-interval analysis state machine.
#[derive(Debug, Clone)]
pub struct Analysis {
    windows: Vec<Window>,
    thresholds: ScoreThresholds,
    scores: Vec<f64>,
}

impl Analysis {
    /// Start an analysis; the first step is `Judge(first window)`.
    pub fn new(schedule: &Schedule, thresholds: ScoreThresholds) -> Result<Self, InputError> {
        thresholds.validate("scoreThresholds")?;
        Ok(Self {
            windows: schedule.windows()?,
            thresholds,
            scores: Vec::new(),
        })
    }

    /// All windows this analysis may judge.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The window to judge now.
    pub fn first(&self) -> Window {
        self.windows[0]
    }

    /// Record the current window's score and say what comes next.
    ///
    /// # Panics
    /// If called again after the analysis is done.
    pub fn record(&mut self, score: f64) -> Step {
        let window = self.windows[self.scores.len()];
        self.scores.push(score);
        let t = self.thresholds;
        let done = |decision, reason: String, scores: &[f64]| {
            Step::Done(Outcome {
                decision,
                reason,
                scores: scores.to_vec(),
                decided_at: window.end,
            })
        };
        if score <= t.marginal {
            return done(
                Decision::Rollback,
                format!(
                    "interval {} of {} scored {score}, not above the marginal threshold {}",
                    window.index,
                    self.windows.len(),
                    t.marginal
                ),
                &self.scores,
            );
        }
        match self.windows.get(self.scores.len()) {
            Some(&next) => Step::Judge(next),
            None if score >= t.pass => done(
                Decision::Promote,
                format!(
                    "final interval scored {score}, at or above the pass threshold {}",
                    t.pass
                ),
                &self.scores,
            ),
            None => done(
                Decision::Rollback,
                format!(
                    "final interval scored {score}, marginal: below the pass threshold {}",
                    t.pass
                ),
                &self.scores,
            ),
        }
    }

    /// Run the whole analysis with `judge` scoring each window.
    pub fn run(mut self, mut judge: impl FnMut(&Window) -> f64) -> Outcome {
        let mut window = self.first();
        loop {
            match self.record(judge(&window)) {
                Step::Judge(next) => window = next,
                Step::Done(outcome) => return outcome,
            }
        }
    }
}

mod secs {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

mod opt_secs {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn schedule(
        lifetime: u32,
        interval: Option<u32>,
        warmup: u32,
        lookback: Option<u32>,
    ) -> Schedule {
        Schedule {
            lifetime: MIN * lifetime,
            interval: interval.map(|i| MIN * i),
            warmup: MIN * warmup,
            lookback: lookback.map(|l| MIN * l),
        }
    }

    #[test]
    fn growing_and_sliding_windows() {
        let w = schedule(60, Some(20), 10, None).windows().unwrap();
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|w| w.start == MIN * 10));
        assert_eq!(w[2].end, MIN * 70);
        let s = schedule(60, Some(20), 10, Some(20)).windows().unwrap();
        assert_eq!((s[1].start, s[1].end), (MIN * 30, MIN * 50));
        // no interval, or one longer than the lifetime: judged once
        assert_eq!(schedule(60, None, 0, None).windows().unwrap().len(), 1);
        assert_eq!(schedule(60, Some(90), 0, None).windows().unwrap().len(), 1);
        // a remainder is not judged, as in orca
        assert_eq!(schedule(50, Some(20), 0, None).windows().unwrap().len(), 2);
        assert!(schedule(0, None, 0, None).windows().is_err());
    }

    #[test]
    fn fail_fast_and_final_marginal() {
        let t = ScoreThresholds {
            pass: 75.0,
            marginal: 50.0,
        };
        let sch = schedule(60, Some(20), 0, None);
        let run = |scores: &[f64]| {
            let mut it = scores.iter();
            Analysis::new(&sch, t).unwrap().run(|_| *it.next().unwrap())
        };
        let o = run(&[100.0, 50.0, 100.0]);
        assert_eq!(
            (o.decision, o.scores.len(), o.decided_at),
            (Decision::Rollback, 2, MIN * 40)
        );
        let o = run(&[60.0, 60.0, 60.0]);
        assert_eq!((o.decision, o.scores.len()), (Decision::Rollback, 3));
        assert!(o.reason.contains("marginal"), "{}", o.reason);
        let o = run(&[60.0, 60.0, 75.0]);
        assert_eq!(o.decision, Decision::Promote);
    }
}
