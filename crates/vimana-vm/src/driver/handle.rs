//! What a running VM leaves for the next daemon: enough to find its
//! processes again (pid + start time, so a reused pid is never mistaken for
//! them) and to talk to its VMM.

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
