//! Speed of the in-memory Prometheus on a big OpenMetrics file: writes
//! synthetic goldengoose + Istio series (the oracle test's generator,
//! repeated over more pods and hours) to FILE until it reaches the size
//! asked, then loads it and times a set of queries, as `canarylab query`
//! does (parse, load, evaluate, JSON).
//!
//! cargo run -p prom --release --example bench -- write FILE 30   # ~30 MB
//! cargo run -p prom --release --example bench -- run FILE T_END_SECONDS [QUERY_INDEX]
//!
//! With a query index (0-based) only that query runs, once instant and
//! once over the range: what `valgrind --tool=callgrind
//! --collect-atstart=no '--toggle-collect=*Engine*range*'` counts.

use std::time::Instant;

#[allow(dead_code)]
#[path = "../tests/prom/data.rs"]
mod data;

const QUERIES: &[&str] = &[
    r#"sum(rate(http_requests_total{version="canary",code=~"5.."}[1m])) / sum(rate(http_requests_total{version="canary"}[1m]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[1m])))"#,
    r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary"}[1m])) by (le))"#,
    r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary"}[1m])) * 100"#,
    r#"avg(process_resident_memory_bytes{version="canary"})"#,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let path = &args[2];
            let target_mb: f64 = args[3].parse()?;
            let mut out = String::new();
            let mut seed = 1;
            // Each copy is another set of pods (its own pod names), an hour long.
            while (out.len() as f64) < target_mb * 1e6 {
                let st = data::store(seed);
                let text = prom::openmetrics::write(&st);
                let body = text.trim_end_matches("# EOF\n");
                for line in body.lines() {
                    out.push_str(&line.replacen("pod=\"shop-", &format!("pod=\"shop{seed}-"), 1));
                    out.push('\n');
                }
                seed += 1;
            }
            out.push_str("# EOF\n");
            std::fs::write(path, &out)?;
            eprintln!("wrote {} bytes, {} copies", out.len(), seed - 1);
        }
        Some("run") => {
            let path = &args[2];
            let t_end: i64 = prom::parse_time_ms(&args[3]).ok_or("bad time")?;
            let t0 = Instant::now();
            let text = std::fs::read_to_string(path)?;
            let store = prom::openmetrics::parse(&text, path)?;
            let load = t0.elapsed().as_secs_f64();
            eprintln!(
                "load: {load:.3} s for {} series, {} samples",
                store.len(),
                store.samples()
            );
            let engine = prom::Engine::new(&store);
            let only: Option<usize> = args.get(4).map(|s| s.parse()).transpose()?;
            for (i, q) in QUERIES.iter().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                let query = prom::Query::parse(q)?;
                let reps = if only.is_some() { 1 } else { 20 };
                let t1 = Instant::now();
                let mut len = 0;
                for _ in 0..reps {
                    len = prom::json::instant(&engine.instant(&query, t_end)?, t_end).len();
                }
                let inst = t1.elapsed().as_secs_f64() / reps as f64;
                let t2 = Instant::now();
                let mut body = String::new();
                for _ in 0..reps.min(5) {
                    let m = engine.range(&query, t_end - 3_000_000, t_end, 30_000)?;
                    body = prom::json::range(&m);
                }
                let range = t2.elapsed().as_secs_f64() / reps.min(5) as f64;
                eprintln!(
                    "instant {:.6} s ({len} B), range 50 min / 30 s {:.6} s ({} B): {q}",
                    inst,
                    range,
                    body.len()
                );
            }
        }
        _ => {
            return Err(
                "usage: bench write FILE MB | bench run FILE T_END_SECONDS [QUERY_INDEX]".into(),
            );
        }
    }
    Ok(())
}
