//! MicroVM test assets: the Debian cloud kernel and its modules
//! (`scripts/vm-test-assets.sh`) and the static guest agent
//! (`scripts/build-agent.sh`).

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::{field, find_program, once, runs, script};

/// The kernel the VM tests boot and its module tree.
#[derive(Debug, Clone)]
pub struct VmAssets {
    /// `.../boot/vmlinuz-<release>`.
    pub kernel: PathBuf,
    /// `.../lib/modules/<release>`.
    pub modules: PathBuf,
}

impl VmAssets {
    /// The kernel release (`6.1.0-57-cloud-amd64`), from the file name.
    pub fn release(&self) -> String {
        self.kernel
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .unwrap_or_default()
            .to_string()
    }
}

/// Fetches (once per machine, cached in `target/vm-assets`) and returns the
/// test kernel and modules, or why they cannot be had.
pub fn vm_assets() -> Result<VmAssets, String> {
    static CELL: OnceLock<Result<VmAssets, String>> = OnceLock::new();
    once(&CELL, || {
        let lines = script("vm-test-assets.sh", &[])?;
        match (field(&lines, "KERNEL"), field(&lines, "MODULES")) {
            (Some(kernel), Some(modules)) => {
                let assets = VmAssets {
                    kernel: kernel.into(),
                    modules: modules.into(),
                };
                if !assets.kernel.is_file() {
                    return Err(format!(
                        "scripts/vm-test-assets.sh printed KERNEL={} but it is not a file",
                        assets.kernel.display()
                    ));
                }
                Ok(assets)
            }
            _ => Err(format!(
                "scripts/vm-test-assets.sh printed no KERNEL=/MODULES= lines: {lines:?}"
            )),
        }
    })
}

/// Builds (once, cached) and returns the static `vimana-agent`.
pub fn static_agent() -> Result<PathBuf, String> {
    static CELL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    once(&CELL, || {
        let lines = script("build-agent.sh", &[])?;
        lines
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .filter(|p| p.is_file())
            .ok_or_else(|| format!("scripts/build-agent.sh printed no agent path: {lines:?}"))
    })
}

/// QEMU and vhost-device-vsock, the host programs of every real boot.
pub fn vm_prerequisites() -> Result<(), String> {
    if !runs("qemu-system-x86_64") {
        return Err("qemu-system-x86_64 missing (apt-get install qemu-system-x86)".into());
    }
    if find_program("vhost-device-vsock").is_none() {
        return Err("vhost-device-vsock missing (cargo install vhost-device-vsock)".into());
    }
    Ok(())
}
