//! `canarylab cluster render|run|clean`: a canary release on a real
//! Kubernetes cluster with Istio and Prometheus (see `cluster/KUBE.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use cluster::kube::{Manifests, RenderOptions, RunOptions, ScenarioFiles, release_id};
use cluster::plan::{ReleasePlan, plan_release};
use cluster::prom::PromApi;
use scenarios::Scenario;

use crate::Exit;

/// Arguments of `canarylab cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// What to do: render, run or clean.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The subcommands of `canarylab cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print the manifests of a release as YAML, for review or `kubectl apply`.
    Render(RenderArgs),
    /// Run a release on a cluster: apply, shift traffic, judge from
    /// Prometheus, promote or roll back, clean up.
    Run(RunArgs),
    /// Delete everything canarylab created in a namespace.
    Clean(CleanArgs),
}

/// What a release looks like (shared by render and run).
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The scenario to release.
    #[arg(value_name = "SCENARIO.toml", required = true)]
    pub scenario: Option<PathBuf>,
    /// Judge with this Kayenta canary config instead of the scenario's.
    #[arg(long, value_name = "CONFIG.json")]
    pub config: Option<PathBuf>,
    /// The namespace (labelled istio-injection=enabled).
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Release id (label canarylab.dev/release); default: from the scenario name.
    #[arg(long)]
    pub release: Option<String>,
    /// goldengoose image of the current version.
    #[arg(long, default_value = "canarylab/goldengoose:latest")]
    pub image_goldengoose: String,
    /// goldengoose image of the new version; default: the same image (the
    /// regression is in the flags).
    #[arg(long)]
    pub image_canary: Option<String>,
    /// loadgen image (the traffic Job).
    #[arg(long, default_value = "canarylab/loadgen:latest")]
    pub image_loadgen: String,
    /// canarylab image (the sim Job).
    #[arg(long, default_value = "canarylab/canarylab:latest")]
    pub image_canarylab: String,
    /// Pods of the loadgen Indexed Job (the rate is split between them).
    #[arg(long, default_value_t = 1)]
    pub loadgen_pods: u32,
    /// Also render a `canarylab sim --shard I/N` Indexed Job of N shards.
    #[arg(long, default_value_t = 0)]
    pub sim_shards: u32,
    /// PersistentVolumeClaim mounted at /results by the Jobs (default: an
    /// emptyDir, results only in the pod logs).
    #[arg(long)]
    pub results_claim: Option<String>,
    /// Multiply every duration of the scenario by this (1: real time).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Seed of the servers' faults and the judge.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `canarylab cluster render`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  canarylab cluster render scenarios/catalog/latency-25pct.toml -n shop > release.yaml
  canarylab cluster render scenarios/catalog/aa-typical.toml --sim-shards 8 --loadgen-pods 4 \\
      --results-claim canarylab-results

  canarylab cluster render --serve -n canarylab --prometheus http://prometheus.monitoring:9090 \\
      --serve-config shop.json --no-token > serve.yaml

Merge scale-out results with `canarylab merge DIR...` (sim shards) and
`loadgen merge FILE...` (loadgen pods).

--serve renders `canarylab serve` (deploy/serve/kubernetes.yaml: ConfigMap of
canary configs, token Secret, Deployment, Service) instead of a release; of
the release options only -n applies.")]
#[command(mut_arg("scenario", |a| a.required(false).required_unless_present("serve")))]
pub struct RenderArgs {
    /// What to release: scenario, config, namespace, release id and images.
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Render `canarylab serve`'s manifests instead of a release's (no
    /// SCENARIO.toml).
    #[arg(long)]
    pub serve: bool,
    /// With --serve: the server's image.
    #[arg(long, requires = "serve", default_value = cluster::serve::deploy::DEFAULT_IMAGE)]
    pub image_serve: String,
    /// With --serve: the Prometheus `/analyze` queries.
    #[arg(long, requires = "serve", value_name = "URL",
          default_value = cluster::serve::deploy::DEFAULT_PROMETHEUS)]
    pub prometheus: String,
    /// With --serve: a canary config for the ConfigMap (`POST /analyze`
    /// finds NAME.json as configName NAME); repeatable; default: the file's
    /// examples.
    #[arg(long, requires = "serve", value_name = "NAME.json")]
    pub serve_config: Vec<PathBuf>,
    /// With --serve: no bearer token (Kayenta's remote judge and Flagger's
    /// webhooks send none).
    #[arg(long, requires = "serve")]
    pub no_token: bool,
}

/// Arguments of `canarylab cluster run`.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  kubectl -n monitoring port-forward svc/prometheus-server 9090:80 &
  canarylab cluster run scenarios/catalog/latency-25pct.toml --context kind-canarylab \\
      -n shop --prometheus http://127.0.0.1:9090 --time-scale 0.1

Ctrl-C moves traffic back to production and deletes baseline and canary;
production is left alone unless promotion had begun (then its rollout is
left to finish). Production, Service, DestinationRule and VirtualService
stay after a run: `canarylab cluster clean` removes them.

Transient failures are retried: a Prometheus query (no connection, HTTP 429
or 5xx) up to --prometheus-retries times, an API server request (HTTP 409,
429, 5xx, no connection) up to --api-retries times, each waiting 0.5 s,
then doubling up to 5 s between tries (17.5 s in all for the default 6);
only then does the step fail. The retries are counted in the output;
Ctrl-C ends a wait between retries at once.")]
pub struct RunArgs {
    /// What to release: scenario, config, namespace, release id and images.
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// The kubeconfig context.
    #[arg(long)]
    pub context: String,
    /// The cluster's Prometheus, plain HTTP (e.g. behind `kubectl port-forward`).
    #[arg(long, value_name = "URL")]
    pub prometheus: String,
    /// How long each rollout may take, in seconds.
    #[arg(long, default_value_t = 600)]
    pub rollout_timeout: u64,
    /// Retries of a failed Prometheus query before the analysis fails.
    #[arg(long, default_value_t = cluster::prom::Retry::DEFAULT.retries, value_name = "N")]
    pub prometheus_retries: u32,
    /// Retries of an API server request answered 409, 429 or 5xx (or not
    /// at all) before the step fails.
    #[arg(long, default_value_t = cluster::prom::Retry::DEFAULT.retries, value_name = "N")]
    pub api_retries: u32,
    /// Exit 1 when the canary is rolled back (for scripts and CI).
    #[arg(long)]
    pub exit_code: bool,
    /// Read a person's input from standard input while the release runs,
    /// one word a line: `promote` (now, skipping the rest of the analysis),
    /// `abort` (roll back now) or `resume`.
    #[arg(long)]
    pub operator_stdin: bool,
}

/// Arguments of `canarylab cluster clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The namespace to clean.
    #[arg(long, short = 'n')]
    pub namespace: String,
    /// The kubeconfig context; default: the current one.
    #[arg(long)]
    pub context: Option<String>,
    /// Only this release's objects.
    #[arg(long)]
    pub release: Option<String>,
}

/// `canarylab cluster`.
pub fn run(args: &ClusterArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    match &args.command {
        ClusterCommand::Render(a) => render(a, out),
        ClusterCommand::Run(a) => run_release(a, out),
        ClusterCommand::Clean(a) => clean(a, out),
    }
}

fn prepare(args: &ReleaseArgs) -> anyhow::Result<(Scenario, ReleasePlan, Manifests)> {
    if !(args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale {}: must be in (0, 1]", args.time_scale);
    }
    let path = args
        .scenario
        .as_deref()
        .context("a SCENARIO.toml is required")?;
    let scenario = Scenario::load(path, args.config.as_deref())?;
    let plan = plan_release(&scenario, args.time_scale, args.seed)?;
    let options = RenderOptions {
        image_goldengoose: args.image_goldengoose.clone(),
        image_canary: args.image_canary.clone(),
        image_loadgen: args.image_loadgen.clone(),
        image_canarylab: args.image_canarylab.clone(),
        loadgen_pods: args.loadgen_pods,
        sim_shards: args.sim_shards,
        results_claim: args.results_claim.clone(),
        ..RenderOptions::new(
            args.namespace.clone(),
            args.release
                .clone()
                .unwrap_or_else(|| release_id(&scenario.name)),
        )
    };
    let files = if args.sim_shards > 0 {
        Some(scenario_files(&scenario)?)
    } else {
        None
    };
    let manifests = Manifests::new(&scenario.name, &plan, &options, files.as_ref())?;
    Ok((scenario, plan, manifests))
}

fn read_named(path: &Path) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    Ok((name, text))
}

fn scenario_files(scenario: &Scenario) -> anyhow::Result<ScenarioFiles> {
    Ok(ScenarioFiles {
        scenario: read_named(&scenario.path)?,
        config: scenario
            .config_path
            .as_deref()
            .map(read_named)
            .transpose()?,
    })
}

fn render(args: &RenderArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    if args.serve {
        return render_serve(args, out);
    }
    let (_, _, manifests) = prepare(&args.release)?;
    out.write_all(manifests.to_yaml().as_bytes())?;
    Ok(Exit::Success)
}

/// `cluster render --serve`: deploy/serve/kubernetes.yaml with the options.
fn render_serve(args: &RenderArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    if args.release.scenario.is_some() {
        anyhow::bail!("--serve renders the server, not a release: drop SCENARIO.toml");
    }
    let configs = args
        .serve_config
        .iter()
        .map(|p| read_named(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = cluster::serve::deploy::DeployOptions {
        namespace: Some(args.release.namespace.clone()),
        image: args.image_serve.clone(),
        prometheus: args.prometheus.clone(),
        token: !args.no_token,
        configs,
    };
    out.write_all(cluster::serve::deploy::render(&options)?.as_bytes())?;
    Ok(Exit::Success)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A channel of the operator's input, read from stdin line by line on a
/// thread of its own (a blocked read must not hold up the runtime); a line
/// that is not an input is reported and skipped.
fn operator_from_stdin() -> tokio::sync::mpsc::UnboundedReceiver<cluster::kube::OperatorInput> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match line.parse() {
                Ok(input) => {
                    eprintln!("operator: {input:?}");
                    if tx.send(input).is_err() {
                        break;
                    }
                }
                Err(e) => eprintln!("operator: {e}"),
            }
        }
    });
    rx
}

fn run_release(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let (scenario, plan, manifests) = prepare(&args.release)?;
    // Ctrl-C: the release stops; also ends a wait between retries at once
    // (queries and requests).
    let (interrupt, cancel) = tokio::sync::watch::channel(false);
    let prometheus = PromApi::from_url(&args.prometheus)?
        .with_retry(cluster::prom::Retry::with_retries(args.prometheus_retries))
        .with_cancel(cancel.clone());
    let prometheus_retries = prometheus.clone();
    let mut api_retries = cluster::prom::RetryCount::default();
    let options = RunOptions {
        rollout_timeout: Duration::from_secs(args.rollout_timeout),
        deploy_timeout: Duration::from_secs(args.rollout_timeout),
        seed: args.release.seed,
        ..RunOptions::default()
    };
    let result = runtime()?.block_on(async {
        let client = cluster::kube::connect(Some(&args.context))
            .await
            .with_context(|| format!("kubeconfig context {}", args.context))?;
        let (client, count) = cluster::kube::retry::with_retry_until(
            client,
            cluster::prom::Retry::with_retries(args.api_retries),
            cancel.clone(),
        );
        api_retries = count;
        // Ctrl-C asks the release to stop; it cleans up before returning.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: moving traffic back to production and deleting baseline and canary");
                interrupt.send_replace(true);
            }
        });
        let operator = args.operator_stdin.then(operator_from_stdin);
        anyhow::Ok(
            cluster::kube::run_release(
                client,
                &manifests,
                &plan,
                &scenario.config,
                Arc::new(prometheus),
                &options,
                cancel.clone(),
                operator,
            )
            .await,
        )
    })?;
    let retries = format!(
        "retries: {} Prometheus quer{}, {} API server request{}",
        prometheus_retries.retries(),
        if prometheus_retries.retries() == 1 {
            "y"
        } else {
            "ies"
        },
        api_retries.get(),
        if api_retries.get() == 1 { "" } else { "s" }
    );
    match result {
        Ok(outcome) => {
            writeln!(out, "{retries}")?;
            for (i, score) in outcome.analysis.outcome.scores.iter().enumerate() {
                writeln!(out, "interval {i}: score {score:.2}")?;
            }
            writeln!(
                out,
                "decision: {:?}: {}",
                outcome.decision, outcome.analysis.outcome.reason
            )?;
            writeln!(out, "{}", outcome.production)?;
            for c in &outcome.crashes {
                writeln!(out, "crashed while rolling out: {c}")?;
            }
            writeln!(out, "deleted: {}", outcome.cleanup.deleted.join(", "))?;
            for p in &outcome.cleanup.problems {
                writeln!(out, "cleanup problem: {p}")?;
            }
            // A finished release ends promoted or rolled back.
            Ok(if outcome.decision.rejected() && args.exit_code {
                Exit::CanaryFailed
            } else {
                Exit::Success
            })
        }
        Err(failure) => {
            let mut text = format!(
                "cluster release of {}: {}\n{retries}",
                scenario.name, failure.error
            );
            text.push_str(&format!("\n{}", failure.production));
            match &failure.cleanup {
                None => text.push_str("\nnothing had been sent to the cluster"),
                Some(c) => {
                    text.push_str(&format!(
                        "\ntraffic back to production: {}\ndeleted: {}",
                        if c.traffic_to_production {
                            "yes"
                        } else {
                            "no (no VirtualService had been sent)"
                        },
                        c.deleted.join(", ")
                    ));
                    for p in &c.problems {
                        text.push_str(&format!("\ncleanup problem: {p}"));
                    }
                }
            }
            Err(anyhow::anyhow!(text))
        }
    }
}

fn clean(args: &CleanArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let cleanup = runtime()?.block_on(async {
        let client = cluster::kube::connect(args.context.as_deref())
            .await
            .context("kubeconfig")?;
        let (client, _) = cluster::kube::retry::with_retry(client, cluster::prom::Retry::DEFAULT);
        anyhow::Ok(cluster::kube::clean(client, &args.namespace, args.release.as_deref()).await)
    })?;
    for d in &cleanup.deleted {
        writeln!(out, "deleted {d}")?;
    }
    if cleanup.deleted.is_empty() {
        writeln!(
            out,
            "nothing labelled {} in {}",
            cluster::kube::clean::selector(args.release.as_deref()),
            args.namespace
        )?;
    }
    for p in &cleanup.problems {
        writeln!(out, "note: {p}")?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Exit, run};

    fn render(extra: &[&str]) -> anyhow::Result<String> {
        let scenario = format!(
            "{}/scenarios/catalog/latency-25pct.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut args = vec![
            "canarylab",
            "cluster",
            "render",
            scenario.as_str(),
            "-n",
            "shop",
        ];
        args.extend_from_slice(extra);
        let mut out = Vec::new();
        let exit = run(Cli::try_parse_from(args)?, &mut out)?;
        assert_eq!(exit, Exit::Success);
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn render_prints_every_object_with_the_ownership_label() {
        let yaml = render(&[]).expect("renders");
        assert_eq!(yaml.matches("\n---\n").count(), 7, "{yaml}");
        assert_eq!(
            yaml.matches("app.kubernetes.io/managed-by: canarylab")
                .count(),
            7 + 4,
            "objects and pod templates"
        );
        assert!(yaml.contains("canarylab.dev/release: latency-25pct"));
    }

    #[test]
    fn render_with_shards_reads_the_scenario_files() {
        let yaml = render(&["--sim-shards", "3", "--release", "r1"]).expect("renders");
        assert!(yaml.contains("kind: ConfigMap"));
        assert!(yaml.contains("\"$(JOB_COMPLETION_INDEX)/3\""));
        // The scenario's own canary config travels with it.
        assert!(yaml.contains("canary-config.json:"), "{yaml}");
    }

    #[test]
    fn render_serve_prints_the_documented_manifests() {
        let render_serve = |extra: &[&str]| -> anyhow::Result<String> {
            let mut args = vec!["canarylab", "cluster", "render", "--serve"];
            args.extend_from_slice(extra);
            let mut out = Vec::new();
            let exit = run(Cli::try_parse_from(args)?, &mut out)?;
            assert_eq!(exit, Exit::Success);
            Ok(String::from_utf8(out)?)
        };
        let file = std::fs::read_to_string(format!(
            "{}/deploy/serve/kubernetes.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("the documented file");
        let yaml = render_serve(&["-n", "canarylab"]).expect("renders");
        assert_eq!(yaml.replace("  namespace: canarylab\n", ""), file);
        assert_eq!(yaml.matches("  namespace: canarylab\n").count(), 4);
        let config = format!(
            "{}/scenarios/catalog/canary-config.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let yaml = render_serve(&["--no-token", "--serve-config", &config]).expect("renders");
        assert!(!yaml.contains("kind: Secret") && !yaml.contains("- --token-file="));
        assert!(yaml.contains("  canary-config.json: |\n"), "{yaml}");
        assert!(render_serve(&["--prometheus", "https://x"]).is_err());
        assert!(render_serve(&["--serve-config", "/nonexistent.json"]).is_err());
        // Release options and a scenario do not mix with --serve.
        let scenario = format!(
            "{}/scenarios/catalog/latency-25pct.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(render_serve(&[scenario.as_str()]).is_err());
        // Without --serve, its options are refused and a scenario is required.
        assert!(
            Cli::try_parse_from(["canarylab", "cluster", "render", "--no-token", &scenario])
                .is_err()
        );
        assert!(Cli::try_parse_from(["canarylab", "cluster", "render"]).is_err());
    }

    #[test]
    fn render_refuses_bad_input() {
        assert!(render(&["--time-scale", "0"]).is_err());
        assert!(render(&["--release", "Bad_Id"]).is_err());
        assert!(render(&["--loadgen-pods", "0"]).is_err());
    }
}
