//! `canarylab serve`'s `/analyze` end to end: the `canarylab serve` process
//! (first stdout line: its address; SIGTERM: drains and exits 0) queries a
//! real Prometheus scraping goldengoose baseline and canary under real
//! traffic. A latency regression fails (422 with `?fail-status=true`), an
//! A/A release passes, and the queries it sent are those the local mode's
//! analysis sends for the same window.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cluster::analysis::{fetch_pairs, unix_now};
use cluster::{Goose, Prometheus, ScopeVars, ScrapeTarget, Supervision};
use judge::CanaryConfig;
use loadgen::{Arrival, Control, Plan, RateProfile, Target, Targets};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(1);
const SERVICE_TIME: Duration = Duration::from_millis(5);

fn example_config_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/canary-config.json");
    std::fs::read_to_string(path).expect("example config")
}

/// A `canarylab serve` process, SIGKILLed by PID on drop unless stopped.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServeProcess {
    fn start(prometheus: SocketAddr, config_dir: &std::path::Path) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canarylab"))
            .args(["serve", "--listen", "127.0.0.1:0", "--prometheus"])
            .arg(format!("http://{prometheus}"))
            .arg("--config-dir")
            .arg(config_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("canarylab serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = match read.ok().and_then(|_| line.trim().parse().ok()) {
            Some(addr) => addr,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("first stdout line is not an address: {line:?}");
            }
        };
        ServeProcess { child, addr }
    }

    /// SIGTERM; the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        self.child.wait().expect("waits")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("writes");
    stream.write_all(body).expect("writes");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("reads");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    (status, value)
}

struct Analyzed {
    /// `/analyze` with the config inline.
    inline: (u16, Value),
    /// `/analyze?fail-status=true` with the config by name.
    by_name: (u16, Value),
    /// What the local mode's analysis fetched for the same window.
    local_queries: Vec<(String, String, String)>,
}

/// Baseline and canary goldengoose, Prometheus scraping both, 100 req/s
/// split 50/50 for a while, then `/analyze` for a window of it.
async fn analyze(canary_faults: &[&str]) -> Analyzed {
    let supervision = Supervision::default();
    let goose = |version: &str, faults: &[&str], seed| goldengoose::Config {
        version: version.into(),
        service_time: SERVICE_TIME,
        faults: faults
            .iter()
            .map(|f| f.parse().expect("fault spec"))
            .collect(),
        seed,
        ..Default::default()
    };
    let baseline = Goose::spawn(
        &crate::goldengoose(),
        "baseline-0",
        &goose("baseline", &[], 1),
        &supervision,
    )
    .await
    .expect("baseline starts");
    let canary = Goose::spawn(
        &crate::goldengoose(),
        "canary-0",
        &goose("canary", canary_faults, 2),
        &supervision,
    )
    .await
    .expect("canary starts");
    let targets = vec![
        ScrapeTarget::new("goldengoose", baseline.addr()).with_label("track", "baseline"),
        ScrapeTarget::new("goldengoose", canary.addr()).with_label("track", "canary"),
    ];
    let prom = Prometheus::start(None, &targets, STEP)
        .await
        .expect("prometheus starts");
    let prom = Arc::new(prom);
    // One directory per test: the two tests run at once in one process.
    let dir = crate::TempRoot::new(&format!("serve-configs-{}", canary_faults.join("-")));
    std::fs::write(dir.0.join("goldengoose.json"), example_config_text()).expect("writes");
    let server = ServeProcess::start(prom.addr(), &dir.0);

    let mut plan = Plan::new(
        Targets::Weighted(vec![
            Target::parse(&format!("baseline=http://{}/@50", baseline.addr())).expect("target"),
            Target::parse(&format!("canary=http://{}/@50", canary.addr())).expect("target"),
        ]),
        Arrival::Constant(RateProfile::constant(100.0)),
    );
    plan.duration = Some(Duration::from_secs(60));
    plan.connections = 16;
    let control = Control::new();
    let started = unix_now().ceil();
    let load = tokio::spawn(loadgen::run(plan, control.clone()));
    // 8 s of warm-up (1m rates need a few scrapes), then a 10 s window,
    // plus two scrape intervals for the last samples to land.
    let (start, end) = (started + 8.0, started + 18.0);
    tokio::time::sleep(Duration::from_secs_f64((end + 2.0 - unix_now()).max(0.0))).await;

    let scopes = json!({
        "control": {"scope": "baseline"},
        "experiment": {"scope": "canary"},
        "start": start, "end": end, "step": "1s",
    });
    let mut inline = scopes.clone();
    inline["canaryConfig"] = serde_json::from_str(&example_config_text()).expect("json");
    // Kayenta's shape, the config by name.
    let scope = |s: &str| json!({"scope": s, "location": "", "start": start, "end": end, "step": 1, "extendedScopeParams": {}});
    let by_name = json!({
        "configName": "goldengoose",
        "scopes": {"default": {"controlScope": scope("baseline"), "experimentScope": scope("canary")}},
    });
    let addr = server.addr;
    let (inline, by_name) = tokio::task::spawn_blocking(move || {
        (
            post(addr, "/analyze", inline.to_string().as_bytes()),
            post(
                addr,
                "/analyze?fail-status=true",
                by_name.to_string().as_bytes(),
            ),
        )
    })
    .await
    .expect("joins");

    let local_queries = {
        let config = CanaryConfig::from_json(&example_config_text()).expect("config");
        let pairs = fetch_pairs(
            &prom.api(),
            &config,
            &ScopeVars::new("baseline"),
            &ScopeVars::new("canary"),
            start,
            end,
            STEP,
        )
        .await
        .expect("local mode fetches");
        pairs
            .iter()
            .map(|p| {
                let a = p.attributes.as_ref().expect("queries recorded");
                let q = |side: &str| a[side]["query"].as_str().unwrap_or_default().to_string();
                (p.name.clone(), q("control"), q("experiment"))
            })
            .collect()
    };

    control.stop();
    let report = load.await.expect("joins").expect("load runs");
    assert!(report.targets.iter().all(|t| t.requests > 0));
    let status = server.stop();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
    drop(prom);
    assert!(canary.stop().await.is_some());
    assert!(baseline.stop().await.is_some());
    Analyzed {
        inline,
        by_name,
        local_queries,
    }
}

fn sent_queries(answer: &Value) -> Vec<(String, String, String)> {
    answer["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .map(|q| {
            let s = |k: &str| q[k].as_str().unwrap_or_default().to_string();
            (s("metric"), s("control"), s("experiment"))
        })
        .collect()
}

pub(crate) async fn analyze_fails_a_latency_regression_from_real_prometheus() {
    let run = analyze(&["latency=30ms"]).await;
    let (status, answer) = &run.inline;
    assert_eq!(*status, 200, "{answer}");
    assert_eq!(answer["verdict"], "Fail", "{answer:#}");
    assert_eq!(answer["passed"], false);
    assert_eq!(answer["score"]["classification"], "Fail");
    assert_eq!(answer["results"][0]["name"], "latency_p50");
    assert_eq!(answer["results"][0]["classification"], "High", "{answer:#}");
    assert_eq!(sent_queries(answer), run.local_queries);
    assert!(
        run.local_queries[0].2.contains(r#"version="canary""#),
        "{:?}",
        run.local_queries
    );
    let (status, answer) = &run.by_name;
    assert_eq!(*status, 422, "fail-status: {answer}");
    assert_eq!(answer["verdict"], "Fail");
    assert_eq!(sent_queries(answer), run.local_queries);
}

pub(crate) async fn analyze_passes_an_aa_release_from_real_prometheus() {
    let run = analyze(&[]).await;
    let (status, answer) = &run.inline;
    assert_eq!(*status, 200, "{answer}");
    assert_eq!(answer["verdict"], "Pass", "{answer:#}");
    assert_eq!(answer["passed"], true);
    assert_eq!(sent_queries(answer), run.local_queries);
    let (status, answer) = &run.by_name;
    assert_eq!(*status, 200, "{answer}");
    assert_eq!(answer["verdict"], "Pass");
    assert_eq!(answer["window"]["step"], 1.0);
}
