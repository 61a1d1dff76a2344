#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! 64 concurrent 4 MiB `bytes` requests: each decodes into ~128 MiB of
//! component values (one `Val` per byte), so without a budget they would
//! take ~8.7 GiB at once. The gateway reserves each request's decode bound
//! from the connection's and its own budget and answers RESOURCE_EXHAUSTED
//! beyond it: every request gets an answer and the process stays under
//!   decode_memory_total + 64 × max_request_bytes + 256 MiB ≈ 1.5 GiB
//! (the 64 request messages are buffered before the reservation).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::client::{self, frame, grpc_raw};
use vimana_gateway::{
    BackendFuture, DEFAULT_DECODE_MEMORY_TOTAL, DEFAULT_MAX_REQUEST_BYTES, DomainRoute,
    GatewayConfig, GrpcBackend, Routes, ServerRoute, Status,
};
use vimana_grpc::Contract;

/// Decodes with the real codec, holds the values as a component call
/// would, and answers `Size { len }`.
struct Blob {
    contract: Contract,
}

impl GrpcBackend for Blob {
    fn unary<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        _: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(async move {
            let m = self.contract.method("blob.v1.Blob", method).unwrap();
            let val = m.decode_request(&request)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(val);
            let mut out = vec![0x08];
            let mut n = request.len() as u64;
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            Ok(Bytes::from(out))
        })
    }
    fn server_stream<'a>(
        &'a self,
        _: &'a str,
        _: Bytes,
        _: Duration,
    ) -> BackendFuture<'a, Vec<Bytes>> {
        Box::pin(async { Err(Status::unimplemented("no streams")) })
    }
    fn is_server_streaming(&self, _: &str) -> bool {
        false
    }
    fn json<'a>(
        &'a self,
        method: &'a str,
        request: Bytes,
        _: Duration,
    ) -> BackendFuture<'a, Bytes> {
        Box::pin(async move {
            let m = self.contract.method("blob.v1.Blob", method).unwrap();
            m.decode_json_request(&request)?;
            Ok(Bytes::from(format!("{{\"len\":\"{}\"}}", request.len())))
        })
    }
}

fn blob_routes() -> Routes {
    blob_routes_with(None)
}

fn blob_routes_with(open_api: Option<Bytes>) -> Routes {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vimana-grpc/tests/protos");
    let set = vimana_grpc::compile_protos(&[dir.join("blob.proto")], &[dir]).unwrap();
    let backend = Arc::new(Blob {
        contract: Contract::from_descriptor_set(&set).unwrap(),
    });
    let server = Arc::new(ServerRoute {
        name: "blob".into(),
        deadline: Duration::from_secs(120),
        versions: vec![common::grpc_version("demo:blob@v1", 1, backend)],
    });
    Routes {
        domains: vec![DomainRoute {
            id: "demo".into(),
            hostnames: vec!["demo.vimana.test".into()],
            services: HashMap::from([("blob.v1.Blob".to_string(), server)]),
            open_api,
            ..Default::default()
        }],
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Watches this process's RSS; past `bound` it exits at once (failing the
/// test) rather than let the machine run out of memory.
fn watch_rss(bound: u64) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&peak);
    std::thread::spawn(move || {
        loop {
            let rss = rss_bytes();
            p.fetch_max(rss, Ordering::Relaxed);
            if rss > bound {
                eprintln!(
                    "FAIL: RSS {} MiB exceeds the bound of {} MiB while decoding 64 × 4 MiB requests",
                    rss >> 20,
                    bound >> 20
                );
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_4_mib_bytes_requests_stay_within_the_memory_bound() {
    let bound = (DEFAULT_DECODE_MEMORY_TOTAL + 64 * DEFAULT_MAX_REQUEST_BYTES + (256 << 20)) as u64;
    let gw = common::start(blob_routes(), false, GatewayConfig::default()).await;
    let base = rss_bytes();
    let peak = watch_rss(bound);
    // Chunk { data: 4 MiB - 8 bytes }: a message of just under 4 MiB.
    let len = DEFAULT_MAX_REQUEST_BYTES - 8;
    let mut msg = vec![0x0a];
    let mut n = len;
    while n >= 0x80 {
        msg.push((n as u8) | 0x80);
        n >>= 7;
    }
    msg.push(n as u8);
    msg.resize(msg.len() + len, 0x5a);
    let body = frame(&msg);
    let url = "http://demo.vimana.test/blob.v1.Blob/Put";
    let mut calls = Vec::new();
    for _ in 0..8 {
        let h2 = client::h2c(gw.addr).await;
        for _ in 0..8 {
            let (mut h2, body) = (h2.clone(), body.clone());
            calls.push(tokio::spawn(async move {
                grpc_raw(&mut h2, url, body, &[]).await
            }));
        }
    }
    let mut codes = HashMap::<u32, usize>::new();
    for call in calls {
        let reply = tokio::time::timeout(Duration::from_secs(300), call)
            .await
            .expect("every request gets an answer")
            .unwrap()
            .unwrap();
        assert!(
            reply.status == 0 || reply.status == 8,
            "answer is neither OK nor RESOURCE_EXHAUSTED: {reply:?}"
        );
        if reply.status == 8 {
            assert!(reply.message.contains("decode"), "{}", reply.message);
        }
        *codes.entry(reply.status).or_default() += 1;
    }
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "64 × 4 MiB bytes requests: {codes:?} (0 = OK, 8 = RESOURCE_EXHAUSTED); RSS {} MiB before, peak {} MiB, bound {} MiB",
        base >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(codes.get(&0).copied().unwrap_or(0) >= 1, "{codes:?}");
    assert!(peak <= bound);
}

#[tokio::test]
async fn a_request_beyond_the_connection_budget_is_resource_exhausted_for_grpc_and_json() {
    let config = GatewayConfig {
        decode_memory_per_connection: 1 << 20,
        ..GatewayConfig::default()
    };
    let routes = blob_routes_with(Some(Bytes::from_static(b"{}")));
    let gw = common::start(routes, false, config).await;
    // Chunk { data: 100 000 bytes } may decode into ~4 MiB: over 1 MiB.
    let mut msg = vec![0x0a, 0xa0, 0x8d, 0x06];
    msg.resize(4 + 100_000, 1);
    let mut h2 = client::h2c(gw.addr).await;
    let url = "http://demo.vimana.test/blob.v1.Blob/Put";
    let reply = grpc_raw(&mut h2, url, frame(&msg), &[]).await.unwrap();
    assert_eq!(reply.status, 8, "{reply:?}");
    assert!(
        reply.message.contains("decode_memory_per_connection"),
        "{}",
        reply.message
    );
    // The same through JSON transcoding.
    let json = format!("{{\"data\":\"{}\"}}", "A".repeat(100_000));
    let mut h1 = client::h1(gw.addr).await;
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(json)))
        .unwrap();
    let resp = h1.send_request(req).await.unwrap();
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !status.is_success() && text.contains("decode_memory_per_connection"),
        "{status} {text}"
    );
    // Small requests still pass on both.
    let reply = grpc_raw(&mut h2, url, frame(&[0x0a, 0x01, 0x07]), &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 0, "{reply:?}");
}
