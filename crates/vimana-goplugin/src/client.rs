//! A connected plugin: its process, gRPC channel and the go-plugin services.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, future::ready};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::connect::check_health;
use crate::error::GoPluginError;
use crate::hclog::LogLine;
use crate::process::Proc;
use crate::proto::{self, grpc_controller_client::GrpcControllerClient};
use crate::proto::{grpc_stdio_client::GrpcStdioClient, stdio_data};

/// Everything needed to reconnect to a running plugin from another host
/// process (persist it as JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReattachConfig {
    pub pid: u32,
    /// /proc/<pid>/stat field 22, to detect pid reuse.
    pub pid_start_time: Option<u64>,
    pub network: String,
    pub address: String,
    pub app_version: u32,
    /// The plugin's AutoMTLS server certificate (None: plaintext).
    pub server_cert_der: Option<Vec<u8>>,
    /// The host's AutoMTLS client certificate and key.
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
}

/// Which of the plugin's output streams a [`StdioChunk`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioChannel {
    Stdout,
    Stderr,
}

/// Data the plugin wrote to its (go-plugin redirected) stdout/stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StdioChunk {
    pub channel: StdioChannel,
    pub data: Bytes,
}

/// A running, connected, healthy plugin.
#[derive(Debug)]
pub struct PluginClient {
    pub(crate) path: PathBuf,
    pub(crate) proc: Proc,
    pub(crate) reattach: ReattachConfig,
    pub(crate) channel: Channel,
    pub(crate) stderr_rx: Option<mpsc::Receiver<LogLine>>,
}

/// How long health/controller calls may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// go-plugin's grace period between Shutdown and SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl PluginClient {
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The app protocol version the plugin chose.
    pub fn app_version(&self) -> u32 {
        self.reattach.app_version
    }

    /// The plugin executable (or `pid N` if unknown after reattach).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The gRPC channel, for app service clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn reattach_config(&self) -> ReattachConfig {
        self.reattach.clone()
    }

    /// `grpc.health.v1.Health/Check("plugin")` must be SERVING.
    pub async fn health(&self) -> Result<(), GoPluginError> {
        check_health(&self.path, self.channel.clone(), CALL_TIMEOUT).await
    }

    /// Opens `plugin.GRPCStdio/StreamStdio`. `None` when the plugin does not
    /// offer it (older go-plugin). The stream ends on the first error.
    pub async fn stdio(
        &self,
    ) -> Result<Option<impl Stream<Item = StdioChunk> + Send + 'static>, GoPluginError> {
        let mut client = GrpcStdioClient::new(self.channel.clone());
        let resp = match client.stream_stdio(()).await {
            Ok(r) => r,
            Err(s) if s.code() == tonic::Code::Unimplemented => return Ok(None),
            Err(s) => {
                return Err(GoPluginError::Rpc {
                    path: self.path.clone(),
                    call: "plugin.GRPCStdio/StreamStdio",
                    status: Box::new(s),
                });
            }
        };
        let stream = resp
            .into_inner()
            .take_while(|r| ready(r.is_ok()))
            .filter_map(|r| ready(r.ok().and_then(to_chunk)));
        Ok(Some(stream))
    }

    /// Parsed stderr lines (Output::Piped only); can be taken once. Lines
    /// are dropped, never blocking the plugin, if the receiver lags.
    pub fn stderr_lines(&mut self) -> Option<mpsc::Receiver<LogLine>> {
        self.stderr_rx.take()
    }

    /// Whether the process still runs (a reattached pid must also still
    /// have the recorded start time).
    pub fn is_alive(&self) -> bool {
        self.proc.is_alive()
    }

    /// Resolves when the process is gone.
    pub async fn wait_exit(&self) {
        self.proc.wait_exit().await
    }

    /// Asks the plugin to stop (`plugin.GRPCController/Shutdown`, errors
    /// ignored), waits up to 2 s, then SIGKILLs it.
    pub async fn shutdown(&self) -> Result<(), GoPluginError> {
        let mut ctrl = GrpcControllerClient::new(self.channel.clone());
        match tokio::time::timeout(SHUTDOWN_GRACE, ctrl.shutdown(proto::Empty {})).await {
            Ok(Ok(_)) => {}
            Ok(Err(s)) => tracing::debug!(path = %self.path.display(), "Shutdown call: {s}"),
            Err(_) => tracing::debug!(path = %self.path.display(), "Shutdown call timed out"),
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, self.proc.wait_exit())
            .await
            .is_err()
        {
            tracing::warn!(path = %self.path.display(), pid = self.pid(), "plugin ignored Shutdown; killing it");
            self.proc.kill();
            if tokio::time::timeout(CALL_TIMEOUT, self.proc.wait_exit())
                .await
                .is_err()
            {
                return Err(GoPluginError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other(format!(
                        "pid {} still running after SIGKILL",
                        self.pid()
                    )),
                });
            }
        }
        Ok(())
    }

    /// SIGKILL now.
    pub fn kill(&self) {
        self.proc.kill()
    }
}

fn to_chunk(d: proto::StdioData) -> Option<StdioChunk> {
    let channel = match stdio_data::Channel::try_from(d.channel).ok()? {
        stdio_data::Channel::Stdout => StdioChannel::Stdout,
        stdio_data::Channel::Stderr => StdioChannel::Stderr,
        stdio_data::Channel::Invalid => return None,
    };
    Some(StdioChunk {
        channel,
        data: Bytes::from(d.data),
    })
}
