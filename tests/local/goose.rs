//! goldengoose instances as supervised child processes: started on a
//! reserved listener, their own process metrics, restarted after a crash
//! on the same address, stopped (or killed on drop) by PID, and clear
//! errors when they cannot start.

use std::time::{Duration, Instant};

use cluster::local::goose::Error;
use cluster::local::probe;
use cluster::{Goose, GooseCommand, Supervision};

use crate::alive;

/// Polls `cond` every 20 ms for up to `within`.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connects");
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("writes");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("reads");
        out
    })
    .await
    .expect("joins")
}

fn config(track: &str, faults: &[&str]) -> goldengoose::Config {
    goldengoose::Config {
        version: track.into(),
        faults: faults.iter().map(|f| f.parse().expect("fault")).collect(),
        seed: 7,
        ..Default::default()
    }
}

pub(crate) async fn serves_on_the_reserved_listener_as_a_process_of_its_own() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("addr");
    let goose = Goose::spawn_on(
        &crate::goldengoose(),
        "baseline-0",
        listener,
        &config("baseline", &[]),
        &Supervision::default(),
    )
    .await
    .expect("starts");
    assert_eq!(goose.addr(), addr);
    let pid = goose.pid().expect("running");
    assert_ne!(pid, std::process::id());
    assert!(alive(pid));
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.contains(r#"version="baseline""#), "{metrics}");
    // Its own process's resident memory, not this test's.
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );
    assert!(goose.is_ready().await);
    let status = goose.stop().await.expect("it was running");
    assert!(status.success(), "SIGTERM drains and exits 0: {status}");
    assert!(!alive(pid));
    assert_eq!(probe(addr, "/readyz").await, None, "nothing listens");
}

pub(crate) async fn a_crashed_instance_is_restarted_on_the_same_address() {
    let supervision = Supervision {
        restart_delay: Duration::from_millis(300),
        ..Supervision::default()
    };
    let goose = Goose::spawn(
        &crate::goldengoose(),
        "canary-0",
        &config("canary", &["crash=400ms"]),
        &supervision,
    )
    .await
    .expect("starts");
    let addr = goose.addr();
    let first = goose.pid().expect("running");
    assert!(
        eventually(Duration::from_secs(10), || goose.exits() >= 1).await,
        "the crash fault fired"
    );
    let last = goose.last_exit().expect("an exit");
    assert!(last.contains("exit status 70"), "{last}");
    assert!(!alive(first));
    assert!(
        eventually(Duration::from_secs(10), || goose.pids().len() >= 2
            && goose.up_for().is_some())
        .await,
        "restarted: {:?}",
        goose.pids()
    );
    assert_eq!(probe(addr, "/healthz").await, Some(200), "same address");
    let pids = goose.pids();
    drop(goose);
    // Dropping kills by PID: no process is left behind.
    assert!(
        eventually(Duration::from_secs(5), || pids.iter().all(|&p| !alive(p))).await,
        "{pids:?}"
    );
}

/// The local mode's pod watch: a canary reported ready whose process then
/// dies is reported as crashed (once per exit), as a kubelet's restart
/// after readiness is; a healthy one only as ready.
pub(crate) async fn a_pod_that_dies_after_it_was_ready_is_reported_crashed() {
    use cluster::local::pods::PodWatch;
    use release::{Event, Track};
    let supervision = Supervision {
        restart_delay: Duration::from_secs(30),
        ..Supervision::default()
    };
    let dies = Goose::spawn(
        &crate::goldengoose(),
        "canary-0",
        &config("canary", &["crash=3s"]),
        &supervision,
    )
    .await
    .expect("starts");
    let lives = Goose::spawn(
        &crate::goldengoose(),
        "baseline-0",
        &config("baseline", &[]),
        &supervision,
    )
    .await
    .expect("starts");
    let pids = [dies.pid().expect("running"), lives.pid().expect("running")];
    let gooses = [&dies, &lives];
    let mut watch = PodWatch::default();
    watch.started(0, Track::Canary);
    watch.started(1, Track::Baseline);
    let events = watch.look(Duration::ZERO, |i| gooses.get(i).copied()).await;
    assert_eq!(
        events,
        [
            Event::PodReady {
                track: Track::Canary
            },
            Event::PodReady {
                track: Track::Baseline
            }
        ],
        "both serve before the crash fault fires"
    );
    assert_eq!(watch.ready_slots(), [0, 1]);
    assert!(
        eventually(Duration::from_secs(10), || dies.exits() >= 1).await,
        "the crash fault fired"
    );
    let events = watch.look(Duration::ZERO, |i| gooses.get(i).copied()).await;
    assert_eq!(
        events,
        [Event::PodCrashed {
            track: Track::Canary
        }]
    );
    // Reported once; a stopped pod is forgotten.
    assert!(
        watch
            .look(Duration::ZERO, |i| gooses.get(i).copied())
            .await
            .is_empty()
    );
    watch.forget(1);
    assert_eq!(watch.ready_slots(), [0]);
    drop(dies);
    drop(lives);
    assert!(
        eventually(Duration::from_secs(5), || pids.iter().all(|&p| !alive(p))).await,
        "{pids:?}"
    );
}

pub(crate) async fn dropping_an_instance_kills_its_process() {
    let goose = Goose::spawn(
        &crate::goldengoose(),
        "production-0",
        &config("production", &[]),
        &Supervision::default(),
    )
    .await
    .expect("starts");
    let pid = goose.pid().expect("running");
    drop(goose);
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "{pid} still runs"
    );
}

pub(crate) async fn slow_start_is_not_ready_but_healthy() {
    let goose = Goose::spawn(
        &crate::goldengoose(),
        "canary-0",
        &config("canary", &["slow_start=60s"]),
        &Supervision::default(),
    )
    .await
    .expect("starts");
    assert_eq!(probe(goose.addr(), "/healthz").await, Some(200));
    assert!(!goose.is_ready().await, "slow start answers 503");
    assert!(goose.stop().await.is_some());
}

pub(crate) async fn a_program_that_cannot_run_is_named() {
    let missing = GooseCommand::new("/nonexistent/goldengoose");
    let err = Goose::spawn(
        &missing,
        "canary-0",
        &config("canary", &[]),
        &Supervision::default(),
    )
    .await
    .expect_err("no such program");
    assert!(matches!(err, Error::Spawn { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/goldengoose") && text.contains("--goldengoose"),
        "{text}"
    );
}

pub(crate) async fn an_instance_that_exits_before_serving_shows_its_stderr() {
    // A flag goldengoose does not know: it exits with clap's message.
    let bad = crate::goldengoose().arg("--no-such-flag");
    let err = Goose::spawn(
        &bad,
        "canary-0",
        &config("canary", &[]),
        &Supervision::default(),
    )
    .await
    .expect_err("exits");
    assert!(matches!(err, Error::Exited { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("canary-0") && text.contains("--no-such-flag"),
        "{text}"
    );
}

/// `process_cpu_seconds_total` of the process behind `addr`.
async fn cpu_seconds(addr: std::net::SocketAddr) -> f64 {
    let metrics = get(addr, "/metrics").await;
    metrics
        .lines()
        .find(|l| l.starts_with("process_cpu_seconds_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no process_cpu_seconds_total in {metrics}"))
}

pub(crate) async fn cpu_is_counted_per_instance() {
    let supervision = Supervision::default();
    let command = crate::goldengoose();
    let baseline = Goose::spawn(
        &command,
        "baseline-0",
        &config("baseline", &[]),
        &supervision,
    )
    .await
    .expect("starts");
    let canary = Goose::spawn(
        &command,
        "canary-0",
        &config("canary", &["cpu=20ms"]),
        &supervision,
    )
    .await
    .expect("starts");
    let (b0, c0) = (
        cpu_seconds(baseline.addr()).await,
        cpu_seconds(canary.addr()).await,
    );
    for _ in 0..20 {
        get(baseline.addr(), "/").await;
        get(canary.addr(), "/").await;
    }
    let (b1, c1) = (
        cpu_seconds(baseline.addr()).await,
        cpu_seconds(canary.addr()).await,
    );
    // 20 requests x 20 ms of burnt CPU: about 0.4 s more for the canary.
    assert!(
        (c1 - c0) - (b1 - b0) > 0.3,
        "canary {c0} -> {c1}, baseline {b0} -> {b1}"
    );
    assert!(canary.stop().await.is_some());
    assert!(baseline.stop().await.is_some());
}

/// PIDs of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    crate::processes()
        .into_iter()
        .filter_map(|(pid, ppid, cmd)| (ppid == parent).then_some((pid, cmd)))
        .collect()
}

/// Kills `pids` by PID when dropped (the test's cleanup, also on failure).
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Names of the Prometheus directories under `dir`.
fn prometheus_dirs(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("canarylab-prometheus-"))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn nothing_is_left_behind_when_canarylab_is_killed() {
    // A whole `canarylab local`, killed with SIGKILL once it serves traffic:
    // it cannot clean up, so its goldengoose processes must notice
    // (--exit-with-parent), and so must Prometheus's supervisor, which
    // kills Prometheus and removes its directory. A directory left by an
    // earlier run whose process is gone is swept when Prometheus starts.
    let tmp = crate::TempRoot::new("sigkill");
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("true runs");
    let dead = gone.id();
    gone.wait().expect("reaped");
    let stale = tmp.0.join(format!("canarylab-prometheus-{dead}-1-0"));
    std::fs::create_dir_all(stale.join("data")).expect("stale dir");
    let mut canarylab = std::process::Command::new(env!("CARGO_BIN_EXE_canarylab"))
        .args([
            "local",
            "scenarios/catalog/aa-typical.toml",
            "--rate-scale",
            "0.5",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TMPDIR", &tmp.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("canarylab runs");
    let parent = canarylab.id();
    let mut guard = KillOnDrop(vec![parent]);
    // Production, baseline, canary and Prometheus (under its supervisor)
    // all started. The deadline only ends a test that would hang.
    let started = Instant::now();
    let mut children = Vec::new();
    let mut prometheus = Vec::new();
    while started.elapsed() < Duration::from_secs(120) {
        children = children_of(parent);
        prometheus = children
            .iter()
            .filter(|(_, c)| c.starts_with("/bin/sh"))
            .flat_map(|(p, _)| children_of(*p))
            // Not the supervisor's watcher subshell (the same command line).
            .filter(|(_, c)| !c.starts_with("/bin/sh") && c.contains("--web.listen-address"))
            .map(|(p, _)| p)
            .collect();
        let geese = children
            .iter()
            .filter(|(_, c)| c.contains("goldengoose"))
            .count();
        if geese >= 3 && !prometheus.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    guard.0.extend(children.iter().map(|(p, _)| *p));
    guard.0.extend(&prometheus);
    let geese: Vec<u32> = children
        .iter()
        .filter(|(_, c)| c.contains("goldengoose --listen-stdin"))
        .map(|(p, _)| *p)
        .collect();
    assert!(geese.len() >= 3, "{children:?}");
    assert_eq!(prometheus.len(), 1, "{children:?}");
    let supervisor: Vec<u32> = children
        .iter()
        .filter(|(_, c)| c.starts_with("/bin/sh"))
        .map(|(p, _)| *p)
        .collect();
    assert!(!stale.exists(), "the stale directory was swept");
    assert_eq!(prometheus_dirs(&tmp.0).len(), 1, "this run's directory");
    canarylab.kill().expect("SIGKILL");
    canarylab.wait().expect("reaped");
    let everything: Vec<u32> = geese
        .iter()
        .chain(&prometheus)
        .chain(&supervisor)
        .copied()
        .collect();
    // Deadlines end a test that would hang; they are not speed checks.
    assert!(
        eventually(Duration::from_secs(60), || everything
            .iter()
            .all(|&p| !alive(p)))
        .await,
        "left behind: {:?}",
        everything.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
    assert!(
        eventually(Duration::from_secs(60), || prometheus_dirs(&tmp.0)
            .is_empty())
        .await,
        "left behind: {:?}",
        prometheus_dirs(&tmp.0)
    );
    drop(guard);
}
