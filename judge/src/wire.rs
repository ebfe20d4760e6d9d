//! Reading Kayenta's JSON fast, with the same results and the same errors
//! as the plain serde types: a `MetricSetPairList` whose pairs' `scopes`
//! and `attributes` (Kayenta's records of the query, not part of a
//! judgment) are skipped instead of built into `serde_json::Value` trees,
//! and errors that name the JSON path, line and column. `canarylab judge`
//! and `canarylab serve`'s `/judge` read their input through it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::InputError;

/// Parses JSON into `T`; an error names the JSON path, line and column.
pub fn parse_located<T: DeserializeOwned>(text: &[u8]) -> Result<T, InputError> {
    // Plain serde_json first: tracking the path of every value costs as
    // much as parsing; only a body that fails is parsed again for its path.
    if let Ok(value) = serde_json::from_slice(text) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut message = inner.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        InputError {
            path: if path == "." { String::new() } else { path },
            position: (inner.line() > 0).then(|| (inner.line(), inner.column())),
            message,
        }
    })
}

/// A `MetricSetPairList` as [`crate::parse_pairs`] reads it, the same
/// pairs and the same errors, without building each pair's `scopes` and
/// `attributes` (not part of a judgment) into `serde_json::Value` trees.
pub fn parse_pair_list(text: &[u8]) -> Result<Vec<crate::MetricSetPair>, InputError> {
    let pairs: Vec<MetricSetPair> = parse_located(text)?;
    Ok(pairs.into_iter().map(crate::MetricSetPair::from).collect())
}

/// A `MetricSetPair` whose `scopes` and `attributes` are skipped.
#[derive(Debug, Deserialize)]
pub struct MetricSetPair {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub values: PairValues,
    /// Skipped (any JSON), declared so that errors count the fields
    /// as `judge::MetricSetPair`'s do.
    #[allow(dead_code)]
    #[serde(default)]
    pub scopes: serde::de::IgnoredAny,
    #[allow(dead_code)]
    #[serde(default)]
    pub attributes: serde::de::IgnoredAny,
}

/// `values`, read as [`PairValues`] is, into vectors sized for a typical
/// window instead of grown from empty (five reallocations for 60 points).
#[derive(Debug, Deserialize)]
pub struct PairValues {
    #[serde(deserialize_with = "nan_values")]
    pub control: Vec<f64>,
    #[serde(deserialize_with = "nan_values")]
    pub experiment: Vec<f64>,
}

/// One value through [`crate::pairs::nan_f64`]: the same numbers, strings
/// and errors as `judge::parse_pairs`.
struct NanValue;

impl<'de> serde::de::DeserializeSeed<'de> for NanValue {
    type Value = f64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        crate::pairs::nan_f64::deserialize(d)
    }
}

struct NanValues;

impl<'de> serde::de::Visitor<'de> for NanValues {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What serde's `Vec` visitor says, so errors read as before.
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).clamp(64, 4096));
        while let Some(v) = seq.next_element_seed(NanValue)? {
            values.push(v);
        }
        Ok(values)
    }
}

fn nan_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    d.deserialize_seq(NanValues)
}

impl From<MetricSetPair> for crate::MetricSetPair {
    fn from(p: MetricSetPair) -> Self {
        crate::MetricSetPair {
            name: p.name,
            id: p.id,
            tags: p.tags,
            values: crate::pairs::PairValues {
                control: p.values.control,
                experiment: p.values.experiment,
            },
            scopes: None,
            attributes: None,
        }
    }
}
