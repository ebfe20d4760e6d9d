//! `--exit-with-parent`: a goldengoose whose parent dies shuts itself down;
//! one whose parent lives on keeps serving. The orphan test reads /proc,
//! so it is Linux only.

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
#[cfg(target_os = "linux")]
use std::time::Instant;

use hyper::StatusCode;

use crate::cli::{BIN, Process, wait_exit};
use crate::support::Client;

/// A process that is not our child (so `Child::kill` cannot be used),
/// SIGKILLed on drop if it still runs goldengoose, e.g. when the test fails.
#[cfg(target_os = "linux")]
struct Orphan(u32);

#[cfg(target_os = "linux")]
impl Drop for Orphan {
    fn drop(&mut self) {
        // Check the command line first: never signal a reused PID.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if alive(self.0) && cmdline.starts_with(BIN.as_bytes()) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// Running or sleeping, i.e. not gone, not a zombie (Z) and not dead (X).
#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name in parentheses, which may itself
    // contain spaces or parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x") | None)
}

#[cfg(target_os = "linux")]
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gg-ewp-{}-{name}", std::process::id()))
}

#[cfg(target_os = "linux")]
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[cfg(target_os = "linux")]
#[test]
fn exits_gracefully_once_its_parent_is_gone() {
    let out = temp_path("stdout");
    let err = temp_path("stderr");
    // sh starts goldengoose in the background, waits until it has printed
    // its address (by then goldengoose has noted sh as its parent), prints
    // its PID and exits: goldengoose is orphaned and re-parented.
    let script = r#"
        "$0" --listen 127.0.0.1:0 --exit-with-parent <"/dev/null" >"$1" 2>"$2" &
        pid=$!
        i=0
        while [ ! -s "$1" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        echo "$pid"
    "#;
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg(&out)
        .arg(&err)
        .env_remove(goldengoose::ADMIN_TOKEN_ENV)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let pid: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("sh printed the PID");
    let orphan = Orphan(pid);
    assert!(output.status.success(), "sh: {}", output.status);
    let addr = read(&out);
    assert!(
        addr.trim().parse::<std::net::SocketAddr>().is_ok(),
        "goldengoose did not start: stdout {addr:?}, stderr {:?}",
        read(&err)
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_alive = alive(pid);
    drop(orphan);
    let stderr = read(&err);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    assert!(
        !still_alive,
        "goldengoose {pid} outlived its parent by 5 s; stderr: {stderr}"
    );
    // It stopped because of the watch, through the graceful path, once.
    assert_eq!(
        stderr.matches("--exit-with-parent: shutting down").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("parent process "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_serving_while_its_parent_lives() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--exit-with-parent"])
        .env_remove(goldengoose::ADMIN_TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn goldengoose");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut process = Process(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("first line");
    let addr = line.trim().parse().expect("first line is the address");
    // Several checks of the parent go by: none may stop the server.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let response = Client::connect(addr).await.get("/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(process.0.try_wait().expect("try_wait").is_none());
    let killed = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    assert_eq!(
        wait_exit(&mut process, Duration::from_secs(10)).code(),
        Some(0)
    );
}
