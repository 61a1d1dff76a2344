//! Vimana's public resource model: workload records, the single [`Action`]
//! enum that is the only door into the core, and API errors rendered as
//! RFC 9457 problem details. This crate does no I/O.

mod action;
mod error;
mod event;
mod log;
mod name;
mod problem;
mod resource;
mod workload;

pub use action::{Action, ActionOutcome, LogQuery, StartRequest};
pub use error::ApiError;
pub use event::{Event, EventKind, ResourceEvent, ResourceEventKind};
pub use log::{LogRecord, LogStream};
pub use name::{NameError, WorkloadName};
pub use problem::Problem;
pub use resource::{
    ApplyRequest, ChangeKind, ChangeList, DeleteRequest, ResourceChange, ResourceId, ResourceQuery,
    SourceRef,
};
/// The resource types, re-exported for the layers above the API.
pub use vimana_resources as resources;
pub use workload::{
    DesiredState, PackageRef, ProcessSpec, Resources, RestartPolicy, SpacecoreSpec, VmSpec,
    Workload, WorkloadKind, WorkloadSpec, WorkloadState,
};

/// Version of the REST API path prefix.
pub const API_PREFIX: &str = "/v1";
