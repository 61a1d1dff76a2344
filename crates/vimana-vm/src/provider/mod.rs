//! The hypervisor seam: one small [`Vmm`] trait per provider (QEMU,
//! Firecracker, Cloud Hypervisor). A provider only turns a resolved
//! [`LaunchSpec`] into a [`LaunchPlan`] (processes, files, API calls) and
//! talks to its VMM for a graceful stop and a status; the VM driver owns the
//! lifecycle, state, logs and the processes ([`execute_plan`] starts them).
//!
//! - [`qemu`] + [`qmp`]: `qemu-system-x86_64 -M microvm` and its QMP client.
//! - [`vsock`]: the `vhost-device-vsock` sidecar QEMU uses, and the hybrid
//!   vsock handshake every provider's host side speaks.
//! - [`firecracker`], [`cloud_hypervisor`]: config file / API calls.
//! - [`api_client`]: HTTP/1.1 over a unix socket for Firecracker and CH.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{PortForward, Provider};

pub mod api_client;
pub mod cloud_hypervisor;
mod error;
pub mod firecracker;
mod host;
mod launch;
pub mod qemu;
pub mod qmp;
#[cfg(test)]
mod test_support;
pub mod vsock;

pub use cloud_hypervisor::CloudHypervisor;
pub use error::ProviderError;
pub use firecracker::{Firecracker, FirecrackerMode};
pub use host::HostFacts;
pub use launch::{ExecuteOptions, Spawned, execute_plan, execute_plan_with};
pub use qemu::{Qemu, host_tsc_khz};

/// Everything resolved before launch: paths exist, addresses are allocated.
/// Serializable so the driver can keep it with the workload's handle and
/// talk to the VMM again after a daemon restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// VM id; also used for process and device names.
    pub id: String,
    /// Per-VM directory: sockets, config files, VMM output.
    pub run_dir: PathBuf,
    pub cpus: u32,
    pub memory_mib: u64,
    pub kernel: PathBuf,
    /// The vimana initramfs (or any initrd).
    pub initrd: Option<PathBuf>,
    /// The root drive (`/dev/vda`), first on the bus.
    pub root_drive: Option<DriveSpec>,
    /// Further drives, in order after the root drive.
    pub extra_drives: Vec<DriveSpec>,
    /// The full kernel command line, built by the caller.
    pub cmdline: String,
    pub net: NetSpec,
    /// `None`: no vsock device.
    pub vsock: Option<VsockSpec>,
    /// Everything the guest prints on its serial console.
    pub console_log: PathBuf,
    /// Unix socket for interactive attach (QEMU only; see the providers).
    /// An attached client must keep reading: QEMU's serial port writes
    /// byte by byte, and a full socket buffer stalls the guest's console.
    pub console_socket: PathBuf,
    /// QEMU only: KVM or TCG (the caller decides with
    /// `vimana_host::kvm_usable`). Firecracker and Cloud Hypervisor need KVM.
    pub accel: Accel,
}

impl LaunchSpec {
    /// The root drive then the extra drives, in bus order.
    pub fn drives(&self) -> impl Iterator<Item = &DriveSpec> {
        self.root_drive.iter().chain(self.extra_drives.iter())
    }

    /// A file in the run directory.
    pub fn run_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }
}

/// The virtio-blk serial of the `index`th drive of [`LaunchSpec::drives`]
/// where the VMM sets one (QEMU, Cloud Hypervisor): the guest finds its
/// disks by serial, whatever order the transports are probed in.
pub fn drive_serial(index: usize) -> String {
    format!("vimana-d{index}")
}

/// How the guest names the `index`th drive: its serial where `provider`
/// sets one, else `/dev/vd<letter>` (Firecracker attaches drives in order,
/// root first).
pub fn guest_disk(provider: Provider, index: usize) -> String {
    match provider {
        Provider::Qemu | Provider::CloudHypervisor => drive_serial(index),
        Provider::Firecracker => {
            let mut name = String::new();
            let mut n = index;
            loop {
                name.insert(0, char::from(b'a' + (n % 26) as u8));
                if n < 26 {
                    break;
                }
                n = n / 26 - 1;
            }
            format!("/dev/vd{name}")
        }
    }
}

/// A disk image attached as a virtio block device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveSpec {
    pub path: PathBuf,
    pub read_only: bool,
}

/// Guest networking, resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum NetSpec {
    /// No network device.
    #[default]
    None,
    /// User-mode networking (QEMU only) with host → guest port forwards
    /// bound to 127.0.0.1.
    User { forwards: Vec<PortForward> },
    /// An existing TAP device (on the bridge) and the guest's MAC address.
    Tap { tap: String, mac: String },
}

/// The guest's vsock device. The host side is always a Firecracker-style
/// hybrid vsock unix socket at `uds_path` (see [`vsock::connect`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockSpec {
    pub guest_cid: u32,
    pub uds_path: PathBuf,
}

/// CPU virtualisation for QEMU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Kvm,
    /// Software emulation; the caller adds `tsc_early_khz=` (see
    /// [`host_tsc_khz`]) to the command line.
    Tcg,
}

/// What to start, write and call to bring one VM up, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchPlan {
    /// Files to write before anything starts (e.g. Firecracker's config).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Stale sockets to remove before anything starts (besides every
    /// process's `wait_for`).
    pub remove_first: Vec<PathBuf>,
    /// Sidecars first, the VMM last.
    pub processes: Vec<ProcessPlan>,
    /// The VMM's API socket, when `api_calls` is not empty.
    pub api_socket: Option<PathBuf>,
    /// Calls to make on `api_socket` once every process is up.
    pub api_calls: Vec<ApiCall>,
}

/// One process to start, detached from the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    /// Short name for messages (`qemu`, `vhost-device-vsock`, …).
    pub name: String,
    /// Program then arguments.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Where the process's stdout goes (appended).
    pub stdout: PathBuf,
    /// Where the process's stderr goes (appended).
    pub stderr: PathBuf,
    /// Unix sockets this process creates; the next step waits for them.
    pub wait_for: Vec<PathBuf>,
}

/// An HTTP method of a VMM API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Put,
    Patch,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
        }
    }
}

impl std::fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request to a VMM's HTTP API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub method: HttpMethod,
    pub path: String,
    pub body: Option<serde_json::Value>,
}

impl ApiCall {
    pub fn put(path: impl Into<String>, body: Option<serde_json::Value>) -> Self {
        Self {
            method: HttpMethod::Put,
            path: path.into(),
            body,
        }
    }
}

/// What the VMM says about its guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmmStatus {
    Running,
    Paused,
    /// Configured but not booted (FC `Not started`, CH `Created`, QEMU
    /// `prelaunch`).
    NotStarted,
    /// The guest shut down; the VMM may still be there.
    Shutdown,
    /// Any other state, as the VMM named it.
    Other(String),
}

/// A hypervisor. Implementations are pure planners plus two small control
/// calls; they hold no per-VM state.
#[async_trait]
pub trait Vmm: Send + Sync {
    fn provider(&self) -> Provider;

    /// Whether this machine can run this provider (binaries found, KVM
    /// usable when needed); `Err` says why and how to fix it.
    fn check(&self, host: &HostFacts) -> Result<(), String>;

    /// Pure: the processes, files and API calls that launch `spec`.
    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, ProviderError>;

    /// Asks the guest to shut down (ACPI power button / Ctrl-Alt-Del).
    async fn request_shutdown(&self, spec: &LaunchSpec) -> Result<(), ProviderError>;

    /// Asks the VMM how the guest is.
    async fn status(&self, spec: &LaunchSpec) -> Result<VmmStatus, ProviderError>;
}

/// The provider with its default binaries (looked up on `PATH` at launch).
pub fn vmm_for(provider: Provider) -> Box<dyn Vmm> {
    match provider {
        Provider::Qemu => Box::new(Qemu::default()),
        Provider::Firecracker => Box::new(Firecracker::default()),
        Provider::CloudHypervisor => Box::new(CloudHypervisor::default()),
    }
}

/// A path as UTF-8, for argv and JSON; `what` names it in the error.
pub(crate) fn utf8<'a>(path: &'a Path, what: &str) -> Result<&'a str, ProviderError> {
    path.to_str().ok_or_else(|| ProviderError::InvalidSpec {
        message: format!(
            "the {what} path {} is not valid UTF-8; rename it",
            path.display()
        ),
    })
}

/// Longest unix socket path: `sun_path` holds 108 bytes with the NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Checks every socket a plan creates or uses fits a socket address, so a
/// long run directory fails here with a fix rather than inside the VMM.
pub(crate) fn check_socket_paths(plan: &LaunchPlan) -> Result<(), ProviderError> {
    let sockets = plan
        .processes
        .iter()
        .flat_map(|p| p.wait_for.iter())
        .chain(plan.remove_first.iter())
        .chain(plan.api_socket.iter());
    for path in sockets {
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(ProviderError::InvalidSpec {
                message: format!(
                    "the unix socket path {} is {len} bytes, more than the {MAX_SOCKET_PATH} a \
                     socket address holds; use a shorter run directory (VIMANA_HOME)",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Rejects TCG for providers that only run on KVM.
pub(crate) fn require_kvm(provider: Provider, spec: &LaunchSpec) -> Result<(), ProviderError> {
    match spec.accel {
        Accel::Kvm => Ok(()),
        Accel::Tcg => Err(ProviderError::Unsupported {
            provider,
            what: "software emulation (TCG)".into(),
            fix: "run it on a host with usable KVM, or use provider `qemu`".into(),
        }),
    }
}
