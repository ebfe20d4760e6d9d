//! goldengoose instances as child processes, supervised the way a kubelet
//! runs a pod's container.
//!
//! Each instance is a process of its own, so its `process_cpu_seconds_total`
//! and `process_resident_memory_bytes` are its own (the `cpu` and `memory`
//! metrics of a canary config tell tracks apart), and a crash is a real
//! exit. The parent binds the listening socket (it must know the address
//! before the server exists: loadgen's targets are fixed when it starts)
//! and hands it to the child as standard input (`goldengoose
//! --listen-stdin`, inetd's `wait` style); the child prints the address
//! once it serves, which is the "started" signal.
//!
//! A process that exits while not being stopped is restarted after
//! [`Supervision::restart_delay`] on the same address, as a kubelet restarts
//! a crashed container (the simulator's crash loop is down for 30 scenario
//! seconds per cycle, which the plan scales). While it is down nothing
//! listens on its port, so traffic sent to it is refused, as a dead pod's
//! is; Prometheus's scrapes of it fail.
//!
//! Stopping sends SIGTERM (goldengoose drains in-flight requests), then
//! SIGKILL after the drain timeout. Dropping a [`Goose`] kills its process
//! by PID.
//!
//! Not for: the release's orchestration (that is [`crate::local::run`]).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Lines of a process's stderr kept for error messages.
const STDERR_TAIL: usize = 12;

/// How to run goldengoose: a program and the arguments that come before
/// goldengoose's own (e.g. `canarylab goldengoose`, or a `goldengoose`
/// binary with none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GooseCommand {
    program: PathBuf,
    args: Vec<OsString>,
}

impl GooseCommand {
    /// A goldengoose binary.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        GooseCommand {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// An argument before goldengoose's own.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// `canarylab goldengoose`: the running canarylab binary, which embeds
    /// goldengoose.
    pub fn canarylab_subcommand() -> std::io::Result<Self> {
        Ok(GooseCommand::new(std::env::current_exe()?).arg("goldengoose"))
    }

    /// The program run (the canarylab binary or a standalone goldengoose).
    pub fn program(&self) -> &Path {
        &self.program
    }
}

impl std::fmt::Display for GooseCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program.display())?;
        for a in &self.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}

/// How instances are run and restarted.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervision {
    /// Wait between an unexpected exit and the restart.
    pub restart_delay: Duration,
    /// Worker threads of each instance's runtime (`--threads`).
    pub threads: usize,
    /// How long a starting process may take to print its address.
    pub start_timeout: Duration,
}

impl Default for Supervision {
    /// Restarts after 1 s, one worker thread (a loopback release runs
    /// several instances on a few cores), 10 s to start.
    fn default() -> Self {
        Supervision {
            restart_delay: Duration::from_secs(1),
            threads: 1,
            start_timeout: Duration::from_secs(10),
        }
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The instance's port could not be reserved.
    #[error("goldengoose {instance}: cannot listen on {addr}: {source}")]
    Listen {
        /// The instance's name.
        instance: String,
        /// The address we tried to listen on.
        addr: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The goldengoose process could not be started.
    #[error(
        "goldengoose {instance}: cannot run `{command}`: {source} (canarylab runs goldengoose as \
         `canarylab goldengoose`; a standalone binary is given with --goldengoose PATH)"
    )]
    Spawn {
        /// The instance's name.
        instance: String,
        /// The command line we tried to run.
        command: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The process exited before it printed its address.
    #[error("goldengoose {instance} exited before serving ({status}){}", tail(.stderr))]
    Exited {
        /// The instance's name.
        instance: String,
        /// Its exit status, as displayed.
        status: String,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// The process did not print its address within the start timeout.
    #[error("goldengoose {instance} did not start within {timeout:?}{}", tail(.stderr))]
    StartTimeout {
        /// The instance's name.
        instance: String,
        /// The start timeout that ran out.
        timeout: Duration,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// The process printed something other than the address it was given.
    #[error("goldengoose {instance} printed {line:?} where its address {expected} was expected")]
    WrongAddress {
        /// The instance's name.
        instance: String,
        /// The line it printed.
        line: String,
        /// The address we handed it.
        expected: SocketAddr,
    },
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends: {}", lines.join(" | "))
    }
}

/// What the supervisor knows of an instance.
#[derive(Debug, Default)]
struct State {
    pid: Option<u32>,
    /// Every PID started, in order.
    pids: Vec<u32>,
    /// When the running process printed its address.
    up_since: Option<Instant>,
    /// Unexpected exits so far (a kubelet's restartCount).
    exits: u32,
    last_exit: Option<String>,
    stderr: VecDeque<String>,
}

/// A supervised goldengoose process; see the module docs.
#[derive(Debug)]
pub struct Goose {
    name: String,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Option<ExitStatus>>>,
}

/// Everything needed to start the instance again.
#[derive(Debug, Clone)]
struct Launch {
    name: String,
    addr: SocketAddr,
    command: GooseCommand,
    args: Vec<String>,
    admin_token: Option<String>,
    supervision: Supervision,
    drain_timeout: Duration,
}

impl Goose {
    /// Starts goldengoose with `config` on a free port of 127.0.0.1;
    /// `name` names the instance in messages (e.g. `canary-0`).
    pub async fn spawn(
        command: &GooseCommand,
        name: &str,
        config: &goldengoose::Config,
        supervision: &Supervision,
    ) -> Result<Goose, Error> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| Error::Listen {
                instance: name.to_string(),
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        Self::spawn_on(command, name, listener, config, supervision).await
    }

    /// Starts goldengoose on a listener bound earlier (a slot reserved at
    /// the start of a release, so its address could be given to loadgen
    /// before the server existed). Returns once the process serves; an
    /// error carries the end of its stderr. Must be called inside a tokio
    /// runtime.
    pub async fn spawn_on(
        command: &GooseCommand,
        name: &str,
        listener: std::net::TcpListener,
        config: &goldengoose::Config,
        supervision: &Supervision,
    ) -> Result<Goose, Error> {
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            instance: name.to_string(),
            addr: "its reserved listener".into(),
            source,
        })?;
        let mut args = config.to_args();
        args.push("--threads".into());
        args.push(supervision.threads.max(1).to_string());
        let launch = Launch {
            name: name.to_string(),
            addr,
            command: command.clone(),
            args,
            admin_token: config.admin_token.clone(),
            supervision: supervision.clone(),
            drain_timeout: config.drain_timeout,
        };
        let state = Arc::new(Mutex::new(State::default()));
        let started = start(&launch, listener, &state).await?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(supervise(launch, started, state.clone(), stopped));
        Ok(Goose {
            name: name.to_string(),
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it serves on; `/` is the work endpoint, `/metrics`
    /// Prometheus's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running process's PID (`None` while it is down).
    pub fn pid(&self) -> Option<u32> {
        self.with_state(|s| s.pid).flatten()
    }

    /// Every process's PID, the first and one per restart.
    pub fn pids(&self) -> Vec<u32> {
        self.with_state(|s| s.pids.clone()).unwrap_or_default()
    }

    /// How long the running process has served; `None` while it is down.
    pub fn up_for(&self) -> Option<Duration> {
        self.with_state(|s| s.up_since.map(|t| t.elapsed()))
            .flatten()
    }

    /// Unexpected exits so far (each is followed by a restart).
    pub fn exits(&self) -> u32 {
        self.with_state(|s| s.exits).unwrap_or(0)
    }

    /// How the last unexpected exit (or failed restart) went, with the end
    /// of the process's stderr.
    pub fn last_exit(&self) -> Option<String> {
        self.with_state(|s| {
            s.last_exit.clone().map(|e| {
                let stderr: Vec<String> = s.stderr.iter().cloned().collect();
                format!("{e}{}", tail(&stderr))
            })
        })
        .flatten()
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> Option<T> {
        self.state.lock().ok().map(|s| f(&s))
    }

    /// Whether `/readyz` answers 200 (goldengoose's readiness probe; 503
    /// during a slow start). A process that does not answer is not ready.
    pub async fn is_ready(&self) -> bool {
        crate::local::probe(self.addr, "/readyz").await == Some(200)
    }

    /// SIGTERM, then waits for the drain (SIGKILL after goldengoose's drain
    /// timeout); the process's exit status, `None` if it was down.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take()?.await.ok().flatten()
    }
}

impl Drop for Goose {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Not stopped: kill by PID now (the runtime may be going away),
            // then end the supervisor, whose child is also kill_on_drop.
            if let Some(pid) = self.pid() {
                signal(pid, rustix::process::Signal::KILL);
            }
            task.abort();
        }
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// A started process and its stdout, held open so the child never writes
/// to a closed pipe.
#[derive(Debug)]
struct Started {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

/// Runs the process on `listener` and waits for its address line.
async fn start(
    launch: &Launch,
    listener: std::net::TcpListener,
    state: &Arc<Mutex<State>>,
) -> Result<Started, Error> {
    let mut command = Command::new(&launch.command.program);
    command
        .args(&launch.command.args)
        .arg("--listen-stdin")
        // Gone with canarylab even if it is killed (SIGKILL) before it can
        // stop its children.
        .arg("--exit-with-parent")
        .args(&launch.args)
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C goes to canarylab
        // alone, which moves traffic and stops each process in its turn
        // (production must keep serving while a promotion is undone).
        .process_group(0)
        .kill_on_drop(true);
    match &launch.admin_token {
        Some(token) => command.env(goldengoose::ADMIN_TOKEN_ENV, token),
        None => command.env_remove(goldengoose::ADMIN_TOKEN_ENV),
    };
    // The command holds the parent's copy of the socket: dropped right
    // after the spawn, so only the child listens (a dead child's port
    // refuses connections).
    let spawned = command.spawn();
    drop(command);
    let mut child = spawned.map_err(|source| Error::Spawn {
        instance: launch.name.clone(),
        command: launch.command.to_string(),
        source,
    })?;
    if let Ok(mut s) = state.lock() {
        s.stderr.clear();
    }
    let stderr_done = child.stderr.take().map(|stderr| {
        let state = state.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut s) = state.lock() {
                    if s.stderr.len() == STDERR_TAIL {
                        s.stderr.pop_front();
                    }
                    s.stderr.push_back(line);
                }
            }
        })
    });
    let stderr_now = |state: &Arc<Mutex<State>>| -> Vec<String> {
        state
            .lock()
            .map(|s| s.stderr.iter().cloned().collect())
            .unwrap_or_default()
    };
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill().await;
        return Err(Error::Exited {
            instance: launch.name.clone(),
            status: "no stdout pipe".into(),
            stderr: Vec::new(),
        });
    };
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let timeout = launch.supervision.start_timeout;
    match tokio::time::timeout(timeout, stdout.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {
            let printed = line.trim();
            if printed.parse::<SocketAddr>().ok() != Some(launch.addr) {
                let _ = child.kill().await;
                return Err(Error::WrongAddress {
                    instance: launch.name.clone(),
                    line: printed.to_string(),
                    expected: launch.addr,
                });
            }
        }
        Ok(_) => {
            // stdout closed before the address: the process is exiting.
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            if let Some(done) = stderr_done {
                let _ = tokio::time::timeout(Duration::from_secs(1), done).await;
            }
            return Err(Error::Exited {
                instance: launch.name.clone(),
                status: match status {
                    Ok(Ok(s)) => describe(s),
                    _ => "still running with stdout closed".into(),
                },
                stderr: stderr_now(state),
            });
        }
        Err(_) => {
            let _ = child.kill().await;
            return Err(Error::StartTimeout {
                instance: launch.name.clone(),
                timeout,
                stderr: stderr_now(state),
            });
        }
    }
    if let Ok(mut s) = state.lock() {
        s.pid = child.id();
        s.pids.extend(child.id());
        s.up_since = Some(Instant::now());
    }
    Ok(Started {
        child,
        _stdout: stdout,
    })
}

/// An exit status in words (goldengoose exits 70 when a crash fault fires).
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) if c == goldengoose::CRASH_EXIT_CODE => {
            format!("exit status {c}: a crash fault")
        }
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Waits on the process, restarts it after unexpected exits, stops it when
/// asked. Returns the stopped process's status.
async fn supervise(
    launch: Launch,
    started: Started,
    state: Arc<Mutex<State>>,
    mut stop: oneshot::Receiver<()>,
) -> Option<ExitStatus> {
    let mut running = Some(started);
    loop {
        match running.as_mut() {
            Some(process) => {
                let exited = tokio::select! {
                    status = process.child.wait() => Some(status),
                    _ = &mut stop => None,
                };
                let Some(status) = exited else {
                    let process = running.take()?;
                    return terminate(process, launch.drain_timeout, &state).await;
                };
                let what = match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("cannot wait for it: {e}"),
                };
                if let Ok(mut s) = state.lock() {
                    s.pid = None;
                    s.up_since = None;
                    s.exits += 1;
                    s.last_exit = Some(what);
                }
                running = None;
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(launch.supervision.restart_delay) => {}
                    _ = &mut stop => return None,
                }
                match restart(&launch, &state).await {
                    Ok(process) => running = Some(process),
                    Err(e) => {
                        if let Ok(mut s) = state.lock() {
                            s.exits += 1;
                            s.last_exit = Some(format!("restart failed: {e}"));
                        }
                    }
                }
            }
        }
    }
}

/// Binds the instance's address again (its old socket closed with the
/// process) and starts a new process on it.
async fn restart(launch: &Launch, state: &Arc<Mutex<State>>) -> Result<Started, Error> {
    let mut tries = 0;
    let listener = loop {
        match std::net::TcpListener::bind(launch.addr) {
            Ok(l) => break l,
            // A client's outgoing connection may briefly hold the port.
            Err(_) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => {
                return Err(Error::Listen {
                    instance: launch.name.clone(),
                    addr: launch.addr.to_string(),
                    source,
                });
            }
        }
    };
    start(launch, listener, state).await
}

/// SIGTERM, wait for the drain, SIGKILL if it takes longer.
async fn terminate(
    mut process: Started,
    drain: Duration,
    state: &Arc<Mutex<State>>,
) -> Option<ExitStatus> {
    if let Some(pid) = process.child.id() {
        signal(pid, rustix::process::Signal::TERM);
    }
    let status =
        match tokio::time::timeout(drain + Duration::from_secs(2), process.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = process.child.kill().await;
                process.child.wait().await.ok()
            }
        };
    if let Ok(mut s) = state.lock() {
        s.pid = None;
        s.up_since = None;
    }
    status
}
