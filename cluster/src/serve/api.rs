//! The pure core of `canarylab serve`: a request body in, an answer (or a
//! located error) out. No sockets, no clock, no files: [`super`] does the
//! I/O and calls these.
//!
//! - [`judge_body`]: Kayenta's remote-judge contract. Kayenta's
//!   `RemoteJudge` posts a `RemoteJudgeRequest` (`canaryConfig`,
//!   `scoreThresholds`, `metricSetPairList`; its ObjectMapper omits nulls,
//!   writes NaN as `"NaN"` and ignores unknown fields) and reads a
//!   `CanaryJudgeResult`.
//! - [`build_judge`]: the single place a canary config becomes a judge.

use judge::config::{KNOWN_JUDGES, NETFLIX_ACA_JUDGE};
use judge::{
    CanaryConfig, CanaryJudgeResult, InputError, Judge, JudgeError, MetricSetPair, ScoreThresholds,
    Workspace,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The judge name Kayenta gives its remote judge. A canary config that
/// names it selected "the outside judge", which is this server's default.
pub const REMOTE_JUDGE: &str = "RemoteJudge-v1.0";

/// Seed of the tiny noise the judge adds to constant series; the same as
/// `canarylab judge`'s default, so both answer alike.
pub const SEED: u64 = 0;

/// A request that cannot be answered: the HTTP status, the JSON path of the
/// problem in the request body (empty for the body itself) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("at `{path}`: ") })]
pub struct ApiError {
    /// HTTP status code to answer.
    pub status: u16,
    /// JSON path in the request body, e.g. `metricSetPairList[3].values.control[7]`.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl ApiError {
    /// A 400 at `path`.
    pub fn bad(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::status(400, path, message)
    }

    /// Any status.
    pub fn status(status: u16, path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A judge-crate error found inside the request's `prefix` field.
    pub fn input(prefix: &str, e: InputError) -> Self {
        let path = join_path(prefix, &e.path);
        let message = match e.position {
            Some((l, c)) => format!("{} (line {l}, column {c})", e.message),
            None => e.message,
        };
        Self::bad(path, message)
    }

    /// The JSON answer: `{"error": ..., "path": ...}`.
    pub fn to_json(&self) -> Vec<u8> {
        let body = serde_json::json!({ "error": self.message, "path": self.path });
        let mut bytes = body.to_string().into_bytes();
        bytes.push(b'\n');
        bytes
    }
}

fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => path.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// Parses a JSON body into `T`; a syntax or type error is a 400 naming the
/// JSON path, line and column.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad("", "empty body: expected a JSON object"));
    }
    parse_located(body).map_err(|e| ApiError::input("", e))
}

pub use judge::wire::{parse_located, parse_pair_list};

/// Kayenta's `RemoteJudgeRequest`. Unknown fields (and Kayenta's own
/// `scopes`/`attributes` in each pair) are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteJudgeRequest {
    /// The canary config the analysis runs with.
    pub canary_config: CanaryConfig,
    /// The execution's thresholds; Kayenta always sends them. When absent,
    /// the config's `classifier.scoreThresholds` (else 75/50) apply.
    #[serde(default)]
    pub score_thresholds: Option<ScoreThresholds>,
    /// One pair per metric.
    pub metric_set_pair_list: Vec<MetricSetPair>,
}

/// `/judge`'s reading of the request: [`RemoteJudgeRequest`] with the same
/// fields and the same errors (hence the same type names, which serde's
/// messages quote), but each pair's `scopes` and `attributes` (Kayenta's
/// records of the query, not part of the result) are skipped instead of
/// being built into `serde_json::Value` trees.
mod body {
    use judge::wire::MetricSetPair;
    use judge::{CanaryConfig, ScoreThresholds};
    use serde::Deserialize;

    /// [`super::RemoteJudgeRequest`] as `/judge` reads it: the same fields and the
    /// same errors, but each pair's `scopes` and `attributes` (Kayenta's
    /// records of the query, not part of the result) are skipped instead of
    /// being built into `serde_json::Value` trees.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct RemoteJudgeRequest {
        pub(super) canary_config: CanaryConfig,
        #[serde(default)]
        pub(super) score_thresholds: Option<ScoreThresholds>,
        pub(super) metric_set_pair_list: Vec<MetricSetPair>,
    }
}

/// The single place a canary config becomes a judge, for `/judge` and
/// `/analyze` alike: `RemoteJudge-v1.0` (Kayenta's name for "the outside
/// judge") means `default_judge`; any other name is the judge the config
/// asks for. Selection of further judges by `judge.name` belongs here.
///
/// Errors carry paths relative to the config.
pub fn build_judge(mut config: CanaryConfig, default_judge: &str) -> Result<Judge, InputError> {
    if config.judge_name() == REMOTE_JUDGE
        && let Some(judge) = config.judge.as_mut()
    {
        judge.name = default_judge.to_string();
    }
    Judge::new(&config)
}

/// Judges the server can run (`GET /judges`), and whether `name` is one.
pub fn known_judges() -> &'static [&'static str] {
    KNOWN_JUDGES
}

/// Checks a `--default-judge` name.
pub fn check_default_judge(name: &str) -> Result<(), String> {
    if known_judges().contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "unknown judge \"{name}\"; known judges: {} (default {NETFLIX_ACA_JUDGE})",
            known_judges().join(", ")
        ))
    }
}

/// Judges `pairs` with `config`, the request's thresholds overriding the
/// config's. Paths in errors are prefixed with the request's field names.
pub fn judge(
    config: CanaryConfig,
    thresholds: Option<ScoreThresholds>,
    pairs: &[MetricSetPair],
    default_judge: &str,
    config_field: &str,
) -> Result<CanaryJudgeResult, ApiError> {
    let judge = prepare(config, thresholds, default_judge, config_field)?;
    judge_prepared(&judge, pairs, config_field, Interval::Reported)
}

/// What `POST /judge` answers of `NetflixACAJudge-v1.0`'s Mann-Whitney
/// test in each `resultMetadata`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Interval {
    /// `ratio` and canarylab's `mannWhitney` (interval, estimate, band,
    /// p-value), byte for byte what `canarylab judge` writes: every
    /// interval is solved for.
    #[default]
    Reported,
    /// `ratio` only, as Kayenta's own judge writes it (Kayenta's
    /// `CanaryAnalysisResult` carries no interval); each label is decided
    /// from the rank statistic at the tolerance band's edges where it can
    /// (`judge::Judge::judge_pairs_without_interval`), with the same
    /// labels, reasons, ratios and scores.
    Omitted,
}

/// The judge for `config` with the request's thresholds: [`judge`]'s first
/// half, with its errors.
fn prepare(
    config: CanaryConfig,
    thresholds: Option<ScoreThresholds>,
    default_judge: &str,
    config_field: &str,
) -> Result<Judge, ApiError> {
    let mut judge =
        build_judge(config, default_judge).map_err(|e| ApiError::input(config_field, e))?;
    if let Some(t) = thresholds {
        judge
            .set_thresholds(t)
            .map_err(|e| ApiError::input("", e))?;
    }
    Ok(judge)
}

/// [`judge`]'s second half.
fn judge_prepared(
    judge: &Judge,
    pairs: &[MetricSetPair],
    config_field: &str,
    interval: Interval,
) -> Result<CanaryJudgeResult, ApiError> {
    // This thread's workspace, taken out while in use: a judgment that
    // panics (a bug; `compute` answers 500) drops it instead of leaving a
    // half-updated one for the next request.
    let mut ws = WORKSPACE.take().unwrap_or_default();
    let result = judge.judge_pairs_in(pairs, SEED, interval == Interval::Reported, &mut ws);
    if ws.metrics() <= WORKSPACE_METRICS {
        WORKSPACE.set(Some(ws));
    }
    result.map_err(|e| match e {
        JudgeError::Config(e) => ApiError::input(config_field, e),
        JudgeError::Pairs(e) => ApiError::input("metricSetPairList", e),
    })
}

thread_local! {
    /// The judge's buffers (sorted samples, the rank statistic's probes),
    /// kept between the requests a thread judges: allocating and growing
    /// them again was 7% of a 10-metric request's instructions. Any
    /// workspace gives the answer a fresh one gives.
    static WORKSPACE: std::cell::Cell<Option<Workspace>> = const { std::cell::Cell::new(None) };
}

/// A workspace that grew past this many metrics is not kept, so that one
/// huge request does not hold its buffers for the thread's lifetime.
const WORKSPACE_METRICS: usize = 256;

/// Judges prepared from recent requests' configs, for one default judge.
///
/// Kayenta sends the same `canaryConfig` and `scoreThresholds` with every
/// interval of an analysis; reading the config and preparing its judge is
/// about a tenth of a small request's cost. Entries are keyed by the exact
/// bytes of both (compared in full, not only by hash), so a hit answers
/// what preparing them again would. Only configs that prepare without error
/// are kept; the cache holds at most [`JudgeCache::CAPACITY`] configs of at
/// most [`JudgeCache::MAX_KEY_BYTES`] each.
#[derive(Debug)]
pub struct JudgeCache {
    default_judge: String,
    interval: Interval,
    entries: std::sync::Mutex<CacheEntries>,
}

type CacheEntries = std::collections::HashMap<u64, Vec<CacheEntry>>;

#[derive(Debug)]
struct CacheEntry {
    config: Box<[u8]>,
    thresholds: Option<Box<[u8]>>,
    judge: std::sync::Arc<Judge>,
}

impl JudgeCache {
    /// Configs kept.
    pub const CAPACITY: usize = 64;
    /// Larger configs are prepared for each request, not kept.
    pub const MAX_KEY_BYTES: usize = 256 * 1024;

    /// An empty cache whose judges treat `RemoteJudge-v1.0` as `default_judge`.
    pub fn new(default_judge: &str) -> Self {
        JudgeCache {
            default_judge: default_judge.to_string(),
            interval: Interval::Reported,
            entries: std::sync::Mutex::new(CacheEntries::new()),
        }
    }

    /// The same, answering `interval` of each Mann-Whitney test.
    pub fn with_interval(mut self, interval: Interval) -> Self {
        self.interval = interval;
        self
    }

    /// What `/judge` answers of each Mann-Whitney test.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The default judge.
    pub fn default_judge(&self) -> &str {
        &self.default_judge
    }

    /// Configs kept now.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// No config kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        // A panic while holding the lock cannot leave an entry half made
        // (entries are pushed whole), so a poisoned map is still good.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hash(config: &[u8], thresholds: Option<&[u8]>) -> u64 {
        use std::hash::{Hash, Hasher};
        // Fixed keys: the hash only spreads entries; equality is checked
        // on the bytes.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        config.hash(&mut h);
        thresholds.hash(&mut h);
        h.finish()
    }

    fn get(&self, config: &[u8], thresholds: Option<&[u8]>) -> Option<std::sync::Arc<Judge>> {
        let hash = Self::hash(config, thresholds);
        self.lock().get(&hash)?.iter().find_map(|e| {
            (*e.config == *config && e.thresholds.as_deref() == thresholds).then(|| e.judge.clone())
        })
    }

    fn insert(&self, config: &[u8], thresholds: Option<&[u8]>, judge: std::sync::Arc<Judge>) {
        if config.len() + thresholds.map_or(0, <[u8]>::len) > Self::MAX_KEY_BYTES {
            return;
        }
        let hash = Self::hash(config, thresholds);
        let mut entries = self.lock();
        if entries.values().map(Vec::len).sum::<usize>() >= Self::CAPACITY {
            // Rarely more than a few configs are in use at once: starting
            // over is simpler than tracking use, and as good.
            entries.clear();
        }
        let bucket = entries.entry(hash).or_default();
        if !bucket
            .iter()
            .any(|e| *e.config == *config && e.thresholds.as_deref() == thresholds)
        {
            bucket.push(CacheEntry {
                config: config.into(),
                thresholds: thresholds.map(Into::into),
                judge,
            });
        }
    }
}

/// `POST /judge`: a `RemoteJudgeRequest` body in, a `CanaryJudgeResult` out.
pub fn judge_body(body: &[u8], cache: &JudgeCache) -> Result<CanaryJudgeResult, ApiError> {
    // The scanner reads the pairs (most of the body); the config and the
    // thresholds are small and go through serde, or come prepared from
    // the cache. Anything the scanner or serde does not take here is read
    // again below, for serde's error.
    if let Some(parts) = judge::wire::scan_remote_judge_request(body) {
        if let Some(judge) = cache.get(parts.canary_config, parts.score_thresholds) {
            return judge_prepared(&judge, &parts.pairs, "canaryConfig", cache.interval);
        }
        if let Ok(config) = serde_json::from_slice::<CanaryConfig>(parts.canary_config)
            && let Ok(thresholds) = parts
                .score_thresholds
                .map_or(Ok(None), serde_json::from_slice::<Option<ScoreThresholds>>)
        {
            let judge = std::sync::Arc::new(prepare(
                config,
                thresholds,
                &cache.default_judge,
                "canaryConfig",
            )?);
            cache.insert(parts.canary_config, parts.score_thresholds, judge.clone());
            return judge_prepared(&judge, &parts.pairs, "canaryConfig", cache.interval);
        }
    }
    let request: body::RemoteJudgeRequest = parse_body(body)?;
    let pairs: Vec<MetricSetPair> = request
        .metric_set_pair_list
        .into_iter()
        .map(MetricSetPair::from)
        .collect();
    let judge = prepare(
        request.canary_config,
        request.score_thresholds,
        &cache.default_judge,
        "canaryConfig",
    )?;
    judge_prepared(&judge, &pairs, "canaryConfig", cache.interval)
}

/// `POST /judge`'s answer: the compact JSON of [`judge_body`]'s result.
pub fn judge_body_json(
    body: &[u8],
    cache: &JudgeCache,
) -> Result<(CanaryJudgeResult, Vec<u8>), ApiError> {
    let result = judge_body(body, cache)?;
    // About 600 bytes per metric: one allocation instead of a dozen.
    let mut bytes = Vec::with_capacity(256 + 640 * result.results.len());
    serde_json::to_writer(&mut bytes, &result)
        .map_err(|e| ApiError::status(500, "", format!("cannot encode the result: {e}")))?;
    Ok((result, bytes))
}

#[cfg(test)]
mod tests {
    use judge::ScoreClassification;

    use super::*;

    const CONFIG: &str = r#"{"name":"c","judge":{"name":"RemoteJudge-v1.0","judgeConfigurations":{}},
        "metrics":[{"name":"latency","query":{"type":"prometheus","customInlineTemplate":"PromQL:up"},
        "groups":["perf"],"analysisConfigurations":{"canary":{"direction":"increase"}},"scopeName":"default"}],
        "templates":{},"classifier":{"groupWeights":{"perf":100}}}"#;

    fn body(pairs: &str) -> String {
        format!(
            r#"{{"canaryConfig":{CONFIG},"scoreThresholds":{{"pass":90,"marginal":50}},"metricSetPairList":{pairs},"extra":[1]}}"#
        )
    }

    #[test]
    fn remote_judge_name_means_the_default_judge() {
        let values: Vec<String> = (0..30).map(|i| format!("{}", 100 + i % 5)).collect();
        let v = values.join(",");
        let pairs = format!(
            r#"[{{"name":"latency","id":"x","tags":{{}},"values":{{"control":[{v},"NaN"],"experiment":[{v}]}},
            "scopes":{{"control":{{"startTimeIso":"2026-01-01T00:00:00Z","startTimeMillis":0,"stepMillis":60000}}}},
            "attributes":{{"control":{{"query":"up"}}}}}}]"#
        );
        let result = judge_body(body(&pairs).as_bytes(), &JudgeCache::new(NETFLIX_ACA_JUDGE))
            .expect("judged");
        assert_eq!(result.judge_name, NETFLIX_ACA_JUDGE);
        assert_eq!(result.results[0].classification.as_str(), "Pass");
        assert_eq!(result.score.score, 100.0);
    }

    #[test]
    fn errors_name_the_json_path_in_the_request() {
        let e = judge_body(
            body(r#"[{"name":"latency","values":{"control":[1,"x"],"experiment":[]}}]"#).as_bytes(),
            &JudgeCache::new(NETFLIX_ACA_JUDGE),
        )
        .expect_err("bad value");
        assert_eq!(e.status, 400);
        assert_eq!(e.path, "metricSetPairList[0].values.control[1]");
        let e = judge_body(
            body(r#"[{"name":"nope","values":{"control":[],"experiment":[]}}]"#).as_bytes(),
            &JudgeCache::new(NETFLIX_ACA_JUDGE),
        )
        .expect_err("unknown metric");
        assert_eq!(e.path, "metricSetPairList[0].name");
        assert!(e.message.contains("nope"), "{e}");
        let bad_direction = body("[]").replace("\"increase\"", "\"up\"");
        let e = judge_body(
            bad_direction.as_bytes(),
            &JudgeCache::new(NETFLIX_ACA_JUDGE),
        )
        .expect_err("bad config");
        assert_eq!(
            e.path,
            "canaryConfig.metrics[0].analysisConfigurations.canary.direction"
        );
        let e = judge_body(b"{\"canaryConfig\":", &JudgeCache::new(NETFLIX_ACA_JUDGE))
            .expect_err("cut");
        assert!(e.message.contains("line 1"), "{e}");
        let e = judge_body(b"  ", &JudgeCache::new(NETFLIX_ACA_JUDGE)).expect_err("empty");
        assert!(e.message.contains("empty"), "{e}");
        let thresholds = body("[]").replace("\"pass\":90", "\"pass\":190");
        let e = judge_body(thresholds.as_bytes(), &JudgeCache::new(NETFLIX_ACA_JUDGE))
            .expect_err("thresholds");
        assert_eq!(e.path, "scoreThresholds.pass");
    }

    #[test]
    fn the_cache_keeps_judges_by_config_and_thresholds() {
        let values: Vec<String> = (0..30).map(|i| format!("{}", 100 + i % 7)).collect();
        let v = values.join(",");
        let pairs =
            format!(r#"[{{"name":"latency","values":{{"control":[{v}],"experiment":[{v}]}}}}]"#);
        let slower = v.replace("10", "20");
        let cache = JudgeCache::new(NETFLIX_ACA_JUDGE);
        let first = judge_body_json(body(&pairs).as_bytes(), &cache).expect("judged");
        assert_eq!(cache.len(), 1);
        let hit = judge_body_json(body(&pairs).as_bytes(), &cache).expect("judged");
        assert_eq!(cache.len(), 1);
        assert_eq!(first.1, hit.1, "a cached judge answers the same bytes");
        assert_eq!(first.0.score.classification, ScoreClassification::Pass);
        // Other thresholds are another judge; the verdict follows them.
        let failing = pairs.replace(
            &format!("\"experiment\":[{v}]"),
            &format!("\"experiment\":[{slower}]"),
        );
        let (result, _) = judge_body_json(body(&failing).as_bytes(), &cache).expect("judged");
        assert_eq!(result.score.classification, ScoreClassification::Fail);
        assert_eq!(cache.len(), 1, "the same config and thresholds");
        let lenient = body(&failing).replace("\"marginal\":50", "\"marginal\":0");
        let (result, _) = judge_body_json(lenient.as_bytes(), &cache).expect("judged");
        assert_eq!(cache.len(), 2);
        assert_eq!(result.score.classification, ScoreClassification::Marginal);
        // Refused configs are not kept.
        let bad = body(&pairs).replace("\"increase\"", "\"up\"");
        judge_body_json(bad.as_bytes(), &cache).expect_err("bad config");
        assert_eq!(cache.len(), 2);
        // A full cache starts over.
        for i in 0..JudgeCache::CAPACITY {
            let other = body(&pairs).replace("\"name\":\"c\"", &format!("\"name\":\"c{i}\""));
            judge_body_json(other.as_bytes(), &cache).expect("judged");
        }
        assert!(cache.len() <= JudgeCache::CAPACITY && !cache.is_empty());
    }

    #[test]
    fn an_unknown_judge_is_refused_with_its_path() {
        let other = body("[]").replace("RemoteJudge-v1.0", "Mystery-v9");
        let e = judge_body(other.as_bytes(), &JudgeCache::new(NETFLIX_ACA_JUDGE))
            .expect_err("unknown judge");
        assert_eq!(e.path, "canaryConfig.judge.name");
        assert!(check_default_judge("Mystery-v9").is_err());
        assert!(check_default_judge(NETFLIX_ACA_JUDGE).is_ok());
    }
}

/// The body parser fuzzed: arbitrary JSON, valid bodies with one value
/// replaced, and valid bodies with bytes cut or flipped always get an
/// answer or a 4xx with a message, never a panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn valid() -> Value {
        let values: Vec<Value> = (0..12).map(|i| json!(100 + i % 5)).collect();
        json!({
            "canaryConfig": {
                "name": "c",
                "judge": {"name": "RemoteJudge-v1.0", "judgeConfigurations": {}},
                "metrics": [
                    {"name": "a", "query": {"type": "prometheus", "customInlineTemplate": "PromQL:up"},
                     "groups": ["g"], "analysisConfigurations": {"canary": {"direction": "increase",
                     "nanStrategy": "replace", "critical": true, "effectSize": {"allowedIncrease": 1.1},
                     "outliers": {"strategy": "remove"}}}, "scopeName": "default"},
                    {"name": "b", "groups": ["h"], "analysisConfigurations": {"canary": {"direction": "either", "mustHaveData": true}}}
                ],
                "templates": {},
                "classifier": {"groupWeights": {"g": 70, "h": 30}, "scoreThresholds": {"pass": 80, "marginal": 40}}
            },
            "scoreThresholds": {"pass": 75.0, "marginal": 50.0},
            "metricSetPairList": [
                {"name": "a", "id": "1", "tags": {"k": "v"}, "values": {"control": values, "experiment": ["NaN", 3, 1e300, "Infinity"]}},
                {"name": "b", "values": {"control": [], "experiment": [1]}}
            ]
        })
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            prop_oneof![
                Just("NaN".to_string()),
                Just("-Infinity".to_string()),
                Just("RemoteJudge-v1.0".to_string()),
                Just("increase".to_string()),
                ".{0,8}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("canaryConfig".to_string()),
                        Just("metricSetPairList".to_string()),
                        Just("scoreThresholds".to_string()),
                        Just("metrics".to_string()),
                        Just("values".to_string()),
                        Just("name".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every path to a value in `v`.
    fn paths(v: &Value, here: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    let mut p = here.clone();
                    p.push(k.clone());
                    paths(c, p, out);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    let mut p = here.clone();
                    p.push(i.to_string());
                    paths(c, p, out);
                }
            }
            _ => {}
        }
    }

    fn replace(v: &mut Value, path: &[String], with: Value) {
        match path.split_first() {
            None => *v = with,
            Some((head, rest)) => {
                let child = match v {
                    Value::Object(m) => m.get_mut(head),
                    Value::Array(a) => head.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                    _ => None,
                };
                if let Some(c) = child {
                    replace(c, rest, with);
                }
            }
        }
    }

    /// `/judge` as it was first written: the whole `RemoteJudgeRequest`
    /// (scopes and attributes as `serde_json::Value`), `serde_json::to_vec`.
    fn reference(body: &[u8]) -> Result<Vec<u8>, ApiError> {
        reference_with(body, Interval::Reported)
    }

    /// [`reference`], the interval dropped from NetflixACAJudge's
    /// results afterwards for [`Interval::Omitted`].
    fn reference_with(body: &[u8], interval: Interval) -> Result<Vec<u8>, ApiError> {
        // A fresh workspace: the answers under test run in the one this
        // thread kept from earlier cases.
        drop(WORKSPACE.take());
        let request: RemoteJudgeRequest = parse_body(body)?;
        let mut result = judge(
            request.canary_config,
            request.score_thresholds,
            &request.metric_set_pair_list,
            judge::config::NETFLIX_ACA_JUDGE,
            "canaryConfig",
        )?;
        if interval == Interval::Omitted && result.judge_name == judge::config::NETFLIX_ACA_JUDGE {
            for r in &mut result.results {
                r.result_metadata.mann_whitney = None;
            }
        }
        Ok(serde_json::to_vec(&result).expect("encodes"))
    }

    fn check(body: &[u8]) -> Result<(), TestCaseError> {
        let cache = JudgeCache::new(judge::config::NETFLIX_ACA_JUDGE);
        let answer = judge_body_json(body, &cache);
        // Again, with the judge the first answer prepared (if any).
        let again = judge_body_json(body, &cache);
        let bytes = |a: &Result<(CanaryJudgeResult, Vec<u8>), ApiError>| {
            a.as_ref().map(|(_, b)| b.clone()).map_err(Clone::clone)
        };
        prop_assert_eq!(bytes(&answer), bytes(&again));
        match &answer {
            Ok((result, _)) => {
                prop_assert!((0.0..=100.0).contains(&result.score.score));
            }
            Err(e) => {
                prop_assert!((400..500).contains(&e.status), "{e:?}");
                prop_assert!(!e.message.is_empty());
            }
        }
        // The fast path answers byte for byte what the reference answers,
        // and refuses what it refuses, with the same status and message.
        match (answer, reference(body)) {
            (Ok((_, fast)), Ok(slow)) => prop_assert_eq!(fast, slow),
            (Err(fast), Err(slow)) => {
                prop_assert_eq!(fast.status, slow.status);
                prop_assert_eq!(fast.message, slow.message);
            }
            (fast, slow) => prop_assert!(false, "fast {fast:?}, reference {slow:?}"),
        }
        // Without the interval: labels decided from the band's edges, the
        // same bytes as the full judgment with the interval dropped.
        let omitted =
            JudgeCache::new(judge::config::NETFLIX_ACA_JUDGE).with_interval(Interval::Omitted);
        match (
            judge_body_json(body, &omitted),
            reference_with(body, Interval::Omitted),
        ) {
            (Ok((_, fast)), Ok(slow)) => prop_assert_eq!(fast, slow),
            (Err(fast), Err(slow)) => prop_assert_eq!(fast, slow),
            (fast, slow) => prop_assert!(false, "omitted {fast:?}, reference {slow:?}"),
        }
        Ok(())
    }

    #[test]
    fn the_valid_body_is_judged() {
        let body = valid().to_string();
        let result = judge_body(
            body.as_bytes(),
            &JudgeCache::new(judge::config::NETFLIX_ACA_JUDGE),
        );
        assert!(result.is_ok(), "{result:?}");
    }

    /// Kayenta's shape with scopes, attributes, tags, ids, NaN and nulls:
    /// the same bytes as the reference, which keeps every field.
    #[test]
    fn the_fast_path_answers_the_reference_bytes() {
        let mut body = valid();
        let scopes = json!({"control": {"scope": "baseline", "location": "us-east-1",
            "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "step": 60,
            "startTimeIso": "2026-01-01T00:00:00Z", "startTimeMillis": 1767225600000_u64,
            "stepMillis": 60000, "extendedScopeParams": {"a": ["b", null, 1.5]}},
            "experiment": {"scope": "canary"}});
        let attributes = json!({"control": {"query": "sum(rate(x{a=\"\\u00e9\"}[1m]))"},
            "experiment": {"query": "q"}});
        for pair in body["metricSetPairList"].as_array_mut().expect("pairs") {
            pair["scopes"] = scopes.clone();
            pair["attributes"] = attributes.clone();
            pair["values"]["control"]
                .as_array_mut()
                .expect("control")
                .extend([json!(null), json!("NaN"), json!(-0.0), json!(1e-310)]);
        }
        body["metricSetPairList"][0]["tags"] = json!({"pod": "a\"b", "zone": "é"});
        let text = serde_json::to_string_pretty(&body).expect("json");
        let (_, fast) = judge_body_json(
            text.as_bytes(),
            &JudgeCache::new(judge::config::NETFLIX_ACA_JUDGE),
        )
        .expect("judged");
        assert_eq!(
            String::from_utf8(fast).expect("utf-8"),
            String::from_utf8(reference(text.as_bytes()).expect("judged")).expect("utf-8")
        );
    }

    /// The thread's kept workspace, after bodies with other metrics, more
    /// metrics, fewer, and the same series grown (the sorted samples are
    /// then merged, not sorted again), answers a fresh one's bytes.
    #[test]
    fn a_kept_workspace_answers_what_a_fresh_one_does() {
        let with_values = |extra: usize, scale: f64, metrics: usize| {
            let mut body = valid();
            let series = |seed: usize| -> Vec<Value> {
                (0..20 + extra)
                    .map(|i| json!(((i * 37 + seed * 11) % 23) as f64 * scale + 100.0))
                    .collect()
            };
            let pairs = &mut body["metricSetPairList"];
            pairs[0]["values"] = json!({"control": series(1), "experiment": series(2)});
            pairs[1]["values"] = json!({"control": series(3), "experiment": series(4)});
            if metrics == 1 {
                pairs.as_array_mut().expect("pairs").truncate(1);
            }
            body.to_string()
        };
        let bodies = [
            with_values(0, 1.0, 2),
            with_values(7, 1.0, 2),
            with_values(30, 1.0, 2),
            with_values(0, 1.5, 1),
            valid().to_string(),
            with_values(30, 1.0, 2),
            with_values(31, 1.0, 2),
        ];
        let cache = JudgeCache::new(judge::config::NETFLIX_ACA_JUDGE);
        for body in &bodies {
            // Kept from the bodies before; then the reference, fresh.
            let (_, kept) = judge_body_json(body.as_bytes(), &cache).expect("judged");
            let fresh = reference(body.as_bytes()).expect("judged");
            assert_eq!(
                String::from_utf8(kept).expect("utf-8"),
                String::from_utf8(fresh).expect("utf-8")
            );
            assert!(WORKSPACE.with(|ws| {
                let kept = ws.take();
                let metrics = kept.as_ref().map_or(0, Workspace::metrics);
                ws.set(kept);
                metrics >= 1
            }));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            check(v.to_string().as_bytes())?;
        }

        #[test]
        fn one_value_replaced_never_panics(pick in any::<prop::sample::Index>(), with in any_json()) {
            let mut body = valid();
            let mut all = Vec::new();
            paths(&body, Vec::new(), &mut all);
            let path = pick.get(&all).clone();
            replace(&mut body, &path, with);
            check(body.to_string().as_bytes())?;
        }

        #[test]
        fn cut_or_flipped_bytes_never_panic(cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let body = valid().to_string().into_bytes();
            check(&body[..cut.index(body.len())])?;
            let mut flipped = body.clone();
            let i = flip.index(flipped.len());
            flipped[i] = byte;
            check(&flipped)?;
        }
    }
}
