//! How the simulator's Mann-Whitney classifications were decided, per
//! scenario: from the rank statistic at a few shifts (no root finder), by
//! running the root finder only until the label was certain, or with the
//! full interval. The study's runs and seeds (`run_seed` with the study
//! seed), one workspace per scenario as a study thread keeps one.
//!
//! `cargo run --release -p sim --example band_share -- scenarios/catalog 200 1`
//! (directory or file, runs per scenario, study seed).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "scenarios/catalog".into()));
    let runs: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let scenarios = scenarios::load_all(&[path], None)?;
    let prepared = sim::Prepared::all(&scenarios)?;
    let share = |part: u64, all: u64| 100.0 * part as f64 / all.max(1) as f64;
    let mut total = judge::mannwhitney::BandCounts::default();
    println!(
        "{:<28} {:>10} {:>8} {:>8} {:>8}",
        "scenario", "labels", "few %", "part %", "full %"
    );
    for p in &prepared {
        let mut ws = judge::Workspace::new();
        for k in 0..runs {
            let s = sim::run_seed(seed, &p.scenario().name, k);
            sim::run_once(p, s, false, &mut ws);
        }
        let c = ws.band_counts();
        let all = c.decided + c.stepped + c.computed;
        println!(
            "{:<28} {:>10} {:>8.2} {:>8.2} {:>8.2}",
            p.scenario().name,
            all,
            share(c.decided, all),
            share(c.stepped, all),
            share(c.computed, all)
        );
        total.decided += c.decided;
        total.stepped += c.stepped;
        total.computed += c.computed;
    }
    let all = total.decided + total.stepped + total.computed;
    println!(
        "{:<28} {:>10} {:>8.2} {:>8.2} {:>8.2}",
        "all",
        all,
        share(total.decided, all),
        share(total.stepped, all),
        share(total.computed, all)
    );
    Ok(())
}
