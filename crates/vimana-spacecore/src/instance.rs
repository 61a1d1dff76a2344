//! A live spacecore as the supervisor sees it.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use vimana_api::LogStream;
use vimana_core::{DriverError, Exit, Instance, LogSink};
use vimana_goplugin::{PluginClient, StdioChannel};

use crate::deadline::{Deadlines, Rpc, RpcError, with_stderr, within};
use crate::driver::Handle;
use crate::proto::sc_plugin_client::ScPluginClient;
use crate::proto::{LogsRequest, StatusRequest, StopRequest};

pub(crate) struct SpacecoreInstance {
    client: PluginClient,
    id: String,
    sink: LogSink,
    tasks: Vec<JoinHandle<()>>,
    adopted: bool,
    seen: Mutex<Vec<String>>,
    deadlines: Deadlines,
    /// The plugin's raw stderr file, quoted when a call fails.
    stderr: PathBuf,
}

impl SpacecoreInstance {
    pub(crate) async fn new(
        client: PluginClient,
        id: String,
        sink: LogSink,
        mut tasks: Vec<JoinHandle<()>>,
        adopted: bool,
        deadlines: Deadlines,
        stderr: PathBuf,
    ) -> Self {
        if let Ok(Some(mut stream)) = client.stdio().await {
            let s = sink.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(chunk) = stream.next().await {
                    let stream = match chunk.channel {
                        StdioChannel::Stdout => LogStream::Stdout,
                        StdioChannel::Stderr => LogStream::Stderr,
                    };
                    for line in String::from_utf8_lossy(&chunk.data).lines() {
                        s.line(stream, None, line.to_string());
                    }
                }
            }));
        }
        Self {
            client,
            id,
            sink,
            tasks,
            adopted,
            seen: Mutex::default(),
            deadlines,
            stderr,
        }
    }

    /// One call within its deadline; a plugin that does not answer in time
    /// is killed. The error carries the plugin's last stderr lines.
    async fn call<T>(
        &self,
        rpc: Rpc,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, DriverError> {
        within(&self.deadlines, rpc, self.client.pid(), call)
            .await
            .map_err(|e: RpcError| {
                if e.late {
                    self.client.kill();
                }
                DriverError::new(with_stderr(&e.message, &self.stderr))
            })
    }

    fn rpc(&self) -> ScPluginClient<tonic::transport::Channel> {
        ScPluginClient::new(self.client.channel())
    }

    /// Appends the lines of a Logs answer not seen in the previous answer.
    fn merge_logs(&self, lines: Vec<String>) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let new = new_suffix(&seen, &lines);
        for l in &lines[lines.len() - new..] {
            self.sink.line(LogStream::Plugin, None, l.clone());
        }
        *seen = lines;
    }
}

/// How many lines at the end of `cur` are new relative to `prev`, assuming
/// both are windows over the same growing list.
pub(crate) fn new_suffix(prev: &[String], cur: &[String]) -> usize {
    for overlap in (1..=prev.len().min(cur.len())).rev() {
        if prev[prev.len() - overlap..] == cur[..overlap] {
            return cur.len() - overlap;
        }
    }
    cur.len()
}

impl Drop for SpacecoreInstance {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

#[async_trait]
impl Instance for SpacecoreInstance {
    fn pid(&self) -> Option<u32> {
        Some(self.client.pid())
    }

    fn handle(&self) -> serde_json::Value {
        Handle::attached(self.client.reattach_config())
    }

    async fn probe(&self) -> Result<String, DriverError> {
        let status = self
            .call(
                Rpc::Status,
                self.rpc().status(StatusRequest {
                    plugin_id: self.id.clone(),
                }),
            )
            .await?
            .status;
        let mut rpc = self.rpc();
        let logs = rpc.logs(LogsRequest {
            plugin_id: self.id.clone(),
        });
        match within(&self.deadlines, Rpc::Logs, self.client.pid(), logs).await {
            Ok(r) => self.merge_logs(r.logs),
            // A plugin without (working) Logs is still healthy; a hung one is not.
            Err(e) if e.late => {
                self.client.kill();
                return Err(DriverError::new(with_stderr(&e.message, &self.stderr)));
            }
            Err(_) => {}
        }
        Ok(status)
    }

    async fn exited(&self) -> Exit {
        self.client.wait_exit().await;
        Exit::Unknown
    }

    async fn stop(&self) -> Result<(), DriverError> {
        let stop = self
            .call(
                Rpc::Stop,
                self.rpc().stop(StopRequest {
                    plugin_id: self.id.clone(),
                }),
            )
            .await;
        if let Err(e) = stop {
            // A late plugin was killed already; one that said no is asked to exit.
            let _ = self.client.shutdown().await;
            return Err(e);
        }
        self.client
            .shutdown()
            .await
            .map_err(|e| DriverError::new(e.to_string()))
    }

    fn kill(&self) {
        self.client.kill();
    }

    fn adopted(&self) -> bool {
        self.adopted
    }
}

#[cfg(test)]
mod tests {
    use super::new_suffix;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn finds_new_lines_in_sliding_window() {
        assert_eq!(new_suffix(&v(&[]), &v(&["a", "b"])), 2);
        assert_eq!(new_suffix(&v(&["a", "b"]), &v(&["a", "b"])), 0);
        assert_eq!(new_suffix(&v(&["a", "b"]), &v(&["b", "c", "d"])), 2);
        assert_eq!(new_suffix(&v(&["a", "b"]), &v(&["x", "y"])), 2);
    }
}
