//! Slow clients cannot hold the API's connections: half-sent requests are
//! closed at the header-read timeout while a normal request still
//! answers, and beyond the connection cap new connections are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use vimana_api::{Action, ActionOutcome, ApiError, Event, LogRecord, WorkloadName};
use vimana_core::CoreApi;
use vimana_listen::testing::{closed_after, open_slow};
use vimana_server::ConnLimits;

const TOKEN: &str = "tok-slow";
const HALF: &[u8] = b"GET /v1/system HTTP/1.1\r\nHost: localhost\r\n";

/// A core that knows nothing: `GET /v1/system` needs none.
struct NoCore(broadcast::Sender<Event>);

#[async_trait]
impl CoreApi for NoCore {
    async fn handle(&self, _action: Action) -> Result<ActionOutcome, ApiError> {
        Err(ApiError::Internal("no core in this test".into()))
    }
    fn subscribe_logs(&self, _: &WorkloadName) -> Result<broadcast::Receiver<LogRecord>, ApiError> {
        Err(ApiError::Internal("no core in this test".into()))
    }
    fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

async fn server(max_connections: usize, header: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let core = Arc::new(NoCore(broadcast::channel(4).0));
    let limits = ConnLimits {
        max_connections,
        header_read_timeout: header,
        ..ConnLimits::default()
    };
    tokio::spawn(async move {
        vimana_server::serve_tcp_listener_with(
            listener,
            core,
            TOKEN.into(),
            limits,
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    addr
}

/// `GET /v1/system` with the token answers 200.
async fn answers(addr: SocketAddr) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /v1/system HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .expect("a normal request answers while slow connections are held")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_sent_requests_close_at_the_header_timeout() {
    let header = Duration::from_secs(2);
    let addr = server(4096, header).await;
    let slow = open_slow(addr, 2000, HALF).await;
    answers(addr).await;
    let closed = closed_after(slow, header + Duration::from_secs(4)).await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} of 2000 half-sent connections still open");
    let early = closed
        .iter()
        .flatten()
        .filter(|d| **d < header - Duration::from_millis(300))
        .count();
    assert_eq!(early, 0, "{early} closed before the header timeout");
    answers(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_cap_connections_are_refused_and_held_ones_dropped_at_the_timeout() {
    let header = Duration::from_secs(2);
    let addr = server(100, header).await;
    let held = open_slow(addr, 100, HALF).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let beyond = open_slow(addr, 20, HALF).await;
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
    answers(addr).await;
}
