//! The loadgen binary: parse arguments, build the runtime, run the library's CLI.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the flag and the problem; no backtrace for bad input.
            eprintln!("loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = loadgen::Cli::parse();
    if let Some(loadgen::Command::Merge(args)) = &cli.command {
        // no runtime needed: merging only reads files
        loadgen::merge::run_merge(args, &mut std::io::stdout().lock())?;
        return Ok(());
    }
    // Thousands of pooled connections need more than the common soft limit
    // of 1024 open files; a failure is only a warning (small runs still work).
    if let Err(err) = loadgen::raise_fd_limit() {
        eprintln!("loadgen: warning: {err}");
    }
    // A single-threaded runtime: with --threads N the library starts N - 1
    // more threads with runtimes of their own (Plan::threads).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let control = loadgen::Control::new();
        let on_interrupt = control.clone();
        // Ctrl-C ends the load early but still prints the summary and writes --json.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_interrupt.stop();
            }
        });
        let mut out = std::io::stdout().lock();
        loadgen::run_cli(&cli, control, &mut out).await
    })?;
    Ok(())
}
