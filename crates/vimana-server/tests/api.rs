//! Route, error, auth and serving tests against an in-memory fake core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, oneshot};
use tower::ServiceExt;
use vimana_api::{
    Action, ActionOutcome, ApiError, DesiredState, Event, EventKind, LogRecord, LogStream,
    Workload, WorkloadName, WorkloadSpec, WorkloadState,
};
use vimana_core::CoreApi;
use vimana_server::{NDJSON, PROBLEM_JSON, ServerError, SystemInfo, Verb};

// ---------------------------------------------------------------- fake core

struct FakeCore {
    workloads: Mutex<BTreeMap<WorkloadName, Workload>>,
    actions: Mutex<Vec<Action>>,
    stored_logs: Vec<LogRecord>,
    stored_events: Vec<Event>,
    logs_tx: broadcast::Sender<LogRecord>,
    events_tx: broadcast::Sender<Event>,
    /// Names `subscribe_logs` was called with.
    subscribed: Mutex<Vec<WorkloadName>>,
}

fn name(n: &str) -> WorkloadName {
    WorkloadName::new(n).unwrap()
}

fn log(msg: &str) -> LogRecord {
    LogRecord {
        time: "2025-01-01T00:00:00Z".into(),
        stream: LogStream::Stdout,
        level: None,
        message: msg.into(),
    }
}

fn event(seq: u64, workload: &str) -> Event {
    Event {
        seq,
        time: "2025-01-01T00:00:00Z".into(),
        workload: name(workload),
        kind: EventKind::StateChanged,
        state: Some(WorkloadState::Running),
        message: format!("event {seq}"),
    }
}

fn spec_json() -> Value {
    json!({"spec": {"kind": "spacecore", "plugin": "/usr/bin/plugin", "args": ["-v"]}})
}

fn workload(n: &str, spec: WorkloadSpec) -> Workload {
    Workload {
        name: name(n),
        kind: spec.kind(),
        state: WorkloadState::Running,
        desired: DesiredState::Running,
        pid: Some(42),
        restarts: 0,
        detail: String::new(),
        revision: 1,
        created_at: "2025-01-01T00:00:00Z".into(),
        updated_at: "2025-01-01T00:00:00Z".into(),
        spec,
    }
}

impl FakeCore {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            workloads: Mutex::new(BTreeMap::new()),
            actions: Mutex::new(Vec::new()),
            stored_logs: vec![log("one"), log("two"), log("three")],
            stored_events: vec![event(1, "node"), event(2, "other"), event(3, "node")],
            logs_tx: broadcast::channel(16).0,
            events_tx: broadcast::channel(16).0,
            subscribed: Mutex::default(),
        })
    }

    /// A core with one running workload named `node`.
    fn with_node() -> Arc<Self> {
        let core = Self::new();
        let spec: vimana_api::StartRequest = serde_json::from_value(spec_json()).unwrap();
        core.workloads
            .lock()
            .unwrap()
            .insert(name("node"), workload("node", spec.spec.unwrap()));
        core
    }

    fn actions(&self) -> Vec<Action> {
        self.actions.lock().unwrap().clone()
    }

    fn not_found(n: &WorkloadName) -> ApiError {
        ApiError::NotFound(n.to_string())
    }
}

#[async_trait]
impl CoreApi for FakeCore {
    async fn handle(&self, action: Action) -> Result<ActionOutcome, ApiError> {
        self.actions.lock().unwrap().push(action.clone());
        let mut workloads = self.workloads.lock().unwrap();
        match action {
            Action::Start { name, .. } if name.as_str() == "boom" => {
                panic!("the fake core panics on purpose")
            }
            Action::Start { name, spec } => {
                let w = match (workloads.get_mut(&name), spec) {
                    (Some(w), _) => {
                        w.state = WorkloadState::Running;
                        w.desired = DesiredState::Running;
                        w.clone()
                    }
                    (None, Some(spec)) => {
                        let w = workload(name.as_str(), spec);
                        workloads.insert(name, w.clone());
                        w
                    }
                    (None, None) => return Err(Self::not_found(&name)),
                };
                Ok(ActionOutcome::Workload(Box::new(w)))
            }
            Action::Stop { name } => {
                let w = workloads
                    .get_mut(&name)
                    .ok_or_else(|| Self::not_found(&name))?;
                w.state = WorkloadState::Stopped;
                w.desired = DesiredState::Stopped;
                w.pid = None;
                Ok(ActionOutcome::Workload(Box::new(w.clone())))
            }
            Action::Remove { name } => {
                workloads
                    .remove(&name)
                    .ok_or_else(|| Self::not_found(&name))?;
                Ok(ActionOutcome::Removed)
            }
            Action::Get { name } => workloads
                .get(&name)
                .map(|w| ActionOutcome::Workload(Box::new(w.clone())))
                .ok_or_else(|| Self::not_found(&name)),
            Action::List => Ok(ActionOutcome::Workloads(
                workloads.values().cloned().collect(),
            )),
            Action::Logs { name, tail } => {
                if !workloads.contains_key(&name) {
                    return Err(Self::not_found(&name));
                }
                let all = &self.stored_logs;
                let skip = tail.map_or(0, |t| all.len().saturating_sub(t));
                Ok(ActionOutcome::Logs(all[skip..].to_vec()))
            }
            Action::Events { since, workload } => Ok(ActionOutcome::Events(
                self.stored_events
                    .iter()
                    .filter(|e| since.is_none_or(|s| e.seq > s))
                    .filter(|e| workload.as_ref().is_none_or(|w| *w == e.workload))
                    .cloned()
                    .collect(),
            )),
            // Resource routes are covered by tests/resources.rs.
            Action::ApplyResources { .. }
            | Action::GetResources { .. }
            | Action::DeleteResources { .. } => Ok(ActionOutcome::Resources(Vec::new())),
        }
    }

    fn subscribe_logs(
        &self,
        name: &WorkloadName,
    ) -> Result<broadcast::Receiver<LogRecord>, ApiError> {
        self.subscribed.lock().unwrap().push(name.clone());
        if self.workloads.lock().unwrap().contains_key(name) {
            Ok(self.logs_tx.subscribe())
        } else {
            Err(Self::not_found(name))
        }
    }

    fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events_tx.subscribe()
    }
}

// ---------------------------------------------------------------- helpers

fn app(core: &Arc<FakeCore>) -> Router {
    vimana_server::router(core.clone(), None)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with `status` and returns it.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), PROBLEM_JSON);
        let p = self.json();
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:vimana:problem:")
        );
        assert!(!p["title"].as_str().unwrap().is_empty());
        assert_eq!(p["status"], status);
        assert!(!p["detail"].as_str().unwrap().is_empty());
        p
    }

    fn ndjson<T: serde::de::DeserializeOwned>(&self) -> Vec<T> {
        assert_eq!(self.content_type(), NDJSON);
        String::from_utf8(self.body.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn send(app: Router, req: Request<Body>) -> Reply {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn req(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

fn json_req(method: Method, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

// ---------------------------------------------------------------- workloads

#[tokio::test]
async fn list_workloads() {
    let core = FakeCore::new();
    let r = send(app(&core), req(Method::GET, "/v1/workloads")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!([]));

    let core = FakeCore::with_node();
    let r = send(app(&core), req(Method::GET, "/v1/workloads")).await;
    let list: Vec<Workload> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name.as_str(), "node");
    assert_eq!(core.actions(), vec![Action::List]);
}

#[tokio::test]
async fn get_workload() {
    let core = FakeCore::with_node();
    let r = send(app(&core), req(Method::GET, "/v1/workloads/node")).await;
    assert_eq!(r.status, StatusCode::OK);
    let w: Workload = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(w.name.as_str(), "node");

    let r = send(app(&core), req(Method::GET, "/v1/workloads/missing")).await;
    let p = r.problem(404);
    assert_eq!(p["type"], "urn:vimana:problem:not-found");
}

#[tokio::test]
async fn put_registers_and_starts_idempotently() {
    let core = FakeCore::new();
    let body = spec_json().to_string();
    let r = send(
        app(&core),
        json_req(Method::PUT, "/v1/workloads/node", body.clone()),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let w: Workload = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(w.state, WorkloadState::Running);
    let expected_spec: vimana_api::StartRequest = serde_json::from_value(spec_json()).unwrap();
    assert_eq!(
        core.actions(),
        vec![Action::Start {
            name: name("node"),
            spec: expected_spec.spec.clone()
        }]
    );

    // Again: same answer.
    let again = send(
        app(&core),
        json_req(Method::PUT, "/v1/workloads/node", body),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), r.json());

    // No body at all: start the existing workload again.
    let r = send(app(&core), req(Method::PUT, "/v1/workloads/node")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        core.actions().last(),
        Some(&Action::Start {
            name: name("node"),
            spec: None
        })
    );
    // `{}` is the same.
    let r = send(
        app(&core),
        json_req(Method::PUT, "/v1/workloads/node", "{}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // No body for an unknown workload: the core's 404.
    let r = send(app(&core), req(Method::PUT, "/v1/workloads/ghost")).await;
    r.problem(404);
}

#[tokio::test]
async fn stop_and_delete() {
    let core = FakeCore::with_node();
    let r = send(app(&core), req(Method::POST, "/v1/workloads/node/stop")).await;
    assert_eq!(r.status, StatusCode::OK);
    let w: Workload = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(w.state, WorkloadState::Stopped);

    let r = send(app(&core), req(Method::DELETE, "/v1/workloads/node")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());

    let r = send(app(&core), req(Method::DELETE, "/v1/workloads/node")).await;
    r.problem(404);
    let r = send(app(&core), req(Method::POST, "/v1/workloads/node/stop")).await;
    r.problem(404);
    assert_eq!(
        core.actions(),
        vec![
            Action::Stop { name: name("node") },
            Action::Remove { name: name("node") },
            Action::Remove { name: name("node") },
            Action::Stop { name: name("node") },
        ]
    );
}

#[tokio::test]
async fn invalid_names_are_400_and_never_reach_the_core() {
    let core = FakeCore::with_node();
    for (method, uri) in [
        (Method::GET, "/v1/workloads/Node"),
        (Method::PUT, "/v1/workloads/a_b"),
        (Method::DELETE, "/v1/workloads/9lives"),
        (Method::POST, "/v1/workloads/a%2Fb/stop"),
        (Method::GET, "/v1/workloads/%C3%A9/logs"),
    ] {
        let r = send(app(&core), req(method, uri)).await;
        let p = r.problem(400);
        assert_eq!(p["type"], "urn:vimana:problem:invalid-name", "{uri}");
    }
    // Not even UTF-8 after percent-decoding.
    let r = send(app(&core), req(Method::GET, "/v1/workloads/%FF")).await;
    r.problem(400);
    assert!(core.actions().is_empty());
}

// ---------------------------------------------------------------- request errors

#[tokio::test]
async fn malformed_json_is_400_problem() {
    let core = FakeCore::new();
    let r = send(
        app(&core),
        json_req(Method::PUT, "/v1/workloads/node", "{\"spec\": "),
    )
    .await;
    let p = r.problem(400);
    assert_eq!(p["type"], "urn:vimana:problem:bad-request");
    assert_eq!(p["title"], "Bad request");
    assert!(p["detail"].as_str().unwrap().contains("not valid JSON"));
    assert!(core.actions().is_empty());
}

#[tokio::test]
async fn unknown_fields_are_400_problem() {
    let core = FakeCore::new();
    for body in [
        json!({"spec": null, "extra": 1}),
        json!({"spec": {"kind": "spacecore", "plugin": "/p", "bogus": true}}),
        json!({"spec": {"kind": "firecracker"}}),
    ] {
        let r = send(
            app(&core),
            json_req(Method::PUT, "/v1/workloads/node", body.to_string()),
        )
        .await;
        let p = r.problem(400);
        assert!(
            p["detail"].as_str().unwrap().contains("expected schema"),
            "{p}"
        );
    }
    assert!(core.actions().is_empty());
}

#[tokio::test]
async fn wrong_content_type_is_400_problem() {
    let core = FakeCore::new();
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/workloads/node")
        .header("content-type", "text/plain")
        .body(Body::from(spec_json().to_string()))
        .unwrap();
    let p = send(app(&core), request).await.problem(400);
    assert!(p["detail"].as_str().unwrap().contains("application/json"));

    // A body without any content type.
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/workloads/node")
        .body(Body::from(spec_json().to_string()))
        .unwrap();
    send(app(&core), request).await.problem(400);
    assert!(core.actions().is_empty());
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let core = FakeCore::new();
    let big = format!(
        "{{\"spec\": {{\"kind\": \"spacecore\", \"plugin\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = send(app(&core), json_req(Method::PUT, "/v1/workloads/node", big)).await;
    let p = r.problem(413);
    assert_eq!(p["type"], "urn:vimana:problem:payload-too-large");
    assert!(core.actions().is_empty());

    // Streamed without a content length, too.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 32 * 1024]));
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/workloads/node")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    send(app(&core), request).await.problem(413);
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let core = FakeCore::new();
    for uri in ["/nope", "/v1/workloads/node/restart", "/v2/workloads", "/"] {
        let p = send(app(&core), req(Method::GET, uri)).await.problem(404);
        assert!(
            p["detail"].as_str().unwrap().contains("/openapi.json"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn wrong_method_is_405_problem_with_allow() {
    let core = FakeCore::new();
    let r = send(app(&core), req(Method::POST, "/v1/workloads")).await;
    r.problem(405);
    assert!(
        r.headers
            .get(http::header::ALLOW)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("GET")
    );
    let r = send(app(&core), req(Method::GET, "/v1/workloads/node/stop")).await;
    r.problem(405);
    let r = send(app(&core), req(Method::PATCH, "/v1/workloads/node")).await;
    r.problem(405);
}

#[tokio::test]
async fn invalid_query_is_400_problem() {
    let core = FakeCore::with_node();
    for uri in [
        "/v1/workloads/node/logs?tail=abc",
        "/v1/workloads/node/logs?tail=-1",
        "/v1/workloads/node/logs?follow=maybe",
        "/v1/workloads/node/logs?bogus=1",
        "/v1/events?since=x",
        "/v1/events?workload=Not-Valid",
        "/v1/events?color=red",
    ] {
        let p = send(app(&core), req(Method::GET, uri)).await.problem(400);
        assert!(
            p["detail"].as_str().unwrap().contains("query"),
            "{uri}: {p}"
        );
    }
    assert!(core.actions().is_empty());
}

#[tokio::test]
async fn panics_become_500_problem() {
    let core = FakeCore::new();
    let r = send(
        app(&core),
        json_req(Method::PUT, "/v1/workloads/boom", spec_json().to_string()),
    )
    .await;
    let p = r.problem(500);
    assert_eq!(p["type"], "urn:vimana:problem:internal");
}

// ---------------------------------------------------------------- logs & events

#[tokio::test]
async fn logs_snapshot_as_ndjson() {
    let core = FakeCore::with_node();
    let r = send(app(&core), req(Method::GET, "/v1/workloads/node/logs")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ndjson::<LogRecord>(), core.stored_logs);

    let r = send(
        app(&core),
        req(Method::GET, "/v1/workloads/node/logs?tail=2"),
    )
    .await;
    let lines: Vec<LogRecord> = r.ndjson();
    assert_eq!(lines, core.stored_logs[1..].to_vec());
    assert_eq!(
        core.actions().last(),
        Some(&Action::Logs {
            name: name("node"),
            tail: Some(2)
        })
    );

    let r = send(app(&core), req(Method::GET, "/v1/workloads/ghost/logs")).await;
    r.problem(404);
    let r = send(
        app(&core),
        req(Method::GET, "/v1/workloads/ghost/logs?follow=true"),
    )
    .await;
    r.problem(404);
    // The 404 comes before any subscription: a core allocates a follower's
    // channel per name, and a client may try any number of names.
    let subscribed = core.subscribed.lock().unwrap().clone();
    assert!(
        !subscribed.contains(&name("ghost")),
        "subscribed to {subscribed:?}"
    );
}

/// Reads ndjson items from a streaming body until `n` complete lines arrived.
async fn read_lines<T: serde::de::DeserializeOwned>(
    body: &mut Body,
    buf: &mut Vec<u8>,
    n: usize,
) -> Vec<T> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line).unwrap());
            continue;
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("timed out waiting for a streamed line")
            .expect("stream ended early")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    out
}

#[tokio::test]
async fn follow_logs_streams_new_records() {
    let core = FakeCore::with_node();
    let res = app(&core)
        .oneshot(req(
            Method::GET,
            "/v1/workloads/node/logs?follow=true&tail=1",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], NDJSON);
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let first: Vec<LogRecord> = read_lines(&mut body, &mut buf, 1).await;
    assert_eq!(first, vec![log("three")]);

    // Sent after the request started: must arrive.
    core.logs_tx.send(log("live")).unwrap();
    let next: Vec<LogRecord> = read_lines(&mut body, &mut buf, 1).await;
    assert_eq!(next, vec![log("live")]);

    // Dropping the body (client gone) unsubscribes.
    drop(body);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(core.logs_tx.receiver_count(), 0);
}

#[tokio::test]
async fn follow_survives_a_lagged_receiver() {
    let core = FakeCore::with_node();
    let res = app(&core)
        .oneshot(req(
            Method::GET,
            "/v1/workloads/node/logs?follow=true&tail=0",
        ))
        .await
        .unwrap();
    let mut body = res.into_body();
    // Overflow the 16-slot channel before the stream reads anything.
    for i in 0..40 {
        core.logs_tx.send(log(&format!("m{i}"))).unwrap();
    }
    let mut buf = Vec::new();
    let got: Vec<LogRecord> = read_lines(&mut body, &mut buf, 16).await;
    assert_eq!(got.last(), Some(&log("m39")));
    core.logs_tx.send(log("after")).unwrap();
    let got: Vec<LogRecord> = read_lines(&mut body, &mut buf, 1).await;
    assert_eq!(got, vec![log("after")]);
}

#[tokio::test]
async fn events_snapshot_filters() {
    let core = FakeCore::new();
    let r = send(app(&core), req(Method::GET, "/v1/events")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ndjson::<Event>(), core.stored_events);

    let r = send(
        app(&core),
        req(Method::GET, "/v1/events?since=1&workload=node"),
    )
    .await;
    assert_eq!(r.ndjson::<Event>(), vec![event(3, "node")]);
    assert_eq!(
        core.actions().last(),
        Some(&Action::Events {
            since: Some(1),
            workload: Some(name("node"))
        })
    );
}

#[tokio::test]
async fn follow_events_filters_by_workload_and_seq() {
    let core = FakeCore::new();
    let res = app(&core)
        .oneshot(req(
            Method::GET,
            "/v1/events?follow=true&workload=node&since=0",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let mut buf = Vec::new();
    let snapshot: Vec<Event> = read_lines(&mut body, &mut buf, 2).await;
    assert_eq!(snapshot, vec![event(1, "node"), event(3, "node")]);

    core.events_tx.send(event(3, "node")).unwrap(); // already sent
    core.events_tx.send(event(4, "other")).unwrap(); // other workload
    core.events_tx.send(event(5, "node")).unwrap();
    let live: Vec<Event> = read_lines(&mut body, &mut buf, 1).await;
    assert_eq!(live, vec![event(5, "node")]);
}

// ---------------------------------------------------------------- system & openapi

#[tokio::test]
async fn system_info() {
    let core = FakeCore::new();
    let r = send(app(&core), req(Method::GET, "/v1/system")).await;
    assert_eq!(r.status, StatusCode::OK);
    let info: SystemInfo = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info.api, "v1");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let core = FakeCore::new();
    let r = send(app(&core), req(Method::GET, "/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();

    let registered = vimana_server::routes();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                documented.push((method.to_string(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> = registered
        .iter()
        .map(|(verb, path)| (verb.as_str().to_string(), path.to_string()))
        .collect();
    expected.sort();
    documented.sort();
    assert_eq!(documented, expected);
    assert_eq!(registered.len(), 15);

    // Each registered route is really served (not a 404/405 fallback).
    for (verb, path) in &registered {
        let method = match verb {
            Verb::Get => Method::GET,
            Verb::Put => Method::PUT,
            Verb::Post => Method::POST,
            Verb::Delete => Method::DELETE,
        };
        let path = path.replace("{name}", "node").replace("{kind}", "domains");
        let r = send(app(&core), req(method, &path)).await;
        assert!(
            r.status != StatusCode::METHOD_NOT_ALLOWED
                && !(r.status == StatusCode::NOT_FOUND
                    && r.json()["detail"].as_str().unwrap().contains("no route")),
            "{verb:?} {path}"
        );
    }

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "Problem",
        "Workload",
        "StartRequest",
        "LogRecord",
        "Event",
        "SystemInfo",
    ] {
        assert!(schemas.contains_key(s), "missing schema {s}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} lacks 401"
            );
        }
    }
    // The same document as the library function.
    assert_eq!(doc, serde_json::to_value(vimana_server::openapi()).unwrap());
}

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn bearer_token_on_router() {
    let core = FakeCore::new();
    let app = vimana_server::router(core.clone(), Some("s3cret".into()));
    let with = |value: Option<&str>, uri: &str| {
        let mut b = Request::builder().uri(uri);
        if let Some(v) = value {
            b = b.header("authorization", v);
        }
        b.body(Body::empty()).unwrap()
    };
    for value in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Basic s3cret"),
    ] {
        let r = send(app.clone(), with(value, "/v1/workloads")).await;
        let p = r.problem(401);
        assert!(p["detail"].as_str().unwrap().contains("VIMANA_HOME/token"));
        assert!(r.headers.contains_key(http::header::WWW_AUTHENTICATE));
    }
    // Unknown routes are not revealed without the token either.
    send(app.clone(), with(None, "/nope")).await.problem(401);
    assert!(core.actions().is_empty());

    let r = send(app.clone(), with(Some("Bearer s3cret"), "/v1/workloads")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(app, with(Some("Bearer s3cret"), "/nope")).await;
    r.problem(404);
}

// ---------------------------------------------------------------- real sockets

struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_line = std::str::from_utf8(&data[..pos]).unwrap();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// One HTTP/1.1 request over any stream, `Connection: close`, read to EOF.
async fn raw_request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawReply {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    RawReply { status, head, body }
}

async fn wait_for_socket(path: &std::path::Path) {
    for _ in 0..500 {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("socket {} never came up", path.display());
}

#[tokio::test]
async fn unix_socket_is_0600_and_serves_without_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vimana.sock");
    // A stale socket from a previous daemon.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let core = FakeCore::with_node();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn({
        let path = path.clone();
        let core: Arc<dyn CoreApi> = core.clone();
        async move {
            vimana_server::serve_unix(&path, core, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    wait_for_socket(&path).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let r = raw_request(stream, "GET", "/v1/system", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.head);
    let info: SystemInfo = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info.api, "v1");

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let r = raw_request(
        stream,
        "PUT",
        "/v1/workloads/fresh",
        &[("Content-Type", "application/json")],
        &spec_json().to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let w: Workload = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(w.name.as_str(), "fresh");

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let r = raw_request(
        stream,
        "PUT",
        "/v1/workloads/fresh",
        &[("Content-Type", "application/json")],
        "{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.head.to_ascii_lowercase().contains(PROBLEM_JSON));

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let r = raw_request(stream, "GET", "/v1/workloads/node/logs", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(String::from_utf8(r.body).unwrap().lines().count(), 3);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!path.exists(), "socket removed after shutdown");
}

#[tokio::test]
async fn unix_refuses_to_replace_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vimana.sock");
    std::fs::write(&path, "precious").unwrap();
    let err = vimana_server::serve_unix(&path, FakeCore::new(), async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn shutdown_ends_follow_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vimana.sock");
    let core = FakeCore::with_node();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn({
        let path = path.clone();
        let core: Arc<dyn CoreApi> = core.clone();
        async move {
            vimana_server::serve_unix(&path, core, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    wait_for_socket(&path).await;
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"GET /v1/events?follow=true HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown waited on a follow stream")
        .unwrap()
        .unwrap();
    drop(stream);
}

async fn tcp_server(
    core: Arc<FakeCore>,
    token: &str,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServerError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let token = token.to_string();
    let server = tokio::spawn(async move {
        vimana_server::serve_tcp_listener(listener, core, token, async {
            let _ = stop_rx.await;
        })
        .await
    });
    (addr, stop_tx, server)
}

#[tokio::test]
async fn tcp_requires_the_bearer_token() {
    let core = FakeCore::with_node();
    let (addr, stop, server) = tcp_server(core.clone(), "tok-123").await;
    let connect = || async { tokio::net::TcpStream::connect(addr).await.unwrap() };

    let r = raw_request(connect().await, "GET", "/v1/workloads", &[], "").await;
    assert_eq!(r.status, 401);
    let p: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(p["status"], 401);
    assert!(p["detail"].as_str().unwrap().contains("VIMANA_HOME/token"));

    let r = raw_request(
        connect().await,
        "GET",
        "/v1/workloads",
        &[("Authorization", "Bearer tok-124")],
        "",
    )
    .await;
    assert_eq!(r.status, 401);

    let r = raw_request(
        connect().await,
        "GET",
        "/v1/workloads",
        &[("Authorization", "Bearer tok-123")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let list: Vec<Workload> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(list.len(), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(core.actions(), vec![Action::List]);
}

#[tokio::test]
async fn tcp_refuses_an_empty_token() {
    let core = FakeCore::new();
    let err = vimana_server::serve_tcp(
        "127.0.0.1:0".parse().unwrap(),
        core.clone(),
        String::new(),
        async {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServerError::EmptyToken));
    // With a token, serve_tcp binds and shuts down cleanly.
    vimana_server::serve_tcp("127.0.0.1:0".parse().unwrap(), core, "t".into(), async {})
        .await
        .unwrap();
}
