//! kube-rs's mock pattern: a `tower_test` service pair as the client's
//! transport, and a verifier task playing the API server. It checks each
//! request against a script (method, path, query, body kind) in order and
//! answers as the API server would: applies echo the object back with
//! `metadata.generation`, GETs of a Deployment add a status, deletes answer
//! with the deleted object, errors with a `Status`.

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use release::OperatorInput;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Apply: the object back, with generation 1 (or one more than the
    /// last apply of that name).
    Applied,
    /// GET Deployment: the last applied object with a complete rollout.
    RolledOut,
    /// GET Deployment: the last applied object, pods not yet available.
    Progressing,
    /// DELETE: the object, being deleted.
    Deleted,
    /// An error `Status` with this code.
    Fail(u16),
    /// A list with objects of these names.
    List(Vec<&'static str>),
    /// A list of pods: name, container restarts, and why the container
    /// waits (`CrashLoopBackOff`), if it does.
    Pods(Vec<(&'static str, i32, Option<&'static str>)>),
}

/// One expected request.
#[derive(Debug, Clone)]
pub struct Expect {
    pub method: Method,
    pub path: String,
    /// Every one of these must be in the query string.
    pub query: Vec<&'static str>,
    /// The `kind` of the JSON body (applies).
    pub kind: Option<&'static str>,
    pub reply: Reply,
    /// Set this flag as the request is answered (Ctrl-C at that point).
    pub then_cancel: Option<Arc<watch::Sender<bool>>>,
    /// Send this operator input as the request is answered.
    pub then_operator: Option<(UnboundedSender<OperatorInput>, OperatorInput)>,
}

pub const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/shop/deployments";
pub const SERVICES: &str = "/api/v1/namespaces/shop/services";
pub const JOBS: &str = "/apis/batch/v1/namespaces/shop/jobs";
pub const CONFIGMAPS: &str = "/api/v1/namespaces/shop/configmaps";
pub const PODS: &str = "/api/v1/namespaces/shop/pods";
pub const DESTINATION_RULES: &str = "/apis/networking.istio.io/v1/namespaces/shop/destinationrules";
pub const VIRTUAL_SERVICES: &str = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices";

fn expect(method: Method, path: String, reply: Reply) -> Expect {
    Expect {
        method,
        path,
        query: Vec::new(),
        kind: None,
        reply,
        then_cancel: None,
        then_operator: None,
    }
}

/// A server-side apply of `kind` `name` under `collection`.
pub fn apply(collection: &str, name: &str, kind: &'static str) -> Expect {
    Expect {
        query: vec!["fieldManager=canarylab", "force=true"],
        kind: Some(kind),
        ..expect(
            Method::PATCH,
            format!("{collection}/{name}"),
            Reply::Applied,
        )
    }
}

pub fn get(collection: &str, name: &str, reply: Reply) -> Expect {
    expect(Method::GET, format!("{collection}/{name}"), reply)
}

pub fn delete(collection: &str, name: &str) -> Expect {
    expect(
        Method::DELETE,
        format!("{collection}/{name}"),
        Reply::Deleted,
    )
}

pub fn list(collection: &str, names: Vec<&'static str>) -> Expect {
    Expect {
        query: vec!["labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcanarylab"],
        ..expect(Method::GET, collection.to_string(), Reply::List(names))
    }
}

/// A list of the pods of `track`'s Deployment (its selector).
pub fn pods(track: &'static str, pods: Vec<(&'static str, i32, Option<&'static str>)>) -> Expect {
    let selector = match track {
        "canary" => "labelSelector=app%3Dgoldengoose%2Ctrack%3Dcanary",
        "baseline" => "labelSelector=app%3Dgoldengoose%2Ctrack%3Dbaseline",
        other => panic!("no pods of {other} are listed"),
    };
    Expect {
        query: vec![selector],
        ..expect(Method::GET, PODS.to_string(), Reply::Pods(pods))
    }
}

impl Expect {
    pub fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }
    pub fn then_cancel(mut self, flag: &Arc<watch::Sender<bool>>) -> Self {
        self.then_cancel = Some(flag.clone());
        self
    }
    pub fn then_operator(
        mut self,
        to: &UnboundedSender<OperatorInput>,
        input: OperatorInput,
    ) -> Self {
        self.then_operator = Some((to.clone(), input));
        self
    }
}

/// What the server saw, for assertions beyond the script.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

/// A client whose requests go to a verifier running `script`; the join
/// handle yields every request seen, and fails if a request differs from
/// the script or if any expected request did not come.
pub fn server(script: Vec<Expect>) -> (Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let task = tokio::spawn(verify(handle, script));
    (client, task)
}

async fn verify(mut handle: Handle, script: Vec<Expect>) -> Vec<Seen> {
    let mut store: HashMap<String, Value> = HashMap::new();
    let mut seen = Vec::new();
    let total = script.len();
    for (i, step) in script.into_iter().enumerate() {
        let Some((request, send)) = handle.next_request().await else {
            panic!(
                "request {i} of {total} never came: expected {} {} (saw: {})",
                step.method,
                step.path,
                summary(&seen)
            );
        };
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let s = Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: body.clone(),
        };
        seen.push(s.clone());
        assert_eq!(
            (&s.method, s.path.as_str()),
            (&step.method, step.path.as_str()),
            "request {i}: got {} {}?{}; so far: {}",
            s.method,
            s.path,
            s.query,
            summary(&seen)
        );
        for q in &step.query {
            assert!(
                s.query.split('&').any(|part| part == *q),
                "request {i} {} {}: query {:?} lacks {q}",
                s.method,
                s.path,
                s.query
            );
        }
        if let Some(kind) = step.kind {
            assert_eq!(body["kind"], kind, "request {i}: body kind");
            assert_eq!(
                s.content_type, "application/apply-patch+yaml",
                "request {i}: server-side apply"
            );
        }
        let (status, reply) = answer(&step.reply, &s, &mut store);
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&reply).expect("json")))
            .expect("response");
        // Before the answer, so the client cannot go on without seeing it.
        if let Some(flag) = step.then_cancel {
            flag.send_replace(true);
        }
        if let Some((to, input)) = step.then_operator {
            to.send(input).expect("the release listens to the operator");
        }
        send.send_response(response);
    }
    // The client is dropped when the release returns: then no request
    // may be left.
    if let Some((request, _)) = handle.next_request().await {
        panic!(
            "unexpected request after the script: {} {}",
            request.method(),
            request.uri()
        );
    }
    seen
}

fn summary(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect::<Vec<_>>()
        .join(", ")
}

fn answer(reply: &Reply, s: &Seen, store: &mut HashMap<String, Value>) -> (StatusCode, Value) {
    let name = s.path.rsplit('/').next().unwrap_or_default().to_string();
    match reply {
        Reply::Applied => {
            let mut obj = s.body.clone();
            let generation = store
                .get(&s.path)
                .and_then(|o| o["metadata"]["generation"].as_i64())
                .unwrap_or(0)
                + 1;
            obj["metadata"]["generation"] = json!(generation);
            obj["metadata"]["uid"] = json!(format!("uid-{name}"));
            obj["metadata"]["resourceVersion"] = json!(format!("{}", 100 + generation));
            obj["metadata"]["creationTimestamp"] = json!("2026-12-02T05:00:00Z");
            store.insert(s.path.clone(), obj.clone());
            (StatusCode::OK, obj)
        }
        Reply::RolledOut | Reply::Progressing => {
            let mut obj = store
                .get(&s.path)
                .cloned()
                .unwrap_or_else(|| panic!("GET {} before it was applied", s.path));
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let generation = obj["metadata"]["generation"].clone();
            let available = if matches!(reply, Reply::RolledOut) {
                replicas
            } else {
                0
            };
            obj["status"] = json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": available,
                "availableReplicas": available,
            });
            (StatusCode::OK, obj)
        }
        Reply::Deleted => match store.remove(&s.path) {
            Some(mut obj) => {
                obj["metadata"]["deletionTimestamp"] = json!("2026-12-02T05:10:00Z");
                (StatusCode::OK, obj)
            }
            None => (
                StatusCode::NOT_FOUND,
                status(404, "NotFound", &format!("\"{name}\" not found")),
            ),
        },
        Reply::Fail(code) => (
            StatusCode::from_u16(*code).expect("status code"),
            status(*code, "InternalError", "injected failure"),
        ),
        Reply::Pods(pods) => {
            let items: Vec<Value> = pods
                .iter()
                .map(|(name, restarts, waiting)| {
                    let state = match waiting {
                        Some(reason) => json!({ "waiting": { "reason": reason } }),
                        None => json!({ "running": {} }),
                    };
                    json!({
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": { "name": name, "namespace": "shop" },
                        "status": {
                            "containerStatuses": [{
                                "name": "goldengoose",
                                "image": "goldengoose",
                                "imageID": "",
                                "ready": false,
                                "restartCount": restarts,
                                "state": state,
                                "lastState": if *restarts > 0 {
                                    json!({ "terminated": { "exitCode": 1, "reason": "Error" } })
                                } else {
                                    json!({})
                                },
                            }],
                        },
                    })
                })
                .collect();
            (
                StatusCode::OK,
                json!({
                    "apiVersion": "v1",
                    "kind": "PodList",
                    "metadata": { "resourceVersion": "300" },
                    "items": items,
                }),
            )
        }
        Reply::List(names) => {
            let kind = list_kind(&s.path);
            let items: Vec<Value> = names
                .iter()
                .map(|n| {
                    json!({
                        "apiVersion": kind.0,
                        "kind": kind.1,
                        "metadata": {
                            "name": n, "namespace": "shop",
                            "labels": { "app.kubernetes.io/managed-by": "canarylab" },
                        },
                    })
                })
                .collect();
            (
                StatusCode::OK,
                json!({
                    "apiVersion": kind.0,
                    "kind": format!("{}List", kind.1),
                    "metadata": { "resourceVersion": "200" },
                    "items": items,
                }),
            )
        }
    }
}

fn list_kind(path: &str) -> (&'static str, &'static str) {
    match path {
        DEPLOYMENTS => ("apps/v1", "Deployment"),
        SERVICES => ("v1", "Service"),
        JOBS => ("batch/v1", "Job"),
        CONFIGMAPS => ("v1", "ConfigMap"),
        DESTINATION_RULES => ("networking.istio.io/v1", "DestinationRule"),
        VIRTUAL_SERVICES => ("networking.istio.io/v1", "VirtualService"),
        other => panic!("list of unknown collection {other}"),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}
