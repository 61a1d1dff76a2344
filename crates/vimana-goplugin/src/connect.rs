//! gRPC channel to a plugin over a unix socket or TCP, optionally wrapped in
//! AutoMTLS, plus the go-plugin health check.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};

use crate::error::GoPluginError;

/// Any bidirectional byte stream.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Where and how to reach a plugin's gRPC server.
#[derive(Clone)]
pub(crate) struct Target {
    pub network: String,
    pub address: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

async fn dial(target: Target) -> io::Result<TokioIo<Box<dyn Io>>> {
    let raw: Box<dyn Io> = match target.network.as_str() {
        "unix" => Box::new(tokio::net::UnixStream::connect(&target.address).await?),
        "tcp" => {
            let s = tokio::net::TcpStream::connect(&target.address).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported network {other:?}"),
            ));
        }
    };
    let io: Box<dyn Io> = match target.tls {
        None => raw,
        Some(cfg) => {
            let name = ServerName::try_from("localhost")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, raw)
                .await?;
            Box::new(tls)
        }
    };
    Ok(TokioIo::new(io))
}

/// Connects (eagerly, within `timeout`) and returns a channel that
/// reconnects through the same dialer if the connection drops.
pub(crate) async fn connect(
    path: &Path,
    target: &Target,
    timeout: Duration,
) -> Result<Channel, GoPluginError> {
    let err = |reason: String| GoPluginError::Connect {
        path: path.to_path_buf(),
        network: target.network.clone(),
        address: target.address.clone(),
        reason,
    };
    let t = target.clone();
    let connector = tower::service_fn(move |_uri: http::Uri| dial(t.clone()));
    let endpoint = Endpoint::from_static("http://localhost").connect_timeout(timeout);
    match tokio::time::timeout(timeout, endpoint.connect_with_connector(connector)).await {
        Ok(Ok(ch)) => Ok(ch),
        Ok(Err(e)) => Err(err(error_chain(&e))),
        Err(_) => Err(err(format!("timed out after {}s", timeout.as_secs_f64()))),
    }
}

/// `grpc.health.v1.Health/Check` for service "plugin" must be SERVING.
pub(crate) async fn check_health(
    path: &Path,
    channel: Channel,
    timeout: Duration,
) -> Result<(), GoPluginError> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let unhealthy = |reason: String| GoPluginError::Unhealthy {
        path: path.to_path_buf(),
        reason,
    };
    let mut client = HealthClient::new(channel);
    let req = HealthCheckRequest {
        service: crate::GRPC_SERVICE_NAME.to_string(),
    };
    let resp = tokio::time::timeout(timeout, client.check(req))
        .await
        .map_err(|_| unhealthy(format!("no answer within {}s", timeout.as_secs_f64())))?
        .map_err(|s| unhealthy(format!("{}: {}", s.code(), s.message())))?;
    let status = resp.into_inner().status;
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        let name = ServingStatus::try_from(status)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| status.to_string());
        Err(unhealthy(format!("status is {name}, not SERVING")))
    }
}

/// Error with its `source()` chain, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}
