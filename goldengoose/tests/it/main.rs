//! Integration tests: goldengoose run in-process over loopback (and the
//! binary, for the CLI contract), each fault's effect measured.

mod admin;
mod cli;
mod exit_with_parent;
mod faults;
mod istio;
mod listen_stdin;
mod metrics;
mod server;
mod support;
