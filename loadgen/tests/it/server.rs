//! Small in-process HTTP servers on 127.0.0.1:0 with scripted behaviour.
//! Each test owns its servers; dropping one aborts it (listener and
//! connections), so nothing outlives the test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with `x-version: NAME`.
    Ok(&'static str),
    /// Sleeps, then 200.
    Sleep(Duration),
    /// Never answers.
    Hang,
    /// Answers this many requests, then closes the listener and every connection.
    CrashAfter(u64),
    /// Alternates `x-version: v1` / `v2`, like a gateway splitting 50/50.
    Alternate,
}

#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(behavior: Behavior) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(AtomicU64::new(0));
        let crash = Arc::new(Notify::new());
        let task = tokio::spawn(serve(listener, behavior, hits.clone(), crash));
        TestServer { addr, hits, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    behavior: Behavior,
    hits: Arc<AtomicU64>,
    crash: Arc<Notify>,
) {
    // Dropping this set (when serve returns or is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crash.notified() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let behavior = behavior.clone();
        let hits = hits.clone();
        let crash = crash.clone();
        conns.spawn(async move {
            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let behavior = behavior.clone();
                let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                let crash = crash.clone();
                async move {
                    let version = match behavior {
                        Behavior::Ok(v) => v,
                        Behavior::Sleep(d) => {
                            tokio::time::sleep(d).await;
                            "sleepy"
                        }
                        Behavior::Hang => std::future::pending().await,
                        Behavior::CrashAfter(limit) => {
                            if n >= limit {
                                crash.notify_one();
                                std::future::pending::<()>().await;
                            }
                            "crashy"
                        }
                        Behavior::Alternate => {
                            if n & 1 == 0 {
                                "v2"
                            } else {
                                "v1"
                            }
                        }
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("x-version", version)
                            .body(Full::new(Bytes::from_static(b"ok\n")))
                            .expect("response"),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
