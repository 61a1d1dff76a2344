//! Small filesystem helpers: atomic writes.

use std::io::Write;
use std::path::Path;

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
