//! The calibration half of the A/A check (`tools/aa_check.sh`): runs a
//! scenario's production pods for real on loopback exactly as `canarylab
//! local` sets them up (goldengoose processes with the scenario's known
//! settings, loadgen at its constant rate, a real Prometheus scraping at
//! the time-scaled step), calibrates the service from that Prometheus
//! with `canarylab calibrate`'s code, and writes the fitted service in the
//! scenario's own time, ready for `canarylab sim S.toml --service FILE`.
//!
//!     cargo run --release --example aa_calibrate -- SCENARIO.toml \
//!         --canarylab target/release/canarylab [--time-scale 0.02] \
//!         [--rate-scale 50] [--seconds 180] [--seed 1] [--runs 2000] \
//!         [--draws 100] [--draw-runs 200] --out fitted.toml
//!
//! Then predicts the scenario's A/A false-alarm rate on the fitted service
//! (`--runs` simulated releases at the fitted values, as `canarylab sim
//! S.toml --service fitted.toml --runs 2000 --seed 1` does) and how much of
//! its uncertainty comes from the fit: a parametric bootstrap, `--draws`
//! draws of the fitted parameters from their estimated sampling
//! distributions, `--draw-runs` releases each
//! (`canarylab::calibrate_cmd::aa_prediction`; `--draws 0`: none).
//!
//! Why a conversion: at `--time-scale ts` with `--rate-scale k` one real
//! step plays one scenario step and a scaled rate window holds `k ts`
//! times the scenario's requests. What the judge sees is requests per
//! window, so the fitted rate is written as `fitted x ts` requests per
//! scenario second (the scenario's rate when `k = 1/ts`), and CPU per
//! request as `fitted / ts` ms (so the cpu metric's cores stay what was
//! measured); AR(1) correlations are per step, so they stay as fitted,
//! with the step written as the scenario's. Latency, errors, memory and
//! the pod spread are not time-scaled.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use cluster::calibrate::{self, Calibration, Fit, Window, write};
use cluster::{GooseCommand, Prometheus, ScrapeTarget, Supervision};
use loadgen::{Arrival, Control, Plan, RateProfile, Target, Targets};

struct Args {
    scenario: PathBuf,
    canarylab: PathBuf,
    time_scale: f64,
    rate_scale: f64,
    seconds: f64,
    seed: u64,
    runs: u32,
    draws: usize,
    draw_runs: u32,
    out: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        scenario: PathBuf::new(),
        canarylab: PathBuf::from("target/release/canarylab"),
        time_scale: 0.02,
        rate_scale: 50.0,
        seconds: 180.0,
        seed: 1,
        runs: 2000,
        draws: 100,
        draw_runs: 200,
        out: PathBuf::from("fitted.toml"),
    };
    while let Some(x) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match x.as_str() {
            "--canarylab" => a.canarylab = val("--canarylab")?.into(),
            "--time-scale" => a.time_scale = val("--time-scale")?.parse()?,
            "--rate-scale" => a.rate_scale = val("--rate-scale")?.parse()?,
            "--seconds" => a.seconds = val("--seconds")?.parse()?,
            "--seed" => a.seed = val("--seed")?.parse()?,
            "--runs" => a.runs = val("--runs")?.parse()?,
            "--draws" => a.draws = val("--draws")?.parse()?,
            "--draw-runs" => a.draw_runs = val("--draw-runs")?.parse()?,
            "--out" => a.out = val("--out")?.into(),
            s if s.starts_with("--") => bail!("unknown option {s}"),
            s => a.scenario = s.into(),
        }
    }
    if a.scenario.as_os_str().is_empty() {
        bail!(
            "usage: aa_calibrate SCENARIO.toml [--canarylab PATH] [--time-scale X] [--rate-scale K] [--seconds S] [--seed N] [--runs N] [--draws B] [--draw-runs N] --out FILE"
        );
    }
    Ok(a)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `fit` times `k` (value and standard error), saying so in its source.
fn scaled(fit: &Fit, k: f64, why: &str) -> Fit {
    match fit {
        Fit::Fitted { value, se, source } => Fit::Fitted {
            value: value * k,
            se: se * k,
            source: format!("{source}; x {} ({why})", write::num(k)),
        },
        other => other.clone(),
    }
}

/// The calibration of a time-scaled real run, in the scenario's time.
fn to_scenario_time(c: &Calibration, time_scale: f64, scenario_step_s: f64) -> Calibration {
    let mut c = c.clone();
    c.request_rate = scaled(
        &c.request_rate,
        time_scale,
        "time scale: requests per scenario second in a scaled window",
    );
    c.cpu_ms_per_request = scaled(
        &c.cpu_ms_per_request,
        1.0 / time_scale,
        "1 / time scale: the same cores at the scenario's rate",
    );
    c.step_s = scenario_step_s;
    c
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let scenario = scenarios::Scenario::load(&a.scenario, None)
        .with_context(|| format!("{}", a.scenario.display()))?;
    let plan =
        cluster::plan_release(&scenario, a.time_scale, a.seed)?.with_rate_scale(a.rate_scale)?;
    let command = GooseCommand::new(&a.canarylab).arg("goldengoose");
    let supervision = Supervision::default();
    let n = plan.production_replicas.max(1) as usize;
    let mut pods = Vec::new();
    for i in 0..n {
        let mut config = plan.production.clone();
        config.seed = a.seed.wrapping_mul(1000).wrapping_add(i as u64);
        let name = format!("production-{i}");
        let goose = cluster::Goose::spawn(&command, &name, &config, &supervision)
            .await
            .with_context(|| format!("goldengoose {name} ({})", a.canarylab.display()))?;
        pods.push((name, goose));
    }
    let targets: Vec<ScrapeTarget> = pods
        .iter()
        .map(|(_, g)| ScrapeTarget::new("goldengoose", g.addr()))
        .collect();
    let step = plan.step;
    let prom = Prometheus::start(None, &targets, step).await?;
    let mut load = Plan::new(
        Targets::Weighted(
            pods.iter()
                .map(|(name, g)| Target::parse(&format!("{name}=http://{}/@1", g.addr())))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        // as `canarylab local` sends it
        Arrival::Constant(RateProfile::constant(plan.request_rate)),
    );
    let run = Duration::from_secs_f64(a.seconds);
    load.duration = Some(run + Duration::from_secs(30));
    load.connections = ((plan.request_rate * 0.1).ceil() as usize).clamp(64, 2048);
    load.loopback_only = true;
    load.seed = a.seed;
    let late_after = load.late_after;
    let control = Control::new();
    let task = tokio::spawn(loadgen::run(load, control.clone()));
    eprintln!(
        "aa_calibrate: {n} production pods at {:.0} req/s, scraped every {:?}, for {:.0} s",
        plan.request_rate, step, a.seconds
    );
    // the first scrapes land some seconds after Prometheus starts
    let s = step.as_secs_f64();
    let from = ((unix_now() + 10.0) / s).ceil() * s;
    tokio::time::sleep(run + Duration::from_secs(10)).await;
    let to = ((unix_now() - 2.0 * s) / s).floor() * s;
    let api = prom.api();
    let url = format!("http://{}", prom.addr());
    let window = Window { from, to, step };
    let read = calibrate::read(&api, &url, r#"{version="production"}"#, window, &mut |l| {
        eprintln!("aa_calibrate: {l}")
    })
    .await;
    control.stop();
    let report = task.await??;
    drop(prom);
    for (_, g) in pods {
        g.stop().await;
    }
    let (obs, family, queries) = read?;
    eprintln!(
        "aa_calibrate: loadgen sent {} requests ({} started over {:?} late, {} dropped)",
        report.total.requests, report.total.late_starts, late_after, report.total.dropped
    );
    let real = calibrate::calibrate(&obs);
    eprintln!(
        "as measured (real time, step {} s):\n{}",
        write::num(real.step_s),
        write::summary(&real)
    );
    let file = &scenario.file;
    let cal = to_scenario_time(&real, a.time_scale, file.analysis.scrape_step_s);
    let prov = write::Provenance {
        url,
        selector: r#"{version="production"}"#.into(),
        family: family.name().to_string(),
        from_unix: from,
        to_unix: to,
        queries: queries.into_iter().map(|q| (q.what, q.promql)).collect(),
        telemetry: None,
    };
    let mut toml = format!(
        "# aa_calibrate: {} production pods of {} run for real at --time-scale {} --rate-scale {}\n\
         # ({} s real), calibrated, rate and CPU per request converted to scenario time\n",
        n,
        a.scenario.display(),
        a.time_scale,
        a.rate_scale,
        a.seconds
    );
    toml.push_str(&write::scenario_toml(&cal, &prov));
    scenarios::parse_service(&toml, &a.out).context("the fitted service does not validate")?;
    std::fs::write(&a.out, toml).with_context(|| format!("{}: cannot write", a.out.display()))?;
    println!("{}", write::summary(&cal));
    println!("wrote {}", a.out.display());
    if a.runs > 0 {
        let started = std::time::Instant::now();
        let p = canarylab::calibrate_cmd::aa_prediction(
            &scenario,
            &cal,
            &prov,
            a.runs,
            (a.draws, a.draw_runs),
            1,
        )?;
        println!(
            "A/A false alarms of {} on the fitted service ({:.1} s of simulation):",
            a.scenario.display(),
            started.elapsed().as_secs_f64()
        );
        print!("{}", p.text());
    }
    Ok(())
}
