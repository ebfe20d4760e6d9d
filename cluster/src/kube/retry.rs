//! Retries of the API server's transient answers, as a wrapper around the
//! whole [`kube::Client`]: every request of the Kubernetes mode (applies,
//! GETs of rollouts, deletes, lists) goes through it, so `run.rs` and
//! `clean.rs` need no change.
//!
//! Retried: HTTP 409 (Conflict: an object changed under us, or is still
//! being deleted), 429 (Too Many Requests: API priority and fairness) and
//! 5xx, and a request that never got an answer (connection refused or
//! reset while the API server restarts). Everything else (400, 403, 404,
//! 422, ...) is the caller's to handle, at once. The bound and backoff are
//! the Prometheus client's [`Retry`]; every retry is counted in a
//! [`RetryCount`]. Ctrl-C ([`with_retry_until`]'s channel) ends a wait
//! between retries at once: the request returns its last answer, and the
//! release goes on to its clean-up, whose own requests retry as usual.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use tokio::sync::watch;

use crate::prom::{Retry, RetryCount};

/// Whether a retry can cure an answer with this status.
pub fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// `client` with every request retried within `retry`; the count shows how
/// many retries were spent (clones of the client share it).
pub fn with_retry(client: kube::Client, retry: Retry) -> (kube::Client, RetryCount) {
    retrying(client, retry, None)
}

/// [`with_retry`], and `true` on `cancel` (Ctrl-C) ends a request's wait
/// between retries at once: it returns its last answer instead of waiting
/// out the backoff (up to `retry.max_backoff`). Requests begun after
/// `cancel` said `true` (the release's clean-up) retry as usual.
pub fn with_retry_until(
    client: kube::Client,
    retry: Retry,
    cancel: watch::Receiver<bool>,
) -> (kube::Client, RetryCount) {
    retrying(client, retry, Some(cancel))
}

fn retrying(
    client: kube::Client,
    retry: Retry,
    cancel: Option<watch::Receiver<bool>>,
) -> (kube::Client, RetryCount) {
    let count = RetryCount::default();
    let namespace = client.default_namespace().to_string();
    let service = RetryService {
        inner: client,
        retry,
        count: count.clone(),
        cancel,
    };
    (kube::Client::new(service, namespace), count)
}

/// The tower service behind [`with_retry`].
#[derive(Clone)]
struct RetryService {
    inner: kube::Client,
    retry: Retry,
    count: RetryCount,
    cancel: Option<watch::Receiver<bool>>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

impl tower::Service<Request<Body>> for RetryService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner client queues requests itself (a tower Buffer).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(request).await })
    }
}

impl RetryService {
    async fn send(self, request: Request<Body>) -> Result<Response<Body>, kube::Error> {
        let (parts, body) = request.into_parts();
        // A streamed body cannot be sent twice; kube's own bodies are bytes.
        let Some(body) = body.try_clone() else {
            return self.inner.send(Request::from_parts(parts, body)).await;
        };
        // Armed only if Ctrl-C has not come yet (a clean-up retries as usual).
        let mut shutdown = std::pin::pin!(crate::cancel::armed(self.cancel.as_ref()));
        let mut n = 0;
        loop {
            let attempt =
                Request::from_parts(parts.clone(), body.try_clone().unwrap_or_else(Body::empty));
            let result = self.inner.send(attempt).await;
            let transient = match &result {
                Ok(response) => is_transient(response.status()),
                Err(kube::Error::HyperError(_)) => true,
                Err(_) => false,
            };
            if !transient || n >= self.retry.retries {
                return result;
            }
            tokio::select! {
                () = tokio::time::sleep(self.retry.delay(n)) => {}
                () = &mut shutdown => return result,
            }
            self.count.add();
            n += 1;
        }
    }
}

impl std::fmt::Debug for RetryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryService")
            .field("retry", &self.retry)
            .field("count", &self.count)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Api;

    use super::*;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    const QUICK: Retry = Retry {
        retries: 3,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    };

    fn client() -> (kube::Client, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (kube::Client::new(service, "default"), handle)
    }

    fn reply(code: u16) -> Response<Body> {
        let body = if code == 200 {
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
        } else {
            serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "code": code, "reason": "x", "message": format!("answer {code}")})
        };
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("response")
    }

    /// Answers the requests with `codes` in order; returns how many came.
    async fn serve(mut handle: Handle, codes: Vec<u16>) -> usize {
        let mut n = 0;
        for code in codes {
            let Some((request, send)) = handle.next_request().await else {
                break;
            };
            assert_eq!(request.uri().path(), "/api/v1/namespaces/ns/configmaps/x");
            send.send_response(reply(code));
            n += 1;
        }
        n
    }

    async fn get(codes: Vec<u16>) -> (Result<ConfigMap, kube::Error>, u64, usize) {
        let (inner, handle) = client();
        let (client, count) = with_retry(inner, QUICK);
        let server = tokio::spawn(serve(handle, codes));
        let got = Api::<ConfigMap>::namespaced(client, "ns").get("x").await;
        let served = server.await.expect("server task");
        (got, count.get(), served)
    }

    #[tokio::test]
    async fn transient_answers_are_retried_and_counted() {
        let (got, retries, served) = get(vec![503, 429, 409, 200]).await;
        assert_eq!(
            got.expect("the fourth answer is the object")
                .metadata
                .name
                .as_deref(),
            Some("x")
        );
        assert_eq!((retries, served), (3, 4));
    }

    #[tokio::test]
    async fn other_errors_are_returned_at_once() {
        let (got, retries, served) = get(vec![404, 200]).await;
        let err = got.expect_err("not found");
        assert!(err.to_string().contains("answer 404"), "{err}");
        assert_eq!(retries, 0);
        // The server task waits for a second request that never comes: it
        // ends when the client (and with it the mock) is dropped.
        assert_eq!(served, 1);
    }

    #[tokio::test]
    async fn a_spent_bound_returns_the_last_answer() {
        let (got, retries, served) = get(vec![500, 500, 500, 500, 200]).await;
        let err = got.expect_err("still failing");
        assert!(err.to_string().contains("answer 500"), "{err}");
        assert_eq!((retries, served), (3, 4));
    }

    #[tokio::test]
    async fn ctrl_c_ends_a_retry_wait_at_once() {
        // An hour between tries: only the cancel channel can end the wait.
        let hour = Retry {
            retries: 3,
            backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
        };
        let (flag, cancel) = watch::channel(false);
        let (inner, mut handle) = client();
        let (client, count) = with_retry_until(inner, hour, cancel.clone());
        let server = tokio::spawn(async move {
            let (_, send) = handle.next_request().await.expect("a request");
            send.send_response(reply(503));
            // Ctrl-C while the client waits to retry.
            flag.send_replace(true);
            (handle, flag)
        });
        // The guard only keeps a broken build from hanging for an hour: an
        // answer at all means the wait was cut short.
        let got = tokio::time::timeout(
            Duration::from_secs(600),
            Api::<ConfigMap>::namespaced(client.clone(), "ns").get("x"),
        )
        .await
        .expect("the wait ended with the cancel channel, not after its hour");
        let err = got.expect_err("the last answer: 503");
        assert!(err.to_string().contains("answer 503"), "{err}");
        assert_eq!(count.get(), 0);
        // Begun after Ctrl-C (a clean-up): retried as usual.
        drop(server.await.expect("server task"));
        drop(client);
        let (inner, handle) = self::client();
        let (client, count) = with_retry_until(inner, QUICK, cancel);
        let server = tokio::spawn(serve(handle, vec![503, 200]));
        let got = Api::<ConfigMap>::namespaced(client, "ns").get("x").await;
        assert!(got.is_ok(), "{got:?}");
        assert_eq!((count.get(), server.await.expect("server task")), (1, 2));
    }

    #[test]
    fn which_statuses_are_transient() {
        for code in [409, 429, 500, 502, 503, 504] {
            assert!(
                is_transient(StatusCode::from_u16(code).expect("code")),
                "{code}"
            );
        }
        for code in [200, 400, 401, 403, 404, 410, 422] {
            assert!(
                !is_transient(StatusCode::from_u16(code).expect("code")),
                "{code}"
            );
        }
    }
}
