//! PATH lookup and filesystem helpers.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::checks::HYPERVISORS;

/// First executable regular file named `binary` on `$PATH`.
pub fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    which_in(binary, &path)
}

pub(crate) fn which_in(binary: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The supported hypervisor binaries and where they are on `$PATH`, if anywhere.
pub fn hypervisors() -> Vec<(String, Option<PathBuf>)> {
    HYPERVISORS
        .iter()
        .map(|(binary, _)| ((*binary).to_owned(), which(binary)))
        .collect()
}

/// `path` itself if it exists, else its nearest existing ancestor.
///
/// Relative paths are resolved against the current directory first.
pub(crate) fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    absolute
        .ancestors()
        .find(|p| p.exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ancestor_of_existing_path_is_itself() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(existing_ancestor(dir.path()).unwrap(), dir.path());
    }

    #[test]
    fn ancestor_walks_up_missing_components() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("a/b/c/.vimana");
        assert_eq!(existing_ancestor(&missing).unwrap(), dir.path());
    }

    #[test]
    fn ancestor_skips_dangling_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert_eq!(existing_ancestor(&link.join("x")).unwrap(), dir.path());
    }

    #[test]
    fn ancestor_of_relative_path_is_absolute() {
        let found = existing_ancestor(Path::new("does/not/exist/at/all")).unwrap();
        assert!(found.is_absolute());
    }

    #[test]
    fn ancestor_reaches_root() {
        assert_eq!(
            existing_ancestor(Path::new("/nonexistent-vimana-test/x")).unwrap(),
            Path::new("/")
        );
    }

    #[test]
    fn which_finds_executables_only() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        let plain = dir.path().join("plain");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(dir.path().join("subdir")).unwrap();
        let path =
            std::env::join_paths(["/nonexistent-vimana", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(which_in("tool", &path), Some(exe));
        assert_eq!(which_in("plain", &path), None);
        assert_eq!(which_in("subdir", &path), None);
        assert_eq!(which_in("missing", &path), None);
    }
}
