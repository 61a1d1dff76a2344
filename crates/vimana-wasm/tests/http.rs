//! wasi:http components: classification, serving, and denied outgoing
//! requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use vimana_wasm::testing::{
    ADDER_FUNC, ADDER_INTERFACE, adder_component, hello_http_component, looping_http_component,
    outgoing_http_component,
};
use vimana_wasm::{CallError, CallOptions, ComponentKind, Host, Val};

fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).unwrap()
}

#[test]
fn kinds_and_exports() {
    let host = Host::new().unwrap();
    let hello = host.load(&hello_http_component()).unwrap();
    assert_eq!(hello.kind(), ComponentKind::Http);
    assert_eq!(hello.exports(), vec!["wasi:http/incoming-handler@0.2.12"]);
    let adder = host.load(&adder_component()).unwrap();
    assert_eq!(adder.kind(), ComponentKind::Grpc);
    assert_eq!(adder.exports(), vec![ADDER_INTERFACE]);
}

#[test]
fn hello_answers_every_request() {
    let host = Host::new().unwrap();
    let hello = host.load(&hello_http_component()).unwrap();
    let post = http::Request::post("/submit?x=1")
        .header("content-type", "text/plain")
        .body(Bytes::from_static(b"ignored body"))
        .unwrap();
    for req in [get("http://localhost/"), get("/any/path"), post] {
        let resp = hello.handle_http(req, CallOptions::default()).unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
        assert_eq!(resp.body().as_ref(), b"hello from wasm\n");
    }
}

#[test]
fn hello_from_spawn_blocking_and_async() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let host = Host::new().unwrap();
    let hello = std::sync::Arc::new(host.load(&hello_http_component()).unwrap());
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let hello = std::sync::Arc::clone(&hello);
            tasks.push(tokio::task::spawn_blocking(move || {
                hello.handle_http(get("/"), CallOptions::default())
            }));
        }
        for t in tasks {
            let resp = t.await.unwrap().unwrap();
            assert_eq!(resp.body().as_ref(), b"hello from wasm\n");
        }
        let resp = hello
            .handle_http_async(get("/"), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
    });
}

#[test]
fn outgoing_requests_are_denied() {
    let host = Host::new().unwrap();
    let c = host.load(&outgoing_http_component()).unwrap();
    assert_eq!(c.kind(), ComponentKind::Http);
    let resp = c.handle_http(get("/"), CallOptions::default()).unwrap();
    // 403: the guest saw `error-code.HTTP-request-denied`.
    assert_eq!(resp.status(), http::StatusCode::FORBIDDEN);
}

#[test]
fn wrong_entry_point_is_invalid_request() {
    let host = Host::new().unwrap();
    let hello = host.load(&hello_http_component()).unwrap();
    let e = hello
        .call(ADDER_INTERFACE, ADDER_FUNC, &[Val::Bool(true)])
        .unwrap_err();
    assert!(matches!(e, CallError::InvalidRequest(_)), "{e:?}");
    let adder = host.load(&adder_component()).unwrap();
    let e = adder
        .handle_http(get("/"), CallOptions::default())
        .unwrap_err();
    assert!(matches!(e, CallError::InvalidRequest(_)), "{e:?}");
}

#[test]
fn looping_http_guest_hits_deadline_and_next_request_works() {
    let host = Host::new().unwrap();
    let looping = host.load(&looping_http_component()).unwrap();
    let hello = host.load(&hello_http_component()).unwrap();
    let opts = CallOptions {
        timeout: Some(std::time::Duration::from_millis(100)),
        ..CallOptions::default()
    };
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let e = looping.handle_http(get("/"), opts).unwrap_err();
        assert!(matches!(e, CallError::DeadlineExceeded), "{e:?}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        let resp = hello.handle_http(get("/"), opts).unwrap();
        assert_eq!(resp.body().as_ref(), b"hello from wasm\n");
    }
}
