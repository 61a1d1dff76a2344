use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::WorkloadName;

/// Which kind of workload a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A plugin process speaking go-plugin's gRPC protocol.
    Spacecore,
    /// A plain supervised process (a package's node binary).
    Process,
    /// A microVM (QEMU, Firecracker or Cloud Hypervisor) with vimana's
    /// agent inside.
    Vm,
}

impl WorkloadKind {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Spacecore => "spacecore",
            WorkloadKind::Process => "process",
            WorkloadKind::Vm => "vm",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed lifecycle state of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
    Backoff,
}

impl WorkloadState {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadState::Starting => "starting",
            WorkloadState::Running => "running",
            WorkloadState::Stopping => "stopping",
            WorkloadState::Stopped => "stopped",
            WorkloadState::Failed => "failed",
            WorkloadState::Backoff => "backoff",
        }
    }
}

impl fmt::Display for WorkloadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user asked for: the supervisor drives the observed state towards it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

/// How to run a spacecore plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpacecoreSpec {
    /// Absolute path of the plugin executable.
    pub plugin: String,
    /// Extra arguments passed to the plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment for the plugin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How long the plugin may take to print its handshake line, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout_ms: Option<u64>,
}

/// What the supervisor does when a workload's process ends by itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Relaunch whatever the exit status (with backoff).
    #[default]
    Always,
    /// Relaunch only after a non-zero exit or a signal; exit 0 means done.
    OnFailure,
    /// Never relaunch.
    Never,
}

/// CPU and memory limits, applied through cgroup v2 where the host allows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU limit in cores (`cpu.max`), e.g. 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory limit in bytes (`memory.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

impl Eq for Resources {}

/// Where a process workload came from, when `vimana run` installed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageRef {
    pub repo: String,
    pub name: String,
    pub version: String,
    pub node_type: String,
    /// The resolved `run` flags (e.g. `network`, `rpc`), to tell a changed
    /// second `run` apart from a repeated one.
    #[serde(default)]
    pub flags: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_args: Vec<String>,
}

/// How to run a plain process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Absolute path of the executable.
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Grace period between SIGTERM and SIGKILL on stop, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageRef>,
}

/// How to run a microVM: the validated VM description (`vimana-vm`'s
/// `VmConfig`, as `vimana vm spawn` produced it from a `hac.toml`) and the
/// provider chosen for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// The VM description (see docs/vms.md for its fields).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Where the description came from (a `hac.toml` path), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The kind-specific part of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum WorkloadSpec {
    Spacecore(SpacecoreSpec),
    Process(Box<ProcessSpec>),
    Vm(Box<VmSpec>),
}

impl WorkloadSpec {
    /// The workload kind this spec describes.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            WorkloadSpec::Spacecore(_) => WorkloadKind::Spacecore,
            WorkloadSpec::Process(_) => WorkloadKind::Process,
            WorkloadSpec::Vm(_) => WorkloadKind::Vm,
        }
    }

    /// What to do when the workload's process ends by itself.
    pub fn restart_policy(&self) -> RestartPolicy {
        match self {
            WorkloadSpec::Spacecore(_) => RestartPolicy::Always,
            WorkloadSpec::Process(p) => p.restart,
            // A VM that powered itself off stays off, and a VMM that died
            // is reported failed (with its console tail), not relaunched.
            WorkloadSpec::Vm(_) => RestartPolicy::Never,
        }
    }
}

/// A workload as the API shows it (`vimana status -o json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Workload {
    pub name: WorkloadName,
    pub kind: WorkloadKind,
    pub state: WorkloadState,
    pub desired: DesiredState,
    /// Process id of the workload's main process (the plugin), when running.
    pub pid: Option<u32>,
    /// How many times the supervisor relaunched the workload.
    pub restarts: u32,
    /// The plugin's last Status answer, or the last error.
    pub detail: String,
    /// Monotonically increasing revision of this record.
    pub revision: u64,
    /// RFC 3339 time of creation.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    pub spec: WorkloadSpec,
}
