//! Serving one HTTP/1.1 or HTTP/2 connection within the limits.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::activity::{Activity, Tracked};
use crate::listener::Conn;

/// How long an idle connection told to close may take before it is
/// dropped.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge or ALPN) on `io` until the
/// client closes, a timeout of [`crate::ConnLimits`] hits, or the listener
/// shuts down (then requests in flight get `drain_timeout` to finish).
pub async fn serve_http<I, S, B>(io: I, service: S, conn: Conn)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = &conn.limits;
    let activity = Activity::new();
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let check = (limits.header_read_timeout.min(limits.idle_timeout) / 8)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check);
    let mut close_by: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.shutdown.cancelled(), if close_by.is_none() => {
                served.as_mut().graceful_shutdown();
                close_by = Some(tokio::time::Instant::now() + limits.drain_timeout);
            }
            _ = tick.tick(), if close_by.is_none() => {
                let (idle, ever) = activity.idle();
                let limit = if ever { limits.idle_timeout } else { limits.header_read_timeout };
                if idle >= limit {
                    tracing::debug!(?idle, first_request = !ever, "closing an idle connection");
                    served.as_mut().graceful_shutdown();
                    close_by = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                }
            }
            () = sleep_until(close_by), if close_by.is_some() => return,
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
