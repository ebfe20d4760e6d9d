//! Integration tests of the local real mode: goldengoose processes run as
//! `canarylab goldengoose` (this package's binary), a real Prometheus
//! (`apt-get install prometheus`, or $CANARYLAB_PROMETHEUS), real traffic.

mod e2e;
mod goose;
mod peer;
mod release;
mod retry;
mod serve;

use std::path::PathBuf;

use cluster::GooseCommand;

/// A cancel channel nobody will set: its sender is gone, so it never
/// cancels.
pub fn not_cancelled() -> tokio::sync::watch::Receiver<bool> {
    tokio::sync::watch::channel(false).1
}

/// goldengoose as `canarylab local` runs it: this package's binary.
pub fn goldengoose() -> GooseCommand {
    GooseCommand::new(env!("CARGO_BIN_EXE_canarylab")).arg("goldengoose")
}

/// State and parent PID from `/proc/PID/stat` ("PID (comm) STATE PPID
/// ...": the fields after the last ')').
fn stat(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != "Z" && state != "X")
}

/// Every process: PID, parent PID and command line (arguments joined by
/// spaces).
pub fn processes() -> Vec<(u32, u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (_, ppid) = stat(pid)?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
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
