//! `POST /analyze`: one canary analysis window judged from the server's own
//! Prometheus, for Argo Rollouts' `web` metric provider and Flagger's
//! webhooks, which cannot send metric values themselves.
//!
//! [`plan`] is pure: the request body (and the clock's `now`, and a config
//! found by name) in, an [`AnalyzePlan`] out. The server then fetches with
//! [`crate::analysis::fetch_pairs`], the very function the local mode's
//! analysis uses, so each metric's PromQL is built by
//! [`crate::query::build_query`] exactly as there, and judges with
//! [`super::api::judge`].
//!
//! The request names no URL: only the server's `--prometheus` is queried.

use std::collections::BTreeMap;
use std::time::Duration;

use judge::{CanaryConfig, CanaryJudgeResult, ScoreClassification, ScoreThresholds};
use serde::{Deserialize, Serialize};

use super::api::{ApiError, parse_body};
use crate::query::ScopeVars;
use crate::ranges::parse_duration_ms;

/// Step when the request gives none.
pub const DEFAULT_STEP: Duration = Duration::from_secs(60);
/// Window when the request gives neither `start` nor `lookback`.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(300);
/// Prometheus refuses more points than this per series.
pub const MAX_POINTS: f64 = 11_000.0;

/// A time: unix seconds, or an RFC 3339 / ISO 8601 string as Kayenta
/// writes its `Instant`s (`2026-12-06T06:00:00Z`, offsets allowed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Time {
    /// Unix seconds.
    Unix(f64),
    /// RFC 3339.
    Text(String),
}

/// A duration: seconds (Kayenta's `step`), or PromQL text (`30s`, `5m`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Span {
    /// Seconds.
    Seconds(f64),
    /// `90s`, `1h30m`.
    Text(String),
}

/// One side, as Kayenta's `CanaryScope`: `scope` fills `${scope}`,
/// `location` `${location}`, `extendedScopeParams` any other variable.
/// `start`, `end` and `step` may be given here (Kayenta's shape) or at the
/// top of the request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// `${scope}`, e.g. the `version` label value.
    pub scope: String,
    /// `${location}`.
    #[serde(default)]
    pub location: Option<String>,
    /// Window start.
    #[serde(default)]
    pub start: Option<Time>,
    /// Window end.
    #[serde(default)]
    pub end: Option<Time>,
    /// Step.
    #[serde(default)]
    pub step: Option<Span>,
    /// Other `${name}` variables.
    #[serde(default)]
    pub extended_scope_params: BTreeMap<String, String>,
}

/// Kayenta's `CanaryScopePair`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopePair {
    /// Baseline.
    pub control_scope: Scope,
    /// Canary.
    pub experiment_scope: Scope,
}

/// The body of `POST /analyze`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeRequest {
    /// The canary config, inline.
    #[serde(default)]
    pub canary_config: Option<CanaryConfig>,
    /// Or the name of a config in the server's `--config-dir` (`NAME.json`).
    #[serde(default)]
    pub config_name: Option<String>,
    /// Baseline scope (simple shape).
    #[serde(default)]
    pub control: Option<Scope>,
    /// Canary scope (simple shape).
    #[serde(default)]
    pub experiment: Option<Scope>,
    /// Kayenta's shape: `{"default": {"controlScope": ..., "experimentScope": ...}}`.
    #[serde(default)]
    pub scopes: Option<BTreeMap<String, ScopePair>>,
    /// Window start (else `end - lookback`).
    #[serde(default)]
    pub start: Option<Time>,
    /// Window end (else now).
    #[serde(default)]
    pub end: Option<Time>,
    /// Window length ending at `end` (default 5m).
    #[serde(default)]
    pub lookback: Option<Span>,
    /// Query step (default 60s).
    #[serde(default)]
    pub step: Option<Span>,
    /// Thresholds (else the config's, else 75/50).
    #[serde(default)]
    pub score_thresholds: Option<ScoreThresholds>,
    /// Flagger's webhook payload: the canary's name ...
    #[serde(default)]
    pub name: Option<String>,
    /// ... its namespace ...
    #[serde(default)]
    pub namespace: Option<String>,
    /// ... and the webhook's `metadata`, which carries this request's
    /// settings as strings (see [`flagger`]).
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Flagger posts its own payload (`name`, `namespace`, `phase`,
/// `checksum`, `metadata`) and lets the user choose only `metadata`, a map
/// of strings. This turns it into the simple shape:
///
/// - `configName` (required): a config of the server's `--config-dir`;
/// - `controlScope` / `experimentScope`: default `NAME-primary` / `NAME`
///   (Flagger's primary and canary workloads);
/// - `lookback`, `step`, `pass`, `marginal`: as in the simple shape;
/// - every metadata key, plus `namespace` and `target` (the canary's name),
///   is a `${variable}` of both scopes.
pub fn flagger(request: &mut AnalyzeRequest) -> Result<(), ApiError> {
    let Some(metadata) = request.metadata.take() else {
        return Ok(());
    };
    let path = |key: &str| format!("metadata.{key}");
    let name = request.name.clone().unwrap_or_default();
    let mut extra = metadata.clone();
    if let Some(ns) = &request.namespace {
        extra.entry("namespace".to_string()).or_insert(ns.clone());
    }
    if !name.is_empty() {
        extra.entry("target".to_string()).or_insert(name.clone());
    }
    let scope = |key: &str, default: String| -> Result<Scope, ApiError> {
        let scope = metadata.get(key).cloned().unwrap_or(default);
        if scope.is_empty() {
            return Err(ApiError::bad(
                path(key),
                "no scope: set it in the webhook's metadata (the payload has no canary name)",
            ));
        }
        Ok(Scope {
            scope,
            extended_scope_params: extra.clone(),
            ..Scope::default()
        })
    };
    if request.control.is_none() && request.scopes.is_none() {
        let primary = if name.is_empty() {
            String::new()
        } else {
            format!("{name}-primary")
        };
        request.control = Some(scope("controlScope", primary)?);
        request.experiment = Some(scope("experimentScope", name.clone())?);
    }
    if request.canary_config.is_none() && request.config_name.is_none() {
        request.config_name = metadata.get("configName").cloned();
    }
    if request.lookback.is_none() {
        request.lookback = metadata.get("lookback").cloned().map(Span::Text);
    }
    if request.step.is_none() {
        request.step = metadata.get("step").cloned().map(Span::Text);
    }
    let number = |key: &str| -> Result<Option<f64>, ApiError> {
        metadata
            .get(key)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| ApiError::bad(path(key), format!("\"{v}\" is not a number")))
            })
            .transpose()
    };
    if request.score_thresholds.is_none() {
        match (number("pass")?, number("marginal")?) {
            (None, None) => {}
            (Some(pass), marginal) => {
                request.score_thresholds = Some(ScoreThresholds {
                    pass,
                    marginal: marginal.unwrap_or(pass.min(ScoreThresholds::default().marginal)),
                });
            }
            (None, Some(_)) => {
                return Err(ApiError::bad(path("marginal"), "marginal without pass"));
            }
        }
    }
    Ok(())
}

/// What to fetch and judge.
#[derive(Debug, Clone)]
pub struct AnalyzePlan {
    /// The config (inline or loaded).
    pub config: CanaryConfig,
    /// Where the config came from in the request, for error paths.
    pub config_field: String,
    /// Baseline variables.
    pub control: ScopeVars,
    /// Canary variables.
    pub experiment: ScopeVars,
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// Query step.
    pub step: Duration,
    /// Request thresholds.
    pub thresholds: Option<ScoreThresholds>,
}

/// Where a config named in a request comes from (the server's
/// `--config-dir`); `Err` is the answer to give.
pub trait ConfigSource {
    /// The config called `name`.
    fn load(&self, name: &str) -> Result<CanaryConfig, ApiError>;
}

/// Parses and checks an `/analyze` body. `now` is unix seconds.
pub fn plan(body: &[u8], now: f64, configs: &dyn ConfigSource) -> Result<AnalyzePlan, ApiError> {
    let mut request: AnalyzeRequest = parse_body(body)?;
    flagger(&mut request)?;
    let (config, config_field) = match (request.canary_config, &request.config_name) {
        (Some(config), None) => {
            config
                .validate()
                .map_err(|e| ApiError::input("canaryConfig", e))?;
            (config, "canaryConfig".to_string())
        }
        (None, Some(name)) => (configs.load(name)?, format!("configName ({name})")),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "configName",
                "give either canaryConfig or configName, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad(
                "",
                "no canary config: give canaryConfig (inline) or configName (a file in the server's --config-dir)",
            ));
        }
    };

    let (control, experiment, scope_path) = match (
        request.control,
        request.experiment,
        request.scopes,
    ) {
        (Some(c), Some(e), None) => (c, e, ("control", "experiment")),
        (None, None, Some(scopes)) => {
            let mut pairs = scopes.into_iter();
            match (pairs.next(), pairs.next()) {
                (Some((_, pair)), None) => (
                    pair.control_scope,
                    pair.experiment_scope,
                    ("scopes.controlScope", "scopes.experimentScope"),
                ),
                (None, _) => return Err(ApiError::bad("scopes", "no scope pair")),
                (Some(_), Some((name, _))) => {
                    return Err(ApiError::bad(
                        format!("scopes.{name}"),
                        "only one scope pair is supported (every metric is queried with it)",
                    ));
                }
            }
        }
        (None, None, None) => {
            return Err(ApiError::bad(
                "",
                "no scopes: give control and experiment ({\"scope\": \"baseline\"}, {\"scope\": \"canary\"}), or Kayenta's scopes",
            ));
        }
        _ => {
            return Err(ApiError::bad(
                "",
                "give both control and experiment, or scopes, not a mix",
            ));
        }
    };
    for (scope, path) in [(&control, scope_path.0), (&experiment, scope_path.1)] {
        if scope.scope.is_empty() {
            return Err(ApiError::bad(format!("{path}.scope"), "empty scope"));
        }
    }

    // The window: a side's own value, else the top-level one; both sides
    // must agree (one query_range window per metric, as the local mode).
    let pick_time = |field: &str,
                     c: &Option<Time>,
                     e: &Option<Time>,
                     top: &Option<Time>|
     -> Result<Option<f64>, ApiError> {
        let c = c.as_ref().or(top.as_ref());
        let e = e.as_ref().or(top.as_ref());
        let c = c
            .map(|t| unix(t, &format!("{}.{field}", scope_path.0)))
            .transpose()?;
        let e = e
            .map(|t| unix(t, &format!("{}.{field}", scope_path.1)))
            .transpose()?;
        match (c, e) {
            (Some(c), Some(e)) if (c - e).abs() > 1e-3 => Err(ApiError::bad(
                format!("{}.{field}", scope_path.1),
                format!(
                    "control and experiment {field} differ ({c} vs {e}); one window is judged for both"
                ),
            )),
            (c, e) => Ok(c.or(e)),
        }
    };
    let end = pick_time("end", &control.end, &experiment.end, &request.end)?.unwrap_or(now);
    let start = match pick_time("start", &control.start, &experiment.start, &request.start)? {
        Some(start) => start,
        None => {
            let lookback = match &request.lookback {
                Some(span) => seconds(span, "lookback")?,
                None => DEFAULT_LOOKBACK.as_secs_f64(),
            };
            end - lookback
        }
    };
    let step = match control
        .step
        .as_ref()
        .or(experiment.step.as_ref())
        .or(request.step.as_ref())
    {
        Some(span) => seconds(span, "step")?,
        None => DEFAULT_STEP.as_secs_f64(),
    };
    if !(step >= 0.001 && step.is_finite()) {
        return Err(ApiError::bad(
            "step",
            format!("step {step} s is not a positive duration"),
        ));
    }
    if start >= end {
        return Err(ApiError::bad(
            "start",
            format!("the window is empty: start {start} is not before end {end}"),
        ));
    }
    let points = (end - start) / step;
    if points > MAX_POINTS {
        return Err(ApiError::bad(
            "step",
            format!(
                "{points:.0} points per series (window {:.0} s / step {step} s); Prometheus answers at most {MAX_POINTS}",
                end - start
            ),
        ));
    }
    if let Some(t) = &request.score_thresholds {
        t.validate("scoreThresholds")
            .map_err(|e| ApiError::input("", e))?;
    }
    Ok(AnalyzePlan {
        config,
        config_field,
        control: vars(control),
        experiment: vars(experiment),
        start,
        end,
        step: Duration::from_secs_f64(step),
        thresholds: request.score_thresholds,
    })
}

fn vars(scope: Scope) -> ScopeVars {
    ScopeVars {
        scope: scope.scope,
        location: scope.location.unwrap_or_default(),
        extra: scope.extended_scope_params,
        ..Default::default()
    }
}

fn seconds(span: &Span, path: &str) -> Result<f64, ApiError> {
    match span {
        Span::Seconds(s) if s.is_finite() && *s > 0.0 => Ok(*s),
        Span::Seconds(s) => Err(ApiError::bad(
            path,
            format!("{s} is not a positive number of seconds"),
        )),
        Span::Text(t) => parse_duration_ms(t)
            .filter(|ms| *ms > 0.0)
            .map(|ms| ms / 1e3)
            .ok_or_else(|| {
                ApiError::bad(
                    path,
                    format!(
                        "\"{t}\" is not a duration such as \"30s\", \"5m\" or a number of seconds"
                    ),
                )
            }),
    }
}

fn unix(time: &Time, path: &str) -> Result<f64, ApiError> {
    match time {
        Time::Unix(s) if s.is_finite() && *s >= 0.0 => Ok(*s),
        Time::Unix(s) => Err(ApiError::bad(
            path,
            format!("{s} is not a unix time in seconds"),
        )),
        Time::Text(t) => parse_rfc3339(t).ok_or_else(|| {
            ApiError::bad(
                path,
                format!("\"{t}\" is not a time such as \"2026-12-06T06:00:00Z\" or unix seconds"),
            )
        }),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if b.get(i) == Some(&b'.') {
        let from = i + 1;
        i = from;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == from {
            return None;
        }
        fraction = format!("0.{}", &text[from..i]).parse().ok()?;
    }
    let offset = match &text[i..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

/// One metric's two queries, as sent to Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentQueries {
    /// Metric name.
    pub metric: String,
    /// The baseline's PromQL.
    pub control: String,
    /// The canary's PromQL.
    pub experiment: String,
}

/// The answer of `POST /analyze`: Kayenta's `CanaryJudgeResult` fields at
/// the top, plus what an Argo `successCondition` or a script reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeAnswer {
    /// `Pass`, `Marginal`, `Fail` or `Nodata` (the same as `score.classification`).
    pub verdict: ScoreClassification,
    /// `verdict == Pass`.
    pub passed: bool,
    /// The judged window.
    pub window: WindowAnswer,
    /// What was sent to Prometheus, per metric.
    pub queries: Vec<SentQueries>,
    /// The judge's result.
    #[serde(flatten)]
    pub result: CanaryJudgeResult,
}

/// `window` of [`AnalyzeAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowAnswer {
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// Seconds.
    pub step: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoConfigs;
    impl ConfigSource for NoConfigs {
        fn load(&self, name: &str) -> Result<CanaryConfig, ApiError> {
            Err(ApiError::status(
                404,
                "configName",
                format!("no config {name}"),
            ))
        }
    }

    const CONFIG: &str = r#"{"metrics":[{"name":"m","query":{"type":"prometheus","customInlineTemplate":"PromQL:up{v=\"${scope}\"}"},"groups":["g"],"analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2026-12-06T06:00:00Z"), Some(1_796_536_800.0));
        assert_eq!(
            parse_rfc3339("2026-12-06T07:00:00.5+01:00"),
            Some(1_796_536_800.5)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        for bad in [
            "",
            "2026-12-06",
            "2026-13-01T00:00:00Z",
            "2026-12-06T06:00:00",
            "2026-12-06T06:00:00.Z",
            "２026-12-06T06:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn simple_shape_with_lookback() {
        let body = format!(
            r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"baseline"}},"experiment":{{"scope":"canary","location":"eu"}},"lookback":"10m","step":"30s"}}"#
        );
        let p = plan(body.as_bytes(), 10_000.0, &NoConfigs).expect("plans");
        assert_eq!(
            (p.start, p.end, p.step),
            (9_400.0, 10_000.0, Duration::from_secs(30))
        );
        assert_eq!(p.control.scope, "baseline");
        assert_eq!(p.experiment.location, "eu");
    }

    #[test]
    fn kayenta_shape_with_iso_times() {
        let scope = |s: &str| {
            format!(
                r#"{{"scope":"{s}","location":"","start":"2026-12-06T06:00:00Z","end":"2026-12-06T06:10:00Z","step":60,"extendedScopeParams":{{"ns":"prod"}}}}"#
            )
        };
        let body = format!(
            r#"{{"canaryConfig":{CONFIG},"scopes":{{"default":{{"controlScope":{},"experimentScope":{}}}}}}}"#,
            scope("baseline"),
            scope("canary")
        );
        let p = plan(body.as_bytes(), 0.0, &NoConfigs).expect("plans");
        assert_eq!(p.end - p.start, 600.0);
        assert_eq!(p.step, Duration::from_secs(60));
        assert_eq!(p.experiment.extra["ns"], "prod");
    }

    struct OneConfig;
    impl ConfigSource for OneConfig {
        fn load(&self, name: &str) -> Result<CanaryConfig, ApiError> {
            assert_eq!(name, "podinfo");
            Ok(CanaryConfig::from_json(CONFIG).expect("config"))
        }
    }

    #[test]
    fn flagger_webhook_payload() {
        let body = r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"abc",
            "metadata":{"configName":"podinfo","lookback":"2m","step":"15s","pass":"90","region":"eu"}}"#;
        let p = plan(body.as_bytes(), 1000.0, &OneConfig).expect("plans");
        assert_eq!(p.control.scope, "podinfo-primary");
        assert_eq!(p.experiment.scope, "podinfo");
        assert_eq!(p.experiment.extra["namespace"], "test");
        assert_eq!(p.experiment.extra["target"], "podinfo");
        assert_eq!(p.control.extra["region"], "eu");
        assert_eq!((p.start, p.step), (880.0, Duration::from_secs(15)));
        assert_eq!(
            p.thresholds,
            Some(ScoreThresholds {
                pass: 90.0,
                marginal: 50.0
            })
        );
        let bad = r#"{"name":"podinfo","metadata":{"configName":"podinfo","pass":"high"}}"#;
        let e = plan(bad.as_bytes(), 1000.0, &OneConfig).expect_err("bad pass");
        assert_eq!(e.path, "metadata.pass");
        let nameless = r#"{"metadata":{"configName":"podinfo"}}"#;
        let e = plan(nameless.as_bytes(), 1000.0, &OneConfig).expect_err("no scope");
        assert_eq!(e.path, "metadata.controlScope");
    }

    #[test]
    fn bad_requests_are_located() {
        let cases = [
            (
                r#"{"control":{"scope":"a"},"experiment":{"scope":"b"}}"#.to_string(),
                "",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"configName":"x","control":{{"scope":"a"}},"experiment":{{"scope":"b"}}}}"#
                ),
                "configName",
            ),
            (
                r#"{"configName":"x","control":{"scope":"a"},"experiment":{"scope":"b"}}"#
                    .to_string(),
                "configName",
            ),
            (format!(r#"{{"canaryConfig":{CONFIG}}}"#), ""),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":""}},"experiment":{{"scope":"b"}}}}"#
                ),
                "control.scope",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}},"lookback":"ten"}}"#
                ),
                "lookback",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a","end":5}},"experiment":{{"scope":"b","end":6}}}}"#
                ),
                "experiment.end",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}},"start":"yesterday"}}"#
                ),
                "control.start",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}},"step":0.0001,"lookback":"1d"}}"#
                ),
                "step",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}},"start":100,"end":50}}"#
                ),
                "start",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{CONFIG},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}},"scoreThresholds":{{"pass":1,"marginal":2}}}}"#
                ),
                "scoreThresholds",
            ),
            (
                format!(
                    r#"{{"canaryConfig":{},"control":{{"scope":"a"}},"experiment":{{"scope":"b"}}}}"#,
                    CONFIG.replace("increase", "sideways")
                ),
                "canaryConfig.metrics[0].analysisConfigurations.canary.direction",
            ),
        ];
        for (body, path) in cases {
            let e = plan(body.as_bytes(), 10_000.0, &NoConfigs).expect_err(&body);
            assert_eq!(e.path, path, "{body}: {e}");
            assert!(!e.message.is_empty());
        }
    }
}
