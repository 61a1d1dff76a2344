//! go-plugin's internal services on the plugin side: GRPCController,
//! GRPCStdio and a minimal GRPCBroker.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status, Streaming};

use crate::client::StdioChannel;
use crate::proto::{self, grpc_broker_server, grpc_controller_server, grpc_stdio_server};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Resolves once `rx` turns true (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Handle through which the plugin app writes data that the host receives
/// over `plugin.GRPCStdio/StreamStdio`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct StdioWriter {
    tx: broadcast::Sender<(StdioChannel, Bytes)>,
}

impl Default for StdioWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl StdioWriter {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        Self { tx }
    }

    /// Sends `data` to every connected StreamStdio caller (dropped if none).
    pub fn write(&self, channel: StdioChannel, data: impl Into<Bytes>) {
        let _ = self.tx.send((channel, data.into()));
    }

    pub fn stdout(&self, data: impl Into<Bytes>) {
        self.write(StdioChannel::Stdout, data)
    }

    pub fn stderr(&self, data: impl Into<Bytes>) {
        self.write(StdioChannel::Stderr, data)
    }
}

pub(crate) struct Controller {
    pub(crate) shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _req: Request<proto::Empty>,
    ) -> Result<Response<proto::Empty>, Status> {
        tracing::debug!("plugin: Shutdown requested by host");
        let _ = self.shutdown.send(true);
        Ok(Response::new(proto::Empty {}))
    }
}

pub(crate) struct Stdio {
    pub(crate) writer: StdioWriter,
    pub(crate) stopped: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<proto::StdioData>;

    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let rx = self.writer.tx.subscribe();
        let stream = BroadcastStream::new(rx)
            .filter_map(|r| async move {
                let (ch, data) = r.ok()?;
                let channel = match ch {
                    StdioChannel::Stdout => proto::stdio_data::Channel::Stdout,
                    StdioChannel::Stderr => proto::stdio_data::Channel::Stderr,
                };
                Some(Ok(proto::StdioData {
                    channel: channel as i32,
                    data: data.to_vec(),
                }))
            })
            .take_until(stopped(self.stopped.clone()));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Minimal broker: accepts the stream, logs what the host sends, never
/// offers sub-services; ends on shutdown.
pub(crate) struct Broker {
    pub(crate) stopped: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = BoxStream<proto::ConnInfo>;

    async fn start_stream(
        &self,
        req: Request<Streaming<proto::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut incoming = req.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(info)) = incoming.next().await {
                tracing::debug!(?info, "plugin broker: ignoring ConnInfo");
            }
        });
        let stream = futures::stream::pending().take_until(stopped(self.stopped.clone()));
        Ok(Response::new(Box::pin(stream)))
    }
}
