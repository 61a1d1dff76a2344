//! The core of the daemon: the single door every request goes through
//! ([`CoreApi::handle`] with an [`Action`]), the supervisor that keeps
//! workloads in their desired state, the small [`Driver`] trait each workload
//! kind implements, and the merged per-workload logs.

mod adopt;
mod backoff;
mod core;
mod driver;
mod error;
mod inner;
mod logs;
mod observer;
mod recorder;
mod resources;
mod supervisor;

use async_trait::async_trait;
use tokio::sync::broadcast;
use vimana_api::{Action, ActionOutcome, ApiError, Event, LogRecord, WorkloadName};

pub use backoff::Backoff;
pub use core::{Core, CoreOptions};
pub use driver::{Driver, DriverError, Exit, Instance, RunContext};
pub use error::CoreError;
pub use logs::{LogBook, LogSink, Rotation};
pub use observer::{AVAILABLE, NO_RUNTIME, ResourceObserver, available, no_runtime};
pub use recorder::HandleRecorder;

/// What the REST layer (and tests) need from the core.
#[async_trait]
pub trait CoreApi: Send + Sync + 'static {
    /// Executes one action. This is the only way to change state.
    async fn handle(&self, action: Action) -> Result<ActionOutcome, ApiError>;
    /// Live log records of one workload, from now on.
    fn subscribe_logs(
        &self,
        name: &WorkloadName,
    ) -> Result<broadcast::Receiver<LogRecord>, ApiError>;
    /// Live events of all workloads, from now on.
    fn subscribe_events(&self) -> broadcast::Receiver<Event>;
}
