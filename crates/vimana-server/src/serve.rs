//! Serving the router on a unix socket (no token, mode 0600) or on TCP
//! (bearer token required), within connection limits (vimana-listen:
//! cap, header-read and idle timeouts), with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tower::ServiceExt;
use vimana_core::CoreApi;
use vimana_listen::{Accept, CancellationToken, ConnLimits};

use crate::error::ServerError;
use crate::{Shutdown, build_router};

/// Removes a stale socket at `path`; refuses to remove anything that is
/// not a socket.
fn remove_stale_socket(path: &Path) -> Result<(), ServerError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ServerError::RemoveStale {
            path: path.to_path_buf(),
            source,
        }),
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(_) => Err(ServerError::NotASocket {
            path: path.to_path_buf(),
        }),
    }
}

/// Serves the API on a unix socket at `path` until `shutdown` completes.
///
/// A socket file already at `path` is removed as stale (the caller holds
/// the daemon lock). The socket is restricted to mode 0600 before the first
/// connection is accepted; that mode is the protection, so no token is
/// asked for. The socket file is removed again after a clean shutdown.
pub async fn serve_unix(
    path: &Path,
    core: Arc<dyn CoreApi>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_unix_with(path, core, ConnLimits::default(), shutdown).await
}

/// Like [`serve_unix`], within `limits` (connection cap, timeouts).
pub async fn serve_unix_with(
    path: &Path,
    core: Arc<dyn CoreApi>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Bind {
        addr: path.display().to_string(),
        source,
    })?;
    if let Err(source) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        drop(listener);
        let _ = std::fs::remove_file(path);
        return Err(ServerError::Permissions {
            path: path.to_path_buf(),
            source,
        });
    }
    tracing::info!(socket = %path.display(), "API listening on unix socket");
    let (tx, rx) = watch::channel(false);
    let app = build_router(core, None, Shutdown::new(rx));
    let result = run(listener, app, limits, shutdown, tx).await;
    if result.is_ok() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Serves the API on TCP at `addr` until `shutdown` completes; every
/// request must carry `Authorization: Bearer <token>`.
pub async fn serve_tcp(
    addr: SocketAddr,
    core: Arc<dyn CoreApi>,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_tcp_with(addr, core, token, ConnLimits::default(), shutdown).await
}

/// Like [`serve_tcp`], within `limits` (connection cap, timeouts).
pub async fn serve_tcp_with(
    addr: SocketAddr,
    core: Arc<dyn CoreApi>,
    token: String,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if token.is_empty() {
        return Err(ServerError::EmptyToken);
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    serve_tcp_listener_with(listener, core, token, limits, shutdown).await
}

/// Like [`serve_tcp`] on an already bound listener (e.g. port 0 in tests).
pub async fn serve_tcp_listener(
    listener: TcpListener,
    core: Arc<dyn CoreApi>,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_tcp_listener_with(listener, core, token, ConnLimits::default(), shutdown).await
}

/// Like [`serve_tcp_listener`], within `limits` (connection cap, timeouts).
pub async fn serve_tcp_listener_with(
    listener: TcpListener,
    core: Arc<dyn CoreApi>,
    token: String,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if token.is_empty() {
        return Err(ServerError::EmptyToken);
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "API listening on TCP (bearer token required)");
    }
    let (tx, rx) = watch::channel(false);
    let app = build_router(core, Some(token), Shutdown::new(rx));
    run(listener, app, limits, shutdown, tx).await
}

async fn run<L>(
    listener: L,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop_streams: watch::Sender<bool>,
) -> Result<(), ServerError>
where
    L: Accept,
{
    let token = CancellationToken::new();
    let cancel = token.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        // End streaming responses so graceful shutdown does not wait on
        // `follow` clients.
        let _ = stop_streams.send(true);
        cancel.cancel();
    });
    vimana_listen::serve(listener, limits, token, move |io, _peer, conn| {
        let app = app.clone();
        let service = service_fn(move |req: Request<Incoming>| app.clone().oneshot(req));
        vimana_listen::serve_http(io, service, conn)
    })
    .await;
    signal.abort();
    Ok(())
}
