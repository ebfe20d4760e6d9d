use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = canarylab::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match canarylab::run(cli, &mut stdout) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            canarylab::Exit::BadInput.into()
        }
    }
}
