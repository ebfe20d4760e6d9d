//! A Prometheus that dies during a release: restarted on the same address,
//! the release goes on (the failed query retried and counted); left down,
//! the release fails at the analysis step once the retry bound is spent,
//! with everything stopped.

use std::path::PathBuf;
use std::time::Duration;

use cluster::prom::Retry;
use cluster::results::{self, ReleaseEnd};
use cluster::{ReleaseOptions, Step, run_release};
use scenarios::Scenario;

use crate::TempRoot;

fn scenario() -> Scenario {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "scenarios",
        "catalog",
        "aa-typical.toml",
    ]
    .iter()
    .collect();
    let mut s = Scenario::load(&path, None).expect("catalog scenario loads");
    s.file.service.cpu_ms_per_request = 0.0;
    s.file.service.request_rate = 100.0;
    // 2 s warmup, then two 6 s intervals at scale 0.02.
    s.file.pipeline.warmup_s = 100.0;
    s.file.pipeline.lifetime_s = 600.0;
    s.file.pipeline.interval_s = Some(300.0);
    s
}

/// The release's Prometheus (not its supervisor shell): PID and argv.
fn prometheus_under(root: &TempRoot) -> Option<(u32, Vec<String>)> {
    let root = root.0.display().to_string();
    crate::processes().into_iter().find_map(|(pid, _, _)| {
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()?
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_it = argv.first().is_some_and(|a| !a.ends_with("sh"))
            && argv.iter().any(|a| a.starts_with("--web.listen-address="))
            && argv.iter().any(|a| a.contains(&root));
        is_it.then_some((pid, argv))
    })
}

fn listen_address(argv: &[String]) -> std::net::SocketAddr {
    argv.iter()
        .find_map(|a| a.strip_prefix("--web.listen-address="))
        .and_then(|a| a.parse().ok())
        .expect("an address")
}

fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// `prometheus_http_requests_total` of the range-query handler.
fn range_queries(addr: std::net::SocketAddr) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0.0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains(r#"handler="/api/v1/query_range""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Kills the test's own Prometheus when dropped (also on failure).
struct Restarted(Option<std::process::Child>);

impl Drop for Restarted {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_for_step(watch: &cluster::StepWatch, step: Step) {
    watch.reached(step).await;
}

pub(crate) async fn prometheus_restarted_on_the_same_address_mid_release_the_release_goes_on() {
    let root = TempRoot::new("restart");
    let scenario = scenario();
    let metrics = scenario.config.metrics.len() as f64;
    let mut opts = ReleaseOptions::new(0.02, crate::goldengoose());
    opts.temp_root = Some(root.0.clone());
    // Room for a restart (WAL replay) on a loaded machine.
    opts.prometheus_retry = Retry::with_retries(10);
    let watch = opts.watch.clone();
    let release = tokio::spawn(async move {
        let result = run_release(&scenario, &opts, crate::not_cancelled()).await;
        (scenario, result)
    });
    let mut restarted = Restarted(None);

    wait_for_step(&watch, Step::Analysis).await;
    let (pid, argv) = prometheus_under(&root).expect("the release's Prometheus runs");
    let addr = listen_address(&argv);
    // Once the first interval is fetched (control and experiment of every
    // metric), kill Prometheus part-way through the second interval: 1 s
    // into its 6 s. (4 s into it failed once at load average 20: the
    // second fetch had come before the kill, so nothing was retried.)
    while range_queries(addr) < 2.0 * metrics {
        assert!(!release.is_finished(), "the release ended early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    kill(pid);
    // Hold the address until the analysis tries it: that query fails (the
    // connection closes without an answer), so a retry is certain.
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    tokio::select! {
        accepted = listener.accept() => drop(accepted.expect("accepts")),
        _ = async { while !release.is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        } } => panic!("the release ended without querying the dead Prometheus"),
    }
    drop(listener);
    // The same Prometheus again: same address, config and TSDB.
    restarted.0 = Some(
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus restarts"),
    );

    let (scenario, result) = release.await.expect("release task");
    drop(restarted);
    let out = result.as_ref().expect("the release reached a decision");
    assert_eq!(out.analysis.intervals.len(), 2, "both intervals judged");
    assert!(
        out.record.prometheus_retries >= 1,
        "retries {}",
        out.record.prometheus_retries
    );
    let (verdict, reason, _) = results::verdict(&result);
    assert!(
        matches!(verdict, ReleaseEnd::Promote | ReleaseEnd::Rollback),
        "{reason}"
    );
    let study = results::study(&scenario, &result, 1);
    assert_ne!(study.example_runs[0].decision, ReleaseEnd::Error);
    assert!(prometheus_under(&root).is_none(), "a Prometheus left");
    assert!(root.is_empty(), "Prometheus's directory removed");
}

pub(crate) async fn prometheus_that_stays_down_fails_the_analysis_step_and_everything_stops() {
    let root = TempRoot::new("down");
    let scenario = scenario();
    let mut opts = ReleaseOptions::new(0.02, crate::goldengoose());
    opts.temp_root = Some(root.0.clone());
    opts.prometheus_retry = Retry {
        retries: 3,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    let watch = opts.watch.clone();
    let release =
        tokio::spawn(async move { run_release(&scenario, &opts, crate::not_cancelled()).await });
    wait_for_step(&watch, Step::Analysis).await;
    let (pid, _) = prometheus_under(&root).expect("the release's Prometheus runs");
    kill(pid);

    let result = release.await.expect("release task");
    let err = result.as_ref().expect_err("no Prometheus, no analysis");
    assert_eq!(err.step, Step::Analysis, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("step analysis") && text.contains("after 3 retries"),
        "{text}"
    );
    assert!(
        err.record.prometheus_retries >= 3,
        "{}",
        err.record.prometheus_retries
    );
    let (verdict, reason, _) = results::verdict(&result);
    assert_eq!(verdict, ReleaseEnd::Error, "{reason}");
    assert!(reason.contains("step analysis failed"), "{reason}");
    // Everything stopped: every goldengoose, the traffic, Prometheus's
    // supervisor and directory.
    let instances = &err.record.instances;
    assert!(
        instances.iter().any(|i| i.name == "canary-0"),
        "{instances:?}"
    );
    for pid in instances.iter().flat_map(|i| &i.pids) {
        assert!(!crate::alive(*pid), "{pid} still runs");
    }
    assert!(err.record.load.is_some(), "traffic stopped and counted");
    let root_text = root.0.display().to_string();
    let left: Vec<String> = crate::processes()
        .into_iter()
        .filter_map(|(_, _, cmd)| cmd.contains(&root_text).then_some(cmd))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(root.is_empty());
}
