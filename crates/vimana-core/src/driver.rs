use std::path::PathBuf;

use async_trait::async_trait;
use vimana_api::{ApiError, WorkloadKind, WorkloadName, WorkloadSpec};

use crate::LogSink;

/// Why a workload could not be launched, adopted or talked to. The message
/// is shown to the user as is: it names the thing, the rule and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    pub message: String,
}

impl DriverError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Everything a driver gets to launch or adopt one workload.
pub struct RunContext {
    pub name: WorkloadName,
    pub spec: WorkloadSpec,
    /// The handle a previous [`Instance::handle`] returned: adopt that
    /// workload if it is still alive instead of launching a new one.
    pub adopt: Option<serde_json::Value>,
    /// True for the very first launch of this workload: the driver starts
    /// the workload. On relaunches it checks first whether it still runs.
    pub first_start: bool,
    /// Only adopt: when the workload in `adopt` is gone, fail instead of
    /// launching a new one (the user wanted it stopped).
    pub adopt_only: bool,
    /// Where the workload's merged log goes.
    pub logs: LogSink,
    /// Directory for this workload's raw output files.
    pub log_dir: PathBuf,
    /// Stores an adoption handle before the slow part of a launch, so a
    /// daemon killed meanwhile leaves the workload findable.
    pub recorder: crate::HandleRecorder,
}

/// A workload kind: the one thing it must do is bring a workload up (or
/// re-adopt it) and hand back a live [`Instance`]. The framework owns the
/// lifecycle, state, restarts, events and logs.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The kind of workload this driver runs.
    fn kind(&self) -> WorkloadKind;

    /// Checks a spec before anything is stored (paths exist, values sane).
    fn validate(&self, _spec: &WorkloadSpec) -> Result<(), ApiError> {
        Ok(())
    }

    /// Launches the workload, or adopts the one `ctx.adopt` names.
    async fn run(&self, ctx: RunContext) -> Result<Box<dyn Instance>, DriverError>;

    /// The workload was stopped and deleted from the store: drop what the
    /// driver keeps on the host for it (a VM's run directory and leases).
    async fn removed(&self, _name: &WorkloadName, _spec: &WorkloadSpec) -> Result<(), DriverError> {
        Ok(())
    }
}

/// How a workload's main process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this status code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Gone, status not known (e.g. a re-adopted process, not our child).
    Unknown,
}

impl Exit {
    /// A clean, successful end.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::Unknown => f.write_str("exited"),
        }
    }
}

/// A live workload, as the supervisor sees it.
#[async_trait]
pub trait Instance: Send + Sync {
    /// Process id of the main process.
    fn pid(&self) -> Option<u32>;
    /// Serializable facts that let the next daemon re-adopt this instance.
    fn handle(&self) -> serde_json::Value;
    /// Asks the workload how it is; `Ok(detail)` while healthy, `Err` when it
    /// is gone or broken.
    async fn probe(&self) -> Result<String, DriverError>;
    /// Resolves when the workload's process has exited, with how it ended.
    async fn exited(&self) -> Exit;
    /// Stops the workload gracefully (and forcefully after a grace period).
    async fn stop(&self) -> Result<(), DriverError>;
    /// Ends the process at once (after a failed probe).
    fn kill(&self);
    /// True when this instance was re-adopted rather than launched anew.
    fn adopted(&self) -> bool {
        false
    }
    /// How to tell the user that the workload ended with `exit` (shown as
    /// its detail); a driver may add what it knows, e.g. a VM's last
    /// console lines.
    fn describe_exit(&self, exit: Exit) -> String {
        format!("process {exit}")
    }
}
