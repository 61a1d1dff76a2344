use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The workload's standard output.
    Stdout,
    /// The workload's standard error (non-hclog lines).
    Stderr,
    /// A structured hclog record from the plugin.
    Hclog,
    /// A line returned by the plugin's Logs RPC.
    Plugin,
    /// A note written by the daemon (starts, crashes, restarts).
    Daemon,
}

/// One merged log record, stored as one JSON line under `VIMANA_HOME/logs/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogRecord {
    /// RFC 3339 time the daemon saw the record.
    pub time: String,
    pub stream: LogStream,
    /// Level for hclog records (`trace`…`error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub message: String,
}
