//! Argo Rollouts' files: `Rollout` (canary strategy), `AnalysisTemplate` and
//! `ClusterAnalysisTemplate`, read as the controller reads them
//! (`pkg/apis/rollouts/v1alpha1/types.go`, `analysis_types.go`), and turned
//! into a [`RolloutPlan`]: steps and analyses with their arguments resolved
//! (`utils/analysis/factory.go` `BuildArgumentsForRolloutAnalysisRun`,
//! `ResolveMetricArgs`; `utils/analysis/helpers.go` `NewAnalysisRunFromTemplates`).

use std::time::Duration;

use serde::Deserialize;

use crate::control::{QuerySpec, RangeOffsets};
use crate::duration::parse_go_duration;
use crate::error::{Location, PeersError};
use crate::expr::Condition;
use crate::load::{Document, IntOrString, Metadata, typed};

/// Pod template hashes the plan substitutes for
/// `valueFrom.podTemplateHashValue` (the simulated series carry them in the
/// `rollouts_pod_template_hash` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    /// `Stable`
    pub stable: String,
    /// `Latest` (the canary)
    pub latest: String,
}

impl Default for Hashes {
    fn default() -> Self {
        Self {
            stable: "stable".into(),
            latest: "canary".into(),
        }
    }
}

// ---------- raw shapes, as the CRDs have them ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRollout {
    metadata: Metadata,
    spec: RawRolloutSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRolloutSpec {
    strategy: RawStrategy,
    workload_ref: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawStrategy {
    canary: Option<RawCanary>,
    blue_green: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawCanary {
    steps: Vec<RawStep>,
    analysis: Option<RawBackground>,
    traffic_routing: Option<serde_json::Value>,
    abort_scale_down_delay_seconds: Option<i64>,
    min_pods_per_replica_set: Option<i64>,
    dynamic_stable_scale: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawStep {
    set_weight: Option<i64>,
    pause: Option<RawPause>,
    experiment: Option<serde_json::Value>,
    analysis: Option<RawRolloutAnalysis>,
    set_canary_scale: Option<RawScale>,
    set_header_route: Option<serde_json::Value>,
    set_mirror_route: Option<serde_json::Value>,
    plugin: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawPause {
    duration: Option<IntOrString>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawScale {
    weight: Option<i64>,
    replicas: Option<i64>,
    match_traffic_weight: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawBackground {
    #[serde(flatten)]
    analysis: RawRolloutAnalysis,
    starting_step: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRolloutAnalysis {
    templates: Vec<TemplateRef>,
    args: Vec<RawRunArg>,
    dry_run: Vec<DryRunRule>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
struct TemplateRef {
    template_name: String,
    cluster_scope: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRunArg {
    name: String,
    value: String,
    value_from: Option<RawRunArgFrom>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRunArgFrom {
    pod_template_hash_value: Option<String>,
    field_ref: Option<FieldRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FieldRef {
    field_path: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
struct DryRunRule {
    metric_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawTemplate {
    metadata: Metadata,
    spec: RawTemplateSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawTemplateSpec {
    metrics: Vec<serde_json::Value>,
    args: Vec<RawArg>,
    dry_run: Vec<DryRunRule>,
    templates: Vec<TemplateRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawArg {
    name: String,
    value: Option<String>,
    value_from: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawMetric {
    name: String,
    interval: String,
    initial_delay: String,
    count: Option<IntOrString>,
    success_condition: String,
    failure_condition: String,
    failure_limit: Option<IntOrString>,
    inconclusive_limit: Option<IntOrString>,
    consecutive_error_limit: Option<IntOrString>,
    consecutive_success_limit: Option<IntOrString>,
    provider: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawPrometheus {
    query: String,
    range_query: Option<RawRange>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRange {
    start: String,
    end: String,
    step: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawKayenta {
    canary_config_name: String,
    threshold: RawKayentaThreshold,
    scopes: Vec<RawKayentaScope>,
    lookback: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawKayentaThreshold {
    pass: i64,
    marginal: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawKayentaScope {
    name: String,
    control_scope: RawScopeDetail,
    experiment_scope: RawScopeDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawScopeDetail {
    scope: String,
    step: i64,
    start: String,
    end: String,
}

// ---------- what the rules run on ----------

/// Where a metric's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// `provider.prometheus`
    Prometheus {
        /// PromQL, arguments substituted
        query: String,
        /// `rangeQuery`: start and end as offsets before the measurement, and step
        range: Option<RangeOffsets>,
        /// index into [`RolloutPlan::queries`]
        index: usize,
    },
    /// `provider.kayenta`
    Kayenta {
        /// `canaryConfigName`
        canary_config_name: String,
        /// `threshold.pass`
        pass: i64,
        /// `threshold.marginal`
        marginal: i64,
        /// scopes
        scopes: Vec<crate::control::KayentaScope>,
        /// `lookback`: windows start at the run's start
        lookback: bool,
    },
}

/// One metric of an AnalysisRun, arguments resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// `name`
    pub name: String,
    /// `interval`; `None` = measure once (or retry after errors)
    pub interval: Option<Duration>,
    /// `initialDelay`
    pub initial_delay: Option<Duration>,
    /// `Metric.EffectiveCount()`: `None` runs until the run is terminated
    pub effective_count: Option<u32>,
    /// `successCondition`
    pub success: Option<Condition>,
    /// `failureCondition`
    pub failure: Option<Condition>,
    /// `failureLimit` (default 0; −1 disables)
    pub failure_limit: i64,
    /// `inconclusiveLimit` (default 0)
    pub inconclusive_limit: i64,
    /// `consecutiveErrorLimit` (default 4)
    pub consecutive_error_limit: i64,
    /// `consecutiveSuccessLimit` (default 0 = off)
    pub consecutive_success_limit: i64,
    /// where the value comes from
    pub provider: Provider,
    /// matched by a `dryRun` rule: its phase does not count
    pub dry_run: bool,
}

/// An AnalysisRun's specification: what a Rollout step or its background
/// analysis creates.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// metrics, in template order
    pub metrics: Vec<Metric>,
}

/// A canary step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `setWeight`
    SetWeight(u32),
    /// `pause` with a duration
    Pause(Duration),
    /// `analysis` (blocks until Successful)
    Analysis(RunSpec),
    /// `setCanaryScale`
    SetCanaryScale {
        /// weight
        weight: Option<u32>,
        /// replicas
        replicas: Option<u32>,
        /// matchTrafficWeight
        match_traffic_weight: bool,
    },
}

/// A Rollout ready to run: steps and analyses resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPlan {
    /// `metadata.name`
    pub name: String,
    /// steps in order
    pub steps: Vec<Step>,
    /// background `analysis` and its `startingStep`
    pub background: Option<(RunSpec, usize)>,
    /// `abortScaleDownDelaySeconds` (default 30 s) with traffic routing; 0 without
    pub abort_scale_down_delay: Duration,
    /// Whether `trafficRouting` is set: the weights are the router's, and
    /// `setCanaryScale` sizes the canary apart from them (Argo ignores it
    /// without; see [`crate::argo::scale`])
    pub traffic_routing: bool,
    /// `minPodsPerReplicaSet`: the fewest pods a canary or stable
    /// ReplicaSet that is not scaled to 0 gets (traffic routing only)
    pub min_pods_per_replica_set: Option<u32>,
    /// `dynamicStableScale`: the stable ReplicaSet shrinks as the canary's
    /// weight grows (traffic routing only)
    pub dynamic_stable_scale: bool,
    /// one line per thing read and ignored while resolving
    pub notes: Vec<String>,
    /// every Prometheus query of the plan; `Provider::Prometheus::index` points here
    pub queries: Vec<QuerySpec>,
}

impl RolloutPlan {
    fn index_queries(&mut self) {
        let mut queries = Vec::new();
        let runs =
            self.background
                .iter_mut()
                .map(|(r, _)| r)
                .chain(self.steps.iter_mut().filter_map(|s| match s {
                    Step::Analysis(r) => Some(r),
                    _ => None,
                }));
        for run in runs {
            for m in &mut run.metrics {
                if let Provider::Prometheus {
                    query,
                    range,
                    index,
                } = &mut m.provider
                {
                    *index = queries.len();
                    queries.push(QuerySpec {
                        name: m.name.clone(),
                        promql: query.clone(),
                        range: *range,
                    });
                }
            }
        }
        self.queries = queries;
    }
}

/// The Argo documents of one or more files.
#[derive(Debug, Clone, Default)]
pub struct ArgoDocs {
    rollouts: Vec<(Location, RawRollout)>,
    templates: Vec<(Location, RawTemplate, bool)>,
}

impl ArgoDocs {
    /// How many Rollouts.
    pub fn rollouts(&self) -> usize {
        self.rollouts.len()
    }
    /// How many (Cluster)AnalysisTemplates.
    pub fn templates(&self) -> usize {
        self.templates.len()
    }
    pub(crate) fn merge(&mut self, other: ArgoDocs) {
        self.rollouts.extend(other.rollouts);
        self.templates.extend(other.templates);
    }

    /// Read a `Rollout`, `AnalysisTemplate` or `ClusterAnalysisTemplate`
    /// document; notes say what is read and ignored.
    pub(crate) fn add(
        &mut self,
        doc: &Document,
        notes: &mut Vec<String>,
    ) -> Result<(), PeersError> {
        let at = &doc.at;
        match at.kind.as_str() {
            "Rollout" => {
                let raw: RawRollout = typed(at, "", &doc.value)?;
                check_rollout(at, &raw, notes)?;
                self.rollouts.push((at.clone(), raw));
            }
            "AnalysisTemplate" | "ClusterAnalysisTemplate" => {
                let raw: RawTemplate = typed(at, "", &doc.value)?;
                for (i, m) in raw.spec.metrics.iter().enumerate() {
                    check_provider(at, &format!("spec.metrics[{i}]"), m)?;
                }
                self.templates
                    .push((at.clone(), raw, at.kind == "ClusterAnalysisTemplate"));
            }
            _ => unreachable!("caller dispatches by kind"),
        }
        Ok(())
    }

    /// Check every template on its own (arguments given placeholder values
    /// where the template has none), so a file of templates is refused or
    /// accepted as a whole.
    pub fn check_templates(&self, notes: &mut Vec<String>) -> Result<(), PeersError> {
        for (at, raw, cluster) in &self.templates {
            let r = TemplateRef {
                template_name: raw.metadata.name.clone(),
                cluster_scope: Some(*cluster),
            };
            let mut seen = Vec::new();
            let (metrics, targs, _dry) = self.flatten(at, &[r], &mut seen, notes)?;
            let resolved: Vec<(String, String)> = targs
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.clone().unwrap_or_else(|| format!("placeholder-{n}")),
                    )
                })
                .collect();
            for (mat, i, m) in &metrics {
                resolve_metric(
                    mat,
                    &format!("spec.metrics[{i}]"),
                    m,
                    &resolved,
                    notes,
                    true,
                )?;
            }
        }
        Ok(())
    }

    /// The single Rollout in the files, with its analyses resolved.
    pub fn plan(&self, hashes: &Hashes) -> Result<RolloutPlan, PeersError> {
        let (at, raw) = match self.rollouts.as_slice() {
            [one] => one,
            [] => {
                return Err(PeersError::File {
                    file: self.file_names(),
                    problem: "no Rollout in the Argo Rollouts file(s)".into(),
                });
            }
            many => {
                return Err(PeersError::File {
                    file: self.file_names(),
                    problem: format!(
                        "{} Rollouts ({}); give one Rollout per analysis",
                        many.len(),
                        many.iter()
                            .map(|(_, r)| r.metadata.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        };
        let canary = raw.spec.strategy.canary.clone().unwrap_or_default();
        let mut notes = Vec::new();
        let mut steps = Vec::new();
        for (i, s) in canary.steps.iter().enumerate() {
            let field = format!("spec.strategy.canary.steps[{i}]");
            let step = if let Some(w) = s.set_weight {
                if !(0..=100).contains(&w) {
                    return Err(PeersError::field(
                        at,
                        format!("{field}.setWeight"),
                        "must be 0..=100",
                    ));
                }
                Step::SetWeight(w as u32)
            } else if let Some(p) = &s.pause {
                Step::Pause(pause_duration(at, &format!("{field}.pause.duration"), p)?)
            } else if let Some(a) = &s.analysis {
                Step::Analysis(self.run_spec(
                    at,
                    &format!("{field}.analysis"),
                    a,
                    raw,
                    hashes,
                    &mut notes,
                )?)
            } else if let Some(sc) = &s.set_canary_scale {
                let pct = |v: Option<i64>, f: &str| -> Result<Option<u32>, PeersError> {
                    match v {
                        Some(x) if x < 0 => Err(PeersError::field(
                            at,
                            format!("{field}.setCanaryScale.{f}"),
                            "negative",
                        )),
                        Some(x) => Ok(Some(x as u32)),
                        None => Ok(None),
                    }
                };
                Step::SetCanaryScale {
                    weight: pct(sc.weight, "weight")?,
                    replicas: pct(sc.replicas, "replicas")?,
                    match_traffic_weight: sc.match_traffic_weight,
                }
            } else {
                // setHeaderRoute / setMirrorRoute were refused or noted when read
                continue;
            };
            steps.push(step);
        }
        let background = match &canary.analysis {
            Some(b) if !b.analysis.templates.is_empty() => {
                let start = b.starting_step.unwrap_or(0);
                if start < 0 {
                    return Err(PeersError::field(
                        at,
                        "spec.strategy.canary.analysis.startingStep",
                        "negative",
                    ));
                }
                Some((
                    self.run_spec(
                        at,
                        "spec.strategy.canary.analysis",
                        &b.analysis,
                        raw,
                        hashes,
                        &mut notes,
                    )?,
                    start as usize,
                ))
            }
            _ => None,
        };
        // abortScaleDownDelaySeconds applies to traffic-routed canaries only; a
        // basic (replica-weighted) canary is scaled down at once
        let delay = match canary.traffic_routing {
            Some(_) => canary.abort_scale_down_delay_seconds.unwrap_or(30).max(0) as u64,
            None => 0,
        };
        let min_pods_per_replica_set = match canary.min_pods_per_replica_set {
            Some(n) if n < 0 => {
                return Err(PeersError::field(
                    at,
                    "spec.strategy.canary.minPodsPerReplicaSet",
                    "negative",
                ));
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            None => None,
        };
        // pkg/apis/rollouts/validation/validation.go ValidateRolloutStrategyCanary
        if canary.dynamic_stable_scale && canary.traffic_routing.is_none() {
            return Err(PeersError::field(
                at,
                "spec.strategy.canary.dynamicStableScale",
                "Canary dynamicStableScale can only be used with traffic routing",
            ));
        }
        let mut plan = RolloutPlan {
            name: raw.metadata.name.clone(),
            steps,
            background,
            abort_scale_down_delay: Duration::from_secs(delay),
            traffic_routing: canary.traffic_routing.is_some(),
            min_pods_per_replica_set,
            dynamic_stable_scale: canary.dynamic_stable_scale,
            notes,
            queries: Vec::new(),
        };
        plan.index_queries();
        Ok(plan)
    }

    fn file_names(&self) -> String {
        let mut names: Vec<&str> = self
            .rollouts
            .iter()
            .map(|(a, _)| a.file.as_str())
            .chain(self.templates.iter().map(|(a, _, _)| a.file.as_str()))
            .collect();
        names.dedup();
        if names.is_empty() {
            "(no files)".into()
        } else {
            names.join(", ")
        }
    }

    /// Templates referenced (and the templates they include), flattened as
    /// `FlattenTemplates` does: metrics appended, args merged, dryRun joined.
    #[allow(clippy::type_complexity)]
    fn flatten(
        &self,
        at: &Location,
        refs: &[TemplateRef],
        seen: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) -> Result<
        (
            Vec<(Location, usize, serde_json::Value)>,
            Vec<(String, Option<String>)>,
            Vec<DryRunRule>,
        ),
        PeersError,
    > {
        let mut metrics = Vec::new();
        let mut args: Vec<(String, Option<String>)> = Vec::new();
        let mut dry = Vec::new();
        for r in refs {
            let cluster = r.cluster_scope.unwrap_or(false);
            let key = format!("{}/{}", cluster, r.template_name);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let Some((tat, t, _)) = self
                .templates
                .iter()
                .find(|(_, t, c)| *c == cluster && t.metadata.name == r.template_name)
            else {
                let kind = if cluster {
                    "ClusterAnalysisTemplate"
                } else {
                    "AnalysisTemplate"
                };
                return Err(PeersError::field(
                    at,
                    "templates",
                    format!("{kind} {:?} is not in the given files", r.template_name),
                ));
            };
            for (i, a) in t.spec.args.iter().enumerate() {
                let mut value = a.value.clone();
                if let (Some(from), None) = (&a.value_from, &a.value) {
                    match from.get("secretKeyRef") {
                        Some(secret) => {
                            let name = secret.get("name").and_then(|v| v.as_str()).unwrap_or("");
                            let key = secret.get("key").and_then(|v| v.as_str()).unwrap_or("");
                            value = Some(format!("secret:{name}/{key}"));
                            notes.push(format!(
                                "{tat}: spec.args[{i}].valueFrom.secretKeyRef read and ignored: args.{} is \"secret:{name}/{key}\" (credentials do not change the simulated answers)",
                                a.name
                            ));
                        }
                        None => {
                            return Err(PeersError::unsupported(
                                tat,
                                format!("spec.args[{i}].valueFrom"),
                                "only secretKeyRef is read in a template's args; give a value",
                            ));
                        }
                    }
                }
                // flattenArgs: same name twice must agree; a nil value is replaced
                match args.iter_mut().find(|(n, _)| *n == a.name) {
                    Some((_, prev)) => match (prev.as_ref(), value.as_ref()) {
                        (Some(p), Some(v)) if p != v => {
                            return Err(PeersError::field(
                                tat,
                                format!("spec.args[{i}]"),
                                format!(
                                    "argument {} specified multiple times with different values: {p:?}, {v:?}",
                                    a.name
                                ),
                            ));
                        }
                        (None, _) => *prev = value.clone(),
                        _ => {}
                    },
                    None => args.push((a.name.clone(), value.clone())),
                }
            }
            for (i, m) in t.spec.metrics.iter().enumerate() {
                metrics.push((tat.clone(), i, m.clone()));
            }
            dry.extend(t.spec.dry_run.iter().cloned());
            let (m2, a2, d2) = self.flatten(tat, &t.spec.templates, seen, notes)?;
            metrics.extend(m2);
            for (n, v) in a2 {
                if !args.iter().any(|(k, _)| *k == n) {
                    args.push((n, v));
                }
            }
            dry.extend(d2);
        }
        Ok((metrics, args, dry))
    }

    fn run_spec(
        &self,
        at: &Location,
        field: &str,
        a: &RawRolloutAnalysis,
        rollout: &RawRollout,
        hashes: &Hashes,
        notes: &mut Vec<String>,
    ) -> Result<RunSpec, PeersError> {
        let mut seen = Vec::new();
        let (metrics, template_args, mut dry) = self
            .flatten(at, &a.templates, &mut seen, notes)
            .map_err(|e| match e {
                PeersError::Field {
                    at: eat,
                    field: f,
                    problem,
                } if f == "templates" && *eat == *at => PeersError::Field {
                    at: eat,
                    field: format!("{field}.templates"),
                    problem,
                },
                other => other,
            })?;
        // BuildArgumentsForRolloutAnalysisRun, then MergeArgs
        let mut incoming: Vec<(String, Option<String>)> = Vec::new();
        for (i, arg) in a.args.iter().enumerate() {
            let afield = format!("{field}.args[{i}]");
            let value = match &arg.value_from {
                Some(RawRunArgFrom { pod_template_hash_value: Some(h), .. }) => match h.as_str() {
                    "Stable" => hashes.stable.clone(),
                    "Latest" => hashes.latest.clone(),
                    other => {
                        return Err(PeersError::field(
                            at,
                            format!("{afield}.valueFrom.podTemplateHashValue"),
                            format!("{other:?}: must be Stable or Latest"),
                        ));
                    }
                },
                Some(RawRunArgFrom { field_ref: Some(f), .. }) => field_value(&rollout.metadata, &f.field_path)
                    .ok_or_else(|| {
                        PeersError::unsupported(
                            at,
                            format!("{afield}.valueFrom.fieldRef.fieldPath"),
                            format!("{:?}: only metadata.name, metadata.namespace, metadata.labels['k'] and metadata.annotations['k'] are read", f.field_path),
                        )
                    })?,
                _ => arg.value.clone(),
            };
            incoming.push((arg.name.clone(), Some(value)));
        }
        let mut resolved: Vec<(String, String)> = Vec::new();
        for (name, v) in &template_args {
            let given = incoming
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone());
            match given.or_else(|| v.clone()) {
                Some(val) => resolved.push((name.clone(), val)),
                None => {
                    return Err(PeersError::field(
                        at,
                        format!("{field}.args"),
                        format!(
                            "args.{name} was not resolved: the template has no value and the Rollout gives none"
                        ),
                    ));
                }
            }
        }
        dry.extend(a.dry_run.iter().cloned());
        let mut out = Vec::new();
        for (mat, i, m) in &metrics {
            out.push(resolve_metric(
                mat,
                &format!("spec.metrics[{i}]"),
                m,
                &resolved,
                notes,
                false,
            )?);
        }
        let names: Vec<String> = out.iter().map(|m| m.name.clone()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(PeersError::field(
                    at,
                    field,
                    format!("two metrics have the same name {n:?}"),
                ));
            }
        }
        for (i, rule) in dry.iter().enumerate() {
            let mut matched = 0;
            for m in &mut out {
                if regex_lite_match(&rule.metric_name, &m.name).map_err(|why| {
                    PeersError::unsupported(at, format!("{field}.dryRun[{i}].metricName"), why)
                })? {
                    m.dry_run = true;
                    matched += 1;
                }
            }
            if matched == 0 {
                return Err(PeersError::field(
                    at,
                    format!("{field}.dryRun[{i}]"),
                    "rule didn't match any metric name(s)",
                ));
            }
        }
        if out.is_empty() {
            return Err(PeersError::field(at, field, "no metrics specified"));
        }
        Ok(RunSpec { metrics: out })
    }
}

fn field_value(meta: &Metadata, path: &str) -> Option<String> {
    let key_of = |p: &str, prefix: &str| -> Option<String> {
        let rest = p.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    match path {
        "metadata.name" => Some(meta.name.clone()),
        "metadata.namespace" => Some(meta.namespace.clone()),
        p => {
            if let Some(k) = key_of(p, "metadata.labels['") {
                meta.labels.get(&k).cloned()
            } else if let Some(k) = key_of(p, "metadata.annotations['") {
                meta.annotations.get(&k).cloned()
            } else {
                None
            }
        }
    }
}

fn pause_duration(at: &Location, field: &str, p: &RawPause) -> Result<Duration, PeersError> {
    // RolloutPause.DurationSeconds
    match &p.duration {
        None => Err(PeersError::unsupported(
            at,
            field,
            "a pause with no duration waits for a person to promote; give a duration",
        )),
        Some(IntOrString::Int(s)) if *s >= 0 => Ok(Duration::from_secs(*s as u64)),
        Some(IntOrString::Str(s)) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Duration::from_secs(n as u64)),
            _ => parse_go_duration(s)
                .map(|d| Duration::from_secs(d.as_secs())) // int32(d.Seconds())
                .map_err(|e| PeersError::field(at, field, e)),
        },
        Some(_) => Err(PeersError::field(at, field, "negative duration")),
    }
}

fn check_rollout(
    at: &Location,
    raw: &RawRollout,
    notes: &mut Vec<String>,
) -> Result<(), PeersError> {
    if raw.spec.strategy.blue_green.is_some() {
        return Err(PeersError::unsupported(
            at,
            "spec.strategy.blueGreen",
            "blue-green Rollouts are not simulated (only the canary strategy)",
        ));
    }
    let Some(canary) = &raw.spec.strategy.canary else {
        return Err(PeersError::field(
            at,
            "spec.strategy.canary",
            "missing: only canary Rollouts are read",
        ));
    };
    if raw.spec.workload_ref.is_some() {
        notes.push(format!(
            "{at}: spec.workloadRef read and ignored (the scenario describes the workload)"
        ));
    }
    if canary.traffic_routing.is_some() {
        notes.push(format!(
            "{at}: spec.strategy.canary.trafficRouting: weights applied exactly, canary pods sized from them (the router itself is not simulated)"
        ));
    }
    for (i, s) in canary.steps.iter().enumerate() {
        let field = format!("spec.strategy.canary.steps[{i}]");
        if s.set_canary_scale.is_some() && canary.traffic_routing.is_none() {
            // utils/replicaset/canary.go UseSetCanaryScale
            notes.push(format!(
                "{at}: {field}.setCanaryScale read and ignored (Argo applies it only with trafficRouting)"
            ));
        }
        if s.experiment.is_some() {
            return Err(PeersError::unsupported(
                at,
                format!("{field}.experiment"),
                "an experiment step starts extra ReplicaSets and their own analysis; not simulated",
            ));
        }
        if s.plugin.is_some() {
            return Err(PeersError::unsupported(
                at,
                format!("{field}.plugin"),
                "step plugins run external code",
            ));
        }
        if let Some(p) = &s.pause {
            pause_duration(at, &format!("{field}.pause.duration"), p)?;
        }
        if s.set_header_route.is_some() || s.set_mirror_route.is_some() {
            notes.push(format!(
                "{at}: {field}: header/mirror route read and ignored (no traffic by header)"
            ));
        }
        let n = [
            s.set_weight.is_some(),
            s.pause.is_some(),
            s.analysis.is_some(),
            s.set_canary_scale.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n > 1 {
            return Err(PeersError::field(
                at,
                field,
                "a step has exactly one of setWeight, pause, analysis, setCanaryScale",
            ));
        }
    }
    Ok(())
}

fn check_provider(
    at: &Location,
    field: &str,
    metric: &serde_json::Value,
) -> Result<(), PeersError> {
    let Some(provider) = metric.get("provider").and_then(|p| p.as_object()) else {
        return Err(PeersError::field(
            at,
            format!("{field}.provider"),
            "no provider specified",
        ));
    };
    let keys: Vec<&String> = provider.keys().collect();
    match keys.as_slice() {
        [k] if *k == "prometheus" || *k == "kayenta" => Ok(()),
        [k] => Err(PeersError::unsupported(
            at,
            format!("{field}.provider.{k}"),
            match k.as_str() {
                "job" => {
                    "a job provider runs a Kubernetes Job whose result depends on its container"
                        .to_string()
                }
                "web" => "a web provider asks an HTTP endpoint outside the simulation".to_string(),
                other => {
                    format!("the {other} provider is not simulated (only prometheus and kayenta)")
                }
            },
        )),
        [] => Err(PeersError::field(
            at,
            format!("{field}.provider"),
            "no provider specified",
        )),
        _ => Err(PeersError::field(
            at,
            format!("{field}.provider"),
            "multiple providers specified",
        )),
    }
}

/// `ResolveMetricArgs`: substitute `{{args.NAME}}` in the metric serialized as
/// JSON, values escaped as Go's `strconv.Quote` does, then read it back.
fn resolve_metric(
    at: &Location,
    field: &str,
    metric: &serde_json::Value,
    args: &[(String, String)],
    notes: &mut Vec<String>,
    lenient: bool,
) -> Result<Metric, PeersError> {
    let text = metric.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = after[..close].trim();
        match tag
            .strip_prefix("args.")
            .and_then(|n| args.iter().find(|(k, _)| k == n))
        {
            Some((_, v)) => {
                // strconv.Quote without its quotes (JSON escaping agrees for these)
                let quoted = serde_json::Value::String(v.clone()).to_string();
                out.push_str(
                    quoted
                        .strip_prefix('"')
                        .and_then(|q| q.strip_suffix('"'))
                        .unwrap_or(&quoted),
                );
            }
            // a template checked on its own may use args that the templates
            // including it declare
            None if lenient && tag.starts_with("args.") => out.push_str("placeholder"),
            None => {
                return Err(PeersError::field(
                    at,
                    field,
                    format!("failed to resolve {{{{{tag}}}}}"),
                ));
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    let value: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| PeersError::field(at, field, format!("after substituting args: {e}")))?;
    let raw: RawMetric = typed(at, field, &value)?;
    let f = |name: &str| format!("{field}.{name}");
    let dur = |s: &str, name: &str| -> Result<Option<Duration>, PeersError> {
        if s.is_empty() {
            Ok(None)
        } else {
            parse_go_duration(s)
                .map(Some)
                .map_err(|e| PeersError::field(at, f(name), e))
        }
    };
    let int = |v: &Option<IntOrString>, name: &str, default: i64| -> Result<i64, PeersError> {
        match v {
            None => Ok(default),
            Some(v) => v.int().map_err(|e| PeersError::field(at, f(name), e)),
        }
    };
    let cond = |s: &str, name: &str| -> Result<Option<Condition>, PeersError> {
        if s.is_empty() {
            Ok(None)
        } else {
            Condition::parse(s)
                .map(Some)
                .map_err(|e| PeersError::field(at, f(name), format!("{s:?}: {e}")))
        }
    };
    let interval = dur(&raw.interval, "interval")?;
    if interval.is_some_and(|i| i.is_zero()) {
        return Err(PeersError::unsupported(
            at,
            f("interval"),
            "0s: Argo would measure again on every reconcile, with no time passing",
        ));
    }
    let count = int(&raw.count, "count", 0)?;
    let failure_limit = int(&raw.failure_limit, "failureLimit", 0)?;
    let inconclusive_limit = int(&raw.inconclusive_limit, "inconclusiveLimit", 0)?;
    let consecutive_error_limit = int(&raw.consecutive_error_limit, "consecutiveErrorLimit", 4)?;
    let consecutive_success_limit =
        int(&raw.consecutive_success_limit, "consecutiveSuccessLimit", 0)?;
    // ValidateMetric
    let bad = |name: &str, why: &str| Err(PeersError::field(at, f(name), why.to_string()));
    if consecutive_success_limit < 0 {
        return bad("consecutiveSuccessLimit", "must be >= 0");
    }
    if failure_limit < -1 {
        return bad("failureLimit", "must be >= 0, or -1 to be disabled");
    }
    if consecutive_success_limit == 0 && failure_limit == -1 {
        return bad(
            "failureLimit",
            "failureLimit and consecutiveSuccessLimit cannot both be disabled",
        );
    }
    if inconclusive_limit < 0 {
        return bad("inconclusiveLimit", "must be >= 0");
    }
    if consecutive_error_limit < 0 {
        return bad("consecutiveErrorLimit", "must be >= 0");
    }
    if count < 0 {
        return bad("count", "must be >= 0");
    }
    if count > 0 {
        if failure_limit >= 0 && count < failure_limit + consecutive_success_limit {
            return bad(
                "count",
                "count must be >= failureLimit + consecutiveSuccessLimit if both >= 0",
            );
        }
        if failure_limit < 0 && count < consecutive_success_limit {
            return bad("count", "count must be >= consecutiveSuccessLimit");
        }
        if count < inconclusive_limit {
            return bad("count", "count must be >= inconclusiveLimit");
        }
    }
    if count > 1 && interval.is_none() {
        return bad("interval", "interval must be specified when count > 1");
    }
    let effective_count = match (count, interval) {
        (0, None) => Some(1),
        (0, Some(_)) => None,
        (n, _) => Some(n as u32),
    };
    let provider = match raw.provider.iter().next() {
        Some((k, v)) if k == "prometheus" => {
            let p: RawPrometheus = typed(at, &f("provider.prometheus"), v)?;
            if p.query.is_empty() {
                return bad("provider.prometheus.query", "empty query");
            }
            let range = match &p.range_query {
                None => None,
                Some(r) => Some(RangeOffsets {
                    start_before: time_expr(&r.start).map_err(|e| {
                        PeersError::field(at, f("provider.prometheus.rangeQuery.start"), e)
                    })?,
                    end_before: time_expr(&r.end).map_err(|e| {
                        PeersError::field(at, f("provider.prometheus.rangeQuery.end"), e)
                    })?,
                    step: parse_go_duration(&r.step).map_err(|e| {
                        PeersError::field(at, f("provider.prometheus.rangeQuery.step"), e)
                    })?,
                }),
            };
            Provider::Prometheus {
                query: p.query,
                range,
                index: 0, // set by RolloutPlan::index_queries
            }
        }
        Some((k, v)) if k == "kayenta" => {
            let p: RawKayenta = typed(at, &f("provider.kayenta"), v)?;
            if v.get("threshold").is_none() && v.get("thresholds").is_some() {
                notes.push(format!(
                    "{at}: {}: Argo reads `threshold`, not `thresholds`: pass and marginal are 0, so every score passes",
                    f("provider.kayenta.thresholds")
                ));
            }
            for (i, s) in p.scopes.iter().enumerate() {
                if !s.control_scope.start.is_empty()
                    || !s.control_scope.end.is_empty()
                    || !s.experiment_scope.start.is_empty()
                    || !s.experiment_scope.end.is_empty()
                {
                    return Err(PeersError::unsupported(
                        at,
                        f(&format!("provider.kayenta.scopes[{i}]")),
                        "fixed start/end timestamps cannot be placed on the simulation's clock",
                    ));
                }
            }
            if !p.lookback && interval.is_none() {
                return bad(
                    "interval",
                    "the kayenta provider needs an interval (its window is now − interval) or lookback: true",
                );
            }
            Provider::Kayenta {
                canary_config_name: p.canary_config_name,
                pass: p.threshold.pass,
                marginal: p.threshold.marginal,
                scopes: p
                    .scopes
                    .iter()
                    .map(|s| crate::control::KayentaScope {
                        name: s.name.clone(),
                        control: s.control_scope.scope.clone(),
                        experiment: s.experiment_scope.scope.clone(),
                        step_seconds: s.control_scope.step,
                    })
                    .collect(),
                lookback: p.lookback,
            }
        }
        _ => {
            check_provider(at, field, &value)?;
            return bad("provider", "no provider specified");
        }
    };
    Ok(Metric {
        name: raw.name,
        interval,
        initial_delay: dur(&raw.initial_delay, "initialDelay")?,
        effective_count,
        success: cond(&raw.success_condition, "successCondition")?,
        failure: cond(&raw.failure_condition, "failureCondition")?,
        failure_limit,
        inconclusive_limit,
        consecutive_error_limit,
        consecutive_success_limit,
        provider,
        dry_run: false,
    })
}

/// `rangeQuery.start`/`end` are expr expressions evaluated by `EvalTime`;
/// the forms Argo documents are read: `now()` and `now() - duration("X")`.
fn time_expr(s: &str) -> Result<Duration, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if t == "now()" {
        return Ok(Duration::ZERO);
    }
    if let Some(rest) = t.strip_prefix("now()-duration(") {
        let inner = rest
            .strip_suffix(')')
            .ok_or_else(|| format!("{s:?}: expected now() - duration(\"X\")"))?;
        let inner = inner.trim_matches(|c| c == '"' || c == '\'' || c == '`');
        return parse_go_duration(inner);
    }
    Err(format!(
        "{s:?}: only now() and now() - duration(\"X\") are read"
    ))
}

/// Go's `regexp.MatchString` for the patterns dryRun rules use: literals,
/// `.`, `.*`, `^` and `$`. Other regex syntax is refused.
fn regex_lite_match(pattern: &str, name: &str) -> Result<bool, String> {
    if pattern.chars().any(|c| "[](){}+?|\\".contains(c)) || pattern.starts_with('*') {
        return Err(format!(
            "dryRun pattern {pattern:?}: only literals, '.', '.*', '^' and '$' are supported"
        ));
    }
    let anchored_start = pattern.starts_with('^');
    let anchored_end = pattern.ends_with('$');
    let core = pattern.trim_start_matches('^').trim_end_matches('$');
    let p: Vec<char> = core.chars().collect();
    let s: Vec<char> = name.chars().collect();
    fn m(p: &[char], s: &[char], end: bool) -> bool {
        if p.is_empty() {
            return !end || s.is_empty();
        }
        if p.len() >= 2 && p[0] == '.' && p[1] == '*' {
            return (0..=s.len()).any(|k| m(&p[2..], &s[k..], end));
        }
        if s.is_empty() {
            return false;
        }
        (p[0] == '.' || p[0] == s[0]) && m(&p[1..], &s[1..], end)
    }
    let starts: Vec<usize> = if anchored_start {
        vec![0]
    } else {
        (0..=s.len()).collect()
    };
    Ok(starts.into_iter().any(|k| m(&p, &s[k..], anchored_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_patterns() {
        assert_eq!(regex_lite_match(".*", "a"), Ok(true));
        assert_eq!(regex_lite_match("total-5xx", "total-5xx-errors"), Ok(true));
        assert_eq!(regex_lite_match("^total$", "total-5xx"), Ok(false));
        assert!(regex_lite_match("a|b", "a").is_err());
    }

    #[test]
    fn range_query_times() {
        assert_eq!(time_expr("now()"), Ok(Duration::ZERO));
        assert_eq!(
            time_expr("now() - duration(\"5m\")"),
            Ok(Duration::from_secs(300))
        );
        assert!(time_expr("date(\"2023\")").is_err());
    }
}
