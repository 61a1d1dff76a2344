//! Turning oci-client errors into [`OciError`]s, including telling a plain
//! http registry apart from one that is simply down.

use std::time::Duration;

use oci_client::Reference;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::OciConfig;
use crate::error::OciError;

/// How long the plain-http probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether an operation reads or writes the registry (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation {
    Pull,
    Push,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Pull => "pull",
            Operation::Push => "push",
        }
    }
}

/// Classify `err`, raised while working on `reference` (as the caller wrote it).
pub(crate) async fn classify(
    cfg: &OciConfig,
    parsed: &Reference,
    reference: &str,
    operation: Operation,
    err: OciDistributionError,
) -> OciError {
    let registry = parsed.resolve_registry().to_string();
    let scheme = cfg.scheme(&registry);
    match &err {
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            if scheme == "https" && speaks_plain_http(&registry).await {
                return OciError::InsecureRegistry { registry };
            }
            OciError::Unreachable {
                registry,
                scheme,
                reference: reference.to_string(),
                detail: error_chain(&err),
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => OciError::Unauthorized {
            registry,
            reference: reference.to_string(),
            operation: operation.as_str(),
        },
        OciDistributionError::ImageManifestNotFoundError(_) => OciError::NotFound {
            reference: reference.to_string(),
        },
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) =>
        {
            OciError::NotFound {
                reference: reference.to_string(),
            }
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            OciError::Unauthorized {
                registry,
                reference: reference.to_string(),
                operation: operation.as_str(),
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => OciError::NotFound {
            reference: reference.to_string(),
        },
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => OciError::Unauthorized {
            registry,
            reference: reference.to_string(),
            operation: operation.as_str(),
        },
        _ => OciError::Registry {
            reference: reference.to_string(),
            operation: operation.as_str(),
            detail: error_chain(&err),
        },
    }
}

/// The error and all its sources, joined with `: `.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Whether `registry` answers a plain-text `GET /v2/` with an HTTP status line.
///
/// Called only after an https connection failed, to turn a puzzling TLS error
/// into advice about `insecure_registries`. The probe carries no credentials.
pub(crate) async fn speaks_plain_http(registry: &str) -> bool {
    let address = with_default_port(registry);
    let probe = async {
        let mut stream = TcpStream::connect(address.as_str()).await.ok()?;
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {registry}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/")
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(true))
    )
}

/// `host:port`, adding the https port when the registry names none.
fn with_default_port(registry: &str) -> String {
    let after_host = registry.rsplit(']').next().unwrap_or(registry);
    if after_host.contains(':') {
        registry.to_string()
    } else {
        format!("{registry}:443")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_is_added_only_when_missing() {
        assert_eq!(with_default_port("reg.example"), "reg.example:443");
        assert_eq!(with_default_port("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(with_default_port("[::1]:5000"), "[::1]:5000");
        assert_eq!(with_default_port("[::1]"), "[::1]:443");
    }

    #[tokio::test]
    async fn closed_port_is_not_plain_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(!speaks_plain_http(&addr).await);
    }
}
