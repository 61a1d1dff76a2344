use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use vimana_resources::{Resource, ResourceRef};

use crate::{ChangeList, Event, LogRecord, ResourceQuery, Workload, WorkloadName, WorkloadSpec};

/// Body of `PUT /v1/workloads/{name}`: register (if new) and start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The workload to run. Omit to start an existing, stopped workload again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<WorkloadSpec>,
}

/// Which log records to return.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only the last N records.
    pub tail: Option<usize>,
    /// Keep streaming new records.
    #[serde(default)]
    pub follow: bool,
}

/// Every request into the core goes through this enum: the REST layer only
/// translates HTTP into an `Action`, and the core executes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Register (if new) and start a workload; idempotent for a running one.
    Start {
        name: WorkloadName,
        spec: Option<WorkloadSpec>,
    },
    /// Stop a workload and keep its record.
    Stop { name: WorkloadName },
    /// Stop (if needed) and remove a workload and its logs.
    Remove { name: WorkloadName },
    /// One workload.
    Get { name: WorkloadName },
    /// All workloads, sorted by name.
    List,
    /// Log records of one workload (a snapshot; following is a stream the
    /// server opens separately).
    Logs {
        name: WorkloadName,
        tail: Option<usize>,
    },
    /// Events after `since` (exclusive), oldest first.
    Events {
        since: Option<u64>,
        workload: Option<WorkloadName>,
    },
    /// Validate resources against the stored ones and store them, all or
    /// nothing, in one transaction (each carries its origin for errors).
    ApplyResources { resources: Vec<Resource> },
    /// Stored resources with their status.
    GetResources { query: ResourceQuery },
    /// Delete resources (by `metadata.name`, or a Component's
    /// `<domain>:<server>@<version>`), all or nothing.
    DeleteResources { refs: Vec<ResourceRef> },
}

/// What an [`Action`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionOutcome {
    Workload(Box<Workload>),
    Workloads(Vec<Workload>),
    Removed,
    Logs(Vec<LogRecord>),
    Events(Vec<Event>),
    /// What an apply or delete did, per resource.
    ResourceChanges(ChangeList),
    /// Stored resources, in dependency order then by name.
    Resources(Vec<Resource>),
}
