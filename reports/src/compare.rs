//! Several analyses side by side: when a study released every scenario once
//! per analysis (`canarylab sim --analysis FILE --analysis FILE ...`), its
//! results hold one [`ScenarioResult`] per scenario and analysis. This module
//! lines them up (per scenario, one cell per analysis) and says in words what
//! the numbers show: which analysis catches more, which raises more false
//! alarms, which decides sooner, which pauses.
//!
//! Only arithmetic on what the drivers wrote (pooled counts, medians of
//! medians); no statistics beyond that, and nothing drawn here (see
//! [`charts`](crate::charts)).

use crate::model::{Expect, Rate, ScenarioResult, Study, wilson};
use crate::text::{count, pct, seconds};

/// What an entry without an `analysis` field is called in a comparison:
/// judged by the scenario's own Kayenta config.
pub const OWN_CONFIG: &str = "scenario's own config";

/// The study's results lined up by scenario and analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison<'a> {
    /// Analysis names, in the order they first appear in the results.
    pub analyses: Vec<&'a str>,
    /// One row per scenario name, in the order scenarios first appear.
    pub rows: Vec<Row<'a>>,
}

/// One scenario: its result under each analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// Scenario name.
    pub name: &'a str,
    /// Ground truth (of the first entry of this name).
    pub expect: Expect,
    /// Per analysis, in [`Comparison::analyses`] order; `None` when this
    /// scenario was not released with that analysis.
    pub cells: Vec<Option<&'a ScenarioResult>>,
}

/// The name of the analysis a result was judged by, as the comparison
/// shows it.
pub fn analysis_name(s: &ScenarioResult) -> &str {
    s.analysis.as_deref().unwrap_or(OWN_CONFIG)
}

impl<'a> Comparison<'a> {
    /// The comparison, when the study's results hold two or more analyses;
    /// `None` for a study of one analysis (its report has no side-by-side
    /// view).
    pub fn of(study: &'a Study) -> Option<Self> {
        Self::of_results(&study.scenarios)
    }

    /// As [`Comparison::of`], from the scenario results alone.
    pub fn of_results(results: &'a [ScenarioResult]) -> Option<Self> {
        let mut analyses: Vec<&str> = Vec::new();
        for s in results {
            let a = analysis_name(s);
            if !analyses.contains(&a) {
                analyses.push(a);
            }
        }
        if analyses.len() < 2 {
            return None;
        }
        let mut rows: Vec<Row<'a>> = Vec::new();
        for s in results {
            let k = analyses
                .iter()
                .position(|a| *a == analysis_name(s))
                .unwrap_or(0);
            let i = match rows.iter().position(|r| r.name == s.name) {
                Some(i) => i,
                None => {
                    rows.push(Row {
                        name: &s.name,
                        expect: s.expect,
                        cells: vec![None; analyses.len()],
                    });
                    rows.len() - 1
                }
            };
            // A second entry of the same scenario and analysis (should not
            // happen) keeps the first: the table shows what was seen first.
            if rows[i].cells[k].is_none() {
                rows[i].cells[k] = Some(s);
            }
        }
        Some(Comparison { analyses, rows })
    }

    /// The rows whose scenario has the given ground truth.
    pub fn rows_expecting(&self, expect: Expect) -> impl Iterator<Item = &Row<'a>> {
        self.rows.iter().filter(move |r| r.expect == expect)
    }

    /// Per analysis, its rollback counts pooled over the scenarios with the
    /// given ground truth (detection over regressions, false alarms over
    /// harmless releases), with a Wilson interval of the pooled rate.
    pub fn pooled_rate(&self, expect: Expect) -> Vec<Rate> {
        (0..self.analyses.len())
            .map(|k| {
                let (mut c, mut n) = (0u32, 0u32);
                for r in self.rows_expecting(expect) {
                    if let Some(s) = r.cells[k] {
                        c += s.rollback_rate.count;
                        n += s.rollback_rate.total;
                    }
                }
                wilson(c, n)
            })
            .collect()
    }

    /// Per analysis, the median over the scenarios with the given ground
    /// truth of each scenario's median decision time; only scenarios where
    /// every analysis has decision times count, so all analyses are compared
    /// on the same scenarios. `None` when there is no such scenario.
    pub fn typical_decision_time(&self, expect: Expect) -> Vec<Option<f64>> {
        let common: Vec<&Row<'a>> = self
            .rows_expecting(expect)
            .filter(|r| {
                r.cells
                    .iter()
                    .all(|c| c.is_some_and(|s| s.decision_time_s.count > 0))
            })
            .collect();
        (0..self.analyses.len())
            .map(|k| {
                let medians: Vec<f64> = common
                    .iter()
                    .filter_map(|r| r.cells[k])
                    .map(|s| s.decision_time_s.p50)
                    .collect();
                median(&medians)
            })
            .collect()
    }

    /// Per analysis, failed requests the canary served to users summed over
    /// every run of the scenarios with the given ground truth (each
    /// scenario's mean blast radius times its runs).
    pub fn total_blast(&self, expect: Expect) -> Vec<f64> {
        (0..self.analyses.len())
            .map(|k| {
                self.rows_expecting(expect)
                    .filter_map(|r| r.cells[k])
                    .map(|s| s.blast_radius.mean * f64::from(s.blast_radius.count))
                    .sum()
            })
            .collect()
    }

    /// Per analysis, runs paused (neither promoted nor rolled back) and
    /// runs that reached deployment, over all scenarios.
    pub fn paused(&self) -> Vec<(u32, u32)> {
        (0..self.analyses.len())
            .map(|k| {
                let (mut p, mut n) = (0, 0);
                for s in self.rows.iter().filter_map(|r| r.cells[k]) {
                    let v = &s.verdicts;
                    p += v.paused;
                    n += v.promoted + v.rolled_back + v.deploy_failed + v.paused;
                }
                (p, n)
            })
            .collect()
    }

    /// What the side-by-side numbers show, one sentence each, derived from
    /// the results (nothing here is fixed text about any analysis).
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let regressions = self.rows_expecting(Expect::Fail).count();
        let harmless = self.rows_expecting(Expect::Pass).count();

        if regressions > 0 {
            let rates: Vec<f64> = self
                .pooled_rate(Expect::Fail)
                .iter()
                .map(|r| r.rate)
                .collect();
            out.push(rank_sentence(
                &self.analyses,
                &rates,
                Lead::Highest,
                "Catches the most regressions",
                &format!(
                    " of the runs of the {regressions} regression scenario{} rolled back",
                    plural(regressions)
                ),
                "catch regressions equally often",
                pct,
            ));
            let (clear, compared) = self.separated(Expect::Fail);
            if compared > 0 {
                out.push(format!(
                    "In {clear} of {compared} regression scenario{} the 95% intervals of the analysis that \
                     detects most and the one that detects least do not overlap{}.",
                    plural(compared),
                    if clear < compared {
                        "; where they overlap, the difference may be luck"
                    } else {
                        ""
                    }
                ));
            }
        }
        if harmless > 0 {
            let rates = self.pooled_rate(Expect::Pass);
            if rates.iter().all(|r| r.count == 0) {
                out.push(format!(
                    "No analysis rolled back a harmless release ({harmless} harmless scenario{}).",
                    plural(harmless)
                ));
            } else {
                out.push(rank_sentence(
                    &self.analyses,
                    &rates.iter().map(|r| r.rate).collect::<Vec<_>>(),
                    Lead::Highest,
                    "Raises the most false alarms",
                    &format!(
                        " of the runs of the {harmless} harmless scenario{} rolled back",
                        plural(harmless)
                    ),
                    "raise false alarms equally often",
                    pct,
                ));
            }
        }
        let which = if regressions > 0 {
            Expect::Fail
        } else {
            Expect::Pass
        };
        let times = self.typical_decision_time(which);
        if times.iter().all(Option::is_some) {
            let times: Vec<f64> = times.into_iter().flatten().collect();
            let mut sentence = rank_sentence(
                &self.analyses,
                &times,
                Lead::Lowest,
                &format!(
                    "Decides soonest on {}",
                    if which == Expect::Fail {
                        "regressions"
                    } else {
                        "harmless releases"
                    }
                ),
                "",
                "take equally long to decide",
                seconds,
            );
            sentence.pop();
            sentence.push_str(
                "; each the median over the scenarios every analysis decided of the median time from canary \
                 start to the decision.",
            );
            out.push(sentence);
        }
        if regressions > 0 {
            let blast = self.total_blast(Expect::Fail);
            if blast.iter().any(|b| *b > 0.0) {
                out.push(rank_sentence(
                    &self.analyses,
                    &blast,
                    Lead::Lowest,
                    "Serves users the fewest failed requests during regressions",
                    " in all regression runs together",
                    "serve users equally many failed requests during regressions",
                    count,
                ));
            }
        }
        let paused = self.paused();
        let pausing: Vec<String> = self
            .analyses
            .iter()
            .zip(&paused)
            .filter(|(_, (p, _))| *p > 0)
            .map(|(a, (p, n))| format!("{a} {p} of {n} runs"))
            .collect();
        if !pausing.is_empty() {
            out.push(format!(
                "Paused for a person (inconclusive analysis: neither promoted nor rolled back): {}. \
                 A paused run counts in a rate's runs but not as a rollback, so it lowers detection.",
                pausing.join(", ")
            ));
        }
        out
    }

    /// Of the scenarios with the given ground truth that every analysis ran,
    /// how many have the highest and the lowest rate's Wilson intervals
    /// disjoint, and how many were compared.
    fn separated(&self, expect: Expect) -> (usize, usize) {
        let (mut clear, mut compared) = (0, 0);
        for r in self.rows_expecting(expect) {
            let rates: Vec<&Rate> = r.cells.iter().flatten().map(|s| &s.rollback_rate).collect();
            if rates.len() < 2 || rates.len() < r.cells.len() {
                continue;
            }
            compared += 1;
            let hi = rates.iter().max_by(|a, b| a.rate.total_cmp(&b.rate));
            let lo = rates.iter().min_by(|a, b| a.rate.total_cmp(&b.rate));
            if let (Some(hi), Some(lo)) = (hi, lo)
                && hi.lower > lo.upper
            {
                clear += 1;
            }
        }
        (clear, compared)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lead {
    /// The highest value leads.
    Highest,
    /// The lowest value leads.
    Lowest,
}

/// "`headline`: b, 80%`detail` (c 60%, a 50%)." with the leader(s) first,
/// or, when every analysis shows the same value, "All N analyses `tie`:
/// 50%." Leaders are those whose value reads the same as the first's.
fn rank_sentence(
    analyses: &[&str],
    values: &[f64],
    lead: Lead,
    headline: &str,
    detail: &str,
    tie: &str,
    fmt: impl Fn(f64) -> String,
) -> String {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| match lead {
        Lead::Highest => values[j].total_cmp(&values[i]),
        Lead::Lowest => values[i].total_cmp(&values[j]),
    });
    let Some(&first) = order.first() else {
        return String::new();
    };
    // Equal as shown, not merely as stored: a tie in the words is a tie.
    let shown = fmt(values[first]);
    let leaders: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| fmt(values[i]) == shown)
        .collect();
    if leaders.len() == values.len() {
        return format!("All {} analyses {tie}: {shown}{detail}.", values.len());
    }
    let names: Vec<&str> = leaders.iter().map(|&i| analyses[i]).collect();
    let rest: Vec<String> = order
        .iter()
        .filter(|i| !leaders.contains(i))
        .map(|&i| format!("{} {}", analyses[i], fmt(values[i])))
        .collect();
    format!(
        "{headline}: {}, {shown}{detail} ({}).",
        names.join(" and "),
        rest.join(", ")
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_name_the_leader_and_the_rest() {
        let names = ["a", "b", "c"];
        let s = rank_sentence(
            &names,
            &[0.5, 0.8, 0.6],
            Lead::Highest,
            "Most caught",
            " of runs",
            "tie",
            pct,
        );
        assert_eq!(s, "Most caught: b, 80% of runs (c 60%, a 50%).");
        let s = rank_sentence(
            &names,
            &[0.05, 0.01, 0.05],
            Lead::Highest,
            "Most false alarms",
            "",
            "tie",
            pct,
        );
        assert_eq!(s, "Most false alarms: a and c, 5.0% (b 1.0%).");
        let s = rank_sentence(
            &names,
            &[30.0, 20.0, 40.0],
            Lead::Lowest,
            "Soonest",
            "",
            "tie",
            seconds,
        );
        assert_eq!(s, "Soonest: b, 20 s (a 30 s, c 40 s).");
        let s = rank_sentence(&["a", "b"], &[0.5, 0.5], Lead::Highest, "x", "", "tie", pct);
        assert_eq!(s, "All 2 analyses tie: 50%.");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
