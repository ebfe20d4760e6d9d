//! A simulated run's raw series (a crash-looping canary's resets and gaps
//! included) dumped as OpenMetrics, backfilled with `promtool tsdb
//! create-blocks-from openmetrics` into a real Prometheus on 127.0.0.1, and
//! the catalog analyses' queries (Argo's and Flagger's after substitution,
//! the Kayenta config's with `${scope}`) answered by both, instant and
//! range: same series, timestamps, values to 1e-9 relative. The helpers
//! are prom/tests/prom/oracle.rs's. The evaluator reads the dumped file
//! back, as Prometheus does (OpenMetrics carries no stale markers).

use prom::{Engine, Query};

#[path = "../../../prom/tests/support/real.rs"]
mod real;
use real::*;

#[test]
#[ignore = "needs prometheus: apt-get install prometheus"]
fn simulated_series_answer_as_a_real_prometheus_does() {
    use crate::prometheus::{ARGO_P99, ARGO_SUCCESS, FLAGGER_P99, FLAGGER_SUCCESS, probe_store};
    let sc = crate::scenario(
        "crash-loop-two-pods",
        "description = \"x\"\nexpect = \"fail\"\n[regression]\nkind = \"crash_loop\"\ncrash_after_s = 200\n[pipeline]\ncanary_replicas = 2\nbaseline = \"production\"\nbaseline_replicas = 0\ntraffic = { canary = 10, baseline = 0, production = 90 }\n[analysis]\nconfig = \"canary-config.json\"\n",
    );
    let mut queries: Vec<String> = vec![
        ARGO_SUCCESS.into(),
        ARGO_P99.into(),
        FLAGGER_SUCCESS.replace("WORKLOAD", "goldengoose"),
        FLAGGER_P99.replace("WORKLOAD", "goldengoose-primary"),
        FLAGGER_P99.replace("WORKLOAD", "goldengoose"),
        "rate(http_requests_total[10m])".into(),
        "http_requests_total".into(),
    ];
    for scope in ["canary", "production"] {
        for m in &sc.config.metrics {
            let text = m
                .query
                .custom_inline_template
                .as_deref()
                .unwrap_or_default();
            let text = text.strip_prefix("PromQL:").unwrap_or(text);
            queries.push(text.replace("${scope}", scope));
        }
    }
    let store = probe_store(&sc, &queries, 2_400_000, 4);
    let dir = TempDir::new("simprom");
    let (store, server) = backfill_and_serve(&dir.0, &store);
    let engine = Engine::new(&store);
    let t0 = sim::prometheus::EPOCH_MS;
    let times: Vec<i64> = (1..=16).map(|k| t0 + k * 150_000 + 1).collect();
    let (mut compared, mut nonempty, mut failures) = (0, 0, Vec::new());
    for q in &queries {
        let query = Query::parse(q).unwrap_or_else(|e| panic!("{e}"));
        for &t in &times {
            let ours = match engine.instant(&query, t) {
                Ok(v) => prom::json::instant(&v, t),
                Err(e) => prom::json::error("execution", &e.to_string()),
            };
            let path = format!("/api/v1/query?query={}&time={}", urlencode(q), secs(t));
            let (_, theirs) = http_get(server.addr, &path).expect("query prometheus");
            compared += 1;
            nonempty += usize::from(has_data(&theirs));
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!("instant {q} @ {}: {d}", secs(t)));
            }
        }
        let (start, end, step) = (t0 + 60_000, t0 + 2_400_000, 30_000);
        let ours = match engine.range(&query, start, end, step) {
            Ok(v) => prom::json::range(&v),
            Err(e) => prom::json::error("execution", &e.to_string()),
        };
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=30",
            urlencode(q),
            secs(start),
            secs(end)
        );
        let (_, theirs) = http_get(server.addr, &path).expect("query prometheus");
        compared += 1;
        nonempty += usize::from(has_data(&theirs));
        if let Some(d) = diff(&ours, &theirs) {
            failures.push(format!("range {q}: {d}"));
        }
    }
    eprintln!(
        "{compared} answers compared, {nonempty} with data, {} different",
        failures.len()
    );
    assert!(
        nonempty * 2 > compared,
        "too few answers with data: {nonempty} of {compared}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
