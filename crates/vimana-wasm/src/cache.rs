//! On-disk cache of precompiled components ([`Host::load_cached`]).
//!
//! Layout: `<dir>/<sha256(digest)>-<engine key>.cwasm` holds the output of
//! `Component::serialize`, and `<same>.cwasm.sha256` the hex sha256 of that
//! file. Both are written atomically (temporary file, `fsync`, `rename`,
//! directory `fsync`). The engine key is a sha256 of wasmtime's
//! [`precompile_compatibility_hash`](wasmtime::Engine::precompile_compatibility_hash)
//! (target, compiler flags, tunables, wasm features, wasmtime version), so a
//! different engine configuration or wasmtime upgrade uses other files.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::component::LoadedComponent;
use crate::{Host, HostError};

/// Whether [`Host::load_cached`] used a cached artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A verified precompiled artifact was loaded; nothing was compiled.
    Hit,
    /// The component was compiled (no artifact, or a corrupt or
    /// incompatible one) and the artifact was (re)written.
    Miss,
}

impl Host {
    /// Loads a component through the compile cache in `cache_dir`, keyed by
    /// `digest` (the caller's content identity of `bytes`, e.g. an OCI
    /// `sha256:…` digest) and by this host's engine configuration.
    ///
    /// `cache_dir` is created with mode 0700 if missing and refused
    /// ([`HostError::Cache`]) if group- or world-writable. A missing,
    /// truncated, tampered or incompatible artifact is recompiled and
    /// overwritten, never an error; failing to write the artifact is not an
    /// error either (the compiled component is returned).
    pub fn load_cached(
        &self,
        bytes: &[u8],
        digest: &str,
        cache_dir: &Path,
    ) -> Result<(LoadedComponent, CacheOutcome), HostError> {
        ensure_private_dir(cache_dir)?;
        let path = self.cache_path(digest, cache_dir);
        let engine = &self.inner.engine;
        if let Some(component) = read_verified(engine, &path) {
            let loaded = LoadedComponent::new(Arc::clone(&self.inner), &component)?;
            return Ok((loaded, CacheOutcome::Hit));
        }
        let component =
            Component::new(engine, bytes).map_err(|e| HostError::Compile(format!("{e:#}")))?;
        let loaded = LoadedComponent::new(Arc::clone(&self.inner), &component)?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = write_artifact(&path, &artifact) {
                    tracing::warn!(path = %path.display(), "compile cache write failed: {e}");
                }
            }
            Err(e) => tracing::warn!("component serialization failed: {e:#}"),
        }
        Ok((loaded, CacheOutcome::Miss))
    }

    /// The artifact path [`load_cached`](Self::load_cached) uses for
    /// `digest` under `cache_dir`.
    pub fn cache_path(&self, digest: &str, cache_dir: &Path) -> PathBuf {
        let name = format!(
            "{}-{}.cwasm",
            hex(&Sha256::digest(digest)),
            engine_key(&self.inner.engine)
        );
        cache_dir.join(name)
    }
}

/// Hex sha256 (first 128 bits) of the engine's precompile compatibility
/// hash: equal for engines whose artifacts are interchangeable.
pub(crate) fn engine_key(engine: &Engine) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    "vimana-wasm cache v1".hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize()[..16])
}

/// A [`Hasher`] feeding sha256, so the key does not depend on the (unstable
/// across Rust releases) std hasher.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_le_bytes(first)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn ensure_private_dir(dir: &Path) -> Result<(), HostError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| HostError::Cache(format!("create {}: {e}", dir.display())))?;
    let meta =
        fs::metadata(dir).map_err(|e| HostError::Cache(format!("{}: {e}", dir.display())))?;
    let mode = meta.permissions().mode();
    if !meta.is_dir() || mode & 0o022 != 0 {
        return Err(HostError::Cache(format!(
            "{} must be a directory writable only by its owner (mode {:o})",
            dir.display(),
            mode & 0o7777
        )));
    }
    Ok(())
}

/// The cached component at `path` if its sidecar hash matches and wasmtime
/// accepts it; `None` (recompile) otherwise.
fn read_verified(engine: &Engine, path: &Path) -> Option<Component> {
    let expected = fs::read_to_string(sidecar(path)).ok()?;
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let artifact = fs::read(path).ok()?;
    if hex(&Sha256::digest(&artifact)) != expected.trim() {
        return None;
    }
    // SAFETY: `deserialize` runs native code from the artifact, so the bytes
    // must come from `Component::serialize` of a compatible engine. They do:
    // the file lives in vimana's own cache directory (created 0700, refused
    // if group/world-writable), was written by `write_artifact` (0600) from
    // `Component::serialize`, its name carries the engine compatibility key,
    // and the exact bytes passed here were just checked against the sha256
    // sidecar written with them, so a truncated or altered file is never
    // loaded. We deserialize the verified in-memory copy rather than
    // `deserialize_file` so the file cannot change between the check and
    // the (mmap-based) load. wasmtime itself also checks the version and
    // configuration recorded in the artifact.
    unsafe { Component::deserialize(engine, &artifact) }.ok()
}

/// Writes the artifact, then its sidecar hash, each atomically.
fn write_artifact(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    write_atomic(path, artifact)?;
    write_atomic(&sidecar(path), hex(&Sha256::digest(artifact)).as_bytes())?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}.{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(epochs: bool) -> Engine {
        let mut c = wasmtime::Config::new();
        c.epoch_interruption(epochs);
        Engine::new(&c).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn engine_key_is_stable_and_config_sensitive() {
        assert_eq!(engine_key(&engine(true)), engine_key(&engine(true)));
        assert_ne!(engine_key(&engine(true)), engine_key(&engine(false)));
        assert_eq!(engine_key(&engine(true)).len(), 32);
    }

    #[test]
    fn shared_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            ensure_private_dir(&open),
            Err(HostError::Cache(_))
        ));
        let fresh = dir.path().join("a/b");
        ensure_private_dir(&fresh).unwrap_or_else(|e| panic!("{e}"));
        let mode = fs::metadata(&fresh)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o777, 0o700);
    }
}
