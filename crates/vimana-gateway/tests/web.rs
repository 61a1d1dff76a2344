#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTTP side over hyper's HTTP/1.1 client (and HTTP/2 for JSON): the
//! schema document, JSON transcoding, JSON errors and plain HTTP
//! components.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::client;
use http::Request;
use http_body_util::{BodyExt, Full};
use vimana_gateway::{GatewayConfig, Routes, ServerRoute, VersionRoute};

const SCHEMA: &str = r#"{"openapi":"3.1.0","info":{"title":"demo","version":"1"}}"#;

fn routes(open_api: bool, http: bool) -> Routes {
    let mut routes = common::demo_routes();
    let domain = &mut routes.domains[0];
    if open_api {
        domain.open_api = Some(Bytes::from_static(SCHEMA.as_bytes()));
    }
    if http {
        domain.http = Some(Arc::new(ServerRoute {
            name: "site".into(),
            deadline: Duration::from_secs(5),
            versions: vec![VersionRoute {
                name: "demo:site@v1".into(),
                weight: 1,
                grpc: None,
                http: Some(Arc::new(common::Echo)),
            }],
        }));
    }
    routes
}

fn post_json(host: &str, path: &str, json: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap()
}

#[tokio::test]
async fn json_transcoding_and_schema_document() {
    let gw = common::start(routes(true, false), false, GatewayConfig::default()).await;
    let mut h1 = client::h1(gw.addr).await;
    let req = post_json(
        "demo.vimana.test:80",
        "/demo.Adder/AddFloats",
        r#"{"a":1.5,"b":2}"#,
    );
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["vimana-component"], "demo:adder@v1");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sum"], 3.5);

    // A backend error: the HTTP status of the code, and a JSON body.
    let req = post_json("demo.vimana.test", "/demo.Adder/AddFloats", "not json");
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(v["message"].is_string());

    let req = Request::get("/.well-known/schema.json")
        .header("host", "demo.vimana.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, SCHEMA.as_bytes());

    // JSON over HTTP/2 as well.
    let mut h2 = client::h2c(gw.addr).await;
    let req = post_json(
        "",
        "http://demo.vimana.test/demo.Adder/AddFloats",
        r#"{"a":1,"b":1}"#,
    );
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn without_open_api_there_is_no_schema_and_no_transcoding() {
    let gw = common::start(routes(false, false), false, GatewayConfig::default()).await;
    let mut h1 = client::h1(gw.addr).await;
    let req = post_json(
        "demo.vimana.test",
        "/demo.Adder/AddFloats",
        r#"{"a":1,"b":2}"#,
    );
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 404);
    let req = Request::get("/.well-known/schema.json")
        .header("host", "demo.vimana.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn plain_http_requests_reach_the_http_component() {
    let config = GatewayConfig {
        max_request_bytes: 64,
        ..GatewayConfig::default()
    };
    let gw = common::start(routes(true, true), false, config).await;
    let mut h1 = client::h1(gw.addr).await;
    let req = Request::put("/items/7?x=1")
        .header("host", "add.example.test")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-echo"], "yes");
    assert_eq!(resp.headers()["vimana-component"], "demo:site@v1");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "PUT /items/7 payload");

    // The schema document still wins over the HTTP component.
    let req = Request::get("/.well-known/schema.json")
        .header("host", "demo.vimana.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);

    // Bodies over the limit are refused (RESOURCE_EXHAUSTED → 429).
    let req = Request::post("/big")
        .header("host", "demo.vimana.test")
        .body(Full::new(Bytes::from(vec![b'x'; 1000])))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 429);
}

#[tokio::test]
async fn unknown_host_is_a_json_404() {
    let gw = common::start(routes(true, true), false, GatewayConfig::default()).await;
    let mut h1 = client::h1(gw.addr).await;
    let req = Request::get("/")
        .header("host", "nobody.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 404);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 5);
}
