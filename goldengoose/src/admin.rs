//! The admin API: `GET/PUT /admin/faults`, JSON, bearer-token protected.
//!
//! Disabled (404) unless a token is configured. A missing or malformed
//! `Authorization` header gets 401, a wrong token 403. `PUT` replaces the
//! whole fault set atomically; an invalid spec gets 400 and changes nothing.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::fault::{FAULT_SYNTAX, Fault};
use crate::server::{Body, Shared, text};

/// Path of the admin API's fault set (`GET` to read, `PUT` to replace).
pub const FAULTS_PATH: &str = "/admin/faults";

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Body of `PUT /admin/faults`: the full new fault set, as spec strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    /// The new faults, in the `--fault` syntax; empty clears them all.
    pub faults: Vec<String>,
}

/// Answer of `GET` and `PUT /admin/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultsStatus {
    /// This server's version label.
    pub version: String,
    /// The faults now in force.
    pub faults: Vec<Fault>,
    /// Seconds since this fault set was set (time-based faults count from then).
    pub set_seconds_ago: f64,
    /// Whether `/readyz` answers ready now.
    pub ready: bool,
    /// Bytes held by memory-leak faults so far (`goldengoose_heap_bytes`).
    pub leaked_bytes: u64,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

pub(crate) async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let Some(token) = shared.config.admin_token.as_deref() else {
        return text(
            StatusCode::NOT_FOUND,
            "admin API disabled: start with --admin-token-file or $GOLDENGOOSE_ADMIN_TOKEN\n",
        );
    };
    match bearer(&request) {
        None => {
            let mut response = json(
                StatusCode::UNAUTHORIZED,
                &ErrorBody {
                    error: "missing Authorization: Bearer TOKEN".to_string(),
                },
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        Some(given) if !constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            return json(
                StatusCode::FORBIDDEN,
                &ErrorBody {
                    error: "wrong admin token".to_string(),
                },
            );
        }
        Some(_) => {}
    }
    match *request.method() {
        Method::GET => json(StatusCode::OK, &status(shared)),
        Method::PUT => {
            let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return bad_request(format!(
                        "body unreadable or larger than {MAX_BODY_BYTES} bytes"
                    ));
                }
            };
            match parse_update(&body) {
                Ok(faults) => {
                    shared.set_faults(faults);
                    json(StatusCode::OK, &status(shared))
                }
                Err(reason) => bad_request(reason),
            }
        }
        _ => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET or PUT\n");
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static("GET, PUT"));
            response
        }
    }
}

/// All specs must parse, or nothing changes.
fn parse_update(body: &Bytes) -> Result<Vec<Fault>, String> {
    let update: FaultsUpdate = serde_json::from_slice(body)
        .map_err(|err| format!(r#"body must be {{"faults": ["KIND=VALUE", ...]}}: {err}"#))?;
    update
        .faults
        .iter()
        .map(|spec| spec.parse::<Fault>().map_err(|err| err.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| {
            if reason.contains(FAULT_SYNTAX) {
                reason
            } else {
                format!("{reason}; allowed: {FAULT_SYNTAX}")
            }
        })
}

fn status(shared: &Shared) -> FaultsStatus {
    let set = shared.faults();
    FaultsStatus {
        version: shared.config.version.clone(),
        faults: set.faults().to_vec(),
        set_seconds_ago: Instant::now()
            .saturating_duration_since(set.set_at())
            .as_secs_f64(),
        ready: shared.ready(),
        leaked_bytes: shared
            .metrics
            .heap_bytes()
            .load(std::sync::atomic::Ordering::Relaxed),
    }
}

fn bearer(request: &Request<Incoming>) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares without an early exit, so response time does not reveal how much
/// of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bad_request(reason: String) -> Response<Body> {
    json(StatusCode::BAD_REQUEST, &ErrorBody { error: reason })
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_is_all_or_nothing() {
        let ok = parse_update(&Bytes::from_static(
            br#"{"faults": ["latency=50ms", "errors=0.1:503"]}"#,
        ))
        .expect("valid update");
        assert_eq!(ok.len(), 2);
        let err = parse_update(&Bytes::from_static(
            br#"{"faults": ["latency=50ms", "errors=1.5"]}"#,
        ))
        .expect_err("rate above 1");
        assert!(
            err.contains("errors=1.5") && err.contains("allowed:"),
            "{err}"
        );
        assert!(parse_update(&Bytes::from_static(br#"{"fault": []}"#)).is_err());
        assert!(parse_update(&Bytes::from_static(b"not json")).is_err());
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
