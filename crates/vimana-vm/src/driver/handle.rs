//! What a running VM leaves for the next daemon: enough to find its
//! processes again (pid + start time, so a reused pid is never mistaken for
//! them) and to talk to its VMM.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Provider;
use crate::network::TapLease;
use crate::provider::LaunchSpec;

/// One process of a VM (the VMM or a sidecar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start: Option<u64>,
}

impl Proc {
    pub fn alive(&self) -> bool {
        vimana_goplugin::pid_alive(self.pid, self.start)
    }
}

/// The re-adoption handle of a VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VmHandle {
    pub provider: Provider,
    pub spec: LaunchSpec,
    /// The VMM.
    pub vmm: Proc,
    /// Sidecars (e.g. vhost-device-vsock), stopped with the VM.
    #[serde(default)]
    pub sidecars: Vec<Proc>,
    /// The VM's TAP device and address on the bridge (bridge mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<TapLease>,
}

/// Name of the handle file in a VM's run directory, written as soon as the
/// VMM runs: a daemon killed while the VM boots (before the handle reached
/// the store) leaves it for the next daemon to find the processes.
pub const HANDLE_FILE: &str = "handle.json";

impl VmHandle {
    fn file(run_dir: &Path) -> PathBuf {
        run_dir.join(HANDLE_FILE)
    }

    /// Writes the handle into `run_dir` (atomically: temp file + rename).
    pub fn save(&self, run_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = run_dir.join(format!(".{HANDLE_FILE}.tmp"));
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, Self::file(run_dir))
    }

    /// The handle left in `run_dir`, if there is a readable one.
    pub fn load(run_dir: &Path) -> Option<VmHandle> {
        let bytes = std::fs::read(Self::file(run_dir)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Removes the handle file of `run_dir` (absent is fine).
    pub fn forget(run_dir: &Path) {
        let _ = std::fs::remove_file(Self::file(run_dir));
    }

    /// Every process of the VM, VMM last.
    pub fn procs(&self) -> impl Iterator<Item = &Proc> {
        self.sidecars.iter().chain(std::iter::once(&self.vmm))
    }
}
