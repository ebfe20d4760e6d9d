//! Property tests: random well-formed queries over random series never
//! panic (they answer or refuse with an error); malformed queries are
//! refused with an error that gives a position.

use proptest::prelude::*;

use prom::store::labels_of;
use prom::{Engine, Query, Store};

fn selector() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a_total", "b", "h_bucket", "nope"]),
        prop::sample::select(vec![
            "",
            "{x=\"1\"}",
            "{x!=\"1\"}",
            "{x=~\"1|2\"}",
            "{x!~\"2\"}",
            "{le=~\".+\"}",
        ]),
        prop::sample::select(vec!["", " offset 1m", " offset -30s", " @ 1000"]),
    )
        .prop_map(|(n, m, o)| format!("{n}{m}{o}"))
}

fn range_sel() -> impl Strategy<Value = String> {
    (
        selector(),
        prop::sample::select(vec!["[1m]", "[5m]", "[30s]", "[2m:30s]"]),
    )
        .prop_map(|(s, r)| {
            if r.contains(':') {
                format!("({s}){r}")
            } else {
                // offset/@ must follow the range: move them.
                let (base, rest) = match s.find(' ') {
                    Some(i) => (&s[..i], &s[i..]),
                    None => (s.as_str(), ""),
                };
                format!("{base}{r}{rest}")
            }
        })
}

fn vector_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        selector(),
        (
            prop::sample::select(vec![
                "rate",
                "irate",
                "increase",
                "delta",
                "idelta",
                "deriv",
                "resets",
                "changes",
                "avg_over_time",
                "min_over_time",
                "max_over_time",
                "sum_over_time",
                "count_over_time",
                "last_over_time",
                "stddev_over_time",
            ]),
            range_sel()
        )
            .prop_map(|(f, r)| format!("{f}({r})")),
        range_sel().prop_map(|r| format!("quantile_over_time(0.7, {r})")),
        Just("vector(time())".to_string()),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["sum", "avg", "min", "max", "count", "group", "stddev"]),
                prop::sample::select(vec!["", " by (x)", " without (x)", " by (le)"]),
                inner.clone()
            )
                .prop_map(|(a, g, e)| format!("{a}{g} ({e})")),
            (
                prop::sample::select(vec!["topk", "bottomk", "quantile"]),
                prop::sample::select(vec!["0", "1", "2", "0.5", "-1"]),
                inner.clone()
            )
                .prop_map(|(a, p, e)| format!("{a}({p}, {e})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+",
                    "-",
                    "*",
                    "/",
                    "%",
                    "^",
                    "==",
                    "!=",
                    ">",
                    "<",
                    ">=",
                    "<=",
                    "> bool",
                    "and",
                    "or",
                    "unless",
                    "/ on(x)",
                    "* ignoring(le)",
                    "+ on(x) group_left",
                    "- ignoring(x) group_right",
                ]),
                inner.clone()
            )
                .prop_map(|(l, o, r)| format!("({l}) {o} ({r})")),
            (
                inner.clone(),
                prop::sample::select(vec!["+", "*", ">", "< bool"]),
                -5.0f64..5.0
            )
                .prop_map(|(l, o, n)| format!("({l}) {o} {n:.2}")),
            (
                prop::sample::select(vec!["abs", "ceil", "sqrt", "absent", "sort", "sort_desc"]),
                inner.clone()
            )
                .prop_map(|(f, e)| format!("{f}({e})")),
            inner.clone().prop_map(|e| format!("clamp_min({e}, 1)")),
            inner
                .clone()
                .prop_map(|e| format!("histogram_quantile(0.9, {e})")),
            inner.clone().prop_map(|e| format!("vector(scalar({e}))")),
            inner.prop_map(|e| format!("-({e})")),
        ]
    })
}

fn store() -> impl Strategy<Value = Store> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["a_total", "b", "h_bucket"]),
            prop::sample::select(vec!["1", "2", "3"]),
            prop::sample::select(vec!["0.1", "1", "+Inf", "x"]),
            prop::collection::vec(
                (
                    1i64..120_000,
                    prop_oneof![Just(f64::NAN), -10.0f64..100.0, Just(0.0)],
                ),
                0..40,
            ),
        ),
        0..12,
    )
    .prop_map(|series| {
        let mut st = Store::new();
        for (name, x, le, samples) in series {
            let id = st.series_id(labels_of(name, &[("x", x), ("le", le)]));
            let mut t = 0i64;
            for (dt, v) in samples {
                t += dt;
                let _ = st.push(id, t, v);
            }
        }
        st
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_queries_never_panic(st in store(), q in vector_expr(), t in 0i64..3_000_000, step in 1i64..120_000) {
        match Query::parse(&q) {
            Ok(query) => {
                let e = Engine::new(&st);
                let _ = e.instant(&query, t).map(|v| prom::json::instant(&v, t));
                let _ = e.range(&query, t, t + 20 * step, step).map(|m| prom::json::range(&m));
            }
            // The parser's own type checks (e.g. a comparison between
            // scalars without bool) refuse some generated text: fine, but
            // the refusal must be an error, never a panic.
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn malformed_queries_are_errors_with_a_position(q in vector_expr(), at in 0usize..200, junk in prop::sample::select(vec!["$", ")", "(", "{", "}", "[", ",", "\"", "by", "@"])) {
        let at = (0..=at.min(q.len())).rev().find(|&i| q.is_char_boundary(i)).unwrap_or(0);
        let bad = format!("{}{}{}", &q[..at], junk, &q[at..]);
        if let Err(e) = Query::parse(&bad) {
            let msg = e.to_string();
            prop_assert!(msg.contains("position") || msg.contains("not supported"), "{msg}");
        }
    }
}
