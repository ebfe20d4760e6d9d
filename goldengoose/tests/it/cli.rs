//! The binary: first stdout line is the address, SIGTERM drains and exits 0,
//! bad --fault is refused, a crash fault exits non-zero.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::support::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_goldengoose");

/// Kills the child on drop, so a failing test leaves no process behind.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> (Process, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove(goldengoose::ADMIN_TOKEN_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn goldengoose");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .parse()
        .expect("first line is the bound address");
    (process, addr)
}

pub fn wait_exit(process: &mut Process, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = process.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_then_drains_on_sigterm() {
    let (mut process, addr) = spawn(&["--track", "baseline", "--fault", "latency=300ms"]);
    let mut client = Client::connect(addr).await;
    let in_flight = tokio::spawn(async move { client.get("/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let response = in_flight.await.expect("client task");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["x-version"], "baseline");
    let status = wait_exit(&mut process, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_crash_fault_exits_non_zero() {
    let (mut process, addr) = spawn(&["--fault", "crash=2req"]);
    let mut client = Client::connect(addr).await;
    client.get("/").await;
    let _ = client
        .try_send(hyper::Method::GET, "/", None, bytes::Bytes::new())
        .await;
    let status = wait_exit(&mut process, Duration::from_secs(10));
    assert_eq!(status.code(), Some(goldengoose::CRASH_EXIT_CODE));
}

#[test]
fn bad_fault_flags_are_refused_at_start() {
    for bad in [
        "errors=1.5",
        "errors=-0.2",
        "latency=5",
        "quake=1",
        "crash=soon",
    ] {
        let output = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--fault", bad])
            .stdin(Stdio::null())
            .output()
            .expect("run goldengoose");
        assert!(!output.status.success(), "{bad} accepted");
        assert!(output.stdout.is_empty(), "{bad}: bound anyway");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--fault"), "{bad}: {stderr}");
        assert!(stderr.contains("allowed: latency=DELAY"), "{bad}: {stderr}");
    }
}

/// Soft and hard "Max open files" of a process, from /proc (Linux).
#[cfg(target_os = "linux")]
fn open_file_limits(pid: u32) -> (u64, Option<u64>) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read /proc limits");
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |word: &str| (word != "unlimited").then(|| word.parse().expect("a number"));
    (
        number(words[3]).expect("soft limit is finite"),
        number(words[4]),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn binary_raises_the_open_file_soft_limit_to_the_hard_limit() {
    let (_, hard) = open_file_limits(std::process::id());
    let expected = hard.unwrap_or(u64::MAX).min(1 << 20);
    assert!(
        expected > 128,
        "hard limit {hard:?} leaves nothing to raise"
    );
    // The shell lowers the soft limit it hands on, then becomes goldengoose
    // (same PID), which should raise it again before serving.
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -Sn 128 && exec "$0" --listen 127.0.0.1:0"#,
            BIN,
        ])
        .env_remove(goldengoose::ADMIN_TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    line.trim()
        .parse::<SocketAddr>()
        .expect("first line is the bound address");
    let pid = process.0.id();
    assert_eq!(open_file_limits(pid), (expected, hard));
}
