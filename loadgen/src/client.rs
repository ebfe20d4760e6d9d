//! One HTTP/1.1 connection slot per target, and one request on it.
//!
//! Each worker task owns its connections and polls hyper's connection future
//! in the same task as the request (instead of spawning it), so a request
//! costs no cross-task wake-ups; that keeps client CPU per request at or
//! below wrk's. Not a general HTTP client: GET, no redirects, no TLS.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::{Answer, ErrorKind};

/// A resolved endpoint, ready for requests.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub addr: SocketAddr,
    pub uri: Uri,
    pub host: HeaderValue,
}

type Connection = http1::Connection<TokioIo<TcpStream>, Empty<Bytes>>;

#[derive(Debug)]
pub(crate) struct Conn {
    sender: http1::SendRequest<Empty<Bytes>>,
    conn: Pin<Box<Connection>>,
}

/// Sends one GET on `slot` (connecting first if needed) and drains the
/// response body. On any error the slot is emptied so the next request
/// reconnects. The caller bounds it with a timeout.
pub(crate) async fn request(
    slot: &mut Option<Conn>,
    route: &Route,
    version_header: Option<&HeaderName>,
) -> Result<Answer, ErrorKind> {
    let result = attempt(slot, route, version_header).await;
    if result.is_err() {
        *slot = None;
    }
    result
}

async fn attempt(
    slot: &mut Option<Conn>,
    route: &Route,
    version_header: Option<&HeaderName>,
) -> Result<Answer, ErrorKind> {
    if let Some(c) = slot.as_mut() {
        // An idle connection is not polled between requests; poll it once so
        // a close by the server is seen now, not as a failed request.
        let ended =
            std::future::poll_fn(|cx| Poll::Ready(c.conn.as_mut().poll(cx).is_ready())).await;
        if ended || c.sender.is_closed() {
            *slot = None;
        }
    }
    let c = match slot {
        Some(c) => c,
        None => slot.insert(connect(route.addr).await?),
    };
    let mut req = Request::new(Empty::<Bytes>::new());
    *req.uri_mut() = route.uri.clone();
    req.headers_mut().insert(HOST, route.host.clone());

    let sender = &mut c.sender;
    let exchange = async move {
        sender.ready().await.map_err(classify)?;
        let resp = sender.send_request(req).await.map_err(classify)?;
        let status = resp.status().as_u16();
        let version = version_header.and_then(|h| resp.headers().get(h).cloned());
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(classify)?;
        }
        Ok(Answer { status, version })
    };
    let (result, ended) = {
        let mut exchange = std::pin::pin!(exchange);
        let conn = &mut c.conn;
        // Poll the exchange and the connection in turns until neither moves:
        // when the connection has just read the response, the exchange sees it
        // in this same poll instead of after a trip through the run queue.
        let first = std::future::poll_fn(|cx| {
            for _ in 0..3 {
                if let Poll::Ready(r) = exchange.as_mut().poll(cx) {
                    return Poll::Ready(Ok(r));
                }
                if let Poll::Ready(done) = conn.as_mut().poll(cx) {
                    return Poll::Ready(Err(done));
                }
            }
            Poll::Pending
        })
        .await;
        match first {
            Ok(r) => (r, false),
            Err(done) => {
                // The connection ended (e.g. the server sent `Connection: close`);
                // the exchange either already has its answer or fails now.
                match (exchange.await, done) {
                    (Ok(a), _) => (Ok(a), true),
                    (Err(_), Err(e)) => (Err(classify(e)), true),
                    (Err(k), Ok(())) => (Err(k), true),
                }
            }
        }
    };
    if ended {
        *slot = None;
    }
    result
}

async fn connect(addr: SocketAddr) -> Result<Conn, ErrorKind> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are small and latency is what we measure.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Connect)?;
    Ok(Conn {
        sender,
        conn: Box::pin(conn),
    })
}

fn classify(e: hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return ErrorKind::Reset;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return match io.kind() {
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                    ErrorKind::Reset
                }
                K::TimedOut => ErrorKind::Timeout,
                _ => ErrorKind::Other,
            };
        }
        source = s.source();
    }
    ErrorKind::Other
}
