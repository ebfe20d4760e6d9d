//! Sharded studies: one study's runs split over many machines (for
//! example the pods of a Kubernetes Indexed Job), and put back together.
//!
//! [`run_shard`] plays shard I of N of every scenario's runs and returns a
//! [`ShardFile`]; [`write`] saves it as `shard-I-of-N.json`; [`read_inputs`]
//! and [`merge`] turn the N shard files of a study back into the
//! [`Study`] that the unsharded study gives, so its results.json is
//! byte-identical to an unsharded run's.
//!
//! Shard I holds the runs r with `r % N == I` of each scenario: strided
//! rather than in blocks, so every shard gets its share of every scenario
//! and slow scenarios spread evenly over the shards. Each run keeps the
//! seed it has in the unsharded study ([`crate::run_seed`] of its index), and a
//! shard file keeps every run's outcome (not summaries), so the merge sums
//! up exactly what one machine would have.
//!
//! A sweep shards the same way ([`run_sweep_shard`]): at every setting the
//! shard plays its runs, and keeps the counts the sweep's rates are made
//! of, which the merge adds up.
//!
//! Not for: merging shards of studies that differ in anything (version,
//! seed, runs, canary config, sweep parameters, scenario contents):
//! [`merge`] refuses those and names the file and the field.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use reports::model::{RunDetail, Study};
use scenarios::Scenario;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SimError;
use crate::run::{Decision, Prepared, RunOutcome};
use crate::study::{ScenarioMeta, StudyOptions, example_runs, run_shard_outcomes, summarize_meta};
use crate::sweep::{SweepCounts, parse_grid, sweep_counts};

/// The `format` of shard files this version writes and reads.
pub const FORMAT: &str = "canarylab-shard/1";

/// What can go wrong sharding a study or merging its shards.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A `--shard` value is not `I/N` with `0 <= I < N`.
    #[error("shard \"{spec}\": {problem}")]
    Spec {
        /// What the user gave.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A shard file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A shard file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a shard file of this format.
    #[error(
        "{path}: not a shard file ({FORMAT}) written by `canarylab sim --shard`: at {json_path}: {message}"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the JSON the problem is.
        json_path: String,
        /// The parser's message.
        message: String,
    },
    /// A shard file's contents contradict themselves.
    #[error("{path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The problem.
        problem: String,
    },
    /// A directory holds no shard files.
    #[error("{dir}: no shard-*.json files in this directory")]
    EmptyDir {
        /// The directory.
        dir: PathBuf,
    },
    /// Nothing to merge.
    #[error("no shard files given")]
    NoShards,
    /// Two shard files are from different studies.
    #[error(
        "{path}: {field} is {value}, but {first} has {first_value}: these shards are not from the same study"
    )]
    Mismatch {
        /// The file that differs from the first one.
        path: PathBuf,
        /// The differing field, e.g. `seed`.
        field: String,
        /// Its value in `path`.
        value: String,
        /// The first shard file.
        first: PathBuf,
        /// Its value there.
        first_value: String,
    },
    /// The same shard was given twice.
    #[error("shard {shard} is given twice: {first} and {second}")]
    Duplicate {
        /// The shard.
        shard: Shard,
        /// One file holding it.
        first: PathBuf,
        /// Another.
        second: PathBuf,
    },
    /// Some shards of the study are missing.
    #[error("missing shard{} {} of {count}: merging needs all {count} shards of the study", if missing.len() == 1 { "" } else { "s" }, list(missing))]
    Missing {
        /// Shard count.
        count: u32,
        /// The missing shard indices.
        missing: Vec<u32>,
    },
}

fn list(v: &[u32]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = v.iter().take(SHOWN).map(u32::to_string).collect();
    if v.len() > SHOWN {
        s.push(format!("... ({} in all)", v.len()));
    }
    s.join(", ")
}

/// Shard `index` of `count`: the runs r with `r % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many shards the study is split into.
    pub count: u32,
}

impl Shard {
    /// The whole study as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// A shard; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// How many of a scenario's `runs` runs this shard holds.
    pub fn len(&self, runs: u32) -> u32 {
        let (i, n, r) = (
            u64::from(self.index),
            u64::from(self.count.max(1)),
            u64::from(runs),
        );
        // r - i rounded up over n, or 0 when the shard starts past the end
        u32::try_from((r + n - 1).saturating_sub(i) / n).unwrap_or(u32::MAX)
    }

    /// Whether the shard holds none of `runs` runs.
    pub fn is_empty(&self, runs: u32) -> bool {
        self.len(runs) == 0
    }

    /// The study-wide index of this shard's `k`-th run.
    pub fn run(&self, k: u32) -> u32 {
        self.index + k * self.count
    }

    /// Its file name: `shard-I-of-N.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// `I/N`, e.g. `0/4` for the first of four shards.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = |problem: String| ShardError::Spec {
            spec: s.to_string(),
            problem,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/N, e.g. 0/4 for the first of 4 shards".into()))?;
        let number = |what: &str, v: &str| {
            v.parse::<u32>().map_err(|_| {
                bad(format!(
                    "the shard {what} \"{v}\" is not a whole number (expected I/N, e.g. 0/4)"
                ))
            })
        };
        let (i, n) = (number("index", i)?, number("count", n)?);
        if n == 0 {
            return Err(bad("the shard count must be at least 1".into()));
        }
        Shard::new(i, n).ok_or_else(|| {
            bad(format!(
                "shard index {i} is not below the shard count {n}: the shards of {n} are numbered 0 to {}",
                n - 1
            ))
        })
    }
}

/// Everything a merge checks two shards agree on: the study's parameters,
/// the version, and each scenario's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyKey {
    /// canarylab version that ran the shard.
    pub tool_version: String,
    /// Study seed.
    pub seed: u64,
    /// Runs per scenario in the whole study (all shards).
    pub runs_per_scenario: u32,
    /// The canary config forced on every scenario (`--config`), as shown in
    /// reports.
    pub config: Option<String>,
    /// Whether shard 0 carries the example runs.
    pub examples: bool,
    /// The scenarios, in study order.
    pub scenarios: Vec<ScenarioKey>,
    /// A sweep's `--param` values, as given (none for `canarylab sim`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<String>,
}

/// One scenario of a shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioKey {
    /// A hash of the scenario as loaded (file, canary config, signals): two
    /// shards with the same hash ran the same scenario.
    pub fingerprint: String,
    /// What the summary needs of the scenario.
    #[serde(flatten)]
    pub meta: ScenarioMeta,
    /// The oracle's statistic of the scenario, when it has a closed form
    /// ([`crate::oracle`]), so a merge can put the oracle in the results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<crate::oracle::Statistic>,
}

/// The outcomes of one scenario's runs in a shard, in run order, as
/// columns (compact: a shard of a large study holds many runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Scenario name.
    pub scenario: String,
    /// One letter per run: `P` promoted, `R` rolled back, `D` deploy
    /// failed, `B` build failed, `E` error (no verdict).
    pub decision: String,
    /// [`RunOutcome::decision_time_s`] per run.
    pub decision_time_s: Vec<Num>,
    /// [`RunOutcome::canary_requests`] per run.
    pub canary_requests: Vec<u64>,
    /// [`RunOutcome::blast_radius`] per run.
    pub blast_radius: Vec<u64>,
    /// [`RunOutcome::lead_time_s`] per run.
    pub lead_time_s: Vec<Num>,
    /// [`RunOutcome::decided_at_interval`] per run.
    pub decided_at_interval: Vec<Option<usize>>,
    /// [`RunOutcome::decided_by`] per run: one letter per metric (`P`
    /// pass, `H` high, `L` low, `N` nodata, `F` nodata failing the metric,
    /// `E` error; lower case: it alone turned the verdict), empty for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decided_by: Vec<String>,
}

fn mark_letter((label, pivotal): (judge::Classification, bool)) -> char {
    use judge::Classification::*;
    let c = match label {
        Pass => 'P',
        High => 'H',
        Low => 'L',
        Nodata => 'N',
        NodataFailMetric => 'F',
        Error => 'E',
    };
    if pivotal { c.to_ascii_lowercase() } else { c }
}

fn mark_of(c: char) -> Option<(judge::Classification, bool)> {
    use judge::Classification::*;
    let label = match c.to_ascii_uppercase() {
        'P' => Pass,
        'H' => High,
        'L' => Low,
        'N' => Nodata,
        'F' => NodataFailMetric,
        'E' => Error,
        _ => return None,
    };
    Some((label, c.is_ascii_lowercase()))
}

impl Outcomes {
    fn of(scenario: &str, runs: &[RunOutcome]) -> Outcomes {
        Outcomes {
            scenario: scenario.to_string(),
            decision: runs.iter().map(|o| letter(o.decision)).collect(),
            decision_time_s: runs.iter().map(|o| Num(o.decision_time_s)).collect(),
            canary_requests: runs.iter().map(|o| o.canary_requests).collect(),
            blast_radius: runs.iter().map(|o| o.blast_radius).collect(),
            lead_time_s: runs.iter().map(|o| Num(o.lead_time_s)).collect(),
            decided_at_interval: runs.iter().map(|o| o.decided_at_interval).collect(),
            decided_by: if runs.iter().any(|o| o.decided_by.is_some()) {
                runs.iter()
                    .map(|o| {
                        o.decided_by
                            .iter()
                            .flatten()
                            .map(|&m| mark_letter(m))
                            .collect()
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The runs back, checking every column has `len` entries.
    fn runs(&self, len: usize) -> Result<Vec<RunOutcome>, String> {
        let lens = [
            ("decision", self.decision.chars().count()),
            ("decision_time_s", self.decision_time_s.len()),
            ("canary_requests", self.canary_requests.len()),
            ("blast_radius", self.blast_radius.len()),
            ("lead_time_s", self.lead_time_s.len()),
            ("decided_at_interval", self.decided_at_interval.len()),
        ];
        if let Some((column, n)) = lens.iter().find(|(_, n)| *n != len) {
            return Err(format!(
                "scenario {}: {column} has {n} runs, but this shard holds {len}",
                self.scenario
            ));
        }
        if !self.decided_by.is_empty() && self.decided_by.len() != len {
            return Err(format!(
                "scenario {}: decided_by has {} runs, but this shard holds {len}",
                self.scenario,
                self.decided_by.len()
            ));
        }
        self.decision
            .chars()
            .enumerate()
            .map(|(k, c)| {
                Ok(RunOutcome {
                    decision: decision(c).ok_or_else(|| {
                        format!(
                            "scenario {}: decision {k} is \"{c}\" (expected P, R, D, B, E or A)",
                            self.scenario
                        )
                    })?,
                    decision_time_s: self.decision_time_s[k].0,
                    canary_requests: self.canary_requests[k],
                    blast_radius: self.blast_radius[k],
                    lead_time_s: self.lead_time_s[k].0,
                    decided_at_interval: self.decided_at_interval[k],
                    decided_by: match self.decided_by.get(k) {
                        None => None,
                        Some(m) if m.is_empty() => None,
                        Some(m) => Some(
                            m.chars()
                                .map(|c| {
                                    mark_of(c).ok_or_else(|| {
                                        format!(
                                            "scenario {}: decided_by {k} has \"{c}\" (expected P, H, L, N, F or E, lower case when pivotal)",
                                            self.scenario
                                        )
                                    })
                                })
                                .collect::<Result<_, _>>()?,
                        ),
                    },
                })
            })
            .collect()
    }
}

fn letter(d: Decision) -> char {
    match d {
        Decision::Promote => 'P',
        Decision::Rollback => 'R',
        Decision::DeployFailed => 'D',
        Decision::BuildFailed => 'B',
        Decision::Error => 'E',
        Decision::Paused => 'A',
    }
}

fn decision(c: char) -> Option<Decision> {
    Some(match c {
        'P' => Decision::Promote,
        'R' => Decision::Rollback,
        'D' => Decision::DeployFailed,
        'B' => Decision::BuildFailed,
        'E' => Decision::Error,
        'A' => Decision::Paused,
        _ => return None,
    })
}

/// An f64 that survives JSON exactly: finite values as numbers (shortest
/// round-trip form), the rest as `"NaN"`, `"inf"`, `"-inf"` (plain JSON
/// would turn them into null and lose them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_finite() {
            s.serialize_f64(x)
        } else if x.is_nan() {
            s.serialize_str("NaN")
        } else if x > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(x) => Ok(Num(x)),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(Num(f64::NAN)),
                "inf" => Ok(Num(f64::INFINITY)),
                "-inf" => Ok(Num(f64::NEG_INFINITY)),
                _ => Err(serde::de::Error::custom(format!(
                    "\"{t}\" is not a number (expected a number, \"NaN\", \"inf\" or \"-inf\")"
                ))),
            },
        }
    }
}

/// One shard of a study, as written to `shard-I-of-N.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Which shard this is.
    pub shard: Shard,
    /// The study it is a shard of.
    pub study: StudyKey,
    /// Per scenario (in `study.scenarios` order), this shard's runs.
    pub runs: Vec<Outcomes>,
    /// Shard 0 only: run 0 of each scenario in detail (the report's example
    /// runs).
    #[serde(default)]
    pub example_runs: Vec<RunDetail>,
    /// A sweep's shards: per `study.sweep` parameter, this shard's counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<SweepCounts>,
}

/// A hash of what decides a scenario's runs: FNV-1a over its JSON form.
pub fn fingerprint(sc: &Scenario) -> String {
    let json = serde_json::to_vec(&(&sc.file, &sc.config, &sc.sources))
        // these types are plain data; should serializing ever fail, the
        // error text still differs from any real scenario's JSON
        .unwrap_or_else(|e| e.to_string().into_bytes());
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in json {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    format!("{h:016x}")
}

/// Play `shard` of the study of `scenarios`: the same runs, with the same
/// seeds, as those runs of the unsharded study. `config` is the forced
/// canary config's name as reports show it.
pub fn run_shard(
    scenarios: &[Scenario],
    opts: StudyOptions,
    shard: Shard,
    config: Option<String>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ShardFile, SimError> {
    let prepared = Prepared::all(scenarios)?;
    let outcomes = run_shard_outcomes(&prepared, opts, shard, progress);
    let example_runs = if opts.examples && shard.index == 0 {
        example_runs(&prepared, opts.seed)
    } else {
        Vec::new()
    };
    Ok(ShardFile {
        format: FORMAT.into(),
        shard,
        study: StudyKey {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            seed: opts.seed,
            runs_per_scenario: opts.runs,
            config,
            examples: opts.examples,
            scenarios: scenarios
                .iter()
                .map(|s| ScenarioKey {
                    fingerprint: fingerprint(s),
                    meta: ScenarioMeta::of(s),
                    oracle: crate::oracle::statistic(s),
                })
                .collect(),
            sweep: Vec::new(),
        },
        runs: scenarios
            .iter()
            .zip(&outcomes)
            .map(|(s, o)| Outcomes::of(&s.name, o))
            .collect(),
        example_runs,
        sweeps: Vec::new(),
    })
}

/// Play `shard` of a sweep (`canarylab sweep --param P ...`): the study's
/// runs of the shard, as [`run_shard`], and at each setting of each
/// parameter (`NAME=V1,V2,...`) the shard's runs, counted.
pub fn run_sweep_shard(
    scenarios: &[Scenario],
    opts: StudyOptions,
    shard: Shard,
    config: Option<String>,
    params: &[String],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ShardFile, SimError> {
    let grids = params
        .iter()
        .map(|p| parse_grid(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut file = run_shard(scenarios, opts, shard, config, progress)?;
    let sweep_opts = StudyOptions {
        examples: false,
        ..opts
    };
    for (name, values) in &grids {
        file.sweeps.push(sweep_counts(
            scenarios, *name, values, sweep_opts, shard, progress,
        )?);
    }
    file.study.sweep = params.to_vec();
    Ok(file)
}

/// Write `file` as `dir/shard-I-of-N.json` (creating `dir`); returns the
/// path. Written under a temporary name and renamed, so a killed pod never
/// leaves a partial shard file behind.
pub fn write(file: &ShardFile, dir: &Path) -> Result<PathBuf, ShardError> {
    std::fs::create_dir_all(dir).map_err(|source| ShardError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(file.shard.file_name());
    let tmp = dir.join(format!(".{}.tmp", file.shard.file_name()));
    let mut json = serde_json::to_vec(file).map_err(|e| ShardError::Write {
        path: path.clone(),
        source: e.into(),
    })?;
    json.push(b'\n');
    std::fs::write(&tmp, json).map_err(|source| ShardError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| ShardError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Read one shard file.
pub fn read(path: &Path) -> Result<ShardFile, ShardError> {
    let text = std::fs::read_to_string(path).map_err(|source| ShardError::Read {
        path: path.to_owned(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let file: ShardFile = serde_path_to_error::deserialize(de).map_err(|e| ShardError::Parse {
        path: path.to_owned(),
        json_path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    if file.format != FORMAT {
        return Err(ShardError::Parse {
            path: path.to_owned(),
            json_path: "format".into(),
            message: format!(
                "format is \"{}\"; this canarylab reads \"{FORMAT}\"",
                file.format
            ),
        });
    }
    Ok(file)
}

/// Read shard files, and the `shard-*.json` files of directories (sorted by
/// name), in the order given.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<(PathBuf, ShardFile)>, ShardError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| ShardError::Read {
                path: p.clone(),
                source,
            })?;
            let mut found = Vec::new();
            for e in entries {
                let e = e.map_err(|source| ShardError::Read {
                    path: p.clone(),
                    source,
                })?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("shard-") && name.ends_with(".json") {
                    found.push(e.path());
                }
            }
            if found.is_empty() {
                return Err(ShardError::EmptyDir { dir: p.clone() });
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    files
        .into_iter()
        .map(|p| {
            let f = read(&p)?;
            Ok((p, f))
        })
        .collect()
}

/// The first field in which `b` differs from `a`: (field, a's value, b's).
fn difference(a: &StudyKey, b: &StudyKey) -> Option<(String, String, String)> {
    let d = |field: &str, x: String, y: String| (x != y).then(|| (field.to_string(), x, y));
    let opt = |c: &Option<String>| c.clone().unwrap_or_else(|| "(none)".into());
    let names = |k: &StudyKey| {
        k.scenarios
            .iter()
            .map(|s| s.meta.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    d(
        "tool_version",
        a.tool_version.clone(),
        b.tool_version.clone(),
    )
    .or_else(|| d("seed", a.seed.to_string(), b.seed.to_string()))
    .or_else(|| {
        d(
            "runs_per_scenario",
            a.runs_per_scenario.to_string(),
            b.runs_per_scenario.to_string(),
        )
    })
    .or_else(|| d("config", opt(&a.config), opt(&b.config)))
    .or_else(|| d("examples", a.examples.to_string(), b.examples.to_string()))
    .or_else(|| {
        let sweep = |k: &StudyKey| match k.sweep.is_empty() {
            true => "(no sweep)".to_string(),
            false => k.sweep.join(" "),
        };
        d("the sweep", sweep(a), sweep(b))
    })
    .or_else(|| d("scenarios", names(a), names(b)))
    .or_else(|| {
        a.scenarios.iter().zip(&b.scenarios).find_map(|(x, y)| {
            let field = format!("the fingerprint of scenario {}", x.meta.name);
            d(&field, x.fingerprint.clone(), y.fingerprint.clone()).or_else(|| {
                (x.meta != y.meta).then(|| {
                    (
                        format!("the description of scenario {}", x.meta.name),
                        format!("{:?}", x.meta),
                        format!("{:?}", y.meta),
                    )
                })
            })
        })
    })
}

/// Put the shards of one study back together: the [`Study`] the unsharded
/// study gives (`canarylab sim` without `--shard`, same seed and version).
/// Refuses shards of different studies, missing and duplicate shards.
pub fn merge(shards: Vec<(PathBuf, ShardFile)>) -> Result<Study, ShardError> {
    let Some((first_path, first)) = shards.first() else {
        return Err(ShardError::NoShards);
    };
    let (first_path, key, count) = (first_path.clone(), first.study.clone(), first.shard.count);
    let mut slots: Vec<Option<(PathBuf, ShardFile)>> = vec![None; count as usize];
    for (path, file) in shards {
        if file.shard.count != count {
            return Err(ShardError::Mismatch {
                path,
                field: "the shard count".into(),
                value: file.shard.count.to_string(),
                first: first_path,
                first_value: count.to_string(),
            });
        }
        if let Some((field, first_value, value)) = difference(&key, &file.study) {
            return Err(ShardError::Mismatch {
                path,
                field,
                value,
                first: first_path,
                first_value,
            });
        }
        check(&path, &file)?;
        let slot = slots
            .get_mut(file.shard.index as usize)
            .ok_or_else(|| ShardError::Corrupt {
                path: path.clone(),
                problem: format!("shard {} is out of range", file.shard),
            })?;
        if let Some((other, _)) = slot {
            return Err(ShardError::Duplicate {
                shard: file.shard,
                first: other.clone(),
                second: path,
            });
        }
        *slot = Some((path, file));
    }
    let missing: Vec<u32> = (0..count)
        .filter(|&i| slots[i as usize].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing { count, missing });
    }
    let (paths, mut shards): (Vec<PathBuf>, Vec<ShardFile>) = slots.into_iter().flatten().unzip();
    let n = count as usize;
    let runs = key.runs_per_scenario as usize;
    let mut results = Vec::with_capacity(key.scenarios.len());
    for (si, sc) in key.scenarios.iter().enumerate() {
        let mut columns: Vec<std::vec::IntoIter<RunOutcome>> = Vec::with_capacity(n);
        for (path, s) in paths.iter().zip(&shards) {
            let len = s.shard.len(key.runs_per_scenario) as usize;
            let o = s.runs[si]
                .runs(len)
                .map_err(|problem| ShardError::Corrupt {
                    path: path.clone(),
                    problem,
                })?;
            columns.push(o.into_iter());
        }
        // run r is run r / n of shard r % n; each column holds exactly
        // its shard's share (checked just above), so none runs dry
        let all: Vec<RunOutcome> = (0..runs).filter_map(|r| columns[r % n].next()).collect();
        results.push(summarize_meta(&sc.meta, &all));
    }
    let mut sweeps = shards[0].sweeps.clone();
    for (path, s) in paths.iter().zip(&shards).skip(1) {
        for (total, part) in sweeps.iter_mut().zip(&s.sweeps) {
            if !total.add(part) {
                return Err(ShardError::Corrupt {
                    path: path.clone(),
                    problem: format!(
                        "its sweep over {} has other points or scenarios than {}'s",
                        part.parameter,
                        paths[0].display()
                    ),
                });
            }
        }
    }
    let oracles: Vec<_> = key.scenarios.iter().map(|s| s.oracle).collect();
    crate::oracle::annotate_with(&mut results, &oracles);
    Ok(Study {
        tool_version: key.tool_version,
        driver: "sim".into(),
        seed: key.seed,
        runs_per_scenario: key.runs_per_scenario,
        config: key.config,
        scenarios: results,
        example_runs: std::mem::take(&mut shards[0].example_runs),
        sweeps: sweeps.iter().map(SweepCounts::to_sweep).collect(),
    })
}

/// A shard file agrees with itself: its runs match its study and shard.
fn check(path: &Path, f: &ShardFile) -> Result<(), ShardError> {
    let corrupt = |problem: String| ShardError::Corrupt {
        path: path.to_owned(),
        problem,
    };
    if f.shard.count == 0 || f.shard.index >= f.shard.count {
        return Err(corrupt(format!("shard {} is not a valid I/N", f.shard)));
    }
    if f.runs.len() != f.study.scenarios.len() {
        return Err(corrupt(format!(
            "runs of {} scenarios, but the study has {}",
            f.runs.len(),
            f.study.scenarios.len()
        )));
    }
    let len = f.shard.len(f.study.runs_per_scenario) as usize;
    for (o, sc) in f.runs.iter().zip(&f.study.scenarios) {
        if o.scenario != sc.meta.name {
            return Err(corrupt(format!(
                "runs of scenario {} where the study has {}",
                o.scenario, sc.meta.name
            )));
        }
        o.runs(len).map_err(corrupt)?;
    }
    if f.sweeps.len() != f.study.sweep.len() {
        return Err(corrupt(format!(
            "{} sweeps, but the study sweeps {} parameters",
            f.sweeps.len(),
            f.study.sweep.len()
        )));
    }
    for (sw, spec) in f.sweeps.iter().zip(&f.study.sweep) {
        let name = spec.split_once('=').map_or(spec.as_str(), |(n, _)| n);
        let scenarios_match = sw.points.iter().all(|p| {
            p.scenarios.len() == f.study.scenarios.len()
                && p.scenarios
                    .iter()
                    .zip(&f.study.scenarios)
                    .all(|(c, k)| c.name == k.meta.name && c.expect == k.meta.expect)
        });
        if sw.parameter != name || !scenarios_match {
            return Err(corrupt(format!(
                "the sweep over {} does not match the study's --param {spec} and scenarios",
                sw.parameter
            )));
        }
        if let Some(p) = sw.points.iter().find(|p| {
            p.scenarios
                .iter()
                .any(|c| c.rolled_back > c.deployed || c.deployed as usize > len)
        }) {
            return Err(corrupt(format!(
                "the sweep point {} counts more runs than the shard holds",
                p.label
            )));
        }
    }
    if f.shard.index != 0 && !f.example_runs.is_empty() {
        return Err(corrupt(format!(
            "shard {} has example runs; only shard 0 carries them",
            f.shard
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec(s: &str) -> Result<Shard, String> {
        s.parse::<Shard>().map_err(|e| e.to_string())
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(spec("0/1").unwrap(), Shard::WHOLE);
        assert_eq!(spec("2/3").unwrap(), Shard { index: 2, count: 3 });
        let e = spec("3/3").unwrap_err();
        assert!(e.contains("index 3 is not below the shard count 3"), "{e}");
        assert!(e.contains("0 to 2"), "{e}");
        let e = spec("0/0").unwrap_err();
        assert!(e.contains("count must be at least 1"), "{e}");
        let e = spec("a/b").unwrap_err();
        assert!(e.contains("index \"a\" is not a whole number"), "{e}");
        let e = spec("1/b").unwrap_err();
        assert!(e.contains("count \"b\" is not a whole number"), "{e}");
        let e = spec("3").unwrap_err();
        assert!(e.contains("expected I/N"), "{e}");
        assert!(spec("-1/3").is_err());
        assert!(spec("1/2/3").is_err());
    }

    #[test]
    fn shards_partition_the_runs() {
        for runs in [0u32, 1, 2, 7, 10, 33] {
            for count in 1..=12u32 {
                let mut seen = vec![0u32; runs as usize];
                for index in 0..count {
                    let s = Shard { index, count };
                    for k in 0..s.len(runs) {
                        let r = s.run(k);
                        assert_eq!(r % count, index);
                        seen[r as usize] += 1;
                    }
                }
                assert!(seen.iter().all(|&n| n == 1), "runs {runs}, count {count}");
            }
        }
    }

    #[test]
    fn numbers_survive_json_exactly() {
        let xs = [
            0.1,
            1.0 / 3.0,
            123456.789e-300,
            f64::MAX,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let v: Vec<Num> = xs.iter().copied().map(Num).collect();
        let back: Vec<Num> = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        for (a, b) in v.iter().zip(&back) {
            assert_eq!(a.0.to_bits(), b.0.to_bits(), "{a:?} {b:?}");
        }
        assert!(serde_json::from_str::<Num>("\"x\"").is_err());
    }

    #[test]
    fn outcomes_round_trip_and_check_their_lengths() {
        let runs = vec![
            RunOutcome {
                decision: Decision::Promote,
                decision_time_s: 1.5,
                canary_requests: 10,
                blast_radius: 0,
                lead_time_s: 99.25,
                decided_at_interval: Some(2),
                decided_by: Some(vec![
                    (judge::Classification::High, true),
                    (judge::Classification::Pass, false),
                ]),
            },
            RunOutcome {
                decision: Decision::BuildFailed,
                decision_time_s: 0.0,
                canary_requests: 0,
                blast_radius: 0,
                lead_time_s: 3.0,
                decided_at_interval: None,
                decided_by: None,
            },
        ];
        let o = Outcomes::of("x", &runs);
        assert_eq!(o.decision, "PB");
        assert_eq!(o.runs(2).unwrap(), runs);
        let e = o.runs(3).unwrap_err();
        assert!(
            e.contains("decision has 2 runs, but this shard holds 3"),
            "{e}"
        );
        let mut bad = o.clone();
        bad.decision = "PX".into();
        assert!(bad.runs(2).unwrap_err().contains("\"X\""));
    }
}
