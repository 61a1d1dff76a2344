#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Slow clients cannot hold the gateway's connections: half-sent requests
//! are closed at the header-read timeout while normal calls still answer,
//! and beyond the connection cap new connections are refused.

mod common;

use std::time::Duration;

use common::client::{self, grpc, sum_of};
use vimana_gateway::GatewayConfig;
use vimana_listen::ConnLimits;
use vimana_listen::testing::{HALF_REQUEST, closed_after, open_slow};

const URL: &str = "http://demo.vimana.test/demo.Adder/AddFloats";

fn config(max_connections: usize, header: Duration) -> GatewayConfig {
    GatewayConfig {
        connections: ConnLimits {
            max_connections,
            header_read_timeout: header,
            ..ConnLimits::default()
        },
        ..GatewayConfig::default()
    }
}

async fn adds(addr: std::net::SocketAddr) {
    let mut h2 = client::h2c(addr).await;
    let reply = grpc(&mut h2, URL, &common::encode_pair(1.0, 2.0), &[]).await;
    assert_eq!(reply.status, 0, "{reply:?}");
    assert_eq!(sum_of(&reply.messages[0]), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_sent_requests_close_at_the_header_timeout() {
    let header = Duration::from_secs(2);
    let gw = common::start(common::demo_routes(), false, config(4096, header)).await;
    let slow = open_slow(gw.addr, 2000, HALF_REQUEST).await;
    // A normal call answers while the 2,000 are held.
    tokio::time::timeout(Duration::from_secs(5), adds(gw.addr))
        .await
        .expect("a normal call answers while 2,000 slow connections are held");
    let closed = closed_after(slow, header + Duration::from_secs(4)).await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} of 2000 half-sent connections still open");
    let early = closed
        .iter()
        .flatten()
        .filter(|d| **d < header - Duration::from_millis(300))
        .count();
    assert_eq!(
        early, 0,
        "{early} connections closed before the header timeout"
    );
    adds(gw.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_cap_connections_are_refused_and_held_ones_dropped_at_the_timeout() {
    let header = Duration::from_secs(2);
    let gw = common::start(common::demo_routes(), false, config(100, header)).await;
    let held = open_slow(gw.addr, 100, HALF_REQUEST).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let beyond = open_slow(gw.addr, 20, HALF_REQUEST).await;
    let refused = closed_after(beyond, Duration::from_secs(1)).await;
    assert!(
        refused.iter().all(|c| c.is_some()),
        "connections beyond the cap of 100 were not refused: {refused:?}"
    );
    let dropped = closed_after(held, header + Duration::from_secs(3)).await;
    assert!(
        dropped
            .iter()
            .all(|c| c.is_some_and(|d| d >= header - Duration::from_millis(300))),
        "held connections not dropped at the header timeout: {dropped:?}"
    );
    // Capacity is back once they are gone.
    tokio::time::timeout(Duration::from_secs(5), adds(gw.addr))
        .await
        .expect("a normal call answers after the held connections were dropped");
}
