//! The analyses a side-by-side study compares (`--analysis FILE`): a
//! Kayenta canary config (JSON), or an Argo Rollouts or Flagger file
//! (multi-document YAML, kinds told by `kind`), told apart by content.
//! Each is named by its file's stem in results.
//!
//! Not for: the peers' rules (the `peers` crate's) or running them
//! ([`crate::run`]).

use std::path::{Path, PathBuf};

use release::peer::PeerPlan;

use crate::SimError;

/// An analysis file, read and checked.
#[derive(Debug, Clone)]
pub struct AnalysisFile {
    /// The file's stem: the results' `analysis`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub kind: FileKind,
    /// One line per thing read and ignored (webhooks, routing, alerts).
    pub notes: Vec<String>,
    /// A peer's documents, kept to plan them again with a scenario's own
    /// pod-template hashes ([`AnalysisFile::plan_for`]).
    bundle: Option<peers::Bundle>,
}

/// What an analysis file holds.
#[derive(Debug, Clone)]
pub enum FileKind {
    /// A Kayenta canary config: the scenarios are loaded with it in place
    /// of their own (as `--config` does), which also checks it.
    Kayenta,
    /// An Argo Rollouts or Flagger plan.
    Peer(PeerPlan),
}

/// Read an analysis file. Errors name the file (and for YAML the
/// document and field).
pub fn read(path: &Path) -> Result<AnalysisFile, SimError> {
    let file = path.display().to_string();
    let bad = |message: String| SimError::Analysis {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("the file name has no stem to name the analysis by".into()))?
        .to_string();
    if text.trim_start().starts_with('{') {
        // checked when the scenarios are loaded with it
        return Ok(AnalysisFile {
            name,
            path: path.into(),
            kind: FileKind::Kayenta,
            notes: Vec::new(),
            bundle: None,
        });
    }
    let bundle = peers::load(&file, &text).map_err(|e| SimError::Analysis {
        file: file.clone(),
        message: strip_file(&e.to_string(), &file),
    })?;
    let plan = PeerPlan::of(&bundle).map_err(|e| SimError::Analysis {
        file: file.clone(),
        message: strip_file(&e.to_string(), &file),
    })?;
    let mut notes = bundle.notes.clone();
    if let PeerPlan::Argo(p) = &plan {
        notes.extend(p.notes.iter().cloned());
    }
    Ok(AnalysisFile {
        name,
        path: path.into(),
        kind: FileKind::Peer(plan),
        notes,
        bundle: Some(bundle),
    })
}

impl AnalysisFile {
    /// The peer's plan for releasing `scenario`: Argo's
    /// `podTemplateHashValue` arguments resolved to the
    /// `rollouts_pod_template_hash` values the scenario's `[telemetry]`
    /// gives production's (`Stable`) and the canary's (`Latest`) pods, as
    /// the simulator labels their series and local mode its targets.
    /// `None` for a Kayenta config.
    pub fn plan_for(&self, scenario: &scenarios::Scenario) -> Result<Option<PeerPlan>, SimError> {
        let (FileKind::Peer(plan), Some(bundle)) = (&self.kind, &self.bundle) else {
            return Ok(None);
        };
        let hashes = scenario_hashes(scenario);
        if !matches!(plan, PeerPlan::Argo(_)) || hashes == release::peer::default_hashes() {
            // planned with these hashes when the file was read
            return Ok(Some(plan.clone()));
        }
        let file = self.path.display().to_string();
        PeerPlan::with_hashes(bundle, &hashes)
            .map(Some)
            .map_err(|e| SimError::Analysis {
                message: strip_file(&e.to_string(), &file),
                file,
            })
    }
}

/// The pod-template hashes of `scenario`'s stable (production) and
/// canary pods.
pub fn scenario_hashes(scenario: &scenarios::Scenario) -> peers::argo::Hashes {
    use scenarios::telemetry::TelemetryTrack;
    let t = &scenario.file.telemetry;
    peers::argo::Hashes {
        stable: t.track(TelemetryTrack::Production).pod_template_hash,
        latest: t.track(TelemetryTrack::Canary).pod_template_hash,
    }
}

/// The peers' messages start with the file's name; ours add it once.
fn strip_file(message: &str, file: &str) -> String {
    message
        .strip_prefix(file)
        .map(|m| m.trim_start_matches([':', ',', ' ']))
        .filter(|m| !m.is_empty())
        .unwrap_or(message)
        .to_string()
}

/// Analysis names must tell the results apart: two files with one stem
/// are refused.
pub fn check_names(files: &[AnalysisFile]) -> Result<(), SimError> {
    for (i, a) in files.iter().enumerate() {
        if let Some(b) = files[..i].iter().find(|b| b.name == a.name) {
            return Err(SimError::Analysis {
                file: a.path.display().to_string(),
                message: format!(
                    "named \"{}\" like {}: results name analyses by file stem, rename one",
                    a.name,
                    b.path.display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/catalog/analyses")
            .join(name)
    }

    #[test]
    fn the_catalog_analyses_are_told_apart_by_content() {
        let argo = read(&catalog("argo-rollout.yaml")).expect("argo");
        assert_eq!(argo.name, "argo-rollout");
        assert!(matches!(argo.kind, FileKind::Peer(PeerPlan::Argo(_))));
        let flagger = read(&catalog("flagger-canary.yaml")).expect("flagger");
        assert!(matches!(flagger.kind, FileKind::Peer(PeerPlan::Flagger(_))));
        let kayenta = read(&catalog("kayenta.json")).expect("kayenta");
        assert!(matches!(kayenta.kind, FileKind::Kayenta));
        assert!(check_names(&[argo.clone(), flagger, kayenta]).is_ok());
        assert!(check_names(&[argo.clone(), argo]).is_err());
    }

    #[test]
    fn errors_name_the_file_document_and_field() {
        let dir = std::env::temp_dir().join(format!("sim-analysis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.yaml");
        std::fs::write(
            &path,
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: a}\nspec:\n  strategy:\n    canary:\n      steps:\n      - pause: {}\n",
        )
        .expect("writes");
        let e = read(&path)
            .expect_err("an indefinite pause is refused")
            .to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("bad.yaml"), "{e}");
        assert!(e.contains("pause"), "{e}");
        let e = read(Path::new("/nonexistent/x.yaml"))
            .expect_err("missing")
            .to_string();
        assert!(
            e.contains("/nonexistent/x.yaml") && e.contains("cannot read"),
            "{e}"
        );
    }
}
