//! `canarylab judge`: Kayenta's judge endpoint on the command line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use judge::wire::parse_pair_list;
use judge::{CanaryConfig, Judge, ScoreClassification, ScoreThresholds, render_text};

use crate::Exit;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Kayenta's CanaryJudgeResult JSON (plus Mann-Whitney details).
    Json,
    /// A readable table: each metric's verdict, ratio and interval.
    Text,
}

/// Arguments of `canarylab judge`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab judge --config canary-config.json --pairs metric-set-pairs.json
  canarylab judge --config c.json --pairs p.json --format text --pass 90 --marginal 70
  canarylab judge --config c.json --pairs p.json --exit-code || echo 'roll back'

Exit status: 0 judged (with --exit-code: passed); 1 with --exit-code when the
canary fails; 3 with --exit-code when it is marginal; 2 on bad input.")]
pub struct JudgeArgs {
    /// Kayenta canary config (JSON), e.g. exported from Spinnaker.
    #[arg(long, value_name = "CONFIG.json")]
    pub config: PathBuf,
    /// Kayenta MetricSetPairList (JSON array): per metric, control and
    /// experiment values; "NaN" strings and nulls mark missing points.
    #[arg(long, value_name = "PAIRS.json")]
    pub pairs: PathBuf,
    /// Pass threshold for the summary score [default: the config's
    /// classifier.scoreThresholds.pass, else 75].
    #[arg(long, value_name = "SCORE")]
    pub pass: Option<f64>,
    /// Marginal threshold [default: the config's, else 50].
    #[arg(long, value_name = "SCORE")]
    pub marginal: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Exit 1 when the canary fails and 3 when it is marginal.
    #[arg(long)]
    pub exit_code: bool,
    /// Seed for the tiny noise Kayenta adds when both series are constant
    /// (Kayenta's is unseeded; this makes results reproducible).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Judge override.
    #[command(flatten)]
    pub judge: crate::judges_cmd::JudgeOverride,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Run `canarylab judge`.
pub fn run(args: &JudgeArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let mut config = CanaryConfig::from_json(&read(&args.config)?)
        .with_context(|| format!("{}: invalid canary config", args.config.display()))?;
    args.judge.apply(&mut config)?;
    // `canarylab serve`'s reader: the same pairs and errors as
    // `judge::parse_pairs`, without Kayenta's scopes and attributes, which
    // a judgment does not use (a quarter of the parsing).
    let pairs = parse_pair_list(read(&args.pairs)?.as_bytes())
        .with_context(|| format!("{}: invalid metric set pair list", args.pairs.display()))?;
    let mut judge = Judge::new(&config)
        .with_context(|| format!("{}: invalid canary config", args.config.display()))?;
    if args.pass.is_some() || args.marginal.is_some() {
        let current = judge.thresholds();
        let thresholds = ScoreThresholds {
            pass: args.pass.unwrap_or(current.pass),
            marginal: args.marginal.unwrap_or(current.marginal),
        };
        judge.set_thresholds(thresholds).map_err(|e| {
            anyhow::anyhow!(
                "--pass {} / --marginal {}: {}",
                thresholds.pass,
                thresholds.marginal,
                e.message
            )
        })?;
    }
    let result = judge
        .judge_pairs(&pairs, args.seed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.pairs.display()))?;
    // One write: stdout is line-buffered, and pretty JSON of thousands of
    // metrics is tens of thousands of lines (a write call each).
    let mut text = match args.format {
        Format::Json => {
            // About 1 kB per metric: one allocation, not a doubling series.
            let mut bytes = Vec::with_capacity(512 + 1024 * result.results.len());
            serde_json::to_writer_pretty(&mut bytes, &result)?;
            bytes
        }
        Format::Text => render_text(&result, judge.thresholds()).into_bytes(),
    };
    if args.format == Format::Json {
        text.push(b'\n');
    }
    out.write_all(&text)?;
    out.flush()?;
    Ok(match (args.exit_code, result.score.classification) {
        (true, ScoreClassification::Fail | ScoreClassification::Nodata) => Exit::CanaryFailed,
        (true, ScoreClassification::Marginal) => Exit::CanaryMarginal,
        _ => Exit::Success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `canarylab judge` as it was first written: `judge::parse_pairs` (every
    /// field kept) and `serde_json::to_vec_pretty`.
    fn reference(config: &Path, pairs: &Path) -> Vec<u8> {
        let config = CanaryConfig::from_json(&read(config).expect("config")).expect("config");
        let pairs = judge::parse_pairs(&read(pairs).expect("pairs")).expect("pairs");
        let result = Judge::new(&config)
            .expect("judge")
            .judge_pairs(&pairs, 0)
            .expect("judged");
        let mut bytes = serde_json::to_vec_pretty(&result).expect("json");
        bytes.push(b'\n');
        bytes
    }

    fn args(config: PathBuf, pairs: PathBuf) -> JudgeArgs {
        JudgeArgs {
            config,
            pairs,
            pass: None,
            marginal: None,
            format: Format::Json,
            exit_code: false,
            seed: 0,
            judge: crate::judges_cmd::JudgeOverride::default(),
        }
    }

    #[test]
    fn the_output_is_byte_for_byte_the_reference() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = root.join("examples/canary-config.json");
        // The examples, and one with Kayenta's scopes, attributes, ids,
        // tags, "NaN" and null, which the fast reader skips or maps.
        let dir =
            std::env::temp_dir().join(format!("canarylab-judge-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut pairs: serde_json::Value = serde_json::from_str(
            &read(&root.join("examples/pairs-latency-regression.json")).expect("pairs"),
        )
        .expect("json");
        for (i, pair) in pairs.as_array_mut().expect("list").iter_mut().enumerate() {
            pair["id"] = format!("id-{i}").into();
            pair["tags"] = serde_json::json!({"pod": "a\"b", "zone": "é"});
            pair["scopes"] = serde_json::json!({"control": {"scope": "baseline",
                "startTimeMillis": 1767225600000_u64, "stepMillis": 60000}});
            pair["attributes"] = serde_json::json!({"control": {"query": "sum(x)"}});
            let control = pair["values"]["control"].as_array_mut().expect("control");
            control.extend([serde_json::Value::Null, "NaN".into(), (-0.0).into()]);
        }
        let kayenta = dir.join("pairs-kayenta.json");
        std::fs::write(&kayenta, serde_json::to_string(&pairs).expect("json")).expect("write");
        for pairs in [
            root.join("examples/pairs-no-change.json"),
            root.join("examples/pairs-latency-regression.json"),
            kayenta,
        ] {
            let mut out = Vec::new();
            run(&args(config.clone(), pairs.clone()), &mut out).expect("judged");
            assert!(
                out == reference(&config, &pairs),
                "{} differs from the reference",
                pairs.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_pairs_name_the_file_and_path_as_before() {
        let dir = std::env::temp_dir().join(format!("canarylab-judge-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pairs = dir.join("pairs.json");
        let text = r#"[{"name":"latency_p50","values":{"control":[1,"x"],"experiment":[]}}]"#;
        std::fs::write(&pairs, text).expect("write");
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary-config.json");
        let e = run(&args(config, pairs.clone()), &mut Vec::new()).expect_err("bad value");
        let old = judge::parse_pairs(text).expect_err("bad value");
        assert_eq!(
            format!("{:#}", e),
            format!("{}: invalid metric set pair list: {old}", pairs.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
