//! The listeners: h2c (HTTP/2 prior knowledge and HTTP/1.1 on one port)
//! and TLS (ALPN h2 and http/1.1), both within `GatewayConfig::connections`
//! (connection cap, header-read and idle timeouts, h2 keepalive) and with
//! graceful shutdown.

use std::sync::Arc;

use hyper::service::service_fn;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use vimana_listen::Conn;

use crate::budget::ConnBudget;
use crate::error::GatewayError;
use crate::gateway::{Gateway, Inner};

impl Gateway {
    /// Serves plain-text connections from `listener` until `shutdown` is
    /// cancelled: HTTP/2 with prior knowledge (gRPC) and HTTP/1.1 (JSON,
    /// plain HTTP). Then stops accepting, lets open connections finish
    /// (up to the drain timeout) and returns.
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
        let limits = self.inner.config.connections.clone();
        let inner = Arc::clone(&self.inner);
        vimana_listen::serve(listener, limits, shutdown, move |stream, peer, conn| {
            let inner = Arc::clone(&inner);
            let tls = tls.clone();
            async move {
                match tls {
                    None => connection(inner, stream, None, conn).await,
                    Some(acceptor) => {
                        let timeout = inner.config.handshake_timeout;
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let sni = tls.get_ref().1.server_name().map(Arc::<str>::from);
                                connection(inner, tls, sni, conn).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            }
        })
        .await;
        Ok(())
    }
}

async fn connection<IO>(inner: Arc<Inner>, io: IO, sni: Option<Arc<str>>, conn: Conn)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let budget = ConnBudget::new(inner.config.decode_memory_per_connection);
    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(budget.clone());
        crate::dispatch::handle(Arc::clone(&inner), sni.clone(), req)
    });
    vimana_listen::serve_http(io, service, conn).await;
}
