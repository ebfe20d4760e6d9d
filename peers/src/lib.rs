//! Argo Rollouts and Flagger, as their controllers decide: their files read
//! unchanged, and their rules as pure state machines (no I/O, no clock).
//!
//! - [`load`] reads a multi-document YAML file; documents are told apart by
//!   `kind` (`Rollout`, `AnalysisTemplate`, `ClusterAnalysisTemplate`,
//!   `Canary`, `MetricTemplate`); anything else is read and ignored with a
//!   note; what changes the decision and cannot be simulated is an error
//!   naming file, document and field.
//! - [`Bundle::controller`] builds the release controller: [`ArgoRollout`] or
//!   [`FlaggerCanary`], both [`Controller`]s: time and measurement results
//!   in, "measure query Q at t" / "set weight w" / "promote" / "abort" out.
//! - [`expr`] evaluates Argo's success and failure conditions.
//!
//! Not for: running queries, waiting, or deciding what a peer's verdict means
//! for a study; drivers do that.
//!
//! ```
//! use std::time::Duration;
//! use peers::{Answer, Command, Decision, QueryResult};
//!
//! let canary = r#"
//! apiVersion: flagger.app/v1beta1
//! kind: Canary
//! metadata: {name: catalog, namespace: shop}
//! spec:
//!   targetRef: {name: catalog}
//!   analysis:
//!     interval: 1m
//!     threshold: 2
//!     stepWeight: 25
//!     maxWeight: 50
//!     metrics:
//!     - name: request-success-rate
//!       thresholdRange: {min: 99}
//! "#;
//! let bundle = peers::load("canary.yaml", canary).unwrap();
//! let mut c = bundle.controller(&Default::default()).unwrap();
//! // every check finds no data: Flagger fails the check (zero traffic fails a canary)
//! let log = peers::drive(c.as_mut(), Duration::ZERO, Duration::from_secs(3600), |cmd| match cmd {
//!     Command::Measure { .. } => Some(Answer::Measured(QueryResult::Vector(vec![]))),
//!     _ => None,
//! });
//! let out = c.outcome().unwrap();
//! assert_eq!(out.decision, Decision::Rollback);
//! assert_eq!(out.at, Duration::from_secs(60 + 3 * 60)); // interval * (threshold + 1) after tick 1
//! assert!(log.iter().any(|c| matches!(c, Command::SetWeight { canary_percent: 25, .. })));
//! ```

#![forbid(unsafe_code)]

pub mod argo;
pub mod control;
pub mod duration;
pub mod error;
pub mod expr;
pub mod flagger;
pub mod load;

pub use argo::ArgoRollout;
pub use control::{
    Answer, Command, Controller, Decision, JudgeRequest, MeasureId, Outcome, Query, QueryRange,
    QueryResult, drive,
};
pub use error::{Location, PeersError};
pub use flagger::FlaggerCanary;

/// Which peer a set of files is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Argo Rollouts
    Argo,
    /// Flagger
    Flagger,
}

/// The documents of one or more files.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// Argo's documents
    pub argo: argo::ArgoDocs,
    /// Flagger's documents
    pub flagger: flagger::FlaggerDocs,
    /// one line per thing read and ignored
    pub notes: Vec<String>,
    files: Vec<String>,
}

/// Kinds read and ignored without a note of their own beyond one line.
const IGNORED_NOTE: &str = "read and ignored (not part of the decision)";

/// Read one file (`name` is how errors and notes refer to it).
pub fn load(name: &str, text: &str) -> Result<Bundle, PeersError> {
    let mut b = Bundle {
        files: vec![name.to_string()],
        ..Bundle::default()
    };
    for doc in load::documents(name, text)? {
        match doc.at.kind.as_str() {
            "Rollout" | "AnalysisTemplate" | "ClusterAnalysisTemplate" => {
                b.argo.add(&doc, &mut b.notes)?
            }
            "Canary" | "MetricTemplate" => b.flagger.add(&doc, &mut b.notes)?,
            "" => {
                return Err(PeersError::field(
                    &doc.at,
                    "kind",
                    "missing: every document needs a kind",
                ));
            }
            "Experiment" | "AnalysisRun" => {
                return Err(PeersError::unsupported(
                    &doc.at,
                    "kind",
                    "Experiments and AnalysisRuns are not simulated (give the Rollout and its templates)",
                ));
            }
            kind => b.notes.push(format!("{}: {kind} {IGNORED_NOTE}", doc.at)),
        }
    }
    b.argo.check_templates(&mut b.notes)?;
    Ok(b)
}

impl Bundle {
    /// Add another file's documents (a Rollout in one file, its templates in another).
    pub fn merge(&mut self, other: Bundle) {
        self.argo.merge(other.argo);
        self.flagger.merge(other.flagger);
        self.notes.extend(other.notes);
        self.files.extend(other.files);
    }

    /// The files read.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Which peer the documents are for; an error if both or neither.
    pub fn peer(&self) -> Result<Peer, PeersError> {
        let argo = self.argo.rollouts() + self.argo.templates() > 0;
        let flagger = self.flagger.canaries() + self.flagger.templates() > 0;
        match (argo, flagger) {
            (true, false) => Ok(Peer::Argo),
            (false, true) => Ok(Peer::Flagger),
            (true, true) => Err(PeersError::File {
                file: self.files.join(", "),
                problem: "both Argo Rollouts and Flagger documents; give one peer per analysis"
                    .into(),
            }),
            (false, false) => Err(PeersError::File {
                file: self.files.join(", "),
                problem: "no Rollout, AnalysisTemplate, Canary or MetricTemplate".into(),
            }),
        }
    }

    /// The release controller these files describe.
    pub fn controller(
        &self,
        hashes: &argo::Hashes,
    ) -> Result<Box<dyn Controller + Send>, PeersError> {
        Ok(match self.peer()? {
            Peer::Argo => Box::new(ArgoRollout::new(self.argo.plan(hashes)?)),
            Peer::Flagger => Box::new(FlaggerCanary::new(self.flagger.plan()?)),
        })
    }
}
