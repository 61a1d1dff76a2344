use std::convert::Infallible;
use std::path::PathBuf;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::net::UnixListener;

use super::*;

/// A real hyper server on a unix socket: echoes method, path, content type
/// and body as JSON; `/fail` answers 400 with a Firecracker fault,
/// `/text-fail` 500 with plain text (Cloud Hypervisor style), `/empty` 204.
async fn serve(path: PathBuf) {
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let method = req.method().to_string();
                    let uri = req.uri().path().to_string();
                    let ctype = req
                        .headers()
                        .get(CONTENT_TYPE)
                        .map(|v| v.to_str().unwrap().to_string());
                    let host = req
                        .headers()
                        .get(HOST)
                        .map(|v| v.to_str().unwrap().to_string());
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let (status, out) = match uri.as_str() {
                        "/fail" => (
                            StatusCode::BAD_REQUEST,
                            json!({"fault_message": "The kernel file cannot be opened"})
                                .to_string(),
                        ),
                        "/text-fail" => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Error creating VM: InvalidPayload\n".to_string(),
                        ),
                        "/empty" => (StatusCode::NO_CONTENT, String::new()),
                        _ => (
                            StatusCode::OK,
                            json!({
                                "method": method,
                                "path": uri,
                                "content_type": ctype,
                                "host": host,
                                "body": String::from_utf8_lossy(&body),
                            })
                            .to_string(),
                        ),
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(out)))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn put_with_json_body_and_get() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    serve(sock.clone()).await;

    let body = json!({"action_type": "InstanceStart"});
    let got = call(&sock, &ApiCall::put("/actions", Some(body.clone())), WAIT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got["method"], "PUT");
    assert_eq!(got["path"], "/actions");
    assert_eq!(got["content_type"], "application/json");
    assert_eq!(got["host"], "localhost");
    let sent: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, body);

    let resp = request(&sock, HttpMethod::Get, "/", None, WAIT)
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let got = resp.json().unwrap();
    assert_eq!(got["method"], "GET");
    assert_eq!(got["content_type"], Value::Null);
    assert_eq!(got["body"], "");

    let empty = call(&sock, &ApiCall::put("/empty", None), WAIT)
        .await
        .unwrap();
    assert_eq!(empty, None);
}

#[tokio::test]
async fn errors_name_socket_method_path_and_the_vmm_message() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fc.sock");
    serve(sock.clone()).await;

    let err = call(&sock, &ApiCall::put("/fail", Some(json!({}))), WAIT)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("PUT /fail"), "{err}");
    assert!(err.contains("fc.sock"), "{err}");
    assert!(err.contains("400"), "{err}");
    assert!(err.contains("The kernel file cannot be opened"), "{err}");
    assert!(!err.contains("fault_message"), "{err}");

    let err = call(&sock, &ApiCall::put("/text-fail", None), WAIT)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("500") && err.ends_with("Error creating VM: InvalidPayload"),
        "{err}"
    );

    let missing = dir.path().join("nobody.sock");
    let err = request(&missing, HttpMethod::Get, "/", None, WAIT)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot connect to") && err.contains("nobody.sock"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let keep = tokio::spawn(async move {
        let (_s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let err = request(
        &sock,
        HttpMethod::Get,
        "/",
        None,
        Duration::from_millis(200),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("silent.sock") && err.contains("GET /"),
        "{err}"
    );
    keep.abort();
}
