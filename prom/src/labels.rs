//! Label sets as Prometheus keeps them: sorted by label name, unique names,
//! no empty values. Ordering (name, then value, pair by pair) is
//! Prometheus's `labels.Compare`, so sorting series by [`Labels`] gives the
//! order Prometheus returns them in.

use std::fmt;

/// The label carrying the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A sorted set of `name="value"` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// The empty label set.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds a label set from pairs in any order. Later duplicates win;
    /// pairs with an empty value are dropped (in Prometheus an empty label
    /// value is the same as no label).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut out = Self::new();
        for (n, v) in pairs {
            out.set(n.into(), v.into());
        }
        out
    }

    /// The value of label `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Sets (or, with an empty value, removes) a label.
    pub fn set(&mut self, name: String, value: String) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Removes a label.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// The same set without `__name__`.
    pub fn without_name(&self) -> Self {
        let mut out = self.clone();
        out.remove(METRIC_NAME);
        out
    }

    /// Keeps only the labels whose names are listed.
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Drops the labels whose names are listed.
    pub fn drop_names(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(n, _)| !names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// Whether the two sets are equal once label `name` is left out of
    /// both (compared in place, nothing copied).
    pub fn eq_except(&self, other: &Self, name: &str) -> bool {
        let mut a = self.0.iter().filter(|(n, _)| n != name);
        let mut b = other.0.iter().filter(|(n, _)| n != name);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Labels {
    /// Prometheus's `labels.String()`: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn equal_but_for_one_label() {
        let a = Labels::from_pairs([("a", "1"), ("le", "0.5"), ("z", "2")]);
        let b = Labels::from_pairs([("a", "1"), ("le", "+Inf"), ("z", "2")]);
        let c = Labels::from_pairs([("a", "1"), ("z", "2")]);
        let d = Labels::from_pairs([("a", "1"), ("le", "1"), ("z", "3")]);
        assert!(a.eq_except(&b, "le") && b.eq_except(&c, "le") && c.eq_except(&a, "le"));
        assert!(!a.eq_except(&d, "le") && !a.eq_except(&b, "z"));
        assert!(!c.eq_except(&Labels::from_pairs([("a", "1")]), "le"));
    }
}
