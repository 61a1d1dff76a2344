//! Writing archives: gzip with fixed header fields, atomic replacement
//! (temporary file + fsync + rename, so a crash never leaves a half-written
//! archive under the final name), and a content-addressed cache.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::{InitramfsError, InitramfsSpec, ModuleFile, assemble};

/// Version of the archive layout and `/init`; part of every cache key, so
/// a vimana that builds different archives never reuses older ones.
pub const FORMAT_VERSION: u32 = 1;

/// What [`build`] or [`build_cached`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The gzip'd newc archive.
    pub path: PathBuf,
    /// Hex sha256 of [`FORMAT_VERSION`] and the uncompressed archive: the
    /// cache key (equal inputs, equal key).
    pub key: String,
    /// Size of the compressed archive in bytes.
    pub size: u64,
    /// The modules in the archive, in load order.
    pub modules: Vec<ModuleFile>,
    /// Name of the modules directory (`6.1.0-56-cloud-amd64`), if modules
    /// were requested.
    pub kernel_release: Option<String>,
    /// `build_cached` found the archive in the cache and wrote nothing.
    pub reused: bool,
}

fn cache_key(cpio: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("vimana-initramfs/{FORMAT_VERSION}\n").as_bytes());
    hasher.update(cpio);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    // GzEncoder::new writes mtime 0 and no file name: deterministic.
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 2), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Writes `data` to `path` via a temporary file in the same directory.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<(), InitramfsError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| InitramfsError::io("create", &tmp, e))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| InitramfsError::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| InitramfsError::io("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; failing to sync a directory is not fatal.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn compress(cpio: &[u8], out: &Path) -> Result<u64, InitramfsError> {
    let gz = gzip(cpio).map_err(|e| InitramfsError::io("compress", out, e))?;
    write_atomically(out, &gz)?;
    Ok(gz.len() as u64)
}

/// Builds the archive described by `spec` into `out` (replaced atomically).
/// The same inputs always give the same bytes.
pub fn build(spec: &InitramfsSpec, out: &Path) -> Result<BuildInfo, InitramfsError> {
    let assembled = assemble(spec)?;
    let cpio = assembled.archive.to_newc();
    let key = cache_key(&cpio);
    let size = compress(&cpio, out)?;
    Ok(BuildInfo {
        path: out.to_owned(),
        key,
        size,
        modules: assembled.modules,
        kernel_release: assembled.kernel_release,
        reused: false,
    })
}

/// Builds the archive into `cache_dir/initramfs-<key>.cpio.gz` unless that
/// file exists already, in which case nothing is written (`reused`). The
/// key covers the contents of every input, not their paths or mtimes.
pub fn build_cached(spec: &InitramfsSpec, cache_dir: &Path) -> Result<BuildInfo, InitramfsError> {
    fs::create_dir_all(cache_dir).map_err(|e| InitramfsError::io("create", cache_dir, e))?;
    let assembled = assemble(spec)?;
    let cpio = assembled.archive.to_newc();
    let key = cache_key(&cpio);
    let path = cache_dir.join(format!("initramfs-{key}.cpio.gz"));
    let (size, reused) = match fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => (meta.len(), true),
        _ => (compress(&cpio, &path)?, false),
    };
    Ok(BuildInfo {
        path,
        key,
        size,
        modules: assembled.modules,
        kernel_release: assembled.kernel_release,
        reused,
    })
}
