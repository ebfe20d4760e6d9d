//! Scenario files: one canary release to test, in TOML.
//!
//! A scenario says what the service is like (traffic, latency, errors,
//! resources, noise), what the new version changed (the regression, or
//! none), what the truth is (`expect`), how the pipeline deploys and
//! analyses it, and which Kayenta canary config judges it. The simulator,
//! the local mode and the cluster mode all read the same file.
//!
//! Not for: running anything. Loading is strict (`deny_unknown_fields`)
//! and errors name the file, line, column and field.

#![warn(missing_docs)]

pub mod query;
pub mod telemetry;

use std::path::{Path, PathBuf};

use judge::CanaryConfig;
use serde::{Deserialize, Serialize};

pub use query::{MetricSource, ScopeVars};
pub use telemetry::Telemetry;

/// What can go wrong loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    // The io error is shown in the message, not chained as a source, so
    // error reports don't print it twice.
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type or name.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value out of range or inconsistent with another.
    #[error("{file}: `{field}`: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The Kayenta canary config the scenario names is invalid.
    #[error("{file}: {message}")]
    Config {
        /// The config file (or the scenario, for an inline config).
        file: PathBuf,
        /// The config error.
        message: String,
    },
    /// A directory holds no scenario files.
    #[error("{0}: no scenario files (*.toml) found")]
    Empty(PathBuf),
}

/// Ground truth of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Harmless: the canary should be promoted.
    Pass,
    /// A regression: the canary should be rolled back.
    Fail,
}

/// A scenario, as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Name; defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// One line saying what the scenario is.
    pub description: String,
    /// Ground truth.
    pub expect: Expect,
    /// For `canarylab test`: the least acceptable detection rate (for
    /// `expect = "fail"`).
    #[serde(default)]
    pub min_detection: Option<f64>,
    /// For `canarylab test`: the largest acceptable false-alarm rate (for
    /// `expect = "pass"`).
    #[serde(default)]
    pub max_false_alarm: Option<f64>,
    /// The service as it runs in production.
    #[serde(default)]
    pub service: Service,
    /// What the new version changed; absent for an A/A release.
    #[serde(default)]
    pub regression: Option<Regression>,
    /// How the release is built, deployed and analysed.
    #[serde(default)]
    pub pipeline: Pipeline,
    /// The canary analysis.
    pub analysis: Analysis,
    /// How the simulated raw series are named and labelled.
    #[serde(default)]
    pub telemetry: Telemetry,
}

/// The service under release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Requests per second to the whole service.
    pub request_rate: f64,
    /// Diurnal swing of the rate, as a fraction (0.3 = +-30% over a day).
    pub diurnal_swing: f64,
    /// Hour of day the release starts (for the diurnal phase).
    pub start_hour: f64,
    /// Production replicas.
    pub replicas: u32,
    /// Median per-request latency, milliseconds.
    pub latency_median_ms: f64,
    /// Log-normal sigma of per-request latency.
    pub latency_sigma: f64,
    /// Fraction of requests answered 5xx.
    pub error_rate: f64,
    /// CPU seconds per request, in milliseconds.
    pub cpu_ms_per_request: f64,
    /// CPU a pod burns while idle, cores.
    pub cpu_idle_cores: f64,
    /// Resident memory of a warmed-up pod, MiB.
    pub memory_mib: f64,
    /// Pod-to-pod variation: sd of each pod's latency factor (log scale).
    pub pod_variation: f64,
    /// Load swings shared by all pods: AR(1) on the log rate and latency.
    pub load_noise: Ar1,
    /// Per-pod drift of latency: AR(1) on the log latency.
    pub pod_drift: Ar1,
    /// How a fresh pod differs from a long-running one.
    pub fresh_pod: FreshPod,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            request_rate: 200.0,
            diurnal_swing: 0.0,
            start_hour: 14.0,
            replicas: 6,
            latency_median_ms: 50.0,
            latency_sigma: 0.5,
            error_rate: 0.001,
            cpu_ms_per_request: 5.0,
            cpu_idle_cores: 0.02,
            memory_mib: 300.0,
            pod_variation: 0.02,
            load_noise: Ar1 { sd: 0.03, rho: 0.5 },
            pod_drift: Ar1 { sd: 0.01, rho: 0.9 },
            fresh_pod: FreshPod::default(),
        }
    }
}

/// A stationary AR(1) process: standard deviation and lag-1 correlation
/// per scrape step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ar1 {
    /// Stationary standard deviation.
    pub sd: f64,
    /// Correlation between consecutive scrape steps, in [0, 1).
    pub rho: f64,
}

/// Why a fresh baseline matters: a new pod's caches are cold and its heap
/// small, so it differs from production that has been up for days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FreshPod {
    /// Extra latency of a fresh pod (0.1 = +10%), decaying with age.
    pub cold_latency: f64,
    /// Time constant of the decay, seconds.
    pub warm_up_s: f64,
    /// Memory of a fresh pod relative to a long-running one (0.7 = 70%).
    pub memory_ratio: f64,
}

impl Default for FreshPod {
    fn default() -> Self {
        Self {
            cold_latency: 0.05,
            warm_up_s: 600.0,
            memory_ratio: 0.75,
        }
    }
}

/// What the canary changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Regression {
    /// Every request slower by a factor (0.1 = +10%).
    Latency {
        /// Relative increase of the latency median.
        increase: f64,
    },
    /// A fraction of requests slower by a fixed amount (a tail regression).
    LatencyTail {
        /// Fraction of requests affected.
        fraction: f64,
        /// Added latency, milliseconds.
        added_ms: f64,
    },
    /// Same median, wider spread.
    Variance {
        /// New log-normal sigma.
        sigma: f64,
    },
    /// More requests fail.
    Errors {
        /// The canary's error rate (fraction).
        error_rate: f64,
    },
    /// More CPU per request (0.3 = +30%).
    Cpu {
        /// Relative increase.
        increase: f64,
    },
    /// Memory grows steadily.
    MemoryLeak {
        /// Growth, MiB per minute.
        mib_per_minute: f64,
    },
    /// The canary crashes shortly after it starts, again and again.
    CrashLoop {
        /// Seconds from start to crash.
        crash_after_s: f64,
    },
    /// The canary takes long to become ready and is slow at first.
    SlowStart {
        /// Extra time to readiness, seconds.
        extra_ready_s: f64,
        /// Extra latency at start (1.0 = +100%), decaying over `decay_s`.
        extra_latency: f64,
        /// Decay time constant, seconds.
        decay_s: f64,
    },
}

impl Regression {
    /// Kind name, size and label for reports.
    pub fn describe(&self) -> (&'static str, f64, String) {
        match *self {
            Self::Latency { increase } => {
                ("latency", increase, format!("latency +{}%", pct(increase)))
            }
            Self::LatencyTail { fraction, added_ms } => (
                "latency_tail",
                fraction,
                format!("{}% of requests +{added_ms} ms", pct(fraction)),
            ),
            Self::Variance { sigma } => ("variance", sigma, format!("latency sigma {sigma}")),
            Self::Errors { error_rate } => {
                ("errors", error_rate, format!("errors {}%", pct(error_rate)))
            }
            Self::Cpu { increase } => ("cpu", increase, format!("cpu +{}%", pct(increase))),
            Self::MemoryLeak { mib_per_minute } => (
                "memory_leak",
                mib_per_minute,
                format!("memory leak {mib_per_minute} MiB/min"),
            ),
            Self::CrashLoop { crash_after_s } => (
                "crash_loop",
                crash_after_s,
                format!("crash loop after {crash_after_s} s"),
            ),
            Self::SlowStart { extra_ready_s, .. } => (
                "slow_start",
                extra_ready_s,
                format!("slow start +{extra_ready_s} s"),
            ),
        }
    }
}

fn pct(x: f64) -> String {
    let v = (x * 1000.0).round() / 10.0;
    format!("{v}")
}

/// What the canary is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// A fresh deployment of the current version (the Spinnaker way).
    #[default]
    Fresh,
    /// The long-running production pods.
    Production,
}

/// Traffic split in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Canary share, percent.
    pub canary: f64,
    /// Baseline share, percent (0 when comparing with production).
    pub baseline: f64,
    /// Production share, percent.
    pub production: f64,
}

/// A step of a stepped traffic split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficStep {
    /// Seconds after traffic first shifts that this split starts.
    pub after_s: f64,
    /// The split.
    pub canary: f64,
    /// The split.
    pub baseline: f64,
    /// The split.
    pub production: f64,
}

/// The delivery pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pipeline {
    /// Push to build start (webhook), seconds.
    pub webhook_s: f64,
    /// Build and push of the image, seconds.
    pub build_s: f64,
    /// Probability that the build fails.
    pub build_failure: f64,
    /// Scheduling and image pull, seconds.
    pub pod_start_s: f64,
    /// Start to ready, seconds.
    pub readiness_s: f64,
    /// How long to wait for canary pods to become ready before giving up.
    pub deploy_timeout_s: f64,
    /// Canary replicas.
    pub canary_replicas: u32,
    /// Baseline replicas.
    pub baseline_replicas: u32,
    /// Fresh baseline or old production.
    pub baseline: BaselineKind,
    /// Traffic split during the analysis.
    pub traffic: Traffic,
    /// Optional later splits (e.g. 5%, then 25%, then 50%).
    pub traffic_steps: Vec<TrafficStep>,
    /// Warmup before the first analysis window (beginCanaryAnalysisAfter), s.
    pub warmup_s: f64,
    /// Analysis lifetime, seconds.
    pub lifetime_s: f64,
    /// Analysis interval, seconds (absent: one judgement at the end).
    pub interval_s: Option<f64>,
    /// Sliding window length, seconds (absent: growing windows).
    pub lookback_s: Option<f64>,
    /// Pass threshold (overrides the config's).
    pub pass: Option<f64>,
    /// Marginal threshold (overrides the config's).
    pub marginal: Option<f64>,
    /// Rolling update: pods added above the replica count at once.
    pub max_surge: u32,
    /// Rolling update: pods that may be unavailable at once.
    pub max_unavailable: u32,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            webhook_s: 5.0,
            build_s: 180.0,
            build_failure: 0.0,
            pod_start_s: 15.0,
            readiness_s: 20.0,
            deploy_timeout_s: 600.0,
            canary_replicas: 1,
            baseline_replicas: 1,
            baseline: BaselineKind::Fresh,
            traffic: Traffic {
                canary: 5.0,
                baseline: 5.0,
                production: 90.0,
            },
            traffic_steps: Vec::new(),
            warmup_s: 300.0,
            lifetime_s: 1800.0,
            interval_s: Some(600.0),
            lookback_s: None,
            pass: None,
            marginal: None,
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// The analysis: which Kayenta config, how Prometheus samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Kayenta canary config (JSON), relative to the scenario file.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Prometheus query step, seconds (one point per step per window).
    #[serde(default = "default_step")]
    pub scrape_step_s: f64,
    /// Range of `rate(...[range])`, seconds, in the queries of named
    /// signals (`[analysis.signals]`); a config's own queries say theirs.
    #[serde(default = "default_rate_window")]
    pub rate_window_s: f64,
    /// What each metric of the config measures when it is not a Prometheus
    /// query (or to override one): metric name -> a signal name
    /// ([`query::SIGNAL_NAMES`]) or PromQL with `${scope}`.
    #[serde(default)]
    pub signals: std::collections::BTreeMap<String, String>,
}

fn default_step() -> f64 {
    10.0
}

fn default_rate_window() -> f64 {
    60.0
}

/// A loaded, validated scenario with its canary config resolved.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Where it came from.
    pub path: PathBuf,
    /// The file's contents.
    pub file: ScenarioFile,
    /// The canary config that judges it.
    pub config: CanaryConfig,
    /// Where the config came from (for reports).
    pub config_path: Option<PathBuf>,
    /// Per config metric (config order), where the simulator's PromQL for
    /// it comes from.
    pub sources: Vec<MetricSource>,
}

impl Scenario {
    /// Load and validate a scenario file. `config_override` replaces the
    /// scenario's own canary config (the `--config` flag).
    pub fn load(path: &Path, config_override: Option<&Path>) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            file: path.into(),
            error,
        })?;
        Self::parse(&text, path, config_override)
    }

    /// Parse scenario text; `path` names it in errors and anchors relative
    /// config paths.
    pub fn parse(
        text: &str,
        path: &Path,
        config_override: Option<&Path>,
    ) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: path.into(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        validate(&file, path)?;
        let config_path = match (config_override, &file.analysis.config) {
            (Some(c), _) => Some(c.to_path_buf()),
            (None, Some(c)) => Some(path.parent().unwrap_or(Path::new(".")).join(c)),
            (None, None) => None,
        };
        let Some(config_path) = config_path else {
            return Err(invalid(
                path,
                "analysis.config",
                "no canary config: set analysis.config or pass --config",
            ));
        };
        let text = std::fs::read_to_string(&config_path).map_err(|error| ScenarioError::Read {
            file: config_path.clone(),
            error,
        })?;
        let config = CanaryConfig::from_json(&text).map_err(|e| ScenarioError::Config {
            file: config_path.clone(),
            message: e.to_string(),
        })?;
        let mut sources = Vec::with_capacity(config.metrics.len());
        for (i, m) in config.metrics.iter().enumerate() {
            let field = format!("analysis.signals.{}", m.name);
            let source = match file.analysis.signals.get(&m.name) {
                Some(s) => {
                    match query::signal_template(s, &file.telemetry, file.analysis.rate_window_s)
                        .map_err(|e| invalid(path, &field, &e))?
                    {
                        Some(t) => MetricSource::Template(t),
                        None if s.contains("${scope}") => MetricSource::Template(s.clone()),
                        None => {
                            return Err(invalid(
                                path,
                                &field,
                                &format!(
                                    "\"{s}\" is neither a signal ({}) nor PromQL with ${{scope}}",
                                    query::SIGNAL_NAMES
                                ),
                            ));
                        }
                    }
                }
                None if query::is_prometheus(m) => MetricSource::Prometheus,
                None => {
                    return Err(ScenarioError::Config {
                        file: config_path.clone(),
                        message: format!(
                            "metrics[{i}] \"{}\": not a Prometheus query, so the simulator cannot evaluate it; say what it measures in the scenario, \
                             e.g. [analysis.signals] \"{}\" = \"latency_quantile:0.99\" (signals: {}, or PromQL with ${{scope}})",
                            m.name,
                            m.name,
                            query::SIGNAL_NAMES
                        ),
                    });
                }
            };
            // the query must build for a scope (variables, templates)
            query::metric_query(&config, i, &source, &ScopeVars::new("canary")).map_err(|e| {
                ScenarioError::Config {
                    file: config_path.clone(),
                    message: e.to_string(),
                }
            })?;
            sources.push(source);
        }
        for name in file.analysis.signals.keys() {
            if !config.metrics.iter().any(|m| &m.name == name) {
                return Err(invalid(
                    path,
                    &format!("analysis.signals.{name}"),
                    "no metric of that name in the canary config",
                ));
            }
        }
        let name = file.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Self {
            name,
            path: path.into(),
            file,
            config,
            config_path: Some(config_path),
            sources,
        })
    }

    /// Pass and marginal thresholds: the scenario's, else the config's,
    /// else 75 / 50.
    pub fn thresholds(&self) -> judge::ScoreThresholds {
        let base = self.config.classifier.score_thresholds.unwrap_or_default();
        judge::ScoreThresholds {
            pass: self.file.pipeline.pass.unwrap_or(base.pass),
            marginal: self.file.pipeline.marginal.unwrap_or(base.marginal),
        }
    }

    /// Check the scenario's values again (after a change, such as a
    /// sweep's): the same checks and bounds as loading, errors naming the
    /// scenario's file and the field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        validate(&self.file, &self.path)
    }

    /// The analysis schedule.
    pub fn schedule(&self) -> judge::analysis::Schedule {
        let p = &self.file.pipeline;
        let d = std::time::Duration::from_secs_f64;
        judge::analysis::Schedule {
            lifetime: d(p.lifetime_s),
            interval: p.interval_s.map(d),
            warmup: d(p.warmup_s),
            lookback: p.lookback_s.map(d),
        }
    }
}

/// Load one file, or every `*.toml` of a directory (sorted by name).
pub fn load_all(
    paths: &[PathBuf],
    config_override: Option<&Path>,
) -> Result<Vec<Scenario>, ScenarioError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|error| ScenarioError::Read {
                    file: p.clone(),
                    error,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            if files.is_empty() {
                return Err(ScenarioError::Empty(p.clone()));
            }
            files.sort();
            for f in files {
                out.push(Scenario::load(&f, config_override)?);
            }
        } else {
            out.push(Scenario::load(p, config_override)?);
        }
    }
    Ok(out)
}

/// The `[service]` of a scenario file (such as one `canarylab calibrate`
/// writes) and the scrape step its AR(1) correlations are per, validated
/// like a whole scenario; no canary config is needed.
pub fn load_service(path: &Path) -> Result<(Service, f64), ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
        file: path.into(),
        error,
    })?;
    parse_service(&text, path)
}

/// [`load_service`] on text; `path` names it in errors.
pub fn parse_service(text: &str, path: &Path) -> Result<(Service, f64), ScenarioError> {
    let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
        file: path.into(),
        message: e.to_string().trim_end().replace('\n', "\n  "),
    })?;
    validate(&file, path)?;
    Ok((file.service, file.analysis.scrape_step_s))
}

/// The `[telemetry]` of a file: a whole scenario (validated like
/// [`parse_service`], no canary config needed; without a `[telemetry]` it
/// has the default names) or a file holding only a `[telemetry]` table
/// (such as `canarylab calibrate --telemetry` reads). Errors name the file
/// and the field.
pub fn load_telemetry(path: &Path) -> Result<Telemetry, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
        file: path.into(),
        error,
    })?;
    parse_telemetry(&text, path)
}

/// [`load_telemetry`] on text; `path` names it in errors.
pub fn parse_telemetry(text: &str, path: &Path) -> Result<Telemetry, ScenarioError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Only {
        telemetry: Option<Telemetry>,
    }
    let parse_error = |e: toml::de::Error| ScenarioError::Parse {
        file: path.into(),
        message: e.to_string().trim_end().replace('\n', "\n  "),
    };
    let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
    if table.keys().any(|k| k != "telemetry") {
        let file: ScenarioFile = toml::from_str(text).map_err(parse_error)?;
        validate(&file, path)?;
        return Ok(file.telemetry);
    }
    let only: Only = toml::from_str(text).map_err(parse_error)?;
    let Some(telemetry) = only.telemetry else {
        return Err(invalid(
            path,
            "telemetry",
            "no [telemetry] table (and not a scenario)",
        ));
    };
    telemetry
        .check()
        .map_err(|(field, message)| invalid(path, &field, &message))?;
    Ok(telemetry)
}

impl Service {
    /// The same service at another scrape step: an AR(1)'s correlation
    /// per step is `rho^(to / from)` (the stationary sd does not depend on
    /// the step).
    pub fn at_step(&self, from_step_s: f64, to_step_s: f64) -> Service {
        let mut s = self.clone();
        if from_step_s > 0.0 && to_step_s > 0.0 && from_step_s != to_step_s {
            let k = to_step_s / from_step_s;
            s.load_noise.rho = s.load_noise.rho.powf(k);
            s.pod_drift.rho = s.pod_drift.rho.powf(k);
        }
        s
    }
}

fn invalid(path: &Path, field: &str, message: &str) -> ScenarioError {
    ScenarioError::Invalid {
        file: path.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Longest duration a scenario may state (30 days), seconds: beyond it a
/// release is not a canary, and times would lose millisecond precision.
pub const MAX_DURATION_S: f64 = 30.0 * 86_400.0;
/// Most scrape steps a release's series may hold (what the simulator
/// generates per track and signal): a week at a 6 s step.
pub const MAX_POINTS: f64 = 100_000.0;
/// Most pods a track may have (the simulator draws per pod).
pub const MAX_REPLICAS: u32 = 10_000;
/// Highest request rate, requests per second.
pub const MAX_REQUEST_RATE: f64 = 10_000_000.0;

fn validate(f: &ScenarioFile, path: &Path) -> Result<(), ScenarioError> {
    f.telemetry
        .check()
        .map_err(|(field, message)| invalid(path, &field, &message))?;
    let check = |ok: bool, field: &str, message: String| {
        if ok {
            Ok(())
        } else {
            Err(invalid(path, field, &message))
        }
    };
    let fraction = |v: f64, field: &str| {
        check(
            (0.0..=1.0).contains(&v),
            field,
            format!("{v} is not a fraction in [0, 1]"),
        )
    };
    let positive =
        |v: f64, field: &str| check(v.is_finite() && v > 0.0, field, format!("{v} must be > 0"));
    let non_negative = |v: f64, field: &str| {
        check(
            v.is_finite() && v >= 0.0,
            field,
            format!("{v} must be >= 0"),
        )
    };
    let at_most = |v: f64, max: f64, field: &str, what: &str| {
        check(v <= max, field, format!("{v} is above {max} ({what})"))
    };
    let duration = |v: f64, field: &str| at_most(v, MAX_DURATION_S, field, "30 days");
    let replicas = |v: u32, field: &str| {
        check(
            v <= MAX_REPLICAS,
            field,
            format!("{v} is above {MAX_REPLICAS} replicas"),
        )
    };
    let s = &f.service;
    positive(s.request_rate, "service.request_rate")?;
    at_most(
        s.request_rate,
        MAX_REQUEST_RATE,
        "service.request_rate",
        "requests per second",
    )?;
    replicas(s.replicas, "service.replicas")?;
    fraction(s.diurnal_swing, "service.diurnal_swing")?;
    check(
        s.replicas >= 1,
        "service.replicas",
        "at least one production replica".into(),
    )?;
    positive(s.latency_median_ms, "service.latency_median_ms")?;
    non_negative(s.latency_sigma, "service.latency_sigma")?;
    fraction(s.error_rate, "service.error_rate")?;
    non_negative(s.cpu_ms_per_request, "service.cpu_ms_per_request")?;
    non_negative(s.cpu_idle_cores, "service.cpu_idle_cores")?;
    positive(s.memory_mib, "service.memory_mib")?;
    non_negative(s.pod_variation, "service.pod_variation")?;
    for (name, ar) in [("load_noise", s.load_noise), ("pod_drift", s.pod_drift)] {
        non_negative(ar.sd, &format!("service.{name}.sd"))?;
        check(
            (0.0..1.0).contains(&ar.rho),
            &format!("service.{name}.rho"),
            format!("{} is not in [0, 1)", ar.rho),
        )?;
    }
    non_negative(s.fresh_pod.cold_latency, "service.fresh_pod.cold_latency")?;
    positive(s.fresh_pod.warm_up_s, "service.fresh_pod.warm_up_s")?;
    positive(s.fresh_pod.memory_ratio, "service.fresh_pod.memory_ratio")?;
    if let Some(r) = &f.regression {
        match *r {
            Regression::Latency { increase } | Regression::Cpu { increase } => check(
                increase > -1.0 && increase.is_finite(),
                "regression.increase",
                format!("{increase} must be > -1"),
            )?,
            Regression::LatencyTail {
                fraction: fr,
                added_ms,
            } => {
                fraction(fr, "regression.fraction")?;
                non_negative(added_ms, "regression.added_ms")?;
            }
            Regression::Variance { sigma } => non_negative(sigma, "regression.sigma")?,
            Regression::Errors { error_rate } => fraction(error_rate, "regression.error_rate")?,
            Regression::MemoryLeak { mib_per_minute } => {
                non_negative(mib_per_minute, "regression.mib_per_minute")?
            }
            Regression::CrashLoop { crash_after_s } => {
                positive(crash_after_s, "regression.crash_after_s")?
            }
            Regression::SlowStart {
                extra_ready_s,
                extra_latency,
                decay_s,
            } => {
                non_negative(extra_ready_s, "regression.extra_ready_s")?;
                non_negative(extra_latency, "regression.extra_latency")?;
                positive(decay_s, "regression.decay_s")?;
            }
        }
    }
    if let Some(v) = f.min_detection {
        fraction(v, "min_detection")?;
        check(
            f.expect == Expect::Fail,
            "min_detection",
            "only a scenario with expect = \"fail\" has a detection rate".into(),
        )?;
    }
    if let Some(v) = f.max_false_alarm {
        fraction(v, "max_false_alarm")?;
        check(
            f.expect == Expect::Pass,
            "max_false_alarm",
            "only a scenario with expect = \"pass\" has a false-alarm rate".into(),
        )?;
    }
    let p = &f.pipeline;
    for (name, v) in [
        ("webhook_s", p.webhook_s),
        ("build_s", p.build_s),
        ("pod_start_s", p.pod_start_s),
        ("readiness_s", p.readiness_s),
        ("warmup_s", p.warmup_s),
    ] {
        non_negative(v, &format!("pipeline.{name}"))?;
        duration(v, &format!("pipeline.{name}"))?;
    }
    positive(p.deploy_timeout_s, "pipeline.deploy_timeout_s")?;
    duration(p.deploy_timeout_s, "pipeline.deploy_timeout_s")?;
    fraction(p.build_failure, "pipeline.build_failure")?;
    positive(p.lifetime_s, "pipeline.lifetime_s")?;
    duration(p.lifetime_s, "pipeline.lifetime_s")?;
    if let Some(i) = p.interval_s {
        positive(i, "pipeline.interval_s")?;
        duration(i, "pipeline.interval_s")?;
    }
    if let Some(l) = p.lookback_s {
        positive(l, "pipeline.lookback_s")?;
        duration(l, "pipeline.lookback_s")?;
    }
    replicas(p.canary_replicas, "pipeline.canary_replicas")?;
    replicas(p.baseline_replicas, "pipeline.baseline_replicas")?;
    replicas(p.max_surge, "pipeline.max_surge")?;
    replicas(p.max_unavailable, "pipeline.max_unavailable")?;
    check(
        p.canary_replicas >= 1,
        "pipeline.canary_replicas",
        "at least one canary replica".into(),
    )?;
    let split_ok = |t: &Traffic| {
        [t.canary, t.baseline, t.production]
            .iter()
            .all(|v| (0.0..=100.0).contains(v))
            && (t.canary + t.baseline + t.production - 100.0).abs() < 1e-6
            && t.canary > 0.0
    };
    check(
        split_ok(&p.traffic),
        "pipeline.traffic",
        format!(
            "canary {} + baseline {} + production {} must add up to 100, with canary > 0",
            p.traffic.canary, p.traffic.baseline, p.traffic.production
        ),
    )?;
    for (i, s) in p.traffic_steps.iter().enumerate() {
        let t = Traffic {
            canary: s.canary,
            baseline: s.baseline,
            production: s.production,
        };
        check(
            split_ok(&t),
            &format!("pipeline.traffic_steps[{i}]"),
            "shares must add up to 100, with canary > 0".into(),
        )?;
        non_negative(s.after_s, &format!("pipeline.traffic_steps[{i}].after_s"))?;
        duration(s.after_s, &format!("pipeline.traffic_steps[{i}].after_s"))?;
        if i > 0 {
            let before = p.traffic_steps[i - 1].after_s;
            check(
                s.after_s > before,
                &format!("pipeline.traffic_steps[{i}].after_s"),
                format!(
                    "{} is not after the previous step's {before}: steps go in time order",
                    s.after_s
                ),
            )?;
        }
    }
    let fresh = p.baseline == BaselineKind::Fresh;
    check(
        fresh == (p.traffic.baseline > 0.0) && (!fresh || p.baseline_replicas >= 1),
        "pipeline.traffic.baseline",
        if fresh {
            "a fresh baseline needs baseline traffic > 0 and baseline_replicas >= 1".into()
        } else {
            "comparing with production: baseline traffic must be 0".into()
        },
    )?;
    for (name, v) in [("pass", p.pass), ("marginal", p.marginal)] {
        if let Some(v) = v {
            check(
                (0.0..=100.0).contains(&v),
                &format!("pipeline.{name}"),
                format!("{v} is not a score in [0, 100]"),
            )?;
        }
    }
    if let (Some(pass), Some(marginal)) = (p.pass, p.marginal) {
        check(
            marginal <= pass,
            "pipeline.marginal",
            format!("marginal {marginal} is above pass {pass}"),
        )?;
    }
    positive(f.analysis.scrape_step_s, "analysis.scrape_step_s")?;
    duration(f.analysis.rate_window_s, "analysis.rate_window_s")?;
    let points = (p.warmup_s + p.lifetime_s) / f.analysis.scrape_step_s;
    check(
        points <= MAX_POINTS,
        "analysis.scrape_step_s",
        format!(
            "warmup and lifetime ({} s) at a {} s step are {points:.0} points, more than {MAX_POINTS}",
            p.warmup_s + p.lifetime_s,
            f.analysis.scrape_step_s
        ),
    )?;
    check(
        f.analysis.rate_window_s >= f.analysis.scrape_step_s,
        "analysis.rate_window_s",
        "the rate window must be at least one scrape step".into(),
    )?;
    if let Some(i) = p.interval_s {
        check(
            i >= f.analysis.scrape_step_s * 3.0,
            "pipeline.interval_s",
            format!(
                "an interval of {i} s holds fewer than 3 points at a {} s step",
                f.analysis.scrape_step_s
            ),
        )?;
    }
    Ok(())
}
