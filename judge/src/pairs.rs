//! Kayenta's `MetricSetPairList`: per metric, the control (baseline) and
//! experiment (canary) series for one analysis window.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{InputError, parse_json};

/// One metric's control and experiment series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSetPair {
    /// Metric name; must match a metric of the canary config.
    pub name: String,
    /// Kayenta's pair id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tags (e.g. group-by label values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The two series.
    pub values: PairValues,
    /// Scope details Kayenta records (kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<serde_json::Value>,
    /// Attributes Kayenta records, such as the query (kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Value>,
}

/// `values.control` and `values.experiment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairValues {
    /// Baseline values; NaN where a point is missing.
    #[serde(with = "nan_list")]
    pub control: Vec<f64>,
    /// Canary values; NaN where a point is missing.
    #[serde(with = "nan_list")]
    pub experiment: Vec<f64>,
}

impl MetricSetPair {
    /// A pair with just a name and its two series.
    pub fn new(name: impl Into<String>, control: Vec<f64>, experiment: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            id: None,
            tags: BTreeMap::new(),
            values: PairValues {
                control,
                experiment,
            },
            scopes: None,
            attributes: None,
        }
    }
}

/// Parse a `MetricSetPairList` (a JSON array of pairs).
pub fn parse_pairs(text: &str) -> Result<Vec<MetricSetPair>, InputError> {
    parse_json(text)
}

/// A JSON number that may be NaN or infinite: Kayenta (Jackson) writes
/// those as the strings "NaN", "Infinity" and "-Infinity"; null is read as
/// NaN, as Prometheus gaps show up.
pub mod nan_f64 {
    use super::*;

    /// A visitor rather than an untagged enum: serde buffers every value
    /// of an untagged enum before trying its variants, which made number
    /// parsing the largest cost of judging a request.
    struct NanVisitor;

    impl<'de> serde::de::Visitor<'de> for NanVisitor {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, \"NaN\", \"Infinity\", \"-Infinity\" or null")
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<f64, E> {
            from_str(s)
                .ok_or_else(|| E::custom(format!("expected a number or \"NaN\", found \"{s}\"")))
        }
    }

    /// A value written as a string: Kayenta's `"NaN"`, `"Infinity"`,
    /// `"-Infinity"`, Prometheus' spellings, or a number in a string.
    pub fn from_str(s: &str) -> Option<f64> {
        match s {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "+Inf" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse::<f64>().ok(),
        }
    }

    /// Deserialize one value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(NanVisitor)
    }

    /// Serialize one value, non-finite ones as Kayenta's strings.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if *v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(*v)
        }
    }
}

/// A list of [`nan_f64`] values.
pub mod nan_list {
    use super::*;

    #[derive(Deserialize)]
    struct One(#[serde(with = "nan_f64")] f64);

    #[derive(Serialize)]
    struct OneRef<'a>(#[serde(with = "nan_f64")] &'a f64);

    /// Deserialize a list.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<One>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }

    /// Serialize a list.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(OneRef))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nan_strings_and_nulls() {
        let p = parse_pairs(
            r#"[{"name":"m","values":{"control":[1,"NaN",null],"experiment":[2.5,"Infinity"]},"extra":1}]"#,
        )
        .unwrap();
        assert_eq!(p[0].values.control[0], 1.0);
        assert!(p[0].values.control[1].is_nan() && p[0].values.control[2].is_nan());
        assert_eq!(p[0].values.experiment, vec![2.5, f64::INFINITY]);
        let back = serde_json::to_string(&p[0].values).unwrap();
        assert_eq!(
            back,
            r#"{"control":[1.0,"NaN","NaN"],"experiment":[2.5,"Infinity"]}"#
        );
    }

    #[test]
    fn bad_value_names_its_path() {
        let e = parse_pairs(r#"[{"name":"m","values":{"control":[1,"x"],"experiment":[]}}]"#)
            .unwrap_err();
        assert_eq!(e.path, "[0].values.control[1]");
        assert!(e.message.contains("\"x\""), "{e}");
    }
}
