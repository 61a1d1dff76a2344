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

/// Name of the file listing the processes a boot started before its VMM
/// (sidecars), written as each starts: a daemon killed before the VMM ran
/// leaves them for the next daemon to kill. Removed once the handle file
/// is written.
pub const SPAWNING_FILE: &str = "spawning.json";

/// Writes `value` as JSON to `run_dir/name` (temp file + rename).
fn write_json<T: Serialize>(run_dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let tmp = run_dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, run_dir.join(name))
}

/// Records the processes started so far of a boot whose VMM does not run
/// yet.
pub(crate) fn save_spawning(run_dir: &Path, procs: &[Proc]) -> std::io::Result<()> {
    write_json(run_dir, SPAWNING_FILE, &procs)
}

/// Takes the processes a boot left before its VMM started (the file is
/// removed): the caller kills those still alive.
pub(crate) fn take_spawning(run_dir: &Path) -> Vec<Proc> {
    let path = run_dir.join(SPAWNING_FILE);
    let procs = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    procs
}

impl VmHandle {
    fn file(run_dir: &Path) -> PathBuf {
        run_dir.join(HANDLE_FILE)
    }

    /// Writes the handle into `run_dir` (atomically: temp file + rename);
    /// the list of processes started before the VMM is then dropped.
    pub fn save(&self, run_dir: &Path) -> std::io::Result<()> {
        write_json(run_dir, HANDLE_FILE, self)?;
        let _ = std::fs::remove_file(run_dir.join(SPAWNING_FILE));
        Ok(())
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
