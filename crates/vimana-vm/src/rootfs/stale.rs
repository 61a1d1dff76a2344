//! Work files a killed builder left in the cache's `tmp/`.
//!
//! Every build works in `tmp/build-<pid>-<n>` and writes references through
//! `tmp/ref-<pid>-<n>`, renaming the result into place only when complete.
//! A daemon killed mid-build leaves its work directory behind (an unpacked
//! image: often hundreds of MB); whatever carries the pid of a process that
//! is gone is removed before the next build and at daemon start. Entries of
//! this process and of live processes are left alone.

use std::path::Path;

/// Prefixes of the work entries in `tmp/`.
const PREFIXES: [&str; 2] = ["build-", "ref-"];

/// The pid in a work entry's name (`build-<pid>-<n>`, `ref-<pid>-<n>`).
fn owner(name: &str) -> Option<u32> {
    let rest = PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes the work entries in `tmp` whose process is gone; returns how
/// many were removed. Errors are logged, never fatal.
pub(crate) fn remove_stale_work(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        if pid == me || vimana_goplugin::pid_alive(pid, None) {
            continue;
        }
        let path = entry.path();
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match result {
            Ok(()) => {
                removed += 1;
                tracing::info!(path = %path.display(), pid, "removed the work files of a build that did not finish");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove stale build files")
            }
        }
    }
    removed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner() {
        assert_eq!(owner("build-123-0"), Some(123));
        assert_eq!(owner("ref-9-17"), Some(9));
        assert_eq!(owner("build-x-0"), None);
        assert_eq!(owner("image.ext4"), None);
    }
}
