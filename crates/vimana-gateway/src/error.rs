//! Errors of the gateway's setup (not of requests: those end with a
//! [`vimana_grpc::Status`] or an HTTP status).

use std::path::PathBuf;

/// Why the gateway could not be set up or could not keep serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Reading or writing a file of the local CA failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Creating or signing a certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused a key, a certificate or the configuration.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A domain's TLS material is not usable.
    #[error("domain {domain}: invalid TLS material: {reason}")]
    TlsMaterial {
        /// The domain id.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A domain's descriptor sets could not be decoded or indexed for
    /// reflection.
    #[error("domain {domain}: reflection: {reason}")]
    Reflection {
        /// The domain id.
        domain: String,
        /// What is wrong.
        reason: String,
    },
    /// Accepting a connection failed.
    #[error("accept: {0}")]
    Accept(#[source] std::io::Error),
}
