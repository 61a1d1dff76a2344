//! The gateway's listeners, bound when the first Domain is applied (a
//! daemon that only runs spacecores opens no ports).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use vimana_gateway::{CancellationToken, Gateway};

/// Where to listen (`None` = that listener is off).
#[derive(Debug, Clone, Default)]
pub struct ListenConfig {
    /// TLS with SNI routing, e.g. `127.0.0.1:8443`.
    pub tls: Option<String>,
    /// Plaintext HTTP/2 (prior knowledge) and HTTP/1.1, e.g. `127.0.0.1:8080`.
    pub h2c: Option<String>,
    /// A JSON file the bound addresses are written to (`{"tls": .., "h2c": ..}`).
    pub state_file: Option<PathBuf>,
}

/// The bound addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    pub tls: Option<SocketAddr>,
    pub h2c: Option<SocketAddr>,
}

impl Bound {
    /// `https://…, h2c http://…` for status messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.tls {
            parts.push(format!("TLS {a}"));
        }
        if let Some(a) = self.h2c {
            parts.push(format!("h2c {a}"));
        }
        if parts.is_empty() {
            "no listener (both [gateway] tls_listen and h2c_listen are off)".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

pub(crate) struct Listeners {
    config: ListenConfig,
    bound: Option<Bound>,
    shutdown: CancellationToken,
}

impl Listeners {
    pub(crate) fn new(config: ListenConfig, shutdown: CancellationToken) -> Self {
        Self {
            config,
            bound: None,
            shutdown,
        }
    }

    pub(crate) fn bound(&self) -> Option<Bound> {
        self.bound
    }

    /// Binds the listeners once; later calls return the same addresses.
    pub(crate) fn ensure(
        &mut self,
        gateway: &Arc<Gateway>,
        rt: &tokio::runtime::Handle,
    ) -> Result<Bound, String> {
        if let Some(b) = self.bound {
            return Ok(b);
        }
        let tls = bind(self.config.tls.as_deref(), "tls_listen", rt)?;
        let h2c = bind(self.config.h2c.as_deref(), "h2c_listen", rt)?;
        let bound = Bound {
            tls: tls.as_ref().and_then(|l| l.local_addr().ok()),
            h2c: h2c.as_ref().and_then(|l| l.local_addr().ok()),
        };
        if let Some(l) = tls {
            let (g, token) = (Arc::clone(gateway), self.shutdown.clone());
            rt.spawn(async move {
                if let Err(e) = g.serve_tls(l, token).await {
                    tracing::error!(error = %e, "TLS gateway listener failed");
                }
            });
        }
        if let Some(l) = h2c {
            let (g, token) = (Arc::clone(gateway), self.shutdown.clone());
            rt.spawn(async move {
                if let Err(e) = g.serve_h2c(l, token).await {
                    tracing::error!(error = %e, "h2c gateway listener failed");
                }
            });
        }
        if let Some(path) = &self.config.state_file {
            let json = serde_json::json!({
                "tls": bound.tls.map(|a| a.to_string()),
                "h2c": bound.h2c.map(|a| a.to_string()),
            });
            let tmp = path.with_extension("json.tmp");
            let written =
                std::fs::write(&tmp, json.to_string()).and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot record the gateway addresses");
            }
        }
        tracing::info!(listen = %bound.describe(), "gateway listening");
        self.bound = Some(bound);
        Ok(bound)
    }
}

fn bind(
    addr: Option<&str>,
    key: &str,
    rt: &tokio::runtime::Handle,
) -> Result<Option<tokio::net::TcpListener>, String> {
    let Some(addr) = addr.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!(
            "cannot listen on {addr}: {e}; free the port or change [gateway] {key} in config.toml"
        )
    })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let _guard = rt.enter();
    tokio::net::TcpListener::from_std(std_listener)
        .map(Some)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}
