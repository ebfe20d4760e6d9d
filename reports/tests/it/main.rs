//! Integration tests of the reports crate: snapshots of the text outputs,
//! structure of the HTML and JUnit XML, PNG pixels, and the files
//! `write_study` writes.

#![allow(clippy::unwrap_used)]

mod fixture;
mod outputs;
mod pictures;
mod sidebyside;
mod xml;
