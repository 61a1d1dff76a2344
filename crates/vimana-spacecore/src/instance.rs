//! A live spacecore as the supervisor sees it.

use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use vimana_api::LogStream;
use vimana_core::{DriverError, Exit, Instance, LogSink};
use vimana_goplugin::{PluginClient, StdioChannel};

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
}

impl SpacecoreInstance {
    pub(crate) async fn new(
        client: PluginClient,
        id: String,
        sink: LogSink,
        mut tasks: Vec<JoinHandle<()>>,
        adopted: bool,
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
        }
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
        serde_json::to_value(Handle {
            reattach: self.client.reattach_config(),
        })
        .unwrap_or_default()
    }

    async fn probe(&self) -> Result<String, DriverError> {
        let status = self
            .rpc()
            .status(StatusRequest {
                plugin_id: self.id.clone(),
            })
            .await
            .map_err(|s| {
                DriverError::new(format!(
                    "Status failed: {}",
                    crate::call::describe_status(&s)
                ))
            })?
            .into_inner()
            .status;
        if let Ok(r) = self
            .rpc()
            .logs(LogsRequest {
                plugin_id: self.id.clone(),
            })
            .await
        {
            self.merge_logs(r.into_inner().logs);
        }
        Ok(status)
    }

    async fn exited(&self) -> Exit {
        self.client.wait_exit().await;
        Exit::Unknown
    }

    async fn stop(&self) -> Result<(), DriverError> {
        let stop = self
            .rpc()
            .stop(StopRequest {
                plugin_id: self.id.clone(),
            })
            .await;
        let shut = self.client.shutdown().await;
        if let Err(s) = stop {
            return Err(DriverError::new(format!(
                "Stop failed: {}",
                crate::call::describe_status(&s)
            )));
        }
        shut.map_err(|e| DriverError::new(e.to_string()))
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
