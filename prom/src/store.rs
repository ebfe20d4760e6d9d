//! The series store: one label set per series, its samples as two columns
//! (timestamps in milliseconds, values), sorted by time.
//!
//! A generator fills it per series, columnar and cheaply: create the series
//! once with [`Store::series_id`], then [`Store::extend`] whole columns (or
//! [`Store::push`] sample by sample). Nothing is interned per sample.
//!
//! Staleness is modelled as Prometheus models it:
//! - a series that stops (pod gone, scrapes missing) simply has no samples
//!   after its last one; instant selectors still see the last sample for the
//!   5-minute lookback, exactly as a backfilled Prometheus does;
//! - a scrape loop that ends writes a *stale marker* ([`STALE_NAN`], via
//!   [`Store::push_stale`]): from then on instant selectors see nothing and
//!   range selectors skip it. OpenMetrics text cannot carry stale markers, so
//!   the writer leaves them out (say so where it matters).
//!
//! Counter resets are plain drops in a counter's value; the rate functions
//! handle them as Prometheus does.

use std::collections::HashMap;

use crate::Error;
use crate::labels::{Labels, METRIC_NAME};

/// Prometheus's stale marker: a NaN with this exact bit pattern.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// True for Prometheus's stale marker (and only for it, not any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

/// One series: labels and its samples as sorted columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The label set, `__name__` included.
    pub labels: Labels,
    /// Sample timestamps, milliseconds since the Unix epoch, strictly increasing.
    pub timestamps: Vec<i64>,
    /// Sample values, one per timestamp (stale markers included).
    pub values: Vec<f64>,
}

/// Index of a series in a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub usize);

/// An in-memory set of series.
#[derive(Debug, Clone, Default)]
pub struct Store {
    series: Vec<Series>,
    /// Per series: a stale marker among its samples (kept as they are
    /// written, so a query need not scan the samples to know).
    stale: Vec<bool>,
    by_labels: HashMap<Labels, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the series with these labels, created (empty) if new.
    pub fn series_id(&mut self, labels: Labels) -> SeriesId {
        if let Some(&i) = self.by_labels.get(&labels) {
            return SeriesId(i);
        }
        let i = self.series.len();
        let name = labels.metric_name().unwrap_or_default().to_owned();
        self.by_name.entry(name).or_default().push(i);
        self.by_labels.insert(labels.clone(), i);
        self.series.push(Series {
            labels,
            timestamps: Vec::new(),
            values: Vec::new(),
        });
        self.stale.push(false);
        SeriesId(i)
    }

    /// Appends one sample; its timestamp must be after the series' last.
    pub fn push(&mut self, id: SeriesId, t_ms: i64, v: f64) -> Result<(), Error> {
        let s = &mut self.series[id.0];
        if let Some(&last) = s.timestamps.last()
            && t_ms <= last
        {
            return Err(Error::OutOfOrder {
                series: s.labels.to_string(),
                t_ms,
                last_ms: last,
            });
        }
        s.timestamps.push(t_ms);
        s.values.push(v);
        if is_stale(v) {
            self.stale[id.0] = true;
        }
        Ok(())
    }

    /// Appends a stale marker (the scrape target went away) at `t_ms`.
    pub fn push_stale(&mut self, id: SeriesId, t_ms: i64) -> Result<(), Error> {
        self.push(id, t_ms, STALE_NAN)
    }

    /// Appends whole columns; timestamps must be increasing and after the
    /// series' last.
    pub fn extend(
        &mut self,
        id: SeriesId,
        timestamps: &[i64],
        values: &[f64],
    ) -> Result<(), Error> {
        let s = &mut self.series[id.0];
        if timestamps.len() != values.len() {
            return Err(Error::ColumnLengths {
                series: s.labels.to_string(),
                timestamps: timestamps.len(),
                values: values.len(),
            });
        }
        let mut last = s.timestamps.last().copied();
        for &t in timestamps {
            if let Some(l) = last
                && t <= l
            {
                return Err(Error::OutOfOrder {
                    series: s.labels.to_string(),
                    t_ms: t,
                    last_ms: l,
                });
            }
            last = Some(t);
        }
        s.timestamps.extend_from_slice(timestamps);
        s.values.extend_from_slice(values);
        if values.iter().any(|&v| is_stale(v)) {
            self.stale[id.0] = true;
        }
        Ok(())
    }

    /// Every series emptied of its samples, its labels and id kept (and
    /// its memory): the store of another run over the same series, as
    /// the simulator's runs of one analysis are.
    pub fn clear_samples(&mut self) {
        for s in &mut self.series {
            s.timestamps.clear();
            s.values.clear();
        }
        self.stale.fill(false);
    }

    /// All series, in creation order.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// One series.
    pub fn get(&self, id: SeriesId) -> &Series {
        &self.series[id.0]
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True without series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Total number of samples (stale markers included).
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.timestamps.len()).sum()
    }

    /// Ids of the series named `name` (all series if `None`).
    pub(crate) fn candidates(&self, name: Option<&str>) -> Vec<usize> {
        match name {
            Some(n) => self.by_name.get(n).cloned().unwrap_or_default(),
            None => (0..self.series.len()).collect(),
        }
    }

    /// The series a selector matches (its metric name and every matcher,
    /// as the evaluator selects them), in insertion order.
    pub fn select(&self, vs: &promql_parser::parser::VectorSelector) -> Vec<SeriesId> {
        self.candidates(vs.name.as_deref())
            .into_iter()
            .filter(|&i| crate::eval::matches_all(&self.series[i].labels, &vs.matchers))
            .map(SeriesId)
            .collect()
    }

    /// Whether series `i` (raw index) has a stale marker among its samples.
    pub(crate) fn has_stale(&self, i: usize) -> bool {
        self.stale[i]
    }

    /// Label set of a series by raw index.
    pub(crate) fn labels_of(&self, i: usize) -> &Labels {
        &self.series[i].labels
    }

    /// Metric names present, sorted.
    pub fn metric_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .by_name
            .keys()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        v.sort_unstable();
        v
    }
}

/// Convenience for tests and generators: a label set from a metric name and pairs.
pub fn labels_of(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut l = Labels::from_pairs(pairs.iter().copied());
    l.set(METRIC_NAME.to_owned(), name.to_owned());
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_must_increase() {
        let mut st = Store::new();
        let id = st.series_id(labels_of("x", &[("a", "1")]));
        assert!(st.extend(id, &[1000, 2000], &[1.0, 2.0]).is_ok());
        assert!(matches!(
            st.push(id, 2000, 3.0),
            Err(Error::OutOfOrder { .. })
        ));
        assert!(st.push_stale(id, 3000).is_ok());
        assert!(is_stale(st.get(id).values[2]));
        assert!(!is_stale(f64::NAN));
        assert!(st.has_stale(id.0));
        let other = st.series_id(labels_of("x", &[("a", "2")]));
        assert!(st.extend(other, &[1000], &[f64::NAN]).is_ok());
        assert!(!st.has_stale(other.0), "a NaN is not a stale marker");
        assert!(st.extend(other, &[2000], &[STALE_NAN]).is_ok());
        assert!(st.has_stale(other.0));
        st.clear_samples();
        assert!(!st.has_stale(id.0) && !st.has_stale(other.0));
        assert_eq!(st.series_id(labels_of("x", &[("a", "1")])), id);
    }
}
