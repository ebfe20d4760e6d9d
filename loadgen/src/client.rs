//! One HTTP/1.1 keep-alive connection per target and worker, and one GET on it.
//!
//! This is loadgen's own minimal HTTP/1.1 client, because client CPU per
//! request is what loadgen is judged on (no more than wrk's). hyper's client
//! spends most of a request in its request/response channels, header maps and
//! wakers; here a request is one `write` of bytes serialized once per target,
//! and the response is parsed in place (httparse for the head, a length or
//! chunked decoder for the body, which is discarded without being copied)
//! in a buffer the connection keeps. No task, channel or allocation per
//! request.
//!
//! What it does: GET, keep-alive (closing on `Connection: close`, HTTP/1.0
//! without keep-alive, close-delimited bodies or unsolicited bytes),
//! `Content-Length`, `chunked` (with trailers), bodies delimited by the close,
//! no-body statuses (204, 304) and skipped 1xx responses, one response header
//! captured for gateway mode. What it is not: a general HTTP client (no
//! methods other than GET, no request bodies, no pipelining, no redirects, no
//! TLS, no HTTP/2). Timeouts are the caller's: it drops the future.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};

use hyper::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::{Answer, ErrorKind};

/// The most response headers accepted (hyper's default too).
const MAX_HEADERS: usize = 100;
/// The largest response head accepted (status line and headers), in bytes.
const MAX_HEAD: usize = 256 * 1024;
/// Initial read buffer per connection; a typical response fits many times.
const BUF_START: usize = 8 * 1024;
/// The longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

/// A resolved endpoint, ready for requests.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub addr: SocketAddr,
    /// The whole request, serialized once.
    pub request: Box<[u8]>,
}

impl Route {
    /// `path` is the origin-form target (path and query), `host` the `Host`
    /// header's value; both were validated when the URL was parsed.
    pub(crate) fn new(addr: SocketAddr, path: &str, host: &str) -> Route {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        Route {
            addr,
            request: request.into_bytes().into_boxed_slice(),
        }
    }
}

/// One open keep-alive connection and its read buffer.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Buf,
}

impl Conn {
    /// Whether an idle connection can take the next request: not closed by
    /// the server and without unsolicited bytes waiting. Costs no system call
    /// unless the socket has signalled readability since the last response.
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }
}

/// Sends one GET on `slot` (connecting first if needed) and reads the whole
/// response. On any error, or when the response ends the connection, the slot
/// is emptied so the next request reconnects. The caller bounds it with a
/// timeout (and empties the slot if it fires).
pub(crate) async fn request(
    slot: &mut Option<Conn>,
    route: &Route,
    version_header: Option<&HeaderName>,
) -> Result<Answer, ErrorKind> {
    if slot.as_mut().is_some_and(|c| !c.reusable()) {
        *slot = None;
    }
    let c = match slot {
        Some(c) => c,
        None => slot.insert(connect(route.addr).await?),
    };
    let result = async {
        c.stream
            .write_all(&route.request)
            .await
            .map_err(|e| io_kind(&e))?;
        read_response(&mut c.stream, &mut c.buf, version_header).await
    }
    .await;
    match result {
        Ok((answer, true)) => Ok(answer),
        Ok((answer, false)) => {
            *slot = None;
            Ok(answer)
        }
        Err(kind) => {
            *slot = None;
            Err(kind)
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<Conn, ErrorKind> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are small and latency is what we measure.
    let _ = stream.set_nodelay(true);
    Ok(Conn {
        stream,
        buf: Buf::new(),
    })
}

/// How an I/O error is counted.
fn io_kind(e: &io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Other,
    }
}

/// A read buffer: bytes `start..end` of `data` are received and not yet used.
#[derive(Debug)]
struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: vec![0; BUF_START],
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes after the pending ones, keeping them. `limit` bounds
    /// how many pending bytes may accumulate (a head or a line that never
    /// ends is an error, not unbounded memory). EOF is a reset: the server
    /// closed the connection before the response was complete.
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        limit: usize,
    ) -> Result<(), ErrorKind> {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.data.len() < limit {
                let len = (self.data.len() * 2).min(limit);
                self.data.resize(len, 0);
            } else {
                return Err(ErrorKind::Other);
            }
        }
        match r.read(&mut self.data[self.end..]).await {
            Ok(0) => Err(ErrorKind::Reset),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => Err(io_kind(&e)),
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// What the head of a response says.
#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    body: Body,
    keep_alive: bool,
    version: Option<HeaderValue>,
}

/// Parses a response head at the start of `buf`; `None` if incomplete.
fn parse_head(buf: &[u8], version_header: Option<&HeaderName>) -> Result<Option<Head>, ErrorKind> {
    // Uninitialized header slots: initializing 100 of them per response
    // showed in profiles; httparse writes the ones it uses.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::Other),
    };
    let status = resp.code.ok_or(ErrorKind::Other)?;
    let http10 = resp.version == Some(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut version = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ErrorKind::Other)?;
            // Several Content-Length headers must agree (RFC 9110 8.6).
            if length.is_some_and(|l| l != v) {
                return Err(ErrorKind::Other);
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Chunked counts only as the final coding (RFC 9112 6.3).
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        if let Some(name) = version_header
            && version.is_none()
            && h.name.eq_ignore_ascii_case(name.as_str())
        {
            version = HeaderValue::from_bytes(h.value).ok();
        }
    }
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        Body::Length(0)
    } else if transfer_encoding {
        if chunked { Body::Chunked } else { Body::Close }
    } else {
        match length {
            Some(n) => Body::Length(n),
            None => Body::Close,
        }
    };
    let keep_alive = !close && (!http10 || keep_alive_token) && body != Body::Close;
    Ok(Some(Head {
        len,
        status,
        body,
        keep_alive,
        version,
    }))
}

/// Reads one response (skipping 1xx interim responses) and its body from
/// `r`; returns what loadgen keeps and whether the connection stays usable.
async fn read_response<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Buf,
    version_header: Option<&HeaderName>,
) -> Result<(Answer, bool), ErrorKind> {
    let head = loop {
        match parse_head(buf.pending(), version_header)? {
            Some(head) => {
                buf.consume(head.len);
                if head.status == 101 {
                    // A protocol switch nobody asked for: the connection is no longer HTTP.
                    return Err(ErrorKind::Other);
                }
                if (100..200).contains(&head.status) {
                    continue;
                }
                break head;
            }
            None => buf.fill(r, MAX_HEAD).await?,
        }
    };
    match head.body {
        Body::Length(n) => skip(r, buf, n).await?,
        Body::Chunked => {
            loop {
                let size = loop {
                    match httparse::parse_chunk_size(buf.pending()) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.consume(used);
                            break size;
                        }
                        Ok(httparse::Status::Partial) => buf.fill(r, MAX_LINE).await?,
                        Err(_) => return Err(ErrorKind::Other),
                    }
                };
                if size == 0 {
                    break;
                }
                skip(r, buf, size).await?;
                while buf.pending().len() < 2 {
                    buf.fill(r, MAX_LINE).await?;
                }
                if buf.pending()[..2] != *b"\r\n" {
                    return Err(ErrorKind::Other);
                }
                buf.consume(2);
            }
            // Trailer fields, then the empty line that ends the message.
            loop {
                match buf.pending().iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let empty = i == 0 || (i == 1 && buf.pending()[0] == b'\r');
                        buf.consume(i + 1);
                        if empty {
                            break;
                        }
                    }
                    None => buf.fill(r, MAX_LINE).await?,
                }
            }
        }
        Body::Close => loop {
            buf.consume(buf.pending().len());
            match buf.fill(r, BUF_START).await {
                Ok(()) => {}
                Err(ErrorKind::Reset) => break,
                Err(e) => return Err(e),
            }
        },
    }
    // Bytes after the response were never asked for: don't reuse the connection.
    let keep_alive = head.keep_alive && buf.pending().is_empty();
    let answer = Answer {
        status: head.status,
        version: head.version,
    };
    Ok((answer, keep_alive))
}

/// Reads and discards `n` body bytes.
async fn skip<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Buf, mut n: u64) -> Result<(), ErrorKind> {
    loop {
        let have = buf.pending().len();
        let take = usize::try_from(n).map_or(have, |n| n.min(have));
        buf.consume(take);
        n -= take as u64;
        if n == 0 {
            return Ok(());
        }
        buf.fill(r, BUF_START).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use tokio::io::ReadBuf;

    use super::*;

    /// Serves `data` in pieces of at most `step` bytes, then EOF.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self
                .step
                .min(self.data.len() - self.at)
                .min(out.remaining());
            let at = self.at;
            out.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// One response read: status, keep-alive, version header; or the error.
    type Read = Result<(u16, bool, Option<String>), ErrorKind>;

    /// Reads responses from `data` split every `step` bytes until EOF.
    fn read_all(data: &[u8], step: usize, header: Option<&str>) -> Vec<Read> {
        let name = header.map(|h| HeaderName::from_bytes(h.as_bytes()).expect("header name"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut r = Trickle {
                data: data.to_vec(),
                at: 0,
                step,
            };
            let mut buf = Buf::new();
            let mut out = Vec::new();
            loop {
                let res = read_response(&mut r, &mut buf, name.as_ref()).await;
                let stop = !matches!(res, Ok((_, true)));
                out.push(res.map(|(a, k)| {
                    (
                        a.status,
                        k,
                        a.version.map(|v| v.to_str().expect("ascii").to_string()),
                    )
                }));
                if stop || (r.at == r.data.len() && buf.pending().is_empty()) {
                    return out;
                }
            }
        })
    }

    fn every_split(data: &[u8], header: Option<&str>) -> Vec<Read> {
        let whole = read_all(data, usize::MAX, header);
        for step in [1, 2, 3, 7, 64] {
            assert_eq!(
                read_all(data, step, header),
                whole,
                "split every {step} bytes"
            );
        }
        whole
    }

    #[test]
    fn route_serializes_the_request_once() {
        let r = Route::new(
            "127.0.0.1:80".parse().expect("addr"),
            "/a?b=1",
            "example:80",
        );
        assert_eq!(
            &*r.request,
            b"GET /a?b=1 HTTP/1.1\r\nHost: example:80\r\n\r\n"
        );
    }

    #[test]
    fn content_length_keep_alive_responses_in_a_row() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\nHTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n";
        // Two responses in one read are unsolicited bytes for the first: it closes.
        assert_eq!(
            read_all(data, usize::MAX, None),
            vec![Ok((200, false, None))]
        );
        let first = &data[..41];
        assert_eq!(every_split(first, None), vec![Ok((200, true, None))]);
        assert_eq!(every_split(&data[41..], None), vec![Ok((503, true, None))]);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;x=y\r\nRust\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(every_split(data, None), vec![Ok((200, true, None))]);
        let bare = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(every_split(bare, None), vec![Ok((201, true, None))]);
    }

    #[test]
    fn a_large_body_is_skipped_through_a_small_buffer() {
        let body = vec![b'x'; 5 * BUF_START + 17];
        let mut data =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        data.extend_from_slice(&body);
        assert_eq!(every_split(&data, None), vec![Ok((200, true, None))]);
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(every_split(&chunked, None), vec![Ok((200, true, None))]);
    }

    #[test]
    fn connection_close_http10_and_close_delimited_bodies_end_the_connection() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(every_split(close, None), vec![Ok((200, false, None))]);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(every_split(old, None), vec![Ok((200, false, None))]);
        let old_ka = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(every_split(old_ka, None), vec![Ok((200, true, None))]);
        let to_eof = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        assert_eq!(every_split(to_eof, None), vec![Ok((200, false, None))]);
    }

    #[test]
    fn no_body_statuses_and_interim_responses() {
        let data =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(every_split(data, None), vec![Ok((204, true, None))]);
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(every_split(not_modified, None), vec![Ok((304, true, None))]);
        let switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n";
        assert_eq!(every_split(switch, None), vec![Err(ErrorKind::Other)]);
    }

    #[test]
    fn the_version_header_is_captured_case_insensitively() {
        let data = b"HTTP/1.1 200 OK\r\nX-Version: canary\r\nx-version: second\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            every_split(data, Some("x-version")),
            vec![Ok((200, true, Some("canary".into())))]
        );
        assert_eq!(every_split(data, None), vec![Ok((200, true, None))]);
    }

    #[test]
    fn truncated_responses_are_resets() {
        for data in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n",
        ] {
            assert_eq!(
                every_split(data, None),
                vec![Err(ErrorKind::Reset)],
                "{data:?}"
            );
        }
    }

    #[test]
    fn invalid_responses_are_other_errors() {
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let too_many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        for data in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
            too_many.as_bytes(),
            huge.as_bytes(),
        ] {
            assert_eq!(
                read_all(data, 4096, None),
                vec![Err(ErrorKind::Other)],
                "{}",
                String::from_utf8_lossy(&data[..data.len().min(80)])
            );
        }
    }
}
