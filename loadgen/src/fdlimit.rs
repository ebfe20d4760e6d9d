//! Raising the open-file soft limit (`RLIMIT_NOFILE`) to the hard limit at
//! start, as Go's runtime has done since 1.19.
//!
//! Many Linux machines give processes a soft limit of 1024 with a much
//! higher hard limit, so a load generator holding a few thousand keep-alive
//! connections (or a server accepting them) fails with EMFILE although
//! nothing stops it from raising its own soft limit. Every process may raise
//! its soft limit up to the hard limit without privileges.
//!
//! For a binary's `main` (loadgen's, canarylab's): call [`raise_fd_limit`]
//! once, before opening connections. Not for changing the hard limit, and
//! not something a library run does by itself: the limit belongs to the
//! whole process. Children inherit the raised limit (Go restores the old one
//! for children, for the sake of `select(2)` users; the processes canarylab
//! starts do not use `select`).

/// The soft limit aimed for when the hard limit is unlimited. Linux never
/// allows an unlimited hard limit for open files (its ceiling is
/// `fs.nr_open`, 1 << 20 by default); this cap matters elsewhere.
#[cfg(unix)]
const CAP: u64 = 1 << 20;

/// macOS refuses a soft limit above `kern.maxfilesperproc` while reporting
/// an unlimited hard limit; `OPEN_MAX` (10240) is what it always accepts, so
/// it is tried once when the first attempt fails.
#[cfg(unix)]
const OPEN_MAX: u64 = 10240;

/// The soft limit could not be raised: the process keeps the old one and
/// may fail with "Too many open files" once it holds that many sockets.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot raise the open-file soft limit (RLIMIT_NOFILE) from {soft} to {wanted}: {source}; \
     at most about {soft} connections will work (raise it with `ulimit -n`)"
)]
pub struct RaiseError {
    /// The soft limit in force (unchanged).
    pub soft: u64,
    /// The limit asked for: the hard limit, at most 2^20.
    pub wanted: u64,
    /// Why `setrlimit` refused.
    #[source]
    pub source: std::io::Error,
}

/// Raises this process's soft limit of open files to its hard limit (at
/// most 2^20 when the hard limit is unlimited) and returns the soft limit
/// now in force; `u64::MAX` means unlimited, and is also the answer on
/// platforms without such a limit (not unix). Never lowers the limit. An
/// error leaves the limit unchanged: print it as a warning and go on.
pub fn raise_fd_limit() -> Result<u64, RaiseError> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

        let limit = getrlimit(Resource::Nofile);
        let Some(soft) = limit.current else {
            return Ok(u64::MAX);
        };
        let wanted = limit.maximum.unwrap_or(u64::MAX).min(CAP);
        if soft >= wanted {
            return Ok(soft);
        }
        let set = |current: u64| {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(current),
                    maximum: limit.maximum,
                },
            )
        };
        match set(wanted) {
            Ok(()) => {}
            Err(_) if wanted > OPEN_MAX && soft < OPEN_MAX && set(OPEN_MAX).is_ok() => {}
            Err(source) => {
                return Err(RaiseError {
                    soft,
                    wanted,
                    source: source.into(),
                });
            }
        }
        // Read back rather than trust the request: a kernel may clamp it.
        Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    {
        Ok(u64::MAX)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    /// Set in the re-executed test binary: there, and only there, the test
    /// lowers the soft limit, so no other test of this binary runs with it.
    const CHILD_ENV: &str = "LOADGEN_FDLIMIT_TEST_CHILD";
    const NAME: &str = "fdlimit::tests::raises_the_soft_limit_to_the_hard_limit";

    #[test]
    fn raises_the_soft_limit_to_the_hard_limit() {
        if std::env::var_os(CHILD_ENV).is_some() {
            lower_then_raise();
            return;
        }
        // Run this very test alone in a child process of the same binary:
        // lowering the limit here could make concurrent tests hit EMFILE.
        let exe = std::env::current_exe().expect("test binary path");
        let output = std::process::Command::new(exe)
            .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, "1")
            .output()
            .expect("run the test binary again");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "child failed: {}\n{stdout}\n{stderr}",
            output.status
        );
        // The filter matched exactly this test (not zero tests).
        assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    }

    fn lower_then_raise() {
        let before = getrlimit(Resource::Nofile);
        let expected = before.maximum.unwrap_or(u64::MAX).min(CAP);
        let lowered = 256.min(expected / 2);
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(lowered),
                maximum: before.maximum,
            },
        )
        .expect("lowering the soft limit is always allowed");
        assert_eq!(getrlimit(Resource::Nofile).current, Some(lowered));
        assert!(
            lowered < expected,
            "hard limit {:?} too low",
            before.maximum
        );

        let raised = raise_fd_limit().expect("raise to the hard limit");
        assert_eq!(raised, expected);
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, Some(expected));
        assert_eq!(after.maximum, before.maximum, "hard limit untouched");
        // A second call changes nothing.
        assert_eq!(raise_fd_limit().expect("no-op"), expected);
    }
}
