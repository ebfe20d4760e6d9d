//! The goldengoose binary: all of it is [`goldengoose::cli::main`], so other
//! binaries can embed the same command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    goldengoose::cli::main(goldengoose::Args::parse())
}
