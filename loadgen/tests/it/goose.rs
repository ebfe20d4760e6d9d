//! Against real goldengoose servers in-process (hyper's server, HTTP/1.1 and
//! h2c on one port): what loadgen's own HTTP/1.1 client must get right.

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::{Arrival, Control, Plan, Targets};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{plan, within_binomial};

/// A goldengoose on 127.0.0.1:0, stopped when dropped (also when a test fails).
struct Goose {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<goldengoose::Outcome, goldengoose::Error>>,
}

impl Goose {
    async fn start(version: &str, payload_bytes: usize, faults: &[&str]) -> Goose {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let config = goldengoose::Config {
            version: version.into(),
            payload_bytes,
            faults: faults.iter().map(|f| f.parse().expect("fault")).collect(),
            drain_timeout: Duration::from_millis(100),
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(goldengoose::run(listener, config, async {
            let _ = rx.await;
        }));
        Goose {
            addr,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Goose {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

#[tokio::test]
async fn status_classes_and_large_bodies_from_goldengoose() {
    // 50% errors (503) on the canary; 200 kB bodies on production, read
    // across many reads of the connection's buffer.
    let prod = Goose::start("production", 200_000, &[]).await;
    let can = Goose::start("canary", 64, &["errors=50%:503"]).await;
    let mut p = plan(
        &[("production", prod.url(), 1.0), ("canary", can.url(), 1.0)],
        Arrival::ClosedLoop,
    );
    p.connections = 8;
    p.requests = Some(2000);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    assert_eq!(r.total.requests, 2000);
    assert_eq!(r.total.errors.total(), 0, "{:?}", r.total.errors);
    let tp = r.target("production").expect("production");
    let tc = r.target("canary").expect("canary");
    assert_eq!(tp.status.get("2xx"), Some(&tp.requests));
    let c5 = tc.status.get("5xx").copied().unwrap_or(0);
    let c2 = tc.status.get("2xx").copied().unwrap_or(0);
    assert_eq!(c5 + c2, tc.requests);
    assert!(
        within_binomial(c5, tc.requests, 0.5, 4.5),
        "5xx {c5} of {}",
        tc.requests
    );
}

#[tokio::test]
async fn gateway_mode_reads_goldengoose_x_version() {
    let g = Goose::start("v7", 64, &[]).await;
    let endpoint = loadgen::Endpoint::parse(&g.url()).expect("url");
    let mut p = Plan::new(
        Targets::Gateway {
            endpoint,
            header: "x-version".into(),
        },
        Arrival::ClosedLoop,
    );
    p.loopback_only = true;
    p.connections = 4;
    p.requests = Some(500);
    let r = loadgen::run(p, Control::new()).await.expect("run");
    let v = r.target("v7").expect("attributed to goldengoose's version");
    assert_eq!(v.requests, 500);
    assert_eq!(v.status.get("2xx"), Some(&500));
}

#[tokio::test]
async fn a_crashing_goldengoose_is_counted_and_the_run_completes() {
    let g = Goose::start("crashy", 64, &["crash=300req"]).await;
    let mut p = plan(&[("a", g.url(), 1.0)], Arrival::ClosedLoop);
    p.connections = 4;
    p.duration = Some(Duration::from_millis(800));
    let r = loadgen::run(p, Control::new()).await.expect("run");
    let t = r.target("a").expect("a");
    let ok = t.status.get("2xx").copied().unwrap_or(0);
    assert!((290..=300).contains(&ok), "{ok} answered before the crash");
    // After the crash: resets of the open connections, then refused connects.
    assert!(t.errors.reset + t.errors.connect > 0, "{:?}", t.errors);
    assert_eq!(t.errors.other, 0, "{:?}", t.errors);
}
