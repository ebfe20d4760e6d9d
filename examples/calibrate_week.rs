//! How long `canarylab calibrate` takes on a week of 10 s data for 20 pods
//! (the issue's measurement), end to end through a real Prometheus:
//! generates the pods' goldengoose series (per-step normal approximations
//! of the simulator's service: a daily swing, AR(1) load noise and drift,
//! a log-normal histogram; about one scrape in 1,000 missed), writes them
//! as OpenMetrics, backfills them
//! with `promtool tsdb create-blocks-from openmetrics`, starts Prometheus
//! on the blocks, then times `calibrate::read` (the chunked range queries)
//! and `calibrate::calibrate` (the fit) separately.
//!
//!     cargo run --release --example calibrate_week -- [DAYS [PODS]]
//!
//! Needs promtool and prometheus on PATH. A week of 20 pods is 27.8
//! million samples, 2.5 GB of OpenMetrics text (removed at the end).
//!
//! Measured 2026-12-06 on 2 cores at load average 11-18 from other builds
//! (`cargo run --release --example calibrate_week -- 7 20`): generated in
//! 5.2 s, written and backfilled with promtool and Prometheus started in
//! 157 s, read in 86.5 s, fitted in 0.33 s; all 15 parameters fitted.
//! Two things were out of proportion before: promtool re-parsed the whole
//! file once per 2-hour block (84 passes; 21 blocks after 17 minutes in an
//! earlier run), now one block (`--max-block-duration`); and Prometheus
//! 2.42's `timestamp()` (the sample times calibrate reads to tell missed
//! scrapes) costs time quadratic in a range query's points (0.72 s for 500
//! points, 27 s for 4,000, about 170 s per 10,000-point chunk, 20 minutes
//! for the week), then read in 500-point chunks (121 queries, most of the
//! 86.5 s). Now the sample times are the raw samples of the request
//! counter (an instant query of `http_requests_total{...}[d]` per
//! 10,000-step chunk, 7 queries). Same session, a real A/A release loop
//! and other builds beside it (load average 17-27 at the starts), release
//! builds of the commit before and after (the before one draws no missed
//! scrapes), run one after the other: **read 84.5 s before (165 queries),
//! 20.4 s after (51 queries), 4.1 times faster**, fit 0.27 s and 0.14 s; the after run also times the old
//! sample-time read on its own Prometheus (39.2 s for its 121 queries) and
//! checks that both find the same ~0.1% missed scrapes.

#[path = "../prom/tests/support/real.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod real;

use std::time::{Duration, Instant};

use cluster::PromApi;
use cluster::calibrate::{self, Window};
use prom::Store;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

const STEP_S: f64 = 10.0;
const BOUNDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// 2026-11-01T00:00:00Z.
const START_S: i64 = 1_793_491_200;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let days: f64 = args.next().map_or(Ok(7.0), |a| a.parse())?;
    let pods: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let steps = (days * 86_400.0 / STEP_S).round() as usize;

    let t = Instant::now();
    let store = generate(steps, pods);
    eprintln!(
        "generated {pods} pods x {steps} steps: {} series, {} samples in {:.1} s",
        store.len(),
        store.samples(),
        t.elapsed().as_secs_f64()
    );
    let dir = real::TempDir::new("calibrate-week");
    let t = Instant::now();
    let (_, server) = backfill(&dir.0, &store)?;
    drop(store);
    eprintln!(
        "written, backfilled with promtool, Prometheus started in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let url = format!("http://{}", server.addr);
    // as `canarylab calibrate` reads: a week's range query may take as
    // long as Prometheus's own query timeout
    let api = PromApi::from_url(&url)?.with_read_timeout(cluster::prom::QUERY_TIMEOUT);
    let window = Window {
        from: START_S as f64,
        to: START_S as f64 + steps as f64 * STEP_S,
        step: Duration::from_secs_f64(STEP_S),
    };
    let t = Instant::now();
    let mut queries = 0usize;
    let mut count = |_: &str| queries += 1;
    let reading = calibrate::read(&api, &url, r#"{app="week"}"#, window, &mut count);
    let (obs, family, _) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(reading)?;
    let read_s = t.elapsed().as_secs_f64();
    // The sample times as calibrate read them before (Prometheus's
    // `timestamp()`, quadratic in a range query's points, so in 500-point
    // chunks), timed on the same Prometheus, and checked against the raw
    // samples' validity: the same steps must be missing.
    let t = Instant::now();
    let old = timestamp_validity(&api, window)?;
    let old_s = t.elapsed().as_secs_f64();
    let same = obs.pods.iter().all(|p| {
        old.get(&p.name).is_some_and(|valid| {
            valid.len() == p.requests.len()
                && valid
                    .iter()
                    .zip(&p.requests)
                    .all(|(v, r)| *v == r.is_finite())
        })
    });
    drop(server);
    let t = Instant::now();
    let c = calibrate::calibrate(&obs);
    let fit_s = t.elapsed().as_secs_f64();
    println!("{}", calibrate::write::summary(&c));
    println!(
        "{days} days at {STEP_S} s for {pods} pods ({} family, {} steps): read {read_s:.1} s ({queries} progress lines), fit {fit_s:.2} s, total {:.1} s",
        family.name(),
        c.steps,
        read_s + fit_s
    );
    println!(
        "sample times as read before (timestamp() in 500-point chunks): {old_s:.1} s on the same Prometheus; \
         same valid steps as the raw samples: {same}"
    );
    if !same {
        anyhow::bail!("the raw samples and timestamp() disagree on which steps are valid");
    }
    Ok(())
}

/// Per pod, which steps `max by (pod, instance) (timestamp(...))` read in
/// 500-point range queries makes valid (the newest sample one scrape
/// after the previous one), as calibrate decided before it read raw samples.
fn timestamp_validity(
    api: &PromApi,
    window: Window,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<bool>>> {
    let q = r#"max by (pod, instance) (timestamp(http_requests_total{app="week"}))"#;
    let steps = window.steps();
    let mut times: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for c in 0..steps.div_ceil(500) {
        let (a, b) = (c * 500, ((c + 1) * 500).min(steps));
        let series = rt.block_on(api.query_range(
            q,
            window.from + a as f64 * STEP_S,
            window.from + b as f64 * STEP_S,
            window.step,
        ))?;
        for s in series {
            let pod = s.labels.get("pod").cloned().unwrap_or_default();
            let v = times
                .entry(pod)
                .or_insert_with(|| vec![f64::NAN; steps + 1]);
            for (t, x) in s.points {
                let k = ((t - window.from) / STEP_S).round() as usize;
                if k <= steps {
                    v[k] = x;
                }
            }
        }
    }
    Ok(times
        .into_iter()
        .map(|(pod, t)| {
            let valid = (1..=steps)
                .map(|k| {
                    let dt = t[k] - t[k - 1];
                    dt.is_finite() && dt > 0.5 * STEP_S && dt < 1.5 * STEP_S
                })
                .collect();
            (pod, valid)
        })
        .collect())
}

fn gauss(rng: &mut Xoshiro256PlusPlus) -> f64 {
    StandardNormal.sample(rng)
}

/// Cumulative goldengoose counters per pod: 50 req/s per pod with a 30%
/// daily swing, load noise (0.03, 0.5), drift (0.01, 0.9), median 50 ms x
/// exp(offset), sigma 0.5, 0.1% errors, 5 ms CPU per request, 300 MiB.
fn generate(steps: usize, pods: usize) -> Store {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let mut store = Store::new();
    let les: Vec<String> = BOUNDS
        .iter()
        .map(|b| prom::openmetrics::format_value(*b))
        .chain(["+Inf".to_string()])
        .collect();
    struct Pod {
        ids: Vec<prom::SeriesId>,
        values: Vec<f64>,
        offset: f64,
        drift: f64,
    }
    let mut all: Vec<Pod> = (0..pods)
        .map(|i| {
            let pod = format!("week-{i:02}");
            let l = |name: &str, extra: &[(&str, &str)]| {
                let mut pairs = vec![("app", "week"), ("pod", pod.as_str())];
                pairs.extend_from_slice(extra);
                prom::store::labels_of(name, &pairs)
            };
            let mut ids = vec![
                store.series_id(l("http_requests_total", &[("code", "200")])),
                store.series_id(l("http_requests_total", &[("code", "500")])),
                store.series_id(l("http_request_duration_seconds_sum", &[])),
                store.series_id(l("http_request_duration_seconds_count", &[])),
                store.series_id(l("process_cpu_seconds_total", &[])),
                store.series_id(l("process_resident_memory_bytes", &[])),
            ];
            for le in &les {
                ids.push(store.series_id(l("http_request_duration_seconds_bucket", &[("le", le)])));
            }
            let n = ids.len();
            Pod {
                ids,
                values: vec![0.0; n],
                offset: 0.05 * gauss(&mut rng),
                drift: 0.0,
            }
        })
        .collect();
    let mut load = 0.0;
    for k in 0..=steps {
        let t_ms = (START_S + (k as f64 * STEP_S) as i64) * 1000;
        load = 0.5 * load + 0.03 * (1.0f64 - 0.25).sqrt() * gauss(&mut rng);
        let hour = ((k as f64 * STEP_S) / 3600.0) % 24.0;
        let mean = 50.0 * STEP_S * (1.0 + 0.3 * (std::f64::consts::TAU * hour / 24.0).sin());
        for (i, p) in all.iter_mut().enumerate() {
            p.drift = 0.9 * p.drift + 0.01 * (1.0f64 - 0.81).sqrt() * gauss(&mut rng);
            if k > 0 {
                let m = mean * f64::exp(load);
                let r = (m + m.sqrt() * gauss(&mut rng)).round().max(0.0);
                let e = (r * 0.001 + (r * 0.001).sqrt() * gauss(&mut rng))
                    .round()
                    .clamp(0.0, r);
                let ln_median = 0.05f64.ln() + 0.5 * load + p.drift + p.offset;
                let mean_latency = (ln_median + 0.125).exp();
                let sum = r * mean_latency * (1.0 + 0.53 / r.max(1.0).sqrt() * gauss(&mut rng));
                p.values[0] += r - e;
                p.values[1] += e;
                p.values[2] += sum.max(0.0);
                p.values[3] += r;
                p.values[4] += (0.02 * STEP_S + r * 0.005) * (1.0 + 0.02 * gauss(&mut rng));
                for (j, b) in BOUNDS.iter().enumerate() {
                    let f = judge::stats::pnorm((b.ln() - ln_median) / 0.5);
                    p.values[6 + j] += (r * f).round();
                }
                p.values[6 + BOUNDS.len()] += r;
            }
            p.values[5] = 300.0 * 1_048_576.0 * (1.0 + 0.003 * gauss(&mut rng));
            // about one scrape in 1,000 missed (the counters go on): the
            // steps calibrate must tell from its sample times
            if k > 0 && (k * 31 + i * 17) % 997 == 0 {
                continue;
            }
            for (id, v) in p.ids.iter().zip(&p.values) {
                store
                    .push(*id, t_ms, *v)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .expect("in order");
            }
        }
    }
    store
}

/// [`real::backfill_and_serve`] without reading the file back (a week is
/// a gigabyte of text).
fn backfill(dir: &std::path::Path, store: &Store) -> anyhow::Result<((), real::Prometheus)> {
    use std::io::Write;
    let om = dir.join("series.om");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&om)?);
    prom::openmetrics::write_to(store, &mut file)?;
    file.flush()?;
    drop(file);
    let tsdb = dir.join("tsdb");
    // promtool parses the whole file once per block it writes (Prometheus
    // 2.42's cmd/promtool/backfill.go loops over the blocks' time ranges
    // and re-reads the input in each): at the default 2 h blocks a week is
    // 84 passes over 2.5 GB. Its hidden --max-block-duration picks the
    // largest compaction range under it (2 h x 3^k: 486 h here), so a week
    // takes one or two passes.
    let out = std::process::Command::new("promtool")
        .args([
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=1000h",
        ])
        .arg(&om)
        .arg(&tsdb)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&om)?;
    Ok(((), real::start_prometheus(dir, &tsdb)))
}
