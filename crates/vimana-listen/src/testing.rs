//! Slow-client probes for tests of a listener: connections that send half
//! a request and never finish it, and when the server closes them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Half of an HTTP/1.1 request: the request line and one header, no
/// blank line.
pub const HALF_REQUEST: &[u8] =
    b"POST /demo.Adder/AddFloats HTTP/1.1\r\nHost: demo.vimana.test\r\n";

/// Opens `n` connections to `addr`, each sending `partial` and nothing
/// more. Raises the descriptor limit to fit first.
pub async fn open_slow(addr: SocketAddr, n: usize, partial: &[u8]) -> Vec<(TcpStream, Instant)> {
    crate::raise_nofile(2 * n as u64 + 1024);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("connection {i} of {n} to {addr} failed: {e}"),
        };
        // A refused connection may already be closed: ignore write errors.
        let _ = s.write_all(partial).await;
        out.push((s, Instant::now()));
    }
    out
}

/// How long after it was opened each connection was closed by the server
/// (read gave EOF or an error), waiting at most until `deadline` from now;
/// `None` for connections still open then.
pub async fn closed_after(
    conns: Vec<(TcpStream, Instant)>,
    deadline: Duration,
) -> Vec<Option<Duration>> {
    let until = tokio::time::Instant::now() + deadline;
    let waits = conns.into_iter().map(|(mut s, opened)| async move {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(until, s.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
                // An error response (e.g. 408) before the close.
                Ok(Ok(_)) => continue,
            }
        }
    });
    futures_join_all(waits).await
}

async fn futures_join_all<
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
>(
    futs: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => panic!("probe task failed: {e}"),
        }
    }
    out
}
