use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{WorkloadName, WorkloadState};

/// What happened to a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    StateChanged,
    Restarted,
    Adopted,
    Removed,
    Error,
}

/// One entry of the append-only event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Position in the log, strictly increasing.
    pub seq: u64,
    /// RFC 3339 time.
    pub time: String,
    pub workload: WorkloadName,
    pub kind: EventKind,
    /// The state after the event, where it changed one.
    pub state: Option<WorkloadState>,
    pub message: String,
}

/// What happened to an `api.vimana.host/v1alpha1` resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceEventKind {
    /// Created or configured by an apply.
    ResourceApplied,
    /// Removed by a delete.
    ResourceDeleted,
}

/// One entry of the resource event log (kept apart from the workload
/// events, with its own sequence numbers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceEvent {
    /// Position in the resource event log, strictly increasing.
    pub seq: u64,
    /// RFC 3339 time.
    pub time: String,
    pub kind: ResourceEventKind,
    /// `Kind/name`, e.g. `Domain/example`.
    pub resource: String,
    /// The store revision of the change.
    pub revision: u64,
    /// `created`, `configured` or `deleted`.
    pub message: String,
}
