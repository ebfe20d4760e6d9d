//! Decides the catalog's analyses a fixed number of times, for instruction
//! counts that do not depend on machine load:
//!
//! ```text
//! cargo build --release -p peers --example decide_count
//! valgrind --tool=callgrind target/release/examples/decide_count argo run 1000
//! valgrind --tool=callgrind target/release/examples/decide_count argo run 2000
//! ```
//!
//! The difference of the two totals over 1000 is the cost of one release
//! (`run`: a controller from a loaded file run to its decision, answers from
//! a closure) or of reading the file and building the controller (`load`).
//! Prints the last outcome so the work cannot be optimised away.

use std::time::Duration;

use peers::{Answer, Command, QueryResult};

const ARGO: &str = include_str!("../../scenarios/catalog/analyses/argo-rollout.yaml");
const FLAGGER: &str = include_str!("../../scenarios/catalog/analyses/flagger-canary.yaml");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: decide_count argo|flagger load|run ITERATIONS";
    let text = match args.get(1).map(String::as_str) {
        Some("argo") => ARGO,
        Some("flagger") => FLAGGER,
        _ => panic!("{usage}"),
    };
    let run = match args.get(2).map(String::as_str) {
        Some("run") => true,
        Some("load") => false,
        _ => panic!("{usage}"),
    };
    let iterations: usize = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let bundle = peers::load("catalog.yaml", text).expect("the catalog loads");
    let mut last = None;
    for _ in 0..iterations {
        if !run {
            let b = peers::load("catalog.yaml", std::hint::black_box(text)).expect("loads");
            last = Some(format!(
                "{:?}",
                b.controller(&Default::default()).map(|c| c.queries().len())
            ));
            continue;
        }
        let mut c = bundle.controller(&Default::default()).expect("builds");
        peers::drive(
            c.as_mut(),
            Duration::ZERO,
            Duration::from_secs(36_000),
            |cmd| match cmd {
                Command::Measure { query, .. } => {
                    Some(Answer::Measured(QueryResult::Vector(vec![if query
                        .promql
                        .contains("histogram_quantile")
                    {
                        160.0
                    } else {
                        99.9
                    }])))
                }
                _ => None,
            },
        );
        last = c
            .outcome()
            .map(|o| format!("{:?} at {:?}", o.decision, o.at));
    }
    println!("{last:?}");
}
