//! Root filesystems from OCI images.
//!
//! [`RootfsBuilder::build`] pulls an image (linux/amd64 from an index),
//! applies its layers in order with OCI whiteouts, injects the guest agent
//! at `/sbin/vimana-agent` and turns the tree into an ext4 image with
//! `mkfs.ext4 -d`. Images are cached under `cache_dir`:
//!
//! - `images/<key>.ext4`: key = sha256 of manifest digest, agent digest and size,
//! - `refs/<escaped reference>`: the manifest digest a reference resolved to,
//! - `tmp/`: work directories (unpacked tree, layer blobs, the image being
//!   written), renamed into place or removed; a crash never leaves a
//!   half-written image under its final name, and what a killed build left
//!   in `tmp/` is removed by the next build and at daemon start (`stale.rs`).
//!
//! A reference whose image is cached is served without contacting the
//! registry (so builds work offline). A tag is therefore resolved once per
//! cache: to pick up a moved tag, pin the digest or clear `refs/`.

mod error;
mod inject;
mod pull;
mod stale;
mod unpack;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub use error::RootfsError;
pub use pull::check_manifest_document;

use error::io_err;
use inject::inject_agent;
use pull::{Puller, hex, parse_reference, sha256_hex};
use vimana_oci::{reference_file_name as escape, sha256_digest};

/// Where the agent goes inside the image.
pub const AGENT_PATH: &str = "sbin/vimana-agent";
/// The ext4 volume label.
pub const LABEL: &str = "vimana-root";
const MIB: u64 = 1024 * 1024;

static WORK_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Builds (and caches) ext4 root filesystems from OCI images.
#[derive(Debug, Clone)]
pub struct RootfsBuilder {
    cache_dir: PathBuf,
    insecure_registries: Vec<String>,
}

/// A built (or reused) root filesystem image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsImage {
    /// The ext4 image (`<cache_dir>/images/<key>.ext4`).
    pub path: PathBuf,
    /// Digest of the image manifest the root was built from.
    pub manifest_digest: String,
    /// True when the image came from the cache and nothing was pulled.
    pub reused: bool,
}

impl RootfsBuilder {
    /// A builder caching in `cache_dir`, using plain http only for
    /// `insecure_registries` (`host[:port]` as written in references).
    pub fn new(cache_dir: impl Into<PathBuf>, insecure_registries: Vec<String>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            insecure_registries,
        }
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Removes what builds of processes that are gone (a daemon killed
    /// mid-build) left in the cache's `tmp/`; returns how many entries.
    /// Every build does this first; the daemon also does it at start.
    pub fn remove_stale_work(&self) -> usize {
        stale::remove_stale_work(&self.cache_dir.join("tmp"))
    }

    /// Pulls `reference` (e.g. `127.0.0.1:5000/library/busybox:1`), applies its
    /// layers in order with OCI whiteouts, injects the agent at
    /// `/sbin/vimana-agent` (0755) and produces an ext4 image labelled
    /// `vimana-root`, cached by manifest digest + agent digest + size.
    ///
    /// `size_bytes` defaults to unpacked size × 1.5 + 64 MiB, rounded up to MiB.
    ///
    /// # Errors
    ///
    /// See [`RootfsError`]: every variant names the reference, layer or path
    /// involved and how to fix it.
    pub async fn build(
        &self,
        reference: &str,
        agent: &Path,
        size_bytes: Option<u64>,
    ) -> Result<RootfsImage, RootfsError> {
        let parsed = parse_reference(reference)?;
        let agent_bytes = tokio::fs::read(agent)
            .await
            .map_err(|source| RootfsError::Agent {
                path: agent.to_path_buf(),
                source,
            })?;
        let agent_digest = sha256_digest(&agent_bytes);
        for sub in ["images", "refs", "tmp"] {
            let dir = self.cache_dir.join(sub);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err(&dir, "create cache directory"))?;
        }
        stale::remove_stale_work(&self.cache_dir.join("tmp"));
        let ref_key = parsed.whole();
        let ref_path = self.cache_dir.join("refs").join(escape(&ref_key));

        // Cached: no registry contact at all.
        let known = match parsed.digest() {
            Some(digest) => Some(digest.to_string()),
            None => read_ref(&ref_path).await?,
        };
        if let Some(digest) = known {
            let path = self.image_path(&digest, &agent_digest, size_bytes);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                tracing::debug!(reference, %digest, path = %path.display(), "reusing cached root filesystem");
                return Ok(RootfsImage {
                    path,
                    manifest_digest: digest,
                    reused: true,
                });
            }
        }

        let puller = Puller::new(parsed, reference, &self.insecure_registries);
        let resolved = puller.resolve().await?;
        let path = self.image_path(&resolved.manifest_digest, &agent_digest, size_bytes);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let n = WORK_COUNTER.fetch_add(1, Ordering::Relaxed);
            let work = self
                .cache_dir
                .join("tmp")
                .join(format!("build-{}-{n}", std::process::id()));
            let result = self
                .build_in(
                    &work,
                    &puller,
                    &resolved,
                    reference,
                    &agent_bytes,
                    size_bytes,
                    &path,
                )
                .await;
            if let Err(e) = tokio::fs::remove_dir_all(&work).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %work.display(), error = %e, "cannot remove the work directory");
            }
            result?;
        }
        write_atomic(
            &ref_path,
            &self.cache_dir.join("tmp"),
            format!("{}\n", resolved.manifest_digest).as_bytes(),
        )
        .await?;
        Ok(RootfsImage {
            path,
            manifest_digest: resolved.manifest_digest,
            reused: false,
        })
    }

    fn image_path(&self, manifest_digest: &str, agent_digest: &str, size: Option<u64>) -> PathBuf {
        let size = size.map_or_else(|| "auto".to_string(), |s| s.to_string());
        let key = Sha256::digest(format!("{manifest_digest}\n{agent_digest}\n{size}\n"));
        self.cache_dir
            .join("images")
            .join(format!("{}.ext4", hex(&key)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_in(
        &self,
        work: &Path,
        puller: &Puller<'_>,
        resolved: &pull::Resolved,
        reference: &str,
        agent: &[u8],
        size_bytes: Option<u64>,
        final_path: &Path,
    ) -> Result<(), RootfsError> {
        let tree = work.join("root");
        let blobs = work.join("blobs");
        for dir in [&tree, &blobs] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io_err(dir, "create work directory"))?;
        }
        let mut stats = unpack::UnpackStats::default();
        for layer in &resolved.layers {
            let hex = sha256_hex(&layer.digest).unwrap_or("invalid");
            let blob = blobs.join(hex);
            puller.download(layer, &blob).await?;
            let (tree_c, blob_c, layer_c, reference_c) = (
                tree.clone(),
                blob.clone(),
                layer.clone(),
                reference.to_string(),
            );
            stats = tokio::task::spawn_blocking(move || {
                let mut stats = stats;
                unpack::apply_layer(&tree_c, &blob_c, &layer_c, &reference_c, &mut stats)
                    .map(|()| stats)
            })
            .await
            .map_err(|e| RootfsError::Io {
                path: tree.clone(),
                action: "apply layer (task failed)",
                source: std::io::Error::other(e.to_string()),
            })??;
            tokio::fs::remove_file(&blob)
                .await
                .map_err(io_err(&blob, "remove layer file"))?;
        }
        if stats.skipped_special > 0 {
            tracing::info!(
                reference,
                skipped = stats.skipped_special,
                "device nodes and FIFOs in the image were skipped (devtmpfs provides /dev)"
            );
        }
        let tree_c = tree.clone();
        let agent = agent.to_vec();
        let unpacked = tokio::task::spawn_blocking(move || inject_agent(&tree_c, &agent))
            .await
            .map_err(|e| RootfsError::Io {
                path: tree.clone(),
                action: "inject the agent (task failed)",
                source: std::io::Error::other(e.to_string()),
            })??;
        let size = match size_bytes {
            Some(size) => size.div_ceil(1024) * 1024,
            None => {
                let wanted = unpacked
                    .saturating_add(unpacked / 2)
                    .saturating_add(64 * MIB);
                wanted.div_ceil(MIB) * MIB
            }
        };
        let image = work.join("image.ext4");
        mkfs(&tree, &image, size).await?;
        tokio::fs::rename(&image, final_path)
            .await
            .map_err(io_err(final_path, "rename the image into place"))?;
        Ok(())
    }
}

/// The `mkfs.ext4` binary: PATH first, then the sbin directories.
fn find_mkfs() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("mkfs.ext4"))
        .find(|p| p.is_file())
}

async fn mkfs(tree: &Path, image: &Path, size: u64) -> Result<(), RootfsError> {
    let mkfs = find_mkfs().ok_or(RootfsError::MkfsMissing)?;
    let file = tokio::fs::File::create(image)
        .await
        .map_err(io_err(image, "create image"))?;
    file.set_len(size)
        .await
        .map_err(io_err(image, "size image"))?;
    drop(file);
    let output = tokio::process::Command::new(&mkfs)
        .args(["-q", "-F", "-d"])
        .arg(tree)
        .args(["-L", LABEL])
        .arg(image)
        .arg(format!("{}k", size / 1024))
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                RootfsError::MkfsMissing
            } else {
                RootfsError::Io {
                    path: mkfs.clone(),
                    action: "run",
                    source: e,
                }
            }
        })?;
    if !output.status.success() {
        return Err(RootfsError::Mkfs {
            image: image.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let file = tokio::fs::File::open(image)
        .await
        .map_err(io_err(image, "open image"))?;
    file.sync_all().await.map_err(io_err(image, "sync image"))?;
    Ok(())
}

async fn read_ref(path: &Path) -> Result<Option<String>, RootfsError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|d| sha256_hex(d).is_some())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "read")(e)),
    }
}

async fn write_atomic(path: &Path, tmp_dir: &Path, bytes: &[u8]) -> Result<(), RootfsError> {
    let n = WORK_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = tmp_dir.join(format!("ref-{}-{n}", std::process::id()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(io_err(&tmp, "write"))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io_err(path, "rename into place"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_depends_on_all_inputs() {
        let b = RootfsBuilder::new("/c", vec![]);
        let a = b.image_path("sha256:1", "sha256:2", None);
        assert_ne!(a, b.image_path("sha256:1", "sha256:3", None));
        assert_ne!(a, b.image_path("sha256:1", "sha256:2", Some(1)));
        assert_ne!(a, b.image_path("sha256:0", "sha256:2", None));
        assert_eq!(
            escape("127.0.0.1:5000/a/b:1"),
            "127.0.0.1%3A5000%2Fa%2Fb%3A1"
        );
    }
}
