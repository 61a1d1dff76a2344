//! Downloading an artifact through the verified cache.

use std::path::PathBuf;

use oci_client::{Client, Reference};

use crate::artifact::ArtifactManifest;
use crate::cache::Cache;
use crate::config::{OciConfig, parse_reference};
use crate::digest::{matches, sha256_digest, sha256_hex};
use crate::error::OciError;
use crate::fetch::fetch_blob;
use crate::manifest::{parse_config, parse_manifest};
use crate::transport::{Operation, classify};
use crate::{MANIFEST_MEDIA_TYPE, MAX_MANIFEST_SIZE};

/// A pulled, verified artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledArtifact {
    /// The reference pulled, in canonical form.
    pub reference: String,
    /// Digest of the manifest (`sha256:<hex>`).
    pub manifest_digest: String,
    /// Digest of the wasm layer.
    pub wasm_digest: String,
    /// The component bytes.
    pub wasm: Vec<u8>,
    /// Where the component bytes live in the cache (`blobs/sha256/<hex>`).
    pub wasm_path: PathBuf,
    /// The encoded `FileDescriptorSet`, when the artifact has one.
    pub descriptor_set: Option<Vec<u8>>,
    /// The `org.opencontainers.image.version` annotation.
    pub version: Option<String>,
    /// WIT exports recorded in the config.
    pub exports: Vec<String>,
    /// WIT imports recorded in the config.
    pub imports: Vec<String>,
    /// True when no manifest or blob was downloaded (a tag pull may still
    /// have asked the registry which digest the tag points to).
    pub from_cache: bool,
    /// True when the registry was unreachable and a tag was resolved from
    /// the cache: the tag may since have moved.
    pub stale: bool,
}

/// Pull `reference` (tag or `@sha256:` digest) through the cache in `cfg.cache_dir`.
///
/// - Digest-pinned and fully cached: no network call at all.
/// - Tag: the registry is asked for the tag's current manifest digest; cached
///   manifests and blobs are reused. If the registry is unreachable and the
///   tag was pulled before, the cached artifact is returned with `stale: true`.
///
/// Every manifest and blob is checked against its digest and size, and the
/// manifest against the artifact rules of docs/images.md.
///
/// # Errors
///
/// [`OciError::NotFound`] naming the reference, [`OciError::InvalidManifest`],
/// [`OciError::DigestMismatch`], [`OciError::SizeMismatch`],
/// [`OciError::TooLarge`], [`OciError::InsecureRegistry`],
/// [`OciError::Unreachable`], [`OciError::Unauthorized`],
/// [`OciError::Registry`], [`OciError::Cache`].
pub async fn pull(cfg: &OciConfig, reference: &str) -> Result<PulledArtifact, OciError> {
    let parsed = parse_reference(reference)?;
    let cache = Cache::open(&cfg.cache_dir).await?;
    let key = parsed.whole();
    if let Some(pinned) = parsed.digest()
        && let Some(artifact) = cached(&cache, reference, &key, pinned).await?
    {
        tracing::debug!(%key, "pulled from cache without network");
        return Ok(artifact);
    }
    let client = cfg.client(&parsed).await;
    let auth = cfg.registry_auth();
    let digest = match parsed.digest() {
        Some(digest) => digest.to_string(),
        None => match client.fetch_manifest_digest(&parsed, &auth).await {
            Ok(digest) => digest,
            Err(e) => {
                let err = classify(cfg, &parsed, reference, Operation::Pull, e).await;
                if err.is_unreachable()
                    && let Some(digest) = cache.read_ref(&key).await?
                    && let Some(mut artifact) = cached(&cache, reference, &key, &digest).await?
                {
                    tracing::warn!(%key, %digest, "registry unreachable; using the cached (possibly stale) artifact");
                    artifact.stale = true;
                    return Ok(artifact);
                }
                return Err(err);
            }
        },
    };
    sha256_hex(&digest).map_err(|reason| OciError::Registry {
        reference: reference.to_string(),
        operation: "pull",
        detail: format!("the registry answered with a manifest digest it should not: {reason}"),
    })?;
    let by_digest = Reference::with_digest(
        parsed.registry().to_string(),
        parsed.repository().to_string(),
        digest.clone(),
    );
    let mut downloaded = false;
    let manifest_bytes = match cache.read_manifest(&digest).await? {
        Some(bytes) => bytes,
        None => {
            downloaded = true;
            fetch_manifest(cfg, &client, &by_digest, reference, &digest).await?
        }
    };
    let manifest = parse_manifest(reference, &manifest_bytes)?;
    let fetch = |e: &crate::artifact::Expected| {
        fetch_blob(cfg, &client, &cache, &by_digest, reference, e.clone())
    };
    let (config_bytes, fetched) = fetch(&manifest.config).await?;
    downloaded |= fetched;
    let config = parse_config(reference, &config_bytes, &manifest)?;
    let (wasm, fetched) = fetch(&manifest.wasm).await?;
    downloaded |= fetched;
    let descriptor_set = match &manifest.descriptor_set {
        Some(expected) => {
            let (bytes, fetched) = fetch(expected).await?;
            downloaded |= fetched;
            Some(bytes)
        }
        None => None,
    };
    cache.write_manifest(&digest, &manifest_bytes).await?;
    cache.write_ref(&key, &digest).await?;
    let component = config.component.unwrap_or_default();
    Ok(PulledArtifact {
        reference: key,
        manifest_digest: digest,
        wasm_digest: manifest.wasm.digest.clone(),
        wasm_path: cache.blob_path(&manifest.wasm.digest),
        wasm,
        descriptor_set,
        version: manifest.version,
        exports: component.exports,
        imports: component.imports,
        from_cache: !downloaded,
        stale: false,
    })
}

/// GET the manifest by digest and verify its bytes.
async fn fetch_manifest(
    cfg: &OciConfig,
    client: &Client,
    by_digest: &Reference,
    reference: &str,
    digest: &str,
) -> Result<Vec<u8>, OciError> {
    let auth = cfg.registry_auth();
    let bytes = match client
        .pull_manifest_raw(by_digest, &auth, &[MANIFEST_MEDIA_TYPE])
        .await
    {
        Ok((bytes, _)) => bytes,
        Err(e) => return Err(classify(cfg, by_digest, reference, Operation::Pull, e).await),
    };
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_MANIFEST_SIZE {
        return Err(OciError::TooLarge {
            what: "manifest".into(),
            digest: digest.to_string(),
            reference: reference.to_string(),
            size,
            limit: MAX_MANIFEST_SIZE,
        });
    }
    if !matches(&bytes, digest) {
        return Err(OciError::DigestMismatch {
            what: "manifest".into(),
            reference: reference.to_string(),
            expected: digest.to_string(),
            actual: sha256_digest(&bytes),
        });
    }
    Ok(bytes.to_vec())
}

/// The artifact for manifest `digest` if it and all its blobs are cached and intact.
async fn cached(
    cache: &Cache,
    reference: &str,
    key: &str,
    digest: &str,
) -> Result<Option<PulledArtifact>, OciError> {
    let Some(bytes) = cache.read_manifest(digest).await? else {
        return Ok(None);
    };
    let manifest: ArtifactManifest = parse_manifest(reference, &bytes)?;
    let Some(config) = cache.read_blob(&manifest.config).await? else {
        return Ok(None);
    };
    let config = parse_config(reference, &config, &manifest)?;
    let Some(wasm) = cache.read_blob(&manifest.wasm).await? else {
        return Ok(None);
    };
    let descriptor_set = match &manifest.descriptor_set {
        Some(expected) => match cache.read_blob(expected).await? {
            Some(bytes) => Some(bytes),
            None => return Ok(None),
        },
        None => None,
    };
    let component = config.component.unwrap_or_default();
    Ok(Some(PulledArtifact {
        reference: key.to_string(),
        manifest_digest: digest.to_string(),
        wasm_digest: manifest.wasm.digest.clone(),
        wasm_path: cache.blob_path(&manifest.wasm.digest),
        wasm,
        descriptor_set,
        version: manifest.version,
        exports: component.exports,
        imports: component.imports,
        from_cache: true,
        stale: false,
    }))
}
