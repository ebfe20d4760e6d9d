//! Errors: bad input names the file, the document, the field and the problem.

use std::fmt;

/// Where in the user's files a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file's name as the user gave it.
    pub file: String,
    /// 1-based document number in a multi-document YAML file.
    pub doc: usize,
    /// `kind` of the document (empty when unknown).
    pub kind: String,
    /// `metadata.name` of the document (empty when unknown).
    pub name: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.file, self.doc)?;
        match (self.kind.is_empty(), self.name.is_empty()) {
            (false, false) => write!(f, " ({} {})", self.kind, self.name),
            (false, true) => write!(f, " ({})", self.kind),
            _ => Ok(()),
        }
    }
}

/// Everything that can go wrong reading a peer's file or building a controller from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeersError {
    /// The document is not YAML.
    #[error("{file}, document {doc}: not valid YAML: {message}")]
    Yaml {
        /// file name
        file: String,
        /// 1-based document number
        doc: usize,
        /// the parser's message (with line and column)
        message: String,
    },
    /// A field has a value we cannot read.
    #[error("{at}: {field}: {problem}")]
    Field {
        /// where
        at: Box<Location>,
        /// field path, e.g. `spec.metrics[0].interval`
        field: String,
        /// what is wrong
        problem: String,
    },
    /// The field is valid for the peer, but it changes the decision in a way
    /// a simulation cannot reproduce.
    #[error("{at}: {field}: cannot be simulated: {why}")]
    Unsupported {
        /// where
        at: Box<Location>,
        /// field path
        field: String,
        /// why not
        why: String,
    },
    /// Something across documents: a missing template, no Rollout, ...
    #[error("{file}: {problem}")]
    File {
        /// file name(s)
        file: String,
        /// what is wrong
        problem: String,
    },
}

impl PeersError {
    pub(crate) fn field(
        at: &Location,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        PeersError::Field {
            at: Box::new(at.clone()),
            field: field.into(),
            problem: problem.into(),
        }
    }
    pub(crate) fn unsupported(
        at: &Location,
        field: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        PeersError::Unsupported {
            at: Box::new(at.clone()),
            field: field.into(),
            why: why.into(),
        }
    }
}
