//! The crate's single error type. Every message names the plugin, the rule
//! that was broken and, where possible, how to fix it.

use std::path::PathBuf;
use std::time::Duration;

/// Errors from launching, reattaching to, talking to or serving a go-plugin.
#[derive(Debug, thiserror::Error)]
pub enum GoPluginError {
    #[error("plugin {} does not exist: check the path", path.display())]
    NotFound { path: PathBuf },

    #[error("plugin {} is not executable: chmod +x it", path.display())]
    NotExecutable { path: PathBuf },

    #[error("plugin {} could not be started: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("plugin {}: cannot open output file {}: {source}", path.display(), file.display())]
    OutputFile {
        path: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "plugin {} printed no handshake line within {}s: is it a go-plugin plugin built with magic cookie {cookie}?",
        path.display(),
        timeout.as_secs_f64()
    )]
    HandshakeTimeout {
        path: PathBuf,
        timeout: Duration,
        cookie: String,
    },

    #[error(
        "plugin {} exited with {status} before printing its handshake line; {stderr_tail}",
        path.display()
    )]
    ExitedBeforeHandshake {
        path: PathBuf,
        status: String,
        stderr_tail: String,
    },

    #[error(
        "plugin {} printed an invalid handshake line {line:?}: expected CORE|APP|NETWORK|ADDR|PROTOCOL|CERT ({reason})",
        path.display()
    )]
    InvalidHandshake {
        path: PathBuf,
        line: String,
        reason: String,
    },

    #[error(
        "plugin {} speaks go-plugin core protocol {got}; vimana supports only core protocol 1: rebuild it with a compatible hashicorp/go-plugin",
        path.display()
    )]
    CoreProtocol { path: PathBuf, got: String },

    #[error(
        "plugin {} chose app protocol version {got}, but the host offered only {offered:?}: use a plugin built for one of these versions",
        path.display()
    )]
    AppVersion {
        path: PathBuf,
        got: u32,
        offered: Vec<u32>,
    },

    #[error(
        "plugin {} uses protocol {protocol:?}; vimana supports only gRPC plugins (go-plugin GRPCServer)",
        path.display()
    )]
    NotGrpc { path: PathBuf, protocol: String },

    #[error("plugin {}: TLS setup failed: {reason}", path.display())]
    Tls { path: PathBuf, reason: String },

    #[error("plugin {} at {network}:{address}: cannot connect: {reason}", path.display())]
    Connect {
        path: PathBuf,
        network: String,
        address: String,
        reason: String,
    },

    #[error("plugin {} failed its health check (grpc.health.v1 service \"plugin\"): {reason}", path.display())]
    Unhealthy { path: PathBuf, reason: String },

    #[error("plugin {}: gRPC call {call} failed: {status}", path.display())]
    Rpc {
        path: PathBuf,
        call: &'static str,
        status: Box<tonic::Status>,
    },

    #[error("cannot reattach to plugin pid {pid}: {reason}")]
    Reattach { pid: u32, reason: String },

    #[error("plugin serve: {0}")]
    Serve(String),

    #[error("plugin {}: I/O error: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
