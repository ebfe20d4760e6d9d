//! The Kubernetes objects of one canary release (pure): goldengoose
//! Deployments for production, baseline and canary, their Service, an
//! Istio DestinationRule (one subset per track) and VirtualService (the
//! weights), the loadgen Job driving traffic through the Service, and, on
//! request, the scale-out Indexed Job of `canarylab sim --shard I/N`.
//!
//! Deployments, Service, ConfigMap and Jobs are typed k8s-openapi structs;
//! the Istio objects are [`DynamicObject`]s (no Istio CRD types are pulled
//! in). Every object carries [`MANAGED_BY`] and [`RELEASE_LABEL`], which is
//! how `canarylab cluster clean` finds them.
//!
//! Labels of the goldengoose pods: `app=goldengoose`, `track=<track>` and
//! `version=<track>`, where track is `production`, `baseline` or `canary`.
//! goldengoose puts `version="<track>"` on every metric itself
//! (`--track`), so the queries' `version="${scope}"` match whether or not
//! Prometheus copies pod labels onto the series; the pod label `version`
//! carries the same value so a relabelling that does copy it agrees.
//!
//! Not for: talking to the API server (see [`super::run`]).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::plan::{ReleasePlan, Split};

/// `app.kubernetes.io/managed-by=canarylab` is on everything canarylab creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "canarylab");
/// The release id label.
pub const RELEASE_LABEL: &str = "canarylab.dev/release";
/// The label selector `clean` uses.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=canarylab";
/// goldengoose's port in the pods and in the Service.
pub const PORT: i32 = 8080;
/// The name of the Service, DestinationRule and VirtualService, and the
/// `app` label of the pods.
pub const APP: &str = "goldengoose";
/// The loadgen Job.
pub const LOADGEN_JOB: &str = "canarylab-loadgen";
/// The sim Job and the ConfigMap holding its scenario.
pub const SIM_JOB: &str = "canarylab-sim";
/// The ConfigMap holding the sim Job's scenario files.
pub const SCENARIO_CONFIGMAP: &str = "canarylab-scenario";
/// The header goldengoose answers with and loadgen attributes by.
pub const VERSION_HEADER: &str = "x-version";
/// Istio's API group and version used here (Istio 1.22 and later serve v1).
pub const ISTIO_API: (&str, &str) = ("networking.istio.io", "v1");
/// The user the images run as (deploy/docker: distroless `nonroot`); the
/// Jobs' volumes are made writable for its group.
pub const IMAGE_USER: i64 = 65532;
/// Extra load time beyond warmup + lifetime, so traffic outlasts the
/// analysis; `run` deletes the Job when it is done.
pub const LOAD_MARGIN: Duration = Duration::from_secs(120);

/// What to render besides the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The namespace every object goes into.
    pub namespace: String,
    /// The release id (label value; at most 63 characters of `[a-z0-9-.]`).
    pub release: String,
    /// goldengoose image of the current version (production and baseline).
    pub image_goldengoose: String,
    /// Image of the new version; `None`: the same image (the regression is
    /// in the flags).
    pub image_canary: Option<String>,
    /// loadgen's image, for the loadgen Job.
    pub image_loadgen: String,
    /// canarylab's image, for the sim Job.
    pub image_canarylab: String,
    /// Pods of the loadgen Indexed Job; the rate is split between them.
    pub loadgen_pods: u32,
    /// Shards of the `canarylab sim` Indexed Job; 0 renders none.
    pub sim_shards: u32,
    /// The PersistentVolumeClaim mounted at `/results` by the Jobs; `None`:
    /// an emptyDir (reports are only in the pods' logs).
    pub results_claim: Option<String>,
}

impl RenderOptions {
    /// Defaults for `namespace` and a release id.
    pub fn new(namespace: impl Into<String>, release: impl Into<String>) -> Self {
        RenderOptions {
            namespace: namespace.into(),
            release: release.into(),
            image_goldengoose: "canarylab/goldengoose:latest".into(),
            image_canary: None,
            image_loadgen: "canarylab/loadgen:latest".into(),
            image_canarylab: "canarylab/canarylab:latest".into(),
            loadgen_pods: 1,
            sim_shards: 0,
            results_claim: None,
        }
    }
}

/// The scenario files the sim Job needs, put into a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioFiles {
    /// File name (no directory) and text of the scenario TOML.
    pub scenario: (String, String),
    /// File name and text of its canary config, if it has its own file.
    pub config: Option<(String, String)>,
}

/// Why objects could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The release id is not a valid label value.
    #[error(
        "release id \"{0}\": must be 1 to 63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
    )]
    ReleaseId(String),
    /// The namespace is not a DNS label.
    #[error("namespace \"{0}\": must be a DNS label (1 to 63 characters of a-z, 0-9 and '-')")]
    Namespace(String),
    /// No loadgen pods asked for.
    #[error("--loadgen-pods must be at least 1")]
    LoadgenPods,
    /// A sim Job asked for without the scenario's files.
    #[error("--sim-shards needs the scenario's files for the sim Job's ConfigMap")]
    NoScenarioFiles,
}

/// The objects of one release.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The namespace of every object.
    pub namespace: String,
    /// The release id, in every object's labels.
    pub release: String,
    /// The current version's production Deployment.
    pub production: Deployment,
    /// `None` when the scenario compares the canary with production.
    pub baseline: Option<Deployment>,
    /// The new version's canary Deployment.
    pub canary: Deployment,
    /// Production with the canary's code: what a promotion applies.
    pub promoted: Deployment,
    /// The Service in front of every track.
    pub service: Service,
    /// Istio's DestinationRule: one subset per track.
    pub destination_rule: DynamicObject,
    /// With the plan's first split (what `kubectl apply` of the render
    /// gives); `run` starts with [`Manifests::virtual_service`] at 100%
    /// production and shifts once the rollouts are ready.
    pub virtual_service: DynamicObject,
    /// The loadgen Indexed Job sending the traffic.
    pub loadgen: Job,
    /// The sim Job's scenario files, when a sim Job is rendered.
    pub scenario_config: Option<ConfigMap>,
    /// The `canarylab sim` Indexed Job, when `sim_shards` is above 0.
    pub sim: Option<Job>,
    /// The traffic steps after the first, for the render's header.
    pub traffic: Vec<(Duration, Split)>,
}

/// A DNS-label-safe release id from a scenario name: lowercase, other
/// characters as `-`, at most 40 characters.
pub fn release_id(scenario_name: &str) -> String {
    let mut id: String = scenario_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(40);
    let id = id.trim_matches('-').to_string();
    if id.is_empty() { "release".into() } else { id }
}

fn dns_label(s: &str, dots: bool) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(ok_char)
        && edge(s.chars().next())
        && edge(s.chars().last())
}

/// The Istio resource of `kind` (`DestinationRule`, `VirtualService`).
pub fn istio_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(ISTIO_API.0, ISTIO_API.1, kind))
}

/// Integer weights summing to 100 (Istio refuses anything else), by
/// largest remainder; tracks without replicas get none.
pub fn integer_weights(split: Split, with_baseline: bool) -> Vec<(&'static str, i64)> {
    let tracks: Vec<(&'static str, f64)> = split
        .weights()
        .into_iter()
        .filter(|(t, _)| with_baseline || *t != "baseline")
        .map(|(t, w)| (t, if w.is_finite() { w.max(0.0) } else { 0.0 }))
        .collect();
    let total: f64 = tracks.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return tracks
            .iter()
            .map(|(t, _)| (*t, if *t == "production" { 100 } else { 0 }))
            .collect();
    }
    let exact: Vec<f64> = tracks.iter().map(|(_, w)| w / total * 100.0).collect();
    let mut out: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let mut left = 100 - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order {
        if left <= 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    tracks.iter().map(|(t, _)| *t).zip(out).collect()
}

/// All traffic to production.
pub fn all_production() -> Split {
    Split {
        production: 100.0,
        baseline: 0.0,
        canary: 0.0,
    }
}

/// goldengoose's command line for a config in a pod (listening on the pod's port).
pub fn goldengoose_args(config: &goldengoose::Config) -> Vec<String> {
    let mut args = vec!["--listen".to_string(), format!("0.0.0.0:{PORT}")];
    // Every field, exactly (durations to the nanosecond); never the token.
    args.extend(config.to_args());
    args
}

impl Manifests {
    /// The objects for `plan` (see [`crate::plan::plan_release`]).
    /// `files` is needed only with `sim_shards > 0`.
    pub fn new(
        scenario_name: &str,
        plan: &ReleasePlan,
        options: &RenderOptions,
        files: Option<&ScenarioFiles>,
    ) -> Result<Manifests, RenderError> {
        if !dns_label(&options.release, true) {
            return Err(RenderError::ReleaseId(options.release.clone()));
        }
        if !dns_label(&options.namespace, false) {
            return Err(RenderError::Namespace(options.namespace.clone()));
        }
        if options.loadgen_pods == 0 {
            return Err(RenderError::LoadgenPods);
        }
        let r = Renderer {
            options,
            scenario: scenario_name,
        };
        let new_image = options
            .image_canary
            .clone()
            .unwrap_or_else(|| options.image_goldengoose.clone());
        let production = r.deployment(
            "production",
            plan.production_replicas,
            &options.image_goldengoose,
            &plan.production,
            "current",
        );
        let baseline = (plan.baseline_replicas > 0).then(|| {
            r.deployment(
                "baseline",
                plan.baseline_replicas,
                &options.image_goldengoose,
                &plan.baseline,
                "current",
            )
        });
        let canary = r.deployment(
            "canary",
            plan.canary_replicas.max(1),
            &new_image,
            &plan.canary,
            "new",
        );
        // The new code, serving as production: production's seed and
        // track, the canary's faults.
        let promoted_config = goldengoose::Config {
            version: plan.production.version.clone(),
            seed: plan.production.seed,
            ..plan.canary.clone()
        };
        let promoted = r.deployment(
            "production",
            plan.production_replicas,
            &new_image,
            &promoted_config,
            "new",
        );
        let with_baseline = baseline.is_some();
        let mut m = Manifests {
            namespace: options.namespace.clone(),
            release: options.release.clone(),
            production,
            baseline,
            canary,
            promoted,
            service: r.service(),
            destination_rule: r.destination_rule(with_baseline),
            virtual_service: r.virtual_service(plan.split_at(Duration::ZERO), with_baseline),
            loadgen: r.loadgen_job(plan),
            scenario_config: None,
            sim: None,
            traffic: plan.traffic.clone(),
        };
        if options.sim_shards > 0 {
            let files = files.ok_or(RenderError::NoScenarioFiles)?;
            m.scenario_config = Some(r.scenario_config(files));
            m.sim = Some(r.sim_job(files));
        }
        Ok(m)
    }

    /// The VirtualService with `split`.
    pub fn virtual_service(&self, split: Split) -> DynamicObject {
        Renderer::vs_with(
            &self.virtual_service,
            &integer_weights(split, self.baseline.is_some()),
        )
    }

    /// Every object in apply order, as JSON.
    pub fn values(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut push = |v: Result<Value, serde_json::Error>| {
            // Serializing these types cannot fail (no maps with non-string
            // keys); keep going if it ever did.
            if let Ok(v) = v {
                out.push(v);
            }
        };
        push(serde_json::to_value(&self.production));
        if let Some(b) = &self.baseline {
            push(serde_json::to_value(b));
        }
        push(serde_json::to_value(&self.canary));
        push(serde_json::to_value(&self.service));
        push(serde_json::to_value(&self.destination_rule));
        push(serde_json::to_value(&self.virtual_service));
        push(serde_json::to_value(&self.loadgen));
        if let Some(c) = &self.scenario_config {
            push(serde_json::to_value(c));
        }
        if let Some(s) = &self.sim {
            push(serde_json::to_value(s));
        }
        out
    }

    /// The YAML `render` prints: a comment header (the steps `run` takes
    /// beyond the objects), then every object.
    pub fn to_yaml(&self) -> String {
        let mut head = format!(
            "# canarylab release \"{}\" in namespace \"{}\" (label {}={})\n",
            self.release, self.namespace, RELEASE_LABEL, self.release
        );
        head.push_str(
            "# `canarylab cluster run` applies these, waits for the rollouts, then moves\n",
        );
        head.push_str(
            "# traffic as the scenario says (VirtualService weights production/baseline/canary):\n",
        );
        let with_baseline = self.baseline.is_some();
        for (after, split) in &self.traffic {
            let w: Vec<String> = integer_weights(*split, with_baseline)
                .iter()
                .map(|(t, w)| format!("{t}={w}"))
                .collect();
            head.push_str(&format!(
                "#   after {:.0} s: {}\n",
                after.as_secs_f64(),
                w.join(" ")
            ));
        }
        head.push_str(
            "# and promotes (production gets the canary's image and flags) or rolls back.\n",
        );
        if let Some(sim) = &self.sim {
            let shards = sim.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
            head.push_str(&format!(
                "# The {SIM_JOB} Job runs {shards} shards; merge their results with\n#   canarylab merge /results/sim-0 ... /results/sim-{}\n",
                shards - 1
            ));
        }
        let pods = self
            .loadgen
            .spec
            .as_ref()
            .and_then(|s| s.completions)
            .unwrap_or(1);
        if pods > 1 {
            head.push_str(&format!(
                "# The {LOADGEN_JOB} Job runs {pods} pods; merge their histograms with\n#   loadgen merge /results/loadgen-*.json\n"
            ));
        }
        head + &super::yaml::documents(&self.values())
    }
}

struct Renderer<'a> {
    options: &'a RenderOptions,
    scenario: &'a str,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

fn env_index() -> EnvVar {
    // Set explicitly (Kubernetes also injects it) so `$(JOB_COMPLETION_INDEX)`
    // in args expands on every version.
    EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    .into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Renderer<'_> {
    fn labels(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut l = map(&[
            MANAGED_BY,
            (RELEASE_LABEL, &self.options.release),
            ("app.kubernetes.io/part-of", "canarylab"),
        ]);
        l.extend(map(extra));
        l
    }

    fn meta(&self, name: &str, extra: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.options.namespace.clone()),
            labels: Some(self.labels(extra)),
            annotations: Some(map(&[("canarylab.dev/scenario", self.scenario)])),
            ..Default::default()
        }
    }

    fn deployment(
        &self,
        track: &str,
        replicas: u32,
        image: &str,
        config: &goldengoose::Config,
        code: &str,
    ) -> Deployment {
        let selector = map(&[("app", APP), ("track", track)]);
        let pod_labels = self.labels(&[
            ("app", APP),
            ("track", track),
            ("version", track),
            ("sidecar.istio.io/inject", "true"),
        ]);
        let probe = |path: &str, period: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_string()),
                port: IntOrString::Int(PORT),
                ..Default::default()
            }),
            period_seconds: Some(period),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let container = Container {
            name: APP.into(),
            image: Some(image.to_string()),
            args: Some(goldengoose_args(config)),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: PORT,
                ..Default::default()
            }]),
            readiness_probe: Some(probe("/readyz", 2)),
            liveness_probe: Some(probe("/healthz", 10)),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", "100m"), ("memory", "64Mi")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        Deployment {
            metadata: self.meta(&format!("{APP}-{track}"), &[("app", APP), ("track", track)]),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas as i32),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    ..Default::default()
                },
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    ..Default::default()
                }),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        annotations: Some(map(&[
                            ("prometheus.io/scrape", "true"),
                            ("prometheus.io/port", &PORT.to_string()),
                            ("prometheus.io/path", "/metrics"),
                            ("canarylab.dev/code", code),
                        ])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            ..Default::default()
                        }),
                        termination_grace_period_seconds: Some(15),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn service(&self) -> Service {
        Service {
            metadata: self.meta(APP, &[("app", APP)]),
            spec: Some(ServiceSpec {
                selector: Some(map(&[("app", APP)])),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: PORT,
                    target_port: Some(IntOrString::String("http".into())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn dynamic(&self, kind: &str, spec: Value) -> DynamicObject {
        let mut obj = DynamicObject::new(APP, &istio_resource(kind))
            .within(&self.options.namespace)
            .data(json!({ "spec": spec }));
        obj.metadata.labels = Some(self.labels(&[("app", APP)]));
        obj.metadata.annotations = Some(map(&[("canarylab.dev/scenario", self.scenario)]));
        obj
    }

    fn destination_rule(&self, with_baseline: bool) -> DynamicObject {
        let subsets: Vec<Value> = ["production", "baseline", "canary"]
            .into_iter()
            .filter(|t| with_baseline || *t != "baseline")
            .map(|t| json!({ "name": t, "labels": { "track": t } }))
            .collect();
        self.dynamic(
            "DestinationRule",
            json!({ "host": APP, "subsets": subsets }),
        )
    }

    fn virtual_service(&self, split: Split, with_baseline: bool) -> DynamicObject {
        let base = self.dynamic("VirtualService", json!({}));
        Self::vs_with(&base, &integer_weights(split, with_baseline))
    }

    fn vs_with(base: &DynamicObject, weights: &[(&str, i64)]) -> DynamicObject {
        let route: Vec<Value> = weights
            .iter()
            .map(|(t, w)| {
                json!({
                    "destination": { "host": APP, "subset": t, "port": { "number": PORT } },
                    "weight": w,
                })
            })
            .collect();
        let mut vs = base.clone();
        vs.data = json!({ "spec": { "hosts": [APP], "http": [{ "name": "canary-split", "route": route }] } });
        vs
    }

    fn results_volume(&self) -> (Volume, VolumeMount) {
        let volume = match &self.options.results_claim {
            Some(claim) => Volume {
                name: "results".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None => Volume {
                name: "results".into(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            },
        };
        let mount = VolumeMount {
            name: "results".into(),
            mount_path: "/results".into(),
            ..Default::default()
        };
        (volume, mount)
    }

    fn indexed_job(
        &self,
        name: &str,
        count: u32,
        container: Container,
        volumes: Vec<Volume>,
        pod_labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> Job {
        Job {
            metadata: self.meta(name, &[("app", name)]),
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".into()),
                completions: Some(count as i32),
                parallelism: Some(count as i32),
                backoff_limit: Some(0),
                ttl_seconds_after_finished: Some(3600),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels(pod_labels)),
                        annotations: (!annotations.is_empty()).then(|| map(annotations)),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        restart_policy: Some("Never".into()),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            fs_group: Some(IMAGE_USER),
                            ..Default::default()
                        }),
                        volumes: Some(volumes),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn loadgen_job(&self, plan: &ReleasePlan) -> Job {
        let pods = self.options.loadgen_pods;
        let load_for = plan.schedule.warmup + plan.schedule.lifetime + LOAD_MARGIN;
        // Per pod, to the millisecond-request: enough for any rate.
        let rate = (plan.request_rate / pods as f64 * 1000.0).round() / 1000.0;
        let args = vec![
            "--gateway".to_string(),
            format!(
                "http://{APP}.{}.svc.cluster.local:{PORT}/",
                self.options.namespace
            ),
            "--version-header".into(),
            VERSION_HEADER.into(),
            "--rate".into(),
            format!("{rate}"),
            "--duration".into(),
            format!("{}s", load_for.as_secs()),
            "--seed".into(),
            "$(JOB_COMPLETION_INDEX)".into(),
            "--json".into(),
            "/results/loadgen-$(JOB_COMPLETION_INDEX).json".into(),
            "--quiet".into(),
        ];
        let (volume, mount) = self.results_volume();
        let container = Container {
            name: "loadgen".into(),
            image: Some(self.options.image_loadgen.clone()),
            args: Some(args),
            env: Some(vec![env_index()]),
            volume_mounts: Some(vec![mount]),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", "200m"), ("memory", "64Mi")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.indexed_job(
            LOADGEN_JOB,
            pods,
            container,
            vec![volume],
            &[("app", LOADGEN_JOB), ("sidecar.istio.io/inject", "true")],
            // The request routing happens in this pod's sidecar; a native
            // sidecar exits with the Job's container so the Job completes.
            &[("sidecar.istio.io/nativeSidecar", "true")],
        )
    }

    fn scenario_config(&self, files: &ScenarioFiles) -> ConfigMap {
        let mut data = BTreeMap::new();
        data.insert(files.scenario.0.clone(), files.scenario.1.clone());
        if let Some((name, text)) = &files.config {
            data.insert(name.clone(), text.clone());
        }
        ConfigMap {
            metadata: self.meta(SCENARIO_CONFIGMAP, &[("app", SIM_JOB)]),
            data: Some(data),
            ..Default::default()
        }
    }

    fn sim_job(&self, files: &ScenarioFiles) -> Job {
        let shards = self.options.sim_shards;
        let mut args = vec![
            "sim".to_string(),
            format!("/scenario/{}", files.scenario.0),
            "--shard".into(),
            format!("$(JOB_COMPLETION_INDEX)/{shards}"),
            "--out".into(),
            "/results/sim-$(JOB_COMPLETION_INDEX)".into(),
        ];
        if let Some((name, _)) = &files.config {
            args.push("--config".into());
            args.push(format!("/scenario/{name}"));
        }
        let (volume, mount) = self.results_volume();
        let scenario_volume = Volume {
            name: "scenario".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: SCENARIO_CONFIGMAP.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = Container {
            name: "canarylab".into(),
            image: Some(self.options.image_canarylab.clone()),
            args: Some(args),
            env: Some(vec![env_index()]),
            volume_mounts: Some(vec![
                mount,
                VolumeMount {
                    name: "scenario".into(),
                    mount_path: "/scenario".into(),
                    read_only: Some(true),
                    ..Default::default()
                },
            ]),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", "1"), ("memory", "256Mi")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.indexed_job(
            SIM_JOB,
            shards,
            container,
            vec![volume, scenario_volume],
            &[("app", SIM_JOB), ("sidecar.istio.io/inject", "false")],
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: f64, b: f64, c: f64) -> Split {
        Split {
            production: p,
            baseline: b,
            canary: c,
        }
    }

    #[test]
    fn weights_are_integers_summing_to_100() {
        assert_eq!(
            integer_weights(split(90.0, 5.0, 5.0), true),
            vec![("production", 90), ("baseline", 5), ("canary", 5)]
        );
        let w = integer_weights(split(1.0, 1.0, 1.0), true);
        assert_eq!(w.iter().map(|(_, w)| w).sum::<i64>(), 100);
        assert_eq!(
            w,
            vec![("production", 34), ("baseline", 33), ("canary", 33)]
        );
        assert_eq!(
            integer_weights(split(95.0, 0.0, 5.0), false),
            vec![("production", 95), ("canary", 5)]
        );
        assert_eq!(
            integer_weights(split(0.0, 0.0, 0.0), true),
            vec![("production", 100), ("baseline", 0), ("canary", 0)]
        );
    }

    #[test]
    fn release_ids_are_labels() {
        assert_eq!(release_id("latency-10pct"), "latency-10pct");
        assert_eq!(release_id("My Scenario_2"), "my-scenario-2");
        assert_eq!(release_id("__"), "release");
        assert!(dns_label(&release_id(&"x".repeat(100)), true));
        assert!(!dns_label("-a", false));
        assert!(!dns_label("a.b", false));
        assert!(dns_label("a.b", true));
    }

    #[test]
    fn goldengoose_flags_round_trip_through_its_parser() {
        let config = goldengoose::Config {
            version: "canary".into(),
            faults: vec![
                "latency=lognormal:40ms:0.5".parse().expect("fault"),
                "errors=0.02:503".parse().expect("fault"),
            ],
            seed: 9,
            ..Default::default()
        };
        let args = goldengoose_args(&config);
        let parsed = <goldengoose::Args as clap::Parser>::try_parse_from(
            std::iter::once("goldengoose".to_string()).chain(args),
        )
        .expect("goldengoose accepts the flags");
        let back = parsed.into_config().expect("resolves");
        assert_eq!(back.version, "canary");
        assert_eq!(back.faults, config.faults);
        assert_eq!(back.seed, 9);
    }
}
