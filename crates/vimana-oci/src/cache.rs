//! The content-addressed cache under `cache_dir`:
//!
//! - `blobs/sha256/<hex>`: config and layer blobs,
//! - `manifests/sha256/<hex>`: manifests, by their digest,
//! - `refs/<escaped reference>`: the manifest digest a reference last resolved to,
//! - `tmp/`: files being written (renamed into place when complete).
//!
//! Everything read back is verified against its digest (and size); a file
//! that does not match is deleted and reported as absent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;

use crate::artifact::Expected;
use crate::digest::{matches, sha256_hex};
use crate::error::OciError;

/// Distinguishes temp files written concurrently by one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.to_path_buf();
    move |source| OciError::Cache {
        path,
        action,
        source,
    }
}

impl Cache {
    /// Open (creating if needed) the cache at `root`.
    pub(crate) async fn open(root: &Path) -> Result<Self, OciError> {
        for sub in ["blobs/sha256", "manifests/sha256", "refs", "tmp"] {
            let dir = root.join(sub);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err(&dir, "create directory"))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Path of the blob with `digest` (which must be a valid sha256 digest).
    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.addressed("blobs", digest)
    }

    fn addressed(&self, kind: &str, digest: &str) -> PathBuf {
        // Callers validated the digest; fall back to a name that cannot exist.
        let hex = sha256_hex(digest).unwrap_or("invalid");
        self.root.join(kind).join("sha256").join(hex)
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.root.join("refs").join(escape(reference))
    }

    /// The cached blob, if present and matching `expected` digest and size.
    pub(crate) async fn read_blob(&self, expected: &Expected) -> Result<Option<Vec<u8>>, OciError> {
        let path = self.blob_path(&expected.digest);
        let bytes = self.read_verified(&path, &expected.digest).await?;
        Ok(bytes.filter(|b| u64::try_from(b.len()).is_ok_and(|len| len == expected.size)))
    }

    /// The cached manifest with `digest`, if present and intact.
    pub(crate) async fn read_manifest(&self, digest: &str) -> Result<Option<Vec<u8>>, OciError> {
        let path = self.addressed("manifests", digest);
        self.read_verified(&path, digest).await
    }

    async fn read_verified(&self, path: &Path, digest: &str) -> Result<Option<Vec<u8>>, OciError> {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, "read")(e)),
        };
        if matches(&bytes, digest) {
            return Ok(Some(bytes));
        }
        tracing::warn!(path = %path.display(), %digest, "cached content does not match its digest; discarding it");
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path, "remove corrupt file")(e)),
        }
    }

    /// Store a verified blob; returns its path.
    pub(crate) async fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, OciError> {
        let path = self.blob_path(digest);
        self.write_atomic(&path, bytes).await?;
        Ok(path)
    }

    /// Store a verified manifest.
    pub(crate) async fn write_manifest(&self, digest: &str, bytes: &[u8]) -> Result<(), OciError> {
        let path = self.addressed("manifests", digest);
        self.write_atomic(&path, bytes).await
    }

    /// The manifest digest `reference` last resolved to.
    pub(crate) async fn read_ref(&self, reference: &str) -> Result<Option<String>, OciError> {
        let path = self.ref_path(reference);
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text.trim().to_string()).filter(|d| sha256_hex(d).is_ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, "read")(e)),
        }
    }

    /// Record that `reference` resolved to `digest`.
    pub(crate) async fn write_ref(&self, reference: &str, digest: &str) -> Result<(), OciError> {
        let path = self.ref_path(reference);
        self.write_atomic(&path, format!("{digest}\n").as_bytes())
            .await
    }

    /// Write `bytes` to a temp file in `tmp/`, sync it, and rename it to `path`.
    async fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), OciError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(io_err(&tmp, "create temp file"))?;
            file.write_all(bytes).await.map_err(io_err(&tmp, "write"))?;
            file.sync_all().await.map_err(io_err(&tmp, "sync"))?;
            drop(file);
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(io_err(path, "rename into place"))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

/// A reference as one safe file name: bytes outside `[A-Za-z0-9._-]` become `%XX`.
pub fn escape(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    #[test]
    fn references_escape_to_flat_names() {
        assert_eq!(
            escape("127.0.0.1:5000/d/s:1.0"),
            "127.0.0.1%3A5000%2Fd%2Fs%3A1.0"
        );
        assert_eq!(escape(".."), "%2E.");
    }

    #[tokio::test]
    async fn corrupt_blob_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).await.unwrap();
        let digest = sha256_digest(b"hello");
        let expected = Expected {
            what: "wasm layer",
            media_type: crate::WASM_LAYER_MEDIA_TYPE.into(),
            digest: digest.clone(),
            size: 5,
        };
        let path = cache.write_blob(&digest, b"hello").await.unwrap();
        assert_eq!(cache.read_blob(&expected).await.unwrap().unwrap(), b"hello");
        std::fs::write(&path, b"hellO").unwrap();
        assert!(cache.read_blob(&expected).await.unwrap().is_none());
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn refs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).await.unwrap();
        assert!(cache.read_ref("r/x:1").await.unwrap().is_none());
        let digest = sha256_digest(b"m");
        cache.write_ref("r/x:1", &digest).await.unwrap();
        assert_eq!(cache.read_ref("r/x:1").await.unwrap(), Some(digest));
    }
}
