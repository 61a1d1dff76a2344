//! Errors of the serving functions (binding, socket setup, I/O).

use std::path::PathBuf;

/// Why [`crate::serve_unix`] or [`crate::serve_tcp`] could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Something that is not a socket sits where the socket should go.
    #[error(
        "{} exists and is not a socket; move it away so the daemon can create its socket there",
        path.display()
    )]
    NotASocket { path: PathBuf },
    /// The stale socket file could not be removed.
    #[error("could not remove the stale socket {}: {source}", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Binding the listener failed.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The socket's mode could not be restricted to 0600.
    #[error("could not set mode 0600 on the socket {}: {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TCP listener was asked for without a token.
    #[error("the TCP listener needs a non-empty bearer token (VIMANA_HOME/token)")]
    EmptyToken,
    /// Serving failed.
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
}
