//! The weighted split: respected, reproducible, and changeable mid-run.

use std::time::Duration;

use loadgen::{Arrival, Control, WeightStep};

use crate::server::{Behavior, TestServer};
use crate::{open, plan, within_binomial};

#[tokio::test]
async fn weights_are_respected_within_binomial_bounds() {
    let prod = TestServer::start(Behavior::Ok("production")).await;
    let base = TestServer::start(Behavior::Ok("baseline")).await;
    let can = TestServer::start(Behavior::Ok("canary")).await;
    let mut p = plan(
        &[
            ("production", prod.url(), 80.0),
            ("baseline", base.url(), 10.0),
            ("canary", can.url(), 10.0),
        ],
        Arrival::ClosedLoop,
    );
    p.connections = 8;
    p.requests = Some(3000);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    assert_eq!(r.total.requests, 3000);
    assert_eq!(r.total.errors.total(), 0);
    for (name, server, share) in [
        ("production", &prod, 0.8),
        ("baseline", &base, 0.1),
        ("canary", &can, 0.1),
    ] {
        let t = r.target(name).expect("target in report");
        // 4.5 sd: a correct implementation fails this about once in 150,000 runs.
        assert!(
            within_binomial(t.requests, 3000, share, 4.5),
            "{name}: {} of 3000, expected share {share}",
            t.requests
        );
        assert_eq!(
            t.requests,
            server.hits(),
            "{name}: report and server disagree"
        );
        assert_eq!(t.status.get("2xx"), Some(&t.requests));
    }
}

#[tokio::test]
async fn same_seed_same_split() {
    let a = TestServer::start(Behavior::Ok("a")).await;
    let b = TestServer::start(Behavior::Ok("b")).await;
    let run = |seed| {
        let mut p = plan(
            &[("a", a.url(), 1.0), ("b", b.url(), 3.0)],
            Arrival::ClosedLoop,
        );
        p.connections = 1;
        p.requests = Some(300);
        p.seed = seed;
        async move {
            let r = loadgen::run(p, Control::new()).await.expect("run");
            r.target("a").expect("a").requests
        }
    };
    let (x, y, z) = (run(7).await, run(7).await, run(8).await);
    assert_eq!(x, y, "same seed, same number of requests to a");
    assert!(within_binomial(x, 300, 0.25, 4.5), "{x}");
    assert!(within_binomial(z, 300, 0.25, 4.5), "{z}");
}

#[tokio::test]
async fn a_schedule_step_takes_effect() {
    let a = TestServer::start(Behavior::Ok("a")).await;
    let b = TestServer::start(Behavior::Ok("b")).await;
    let mut p = plan(&[("a", a.url(), 1.0), ("b", b.url(), 1.0)], open(400.0));
    p.schedule = vec![
        WeightStep::parse("600ms:a=1,b=0").expect("step"),
        WeightStep::parse("a=0,b=1").expect("step"),
    ];
    p.duration = Some(Duration::from_millis(1200));
    p.interval = Duration::from_millis(200);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    let (ra, rb) = (r.target("a").expect("a"), r.target("b").expect("b"));
    // 480 requests intended; the switch at 600 ms splits them about in half.
    assert_eq!(ra.requests + rb.requests + r.total.dropped, 480);
    assert!((200..=280).contains(&ra.requests), "a got {}", ra.requests);
    assert!((200..=280).contains(&rb.requests), "b got {}", rb.requests);
    for i in &r.intervals {
        let n = |name: &str| {
            i.targets
                .iter()
                .find(|t| t.name == name)
                .map_or(0, |t| t.requests)
        };
        if i.end_s <= 0.55 {
            assert_eq!(n("b"), 0, "b got traffic before the switch: {i:?}");
        }
        if i.start_s >= 0.65 {
            assert_eq!(n("a"), 0, "a got traffic after the switch: {i:?}");
        }
    }
    let changes: Vec<_> = r
        .weight_changes
        .iter()
        .map(|c| (c.weights["a"], c.weights["b"]))
        .collect();
    assert_eq!(changes, vec![(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]);
}

#[tokio::test]
async fn control_sets_weights_and_stops_a_running_load() {
    let a = TestServer::start(Behavior::Ok("a")).await;
    let b = TestServer::start(Behavior::Ok("b")).await;
    let mut p = plan(&[("a", a.url(), 1.0), ("b", b.url(), 0.0)], open(500.0));
    p.duration = Some(Duration::from_secs(30));
    let control = Control::new();
    let running = tokio::spawn(loadgen::run(p, control.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        control.set_weights(&[("a", 0.0), ("b", 0.0)]).is_err(),
        "all-zero weights refused mid-run"
    );
    assert!(control.set_weights(&[("nope", 1.0)]).is_err());
    let hits_a = a.hits();
    control
        .set_weights(&[("a", 0.0), ("b", 1.0)])
        .expect("valid weights");
    tokio::time::sleep(Duration::from_millis(400)).await;
    control.stop();
    let r = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stop() ends the run promptly")
        .expect("task")
        .expect("run");
    assert!(r.duration_s < 5.0, "stopped early: {}", r.duration_s);
    let (ra, rb) = (r.target("a").expect("a"), r.target("b").expect("b"));
    assert!(
        ra.requests > 50 && rb.requests > 50,
        "a {} b {}",
        ra.requests,
        rb.requests
    );
    // Requests already queued or in flight at the change may still reach a.
    assert!(
        a.hits() <= hits_a + 5,
        "a kept getting traffic: {} -> {}",
        hits_a,
        a.hits()
    );
    assert_eq!(r.weight_changes.len(), 2);
}
