//! Flagger's files: `Canary` and `MetricTemplate`
//! (`pkg/apis/flagger/v1beta1/canary.go`, `metric.go`), turned into a
//! [`CanaryPlan`]: the tick interval, threshold, weights and the checks with
//! their queries rendered (`pkg/metrics/observers/render.go` `RenderQuery`,
//! `pkg/controller/scheduler_metrics.go` `toMetricModel`,
//! `pkg/metrics/observers/istio.go` `istioQueries`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_go_duration;
use crate::error::{Location, PeersError};
use crate::load::{Document, Metadata, typed};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawCanary {
    metadata: Metadata,
    spec: RawCanarySpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawCanarySpec {
    provider: String,
    target_ref: RawRef,
    ingress_ref: Option<RawRef>,
    route_ref: Option<RawRef>,
    service: RawService,
    analysis: Option<RawAnalysis>,
    canary_analysis: Option<RawAnalysis>,
    skip_analysis: bool,
    autoscaler_ref: Option<serde_json::Value>,
    progress_deadline_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawRef {
    name: String,
    kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawService {
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawAnalysis {
    interval: String,
    iterations: i64,
    mirror: bool,
    max_weight: i64,
    step_weight: i64,
    step_weights: Vec<i64>,
    step_weight_promotion: i64,
    threshold: i64,
    alerts: Vec<serde_json::Value>,
    metrics: Vec<RawMetric>,
    webhooks: Vec<RawWebhook>,
    #[serde(rename = "match")]
    match_: Vec<serde_json::Value>,
    session_affinity: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawMetric {
    name: String,
    interval: String,
    threshold: f64,
    threshold_range: Option<RawRange>,
    query: String,
    template_ref: Option<RawTemplateRef>,
    template_variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawRange {
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawTemplateRef {
    name: String,
    namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawWebhook {
    #[serde(rename = "type")]
    type_: String,
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawMetricTemplate {
    metadata: Metadata,
    spec: RawMetricTemplateSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawMetricTemplateSpec {
    provider: RawProvider,
    query: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RawProvider {
    #[serde(rename = "type")]
    type_: String,
}

/// How a check compares its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bounds {
    /// `thresholdRange`
    Range {
        /// fail below
        min: Option<f64>,
        /// fail above
        max: Option<f64>,
    },
    /// deprecated `threshold` (0 when absent): success rate fails below it,
    /// everything else fails above it
    Threshold(f64),
}

/// What kind of check; decides how the value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// built-in `request-success-rate` (percent)
    SuccessRate,
    /// built-in `request-duration` (p99 in ms, truncated to whole ms)
    Duration,
    /// inline `query` or a `MetricTemplate`
    Query,
    /// neither built-in nor query nor templateRef: `runMetricChecks` fails it every tick
    AlwaysFails,
}

/// One check of the analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `metrics[].name`
    pub name: String,
    /// how its value is read
    pub kind: CheckKind,
    /// the rendered PromQL (empty for `AlwaysFails`)
    pub query: String,
    /// the comparison
    pub bounds: Bounds,
}

/// What the analysis does with traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// progressive weights
    Canary {
        /// `stepWeight`
        step_weight: u32,
        /// `stepWeights`
        step_weights: Vec<u32>,
        /// `maxWeight` as `Controller.maxWeight` computes it
        max_weight: u32,
    },
    /// `iterations` without `match`
    BlueGreen {
        /// `iterations`
        iterations: u32,
    },
}

/// A Canary ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    /// `metadata.name`
    pub name: String,
    /// `GetAnalysisInterval`: default 60 s, at least 10 s
    pub interval: Duration,
    /// `GetAnalysisThreshold`: ≤ 0 → 1
    pub threshold: u32,
    /// traffic strategy
    pub strategy: Strategy,
    /// checks in the order the scheduler runs them: built-ins and inline
    /// queries first, then templates
    pub checks: Vec<Check>,
}

/// The Flagger documents of one or more files.
#[derive(Debug, Clone, Default)]
pub struct FlaggerDocs {
    canaries: Vec<(Location, RawCanary)>,
    templates: Vec<(Location, RawMetricTemplate)>,
}

const ISTIO_SUCCESS_RATE: &str = r#"
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}",
				response_code!~"5.*"
			}[{{ interval }}]
		)
	) 
	/ 
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}"
			}[{{ interval }}]
		)
	) 
	* 100"#;

const ISTIO_DURATION: &str = r#"
	histogram_quantile(
		0.99,
		sum(
			rate(
				istio_request_duration_milliseconds_bucket{
					reporter="destination",
					destination_workload_namespace="{{ namespace }}",
					destination_workload=~"{{ target }}"
				}[{{ interval }}]
			)
		) by (le)
	)"#;

/// `MetricTemplateModel`
struct Model<'a> {
    name: &'a str,
    namespace: &'a str,
    target: &'a str,
    service: &'a str,
    ingress: &'a str,
    route: &'a str,
    interval: &'a str,
    variables: &'a BTreeMap<String, String>,
}

/// Go `text/template` with Flagger's functions (`MetricTemplateModel.TemplateFunctions`),
/// `missingkey=error`: `{{ target }}`, `{{ variables.X }}`, trim markers.
fn render(template: &str, model: &Model) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut after = &rest[open + 2..];
        if let Some(a) = after.strip_prefix('-') {
            text = text.trim_end();
            after = a;
        }
        out.push_str(text);
        let close = after
            .find("}}")
            .ok_or("template parsing failed: unclosed action")?;
        let mut action = &after[..close];
        let mut tail = &after[close + 2..];
        if let Some(a) = action.strip_suffix('-') {
            action = a;
            tail = tail.trim_start();
        }
        let action = action.trim();
        let value = match action {
            "name" => model.name.to_string(),
            "namespace" => model.namespace.to_string(),
            "target" => model.target.to_string(),
            "service" => model.service.to_string(),
            "ingress" => model.ingress.to_string(),
            "route" => model.route.to_string(),
            "interval" => model.interval.to_string(),
            a if a.starts_with("variables.") => {
                let key = &a["variables.".len()..];
                model.variables.get(key).cloned().ok_or_else(|| {
                    format!("template execution failed: map has no entry for key {key:?}")
                })?
            }
            a if a.starts_with("/*") => String::new(),
            a => {
                return Err(format!(
                    "template action {{{{ {a} }}}} is not supported (name, namespace, target, service, ingress, route, interval, variables.X)"
                ));
            }
        };
        out.push_str(&value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

impl FlaggerDocs {
    /// How many Canaries.
    pub fn canaries(&self) -> usize {
        self.canaries.len()
    }
    /// How many MetricTemplates.
    pub fn templates(&self) -> usize {
        self.templates.len()
    }
    pub(crate) fn merge(&mut self, other: FlaggerDocs) {
        self.canaries.extend(other.canaries);
        self.templates.extend(other.templates);
    }

    pub(crate) fn add(
        &mut self,
        doc: &Document,
        notes: &mut Vec<String>,
    ) -> Result<(), PeersError> {
        let at = &doc.at;
        match at.kind.as_str() {
            "Canary" => {
                let raw: RawCanary = typed(at, "", &doc.value)?;
                check_canary(at, &raw, notes)?;
                self.canaries.push((at.clone(), raw));
            }
            "MetricTemplate" => {
                let raw: RawMetricTemplate = typed(at, "", &doc.value)?;
                if raw.spec.provider.type_ != "prometheus" {
                    return Err(PeersError::unsupported(
                        at,
                        "spec.provider.type",
                        format!(
                            "{:?}: only prometheus metric templates are simulated",
                            raw.spec.provider.type_
                        ),
                    ));
                }
                if raw.spec.query.trim().is_empty() {
                    return Err(PeersError::field(at, "spec.query", "empty query"));
                }
                self.templates.push((at.clone(), raw));
            }
            _ => unreachable!("caller dispatches by kind"),
        }
        Ok(())
    }

    /// The single Canary in the files, checks rendered.
    pub fn plan(&self) -> Result<CanaryPlan, PeersError> {
        let (at, raw) = match self.canaries.as_slice() {
            [one] => one,
            [] => {
                return Err(PeersError::File {
                    file: self
                        .templates
                        .first()
                        .map(|(a, _)| a.file.clone())
                        .unwrap_or_default(),
                    problem: "no Canary in the Flagger file(s)".into(),
                });
            }
            many => {
                return Err(PeersError::File {
                    file: many[0].0.file.clone(),
                    problem: format!("{} Canaries; give one Canary per analysis", many.len()),
                });
            }
        };
        let a = raw
            .spec
            .analysis
            .clone()
            .or_else(|| raw.spec.canary_analysis.clone())
            .unwrap_or_default();
        let field = if raw.spec.analysis.is_some() {
            "spec.analysis"
        } else {
            "spec.canaryAnalysis"
        };
        let interval = match parse_go_duration(&a.interval) {
            Ok(d) => d.max(Duration::from_secs(10)),
            Err(_) => Duration::from_secs(60), // GetAnalysisInterval falls back to 60 s
        };
        let threshold = if a.threshold > 0 {
            a.threshold.min(i64::from(u32::MAX)) as u32
        } else {
            1
        };
        let strategy = if a.iterations > 0 {
            Strategy::BlueGreen {
                iterations: a.iterations.min(i64::from(u32::MAX)) as u32,
            }
        } else {
            let step_weights: Vec<u32> = a
                .step_weights
                .iter()
                .map(|w| (*w).clamp(0, 100) as u32)
                .collect();
            let max_weight = match step_weights.last() {
                Some(last) => (*last).min(100),
                None if a.max_weight > 0 => a.max_weight as u32,
                None => 100,
            };
            let step_weight = a.step_weight.max(0) as u32;
            if step_weight == 0 && step_weights.is_empty() {
                return Err(PeersError::field(
                    at,
                    format!("{field}.stepWeight"),
                    "no stepWeight, stepWeights or iterations: the canary would never advance",
                ));
            }
            Strategy::Canary {
                step_weight,
                step_weights,
                max_weight,
            }
        };
        let namespace = if raw.metadata.namespace.is_empty() {
            "default"
        } else {
            raw.metadata.namespace.as_str()
        };
        let target = raw.spec.target_ref.name.as_str();
        let service = if raw.spec.service.name.is_empty() {
            target
        } else {
            raw.spec.service.name.as_str()
        };
        let ingress = raw
            .spec
            .ingress_ref
            .as_ref()
            .map_or(target, |r| r.name.as_str());
        let route = raw
            .spec
            .route_ref
            .as_ref()
            .map_or(target, |r| r.name.as_str());
        let provider = if raw.spec.provider.is_empty() {
            "istio"
        } else {
            raw.spec.provider.as_str()
        };
        let mut builtin = Vec::new();
        let mut templated = Vec::new();
        for (i, m) in a.metrics.iter().enumerate() {
            let mfield = format!("{field}.metrics[{i}]");
            let interval_s = if m.interval.is_empty() {
                "1m"
            } else {
                m.interval.as_str()
            };
            let model = Model {
                name: &raw.metadata.name,
                namespace,
                target,
                service,
                ingress,
                route,
                interval: interval_s,
                variables: &m.template_variables,
            };
            let bounds = match &m.threshold_range {
                Some(r) => Bounds::Range {
                    min: r.min,
                    max: r.max,
                },
                None => Bounds::Threshold(m.threshold),
            };
            let builtin_kind = match m.name.as_str() {
                "request-success-rate" => Some((CheckKind::SuccessRate, ISTIO_SUCCESS_RATE)),
                "request-duration" => Some((CheckKind::Duration, ISTIO_DURATION)),
                _ => None,
            };
            if let Some((kind, tmpl)) = builtin_kind {
                if provider != "istio" {
                    return Err(PeersError::unsupported(
                        at,
                        "spec.provider",
                        format!(
                            "{provider:?}: built-in checks are simulated for istio only ({mfield} is {:?})",
                            m.name
                        ),
                    ));
                }
                let query = render(tmpl, &model).map_err(|e| PeersError::field(at, &mfield, e))?;
                builtin.push(Check {
                    name: m.name.clone(),
                    kind,
                    query,
                    bounds,
                });
            } else if !m.query.is_empty() {
                let query = render(&m.query, &model)
                    .map_err(|e| PeersError::field(at, format!("{mfield}.query"), e))?;
                builtin.push(Check {
                    name: m.name.clone(),
                    kind: CheckKind::Query,
                    query,
                    bounds,
                });
            }
            if let Some(r) = &m.template_ref {
                let ns = if r.namespace.is_empty() {
                    namespace
                } else {
                    r.namespace.as_str()
                };
                let found = self.templates.iter().find(|(_, t)| {
                    t.metadata.name == r.name
                        && (t.metadata.namespace.is_empty() || t.metadata.namespace == ns)
                });
                let Some((tat, t)) = found else {
                    return Err(PeersError::field(
                        at,
                        format!("{mfield}.templateRef"),
                        format!(
                            "MetricTemplate {:?} (namespace {ns}) is not in the given files",
                            r.name
                        ),
                    ));
                };
                let query = render(&t.spec.query, &model)
                    .map_err(|e| PeersError::field(tat, "spec.query", e))?;
                templated.push(Check {
                    name: m.name.clone(),
                    kind: CheckKind::Query,
                    query,
                    bounds,
                });
            } else if builtin_kind.is_none() && m.query.is_empty() {
                templated.push(Check {
                    name: m.name.clone(),
                    kind: CheckKind::AlwaysFails,
                    query: String::new(),
                    bounds,
                });
            }
        }
        builtin.extend(templated);
        Ok(CanaryPlan {
            name: raw.metadata.name.clone(),
            interval,
            threshold,
            strategy,
            checks: builtin,
        })
    }
}

fn check_canary(at: &Location, raw: &RawCanary, notes: &mut Vec<String>) -> Result<(), PeersError> {
    let Some(a) = raw
        .spec
        .analysis
        .as_ref()
        .or(raw.spec.canary_analysis.as_ref())
    else {
        return Err(PeersError::unsupported(
            at,
            "spec.analysis",
            "no analysis: Flagger promotes without checks",
        ));
    };
    if raw.spec.skip_analysis {
        return Err(PeersError::unsupported(
            at,
            "spec.skipAnalysis",
            "true: Flagger promotes without checks",
        ));
    }
    if !a.match_.is_empty() && a.iterations > 0 {
        return Err(PeersError::unsupported(
            at,
            "spec.analysis.match",
            "A/B testing routes requests by header or cookie; the simulation has no request headers",
        ));
    }
    if a.mirror {
        return Err(PeersError::unsupported(
            at,
            "spec.analysis.mirror",
            "mirrored traffic is not simulated",
        ));
    }
    if raw.spec.target_ref.name.is_empty() {
        return Err(PeersError::field(at, "spec.targetRef.name", "missing"));
    }
    if !a.webhooks.is_empty() {
        let names: Vec<String> = a
            .webhooks
            .iter()
            .map(|w| {
                format!(
                    "{} ({})",
                    w.name,
                    if w.type_.is_empty() {
                        "rollout"
                    } else {
                        &w.type_
                    }
                )
            })
            .collect();
        notes.push(format!(
            "{at}: spec.analysis.webhooks read and ignored: {} (gates and load tests always pass)",
            names.join(", ")
        ));
    }
    if !a.alerts.is_empty() {
        notes.push(format!("{at}: spec.analysis.alerts read and ignored"));
    }
    if a.session_affinity.is_some() {
        notes.push(format!(
            "{at}: spec.analysis.sessionAffinity read and ignored"
        ));
    }
    if a.step_weight_promotion > 0 {
        notes.push(format!(
            "{at}: spec.analysis.stepWeightPromotion read and ignored (the decision is made when the primary is promoted)"
        ));
    }
    if raw.spec.autoscaler_ref.is_some() {
        notes.push(format!("{at}: spec.autoscalerRef read and ignored"));
    }
    if raw.spec.progress_deadline_seconds.is_some() {
        notes.push(format!("{at}: spec.progressDeadlineSeconds read and ignored (pods are ready when the driver says so)"));
    }
    if !raw.spec.target_ref.kind.is_empty() && raw.spec.target_ref.kind != "Deployment" {
        notes.push(format!(
            "{at}: spec.targetRef.kind {} treated as a Deployment",
            raw.spec.target_ref.kind
        ));
    }
    let builtins = a
        .metrics
        .iter()
        .any(|m| m.name == "request-success-rate" || m.name == "request-duration");
    if raw.spec.provider.is_empty() && builtins {
        notes.push(format!(
            "{at}: no spec.provider: Flagger uses its installation's mesh provider; the built-in checks are Istio's here"
        ));
    }
    if raw.metadata.namespace.is_empty() {
        notes.push(format!(
            "{at}: no metadata.namespace: queries use namespace \"default\""
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_template_rendering() {
        let vars: BTreeMap<String, String> =
            [("direction".to_string(), "inbound".to_string())].into();
        let m = Model {
            name: "podinfo",
            namespace: "test",
            target: "podinfo",
            service: "podinfo",
            ingress: "podinfo",
            route: "podinfo",
            interval: "1m",
            variables: &vars,
        };
        assert_eq!(
            render(
                "x{namespace=\"{{ namespace }}\",d=\"{{ variables.direction }}\"}[{{interval}}]",
                &m
            ),
            Ok("x{namespace=\"test\",d=\"inbound\"}[1m]".to_string())
        );
        assert_eq!(
            render("a {{- target -}} b", &m),
            Ok("apodinfob".to_string())
        );
        assert!(render("{{ variables.missing }}", &m).is_err());
        assert!(render("{{ if true }}x{{ end }}", &m).is_err());
    }

    /// Expected outputs from Go's text/template (go1.19) with Flagger's
    /// functions and missingkey=error, as render.go RenderQuery sets it up.
    #[test]
    fn renders_as_go_text_template_does() {
        let vars: BTreeMap<String, String> =
            [("direction".to_string(), "inbound".to_string())].into();
        let m = Model {
            name: "catalog",
            namespace: "shop",
            target: "catalog",
            service: "catalog-svc",
            ingress: "catalog-ing",
            route: "catalog-route",
            interval: "2m",
            variables: &vars,
        };
        assert_eq!(
            render(ISTIO_SUCCESS_RATE, &m).as_deref(),
            Ok(
                "\n\tsum(\n\t\trate(\n\t\t\tistio_requests_total{\n\t\t\t\treporter=\"destination\",\n\t\t\t\tdestination_workload_namespace=\"shop\",\n\t\t\t\tdestination_workload=~\"catalog\",\n\t\t\t\tresponse_code!~\"5.*\"\n\t\t\t}[2m]\n\t\t)\n\t) \n\t/ \n\tsum(\n\t\trate(\n\t\t\tistio_requests_total{\n\t\t\t\treporter=\"destination\",\n\t\t\t\tdestination_workload_namespace=\"shop\",\n\t\t\t\tdestination_workload=~\"catalog\"\n\t\t\t}[2m]\n\t\t)\n\t) \n\t* 100"
            )
        );
        assert_eq!(
            render(ISTIO_DURATION, &m).as_deref(),
            Ok(
                "\n\thistogram_quantile(\n\t\t0.99,\n\t\tsum(\n\t\t\trate(\n\t\t\t\tistio_request_duration_milliseconds_bucket{\n\t\t\t\t\treporter=\"destination\",\n\t\t\t\t\tdestination_workload_namespace=\"shop\",\n\t\t\t\t\tdestination_workload=~\"catalog\"\n\t\t\t\t}[2m]\n\t\t\t)\n\t\t) by (le)\n\t)"
            )
        );
        assert_eq!(render("x{n=\"{{ name }}\",ns=\"{{namespace}}\",t=\"{{ target }}\",s=\"{{ service }}\",i=\"{{ ingress }}\",r=\"{{ route }}\",d=\"{{ variables.direction }}\"}[{{ interval }}]\n  {{- target -}}\n", &m).as_deref(), Ok("x{n=\"catalog\",ns=\"shop\",t=\"catalog\",s=\"catalog-svc\",i=\"catalog-ing\",r=\"catalog-route\",d=\"inbound\"}[2m]catalog"));
        assert_eq!(
            render(
                "a  {{- target }}  b {{ target -}}\n\n c {{/* comment */}} d",
                &m
            )
            .as_deref(),
            Ok("acatalog  b catalogc  d")
        );
    }
}
