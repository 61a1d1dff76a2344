#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Weighted versions: the traffic split, and route swaps under load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::client::{self, grpc, sum_of};
use vimana_gateway::{GatewayConfig, Routes};

const URL: &str = "http://demo.vimana.test/demo.Adder/AddFloats";

fn split_routes(w1: u32, w2: u32) -> Routes {
    Routes {
        domains: vec![common::demo_domain(vec![
            common::grpc_version("demo:adder@v1", w1, common::adder()),
            common::grpc_version("demo:adder@v2", w2, common::adder()),
        ])],
    }
}

/// 400 calls at weights 1:3 should give v1 25 %. The count of v1 answers
/// is binomial(400, 0.25): mean 100, standard deviation
/// sqrt(400 * 0.25 * 0.75) ≈ 8.7 calls ≈ 2.2 percentage points. The
/// tolerance of ±10 points (60..=140 calls) is about 4.6 standard
/// deviations, so a correct split fails this test with probability
/// below 1e-5, while a broken one (e.g. 50/50 or always v2) cannot pass.
#[tokio::test]
async fn weights_one_to_three_split_four_hundred_calls() {
    let gw = common::start(split_routes(1, 3), false, GatewayConfig::default()).await;
    let h2 = client::h2c(gw.addr).await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            let mut v1 = 0u32;
            for i in 0..50 {
                let a = f64::from(worker * 100 + i);
                let reply = grpc(&mut h2, URL, &common::encode_pair(a, 1.0), &[]).await;
                assert_eq!(reply.status, 0, "{reply:?}");
                assert_eq!(sum_of(&reply.messages[0]), a + 1.0);
                match reply.component().as_str() {
                    "demo:adder@v1" => v1 += 1,
                    "demo:adder@v2" => {}
                    other => panic!("unexpected component {other:?}"),
                }
            }
            v1
        }));
    }
    let mut v1 = 0;
    for t in tasks {
        v1 += t.await.unwrap();
    }
    let share = f64::from(v1) / 400.0 * 100.0;
    println!("v1 answered {v1} of 400 calls ({share:.1} %)");
    assert!(
        (15.0..=35.0).contains(&share),
        "v1 share {share:.1} % not 25 ± 10"
    );
}

/// Route tables are swapped back and forth (all v1, all v2, 1:1) while
/// 8 workers keep calling: no call fails, and both versions answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_weights_mid_load_loses_no_request() {
    let gw = common::start(split_routes(1, 0), false, GatewayConfig::default()).await;
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let done = Arc::clone(&done);
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            let mut h2 = client::h2c(addr).await;
            let mut seen = (0u32, 0u32, 0u32);
            while !done.load(Ordering::Relaxed) || seen.0 < 20 {
                let a = f64::from(worker);
                let reply = grpc(&mut h2, URL, &common::encode_pair(a, 0.5), &[]).await;
                assert_eq!(reply.status, 0, "call failed during a swap: {reply:?}");
                assert_eq!(sum_of(&reply.messages[0]), a + 0.5);
                seen.0 += 1;
                match reply.component().as_str() {
                    "demo:adder@v1" => seen.1 += 1,
                    "demo:adder@v2" => seen.2 += 1,
                    other => panic!("unexpected component {other:?}"),
                }
            }
            seen
        }));
    }
    for round in 0..60 {
        let routes = match round % 3 {
            0 => split_routes(0, 1),
            1 => split_routes(1, 1),
            _ => split_routes(1, 0),
        };
        gw.gateway.set_routes(routes).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Relaxed);
    let (mut calls, mut v1, mut v2) = (0, 0, 0);
    for t in tasks {
        let seen = t.await.unwrap();
        calls += seen.0;
        v1 += seen.1;
        v2 += seen.2;
    }
    println!("{calls} calls during 60 swaps: v1 {v1}, v2 {v2}");
    assert!(calls >= 160);
    assert!(v1 > 0 && v2 > 0);
}

/// A call in flight keeps the route it started with even when the table
/// that held it is replaced by an empty one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_survives_removal_of_its_route() {
    let slow = Arc::new(common::Adder {
        delay: std::time::Duration::from_millis(400),
    });
    let routes = Routes {
        domains: vec![common::demo_domain(vec![common::grpc_version(
            "demo:adder@slow",
            1,
            slow,
        )])],
    };
    let gw = common::start(routes, false, GatewayConfig::default()).await;
    let mut h2 = client::h2c(gw.addr).await;
    let mut h2b = h2.clone();
    let call = tokio::spawn(async move {
        grpc(
            &mut h2b,
            "http://demo.vimana.test/demo.Adder/Slow",
            b"keep",
            &[],
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    gw.gateway.set_routes(Routes::default()).unwrap();
    let reply = call.await.unwrap();
    assert_eq!(reply.status, 0, "{reply:?}");
    assert_eq!(reply.messages, vec![bytes::Bytes::from_static(b"keep")]);
    assert_eq!(reply.component(), "demo:adder@slow");
    let after = grpc(&mut h2, URL, &common::encode_pair(1.0, 1.0), &[]).await;
    assert_eq!(after.status, vimana_gateway::Code::NotFound.as_u32());
}
