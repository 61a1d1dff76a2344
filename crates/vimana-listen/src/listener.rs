//! The accept loop: the connection cap, a task per connection, and a
//! bounded drain at shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ConnLimits;

/// A listener of byte streams.
pub trait Accept: Send + 'static {
    /// One accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Where it comes from, for logs.
    type Peer: std::fmt::Debug + Send + 'static;
    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Peer)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;
    type Peer = std::net::SocketAddr;
    async fn accept(&mut self) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

impl Accept for UnixListener {
    type Io = UnixStream;
    type Peer = ();
    async fn accept(&mut self) -> std::io::Result<(UnixStream, ())> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((stream, ()))
    }
}

/// What a connection's handler gets besides its stream: the limits and the
/// listener's shutdown signal (pass it on to [`crate::serve_http`]).
#[derive(Debug, Clone)]
pub struct Conn {
    pub limits: Arc<ConnLimits>,
    pub shutdown: CancellationToken,
}

/// Accepts connections until `shutdown` is cancelled, running `handle` on
/// its own task for each, at most `limits.max_connections` at once: one
/// beyond the cap is closed as soon as it is accepted. At shutdown it stops
/// accepting and waits up to `limits.drain_timeout` for the connections.
pub async fn serve<L, F, Fut>(
    mut listener: L,
    limits: ConnLimits,
    shutdown: CancellationToken,
    handle: F,
) where
    L: Accept,
    F: Fn(L::Io, L::Peer, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let conn = Conn {
        limits: Arc::new(limits),
        shutdown: shutdown.clone(),
    };
    let tracker = TaskTracker::new();
    let refused = AtomicU64::new(0);
    loop {
        let (io, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(io);
            let n = refused.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() || n == 0 {
                tracing::warn!(
                    ?peer,
                    max_connections = conn.limits.max_connections,
                    refused = n + 1,
                    "connection refused: the listener is at its connection limit (max_connections)"
                );
            }
            continue;
        };
        let fut = handle(io, peer, conn.clone());
        tracker.spawn(async move {
            fut.await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let drain = conn.limits.drain_timeout + Duration::from_secs(1);
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout");
    }
}
