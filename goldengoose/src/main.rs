//! The goldengoose binary: parse args, build the runtime, bind, print the
//! bound address, serve until SIGTERM/Ctrl-C or a crash fault.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use goldengoose::{Args, CRASH_EXIT_CODE, Outcome};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listen = args.listen;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.build().context("cannot start the tokio runtime")?;
    let config = args.into_config()?;
    let version = config.version.clone();
    let seed = config.seed;
    let outcome = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}: cannot bind"))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        // The first line of stdout is the bound address, for scripts and tests.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{local}")?;
        stdout.flush()?;
        drop(stdout);
        eprintln!("goldengoose {version}: serving http://{local} (seed {seed})");
        goldengoose::run(listener, config, shutdown_signal())
            .await
            .map_err(anyhow::Error::from)
    })?;
    match outcome {
        Outcome::Stopped { drained: true } => Ok(()),
        Outcome::Stopped { drained: false } => {
            eprintln!("goldengoose: drain timeout reached with requests in flight");
            Ok(())
        }
        Outcome::Crashed { reason } => {
            eprintln!("goldengoose: {reason}; exiting with status {CRASH_EXIT_CODE}");
            std::process::exit(CRASH_EXIT_CODE);
        }
    }
}

async fn shutdown_signal() {
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
    eprintln!("goldengoose: shutting down, draining in-flight requests");
}
