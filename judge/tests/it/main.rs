//! The judge's integration tests: Kayenta's own test vectors, an
//! independent R oracle, property tests and whole-config judgements.

#![allow(clippy::unwrap_used)]

mod fast_band;
mod judges;
mod kayenta_vectors;
mod properties;
mod r_oracle;
mod whole_config;

use std::path::PathBuf;

/// Path of a fixture under `judge/tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Read and parse a JSON fixture.
pub fn json(rel: &str) -> serde_json::Value {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON number, or the string "NaN".
pub fn num(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) if s == "NaN" => f64::NAN,
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {other}")),
    }
}

/// A JSON array of numbers.
pub fn nums(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(num)
        .collect()
}
