//! The simulator's checks of faithfulness: false-alarm rates against
//! theory, detection rising with effect size and traffic, determinism
//! across thread counts, the pipeline's failure paths, and sharded
//! studies merged back.

#![allow(clippy::unwrap_used)]

mod faithfulness;
mod pipeline;
mod prometheus;
mod real_prometheus;
mod sharding;
mod side_by_side;

use std::path::{Path, PathBuf};

use scenarios::Scenario;

/// A file under sim/tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A catalog scenario.
pub fn catalog(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog")
        .join(format!("{name}.toml"));
    Scenario::load(&path, None).unwrap()
}

/// A scenario from TOML text, with the catalog's canary config.
pub fn scenario(name: &str, toml: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/catalog")
        .join(format!("{name}.toml"));
    let mut s = Scenario::parse(toml, &path, None).unwrap();
    s.name = name.into();
    s
}

/// Options for a study of `runs` runs.
pub fn opts(runs: u32, threads: usize) -> sim::StudyOptions {
    sim::StudyOptions {
        runs,
        seed: 7,
        threads,
        examples: false,
    }
}
