//! The one result vocabulary every driver and report uses: how a release
//! ended ([`ReleaseEnd`], serialized as the results' `decision` strings).

use serde::{Deserialize, Serialize};

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseEnd {
    /// The analysis passed; production was updated.
    Promote,
    /// The analysis failed; the canary was removed.
    Rollback,
    /// The canary never became ready; the deploy timed out.
    DeployFailed,
    /// The build failed; nothing was deployed.
    BuildFailed,
    /// The pipeline stopped on an error (or Ctrl-C): no verdict.
    Error,
    /// The analysis stopped and waits for a person (Argo Rollouts pauses a
    /// rollout whose analysis is Inconclusive): deployed, neither promoted
    /// nor rejected.
    Paused,
}

impl ReleaseEnd {
    /// The name in results (`promote`, `rollback`, `deploy_failed`,
    /// `build_failed`, `error`, `paused`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::DeployFailed => "deploy_failed",
            Self::BuildFailed => "build_failed",
            Self::Error => "error",
            Self::Paused => "paused",
        }
    }

    /// Whether the canary was deployed and the analysis ended (what the
    /// rollback rate counts over): promote, rollback, a failed deploy or a
    /// pause for a person (which is not a rollback).
    pub fn deployed(self) -> bool {
        matches!(
            self,
            Self::Promote | Self::Rollback | Self::DeployFailed | Self::Paused
        )
    }

    /// Whether the release counts as rejected (rollback or failed deploy).
    pub fn rejected(self) -> bool {
        matches!(self, Self::Rollback | Self::DeployFailed)
    }
}

impl std::fmt::Display for ReleaseEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReleaseEnd {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "promote" => Self::Promote,
            "rollback" => Self::Rollback,
            "deploy_failed" => Self::DeployFailed,
            "build_failed" => Self::BuildFailed,
            "error" => Self::Error,
            "paused" => Self::Paused,
            other => return Err(format!("unknown release end \"{other}\"")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for end in [
            ReleaseEnd::Promote,
            ReleaseEnd::Rollback,
            ReleaseEnd::DeployFailed,
            ReleaseEnd::BuildFailed,
            ReleaseEnd::Error,
            ReleaseEnd::Paused,
        ] {
            let json = serde_json::to_string(&end).expect("serializes");
            assert_eq!(json, format!("\"{}\"", end.as_str()));
            assert_eq!(end.as_str().parse::<ReleaseEnd>(), Ok(end));
        }
        assert!("promoted".parse::<ReleaseEnd>().is_err());
    }
}
