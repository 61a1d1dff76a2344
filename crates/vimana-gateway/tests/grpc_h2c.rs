#![allow(clippy::unwrap_used, clippy::expect_used)]
//! gRPC over h2c with hyper's HTTP/2 client (prior knowledge).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::client::{self, frame, grpc, grpc_raw, sum_of};
use vimana_gateway::{Code, GatewayConfig};

const URL: &str = "http://demo.vimana.test/demo.Adder";

#[tokio::test]
async fn unary_call_over_h2c_returns_sum_with_component_header() {
    let gw = common::start(common::demo_routes(), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(
        &mut h2,
        &format!("{URL}/AddFloats"),
        &common::encode_pair(1.5, 2.25),
        &[],
    )
    .await;
    assert_eq!(reply.status, 0, "{reply:?}");
    assert_eq!(reply.http, 200);
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(sum_of(&reply.messages[0]), 3.75);
    assert_eq!(reply.component(), "demo:adder@v1");

    // The alias, with a port and in another case, reaches the same domain.
    let alias = "http://ADD.example.test:8080/demo.Adder/AddFloats";
    let reply = grpc(&mut h2, alias, &common::encode_pair(1.0, 1.0), &[]).await;
    assert_eq!(sum_of(&reply.messages[0]), 2.0);
}

#[tokio::test]
async fn server_streaming_and_backend_errors() {
    let gw = common::start(common::demo_routes(), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(&mut h2, &format!("{URL}/Twice"), b"hey", &[]).await;
    assert_eq!(reply.status, 0);
    assert_eq!(reply.messages, vec![Bytes::from_static(b"hey"); 2]);

    let reply = grpc(&mut h2, &format!("{URL}/Fail"), b"", &[]).await;
    assert_eq!(reply.status, Code::InvalidArgument.as_u32());
    assert_eq!(reply.message, "bad operands: %C3%BC%25");
    assert!(reply.messages.is_empty());
    assert_eq!(reply.component(), "demo:adder@v1");

    // A backend that panics answers INTERNAL; the connection carries on.
    let reply = grpc(&mut h2, &format!("{URL}/Panic"), b"", &[]).await;
    assert_eq!(reply.status, Code::Internal.as_u32(), "{reply:?}");
    assert!(reply.message.contains("the backend panicked"), "{reply:?}");
    let reply = grpc(
        &mut h2,
        &format!("{URL}/AddFloats"),
        &common::encode_pair(2.0, 3.0),
        &[],
    )
    .await;
    assert_eq!(sum_of(&reply.messages[0]), 5.0);
}

#[tokio::test]
async fn unknown_host_service_and_bad_paths() {
    let gw = common::start(common::demo_routes(), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(&mut h2, "http://nobody.test/demo.Adder/AddFloats", b"", &[]).await;
    assert_eq!(reply.status, Code::NotFound.as_u32(), "{reply:?}");
    assert!(reply.message.contains("nobody.test"));

    let reply = grpc(&mut h2, "http://demo.vimana.test/demo.Other/X", b"", &[]).await;
    assert_eq!(reply.status, Code::Unimplemented.as_u32());

    let reply = grpc(&mut h2, "http://demo.vimana.test/nomethod", b"", &[]).await;
    assert_eq!(reply.status, Code::Unimplemented.as_u32());
}

#[tokio::test]
async fn oversize_compressed_and_missing_messages_are_refused() {
    let config = GatewayConfig {
        max_request_bytes: 1024,
        ..GatewayConfig::default()
    };
    let gw = common::start(common::demo_routes(), false, config).await;
    let mut h2 = client::h2c(gw.addr).await;
    let url = format!("{URL}/AddFloats");

    let big = vec![7u8; 2048];
    let reply = grpc(&mut h2, &url, &big, &[]).await;
    assert_eq!(reply.status, Code::ResourceExhausted.as_u32(), "{reply:?}");

    // Only the prefix announcing 100 MiB is sent: refused without waiting
    // for (or buffering) the body.
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(100u32 << 20).to_be_bytes());
    let reply = grpc_raw(&mut h2, &url, Bytes::from(prefix), &[])
        .await
        .unwrap();
    assert_eq!(reply.status, Code::ResourceExhausted.as_u32());

    let mut gz = frame(b"abc").to_vec();
    gz[0] = 1;
    let reply = grpc_raw(&mut h2, &url, Bytes::from(gz), &[]).await.unwrap();
    assert_eq!(reply.status, Code::Unimplemented.as_u32());

    let reply = grpc_raw(&mut h2, &url, Bytes::new(), &[]).await.unwrap();
    assert_eq!(reply.status, Code::Internal.as_u32());

    // The connection still serves calls afterwards.
    let reply = grpc(&mut h2, &url, &common::encode_pair(2.0, 3.0), &[]).await;
    assert_eq!(sum_of(&reply.messages[0]), 5.0);
}

#[tokio::test]
async fn grpc_timeout_shortens_the_deadline_of_a_slow_backend() {
    let gw = common::start(common::demo_routes(), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let started = Instant::now();
    let reply = grpc(
        &mut h2,
        &format!("{URL}/Slow"),
        b"x",
        &[("grpc-timeout", "300m")],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(reply.status, Code::DeadlineExceeded.as_u32(), "{reply:?}");
    // 300 ms deadline + 200 ms grace, well before the backend's 2 s sleep.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn no_version_with_weight_is_unavailable() {
    let routes = vimana_gateway::Routes {
        domains: vec![common::demo_domain(vec![common::grpc_version(
            "demo:adder@v0",
            0,
            common::adder(),
        )])],
    };
    let gw = common::start(routes, false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(&mut h2, &format!("{URL}/AddFloats"), b"", &[]).await;
    assert_eq!(reply.status, Code::Unavailable.as_u32());
}

/// A service a Server declares but no version of which is loaded answers
/// UNAVAILABLE (which clients retry) with the reason, not UNIMPLEMENTED.
#[tokio::test]
async fn declared_service_without_a_version_is_unavailable_with_the_reason() {
    let mut domain = common::demo_domain(Vec::new());
    domain.services.clear();
    domain.unavailable.insert(
        "demo.Adder".into(),
        "demo:adder@v1: ImageUnavailable: cannot read /x/adder.wasm".into(),
    );
    let routes = vimana_gateway::Routes {
        domains: vec![domain],
    };
    let gw = common::start(routes, false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(&mut h2, &format!("{URL}/AddFloats"), b"", &[]).await;
    assert_eq!(reply.status, Code::Unavailable.as_u32(), "{reply:?}");
    assert!(
        reply.message.contains("demo.Adder")
            && reply
                .message
                .contains("ImageUnavailable: cannot read /x/adder.wasm"),
        "{reply:?}"
    );
    // Undeclared services stay UNIMPLEMENTED.
    let reply = grpc(&mut h2, "http://demo.vimana.test/demo.Other/X", b"", &[]).await;
    assert_eq!(reply.status, Code::Unimplemented.as_u32(), "{reply:?}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let gw = common::start(common::demo_routes(), false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let reply = grpc(
        &mut h2,
        &format!("{URL}/AddFloats"),
        &common::encode_pair(1.0, 2.0),
        &[],
    )
    .await;
    assert_eq!(reply.status, 0);
    gw.stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), gw.task)
        .await
        .expect("serve_h2c returns after cancel")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}
