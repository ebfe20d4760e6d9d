//! `canarylab judges` (the list) and the `--judge NAME` /
//! `--judge-params JSON` override the judging commands share: the
//! override rewrites the canary config's `judge` block before anything is
//! built from it, so the simulator, the real modes and the judge command
//! take the judge from the config as always (`judge::Judge::new` builds
//! the judge a config names).

use std::io::Write;

use anyhow::Context;
use clap::Args;
use judge::CanaryConfig;
use judge::config::JudgeConfig;
use judge::judges::{JUDGES, RECOMMENDED, RECOMMENDED_JUDGE};

use crate::Exit;

/// Arguments of `canarylab judges` (none).
#[derive(Debug, Args)]
#[command(after_help = "\
Use one with `--judge NAME` on sim, sweep, test, local and judge, or with
\"judge\": {\"name\": NAME, \"judgeConfigurations\": {...}} in the canary config.
`--judge recommended` is the judge the README recommends.")]
pub struct JudgesArgs {}

/// The judge override of a command.
#[derive(Debug, Clone, Default, Args)]
pub struct JudgeOverride {
    /// Judge with this judge instead of the config's `judge.name`
    /// (`canarylab judges` lists them; `recommended` is the README's pick).
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// The judge's parameters as a JSON object (the config's
    /// `judge.judgeConfigurations`), e.g. '{"alpha":0.02,"tolerance":0.05}'.
    #[arg(long, value_name = "JSON")]
    pub judge_params: Option<String>,
}

impl JudgeOverride {
    /// Rewrite `config`'s judge block. Without `--judge`, `--judge-params`
    /// replaces the parameters of the config's own judge. The result is
    /// checked by building the judge; errors name the flag.
    pub fn apply(&self, config: &mut CanaryConfig) -> anyhow::Result<()> {
        if self.judge.is_none() && self.judge_params.is_none() {
            return Ok(());
        }
        let params = self
            .judge_params
            .as_deref()
            .map(|text| {
                serde_json::from_str::<serde_json::Value>(text)
                    .with_context(|| format!("--judge-params {text}: not JSON"))
            })
            .transpose()?;
        let current = config.judge.take();
        let name = match (&self.judge, &current) {
            // `recommended` stays as named: it carries its own parameters
            (Some(n), _) => n.clone(),
            (None, Some(j)) => j.name.clone(),
            (None, None) => judge::config::NETFLIX_ACA_JUDGE.to_string(),
        };
        // keep the config's own parameters only when its judge stays
        let kept = current
            .filter(|j| j.name == name)
            .and_then(|j| j.judge_configurations);
        config.judge = Some(JudgeConfig {
            name,
            judge_configurations: params.or(kept),
        });
        judge::Judge::new(config).map_err(|e| {
            anyhow::anyhow!(
                "--judge {} --judge-params {}: {e}",
                self.judge.as_deref().unwrap_or("(the config's)"),
                self.judge_params.as_deref().unwrap_or("(none)")
            )
        })?;
        Ok(())
    }
}

/// Run `canarylab judges`.
pub fn run(_args: &JudgesArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let width = JUDGES.iter().map(|j| j.name.len()).max().unwrap_or(0);
    for j in JUDGES {
        writeln!(out, "{:width$}  {}", j.name, j.summary)?;
    }
    writeln!(
        out,
        "{RECOMMENDED:width$}  = {RECOMMENDED_JUDGE} with alpha 0.1 over 3 looks, trackSd 0.028, trend 0.25 (trendDecay 0.2, trendTolerance 0.03; see README)"
    )?;
    Ok(Exit::Success)
}
