//! One-shot calls: launch a plugin, make one call, shut it down.

use std::path::PathBuf;
use std::time::Duration;

use vimana_goplugin::{GoPluginError, LaunchConfig};

use crate::proto::sc_plugin_client::ScPluginClient;
use crate::proto::{LogsRequest, StartRequest, StatusRequest, StopRequest};

/// One of the four spacecore calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Start,
    Stop,
    Status,
    Logs,
}

/// What a call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutput {
    Status(String),
    Logs(Vec<String>),
}

/// Why a one-shot call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Plugin(#[from] GoPluginError),
    #[error("plugin {plugin} failed its {call} call: {status}")]
    Rpc {
        plugin: String,
        call: &'static str,
        status: String,
    },
}

/// Launches `plugin`, makes `call` with `plugin_id`, shuts the plugin down.
pub async fn call_once(
    plugin: PathBuf,
    plugin_id: &str,
    call: Call,
    start_timeout: Duration,
) -> Result<CallOutput, CallError> {
    let mut cfg = LaunchConfig::new(plugin.clone(), crate::handshake());
    cfg.start_timeout = start_timeout;
    let client = vimana_goplugin::launch(cfg).await?;
    let mut rpc = ScPluginClient::new(client.channel());
    let id = plugin_id.to_string();
    let rpc_err = |call: &'static str, s: tonic::Status| CallError::Rpc {
        plugin: plugin.display().to_string(),
        call,
        status: describe_status(&s),
    };
    let out = match call {
        Call::Start => rpc
            .start(StartRequest { plugin_id: id })
            .await
            .map(|r| CallOutput::Status(r.into_inner().status))
            .map_err(|s| rpc_err("Start", s)),
        Call::Stop => rpc
            .stop(StopRequest { plugin_id: id })
            .await
            .map(|r| CallOutput::Status(r.into_inner().status))
            .map_err(|s| rpc_err("Stop", s)),
        Call::Status => rpc
            .status(StatusRequest { plugin_id: id })
            .await
            .map(|r| CallOutput::Status(r.into_inner().status))
            .map_err(|s| rpc_err("Status", s)),
        Call::Logs => rpc
            .logs(LogsRequest { plugin_id: id })
            .await
            .map(|r| CallOutput::Logs(r.into_inner().logs))
            .map_err(|s| rpc_err("Logs", s)),
    };
    let _ = client.shutdown().await;
    out
}

/// A gRPC status as one sentence; a broken connection says the plugin crashed.
pub(crate) fn describe_status(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown
            if s.message().contains("transport")
                || s.message().contains("connection")
                || s.message().contains("broken pipe") =>
        {
            format!(
                "the plugin closed the connection mid-call (it crashed or exited): {}",
                s.message()
            )
        }
        code => format!("{code:?}: {}", s.message()),
    }
}
