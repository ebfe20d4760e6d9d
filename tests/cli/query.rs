//! `canarylab query`: PromQL on an OpenMetrics file, Prometheus's API JSON out.

use crate::canarylab;

const DATA: &str = "\
# TYPE http_requests counter
http_requests_total{code=\"200\",version=\"canary\"} 0 1700000000
http_requests_total{code=\"200\",version=\"canary\"} 30 1700000015
http_requests_total{code=\"200\",version=\"canary\"} 60 1700000030
http_requests_total{code=\"200\",version=\"canary\"} 5 1700000045
http_requests_total{code=\"200\",version=\"canary\"} 35 1700000060
# EOF
";

fn data_file(tag: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("canarylab-query-{tag}-{}.om", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn instant_query_prints_prometheus_json() {
    let f = data_file("instant", DATA);
    let (_, out) = canarylab(&[
        "query",
        "--data",
        f.to_str().unwrap(),
        "sum(increase(http_requests_total[1m]))",
        "--time",
        "1700000060",
    ])
    .unwrap();
    // 35 after a reset from 60: increase 30 + 30 + 35 = 95 over the 60 s the
    // samples cover, which is the whole window: no extrapolation.
    assert_eq!(
        out.trim(),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000060,"95"]}]}}"#
    );
    std::fs::remove_file(f).unwrap();
}

#[test]
fn range_query_prints_a_matrix() {
    let f = data_file("range", DATA);
    let (_, out) = canarylab(&[
        "query",
        "--data",
        f.to_str().unwrap(),
        "http_requests_total",
        "--start",
        "1700000030",
        "--end",
        "1700000060.5",
        "--step",
        "15s",
    ])
    .unwrap();
    assert_eq!(
        out.trim(),
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_requests_total","code":"200","version":"canary"},"values":[[1700000030,"60"],[1700000045,"5"],[1700000060,"35"]]}]}}"#
    );
    std::fs::remove_file(f).unwrap();
}

#[test]
fn unsupported_functions_bad_queries_and_bad_files_are_named() {
    let f = data_file("errors", DATA);
    let path = f.to_str().unwrap();
    let e = canarylab(&[
        "query",
        "--data",
        path,
        "predict_linear(http_requests_total[1m], 60)",
        "--time",
        "1",
    ])
    .unwrap_err();
    assert!(
        e.contains("predict_linear") && e.contains("not supported"),
        "{e}"
    );
    let e = canarylab(&[
        "query",
        "--data",
        path,
        "sum(rate(x[1m]) by (le)",
        "--time",
        "1",
    ])
    .unwrap_err();
    assert!(e.contains("position"), "{e}");
    let e = canarylab(&["query", "--data", path, "x", "--time", "yesterday"]).unwrap_err();
    assert!(e.contains("--time"), "{e}");
    let bad = data_file("bad", "x{a=\"1\"} 1\n# EOF\n");
    let e = canarylab(&["query", "--data", bad.to_str().unwrap(), "x", "--time", "1"]).unwrap_err();
    assert!(e.contains(":1:") && e.contains("timestamp"), "{e}");
    std::fs::remove_file(f).unwrap();
    std::fs::remove_file(bad).unwrap();
}
