//! Failing backends are counted per target and never stop the run.

use std::time::Duration;

use loadgen::{Arrival, Control};

use crate::server::{Behavior, TestServer};
use crate::{open, plan};

#[tokio::test]
async fn a_crashing_server_is_counted_and_the_run_completes() {
    let crashy = TestServer::start(Behavior::CrashAfter(50)).await;
    let fine = TestServer::start(Behavior::Ok("fine")).await;
    let mut p = plan(
        &[("crashy", crashy.url(), 1.0), ("fine", fine.url(), 1.0)],
        Arrival::ClosedLoop,
    );
    p.connections = 4;
    p.duration = Some(Duration::from_millis(800));
    let r = loadgen::run(p, Control::new()).await.expect("run");
    let c = r.target("crashy").expect("crashy");
    let f = r.target("fine").expect("fine");
    assert!(
        c.responses >= 40 && c.responses < 60,
        "crashy answered {}",
        c.responses
    );
    assert!(
        c.errors.connect > 0,
        "refused connects after the crash: {:?}",
        c.errors
    );
    assert!(
        c.errors.reset > 0,
        "requests cut off by the crash: {:?}",
        c.errors
    );
    assert!(
        f.responses > 100,
        "the healthy target kept going: {}",
        f.responses
    );
    assert_eq!(f.errors.total(), 0);
}

#[tokio::test]
async fn hangs_time_out_per_target() {
    let hang = TestServer::start(Behavior::Hang).await;
    let fine = TestServer::start(Behavior::Ok("fine")).await;
    let mut p = plan(
        &[("hang", hang.url(), 1.0), ("fine", fine.url(), 1.0)],
        open(100.0),
    );
    p.duration = Some(Duration::from_secs(1));
    p.timeout = Duration::from_millis(200);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    let h = r.target("hang").expect("hang");
    let f = r.target("fine").expect("fine");
    assert!(h.errors.timeout > 20, "{:?}", h.errors);
    assert_eq!(h.responses, 0);
    assert_eq!(h.requests + h.dropped, h.errors.timeout + h.dropped);
    assert_eq!(f.errors.total(), 0);
    assert_eq!(f.requests + h.requests + r.total.dropped, 100);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    // Bind and drop to get a port with nothing behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut p = plan(
        &[("gone", format!("http://127.0.0.1:{port}/"), 1.0)],
        open(50.0),
    );
    p.requests = Some(20);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    assert_eq!(r.target("gone").expect("gone").errors.connect, 20);
}
