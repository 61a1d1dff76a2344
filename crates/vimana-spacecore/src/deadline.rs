//! Deadlines of the plugin RPCs. A plugin that accepts a call and never
//! answers is killed, and the error names the call, the deadline, the
//! config key that changes it and the plugin's last stderr lines.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// How long each `proto.ScPlugin` call may take (`[spacecore]` in
/// config.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// `Start` (`start_deadline_ms`).
    pub start: Duration,
    /// `Stop` (`stop_deadline_ms`).
    pub stop: Duration,
    /// `Status` and `Logs` (`status_deadline_ms`).
    pub status: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            start: Duration::from_secs(60),
            stop: Duration::from_secs(30),
            status: Duration::from_secs(5),
        }
    }
}

/// One of the four calls.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rpc {
    Start,
    Stop,
    Status,
    Logs,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Start => "Start",
            Rpc::Stop => "Stop",
            Rpc::Status => "Status",
            Rpc::Logs => "Logs",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Rpc::Start => "start_deadline_ms",
            Rpc::Stop => "stop_deadline_ms",
            Rpc::Status | Rpc::Logs => "status_deadline_ms",
        }
    }

    fn limit(self, d: &Deadlines) -> Duration {
        match self {
            Rpc::Start => d.start,
            Rpc::Stop => d.stop,
            Rpc::Status | Rpc::Logs => d.status,
        }
    }
}

/// A call that failed: an error answer, or none within its deadline
/// (`late`: the caller must kill the plugin, the message says it did).
#[derive(Debug)]
pub(crate) struct RpcError {
    pub message: String,
    pub late: bool,
}

/// Runs one call of the plugin `pid` within its deadline.
pub(crate) async fn within<T>(
    d: &Deadlines,
    rpc: Rpc,
    pid: u32,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, RpcError> {
    let limit = rpc.limit(d);
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(RpcError {
            message: format!(
                "{} failed: {}",
                rpc.name(),
                crate::call::describe_status(&s)
            ),
            late: false,
        }),
        Err(_) => Err(RpcError {
            message: format!(
                "{} did not answer within {limit:?}; killed the plugin (pid {pid}); \
                 if it needs longer, raise `[spacecore] {}` in config.toml",
                rpc.name(),
                rpc.key()
            ),
            late: true,
        }),
    }
}

/// `message` followed by the last lines of the plugin's stderr file.
pub(crate) fn with_stderr(message: &str, stderr: &Path) -> String {
    let tail = stderr_tail(stderr, 3);
    if tail.is_empty() {
        message.to_string()
    } else {
        format!("{message}; its stderr ended with: {}", tail.join(" | "))
    }
}

/// The last `n` lines of a plugin's stderr file, hclog records as their message.
fn stderr_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| vimana_goplugin::parse_hclog_line(l).message)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_call_past_its_deadline_names_the_call_the_limit_and_the_key() {
        let d = Deadlines {
            status: Duration::from_millis(50),
            ..Deadlines::default()
        };
        let never = std::future::pending::<Result<tonic::Response<()>, tonic::Status>>();
        let e = within(&d, Rpc::Logs, 42, never).await.unwrap_err();
        assert!(e.late);
        assert_eq!(
            e.message,
            "Logs did not answer within 50ms; killed the plugin (pid 42); \
             if it needs longer, raise `[spacecore] status_deadline_ms` in config.toml"
        );
        let err = async { Err::<tonic::Response<()>, _>(tonic::Status::internal("boom")) };
        let e = within(&d, Rpc::Start, 42, err).await.unwrap_err();
        assert!(!e.late && e.message.starts_with("Start failed: "), "{e:?}");
    }
}
