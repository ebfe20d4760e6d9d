//! Deterministic test series, shaped as Prometheus scrapes goldengoose and
//! Istio sidecars: several tracks and pods, counter resets (a crash-looping
//! canary pod), missing scrapes (shorter and longer than the lookback), pods
//! that start late and pods that go away, scrape jitter in milliseconds.

use prom::Store;
use prom::store::labels_of;

/// Start of the data, Unix milliseconds.
pub const T0_MS: i64 = 1_700_000_000_000;
/// Length of the data.
pub const SPAN_MS: i64 = 3_600_000;
/// Scrape interval.
pub const SCRAPE_MS: i64 = 15_000;

/// Istio's default request-duration buckets (milliseconds).
pub const ISTIO_BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// The Prometheus client's default buckets (seconds).
pub const CLIENT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// SplitMix64: small, portable, enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One pod's life: when it is scraped, and when its counters reset.
#[derive(Debug, Clone)]
pub struct Pod {
    pub track: &'static str,
    pub name: String,
    pub hash: &'static str,
    /// Offsets (ms from T0) of its scrapes.
    pub scrapes: Vec<i64>,
    /// Scrape indices at which the process restarted (counters from zero).
    pub resets: Vec<usize>,
    /// Requests per second and error ratio and latency scale.
    pub rps: f64,
    pub error_ratio: f64,
    pub latency_ms: f64,
}

pub fn pods(rng: &mut Rng) -> Vec<Pod> {
    let mut out = Vec::new();
    /// track, template hash, pods, start and end offsets, rps, error ratio, latency.
    type Spec = (&'static str, &'static str, usize, i64, i64, f64, f64, f64);
    let specs: &[Spec] = &[
        // track, hash, pods, start offset, end offset, rps, errors, latency
        ("production", "6d4f8b7c9", 3, 0, SPAN_MS, 40.0, 0.01, 40.0),
        (
            "baseline",
            "6d4f8b7c9",
            1,
            600_000,
            SPAN_MS,
            12.0,
            0.01,
            40.0,
        ),
        ("canary", "7f5c9d2e1", 2, 600_000, SPAN_MS, 12.0, 0.05, 60.0),
    ];
    for &(track, hash, n, start, end, rps, err, lat) in specs {
        for p in 0..n {
            let name = format!("shop-{track}-{hash}-{}", ["a1b2c", "d3e4f", "g5h6i"][p]);
            let mut scrapes = Vec::new();
            let phase = rng.below(SCRAPE_MS as u64) as i64;
            let mut t = start + phase;
            while t < end {
                // A few milliseconds of scrape jitter, as real scrapes have.
                scrapes.push(t + rng.below(40) as i64);
                t += SCRAPE_MS;
            }
            let mut resets = Vec::new();
            if track == "canary" && p == 0 {
                // Crash loop: down 3 minutes (shorter than the lookback),
                // then again 9 minutes (longer), counters reset each time.
                let a = scrapes.len() / 3;
                let b = 2 * scrapes.len() / 3;
                scrapes.drain(a..a + 12);
                scrapes.drain(b..b + 36);
                resets = vec![a, b];
            }
            if track == "production" && p == 2 {
                // This pod is deleted 40 minutes in.
                scrapes.retain(|&s| s < 2_400_000);
            }
            out.push(Pod {
                track,
                name,
                hash,
                scrapes,
                resets,
                rps: rps * (0.8 + 0.4 * rng.uniform()),
                error_ratio: err,
                latency_ms: lat,
            });
        }
    }
    out
}

fn bucket_label(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        prom::openmetrics::format_value(le)
    }
}

/// Fills a store with every family the tests query.
pub fn store(seed: u64) -> Store {
    let mut rng = Rng(seed);
    let mut st = Store::new();
    let pods = pods(&mut rng);
    for pod in &pods {
        let common: Vec<(&str, String)> = vec![
            ("app", "shop".into()),
            ("namespace", "prod".into()),
            ("pod", pod.name.clone()),
            ("rollouts_pod_template_hash", pod.hash.into()),
            ("version", pod.track.into()),
        ];
        let workload = match pod.track {
            "production" => "shop-primary",
            "canary" => "shop-canary",
            _ => "shop-baseline",
        };
        // Cumulative state.
        let n = pod.scrapes.len();
        let mut ok = 0.0f64;
        let mut bad = 0.0f64;
        let mut client_b = vec![0.0f64; CLIENT_BUCKETS.len() + 1];
        let mut istio_b = vec![0.0f64; ISTIO_BUCKETS.len() + 1];
        let mut sum_s = 0.0f64;
        let mut sum_ms = 0.0f64;
        let mut cpu = 0.0f64;
        let mut cols: std::collections::BTreeMap<String, (prom::Labels, Vec<i64>, Vec<f64>)> =
            Default::default();
        let mut put = |name: &str, extra: &[(&str, String)], t: i64, v: f64, istio: bool| {
            let mut pairs: Vec<(&str, String)> = if istio {
                vec![
                    ("destination_service", "shop.prod.svc.cluster.local".into()),
                    ("destination_workload", workload.into()),
                    ("destination_workload_namespace", "prod".into()),
                    ("pod", pod.name.clone()),
                    ("reporter", "destination".into()),
                ]
            } else {
                common.clone()
            };
            pairs.extend(extra.iter().cloned());
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let l = labels_of(name, &refs);
            let key = prom::openmetrics::series_text(&l);
            let e = cols
                .entry(key)
                .or_insert_with(|| (l, Vec::new(), Vec::new()));
            e.1.push(t);
            e.2.push(v);
        };
        for i in 0..n {
            if pod.resets.contains(&i) {
                ok = 0.0;
                bad = 0.0;
                client_b.iter_mut().for_each(|b| *b = 0.0);
                istio_b.iter_mut().for_each(|b| *b = 0.0);
                sum_s = 0.0;
                sum_ms = 0.0;
                cpu = 0.0;
            }
            let t = T0_MS + pod.scrapes[i];
            let reqs = (pod.rps * 15.0 * (0.7 + 0.6 * rng.uniform())).round();
            for _ in 0..reqs as usize {
                let is_err = rng.uniform() < pod.error_ratio;
                if is_err {
                    bad += 1.0
                } else {
                    ok += 1.0
                }
                let lat_ms = -pod.latency_ms * (1.0 - rng.uniform()).ln();
                sum_ms += lat_ms;
                sum_s += lat_ms / 1000.0;
                let k = CLIENT_BUCKETS
                    .iter()
                    .position(|&b| lat_ms / 1000.0 <= b)
                    .unwrap_or(CLIENT_BUCKETS.len());
                client_b[k] += 1.0;
                let k = ISTIO_BUCKETS
                    .iter()
                    .position(|&b| lat_ms <= b)
                    .unwrap_or(ISTIO_BUCKETS.len());
                istio_b[k] += 1.0;
            }
            cpu += 0.2 + 0.1 * rng.uniform();
            put(
                "http_requests_total",
                &[("code", "200".into())],
                t,
                ok,
                false,
            );
            if bad > 0.0 {
                // The 500 series appears with the first error, as a client library's does.
                put(
                    "http_requests_total",
                    &[("code", "500".into())],
                    t,
                    bad,
                    false,
                );
            }
            let mut acc = 0.0;
            for (k, &le) in CLIENT_BUCKETS
                .iter()
                .chain([f64::INFINITY].iter())
                .enumerate()
            {
                acc += client_b[k];
                put(
                    "http_request_duration_seconds_bucket",
                    &[("le", bucket_label(le))],
                    t,
                    acc,
                    false,
                );
            }
            put("http_request_duration_seconds_sum", &[], t, sum_s, false);
            put("http_request_duration_seconds_count", &[], t, acc, false);
            put(
                "istio_requests_total",
                &[("response_code", "200".into())],
                t,
                ok,
                true,
            );
            put(
                "istio_requests_total",
                &[("response_code", "503".into())],
                t,
                bad,
                true,
            );
            let mut acc = 0.0;
            for (k, &le) in ISTIO_BUCKETS
                .iter()
                .chain([f64::INFINITY].iter())
                .enumerate()
            {
                acc += istio_b[k];
                put(
                    "istio_request_duration_milliseconds_bucket",
                    &[("le", bucket_label(le))],
                    t,
                    acc,
                    true,
                );
            }
            put(
                "istio_request_duration_milliseconds_sum",
                &[],
                t,
                sum_ms,
                true,
            );
            put(
                "istio_request_duration_milliseconds_count",
                &[],
                t,
                acc,
                true,
            );
            put("process_cpu_seconds_total", &[], t, cpu, false);
            let mem = 5.0e7 + 1.0e6 * (i as f64 / 10.0).sin() + 3.0e5 * rng.uniform();
            put("process_resident_memory_bytes", &[], t, mem.round(), false);
            // Kayenta's integration-test metrics.
            put(
                "integration_test_cpu",
                &[("scope", pod.track.into())],
                t,
                10.0 * rng.uniform(),
                false,
            );
            put(
                "integration_failing_metric",
                &[("scope", pod.track.into())],
                t,
                rng.uniform(),
                false,
            );
            put(
                "integration_successful_metric",
                &[("scope", pod.track.into())],
                t,
                rng.uniform(),
                false,
            );
            put(
                "node_cpu",
                &[("job", "node".into()), ("mode", "user".into())],
                t,
                cpu * 0.7,
                false,
            );
            put(
                "node_cpu",
                &[("job", "node".into()), ("mode", "system".into())],
                t,
                cpu * 0.3,
                false,
            );
            put(
                "node_cpu",
                &[("job", "node".into()), ("mode", "idle".into())],
                t,
                15.0 * i as f64,
                false,
            );
        }
        for (_, (labels, ts, vs)) in cols {
            let id = st.series_id(labels);
            st.extend(id, &ts, &vs)
                .expect("generated columns are in order");
        }
    }
    st
}
