//! `Plan::threads`: connections spread over threads with runtimes of their own.

use std::time::Duration;

use loadgen::{Arrival, Control};

use crate::server::{Behavior, TestServer};
use crate::{open, plan, within_binomial};

#[tokio::test]
async fn closed_loop_on_three_threads_counts_every_request_and_keeps_the_weights() {
    let a = TestServer::start(Behavior::Ok("a")).await;
    let b = TestServer::start(Behavior::Ok("b")).await;
    let mut p = plan(
        &[("a", a.url(), 3.0), ("b", b.url(), 1.0)],
        Arrival::ClosedLoop,
    );
    p.connections = 8;
    p.threads = 3;
    p.requests = Some(4000);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    assert_eq!(r.total.requests, 4000);
    assert_eq!(r.total.errors.total(), 0);
    let ta = r.target("a").expect("a");
    let tb = r.target("b").expect("b");
    assert_eq!(ta.requests, a.hits());
    assert_eq!(tb.requests, b.hits());
    assert!(
        within_binomial(ta.requests, 4000, 0.75, 4.5),
        "a: {}",
        ta.requests
    );
}

#[tokio::test]
async fn open_loop_on_two_threads_sends_what_is_due() {
    let s = TestServer::start(Behavior::Ok("a")).await;
    let mut p = plan(&[("a", s.url(), 1.0)], open(2000.0));
    p.duration = Some(Duration::from_secs(1));
    p.connections = 16;
    p.threads = 2;
    let r = loadgen::run(p, Control::new()).await.expect("run");
    assert_eq!(r.total.requests + r.total.dropped, 2000);
    assert_eq!(r.total.dropped, 0);
    assert_eq!(s.hits(), 2000);
}

/// A plain test with its own runtime: if the other threads did not stop,
/// dropping a `#[tokio::test]` runtime would wait for them forever; this one
/// is shut down with a timeout and the test fails instead of hanging.
#[test]
fn dropping_the_run_stops_the_other_threads() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (first, later) = rt.block_on(async {
        let s = TestServer::start(Behavior::Ok("a")).await;
        let mut p = plan(&[("a", s.url(), 1.0)], Arrival::ClosedLoop);
        p.connections = 4;
        p.threads = 2;
        p.duration = Some(Duration::from_secs(600));
        let running = tokio::spawn(loadgen::run(p, Control::new()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        running.abort();
        assert!(running.await.is_err(), "the run was aborted, not finished");
        // Workers finish the request they are in (instant here), then stop.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let first = s.hits();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (first, s.hits())
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    assert!(first > 0);
    assert_eq!(
        later, first,
        "requests still sent after the run was dropped"
    );
}
