//! The goldengoose command as a library function, so that another binary
//! (e.g. a `canarylab goldengoose` subcommand) runs exactly what the
//! `goldengoose` binary runs: [`main`] builds the runtime, binds `--listen`
//! or inherits the listener from standard input (`--listen-stdin`), prints
//! the bound address as the first line of stdout, serves until SIGTERM or
//! Ctrl-C (or a crash fault, or with `--exit-with-parent` the death of the
//! parent process) and turns the outcome into an exit status. It also
//! raises the open-file soft limit to the hard limit first, so ~1000
//! keep-alive connections do not hit a soft limit of 1024.
//!
//! Not for running a goldengoose inside an async program: [`main`] builds
//! its own tokio runtime and blocks (calling it on a runtime thread panics).
//! Use [`crate::run`] there.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::CRASH_EXIT_CODE;
use crate::config::Args;
use crate::error::Error;
use crate::server::{Outcome, run};

/// Why the command could not start or serve. Each message names the flag
/// or the step that failed, with the operating system's reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad options or a failure inside the server (see [`Error`]).
    #[error(transparent)]
    Server(#[from] Error),
    /// The tokio runtime could not be built.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    /// `--listen`'s address could not be bound.
    #[error("--listen {addr}: cannot bind: {source}")]
    Bind {
        /// The address given to `--listen`.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Standard input is closed, not a socket, not TCP, or not listening.
    #[error("--listen-stdin: standard input is not a listening TCP socket: {reason}")]
    NotAListener {
        /// What standard input turned out to be, or why it could not be checked.
        reason: String,
    },
    /// The inherited socket is fine but cannot be handed to tokio.
    #[error("--listen-stdin: cannot use the inherited socket: {0}")]
    InheritedSocket(#[source] io::Error),
    /// `--listen-stdin` on a platform other than unix.
    #[error("--listen-stdin is only supported on unix")]
    ListenStdinUnsupported,
    /// `--exit-with-parent` on a platform other than unix.
    #[error("--exit-with-parent is only supported on unix")]
    ExitWithParentUnsupported,
    /// The bound listener's address could not be read.
    #[error("cannot read the listener's address: {0}")]
    LocalAddr(#[source] io::Error),
    /// The bound address could not be written to standard output.
    #[error("cannot write the bound address to stdout: {0}")]
    Stdout(#[source] io::Error),
}

/// Runs goldengoose with these arguments until it stops, and returns the
/// process exit status: success after a shutdown by SIGTERM/Ctrl-C (or,
/// with `--exit-with-parent`, by the parent's exit),
/// [`CRASH_EXIT_CODE`] when a crash fault fires, failure (1) when it cannot
/// start (the reason is printed to stderr). Parse `args` with clap first
/// (`Args::parse` / `Args::parse_from`), which exits with status 2 on bad
/// flags.
pub fn main(args: Args) -> ExitCode {
    // First of all: the later the parent is read, the longer the window in
    // which a parent that already died goes unnoticed.
    let parent = watched_parent(args.exit_with_parent);
    #[cfg(unix)]
    if let Err(err) = raise_fd_limit() {
        note(format_args!("goldengoose: warning: {err}"));
    }
    match parent.and_then(|parent| serve(args, parent)) {
        Ok(Outcome::Stopped { drained }) => {
            if !drained {
                note(format_args!(
                    "goldengoose: drain timeout reached with requests in flight"
                ));
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Crashed { reason }) => {
            note(format_args!(
                "goldengoose: {reason}; exiting with status {CRASH_EXIT_CODE}"
            ));
            ExitCode::from(u8::try_from(CRASH_EXIT_CODE).unwrap_or(1))
        }
        Err(err) => {
            note(format_args!("goldengoose: error: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes one line to stderr, ignoring failure: once a supervisor has died,
/// stderr is often a pipe nobody reads, and `eprintln!` would panic on
/// EPIPE in the middle of a graceful shutdown.
fn note(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// With `--exit-with-parent`, the parent process to watch.
fn watched_parent(exit_with_parent: bool) -> Result<Option<u32>, StartError> {
    if !exit_with_parent {
        return Ok(None);
    }
    parent_id()
        .map(Some)
        .ok_or(StartError::ExitWithParentUnsupported)
}

/// The parent's process ID; `None` where there is no such thing to watch.
fn parent_id() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(std::os::unix::process::parent_id())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Private copy of `loadgen::raise_fd_limit` (goldengoose does not depend
/// on loadgen): raises the soft limit of open files to the hard limit, at
/// most 2^20, never lowering it. Every process may do so unprivileged; Go's
/// runtime does it at start since 1.19. Returns the soft limit in force.
#[cfg(unix)]
fn raise_fd_limit() -> Result<u64, String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    /// Linux caps the hard limit at fs.nr_open (1 << 20 by default) anyway.
    const CAP: u64 = 1 << 20;
    /// macOS reports an unlimited hard limit but refuses more than
    /// kern.maxfilesperproc; OPEN_MAX always works there.
    const OPEN_MAX: u64 = 10240;
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else {
        return Ok(u64::MAX);
    };
    let wanted = limit.maximum.unwrap_or(u64::MAX).min(CAP);
    if soft >= wanted {
        return Ok(soft);
    }
    let set = |current: u64| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(current),
                maximum: limit.maximum,
            },
        )
    };
    match set(wanted) {
        Ok(()) => Ok(wanted),
        Err(_) if wanted > OPEN_MAX && soft < OPEN_MAX && set(OPEN_MAX).is_ok() => Ok(OPEN_MAX),
        Err(err) => Err(format!(
            "cannot raise the open-file soft limit (RLIMIT_NOFILE) from {soft} to {wanted}: \
             {err}; at most about {soft} connections will be served"
        )),
    }
}

fn serve(args: Args, parent: Option<u32>) -> Result<Outcome, StartError> {
    let listen = args.listen;
    let listen_stdin = args.listen_stdin;
    let threads = args.threads;
    // Resolve the options before anything else, so a bad token file fails
    // before a port is taken.
    let config = args.into_config()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.build().map_err(StartError::Runtime)?;
    let version = config.version.clone();
    let seed = config.seed;
    let outcome = runtime.block_on(async move {
        let (listener, origin) = if listen_stdin {
            let std_listener = inherited_listener()?;
            let listener = tokio::net::TcpListener::from_std(std_listener)
                .map_err(StartError::InheritedSocket)?;
            (listener, "inherited socket")
        } else {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: listen,
                    source,
                })?;
            (listener, "bound")
        };
        let local = listener.local_addr().map_err(StartError::LocalAddr)?;
        // The first line of stdout is the address: scripts, tests and a
        // supervising parent read it as the "started" signal.
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{local}")
            .and_then(|()| stdout.flush())
            .map_err(StartError::Stdout)?;
        drop(stdout);
        note(format_args!(
            "goldengoose {version}: serving http://{local} ({origin}, seed {seed})"
        ));
        Ok::<_, StartError>(run(listener, config, shutdown_signal(parent)).await?)
    })?;
    // The server has drained (or crashed, dropping its connections): do not
    // wait for leftover blocking work, as `std::process::exit` would not.
    runtime.shutdown_background();
    Ok(outcome)
}

/// The listening socket passed as standard input, checked and made
/// non-blocking for tokio. The parent keeps its own copy, so this one is a
/// duplicate (no unsafe code needed to take over fd 0).
#[cfg(unix)]
fn inherited_listener() -> Result<std::net::TcpListener, StartError> {
    use std::os::fd::AsFd;

    let not_a_listener = |reason: String| StartError::NotAListener { reason };
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|err| not_a_listener(format!("cannot duplicate it: {err}")))?;
    let socket = socket2::Socket::from(fd);
    // SO_TYPE fails on a file, a pipe or a terminal (ENOTSOCK).
    let kind = socket
        .r#type()
        .map_err(|err| not_a_listener(format!("it is not a socket ({err})")))?;
    if kind != socket2::Type::STREAM {
        return Err(not_a_listener(format!(
            "it is a socket of type {kind:?}, not a stream (TCP) socket"
        )));
    }
    let address = socket
        .local_addr()
        .map_err(|err| not_a_listener(err.to_string()))?;
    if address.as_socket().is_none() {
        return Err(not_a_listener(
            "it is not an IPv4 or IPv6 socket (a Unix domain socket?)".to_string(),
        ));
    }
    // SO_ACCEPTCONN exists on Linux (and a few others); elsewhere an
    // unlistened socket shows up as accept errors in the server's log.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    if !socket
        .is_listener()
        .map_err(|err| not_a_listener(err.to_string()))?
    {
        return Err(not_a_listener(
            "it is a TCP socket but not listening (the parent must call listen, \
             e.g. bind with std::net::TcpListener)"
                .to_string(),
        ));
    }
    let listener = std::net::TcpListener::from(socket);
    listener
        .local_addr()
        .map_err(|err| not_a_listener(err.to_string()))?;
    // O_NONBLOCK belongs to the open file description, which the parent's
    // copy shares: harmless, as the parent only holds the socket.
    listener
        .set_nonblocking(true)
        .map_err(StartError::InheritedSocket)?;
    Ok(listener)
}

#[cfg(not(unix))]
fn inherited_listener() -> Result<std::net::TcpListener, StartError> {
    Err(StartError::ListenStdinUnsupported)
}

/// Completes on the first reason to stop, and says which on stderr.
async fn shutdown_signal(parent: Option<u32>) {
    tokio::select! {
        () = termination_signal() => {
            note(format_args!("goldengoose: shutting down, draining in-flight requests"));
        }
        (was, now) = parent_exit(parent) => {
            note(format_args!(
                "goldengoose: parent process {was} has exited (now a child of {now}), \
                 --exit-with-parent: shutting down, draining in-flight requests"
            ));
        }
    }
}

/// Completes once the parent process `was` has died, with the new parent.
/// A dead parent's children are re-parented (to init or the nearest
/// subreaper), so polling the parent ID is enough and needs no unsafe code.
/// Not PR_SET_PDEATHSIG: that fires when the parent's spawning *thread*
/// exits, which with a runtime's blocking pool happens in a healthy parent.
async fn parent_exit(was: Option<u32>) -> (u32, u32) {
    let Some(was) = was else {
        return std::future::pending().await;
    };
    let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match parent_id() {
            Some(now) if now != was => return (was, now),
            _ => {}
        }
    }
}

/// Resolves on SIGTERM (Kubernetes, docker stop) or Ctrl-C; servers pass it
/// (or a future built on it) as their shutdown signal.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
