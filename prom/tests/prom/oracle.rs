//! The oracle: the same series written as OpenMetrics, backfilled with
//! `promtool tsdb create-blocks-from openmetrics`, served by a real
//! Prometheus on 127.0.0.1; every query answered by both at many times,
//! instant and range, and the answers compared: same result type, same
//! label sets, same timestamps, values equal to 1e-9 relative.

use prom::{Engine, Query};

use crate::data::{self, SCRAPE_MS, SPAN_MS, T0_MS};

#[path = "../support/real.rs"]
mod real;
use real::*;

/// The queries: the catalog's and examples' Kayenta configs (scope
/// substituted as cluster/src/query.rs builds them), Kayenta's own
/// Prometheus fixtures, Flagger's built-in Istio checks (PEERS.md), Argo
/// Rollouts-style queries, and a spread of the supported language.
fn queries() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    for scope in ["canary", "baseline", "production"] {
        // scenarios/catalog/canary-config.json and examples/canary-config.json
        q.push(format!("histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{{version=\"{scope}\"}}[1m])))"));
        q.push(format!("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{version=\"{scope}\"}}[1m])))"));
        q.push(format!("sum(rate(http_requests_total{{version=\"{scope}\",code=~\"5..\"}}[1m])) / sum(rate(http_requests_total{{version=\"{scope}\"}}[1m]))"));
        q.push(format!(
            "avg(rate(process_cpu_seconds_total{{version=\"{scope}\"}}[1m]))"
        ));
        q.push(format!(
            "avg(process_resident_memory_bytes{{version=\"{scope}\"}})"
        ));
        // Kayenta's integration-test configs: standard-template "namespace='${{namespace}}', scope='${{scope}}'"
        q.push(format!(
            "avg(integration_test_cpu{{namespace='prod', scope='{scope}'}})"
        ));
        q.push(format!(
            "avg(integration_failing_metric{{namespace='prod', scope='{scope}'}})"
        ));
        q.push(format!(
            "avg(integration_successful_metric{{namespace='prod', scope='{scope}'}})"
        ));
        // Kayenta's scratch Prometheus config (metricName node_cpu, labelBindings, by mode).
        q.push(format!(
            "avg(node_cpu{{version=\"{scope}\",mode=~\"user|system\",job=\"node\"}}) by (mode)"
        ));
    }
    for target in ["shop-canary", "shop-primary", "shop-.*"] {
        for interval in ["1m", "5m"] {
            // Flagger's built-in Istio checks (pkg/metrics/observers/istio.go).
            q.push(format!("sum(rate(istio_requests_total{{reporter=\"destination\",destination_workload_namespace=\"prod\",destination_workload=~\"{target}\",response_code!~\"5.*\"}}[{interval}])) / sum(rate(istio_requests_total{{reporter=\"destination\",destination_workload_namespace=\"prod\",destination_workload=~\"{target}\"}}[{interval}])) * 100"));
            q.push(format!("histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{reporter=\"destination\",destination_workload_namespace=\"prod\",destination_workload=~\"{target}\"}}[{interval}])) by (le))"));
        }
    }
    // Argo Rollouts style.
    q.extend(
        [
            r#"sum(irate(istio_requests_total{reporter="destination",destination_workload=~"shop-canary",response_code!~"5.*"}[5m])) / sum(irate(istio_requests_total{reporter="destination",destination_workload=~"shop-canary"}[5m]))"#,
            r#"sum(irate(http_requests_total{rollouts_pod_template_hash="7f5c9d2e1",code!~"5.."}[5m])) / sum(irate(http_requests_total{rollouts_pod_template_hash="7f5c9d2e1"}[5m])) * 100"#,
            r#"sum(rate(http_requests_total{code=~"5.."}[5m] offset 10m))"#,
            r#"sum(rate(http_requests_total{version="canary"}[5m])) - sum(rate(http_requests_total{version="canary"}[5m] offset 5m))"#,
            r#"sum(increase(http_requests_total[10m])) by (version)"#,
            r#"sum by (version) (rate(http_requests_total[2m])) > bool 10"#,
            r#"scalar(sum(rate(http_requests_total{version="canary"}[5m]))) * 100"#,
        ]
        .map(String::from),
    );
    // The language, broadly.
    q.extend(
        [
            "http_requests_total",
            "http_requests_total{version=\"canary\"}",
            "http_requests_total{version!=\"production\",code=~\"2..\"}",
            "http_requests_total{pod!~\".*a1b2c\"} offset 3m",
            "process_resident_memory_bytes",
            "rate(http_requests_total[1m])",
            "rate(http_requests_total[5m])",
            "irate(http_requests_total[1m])",
            "increase(http_requests_total[3m])",
            "delta(process_resident_memory_bytes[5m])",
            "idelta(process_resident_memory_bytes[2m])",
            "deriv(process_resident_memory_bytes[5m])",
            "resets(http_requests_total[10m])",
            "resets(http_requests_total[1m])",
            "sum by (version) (resets(http_request_duration_seconds_count[30m]))",
            "changes(process_resident_memory_bytes[5m])",
            "changes(http_requests_total[10m])",
            "avg_over_time(process_resident_memory_bytes[5m])",
            "min_over_time(process_resident_memory_bytes[5m])",
            "max_over_time(process_resident_memory_bytes[10m])",
            "sum_over_time(process_resident_memory_bytes[2m])",
            "count_over_time(http_requests_total[5m])",
            "last_over_time(http_requests_total[10m])",
            "quantile_over_time(0.9, process_resident_memory_bytes[10m])",
            "stddev_over_time(process_resident_memory_bytes[10m])",
            "sum(http_requests_total)",
            "sum by (version) (http_requests_total)",
            "sum without (pod, rollouts_pod_template_hash) (rate(http_requests_total[5m]))",
            "avg by (version, code) (rate(http_requests_total[5m]))",
            "min by (version) (process_resident_memory_bytes)",
            "max(process_resident_memory_bytes) by (version)",
            "count by (version) (http_requests_total)",
            "quantile(0.9, rate(http_requests_total[5m]))",
            "quantile by (version) (0.5, process_resident_memory_bytes)",
            "topk(3, process_resident_memory_bytes)",
            "bottomk(2, rate(http_requests_total[5m]))",
            "topk by (version) (1, process_resident_memory_bytes)",
            "stddev(process_resident_memory_bytes)",
            "group by (version) (http_requests_total)",
            "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[5m]))",
            "histogram_quantile(0.5, sum by (le, version) (rate(http_request_duration_seconds_bucket[5m])))",
            "histogram_quantile(0, sum by (le) (rate(istio_request_duration_milliseconds_bucket[5m])))",
            "histogram_quantile(1, sum by (le) (rate(istio_request_duration_milliseconds_bucket[5m])))",
            "histogram_quantile(1.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket[5m])))",
            "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
            "http_requests_total{code=\"500\"} / ignoring(code) http_requests_total{code=\"200\"}",
            "http_requests_total{code=\"500\"} / on(pod) http_requests_total{code=\"200\"}",
            "sum by (version, code) (rate(http_requests_total[5m])) / ignoring(code) group_left sum by (version) (rate(http_requests_total[5m]))",
            "sum by (version) (rate(http_requests_total[5m])) / ignoring(code) group_right sum by (version, code) (rate(http_requests_total[5m]))",
            "rate(http_requests_total[5m]) * on(pod) group_left(rollouts_pod_template_hash) process_resident_memory_bytes",
            "process_resident_memory_bytes > 50000000",
            "process_resident_memory_bytes > bool 50000000",
            "50000000 < process_resident_memory_bytes",
            "process_resident_memory_bytes == bool process_resident_memory_bytes",
            "http_requests_total{code=\"200\"} >= on(pod) http_requests_total{code=\"500\"}",
            "http_requests_total and on(pod) http_requests_total{code=\"500\"}",
            "http_requests_total{code=\"500\"} or http_requests_total{version=\"baseline\"}",
            "process_resident_memory_bytes unless on(version) process_resident_memory_bytes{version=\"canary\"}",
            "-process_resident_memory_bytes",
            "process_resident_memory_bytes % 7 + 2 ^ 3",
            "abs(delta(process_resident_memory_bytes[5m]))",
            "clamp_min(deriv(process_resident_memory_bytes[5m]), 0)",
            "clamp_max(rate(http_requests_total[5m]), 10)",
            "clamp(rate(http_requests_total[5m]), 1, 10)",
            "scalar(sum(process_resident_memory_bytes))",
            "scalar(process_resident_memory_bytes)",
            "vector(1)",
            "vector(time())",
            "time()",
            "time() - 1700000000",
            "absent(http_requests_total{version=\"nope\",code=\"200\"})",
            "absent(http_requests_total{version=\"canary\"})",
            "absent_over_time(http_requests_total{version=\"nope\"}[5m])",
            "1 + 2 * 3",
            "2 > bool 1",
            "sum(rate(http_requests_total[5m])) by (version) * 100",
            "max_over_time(rate(http_requests_total{version=\"canary\"}[1m])[10m:1m])",
            "avg_over_time(sum(rate(http_requests_total[1m]))[5m:30s])",
            "rate(http_requests_total{version=\"canary\"}[5m] @ 1700002000)",
            "http_requests_total{version=\"production\"} @ 1700001000 offset 1m",
            "ceil(rate(http_requests_total[5m]))",
            "sqrt(process_resident_memory_bytes)",
            "sum(process_resident_memory_bytes) / count(process_resident_memory_bytes)",
            "http_requests_total + on(pod, code) http_requests_total",
            "rate(http_requests_total[5m]) + process_resident_memory_bytes",
            // Errors, which must be errors on both sides.
            "http_requests_total / on(version) process_resident_memory_bytes",
            "process_resident_memory_bytes / on(version) group_left http_requests_total",
            "rate(http_requests_total[5m]) or rate(http_requests_total[5m] offset 1m)",
        ]
        .map(String::from),
    );
    q
}

#[test]
#[ignore = "needs prometheus: apt-get install prometheus"]
fn evaluator_matches_a_real_prometheus() {
    let dir = TempDir::new("oracle");
    let store = data::store(7);
    let (store, server) = backfill_and_serve(&dir.0, &store);
    let engine = Engine::new(&store);

    // Instant times: start, inside the first scrape interval, exactly on
    // scrape timestamps, in the canary's short and long gaps, after the
    // deleted pod's last scrape (inside and past the lookback), past the end.
    let canary = &store
        .series()
        .iter()
        .find(|s| s.labels.get("version") == Some("canary"))
        .expect("a canary series");
    let mut times: Vec<i64> = vec![
        T0_MS,
        T0_MS + 7_500,
        T0_MS + 300_000,
        T0_MS + 603_000,
        T0_MS + 1_200_000,
        canary.timestamps[5],
        canary.timestamps[canary.timestamps.len() / 3] + 90_000,
        canary.timestamps[2 * canary.timestamps.len() / 3 - 1] + 400_000,
        T0_MS + 2_400_000 + 240_000,
        T0_MS + 2_400_000 + 360_000,
        T0_MS + SPAN_MS - 1,
        T0_MS + SPAN_MS + 120_000,
        T0_MS + SPAN_MS + 420_000,
    ];
    times.sort_unstable();
    let ranges: [(i64, i64, i64); 3] = [
        (T0_MS + 300_000, T0_MS + SPAN_MS + 300_000, 60_000),
        (T0_MS + 1_000_000, T0_MS + 2_200_000, 17_000),
        (T0_MS - 60_000, T0_MS + 900_500, SCRAPE_MS * 2),
    ];

    let mut compared = 0usize;
    let mut nonempty = 0usize;
    let mut identical = 0usize;
    let mut range_success = 0usize;
    let mut instant_identical = 0usize;
    let mut mismatched_bytes: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for q in queries() {
        let query = Query::parse(&q).unwrap_or_else(|e| panic!("{e}"));
        for &t in &times {
            let ours = match engine.instant(&query, t) {
                Ok(v) => prom::json::instant(&v, t),
                Err(e) => prom::json::error("execution", &e.to_string()),
            };
            let path = format!("/api/v1/query?query={}&time={}", urlencode(&q), secs(t));
            let (_, theirs) = http_get(server.addr, &path).expect("query prometheus");
            compared += 1;
            nonempty += usize::from(has_data(&theirs));
            if ours == theirs {
                instant_identical += 1;
            }
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!("instant {q} @ {}: {d}", secs(t)));
            }
        }
        for &(s, e, step) in &ranges {
            let ours = match engine.range(&query, s, e, step) {
                Ok(m) => prom::json::range(&m),
                Err(err) => prom::json::error("execution", &err.to_string()),
            };
            let path = format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={}",
                urlencode(&q),
                secs(s),
                secs(e),
                secs(step)
            );
            let (_, theirs) = http_get(server.addr, &path).expect("query prometheus");
            compared += 1;
            nonempty += usize::from(has_data(&theirs));
            range_success += usize::from(has_data(&theirs));
            if ours == theirs {
                identical += 1;
            } else if has_data(&theirs) && mismatched_bytes.len() < 3 {
                mismatched_bytes.push(format!(
                    "{q}\nours   {}\ntheirs {}",
                    &ours[..ours.len().min(300)],
                    &theirs[..theirs.len().min(300)]
                ));
            }
            if let Some(d) = diff(&ours, &theirs) {
                failures.push(format!(
                    "range {q} [{}, {}, {}]: {d}",
                    secs(s),
                    secs(e),
                    secs(step)
                ));
            }
        }
    }
    drop(server);
    eprintln!(
        "{compared} answers compared, {nonempty} of them non-empty successes, {identical} range bodies byte-identical ({range_success} with data), {instant_identical} instant bodies byte-identical, {} differ",
        failures.len()
    );
    assert!(compared > 1000, "only {compared} comparisons");
    // Guard against a vacuous pass (Prometheus without the data, say).
    eprintln!("{}", mismatched_bytes.join("\n"));
    assert!(
        nonempty * 10 > compared * 5,
        "only {nonempty} of {compared} answers carry data"
    );
    // Range results are sorted by labels on both sides: the bodies must be
    // the same bytes (instant vectors keep Prometheus's evaluation order,
    // which for aggregations is not ours, hence the parsed comparison).
    assert!(
        mismatched_bytes.is_empty(),
        "range bodies differ in bytes:\n{}",
        mismatched_bytes.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ from Prometheus:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
