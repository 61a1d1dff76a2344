//! The `/v1/resources` translators and routes (a fake core records actions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tower::ServiceExt;
use vimana_api::{
    Action, ActionOutcome, ApiError, ApplyRequest, ChangeKind, ChangeList, DeleteRequest, Event,
    LogRecord, ResourceChange, ResourceId, ResourceQuery, SourceRef, WorkloadName,
};
use vimana_core::CoreApi;
use vimana_resources::{ResourceKind, ResourceRef};
use vimana_server::{
    PROBLEM_JSON, parse_apply_resources, parse_delete_resource, parse_delete_resources,
    parse_get_resources,
};

fn domain(name: &str, id: &str) -> Value {
    json!({
        "apiVersion": "api.vimana.host/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": name},
        "spec": {"id": id, "vimana": "local"},
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    })
}

const ID: &str = "00000000000000000000000000000001";

#[test]
fn apply_parses_checks_and_names_the_origin() {
    let body = ApplyRequest {
        resources: vec![domain("example", ID)],
        origins: vec![SourceRef {
            file: "deploy.yaml".into(),
            document: 2,
        }],
    };
    let Action::ApplyResources { resources } = parse_apply_resources(body).unwrap() else {
        panic!("not an apply");
    };
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].name(), "example");
    assert!(resources[0].status().is_none(), "input status is dropped");
    assert_eq!(resources[0].origin().unwrap().document, 2);

    let bad = ApplyRequest {
        resources: vec![domain("example", ID), domain("bad", "123")],
        origins: vec![],
    };
    let err = parse_apply_resources(bad).unwrap_err();
    assert_eq!(err.status(), 422);
    let msg = err.to_string();
    assert!(msg.contains("request document 2"), "{msg}");
    assert!(
        msg.contains("spec.id") && msg.contains("rule domain-id"),
        "{msg}"
    );

    let unknown_field = ApplyRequest {
        resources: vec![
            json!({"apiVersion": "api.vimana.host/v1alpha1", "kind": "Vimana",
            "metadata": {"name": "x"}, "spec": {}, "colour": 1}),
        ],
        origins: vec![],
    };
    assert!(
        parse_apply_resources(unknown_field)
            .unwrap_err()
            .to_string()
            .contains("colour")
    );

    let mismatched = ApplyRequest {
        resources: vec![domain("example", ID)],
        origins: vec![
            SourceRef {
                file: "a".into(),
                document: 1,
            },
            SourceRef {
                file: "a".into(),
                document: 2,
            },
        ],
    };
    assert_eq!(parse_apply_resources(mismatched).unwrap_err().status(), 400);
    assert_eq!(
        parse_apply_resources(ApplyRequest::default())
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn get_and_delete_accept_kind_aliases() {
    for alias in ["domains", "domain", "Domain", "dom"] {
        assert_eq!(
            parse_get_resources(Some(alias), Some("example")).unwrap(),
            Action::GetResources {
                query: ResourceQuery {
                    kind: Some(ResourceKind::Domain),
                    name: Some("example".into())
                }
            }
        );
    }
    assert_eq!(
        parse_get_resources(Some("widgets"), None)
            .unwrap_err()
            .status(),
        400
    );
    let cname = format!("{ID}:adder@1.0.0");
    assert_eq!(
        parse_delete_resource("comp", &cname).unwrap(),
        Action::DeleteResources {
            refs: vec![ResourceRef {
                kind: ResourceKind::Component,
                name: cname.clone()
            }]
        }
    );
    let body = DeleteRequest {
        resources: vec![ResourceId {
            kind: "servers".into(),
            name: "adder".into(),
        }],
    };
    assert!(matches!(
        parse_delete_resources(body).unwrap(),
        Action::DeleteResources { refs } if refs.len() == 1 && refs[0].kind == ResourceKind::Server
    ));
    assert_eq!(
        parse_delete_resources(DeleteRequest::default())
            .unwrap_err()
            .status(),
        400
    );
}

struct Fake(Mutex<Vec<Action>>);

#[async_trait]
impl CoreApi for Fake {
    async fn handle(&self, action: Action) -> Result<ActionOutcome, ApiError> {
        self.0.lock().unwrap().push(action.clone());
        match action {
            Action::ApplyResources { resources } => {
                Ok(ActionOutcome::ResourceChanges(ChangeList {
                    changes: resources
                        .iter()
                        .map(|r| ResourceChange::new(&r.reference(), ChangeKind::Created))
                        .collect(),
                    revision: 7,
                }))
            }
            Action::GetResources { .. } => {
                Err(ApiError::ResourceNotFound("no Domain named \"x\"".into()))
            }
            Action::DeleteResources { .. } => Err(ApiError::Conflict("still used".into())),
            _ => Err(ApiError::Internal("not a resource action".into())),
        }
    }
    fn subscribe_logs(&self, _: &WorkloadName) -> Result<broadcast::Receiver<LogRecord>, ApiError> {
        Err(ApiError::Internal("no logs".into()))
    }
    fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        broadcast::channel(1).1
    }
}

async fn send(
    core: &Arc<Fake>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let res = vimana_server::router(core.clone(), None)
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        ct,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn routes_answer_with_changes_or_problems() {
    let core = Arc::new(Fake(Mutex::new(Vec::new())));
    let (s, _, v) = send(
        &core,
        Method::POST,
        "/v1/resources",
        Some(json!({"resources": [domain("example", ID)]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["changes"][0],
        json!({"kind": "Domain", "name": "example", "change": "created"})
    );
    assert_eq!(v["revision"], 7);

    let (s, ct, v) = send(
        &core,
        Method::POST,
        "/v1/resources",
        Some(json!({"resources": [domain("bad", "1")]})),
    )
    .await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, PROBLEM_JSON)
    );
    assert_eq!(v["type"], "urn:vimana:problem:invalid-resource");

    let (s, ct, v) = send(&core, Method::GET, "/v1/resources/domains/x", None).await;
    assert_eq!((s, ct.as_str()), (StatusCode::NOT_FOUND, PROBLEM_JSON));
    assert!(v["detail"].as_str().unwrap().contains("Domain"));

    let (s, _, _) = send(&core, Method::GET, "/v1/resources/widgets", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let path = format!("/v1/resources/component/{ID}:adder@1.0.0");
    let (s, _, v) = send(&core, Method::DELETE, &path, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["type"], "urn:vimana:problem:conflict");
    let (s, _, _) = send(
        &core,
        Method::POST,
        "/v1/resources/delete",
        Some(json!({"resources": [{"kind": "dom", "name": "example"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let actions = core.0.lock().unwrap().clone();
    assert_eq!(
        actions.len(),
        4,
        "rejected requests never reach the core: {actions:?}"
    );
    assert_eq!(
        actions[2],
        Action::DeleteResources {
            refs: vec![ResourceRef {
                kind: ResourceKind::Component,
                name: format!("{ID}:adder@1.0.0")
            }]
        }
    );
}
