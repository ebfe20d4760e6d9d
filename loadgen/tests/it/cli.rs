//! The CLI in-process: bad input refused with the flag named, JSON shape,
//! gateway mode.

use clap::Parser;
use loadgen::{Cli, Control, Report};

use crate::server::{Behavior, TestServer};
use crate::within_binomial;

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied())).expect("parses")
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--target", "a=http://127.0.0.1:1/@0", "-d", "1s"],
            "weights add up to 0",
        ),
        (
            &[
                "--target",
                "a=http://127.0.0.1:1/@-1",
                "--target",
                "b=http://127.0.0.1:1/",
                "-d",
                "1s",
            ],
            ">= 0",
        ),
        (&["--target", "a=htp:/x y", "-d", "1s"], "--target"),
        (
            &["--target", "a=https://127.0.0.1/", "-d", "1s"],
            "https is not supported",
        ),
        (
            &[
                "--target",
                "a=http://127.0.0.1:1/",
                "--rate",
                "0",
                "-d",
                "1s",
            ],
            "--rate",
        ),
        (
            &[
                "--target",
                "a=http://127.0.0.1:1/",
                "--rate",
                "0s=10,1s=0",
                "-d",
                "1s",
            ],
            "not positive",
        ),
        (&["--target", "a=http://127.0.0.1:1/"], "unbounded run"),
        (
            &["--target", "a=http://127.0.0.1:1/", "-d", "soon"],
            "--duration",
        ),
        (
            &[
                "--target",
                "a=http://10.0.0.1/",
                "-d",
                "1s",
                "--loopback-only",
            ],
            "loopback",
        ),
        (
            &[
                "--target",
                "a=http://127.0.0.1:1/",
                "--step",
                "1s:b=1",
                "-d",
                "1s",
            ],
            "unknown target \"b\"",
        ),
        (
            &[
                "--gateway",
                "http://127.0.0.1:1/",
                "--step",
                "a=1",
                "-d",
                "1s",
            ],
            "--step cannot be used with --gateway",
        ),
        (&["-d", "1s"], "no targets"),
    ];
    for (args, needle) in cases {
        let err = cli(args)
            .plan()
            .expect_err(&format!("{args:?} must be refused"));
        let msg = err.to_string();
        assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}");
    }
    assert!(
        Cli::try_parse_from(["loadgen", "--poisson", "--target", "a=http://127.0.0.1:1/"]).is_err(),
        "--poisson needs --rate"
    );
}

#[tokio::test]
async fn json_report_has_the_documented_shape() {
    let a = TestServer::start(Behavior::Ok("a")).await;
    let b = TestServer::start(Behavior::Sleep(std::time::Duration::from_millis(2))).await;
    let path = std::env::temp_dir().join(format!("loadgen-it-{}.json", std::process::id()));
    let args = cli(&[
        "--target",
        &format!("production={}@3", a.url()),
        "--target",
        &format!("canary={}@1", b.url()),
        "--rate",
        "200",
        "-d",
        "1s",
        "--interval",
        "250ms",
        "--json",
        path.to_str().expect("utf-8 path"),
        "--loopback-only",
    ]);
    let mut out = Vec::new();
    let report = loadgen::run_cli(&args, Control::new(), &mut out)
        .await
        .expect("run");
    let text = std::fs::read_to_string(&path).expect("json written");
    let _ = std::fs::remove_file(&path);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let parsed: Report = serde_json::from_value(v.clone()).expect("JSON reads back as a Report");
    assert_eq!(parsed, report);

    assert_eq!(v["mode"], "open-loop constant");
    assert_eq!(v["target_rate"], 200.0);
    assert!(v["achieved_rate"].as_f64().expect("rate") > 150.0);
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    for t in targets {
        for key in [
            "name",
            "url",
            "requests",
            "responses",
            "status",
            "errors",
            "dropped",
            "late_starts",
            "rate",
            "latency_ms",
            "uncorrected_latency_ms",
            "latency_by_status_ms",
        ] {
            assert!(t.get(key).is_some(), "target lacks {key}: {t}");
        }
        for key in ["connect", "timeout", "reset", "other"] {
            assert!(t["errors"][key].is_u64(), "errors lack {key}");
        }
        for key in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
            assert!(t["latency_ms"][key].is_f64(), "latency lacks {key}: {t}");
        }
        assert!(t["latency_by_status_ms"]["2xx"]["p99"].is_f64());
    }
    assert!(v["total"]["requests"].as_u64().expect("total") >= 195);
    let intervals = v["intervals"].as_array().expect("intervals");
    assert!(
        (4..=5).contains(&intervals.len()),
        "{} intervals of 250 ms in 1 s",
        intervals.len()
    );
    let i0 = &intervals[0];
    for key in ["start_s", "end_s", "requests", "errors", "rate"] {
        assert!(i0.get(key).is_some(), "interval lacks {key}");
    }
    let it = &i0["targets"][0];
    for key in [
        "name",
        "requests",
        "responses",
        "status_5xx",
        "errors",
        "dropped",
        "rate",
        "latency_ms",
    ] {
        assert!(it.get(key).is_some(), "interval target lacks {key}");
    }
    let summary = String::from_utf8(out).expect("utf-8");
    assert!(
        summary.contains("production") && summary.contains("canary") && summary.contains("p99.9"),
        "{summary}"
    );
    let canary = report.target("canary").expect("canary");
    assert!(canary.latency_ms.expect("lat").p50 >= 2.0);
    assert!(within_binomial(
        canary.requests,
        report.total.requests,
        0.25,
        4.5
    ));
}

#[tokio::test]
async fn gateway_mode_attributes_by_response_header() {
    let gw = TestServer::start(Behavior::Alternate).await;
    let args = cli(&[
        "--gateway",
        &gw.url(),
        "-n",
        "200",
        "-c",
        "1",
        "-q",
        "--loopback-only",
    ]);
    let report = loadgen::run_cli(&args, Control::new(), &mut Vec::new())
        .await
        .expect("run");
    let names: Vec<_> = report
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.requests))
        .collect();
    assert_eq!(names, vec![("v1", 100), ("v2", 100)]);
}

#[tokio::test]
async fn metrics_endpoint_serves_the_client_side_view() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let a = TestServer::start(Behavior::Ok("a")).await;
    // Find a free port; the tiny race with other processes is acceptable in a test.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let args = cli(&[
        "--target",
        &format!("alpha={}", a.url()),
        "--rate",
        "200",
        "-d",
        "1500ms",
        "-q",
        "--metrics-addr",
        &addr,
    ]);
    let control = Control::new();
    let running = tokio::spawn({
        let control = control.clone();
        async move { loadgen::run_cli(&args, control, &mut Vec::new()).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("metrics endpoint listens");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("read");
    running.await.expect("task").expect("run");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("loadgen_responses_total{target=\"alpha\",class=\"2xx\"}"))
        .unwrap_or_else(|| panic!("no 2xx counter for alpha in {text}"));
    let n: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("count");
    assert!(n > 50, "{line}");
    assert!(text.contains("loadgen_request_duration_seconds_bucket{target=\"alpha\",le=\"+Inf\"}"));
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "endpoint closed after the run"
    );
}
