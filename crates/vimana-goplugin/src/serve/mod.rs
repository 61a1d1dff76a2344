//! Plugin side: what go-plugin's `plugin.Serve` does for a gRPC plugin.

mod incoming;
mod services;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::Server;

pub use services::StdioWriter;

use crate::config::HandshakeConfig;
use crate::error::GoPluginError;
use crate::handshake::Handshake;
use crate::proto::{grpc_broker_server, grpc_controller_server, grpc_stdio_server};
use crate::tls;

/// Plugin-side configuration.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// `app_versions[0]` is the version we speak (others: also accepted).
    pub handshake: HandshakeConfig,
}

/// How long graceful stop may take after Shutdown before we return anyway.
const GRACEFUL_STOP: Duration = Duration::from_secs(2);

/// Picks the highest of `ours` that the host offered in
/// `PLUGIN_PROTOCOL_VERSIONS` (`offered`); else `ours[0]`, leaving the host
/// to report the mismatch (as go-plugin does).
pub fn negotiate_version(ours: &[u32], offered: Option<&str>) -> Option<u32> {
    let offered: Vec<u32> = offered
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut sorted = ours.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .into_iter()
        .find(|v| offered.contains(v))
        .or_else(|| ours.first().copied())
}

/// Serves `routes` as a go-plugin gRPC plugin; see [`serve_with_stdio`].
pub async fn serve(cfg: ServeConfig, routes: Routes) -> Result<(), GoPluginError> {
    serve_with_stdio(cfg, routes, StdioWriter::new()).await
}

/// Checks the magic cookie (wrong: message on stderr, exit status 1),
/// negotiates the app version, listens on a unix socket in a fresh temp dir,
/// serves health ("plugin" SERVING), GRPCController, GRPCStdio (fed by
/// `stdio`), a minimal GRPCBroker and `routes` (which must not contain a
/// health service), with AutoMTLS when `PLUGIN_CLIENT_CERT` is set; prints
/// the handshake line and returns after the host calls Shutdown.
pub async fn serve_with_stdio(
    cfg: ServeConfig,
    routes: Routes,
    stdio: StdioWriter,
) -> Result<(), GoPluginError> {
    let hs = &cfg.handshake;
    if hs.cookie_key.is_empty() || hs.cookie_value.is_empty() {
        return Err(GoPluginError::Serve(
            "ServeConfig has no magic cookie key or value".into(),
        ));
    }
    if std::env::var(&hs.cookie_key).ok().as_deref() != Some(hs.cookie_value.as_str()) {
        eprintln!(
            "This binary is a plugin. These are not meant to be executed directly.\n\
             Please execute the program that consumes these plugins, which will\n\
             load any plugins automatically"
        );
        std::process::exit(1);
    }
    let offered = std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok();
    let app_version = negotiate_version(&hs.app_versions, offered.as_deref())
        .ok_or_else(|| GoPluginError::Serve("ServeConfig has no app_versions".into()))?;

    let dir = tempfile::Builder::new()
        .prefix("plugin")
        .tempdir()
        .map_err(|e| GoPluginError::Serve(format!("cannot create socket dir: {e}")))?;
    let sock = dir.path().join("plugin.sock");
    let listener = tokio::net::UnixListener::bind(&sock)
        .map_err(|e| GoPluginError::Serve(format!("cannot listen on {}: {e}", sock.display())))?;

    let (server_tls, server_cert_der) = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => {
            let client = tls::cert_der_from_pem(&pem).map_err(GoPluginError::Serve)?;
            // P-256: any ECDSA curve interoperates (the host pins the exact
            // certificate), and P-256 signs several times faster than P-521.
            let own = tls::generate_cert(false).map_err(GoPluginError::Serve)?;
            let cfg = tls::server_config(&own, client.to_vec()).map_err(GoPluginError::Serve)?;
            (Some(Arc::new(cfg)), Some(own.cert_der))
        }
        _ => (None, None),
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(
            crate::GRPC_SERVICE_NAME,
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let router = Server::builder()
        .add_routes(routes)
        .add_service(health)
        .add_service(grpc_controller_server::GrpcControllerServer::new(
            services::Controller {
                shutdown: shutdown_tx,
            },
        ))
        .add_service(grpc_stdio_server::GrpcStdioServer::new(services::Stdio {
            writer: stdio,
            stopped: shutdown_rx.clone(),
        }))
        .add_service(grpc_broker_server::GrpcBrokerServer::new(
            services::Broker {
                stopped: shutdown_rx.clone(),
            },
        ));

    tokio::spawn(ignore_interrupts());

    let line = Handshake {
        app_version,
        network: "unix".into(),
        address: sock.display().to_string(),
        server_cert_der,
        mux: false,
    }
    .to_line();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| GoPluginError::Serve(format!("cannot print the handshake line: {e}")))?;
    }

    let mut stop_rx = shutdown_rx.clone();
    let signal = async move {
        let _ = stop_rx.wait_for(|v| *v).await;
    };
    let server =
        router.serve_with_incoming_shutdown(incoming::incoming(listener, server_tls), signal);
    let mut deadline_rx = shutdown_rx;
    let deadline = async move {
        let _ = deadline_rx.wait_for(|v| *v).await;
        tokio::time::sleep(GRACEFUL_STOP).await;
    };
    let result = tokio::select! {
        r = server => r.map_err(|e| GoPluginError::Serve(crate::connect::error_chain(&e))),
        () = deadline => Ok(()),
    };
    drop(dir);
    result
}

/// go-plugin plugins ignore SIGINT (the host's Ctrl-C reaches the whole
/// process group; the host shuts plugins down itself).
async fn ignore_interrupts() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut sig) = signal(SignalKind::interrupt()) else {
        return;
    };
    while sig.recv().await.is_some() {
        tracing::debug!("plugin received interrupt signal, ignoring");
    }
}

#[cfg(test)]
mod tests {
    use super::negotiate_version;

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate_version(&[1], Some("1")), Some(1));
        assert_eq!(negotiate_version(&[1, 2], Some("1,2")), Some(2));
        assert_eq!(negotiate_version(&[2, 1], Some("1")), Some(1));
        assert_eq!(negotiate_version(&[2], Some("1,3")), Some(2));
        assert_eq!(negotiate_version(&[2], None), Some(2));
        assert_eq!(negotiate_version(&[], Some("1")), None);
    }
}
