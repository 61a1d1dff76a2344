//! The listeners: h2c (HTTP/2 prior knowledge and HTTP/1.1 on one port)
//! and TLS (ALPN h2 and http/1.1), both with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::GatewayError;
use crate::gateway::{Gateway, Inner};

/// How long a graceful shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Gateway {
    /// Serves plain-text connections from `listener` until `shutdown` is
    /// cancelled: HTTP/2 with prior knowledge (gRPC) and HTTP/1.1 (JSON,
    /// plain HTTP). Then stops accepting, lets open connections finish
    /// (up to 10 s) and returns.
    pub async fn serve_h2c(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), GatewayError> {
        self.serve(listener, shutdown, None).await
    }

    /// Serves TLS connections from `listener` until `shutdown` is
    /// cancelled; certificates are chosen by SNI (see the crate docs).
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), GatewayError> {
        let config = crate::tls::server_config(Arc::clone(&self.inner))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        self.serve(listener, shutdown, Some(acceptor)).await
    }

    async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
        tls: Option<TlsAcceptor>,
    ) -> Result<(), GatewayError> {
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let inner = Arc::clone(&self.inner);
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => connection(inner, stream, None, watcher).await,
                    Some(acceptor) => {
                        let timeout = inner.config.handshake_timeout;
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let sni = tls.get_ref().1.server_name().map(Arc::<str>::from);
                                connection(inner, tls, sni, watcher).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout");
        }
        Ok(())
    }
}

async fn connection<IO>(inner: Arc<Inner>, io: IO, sni: Option<Arc<str>>, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        service_fn(move |req| crate::dispatch::handle(Arc::clone(&inner), sni.clone(), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
