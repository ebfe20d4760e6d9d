//! The simulated Prometheus end to end: a controller's `Measure` commands
//! answered by the PromQL evaluator over the run's raw series (Argo's and
//! Flagger's Istio queries, the Kayenta catalog config's own), and the
//! Kayenta metrics' compiled programs against the evaluator.

use std::collections::VecDeque;

use judge::Workspace;
use release::{
    Command, Controller, Event, MeasureRequest, Measurement, Millis, Outcome, Query, RangeRequest,
    ReleaseEnd, Split,
};
use scenarios::Scenario;
use sim::Prepared;

use crate::{catalog, scenario};

/// A controller that routes `split` to the canary and measures every query
/// at each of `times` (and, with `range`, once more as a range query over
/// them all), then stops.
struct Prober {
    queries: Vec<Query>,
    times: Vec<Millis>,
    split: Split,
    range: bool,
    next: usize,
    out: VecDeque<Command>,
    /// (time, query, answer), in order.
    answers: Vec<(Millis, usize, Measurement)>,
    asked: Vec<(u64, Millis, usize)>,
}

impl Prober {
    fn new(queries: Vec<Query>, times: Vec<Millis>, canary: f64) -> Self {
        Self {
            queries,
            times,
            split: Split {
                canary,
                baseline: canary,
                production: 100.0 - 2.0 * canary,
            },
            range: false,
            next: 0,
            out: VecDeque::new(),
            answers: Vec::new(),
            asked: Vec::new(),
        }
    }

    fn ask(&mut self, now: Millis, range: Option<RangeRequest>) {
        for q in 0..self.queries.len() {
            let id = self.asked.len() as u64;
            self.asked.push((id, now, q));
            self.out.push_back(Command::Measure(MeasureRequest {
                id,
                query: q,
                at: now,
                range,
            }));
        }
    }
}

impl Controller for Prober {
    fn handle(&mut self, now: Millis, event: Event) {
        match event {
            Event::Start => {
                self.out.push_back(Command::SetWeights(self.split));
                self.out.push_back(Command::WakeAt(self.times[0]));
            }
            Event::TimeReached if self.next < self.times.len() && now >= self.times[self.next] => {
                self.ask(now, None);
                self.next += 1;
                if let Some(&t) = self.times.get(self.next) {
                    self.out.push_back(Command::WakeAt(t));
                    return;
                }
                if self.range {
                    let range = RangeRequest {
                        start: self.times[0],
                        end: now,
                        step: self.times.get(1).map_or(10_000, |t| t - self.times[0]),
                    };
                    self.ask(now, Some(range));
                }
                self.out.push_back(Command::Done(Outcome {
                    end: ReleaseEnd::Promote,
                    reason: "probed".into(),
                    decided_at: now,
                    ended_at: now,
                    deploy_started: None,
                    traffic_at: Some(0),
                    decided_at_interval: None,
                    timeline: Vec::new(),
                }));
            }
            Event::Measured { id, value } => {
                let (_, at, q) = self.asked[id as usize];
                self.answers.push((at, q, value));
            }
            _ => {}
        }
    }

    fn poll(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    fn queries(&self) -> &[Query] {
        &self.queries
    }
}

fn query(name: &str, promql: &str) -> Query {
    Query {
        name: name.into(),
        promql: promql.into(),
    }
}

/// Runs `prober` on scenario `sc`; returns the detail and the answers.
fn probe(
    sc: &Scenario,
    mut prober: Prober,
    seed: u64,
) -> (
    reports::model::RunDetail,
    Vec<(Millis, usize, Measurement)>,
    prom::Store,
) {
    let p = Prepared::new(sc).unwrap().with_queries(&prober.queries);
    let mut ws = Workspace::default();
    let (_, detail, store) = sim::run::drive(&p, seed, true, true, &mut ws, &mut prober);
    (detail.unwrap(), prober.answers, store.unwrap())
}

fn vector(m: &Measurement) -> &[f64] {
    match m {
        Measurement::Vector(v) => v,
        other => panic!("not a vector: {other:?}"),
    }
}

// The catalog's analyses after their variables are substituted (Argo's
// `{{args.service-name}}`, Flagger's `{{ namespace }}` and `{{ target }}`).
pub const ARGO_SUCCESS: &str = r#"sum(irate(istio_requests_total{reporter="destination",destination_service=~"goldengoose-canary.default.svc.cluster.local",response_code!~"5.*"}[5m])) / sum(irate(istio_requests_total{reporter="destination",destination_service=~"goldengoose-canary.default.svc.cluster.local"}[5m]))"#;
pub const ARGO_P99: &str = r#"histogram_quantile(0.99, sum(irate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_service=~"goldengoose-canary.default.svc.cluster.local"}[5m])) by (le))"#;
pub const FLAGGER_SUCCESS: &str = r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",destination_workload=~"WORKLOAD",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",destination_workload=~"WORKLOAD"}[1m])) * 100"#;
pub const FLAGGER_P99: &str = r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="default",destination_workload=~"WORKLOAD"}[1m])) by (le))"#;

#[test]
fn argo_and_flagger_queries_select_the_canary_and_production_pods() {
    let sc = scenario(
        "three-pods",
        "description = \"x\"\nexpect = \"pass\"\n[pipeline]\ncanary_replicas = 3\nbaseline = \"production\"\nbaseline_replicas = 0\ntraffic = { canary = 10, baseline = 0, production = 90 }\n[analysis]\nconfig = \"canary-config.json\"\n",
    );
    let queries = vec![
        query("argo-success", ARGO_SUCCESS),
        query("argo-p99", ARGO_P99),
        query(
            "flagger-success-canary",
            &FLAGGER_SUCCESS.replace("WORKLOAD", "goldengoose"),
        ),
        query(
            "flagger-p99-primary",
            &FLAGGER_P99.replace("WORKLOAD", "goldengoose-primary"),
        ),
        query(
            "canary-pods",
            r#"count(count by (pod) (istio_requests_total{destination_workload="goldengoose"}))"#,
        ),
        query(
            "hashes",
            r#"count(count by (rollouts_pod_template_hash) (http_requests_total))"#,
        ),
        query("not-a-query", "sum(rate(x[5m]"),
    ];
    let times = vec![600_000, 1_200_000];
    let (_, answers, store) = probe(&sc, Prober::new(queries, times, 10.0), 3);
    assert_eq!(answers.len(), 14);
    for (at, q, m) in &answers {
        let ctx = format!("query {q} at {at}: {m:?}");
        match q {
            0 => {
                let v = vector(m)[0];
                assert!((0.98..=1.0).contains(&v), "{ctx}");
            }
            1 | 3 => {
                // p99 in milliseconds: goldengoose's is ~160 ms
                let v = vector(m)[0];
                assert!((50.0..1000.0).contains(&v), "{ctx}");
            }
            2 => {
                let v = vector(m)[0];
                assert!((98.0..=100.0).contains(&v), "{ctx}");
            }
            4 => assert_eq!(vector(m), &[3.0], "{ctx}"),
            5 => assert_eq!(vector(m), &[2.0], "{ctx}"),
            _ => match m {
                Measurement::Error(e) => assert!(e.contains("not-a-query"), "{e}"),
                other => panic!("{ctx}: {other:?}"),
            },
        }
    }
    // only the families the queries read
    let names = store.metric_names();
    assert!(names.contains(&"istio_request_duration_milliseconds_bucket"));
    assert!(names.contains(&"http_requests_total"));
    assert!(!names.contains(&"process_resident_memory_bytes") || names.len() > 3);
}

#[test]
fn telemetry_renames_families_labels_and_track_names() {
    let sc = scenario(
        "renamed",
        "description = \"x\"\nexpect = \"pass\"\n[analysis]\nconfig = \"canary-config.json\"\n[telemetry]\napp = \"shop\"\nnamespace = \"shop\"\n[telemetry.metrics]\nhttp_requests_total = \"shop_requests_total\"\n[telemetry.labels]\ncode = \"status\"\nversion = \"service\"\n[telemetry.canary]\nversion = \"shop-canary\"\n",
    );
    let queries = vec![
        query(
            "errors",
            r#"sum(rate(shop_requests_total{service="shop-canary", status="500"}[1m])) / sum(rate(shop_requests_total{service="shop-canary"}[1m]))"#,
        ),
        query("old-name", r#"sum(http_requests_total)"#),
        query(
            "namespace",
            r#"count(shop_requests_total{namespace="shop", app="shop"})"#,
        ),
    ];
    let (_, answers, _) = probe(&sc, Prober::new(queries, vec![600_000], 10.0), 5);
    let v = vector(&answers[0].2);
    assert!(v.len() == 1 && (0.0..0.05).contains(&v[0]), "{answers:?}");
    assert!(vector(&answers[1].2).is_empty(), "{answers:?}");
    // canary and baseline, a 200 and a 500 series each
    assert_eq!(vector(&answers[2].2), &[4.0], "{answers:?}");
}

#[test]
fn a_crash_looping_canary_is_absent_while_down_and_its_counters_reset() {
    let sc = catalog("crash-loop");
    let queries = vec![
        query("up", r#"count(http_requests_total{version="canary"})"#),
        query(
            "increase",
            r#"sum(increase(http_requests_total{version="canary"}[30m]))"#,
        ),
    ];
    let times: Vec<Millis> = (1..=180).map(|k| k * 10_000).collect();
    let (_, answers, store) = probe(&sc, Prober::new(queries, times, 10.0), 9);
    let ups: Vec<bool> = answers
        .iter()
        .filter(|(_, q, _)| *q == 0)
        .map(|(_, _, m)| !vector(m).is_empty())
        .collect();
    assert!(ups.iter().any(|u| *u), "never up");
    assert!(ups.iter().any(|u| !*u), "never down: {ups:?}");
    // the increase over 30 minutes is answered throughout, across restarts
    let increases = answers
        .iter()
        .filter(|(_, q, m)| *q == 1 && !vector(m).is_empty());
    assert!(increases.count() > 100);
    // in the raw samples: a stale marker when the pods go down, and
    // counters that start again lower after the restart
    let canary = store
        .series()
        .iter()
        .find(|s| s.labels.get("version") == Some("canary") && s.labels.get("code") == Some("200"))
        .unwrap();
    assert!(canary.values.iter().any(|v| prom::store::is_stale(*v)));
    let live: Vec<f64> = canary
        .values
        .iter()
        .copied()
        .filter(|v| !prom::store::is_stale(*v))
        .collect();
    assert!(live.windows(2).any(|w| w[1] < w[0]), "no counter reset");
}

#[test]
fn range_queries_answer_a_matrix() {
    let sc = catalog("aa-typical");
    let queries = vec![query(
        "rate",
        r#"sum(rate(http_requests_total{version="canary"}[1m]))"#,
    )];
    let times: Vec<Millis> = (6..=12).map(|k| k * 10_000).collect();
    let mut prober = Prober::new(queries, times, 10.0);
    prober.range = true;
    let (_, answers, _) = probe(&sc, prober, 1);
    let instant: Vec<f64> = answers[..7].iter().map(|(_, _, m)| vector(m)[0]).collect();
    match &answers[7].2 {
        Measurement::Matrix(series) => assert_eq!(series, &vec![instant]),
        other => panic!("{other:?}"),
    }
}

/// Every metric of `sc`'s config in a run's detail (its compiled program
/// where it applies, the evaluator elsewhere) against the evaluator's
/// answer to the same query on the run's raw series, at every scrape step
/// for `steps` steps: equal to 1e-9 relative, present or absent alike.
/// Returns how many points were compared.
fn metrics_match_the_evaluator(sc: &Scenario, seed: u64, steps: i64) -> usize {
    let p = Prepared::new(sc).unwrap();
    let metrics = p.metrics().len();
    let mut queries = Vec::new();
    for side in [0, 1] {
        for m in 0..metrics {
            queries.push(query("m", p.metrics().query(m, side).text()));
        }
    }
    let step = (sc.file.analysis.scrape_step_s * 1000.0) as Millis;
    let times: Vec<Millis> = (1..=steps as Millis).map(|k| k * step).collect();
    let traffic = sc.file.pipeline.traffic;
    let mut prober = Prober::new(queries, times, traffic.canary);
    prober.split = traffic.into();
    let (detail, answers, _) = probe(sc, prober, seed);
    let mut compared = 0;
    for (at, q, m) in &answers {
        let k = (*at / step) as usize;
        let (series, canary) = (&detail.series[q % metrics], *q < metrics);
        let direct = if canary {
            series.experiment[k - 1]
        } else {
            series.control[k - 1]
        };
        let got = vector(m).first().copied().filter(|v| v.is_finite());
        let same = match (direct, got) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            (None, None) => true,
            _ => false,
        };
        assert!(
            same,
            "{} {} ({}) at step {k}: plan {direct:?}, evaluator {got:?}",
            sc.name,
            series.name,
            if canary { "canary" } else { "control" }
        );
        compared += 1;
    }
    compared
}

/// The catalog config compiles whole (no metric needs the evaluator once
/// its rate window is full), and its values are the evaluator's at every
/// step, the first minute and a crash-looping canary's downtime included.
#[test]
fn the_catalog_config_is_compiled_and_equals_the_evaluator() {
    for name in [
        "aa-typical",
        "latency-10pct",
        "errors-2pct",
        "aa-vs-production",
        "memory-leak",
        "crash-loop",
        "aa-independent-noise",
    ] {
        let sc = catalog(name);
        let p = Prepared::new(&sc).unwrap();
        for m in 0..p.metrics().len() {
            for side in [0, 1] {
                assert_ne!(
                    p.metrics().program(m, side),
                    &sim::metrics::Program::Fallback,
                    "{name}: {}",
                    p.metrics().query(m, side).text()
                );
            }
        }
        let compared = metrics_match_the_evaluator(&sc, 11, 120);
        assert_eq!(compared, 2 * p.metrics().len() * 120, "{name}");
    }
}

/// Query shapes beyond the catalog's, on several pods per track: the
/// compiled ones (`sum`/`avg` of `rate`/`increase`, Istio's histogram and
/// latency sum, a memory sum, arithmetic) and ones left to the evaluator
/// (`max` over pods, `offset`, a single pod), all equal to the evaluator.
#[test]
fn other_query_shapes_equal_the_evaluator() {
    let metrics = [
        (
            r#"sum(rate(http_requests_total{version="${scope}"}[1m]))"#,
            true,
        ),
        (
            r#"avg(rate(process_cpu_seconds_total{version="${scope}"}[30s])) * 100"#,
            true,
        ),
        (
            r#"sum(increase(http_requests_total{version="${scope}",code="500"}[1m])) / sum(increase(http_requests_total{version="${scope}"}[1m]))"#,
            true,
        ),
        (
            r#"histogram_quantile(0.9, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_service=~"goldengoose-${scope}\\..*"}[1m])))"#,
            true,
        ),
        (
            r#"sum(rate(istio_request_duration_milliseconds_sum{destination_service=~"goldengoose-${scope}\\..*"}[1m])) / sum(rate(istio_request_duration_milliseconds_count{destination_service=~"goldengoose-${scope}\\..*"}[1m]))"#,
            true,
        ),
        (
            r#"sum(process_resident_memory_bytes{version="${scope}"}) - 1"#,
            true,
        ),
        (
            r#"max(rate(http_requests_total{version="${scope}"}[1m]))"#,
            false,
        ),
        (
            r#"sum(rate(http_requests_total{version="${scope}"}[1m] offset 30s))"#,
            false,
        ),
        (
            r#"min(rate(http_request_duration_seconds_count{version="${scope}"}[1m]))"#,
            false,
        ),
    ];
    let config = serde_json::json!({
        "metrics": metrics.iter().enumerate().map(|(i, (q, _))| serde_json::json!({
            "name": format!("m{i}"),
            "query": {"type": "prometheus", "customInlineTemplate": format!("PromQL:{q}")},
            "groups": ["g"],
            "analysisConfigurations": {"canary": {"direction": "increase"}},
        })).chain([serde_json::json!({
            "name": "atlas_p95",
            "query": {"type": "atlas", "q": "name,latency,:eq"},
            "groups": ["g"],
            "analysisConfigurations": {"canary": {"direction": "increase"}},
        })]).collect::<Vec<_>>(),
        "classifier": {"groupWeights": {"g": 100}},
    });
    let path = std::env::temp_dir().join(format!("sim-shapes-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let toml = "description = \"d\"\nexpect = \"pass\"\n\
                [pipeline]\ncanary_replicas = 2\nbaseline_replicas = 3\n\
                [analysis]\nsignals = { atlas_p95 = \"latency_quantile:0.95\" }\n";
    let loaded = Scenario::parse(
        toml,
        std::path::Path::new("shapes.toml"),
        Some(path.as_path()),
    );
    let _ = std::fs::remove_file(&path);
    let mut sc = loaded.unwrap();
    sc.name = "shapes".into();
    let p = Prepared::new(&sc).unwrap();
    for (m, (q, compiled)) in metrics.iter().enumerate() {
        for side in [0, 1] {
            let is = p.metrics().program(m, side) != &sim::metrics::Program::Fallback;
            assert_eq!(is, *compiled, "{q}");
        }
    }
    assert_ne!(
        p.metrics().program(metrics.len(), 0),
        &sim::metrics::Program::Fallback,
        "the named signal compiles"
    );
    metrics_match_the_evaluator(&sc, 5, 60);
}

/// What measuring costs: CPU time of runs that measure Argo's two queries
/// every 5 minutes over 35 minutes against Kayenta's runs of the same
/// scenario (printed; run with `--ignored --nocapture`, in release for
/// numbers worth quoting).
#[test]
#[ignore = "a measurement, not a check"]
fn cost_of_measuring_argo_queries() {
    let sc = catalog("aa-typical");
    let runs = 200u64;
    let p = Prepared::new(&sc).unwrap();
    let mut ws = Workspace::default();
    let started = std::time::Instant::now();
    for seed in 0..runs {
        sim::run_once(&p, seed, false, &mut ws);
    }
    let kayenta = started.elapsed().as_secs_f64() / runs as f64;
    let queries = vec![query("success", ARGO_SUCCESS), query("p99", ARGO_P99)];
    let times: Vec<Millis> = (1..=7).map(|k| k * 300_000).collect();
    let p = Prepared::new(&sc).unwrap().with_queries(&queries);
    let started = std::time::Instant::now();
    for seed in 0..runs {
        let mut prober = Prober::new(queries.clone(), times.clone(), 10.0);
        sim::run::drive(&p, seed, false, false, &mut ws, &mut prober);
    }
    let argo = started.elapsed().as_secs_f64() / runs as f64;
    eprintln!(
        "per run: Kayenta (judged windows) {:.0} us; 14 Argo measurements on raw series {:.0} us",
        kayenta * 1e6,
        argo * 1e6
    );
}

/// The raw series of a run of `sc` that measures `queries` every 5 minutes
/// until `until` (ms), all families the run draws.
pub fn probe_store(sc: &Scenario, queries: &[String], until: Millis, seed: u64) -> prom::Store {
    let queries: Vec<Query> = queries.iter().map(|q| query("q", q)).collect();
    let times: Vec<Millis> = (1..=until / 300_000).map(|k| k * 300_000).collect();
    let mut prober = Prober::new(queries, times, 10.0);
    prober.split = sc.file.pipeline.traffic.into();
    probe(sc, prober, seed).2
}

#[test]
fn each_pod_burns_cpu_for_its_own_requests() {
    // production's 6 pods split the track's requests at random: each pod's
    // CPU is the idle CPU plus its own requests' CPU, as a real pod's is
    // (what `canarylab calibrate` regresses per pod)
    let sc = catalog("aa-vs-production");
    let svc = sc.file.service.clone();
    let store = probe_store(
        &sc,
        &[
            "sum(rate(process_cpu_seconds_total[1m]))".into(),
            "sum(rate(http_requests_total[1m]))".into(),
        ],
        1_800_000,
        3,
    );
    let mut pods: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = Default::default();
    for s in store.series() {
        if s.labels.get("version") != Some("production") {
            continue;
        }
        let pod = s.labels.get("pod").unwrap().to_string();
        let e = pods.entry(pod).or_default();
        match s.labels.get("__name__") {
            Some("process_cpu_seconds_total") => e.0 = s.values.clone(),
            Some("http_requests_total") => {
                e.1.resize(s.values.len(), 0.0);
                for (a, v) in e.1.iter_mut().zip(&s.values) {
                    *a += v;
                }
            }
            _ => {}
        }
    }
    assert_eq!(pods.len(), svc.replicas as usize);
    let pods: Vec<_> = pods.into_values().collect();
    let steps = pods[0].0.len() - 1;
    assert!(steps > 100, "{steps} steps");
    let diff = |v: &[f64], k: usize| v[k + 1] - v[k];
    let step_s = sc.file.analysis.scrape_step_s;
    let mut slopes = Vec::new();
    for k in 0..steps {
        // within a step every pod burns the same idle CPU and the same CPU
        // per request: CPU is exactly affine in the pod's requests
        let (c0, r0) = (diff(&pods[0].0, k), diff(&pods[0].1, k));
        let (c1, r1) = pods[1..]
            .iter()
            .map(|p| (diff(&p.0, k), diff(&p.1, k)))
            .max_by(|a, b| (a.1 - r0).abs().total_cmp(&(b.1 - r0).abs()))
            .unwrap();
        assert!(r1 != r0, "step {k}: pods with equal requests");
        let slope = (c1 - c0) / (r1 - r0);
        for p in &pods {
            let (c, r) = (diff(&p.0, k), diff(&p.1, k));
            let want = c0 + slope * (r - r0);
            assert!(
                (c - want).abs() <= 1e-6 * c0.abs(),
                "step {k}: {c} vs {want}"
            );
        }
        let idle = c0 - slope * r0;
        // both within the generator's 2% noise (10 sd) of the service's
        assert!(
            (idle / step_s / svc.cpu_idle_cores - 1.0).abs() < 0.2,
            "step {k}: idle {idle}"
        );
        slopes.push(slope * 1000.0);
    }
    let mean = slopes.iter().sum::<f64>() / slopes.len() as f64;
    assert!(
        (mean / svc.cpu_ms_per_request - 1.0).abs() < 0.01,
        "CPU per request {mean} ms, service {} ms",
        svc.cpu_ms_per_request
    );
}

/// A median and a tail over the same buckets, computed in one pass
/// (`points_continued_pair`), are the points each gives in a pass of its
/// own over the whole range, with the pair's pass continued in pieces of
/// every length (a growing window's), a crash-looping canary's downtime
/// included; cursors that stand apart take two passes, the same points.
#[test]
fn paired_quantiles_are_their_own_passes() {
    use rand::SeedableRng;
    use sim::metrics::Point;
    use sim::series::{Draws, Generator, TrackSpec};
    let mut paired = 0;
    for name in ["aa-typical", "crash-loop", "latency-10pct"] {
        let sc = catalog(name);
        let p = Prepared::new(&sc).unwrap();
        let plan = p.metrics();
        let track = |regression| TrackSpec {
            pods: 2,
            age_at_start_s: 20.0,
            latency_offset: 0.01,
            regression,
        };
        let draws = Draws {
            histogram: true,
            union: true,
            latency_sum: true,
            cpu: true,
            memory: true,
        };
        let mut g = Generator::new(
            &sc.file.service,
            sc.file.analysis.scrape_step_s,
            [track(sc.file.regression), track(None)],
            draws,
        );
        g.set_shares(0.0, [0.05, 0.05]);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let steps = 200;
        g.advance_to(steps, &mut rng);
        for side in [0, 1] {
            for m in 0..plan.len() {
                let Some(m2) = plan.shares_window(m, side) else {
                    continue;
                };
                paired += 1;
                for k0 in [0, 3, 30] {
                    let mut whole = (Vec::new(), Vec::new());
                    plan.points(m, side, &g, k0, steps, &mut whole.0);
                    plan.points(m2, side, &g, k0, steps, &mut whole.1);
                    let values = whole.0.iter().filter(|p| matches!(p, Point::Value(_)));
                    let fallbacks = whole.0.iter().filter(|p| **p == Point::Fallback);
                    let (values, fallbacks) = (values.count(), fallbacks.count());
                    assert!(values > 0 || name == "crash-loop", "{name} {side}");
                    assert!(fallbacks > 0 || k0 >= 6, "{name} {side} {k0}");
                    // pieces of 1, 2, 3, ... steps
                    let (mut c, mut c2) = (plan.cursor(m, side), plan.cursor(m2, side));
                    let mut got = (Vec::new(), Vec::new());
                    // then once more to the end
                    let mut ends = Vec::new();
                    let (mut k1, mut piece) = (k0, 1);
                    while k1 <= steps {
                        ends.push(k1);
                        k1 += piece;
                        piece += 1;
                    }
                    ends.push(steps);
                    for k1 in ends {
                        plan.points_continued_pair(
                            (m, m2),
                            side,
                            &g,
                            (&mut c, &mut c2),
                            k0,
                            k1,
                            (&mut got.0, &mut got.1),
                        );
                    }
                    let bits = |v: &[Point]| format!("{v:?}");
                    assert_eq!(bits(&got.0), bits(&whole.0), "{name} {m} {side} {k0}");
                    assert_eq!(bits(&got.1), bits(&whole.1), "{name} {m2} {side} {k0}");
                    // the partner's cursor ahead: two passes
                    let (mut c, mut c2) = (plan.cursor(m, side), plan.cursor(m2, side));
                    let mut ahead = Vec::new();
                    plan.points_continued(m2, side, &g, &mut c2, k0, k0 + 10, &mut ahead);
                    let mut got = Vec::new();
                    plan.points_continued_pair(
                        (m, m2),
                        side,
                        &g,
                        (&mut c, &mut c2),
                        k0,
                        steps,
                        (&mut got, &mut ahead),
                    );
                    assert_eq!(bits(&got), bits(&whole.0));
                    assert_eq!(bits(&ahead), bits(&whole.1));
                }
            }
        }
    }
    assert_eq!(paired, 6, "the median pairs with the tail, both sides");
}
