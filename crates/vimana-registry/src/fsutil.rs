//! Small filesystem helpers: atomic writes, joins that stay inside.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::{RegistryError, Result};

/// Write `data` to `path` atomically: a temporary file in the same
/// directory, fsync, then rename over the target.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::io("creating", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| RegistryError::io("creating a temporary file in", dir, e))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| RegistryError::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| RegistryError::io("replacing", path, e.error))?;
    Ok(())
}

/// `base` joined with `rel`, which comes from a package index (`what` names
/// it in the error): refused unless every component of `rel` is a plain
/// name, so the result always stays inside `base`.
pub fn join_inside(base: &Path, rel: &str, what: &'static str) -> Result<PathBuf> {
    let path = Path::new(rel);
    let plain = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(RegistryError::UnsafePath {
            what,
            value: rel.to_string(),
            base: base.to_path_buf(),
        });
    }
    Ok(base.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside() {
        let base = Path::new("/home/v/packages");
        assert_eq!(
            join_inside(base, "celestia", "package name").unwrap(),
            base.join("celestia")
        );
        assert_eq!(
            join_inside(base, "bin/node", "bin").unwrap(),
            base.join("bin/node")
        );
        for bad in ["", "..", "../x", "a/../../x", "/etc", "./x"] {
            let e = join_inside(base, bad, "version").unwrap_err();
            assert!(
                e.to_string().contains("version") && e.to_string().contains("/home/v/packages"),
                "{bad}: {e}"
            );
        }
    }
}
