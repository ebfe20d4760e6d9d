//! Kayenta's `WeightedSumScorer` and `ThresholdScoreClassifier`: metric
//! labels become group scores, a weighted summary score, and a
//! Pass / Marginal / Fail verdict.

use serde::{Deserialize, Serialize};

use crate::classifier::Classification;
use crate::config::ScoreThresholds;

/// Share of Nodata metrics at or above which the canary fails.
pub const NODATA_THRESHOLD: f64 = 50.0;

/// What the scorer needs of one metric result.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// The metric's label.
    pub classification: Classification,
    /// Indices into the group list.
    pub groups: &'a [usize],
    /// Whether the result fails the canary outright.
    pub critical: bool,
    /// The metric's name, for the reason.
    pub reason: Option<&'a str>,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupScore {
    /// Index into the group list.
    pub group: usize,
    /// Pass share of the scored metrics, in percent (0 when no data).
    pub score: f64,
    /// Every metric of the group was Nodata (or Error).
    pub no_data: bool,
}

/// The summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreResult {
    /// Per group, in group-list order, only groups that have metrics.
    pub groups: Vec<GroupScore>,
    /// Weighted summary score, rounded to 2 decimals (0 on an override).
    pub score: f64,
    /// Why the score was forced to 0, if it was.
    pub reason: Option<String>,
}

/// The canary verdict from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScoreClassification {
    /// At or above the pass threshold.
    Pass,
    /// At or above the marginal threshold.
    Marginal,
    /// Below the marginal threshold.
    Fail,
    /// No metric was scored.
    Nodata,
}

impl ScoreClassification {
    /// Kayenta's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Marginal => "Marginal",
            Self::Fail => "Fail",
            Self::Nodata => "Nodata",
        }
    }
}

impl std::fmt::Display for ScoreClassification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Group weights resolved against a group list: `None` for groups without
/// a configured weight (they share what is left of 100).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Per group index.
    pub weights: Vec<Option<f64>>,
}

impl Weights {
    /// Score `results`. `scratch` holds per-group counters and is reused.
    pub fn score(&self, results: &[Scored<'_>], scratch: &mut Vec<[u32; 3]>) -> ScoreResult {
        let n_groups = self.weights.len();
        scratch.clear();
        // per group: [pass, failed (High, Low, NodataFailMetric), any metric]
        scratch.resize(n_groups, [0, 0, 0]);
        for r in results {
            for &g in r.groups {
                let c = &mut scratch[g];
                c[2] += 1;
                match r.classification {
                    Classification::Pass => c[0] += 1,
                    Classification::High
                    | Classification::Low
                    | Classification::NodataFailMetric => c[1] += 1,
                    Classification::Nodata | Classification::Error => {}
                }
            }
        }
        let groups: Vec<GroupScore> = scratch
            .iter()
            .enumerate()
            .filter(|(_, c)| c[2] > 0)
            .map(|(group, c)| {
                let total = c[0] + c[1];
                GroupScore {
                    group,
                    score: if total == 0 {
                        0.0
                    } else {
                        f64::from(c[0]) / f64::from(total) * 100.0
                    },
                    no_data: total == 0,
                }
            })
            .collect();

        if let Some(r) = results
            .iter()
            .find(|r| r.critical && r.classification != Classification::Pass)
        {
            let reason = format!("Canary Failed: {}", r.reason.unwrap_or("null"));
            return ScoreResult {
                groups,
                score: 0.0,
                reason: Some(reason),
            };
        }
        let nodata = results
            .iter()
            .filter(|r| r.classification == Classification::Nodata)
            .count();
        if !results.is_empty() && nodata as f64 / results.len() as f64 * 100.0 >= NODATA_THRESHOLD {
            let reason =
                format!("Canary Failed: {NODATA_THRESHOLD}% or more metrics returned NODATA");
            return ScoreResult {
                groups,
                score: 0.0,
                reason: Some(reason),
            };
        }

        let configured: f64 = self.weights.iter().flatten().sum();
        let unweighted = groups
            .iter()
            .filter(|g| self.weights[g.group].is_none())
            .count();
        let shared = if unweighted > 0 {
            (100.0 - configured) / unweighted as f64
        } else {
            0.0
        };
        let mut summary = 0.0;
        for g in &groups {
            let effective = if g.no_data { 100.0 } else { g.score };
            summary += effective * (self.weights[g.group].unwrap_or(shared) / 100.0);
        }
        ScoreResult {
            groups,
            score: round_half_up_2(summary),
            reason: None,
        }
    }
}

/// Classify a summary score against thresholds.
pub fn classify_score(
    score: f64,
    scored_metrics: usize,
    t: ScoreThresholds,
) -> ScoreClassification {
    if scored_metrics == 0 {
        ScoreClassification::Nodata
    } else if score >= t.pass {
        ScoreClassification::Pass
    } else if score >= t.marginal {
        ScoreClassification::Marginal
    } else {
        ScoreClassification::Fail
    }
}

/// Round to two decimals, half up, on the shortest decimal representation,
/// as Commons Math's `MathUtils.round(x, 2)` does through `BigDecimal`.
pub fn round_half_up_2(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let s = format!("{}", x.abs());
    let (int_part, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() <= 2 {
        return x;
    }
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac.bytes().take(2))
        .map(|b| b - b'0')
        .collect();
    if frac.as_bytes()[2] >= b'5' {
        // propagate the carry
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let v = digits
        .iter()
        .fold(0u128, |acc, &d| acc * 10 + u128::from(d)) as f64
        / 100.0;
    if x < 0.0 { -v } else { v }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_decimal_half_up() {
        assert_eq!(round_half_up_2(100.0 / 3.0), 33.33);
        assert_eq!(round_half_up_2(200.0 / 3.0), 66.67);
        assert_eq!(round_half_up_2(1.005), 1.01);
        assert_eq!(round_half_up_2(99.995), 100.0);
        assert_eq!(round_half_up_2(-2.675), -2.68);
        assert_eq!(round_half_up_2(50.0), 50.0);
    }
}
