//! Runs one benchmark case of `benches/classify.rs` a fixed number of
//! times, for instruction counts that do not depend on machine load:
//!
//! ```text
//! cargo build --release -p judge --example classify_count
//! valgrind --tool=callgrind target/release/examples/classify_count 60 s 1000
//! valgrind --tool=callgrind target/release/examples/classify_count 60 s 2000
//! ```
//!
//! The difference of the two totals over 1000 is the cost of one
//! classification (the set-up cancels). Prints the last result so the work cannot be optimised
//! away, and so two builds can be checked for identical output.

#[path = "../benches/data/mod.rs"]
mod data;

use judge::classifier::MannWhitneyClassifier;
use judge::mannwhitney::MannWhitney;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: classify_count N ms|s ITERATIONS";
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).expect(usage);
    let unit = data::CASES
        .iter()
        .find(|case| args.get(2).is_some_and(|a| a == case.2))
        .map(|case| case.1)
        .expect(usage);
    let iterations: usize = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let (control, experiment) = data::case(n, unit);
    let classifier = MannWhitneyClassifier::default();
    let cargs = data::classify_args();
    let mut mw = MannWhitney::new();
    let mut last = None;
    for _ in 0..iterations {
        last = Some(classifier.classify(
            &mut mw,
            std::hint::black_box(&control),
            std::hint::black_box(&experiment),
            &cargs,
        ));
    }
    if let Some(r) = last {
        println!("{:?} {:?}", r.classification, r.mann_whitney);
    }
}
