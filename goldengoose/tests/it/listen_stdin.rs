//! `--listen-stdin`: the binary serves a listener its parent bound and
//! passed as standard input, started from `Config::to_args`, and a second
//! process serves the same listener after the first one crashed.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use goldengoose::{ADMIN_TOKEN_ENV, CRASH_EXIT_CODE, Config};
use hyper::{Method, StatusCode};

use crate::cli::{BIN, Process, wait_exit};
use crate::support::{Client, config};

/// Starts the binary on an inherited listener; returns it with the address
/// it printed first.
fn spawn_inherited(listener: OwnedFd, config: &Config, token: Option<&str>) -> (Process, String) {
    let mut command = Command::new(BIN);
    command
        .arg("--listen-stdin")
        .args(config.to_args())
        .env_remove(ADMIN_TOKEN_ENV)
        .stdin(Stdio::from(listener))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(token) = token {
        command.env(ADMIN_TOKEN_ENV, token);
    }
    let mut child = command.spawn().expect("spawn goldengoose");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    (process, line.trim().to_string())
}

fn sigterm(process: &Process) {
    let killed = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_inherited_listener_with_the_config_from_to_args() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let mut config = config(&["latency=1ms", "slow_start=0s:2ms:decay=10s"]);
    config.version = "canary".to_string();
    let (mut process, printed) = spawn_inherited(OwnedFd::from(listener), &config, Some("s3cret"));
    assert_eq!(printed, addr.to_string());

    let mut client = Client::connect(addr).await;
    let response = client.get("/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["x-version"], "canary");
    // The faults and the token (from the environment) arrived.
    let status = client
        .send(Method::GET, "/admin/faults", Some("s3cret"), Bytes::new())
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text());
    let body: serde_json::Value = serde_json::from_slice(&status.body).expect("json");
    let expected: Vec<String> = config.faults.iter().map(|f| f.to_string()).collect();
    assert_eq!(body["faults"], serde_json::json!(expected));
    assert_eq!(body["version"], "canary");
    drop(client);

    sigterm(&process);
    let exit = wait_exit(&mut process, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_serves_the_same_listener_after_a_crash() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let crashing = config(&["crash=1req"]);
    let copy = listener.try_clone().expect("dup listener");
    let (mut first, printed) = spawn_inherited(OwnedFd::from(copy), &crashing, None);
    assert_eq!(printed, addr.to_string());
    let mut client = Client::connect(addr).await;
    let _ = client.try_send(Method::GET, "/", None, Bytes::new()).await;
    let exit = wait_exit(&mut first, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(CRASH_EXIT_CODE));

    // The parent still holds the listener: same address, no rebind.
    let (mut second, printed) = spawn_inherited(OwnedFd::from(listener), &config(&[]), None);
    assert_eq!(printed, addr.to_string());
    let response = Client::connect(addr).await.get("/").await;
    assert_eq!(response.status, StatusCode::OK);
    sigterm(&second);
    let exit = wait_exit(&mut second, Duration::from_secs(10));
    assert_eq!(exit.code(), Some(0));
}

/// Runs `--listen-stdin` with this standard input; returns the stderr of a
/// failed start (asserting it failed without printing an address).
fn refused(stdin: Stdio) -> String {
    let child = Command::new(BIN)
        .args(["--listen-stdin", "--drain-timeout", "1s"])
        .env_remove(ADMIN_TOKEN_ENV)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn goldengoose");
    // Killed by PID on drop if it unexpectedly serves.
    let mut process = Process(child);
    let status = wait_exit(&mut process, Duration::from_secs(10));
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut out) = process.0.stdout.take() {
        out.read_to_string(&mut stdout).expect("read stdout");
    }
    if let Some(mut err) = process.0.stderr.take() {
        err.read_to_string(&mut stderr).expect("read stderr");
    }
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "printed an address: {stdout}");
    assert!(
        stderr.contains("--listen-stdin: standard input is not a listening TCP socket: "),
        "{stderr}"
    );
    stderr
}

#[test]
fn non_listening_standard_input_is_refused() {
    refused(Stdio::null());
    refused(Stdio::piped());

    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let stderr = refused(Stdio::from(OwnedFd::from(udp)));
    assert!(stderr.contains("not a stream"), "{stderr}");

    // A connected TCP socket has an address too, but is not a listener.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let stderr = refused(Stdio::from(OwnedFd::from(stream)));
    assert!(stderr.contains("not listening"), "{stderr}");
}

#[test]
fn listen_stdin_and_listen_conflict() {
    let output = Command::new(BIN)
        .args(["--listen-stdin", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run goldengoose");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
