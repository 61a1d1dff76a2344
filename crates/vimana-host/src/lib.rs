//! Host facts for `vimana init`: CPU, memory, disk, a real KVM guest run, TUN, vsock, cgroup v2, hypervisors.
//!
//! [`run_checks`] returns one [`Check`] row per fact, in a fixed order, ready to be
//! printed as a ✓/✗ table (or serialized as JSON). It never panics: anything that
//! cannot be determined becomes a failed row with a hint.
//!
//! [`kvm_usable`] is the KVM probe on its own; the VM layer uses it to decide between
//! KVM and QEMU TCG. It runs a tiny real-mode guest in a forked child process so that
//! a KVM that hangs in `KVM_RUN`, or runs guests at emulation speed (e.g. a
//! paravirtual PVM host), cannot hang the caller.

mod checks;
mod fmt;
mod kvm;
mod kvm_exit;
mod paths;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use checks::{HYPERVISORS, run_checks};
pub use fmt::{format_bytes, format_duration};
pub use kvm::{GUEST_LOOP_ITERATIONS, KvmError, KvmStage, kvm_usable};
pub use paths::{hypervisors, which};

/// One row of the `vimana init` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short, stable row name (`cpu`, `memory`, `disk`, `kvm`, `tun`, `vsock`,
    /// `cgroup-v2`, or a hypervisor binary name).
    pub name: String,
    /// Whether the requirement is met.
    pub ok: bool,
    /// What was found, e.g. `2 CPUs`, `23.4 GiB`, `80.0 GiB free under /root/.vimana`.
    pub value: String,
    /// For failures: what to do about it.
    pub hint: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok: true,
            value: value.into(),
            hint: None,
        }
    }

    pub(crate) fn fail(name: &str, value: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok: false,
            value: value.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Default time the KVM probe may take before it is killed.
pub const DEFAULT_KVM_TIMEOUT: Duration = Duration::from_secs(3);

/// Inputs for [`run_checks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Vimana's home directory (e.g. `~/.vimana`); it need not exist yet.
    pub home: PathBuf,
    /// How long the KVM probe may run before it is killed (default 3 s).
    pub kvm_timeout: Duration,
}

impl CheckOptions {
    /// Options for `home` with the default KVM timeout.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            kvm_timeout: DEFAULT_KVM_TIMEOUT,
        }
    }
}
