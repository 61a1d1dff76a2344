//! A minimal QMP client: connect, read the greeting, negotiate
//! capabilities, then one command at a time. Messages are JSON objects, one
//! per line; asynchronous `event` messages are skipped while waiting for a
//! command's `return` or `error`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use super::{ProviderError, VmmStatus};

/// Longest message accepted from QEMU.
const MAX_LINE: u64 = 1 << 20;

/// A negotiated QMP connection. QEMU serves one QMP client at a time:
/// a second `connect` waits until this one is dropped.
pub struct Qmp {
    socket: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    next_id: u64,
}

/// The answer to `query-status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpStatus {
    pub running: bool,
    /// QEMU's run state (`running`, `paused`, `shutdown`, `prelaunch`, …).
    pub status: String,
}

impl QmpStatus {
    pub fn into_status(self) -> VmmStatus {
        match self.status.as_str() {
            "running" => VmmStatus::Running,
            "paused" | "suspended" => VmmStatus::Paused,
            "prelaunch" => VmmStatus::NotStarted,
            "shutdown" => VmmStatus::Shutdown,
            _ if self.running => VmmStatus::Running,
            _ => VmmStatus::Other(self.status),
        }
    }
}

impl Qmp {
    /// Connects to `socket`, reads the greeting and leaves greeting mode
    /// with `qmp_capabilities`. `timeout` bounds each step and each later
    /// command.
    pub async fn connect(socket: &Path, timeout_each: Duration) -> Result<Self, ProviderError> {
        let stream = match timeout(timeout_each, UnixStream::connect(socket)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(ProviderError::Connect {
                    socket: socket.to_path_buf(),
                    source,
                });
            }
            Err(_) => return Err(timed_out(socket, "connect", timeout_each)),
        };
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            socket: socket.to_path_buf(),
            reader: BufReader::new(read),
            writer,
            timeout: timeout_each,
            next_id: 1,
        };
        let greeting = qmp.read_message("the QMP greeting").await?;
        if greeting.get("QMP").is_none() {
            return Err(qmp.protocol(format!("expected the QMP greeting, got {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Runs one command and returns its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, ProviderError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut line = msg.to_string();
        line.push_str("\r\n");
        let write = self.writer.write_all(line.as_bytes());
        match timeout(self.timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(self.io(source)),
            Err(_) => return Err(timed_out(&self.socket, command, self.timeout)),
        }
        let what = format!("the answer to {command}");
        loop {
            let reply = self.read_message(&what).await?;
            if reply.get("event").is_some() {
                tracing::trace!(socket = %self.socket.display(), event = %reply, "QMP event");
                continue;
            }
            if reply.get("id").is_some_and(|got| got != &json!(id)) {
                continue;
            }
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(ProviderError::Qmp {
                    socket: self.socket.clone(),
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Err(self.protocol(format!("unexpected QMP message {reply}")));
        }
    }

    /// `query-status`.
    pub async fn query_status(&mut self) -> Result<QmpStatus, ProviderError> {
        let ret = self.execute("query-status", None).await?;
        let running = ret.get("running").and_then(Value::as_bool);
        let status = ret.get("status").and_then(Value::as_str);
        match (running, status) {
            (Some(running), Some(status)) => Ok(QmpStatus {
                running,
                status: status.to_string(),
            }),
            _ => Err(self.protocol(format!("query-status returned {ret}"))),
        }
    }

    /// `system_powerdown`: the ACPI power button.
    pub async fn system_powerdown(&mut self) -> Result<(), ProviderError> {
        self.execute("system_powerdown", None).await.map(drop)
    }

    /// `quit`: QEMU exits at once. A connection closed before the answer
    /// arrives counts as success.
    pub async fn quit(&mut self) -> Result<(), ProviderError> {
        match self.execute("quit", None).await {
            Ok(_) => Ok(()),
            Err(ProviderError::Protocol { message, .. }) if message.contains(CLOSED) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn read_message(&mut self, what: &str) -> Result<Value, ProviderError> {
        let mut line = String::new();
        loop {
            line.clear();
            let mut limited = (&mut self.reader).take(MAX_LINE);
            let n = match timeout(self.timeout, limited.read_line(&mut line)).await {
                Ok(Ok(n)) => n,
                Ok(Err(source)) => return Err(self.io(source)),
                Err(_) => return Err(timed_out(&self.socket, what, self.timeout)),
            };
            if n == 0 {
                return Err(self.protocol(format!("{CLOSED} while waiting for {what}")));
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(line.trim())
                .map_err(|e| self.protocol(format!("invalid QMP message ({e}): {}", line.trim())));
        }
    }

    fn io(&self, source: std::io::Error) -> ProviderError {
        ProviderError::Io {
            socket: self.socket.clone(),
            source,
        }
    }

    fn protocol(&self, message: String) -> ProviderError {
        ProviderError::Protocol {
            socket: self.socket.clone(),
            message,
        }
    }
}

const CLOSED: &str = "QEMU closed the QMP connection";

fn timed_out(socket: &Path, what: &str, waited: Duration) -> ProviderError {
    ProviderError::Timeout {
        socket: socket.to_path_buf(),
        what: what.to_string(),
        waited,
    }
}

#[cfg(test)]
#[path = "qmp_tests.rs"]
mod tests;
