//! The Rust spacecore SDK: implement [`Spacecore`], call [`serve`].

use std::sync::Arc;

use async_trait::async_trait;
use tonic::{Request, Response, Status};

use crate::proto::sc_plugin_server::{ScPlugin, ScPluginServer};
use crate::proto::{
    LogsRequest, LogsResponse, StartRequest, StartResponse, StatusRequest, StatusResponse,
    StopRequest, StopResponse,
};

/// An error a spacecore returns from one of its calls; the host sees it as
/// a gRPC `INTERNAL` status carrying the message.
pub type SpacecoreError = Box<dyn std::error::Error + Send + Sync>;

/// The four lifecycle calls of a spacecore. `plugin_id` names the workload
/// the host manages (the workload name under the vimana daemon).
#[async_trait]
pub trait Spacecore: Send + Sync + 'static {
    /// Starts the workload; returns a status string such as `"started"`.
    async fn start(&self, plugin_id: &str) -> Result<String, SpacecoreError>;
    /// Stops the workload; returns a status string such as `"stopped"`.
    async fn stop(&self, plugin_id: &str) -> Result<String, SpacecoreError>;
    /// Reports how the workload is: `"running"` while it runs.
    async fn status(&self, plugin_id: &str) -> Result<String, SpacecoreError>;
    /// Recent log lines of the workload.
    async fn logs(&self, plugin_id: &str) -> Result<Vec<String>, SpacecoreError>;
}

struct Service<S>(Arc<S>);

fn internal(e: SpacecoreError) -> Status {
    Status::internal(e.to_string())
}

#[async_trait]
impl<S: Spacecore> ScPlugin for Service<S> {
    async fn start(&self, r: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let id = r.into_inner().plugin_id;
        let status = self.0.start(&id).await.map_err(internal)?;
        Ok(Response::new(StartResponse {
            plugin_id: id,
            status,
        }))
    }

    async fn stop(&self, r: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        let id = r.into_inner().plugin_id;
        let status = self.0.stop(&id).await.map_err(internal)?;
        Ok(Response::new(StopResponse {
            plugin_id: id,
            status,
        }))
    }

    async fn logs(&self, r: Request<LogsRequest>) -> Result<Response<LogsResponse>, Status> {
        let id = r.into_inner().plugin_id;
        let logs = self.0.logs(&id).await.map_err(internal)?;
        Ok(Response::new(LogsResponse {
            plugin_id: id,
            logs,
        }))
    }

    async fn status(&self, r: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let id = r.into_inner().plugin_id;
        let status = self.0.status(&id).await.map_err(internal)?;
        Ok(Response::new(StatusResponse {
            plugin_id: id,
            status,
        }))
    }
}

/// Serves `spacecore` as a go-plugin plugin: checks the magic cookie, prints
/// the handshake line, serves `proto.ScPlugin` plus go-plugin's health,
/// controller and stdio services (with AutoMTLS when the host asks for it),
/// and returns when the host shuts the plugin down.
pub async fn serve(spacecore: impl Spacecore) -> Result<(), vimana_goplugin::GoPluginError> {
    let svc = ScPluginServer::new(Service(Arc::new(spacecore)));
    let routes = tonic::service::Routes::new(svc);
    vimana_goplugin::serve::serve(
        vimana_goplugin::serve::ServeConfig {
            handshake: crate::handshake(),
        },
        routes,
    )
    .await
}
