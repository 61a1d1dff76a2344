//! What a provider's [`check`](super::Vmm::check) needs to know about the
//! machine, gathered once by the caller.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Facts about this host.
#[derive(Clone, Debug)]
pub struct HostFacts {
    /// Whether KVM can run a guest (`vimana_host::kvm_usable`); `Err` holds
    /// the reason.
    pub kvm: Result<(), String>,
    /// Directories searched for binaries given by bare name.
    pub search_path: Vec<PathBuf>,
}

impl HostFacts {
    /// `PATH` plus `~/.cargo/bin` (where `cargo install vhost-device-vsock`
    /// puts its binary).
    pub fn from_env(kvm: Result<(), String>) -> Self {
        let mut search_path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if let Some(home) = std::env::var_os("HOME") {
            let cargo_bin = Path::new(&home).join(".cargo/bin");
            if !search_path.contains(&cargo_bin) {
                search_path.push(cargo_bin);
            }
        }
        Self { kvm, search_path }
    }

    /// Resolves `binary`: a path with a `/` must be an executable file; a
    /// bare name is looked up in `search_path`.
    pub fn find(&self, binary: &Path) -> Option<PathBuf> {
        if binary.components().count() > 1 {
            return is_executable(binary).then(|| binary.to_path_buf());
        }
        self.search_path
            .iter()
            .map(|dir| dir.join(binary))
            .find(|p| is_executable(p))
    }

    /// `Ok(path)` or the message `check` returns for a missing binary.
    pub(crate) fn require(&self, binary: &Path, fix: &str) -> Result<PathBuf, String> {
        self.find(binary).ok_or_else(|| {
            format!(
                "{} not found (searched {}); {fix}",
                binary.display(),
                if binary.components().count() > 1 {
                    "that path".to_string()
                } else {
                    "PATH and ~/.cargo/bin".to_string()
                }
            )
        })
    }

    /// `Ok` or the message for a provider that needs KVM.
    pub(crate) fn require_kvm(&self, provider: &str) -> Result<(), String> {
        self.kvm
            .as_ref()
            .map(|_| ())
            .map_err(|why| format!("{provider} needs KVM, which is not usable here: {why}"))
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_binaries_on_the_search_path() {
        let host = HostFacts {
            kvm: Err("no /dev/kvm".into()),
            search_path: vec![PathBuf::from("/nonexistent"), PathBuf::from("/bin")],
        };
        assert_eq!(host.find(Path::new("sh")), Some(PathBuf::from("/bin/sh")));
        assert_eq!(host.find(Path::new("no-such-binary-xyz")), None);
        assert_eq!(
            host.find(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        let err = host
            .require(Path::new("no-such-binary-xyz"), "install it")
            .unwrap_err();
        assert!(err.contains("no-such-binary-xyz not found"), "{err}");
        assert!(err.ends_with("install it"), "{err}");
        let err = host.require_kvm("firecracker").unwrap_err();
        assert!(err.contains("no /dev/kvm"), "{err}");
    }
}
