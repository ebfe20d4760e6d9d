use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // loadgen (local mode) and goldengoose hold a socket per connection;
    // many systems start processes with a soft limit of 1024 files.
    #[cfg(feature = "local")]
    if let Err(err) = loadgen::raise_fd_limit() {
        eprintln!("canarylab: warning: {err}");
    }
    let cli = canarylab::Cli::parse();
    #[cfg(feature = "local")]
    if let canarylab::Command::Goldengoose(args) = cli.command {
        return goldengoose::cli::main(args);
    }
    let mut stdout = std::io::stdout().lock();
    match canarylab::run(cli, &mut stdout) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            canarylab::Exit::BadInput.into()
        }
    }
}
