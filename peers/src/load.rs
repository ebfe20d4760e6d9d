//! Multi-document YAML files, split into documents told apart by `kind`.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Location, PeersError};

/// One YAML document as JSON (the form Kubernetes objects have on the wire,
/// and the form Argo substitutes its `{{args.NAME}}` in).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// file, document number, kind and name
    pub at: Location,
    /// the document
    pub value: serde_json::Value,
}

/// Split a file into its non-empty documents.
pub fn documents(file: &str, text: &str) -> Result<Vec<Document>, PeersError> {
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let doc = i + 1;
        let yaml = serde_norway::Value::deserialize(de).map_err(|e| PeersError::Yaml {
            file: file.to_string(),
            doc,
            message: e.to_string(),
        })?;
        if yaml.is_null() {
            continue;
        }
        let value = serde_json::to_value(&yaml).map_err(|e| PeersError::Yaml {
            file: file.to_string(),
            doc,
            message: format!("cannot be read as a Kubernetes object: {e}"),
        })?;
        let text_at = |key: &str| -> String {
            match key {
                "kind" => value.get("kind"),
                _ => value.get("metadata").and_then(|m| m.get("name")),
            }
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
        };
        let at = Location {
            file: file.to_string(),
            doc,
            kind: text_at("kind"),
            name: text_at("name"),
        };
        out.push(Document { at, value });
    }
    Ok(out)
}

/// Deserialize a JSON value into `T`, naming the field that does not fit.
pub(crate) fn typed<T: DeserializeOwned>(
    at: &Location,
    prefix: &str,
    value: &serde_json::Value,
) -> Result<T, PeersError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, _) => path.clone(),
            (false, ".") => prefix.to_string(),
            (false, p) => format!("{prefix}.{p}"),
        };
        PeersError::field(at, field, e.into_inner().to_string())
    })
}

/// Kubernetes `metadata`, the parts we use.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// name
    pub name: String,
    /// namespace (empty when the file has none)
    pub namespace: String,
    /// labels
    pub labels: std::collections::BTreeMap<String, String>,
    /// annotations
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Kubernetes' `IntOrString`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// a number
    Int(i64),
    /// a string (a number in a string, or a duration)
    Str(String),
}

impl IntOrString {
    /// `intstr.IntValue`, but a string that is not a number is an error
    /// (Go silently reads it as 0).
    pub fn int(&self) -> Result<i64, String> {
        match self {
            IntOrString::Int(i) => Ok(*i),
            IntOrString::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an integer")),
        }
    }
}
