//! Errors: what was wrong with the input, and where (JSON path, line, column).

use std::fmt;

use serde::de::DeserializeOwned;

/// A problem with a config or metric-pair document, located by JSON path
/// (`metrics[2].analysisConfigurations.canary.direction`) and, for syntax
/// and type errors, line and column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct InputError {
    /// JSON path of the offending value; empty for the document itself.
    pub path: String,
    /// 1-based line and column, when the parser knows them.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error at a JSON path, without a position.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), self.position) {
            (true, None) => write!(f, "{}", self.message),
            (true, Some((l, c))) => write!(f, "line {l}, column {c}: {}", self.message),
            (false, None) => write!(f, "at `{}`: {}", self.path, self.message),
            (false, Some((l, c))) => write!(
                f,
                "at `{}` (line {l}, column {c}): {}",
                self.path, self.message
            ),
        }
    }
}

/// Parse JSON into `T`, reporting the JSON path of the first error.
pub(crate) fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, InputError> {
    // Plain serde_json first: tracking the path of every value costs about
    // as much as parsing; only a document that fails is parsed again.
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let position = (inner.line() > 0).then(|| (inner.line(), inner.column()));
        // serde_json appends " at line L column C"; we report it separately.
        let mut message = inner.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        InputError {
            path: if path == "." { String::new() } else { path },
            position,
            message,
        }
    })
}

/// Why a judgement could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// The config is invalid.
    #[error("canary config: {0}")]
    Config(InputError),
    /// The metric pairs are invalid or don't fit the config.
    #[error("metric set pairs: {0}")]
    Pairs(InputError),
}
