//! Kayenta's Prometheus query building, as a pure function.
//!
//! [`build_query`] turns one metric of a canary config and one scope (the
//! control's or the experiment's) into the PromQL string Kayenta's
//! `PrometheusMetricsService.buildQuery` would send to `/api/v1/query_range`.
//! It does no I/O; fetching is the `prom` crate's job.
//!
//! Kayenta's rules, in order:
//!
//! 1. The filter template is chosen: `customInlineTemplate` if set, else the
//!    config's `templates[customFilterTemplate]` (an unknown name is an
//!    error). `$\{` escapes are turned back into `${`.
//! 2. The template is expanded with the scope's variables: `project`,
//!    `resourceType`, `scope`, `location` from the scope, then the query's
//!    own `resourceType`, then the scope's extended parameters (later ones
//!    win). An unresolved variable is an error, as FreeMarker makes it.
//! 3. If the expansion starts with `PromQL:`, the rest is the whole query,
//!    verbatim (this also holds for a named filter template).
//! 4. Otherwise the query is `avg(metricName{FILTER,labelBindings...})`
//!    followed by ` by (groupByFields)` when there are any, where FILTER is
//!    the expansion split on `,`.
//!
//! Where this deviates from Kayenta (all documented in the crate README):
//! - `customFilter` (deprecated; current Kayenta rejects it) is accepted as
//!   older Kayenta did, as the label filter, and expanded like a template;
//! - only `${name}` variables are expanded: FreeMarker's other syntax
//!   (`${x!default}`, directives) is reported as an error instead of run;
//! - the `gce_instance` / `aws_ec2_instance` resource types, which make
//!   Kayenta add zone and instance-group filters, are not supported: a
//!   metric without a filter or template is an error that says so.

use std::collections::BTreeMap;

use judge::CanaryConfig;
use judge::config::MetricQuery;

/// The prefix that marks a template's expansion as a complete PromQL query.
pub const PROMQL_PREFIX: &str = "PromQL:";

/// One side of the comparison, as Kayenta's `PrometheusCanaryScope` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeVars {
    /// `${scope}`: which instances to read, e.g. the `version` label value
    /// `baseline` or `canary`.
    pub scope: String,
    /// `${location}`, e.g. a region; empty means unset.
    pub location: String,
    /// `${project}`; empty means unset.
    pub project: String,
    /// `${resourceType}`; empty means unset.
    pub resource_type: String,
    /// Kayenta's `extendedScopeParams`: any other `${name}`; they override
    /// the fields above.
    pub extra: BTreeMap<String, String>,
}

impl ScopeVars {
    /// A scope with only `${scope}` set.
    pub fn new(scope: impl Into<String>) -> Self {
        ScopeVars {
            scope: scope.into(),
            ..Default::default()
        }
    }

    /// Sets `${location}`.
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = location.into();
        self
    }

    /// Adds an extended scope parameter.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The template bindings, in Kayenta's precedence order.
    fn bindings(&self, query: &MetricQuery) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for (name, value) in [
            ("project", &self.project),
            ("resourceType", &self.resource_type),
            ("scope", &self.scope),
            ("location", &self.location),
        ] {
            if !value.is_empty() {
                vars.insert(name.to_string(), value.clone());
            }
        }
        // The query config's own bean properties, leniently (Kayenta's
        // PrometheusCanaryMetricSetQueryConfig only has resourceType of the four).
        if let Some(serde_json::Value::String(rt)) = query.other.get("resourceType")
            && !rt.is_empty()
        {
            vars.insert("resourceType".to_string(), rt.clone());
        }
        for (name, value) in &self.extra {
            vars.insert(name.clone(), value.clone());
        }
        vars
    }
}

/// Why a metric's query could not be built; every variant names the metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The metric index is past the end of the config's metrics.
    #[error("the canary config has no metric number {index} (it has {count})")]
    NoSuchMetric {
        /// The index asked for.
        index: usize,
        /// How many metrics the config has.
        count: usize,
    },
    /// The metric's query is for another metrics store.
    #[error("metric \"{metric}\": query type \"{kind}\" is not \"prometheus\"")]
    NotPrometheus {
        /// The metric's name.
        metric: String,
        /// The query's `type`.
        kind: String,
    },
    /// `customFilterTemplate` names a template the config does not define.
    #[error(
        "metric \"{metric}\": customFilterTemplate \"{template}\" is not defined under \"templates\""
    )]
    UnknownTemplate {
        /// The metric's name.
        metric: String,
        /// The template name looked up.
        template: String,
    },
    /// The template uses a `${variable}` the scope does not set.
    #[error(
        "metric \"{metric}\": variable ${{{variable}}} is not set for scope \"{scope}\" (known: {known})"
    )]
    UnresolvedVariable {
        /// The metric's name.
        metric: String,
        /// The variable's name, without `${}`.
        variable: String,
        /// The scope the query was built for.
        scope: String,
        /// The variables that are set, comma-separated.
        known: String,
    },
    /// The template is malformed or uses FreeMarker beyond plain variables.
    #[error("metric \"{metric}\": bad template {template:?}: {reason}")]
    BadTemplate {
        /// The metric's name.
        metric: String,
        /// The template text.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The metric has no template, filter or `metricName`.
    #[error(
        "metric \"{metric}\" has neither customInlineTemplate, customFilterTemplate nor metricName, so there is no query to send"
    )]
    NothingToQuery {
        /// The metric's name.
        metric: String,
    },
    /// `metricName` is set but nothing filters it to the scope.
    #[error(
        "metric \"{metric}\": metricName \"{metric_name}\" needs a scope filter (customInlineTemplate or customFilterTemplate with ${{scope}}); Kayenta's resourceType filters are not supported here"
    )]
    NoScopeFilter {
        /// The metric's name.
        metric: String,
        /// The query's `metricName`.
        metric_name: String,
    },
    /// The filter is not a whole `PromQL:` query and there is no
    /// `metricName` to apply it to.
    #[error(
        "metric \"{metric}\": the filter {filter:?} is not a complete query (no \"PromQL:\" prefix) and there is no metricName to apply it to"
    )]
    NoMetricName {
        /// The metric's name.
        metric: String,
        /// The expanded filter.
        filter: String,
    },
}

/// Builds the PromQL Kayenta would send for metric `metric_index` of
/// `config` and one scope. See the module docs for the rules.
pub fn build_query(
    config: &CanaryConfig,
    metric_index: usize,
    scope: &ScopeVars,
) -> Result<String, QueryError> {
    let metric = config
        .metrics
        .get(metric_index)
        .ok_or(QueryError::NoSuchMetric {
            index: metric_index,
            count: config.metrics.len(),
        })?;
    let name = metric.name.clone();
    let query = &metric.query;
    if let Some(kind) = &query.kind
        && kind != "prometheus"
    {
        return Err(QueryError::NotPrometheus {
            metric: name,
            kind: kind.clone(),
        });
    }

    let template = match (
        non_empty(&query.custom_inline_template),
        non_empty(&query.custom_filter_template),
        non_empty(&query.custom_filter),
    ) {
        (Some(inline), _, _) => Some(inline.to_string()),
        (None, Some(template), _) => Some(
            config
                .templates
                .get(template)
                .ok_or_else(|| QueryError::UnknownTemplate {
                    metric: name.clone(),
                    template: template.to_string(),
                })?
                .clone(),
        ),
        (None, None, Some(filter)) => Some(filter.to_string()),
        (None, None, None) => None,
    };
    let filter = match template {
        Some(t) => Some(expand(&name, &t, &scope.bindings(query), &scope.scope)?),
        None => None,
    };

    if let Some(f) = &filter
        && let Some(promql) = f.strip_prefix(PROMQL_PREFIX)
    {
        return Ok(promql.to_string());
    }

    let Some(metric_name) = non_empty(&query.metric_name) else {
        return Err(match filter {
            Some(filter) => QueryError::NoMetricName {
                metric: name,
                filter,
            },
            None => QueryError::NothingToQuery { metric: name },
        });
    };
    let Some(filter) = filter.filter(|f| !f.is_empty()) else {
        return Err(QueryError::NoScopeFilter {
            metric: name,
            metric_name: metric_name.to_string(),
        });
    };

    let matchers: Vec<&str> = filter
        .split(',')
        .chain(query.label_bindings.iter().map(String::as_str))
        .collect();
    let mut promql = format!("avg({metric_name}{{{}}})", matchers.join(","));
    if !query.group_by_fields.is_empty() {
        promql.push_str(&format!(" by ({})", query.group_by_fields.join(",")));
    }
    Ok(promql)
}

fn non_empty(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

/// Expands `${name}` variables; `$\{` is Kayenta's escape for a literal-looking
/// `${` in stored configs and is unescaped first, as Kayenta does.
fn expand(
    metric: &str,
    template: &str,
    vars: &BTreeMap<String, String>,
    scope: &str,
) -> Result<String, QueryError> {
    let text = template.replace("$\\{", "${");
    let bad = |reason: String| QueryError::BadTemplate {
        metric: metric.to_string(),
        template: template.to_string(),
        reason,
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| bad(format!("unterminated \"${{\" at byte {start}")))?;
        let variable = after[..end].trim();
        if variable.is_empty()
            || !variable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad(format!(
                "\"${{{variable}}}\" is not a plain variable name (FreeMarker expressions are not supported)"
            )));
        }
        let value = vars
            .get(variable)
            .ok_or_else(|| QueryError::UnresolvedVariable {
                metric: metric.to_string(),
                variable: variable.to_string(),
                scope: scope.to_string(),
                known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the simulator's PromQL for one metric of a canary config comes
/// from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MetricSource {
    /// The metric's own Prometheus query, built per scope with Kayenta's
    /// rules ([`build_query`]).
    Prometheus,
    /// A PromQL template with `${scope}` (from `[analysis.signals]`, for a
    /// metric of another metric store, or a named signal expanded by
    /// [`signal_template`]).
    Template(String),
}

/// The signal names `[analysis.signals]` accepts besides PromQL.
pub const SIGNAL_NAMES: &str =
    "latency_quantile:Q, latency_mean, error_ratio, error_rate, request_rate, cpu, memory";

/// A named signal as the PromQL it stands for, over goldengoose's families
/// (renamed as `telemetry` says), with `${scope}` for the `version` label
/// and `[window]` rate ranges; `None` if `name` is not one.
pub fn signal_template(
    name: &str,
    telemetry: &crate::Telemetry,
    rate_window_s: f64,
) -> Result<Option<String>, String> {
    let m = |family: &str| telemetry.metric(family).to_owned();
    let scope = format!("{}=\"${{scope}}\"", telemetry.label("version"));
    let errors = format!("{}=~\"5..\"", telemetry.label("code"));
    let ms = (rate_window_s * 1000.0).round() as i64;
    let w = if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    };
    let rate = |family: &str, extra: &str| format!("rate({}{{{scope}{extra}}}[{w}])", m(family));
    Ok(Some(match name {
        "latency_mean" => format!(
            "sum({}) / sum({})",
            rate("http_request_duration_seconds_sum", ""),
            rate("http_request_duration_seconds_count", "")
        ),
        "error_ratio" => format!(
            "sum({}) / sum({})",
            rate("http_requests_total", &format!(",{errors}")),
            rate("http_requests_total", "")
        ),
        "error_rate" => format!(
            "sum({})",
            rate("http_requests_total", &format!(",{errors}"))
        ),
        "request_rate" => format!("sum({})", rate("http_requests_total", "")),
        "cpu" => format!("avg({})", rate("process_cpu_seconds_total", "")),
        "memory" => format!("avg({}{{{scope}}})", m("process_resident_memory_bytes")),
        other => match other
            .strip_prefix("latency_quantile:")
            .map(str::parse::<f64>)
        {
            Some(Ok(q)) if q > 0.0 && q < 1.0 => format!(
                "histogram_quantile({q}, sum by (le) ({}))",
                rate("http_request_duration_seconds_bucket", "")
            ),
            Some(_) => {
                return Err(format!(
                    "\"{other}\": the quantile must be a number in (0, 1)"
                ));
            }
            None => return Ok(None),
        },
    }))
}

/// Whether Kayenta reads `metric` from Prometheus (its type, or no type
/// and a Prometheus-style query).
pub fn is_prometheus(metric: &judge::MetricConfig) -> bool {
    let q = &metric.query;
    q.kind.as_deref() == Some("prometheus")
        || (q.kind.is_none()
            && (q.metric_name.is_some()
                || q.custom_inline_template.is_some()
                || q.custom_filter_template.is_some()
                || q.custom_filter.is_some()))
}

/// The PromQL the simulator evaluates for metric `i` of `config` from
/// `source`, for one scope.
pub fn metric_query(
    config: &CanaryConfig,
    i: usize,
    source: &MetricSource,
    scope: &ScopeVars,
) -> Result<String, QueryError> {
    match source {
        MetricSource::Prometheus => build_query(config, i, scope),
        MetricSource::Template(t) => {
            let name = config.metrics.get(i).map_or("", |m| m.name.as_str());
            let mut vars = BTreeMap::new();
            vars.insert("scope".to_string(), scope.scope.clone());
            for (k, v) in &scope.extra {
                vars.insert(k.clone(), v.clone());
            }
            let text = expand(name, t, &vars, &scope.scope)?;
            Ok(text
                .strip_prefix(PROMQL_PREFIX)
                .map_or(text.clone(), str::to_string))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> CanaryConfig {
        CanaryConfig::from_json(json).expect("test config parses")
    }

    fn one_metric(query: &str, templates: &str) -> CanaryConfig {
        config(&format!(
            r#"{{"metrics":[{{"name":"m","query":{query},"groups":["g"],
                "analysisConfigurations":{{"canary":{{"direction":"increase"}}}}}}],
                "templates":{templates}}}"#
        ))
    }

    fn repo_file(path: &str) -> CanaryConfig {
        let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&full).expect("repo config readable");
        CanaryConfig::from_json(&text).expect("repo config parses")
    }

    #[test]
    fn kayenta_style_metric_name_with_filter_template_and_bindings() {
        // The shape of Kayenta's own Prometheus example configs.
        let c = one_metric(
            r#"{"type":"prometheus","metricName":"container_cpu_usage_seconds_total",
                "labelBindings":["container=\"app\""],"groupByFields":["pod","zone"],
                "customFilterTemplate":"my-template"}"#,
            r#"{"my-template":"namespace=\"${location}\",app=\"${scope}\""}"#,
        );
        let scope = ScopeVars::new("myapp-canary").with_location("prod");
        assert_eq!(
            build_query(&c, 0, &scope).expect("builds"),
            r#"avg(container_cpu_usage_seconds_total{namespace="prod",app="myapp-canary",container="app"}) by (pod,zone)"#
        );
    }

    #[test]
    fn inline_template_wins_over_filter_template() {
        let c = one_metric(
            r#"{"type":"prometheus","metricName":"up","customInlineTemplate":"job=\"${scope}\"",
                "customFilterTemplate":"other"}"#,
            r#"{"other":"job=\"y\""}"#,
        );
        assert_eq!(
            build_query(&c, 0, &ScopeVars::new("x")).expect("builds"),
            r#"avg(up{job="x"})"#
        );
    }

    #[test]
    fn promql_prefix_in_a_named_template_is_a_whole_query() {
        let c = one_metric(
            r#"{"type":"prometheus","customFilterTemplate":"q"}"#,
            r#"{"q":"PromQL:sum(rate(x{track=\"${scope}\",region=\"${region}\"}[1m]))"}"#,
        );
        let scope = ScopeVars::new("canary").with_var("region", "eu");
        assert_eq!(
            build_query(&c, 0, &scope).expect("builds"),
            r#"sum(rate(x{track="canary",region="eu"}[1m]))"#
        );
    }

    #[test]
    fn escaped_dollar_brace_is_unescaped_like_kayenta() {
        let c = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"PromQL:up{v=\"$\\{scope}\"}"}"#,
            "{}",
        );
        assert_eq!(
            build_query(&c, 0, &ScopeVars::new("b")).expect("builds"),
            r#"up{v="b"}"#
        );
    }

    #[test]
    fn extended_params_override_scope_fields() {
        let c = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"PromQL:up{l=\"${location}\"}"}"#,
            "{}",
        );
        let scope = ScopeVars::new("s")
            .with_location("a")
            .with_var("location", "b");
        assert_eq!(build_query(&c, 0, &scope).expect("builds"), r#"up{l="b"}"#);
    }

    #[test]
    fn deprecated_custom_filter_is_used_as_the_filter() {
        let c = one_metric(
            r#"{"type":"prometheus","metricName":"m_total","customFilter":"version=\"${scope}\""}"#,
            "{}",
        );
        assert_eq!(
            build_query(&c, 0, &ScopeVars::new("canary")).expect("builds"),
            r#"avg(m_total{version="canary"})"#
        );
    }

    #[test]
    fn examples_canary_config_builds_every_metric() {
        let c = repo_file("examples/canary-config.json");
        let scope = ScopeVars::new("canary");
        let queries: Vec<String> = (0..c.metrics.len())
            .map(|i| build_query(&c, i, &scope).expect("builds"))
            .collect();
        assert_eq!(
            queries[0],
            r#"histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[1m])))"#
        );
        assert_eq!(
            queries[2],
            r#"sum(rate(http_requests_total{version="canary",code=~"5.."}[1m])) / sum(rate(http_requests_total{version="canary"}[1m]))"#
        );
        // metricName + customFilterTemplate "by-version", no label bindings.
        assert_eq!(
            queries[3],
            r#"avg(process_cpu_seconds_total{version="canary"})"#
        );
    }

    #[test]
    fn catalog_canary_config_builds_every_metric_for_both_scopes() {
        let c = repo_file("scenarios/catalog/canary-config.json");
        for scope in ["baseline", "canary"] {
            for i in 0..c.metrics.len() {
                let q = build_query(&c, i, &ScopeVars::new(scope)).expect("builds");
                assert!(q.contains(&format!("version=\"{scope}\"")), "{q}");
                assert!(!q.contains("${"), "{q}");
            }
        }
        assert_eq!(
            build_query(&c, 4, &ScopeVars::new("baseline")).expect("builds"),
            r#"avg(process_resident_memory_bytes{version="baseline"})"#
        );
    }

    #[test]
    fn unknown_template_is_named() {
        // CanaryConfig::from_json already refuses this; a config built in
        // code can still get here.
        let mut c = one_metric(
            r#"{"type":"prometheus","metricName":"x","customFilterTemplate":"nope"}"#,
            r#"{"nope":"a=\"b\""}"#,
        );
        c.templates.clear();
        let err = build_query(&c, 0, &ScopeVars::new("s")).expect_err("fails");
        assert_eq!(
            err,
            QueryError::UnknownTemplate {
                metric: "m".into(),
                template: "nope".into()
            }
        );
        assert!(err.to_string().contains("\"nope\""));
    }

    #[test]
    fn unresolved_variable_is_named() {
        let c = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"PromQL:up{a=\"${cluster}\"}"}"#,
            "{}",
        );
        let err = build_query(&c, 0, &ScopeVars::new("s")).expect_err("fails");
        assert!(
            matches!(&err, QueryError::UnresolvedVariable { variable, .. } if variable == "cluster")
        );
        assert!(err.to_string().contains("${cluster}"), "{err}");
    }

    #[test]
    fn freemarker_expressions_are_refused() {
        let c = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"PromQL:up{a=\"${x!\"d\"}\"}"}"#,
            "{}",
        );
        let err = build_query(&c, 0, &ScopeVars::new("s")).expect_err("fails");
        assert!(matches!(err, QueryError::BadTemplate { .. }), "{err}");
        let c = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"PromQL:up{a=\"${scope"}"#,
            "{}",
        );
        let err = build_query(&c, 0, &ScopeVars::new("s")).expect_err("fails");
        assert!(err.to_string().contains("unterminated"), "{err}");
    }

    #[test]
    fn metrics_without_a_usable_query_are_errors() {
        let none = config(
            r#"{"metrics":[{"name":"m","groups":["g"],"analysisConfigurations":{"canary":{"direction":"increase"}}}]}"#,
        );
        assert_eq!(
            build_query(&none, 0, &ScopeVars::new("s")),
            Err(QueryError::NothingToQuery { metric: "m".into() })
        );
        let empty = one_metric(r#"{"type":"prometheus"}"#, "{}");
        assert_eq!(
            build_query(&empty, 0, &ScopeVars::new("s")),
            Err(QueryError::NothingToQuery { metric: "m".into() })
        );
        let no_filter = one_metric(
            r#"{"type":"prometheus","metricName":"up","labelBindings":["a=\"b\""]}"#,
            "{}",
        );
        assert!(matches!(
            build_query(&no_filter, 0, &ScopeVars::new("s")),
            Err(QueryError::NoScopeFilter { .. })
        ));
        let no_name = one_metric(
            r#"{"type":"prometheus","customInlineTemplate":"a=\"${scope}\""}"#,
            "{}",
        );
        assert!(matches!(
            build_query(&no_name, 0, &ScopeVars::new("s")),
            Err(QueryError::NoMetricName { .. })
        ));
        let stackdriver = one_metric(r#"{"type":"stackdriver","metricType":"x"}"#, "{}");
        assert!(matches!(
            build_query(&stackdriver, 0, &ScopeVars::new("s")),
            Err(QueryError::NotPrometheus { .. })
        ));
        assert_eq!(
            build_query(&stackdriver, 3, &ScopeVars::new("s")),
            Err(QueryError::NoSuchMetric { index: 3, count: 1 })
        );
    }
}
