//! `canarylab cluster render --serve`: the documented manifests of
//! `deploy/serve/kubernetes.yaml`, rendered with a namespace, an image, a
//! Prometheus, the user's canary configs, and with or without the token.
//!
//! The file is the single source: it is embedded and edited line by line
//! (each edit checks that the line it edits is there), so what the command
//! prints is the file a user reads in the repository, plus only the
//! requested changes. Not for: templating anything else of the file (edit
//! a copy of it), or talking to a cluster.

use super::ServeError;

/// `deploy/serve/kubernetes.yaml`, as documented.
pub const KUBERNETES_YAML: &str = include_str!("../../../deploy/serve/kubernetes.yaml");

/// The image the file names.
pub const DEFAULT_IMAGE: &str = "canarylab/serve:latest";
/// The Prometheus the file names.
pub const DEFAULT_PROMETHEUS: &str = "http://prometheus-server.monitoring.svc:80";

/// What to change in the documented manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOptions {
    /// `metadata.namespace` of every object; `None` leaves it to `kubectl -n`.
    pub namespace: Option<String>,
    /// The container image.
    pub image: String,
    /// `--prometheus` of the server.
    pub prometheus: String,
    /// Keep the bearer token (Secret, `--token-file`, its volume). Kayenta's
    /// remote judge and Flagger's webhooks send no token: `false` for them.
    pub token: bool,
    /// Canary configs for the ConfigMap, as (file name, JSON text); empty
    /// keeps the file's examples.
    pub configs: Vec<(String, String)>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            namespace: None,
            image: DEFAULT_IMAGE.to_string(),
            prometheus: DEFAULT_PROMETHEUS.to_string(),
            token: true,
            configs: Vec::new(),
        }
    }
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> ServeError {
    ServeError::Render {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A Kubernetes object name (DNS-1123 label).
fn check_label(field: &str, name: &str) -> Result<(), ServeError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!(
                "{name:?} is not a namespace name (a-z, 0-9, '-', at most 63, no '-' at either end)"
            ),
        ))
    }
}

/// Replaces the one line equal to `old` with `new`.
fn replace_line(text: &str, old: &str, new: &str) -> Result<String, ServeError> {
    let mut found = 0;
    let out: Vec<&str> = text
        .split('\n')
        .map(|line| {
            if line == old {
                found += 1;
                new
            } else {
                line
            }
        })
        .collect();
    if found == 1 {
        Ok(out.join("\n"))
    } else {
        Err(bad(
            "deploy/serve/kubernetes.yaml",
            format!("expected the line {old:?} once, found it {found} times"),
        ))
    }
}

/// Drops every line for which `drop` is true; `expected` lines must go.
fn drop_lines(
    text: &str,
    expected: usize,
    drop: impl Fn(&str) -> bool,
) -> Result<String, ServeError> {
    let kept: Vec<&str> = text.split('\n').filter(|l| !drop(l)).collect();
    let dropped = text.split('\n').count() - kept.len();
    if dropped == expected {
        Ok(kept.join("\n"))
    } else {
        Err(bad(
            "deploy/serve/kubernetes.yaml",
            format!("expected to drop {expected} lines of the token, found {dropped}"),
        ))
    }
}

/// A ConfigMap key: a config name (`NAME.json`, what `configName` finds).
fn check_config(name: &str, text: &str) -> Result<(), ServeError> {
    let stem = name.strip_suffix(".json").unwrap_or("");
    let valid = !stem.is_empty()
        && !stem.starts_with('.')
        && name.len() <= 200
        && stem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if !valid {
        return Err(bad(
            name,
            "a config file name must be NAME.json with letters, digits, '.', '_', '-' (POST /analyze finds it as configName NAME)",
        ));
    }
    judge::CanaryConfig::from_json(text)
        .map_err(|e| bad(name, format!("not a valid canary config: {e}")))?;
    Ok(())
}

/// The ConfigMap's `data:` with the given files as block scalars.
fn config_data(configs: &[(String, String)]) -> String {
    let mut data = String::from("data:\n");
    for (name, text) in configs {
        data.push_str(&format!("  {name}: |\n"));
        // JSON's leading whitespace is insignificant; the block scalar's
        // indentation is taken from its first line, which must not be deeper.
        for line in text.trim().lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                data.push('\n');
            } else {
                data.push_str("    ");
                data.push_str(line);
                data.push('\n');
            }
        }
    }
    data
}

/// The manifests of `deploy/serve/kubernetes.yaml` with `options` applied.
pub fn render(options: &DeployOptions) -> Result<String, ServeError> {
    let mut text = KUBERNETES_YAML.to_string();
    if options.image != DEFAULT_IMAGE {
        if options.image.is_empty() || options.image.chars().any(char::is_whitespace) {
            return Err(bad(
                "--image-serve",
                format!("{:?} is not an image", options.image),
            ));
        }
        text = replace_line(
            &text,
            &format!("          image: {DEFAULT_IMAGE}"),
            &format!("          image: {}", json_string(&options.image)),
        )?;
    }
    if options.prometheus != DEFAULT_PROMETHEUS {
        // Checked by shape only: the cluster's names do not resolve here.
        let host = options
            .prometheus
            .strip_prefix("http://")
            .map(|rest| rest.split('/').next().unwrap_or(""));
        if host.is_none_or(|h| h.is_empty() || h.contains('@'))
            || options
                .prometheus
                .chars()
                .any(|c| c.is_whitespace() || c == '"')
        {
            return Err(bad(
                "--prometheus",
                format!(
                    "{:?} is not http://HOST[:PORT][/PREFIX] (plain http, as `canarylab serve --prometheus` takes)",
                    options.prometheus
                ),
            ));
        }
        text = replace_line(
            &text,
            &format!("            - --prometheus={DEFAULT_PROMETHEUS}"),
            &format!(
                "            - {}",
                json_string(&format!("--prometheus={}", options.prometheus))
            ),
        )?;
    }
    if !options.token {
        let docs: Vec<&str> = text.split("\n---\n").collect();
        let kept: Vec<&str> = docs
            .iter()
            .copied()
            .filter(|d| !d.lines().any(|l| l == "kind: Secret"))
            .collect();
        if kept.len() + 1 != docs.len() {
            return Err(bad("deploy/serve/kubernetes.yaml", "expected one Secret"));
        }
        text = kept.join("\n---\n");
        text = drop_lines(&text, 4, |l| {
            l.trim_start().starts_with("- --token-file=")
                || l.contains("{ name: token, mountPath:")
                || l == "        - name: token"
                || l.contains("secret: { secretName: canarylab-serve-token }")
        })?;
    }
    if !options.configs.is_empty() {
        for (name, body) in &options.configs {
            check_config(name, body)?;
        }
        let mut names: Vec<&str> = options.configs.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(w[0], "two configs with this file name"));
        }
        let docs: Vec<String> = text.split("\n---\n").map(str::to_string).collect();
        let mut replaced = 0;
        let docs: Vec<String> = docs
            .into_iter()
            .map(|doc| {
                if !doc.lines().any(|l| l == "kind: ConfigMap") {
                    return doc;
                }
                let Some(at) = doc.find("\ndata:\n") else {
                    return doc;
                };
                replaced += 1;
                format!(
                    "{}\n{}",
                    &doc[..at],
                    config_data(&options.configs).trim_end()
                )
            })
            .collect();
        if replaced != 1 {
            return Err(bad(
                "deploy/serve/kubernetes.yaml",
                "expected one ConfigMap with data",
            ));
        }
        text = docs.join("\n---\n");
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    if let Some(namespace) = &options.namespace {
        check_label("--namespace", namespace)?;
        let mut out = String::with_capacity(text.len() + 128);
        let mut after_metadata = false;
        let mut objects = 0;
        for line in text.split_inclusive('\n') {
            out.push_str(line);
            if after_metadata && line.starts_with("  name: ") {
                out.push_str(&format!("  namespace: {namespace}\n"));
                objects += 1;
            }
            after_metadata = line == "metadata:\n";
        }
        if objects == 0 {
            return Err(bad(
                "deploy/serve/kubernetes.yaml",
                "no object to namespace",
            ));
        }
        text = out;
    }
    Ok(text)
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<serde_norway::Value> {
        use serde::Deserialize;
        serde_norway::Deserializer::from_str(yaml)
            .map(|d| serde_norway::Value::deserialize(d).expect("valid YAML"))
            .collect()
    }

    fn kind(doc: &serde_norway::Value) -> &str {
        doc["kind"].as_str().unwrap_or_default()
    }

    fn args(docs: &[serde_norway::Value]) -> Vec<String> {
        let deployment = docs
            .iter()
            .find(|d| kind(d) == "Deployment")
            .expect("deployment");
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn the_defaults_render_the_documented_file() {
        assert_eq!(
            render(&DeployOptions::default()).expect("renders"),
            KUBERNETES_YAML
        );
        let parsed = docs(KUBERNETES_YAML);
        let kinds: Vec<&str> = parsed.iter().map(kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", "Deployment", "Service"]);
    }

    #[test]
    fn the_options_change_only_their_lines() {
        let config = r#"  {"name":"shop","metrics":[{"name":"latency","groups":["g"],
            "analysisConfigurations":{"canary":{"direction":"increase"}}}],
            "classifier":{"groupWeights":{"g":100}}}"#;
        let options = DeployOptions {
            namespace: Some("canarylab".into()),
            image: "registry.example/serve:1.2".into(),
            prometheus: "http://prom.monitoring:9090/prefix".into(),
            token: false,
            configs: vec![("shop.json".into(), config.into())],
        };
        let yaml = render(&options).expect("renders");
        let parsed = docs(&yaml);
        let kinds: Vec<&str> = parsed.iter().map(kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Deployment", "Service"]);
        for doc in &parsed {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some("canarylab"),
                "{yaml}"
            );
        }
        let args = args(&parsed);
        assert!(args.contains(&"--prometheus=http://prom.monitoring:9090/prefix".to_string()));
        assert!(!args.iter().any(|a| a.contains("token")), "{args:?}");
        let deployment = &parsed[1];
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"].as_str(),
            Some("registry.example/serve:1.2")
        );
        assert_eq!(pod["volumes"].as_sequence().map(Vec::len), Some(1));
        assert_eq!(
            pod["containers"][0]["volumeMounts"]
                .as_sequence()
                .map(Vec::len),
            Some(1)
        );
        // The ConfigMap holds exactly the given config, which still parses.
        let data = parsed[0]["data"].as_mapping().expect("data");
        assert_eq!(data.len(), 1);
        let shop = parsed[0]["data"]["shop.json"].as_str().expect("shop.json");
        let back = judge::CanaryConfig::from_json(shop).expect("the config survives");
        assert_eq!(
            back,
            judge::CanaryConfig::from_json(config).expect("config")
        );
        // Nothing else changed: the Service is the file's.
        let original = docs(KUBERNETES_YAML);
        let mut service = parsed[2].clone();
        service["metadata"]
            .as_mapping_mut()
            .expect("metadata")
            .remove("namespace");
        assert_eq!(service, original[3]);
    }

    #[test]
    fn a_namespace_alone_adds_one_line_per_object() {
        let options = DeployOptions {
            namespace: Some("ns-1".into()),
            ..DeployOptions::default()
        };
        let yaml = render(&options).expect("renders");
        assert_eq!(yaml.matches("\n  namespace: ns-1\n").count(), 4);
        assert_eq!(yaml.replace("  namespace: ns-1\n", ""), KUBERNETES_YAML);
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        let with = |f: fn(&mut DeployOptions)| {
            let mut o = DeployOptions::default();
            f(&mut o);
            render(&o).expect_err("refused").to_string()
        };
        assert!(with(|o| o.namespace = Some("Bad_NS".into())).contains("--namespace"));
        assert!(with(|o| o.prometheus = "https://p:9090".into()).contains("--prometheus"));
        assert!(with(|o| o.image = "two words".into()).contains("--image-serve"));
        let e = with(|o| o.configs = vec![("x.yaml".into(), "{}".into())]);
        assert!(e.contains("x.yaml") && e.contains("NAME.json"), "{e}");
        let e = with(|o| o.configs = vec![("x.json".into(), "{\"metrics\": 3}".into())]);
        assert!(
            e.contains("x.json") && e.contains("not a valid canary config"),
            "{e}"
        );
    }
}
