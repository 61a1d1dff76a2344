//! HashiCorp go-plugin's gRPC protocol in Rust.
//!
//! Host side: [`launch`] a plugin binary (magic cookie, version
//! negotiation, handshake line, AutoMTLS with certificate pinning, health
//! check), [`reattach`] to one started earlier, and drive it through
//! [`PluginClient`] (app channel, stdio stream, stderr log lines, shutdown).
//!
//! Plugin side: [`serve::serve`] implements what `plugin.Serve` does for a
//! go-plugin GRPCServer plugin.

mod client;
mod config;
mod connect;
mod error;
mod handshake;
mod hclog;
mod launch;
mod output;
mod process;
pub mod proto;
mod reattach;
pub mod serve;
pub use vimana_capture::tail;
pub mod tls;

pub use client::{PluginClient, ReattachConfig, StdioChannel, StdioChunk};
pub use config::{HandshakeConfig, LaunchConfig, Output};
pub use error::GoPluginError;
pub use handshake::{CORE_PROTOCOL_VERSION, Handshake, parse_handshake_line};
pub use hclog::{LogLine, parse_hclog_line};
pub use launch::{Spawned, launch, spawn};
pub use process::{kill_session, own_session, pid_alive, pid_start_time};
pub use reattach::reattach;

/// The health-check service name go-plugin registers as SERVING.
pub const GRPC_SERVICE_NAME: &str = "plugin";
