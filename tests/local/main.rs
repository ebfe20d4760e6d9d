//! Integration tests of the local real mode: goldengoose processes run as
//! `canarylab goldengoose` (this package's binary), a real Prometheus
//! (`apt-get install prometheus`, or $CANARYLAB_PROMETHEUS), real traffic.

mod e2e;
mod goose;
mod release;

use std::path::PathBuf;

use cluster::GooseCommand;

/// goldengoose as `canarylab local` runs it: this package's binary.
pub fn goldengoose() -> GooseCommand {
    GooseCommand::new(env!("CARGO_BIN_EXE_canarylab")).arg("goldengoose")
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (comm) STATE ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A directory of this test's own, removed on drop.
#[derive(Debug)]
pub struct TempRoot(pub PathBuf);

impl TempRoot {
    pub fn new(name: &str) -> TempRoot {
        let path =
            std::env::temp_dir().join(format!("canarylab-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp root");
        TempRoot(path)
    }

    pub fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.0)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
