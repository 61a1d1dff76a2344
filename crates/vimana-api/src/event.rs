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
