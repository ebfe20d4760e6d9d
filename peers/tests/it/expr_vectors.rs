//! Argo's conditions against answers from Go's expr run with Argo's
//! `EvalCondition` environment (tests/fixtures/expr-vectors.tsv: 480 cases,
//! expected answers produced by Debian's golang-github-antonmedv-expr-dev
//! 1.8.9; Argo pins expr-lang/expr 1.17, whose semantics for these forms are
//! the same: out-of-range index fails, NaN compares false, mismatched types fail).

use peers::expr::{Condition, Value};

fn result(kind: &str, values: &str, nan: bool) -> Value {
    let mut v: Vec<f64> = values
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    if kind == "scalar" {
        return Value::Float(if nan { f64::NAN } else { v[0] });
    }
    if nan {
        v.push(f64::NAN);
    }
    Value::Array(v.into_iter().map(Value::Float).collect())
}

#[test]
fn conditions_agree_with_go_expr() {
    let text = include_str!("../fixtures/expr-vectors.tsv");
    let mut n = 0;
    let mut wrong = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [cond, kind, values, nan, want] = cols[..] else {
            panic!("bad line {line:?}")
        };
        let r = result(kind, values, nan == "nan");
        let got = match Condition::parse(cond).and_then(|c| c.eval(&r)) {
            Ok(b) => b.to_string(),
            Err(_) => "error".to_string(),
        };
        n += 1;
        if got != want {
            wrong.push(format!(
                "{cond:?} with {kind} [{values}]{}: Go {want}, ours {got}",
                if nan == "nan" { " NaN" } else { "" }
            ));
        }
    }
    assert_eq!(n, 480);
    assert!(
        wrong.is_empty(),
        "{} of {n} disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
