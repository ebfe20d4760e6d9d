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
    /// Series by [`labels_hash`]: the first series with that hash, the
    /// others chained through `same_hash` (no label set is copied to
    /// index it: building a run's series is a good part of a short run).
    by_hash: HashMap<u64, usize>,
    /// Per series: the next series with the same hash (`usize::MAX`: none).
    same_hash: Vec<usize>,
    by_name: HashMap<String, Vec<usize>>,
}

/// A label set's hash for [`Store`]'s index: FxHash-style (rotate, xor,
/// multiply per 8-byte word) over every name and value, each followed by
/// a byte no UTF-8 text has, so `("ab","c")` and `("a","bc")` differ.
/// Collisions are resolved by comparing the label sets.
fn labels_hash(labels: &Labels) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h: u64 = 0;
    let mut add = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut bytes = |b: &[u8]| {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // the length tells `"a\0"` from `"a"`; 0xff is never in UTF-8
        w[7] = 0xff;
        add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 48));
    };
    for (n, v) in labels.iter() {
        bytes(n.as_bytes());
        bytes(v.as_bytes());
    }
    h
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the series with these labels, created (empty) if new.
    pub fn series_id(&mut self, labels: Labels) -> SeriesId {
        let h = labels_hash(&labels);
        let i = self.series.len();
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let mut at = *e.get();
                loop {
                    if self.series[at].labels == labels {
                        return SeriesId(at);
                    }
                    match self.same_hash[at] {
                        usize::MAX => break,
                        next => at = next,
                    }
                }
                // a new series whose hash another has: chained after it
                self.same_hash[at] = i;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
        self.same_hash.push(usize::MAX);
        match labels.metric_name() {
            Some(n) => match self.by_name.get_mut(n) {
                Some(ids) => ids.push(i),
                None => {
                    self.by_name.insert(n.to_owned(), vec![i]);
                }
            },
            None => self.by_name.entry(String::new()).or_default().push(i),
        }
        self.series.push(Series {
            labels,
            timestamps: Vec::new(),
            values: Vec::new(),
        });
        self.stale.push(false);
        SeriesId(i)
    }

    /// Appends one sample; its timestamp must be after the series' last.
    ///
    /// Always inlined: a simulated scrape writes every series at every
    /// step through it, and a call per sample cost more than the sample.
    #[inline(always)]
    pub fn push(&mut self, id: SeriesId, t_ms: i64, v: f64) -> Result<(), Error> {
        let s = &mut self.series[id.0];
        if let Some(&last) = s.timestamps.last()
            && t_ms <= last
        {
            return Err(out_of_order(s, t_ms, last));
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

/// [`Error::OutOfOrder`] for a sample at `t_ms` on `s` (kept out of the
/// inlined [`Store::push`]).
#[cold]
#[inline(never)]
fn out_of_order(s: &Series, t_ms: i64, last_ms: i64) -> Error {
    Error::OutOfOrder {
        series: s.labels.to_string(),
        t_ms,
        last_ms,
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

    #[test]
    fn series_are_found_by_their_labels_whatever_their_hashes() {
        let mut st = Store::new();
        // pairs that concatenate to the same text hash apart, and any
        // that collide are told apart by their labels
        let sets = [
            labels_of("x", &[("ab", "c")]),
            labels_of("x", &[("a", "bc")]),
            labels_of("x", &[("a", "b"), ("c", "")]),
            labels_of("x", &[("a", "b")]),
            labels_of("x", &[("a", "b\0")]),
            labels_of("xy", &[]),
            labels_of("x", &[("y", "")]),
        ];
        let ids: Vec<SeriesId> = sets.iter().map(|l| st.series_id(l.clone())).collect();
        assert_eq!(ids[2], ids[3], "an empty value is no label");
        assert_eq!(ids[5].0, 5 - 1);
        for (l, id) in sets.iter().zip(&ids) {
            assert_eq!(st.series_id(l.clone()), *id);
            assert_eq!(&st.get(*id).labels, l);
        }
        assert_eq!(st.len(), 6);
        assert_ne!(labels_hash(&sets[0]), labels_hash(&sets[1]));
        // a forced collision: two label sets chained under one hash
        let (a, b) = (labels_of("p", &[("q", "1")]), labels_of("p", &[("q", "2")]));
        let ia = st.series_id(a.clone());
        st.by_hash.insert(labels_hash(&b), ia.0);
        let ib = st.series_id(b.clone());
        assert_ne!(ia, ib);
        assert_eq!(st.series_id(a), ia);
        assert_eq!(st.series_id(b), ib);
        assert_eq!(st.candidates(Some("p")).len(), 2);
    }
}
