//! Integration tests of the local real mode: goldengoose processes run as
//! `canarylab goldengoose` (this package's binary), a real Prometheus
//! (`apt-get install prometheus`, or $CANARYLAB_PROMETHEUS), real traffic.
//!
//! A harness of its own (`harness = false`, libtest-mimic: the same
//! arguments and output as libtest's): the tests here mostly wait on real
//! time (time-scaled releases, 20 to 60 s each; 43 CPU-s over 237 s of wall
//! at libtest's two threads on two cores), so they run on more threads than
//! the machine has cores: [`WAITING_THREADS`] unless `--test-threads` or
//! `RUST_TEST_THREADS` says otherwise. A test is a `pub(crate) fn` or
//! `async fn` in its module, registered in [`trials`]: `#[test]` and
//! `#[tokio::test]` would be dropped silently here, so a trial fails
//! naming any that appears.

mod calibrate;
mod e2e;
mod goose;
mod peer;
mod release;
mod retry;
mod serve;

use std::future::Future;
use std::path::PathBuf;

use cluster::GooseCommand;
use libtest_mimic::{Arguments, Failed, Trial};

/// Tests run at once by default. The longest ones are started first (see
/// [`trials`]), so the binary takes about its longest test plus the rest
/// divided by this. Eight at once took 62 s but once rolled a doubled
/// latency forward on an idle 2-core machine (the p99 of eight releases'
/// processes sharing two cores is scheduling noise, and the catalog's
/// config fails latency only with p99); four keep the machine's own noise
/// below the releases'.
const WAITING_THREADS: usize = 4;

fn main() {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        let env = std::env::var("RUST_TEST_THREADS").ok();
        args.test_threads = Some(env.and_then(|n| n.parse().ok()).unwrap_or(WAITING_THREADS));
    }
    libtest_mimic::run(&args, trials()).exit()
}

/// `when how module::function, ...`: a test's name as libtest would give
/// it (`module::function`; `stringify!` may space the `::`), whether it is
/// ignored ([`always`] or [`prometheus`]) and how it runs ([`plain`],
/// [`current`], [`multi`]).
macro_rules! trials {
    ($($when:ident $how:ident $($path:ident)::+),* $(,)?) => {
        vec![$($when($how(&stringify!($($path)::+).replace(' ', ""), $($path)::+))),*]
    };
}

/// Every test, the longest first (times measured at libtest's two threads
/// under load): the pool takes them in this order, so the 50 to 60 s
/// releases start at once and the short ones fill in around them.
fn trials() -> Vec<Trial> {
    let mut trials = trials![
        prometheus multi   calibrate::calibrate_recovers_known_goldengoose_settings_from_a_real_prometheus,
        prometheus multi   peer::flagger_rolls_back_the_latency_regression,
        prometheus multi   peer::argo_promotes_an_aa_release,
        prometheus plain   peer::cli_releases_by_a_flagger_file_and_names_the_results,
        prometheus multi   peer::flagger_promotes_an_aa_release,
        prometheus multi   peer::argo_set_canary_scale_sizes_the_canary,
        prometheus multi   peer::argo_dynamic_stable_scale_scales_production,
        prometheus multi   peer::argo_dynamic_stable_scale_abort_restores_production_first,
        prometheus multi   release::aa_release_is_promoted_by_replacing_production,
        prometheus multi   peer::argo_rolls_back_the_latency_regression,
        prometheus multi   serve::analyze_fails_a_latency_regression_from_real_prometheus,
        prometheus multi   serve::analyze_passes_an_aa_release_from_real_prometheus,
        prometheus multi   e2e::e2e_aa_release_is_promoted_from_real_prometheus,
        prometheus multi   release::release_with_a_large_latency_fault_is_rolled_back,
        prometheus multi   retry::prometheus_restarted_on_the_same_address_mid_release_the_release_goes_on,
        prometheus multi   release::ctrl_c_during_promotion_undoes_it,
        prometheus multi   e2e::e2e_latency_canary_is_rolled_back_from_real_prometheus,
        prometheus multi   release::canary_that_never_starts_fails_the_deploy,
        prometheus multi   retry::prometheus_that_stays_down_fails_the_analysis_step_and_everything_stops,
        prometheus multi   release::promql_error_ends_the_release_at_the_analysis,
        always     current goose::a_pod_that_dies_after_it_was_ready_is_reported_crashed,
        prometheus multi   release::interrupted_release_leaves_no_process_and_no_temp_dir,
        prometheus current goose::nothing_is_left_behind_when_canarylab_is_killed,
        always     current goose::a_crashed_instance_is_restarted_on_the_same_address,
        always     current goose::cpu_is_counted_per_instance,
        always     current goose::serves_on_the_reserved_listener_as_a_process_of_its_own,
        always     current goose::dropping_an_instance_kills_its_process,
        always     current goose::slow_start_is_not_ready_but_healthy,
        always     current goose::a_program_that_cannot_run_is_named,
        always     current goose::an_instance_that_exits_before_serving_shows_its_stderr,
        always     multi   peer::renamed_series_are_refused_before_anything_starts,
        always     plain   peer::cli_refuses_a_bad_analysis_file_naming_it,
        always     multi   release::release_with_a_config_without_prometheus_queries_starts_nothing,
        always     multi   release::canary_that_fails_to_start_ends_the_deploy_and_stops_the_others,
    ];
    trials.push(Trial::test(
        "every_test_is_registered",
        every_test_is_registered,
    ));
    trials
}

/// Runs whenever the binary runs.
fn always(trial: Trial) -> Trial {
    trial
}

/// `#[ignore = "needs prometheus: apt-get install prometheus"]`: run with
/// `--include-ignored` (or `--ignored`), as `.ci/run` does.
fn prometheus(trial: Trial) -> Trial {
    trial.with_ignored_flag(true).with_kind("needs prometheus")
}

/// A `#[test]`.
fn plain(name: &str, test: fn()) -> Trial {
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// A `#[tokio::test]`: a current-thread runtime.
fn current<F: Future<Output = ()> + 'static>(name: &str, test: fn() -> F) -> Trial {
    Trial::test(name, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failed::from(format!("tokio runtime: {e}")))?
            .block_on(test());
        Ok(())
    })
}

/// A `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
fn multi<F: Future<Output = ()> + 'static>(name: &str, test: fn() -> F) -> Trial {
    Trial::test(name, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failed::from(format!("tokio runtime: {e}")))?
            .block_on(test());
        Ok(())
    })
}

/// No `#[test]` or `#[tokio::test]` in this binary's files: this harness
/// would never run it.
fn every_test_is_registered() -> Result<(), Failed> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "local"]
        .iter()
        .collect();
    let mut unregistered = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                unregistered.push(format!("{}:{}", path.display(), i + 1));
            }
        }
    }
    if unregistered.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tests/local runs its own harness (main.rs): make these plain `pub(crate)` \
             functions and add them to `trials()`: {}",
            unregistered.join(", ")
        )
        .into())
    }
}

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
