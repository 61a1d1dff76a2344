//! What a VM leaves on the host once it is removed, and after a crash: its
//! run directory (`<state_dir>/<name>`, with the `root.ext4` copy, sockets
//! and console log) and its bridge leftovers (TAP, lease, forward table).

use std::path::Path;

use vimana_api::WorkloadName;
use vimana_core::DriverError;

use super::VmDriver;
use crate::network::CleanupReport;

/// The directory under the VMs' state directory that holds the bridge's
/// leases (not a VM's run directory).
pub(crate) const NET_DIR: &str = "net";

/// Deletes `<state_dir>/<name>`, refusing anything that is not a directory
/// directly inside `state_dir` (a symlink, say). Absent is fine.
pub fn remove_run_dir(state_dir: &Path, name: &str) -> Result<(), DriverError> {
    if name == NET_DIR || name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(DriverError::new(format!(
            "left {name:?} alone in {}: it is not a VM's run directory",
            state_dir.display()
        )));
    }
    let dir = state_dir.join(name);
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(DriverError::new(format!(
                "cannot inspect {}: {e}",
                dir.display()
            )));
        }
    };
    if !meta.is_dir() {
        return Err(DriverError::new(format!(
            "left {} alone: it is not a directory inside {}",
            dir.display(),
            state_dir.display()
        )));
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::new(format!(
            "cannot delete the VM's run directory {}: {e}; delete it by hand",
            dir.display()
        ))),
    }
}

impl VmDriver {
    /// Deletes the TAP devices, leases and forward tables of VMs not in
    /// `live` (the VM workloads the store still holds): what a daemon
    /// killed mid-boot left behind. Nothing happens on a host whose bridge
    /// was never used (no `<state_dir>/net`).
    pub async fn cleanup_orphans(
        &self,
        live: &[WorkloadName],
    ) -> Result<CleanupReport, DriverError> {
        if !self.cfg.state_dir.join(NET_DIR).is_dir() {
            return Ok(CleanupReport::default());
        }
        let net = self.network()?;
        net.cleanup_orphans(live.iter().map(WorkloadName::as_str))
            .await
            .map_err(|e| DriverError::new(format!("cleaning up after VMs that are gone: {e}")))
    }

    /// A removed VM: its bridge leftovers, then its run directory.
    pub(crate) async fn forget(&self, name: &WorkloadName) -> Result<(), DriverError> {
        if self.cfg.state_dir.join(NET_DIR).is_dir() {
            let net = self.network()?;
            net.forget(name.as_str())
                .await
                .map_err(|e| DriverError::new(format!("releasing the VM's network: {e}")))?;
        }
        remove_run_dir(&self.cfg.state_dir, name.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn run_dirs_only_inside_the_state_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let vms = tmp.path().join("vms");
        let outside = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(vms.join(NET_DIR)).unwrap();
        std::os::unix::fs::symlink(&outside, vms.join("vm-link")).unwrap();
        assert!(remove_run_dir(&vms, "vm-link").is_err());
        assert!(outside.is_dir());
        assert!(remove_run_dir(&vms, NET_DIR).is_err());
        assert!(vms.join(NET_DIR).is_dir());

        std::fs::create_dir_all(vms.join("vm-real")).unwrap();
        std::fs::write(vms.join("vm-real/root.ext4"), "x").unwrap();
        remove_run_dir(&vms, "vm-real").unwrap();
        assert!(!vms.join("vm-real").exists());
        // Gone already: nothing to do.
        remove_run_dir(&vms, "vm-real").unwrap();
    }
}
