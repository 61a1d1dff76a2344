//! Talking to the registry: resolving a reference to an image manifest
//! (choosing linux/amd64 from an index) and downloading verified blobs.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use vimana_oci::{error_chain, sha256_digest};

use super::error::{RootfsError, io_err};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest accepted.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
}

/// One layer to download and apply, in order.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) media_type: String,
    pub(crate) compression: Compression,
}

/// A resolved image: the manifest digest vimana caches under and its layers.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) manifest_digest: String,
    pub(crate) layers: Vec<Layer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex part of a well-formed `sha256:` digest.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    vimana_oci::sha256_hex(digest).ok()
}

/// Parse `reference`, requiring a pinned digest (if any) to be sha256.
pub(crate) fn parse_reference(reference: &str) -> Result<Reference, RootfsError> {
    vimana_oci::parse_reference(reference).map_err(|e| RootfsError::InvalidReference {
        reference: reference.to_string(),
        reason: match e {
            vimana_oci::OciError::InvalidReference { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// Parses a manifest or index document of `reference`.
fn parse_document(reference: &str, bytes: &[u8]) -> Result<RawManifest, RootfsError> {
    serde_json::from_slice(bytes).map_err(|e| RootfsError::UnsupportedManifest {
        reference: reference.to_string(),
        reason: format!("the manifest is not valid JSON: {e}"),
    })
}

/// The linux/amd64 entry of an index.
fn choose_platform(
    reference: &str,
    entries: Vec<RawDescriptor>,
) -> Result<RawDescriptor, RootfsError> {
    let offered: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    let chosen = entries.into_iter().find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
    });
    chosen.ok_or_else(|| RootfsError::NoPlatform {
        reference: reference.to_string(),
        offered: if offered.is_empty() {
            "none".into()
        } else {
            offered.join(", ")
        },
    })
}

/// The layers of an image manifest.
fn image_of(
    reference: &str,
    manifest: RawManifest,
    digest: String,
) -> Result<Resolved, RootfsError> {
    let unsupported = |reason: String| RootfsError::UnsupportedManifest {
        reference: reference.to_string(),
        reason,
    };
    if let Some(media_type) = &manifest.media_type
        && media_type != OCI_MANIFEST
        && media_type != DOCKER_MANIFEST
    {
        return Err(unsupported(format!("manifest media type `{media_type}`")));
    }
    let Some(raw_layers) = manifest.layers else {
        return Err(unsupported("the manifest lists no layers".into()));
    };
    let mut layers = Vec::with_capacity(raw_layers.len());
    for layer in raw_layers {
        let compression = match layer.media_type.as_str() {
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            _ => {
                return Err(RootfsError::UnsupportedLayer {
                    reference: reference.to_string(),
                    layer: layer.digest,
                    media_type: layer.media_type,
                });
            }
        };
        if sha256_hex(&layer.digest).is_none() {
            return Err(unsupported(format!(
                "layer digest `{}` is not a sha256 digest",
                layer.digest
            )));
        }
        let size = u64::try_from(layer.size)
            .map_err(|_| unsupported(format!("layer {} has a negative size", layer.digest)))?;
        layers.push(Layer {
            digest: layer.digest,
            size,
            media_type: layer.media_type,
            compression,
        });
    }
    Ok(Resolved {
        manifest_digest: digest,
        layers,
    })
}

/// Checks a manifest or index document as a pull does, without a registry
/// (an index must offer linux/amd64, a manifest must list supported
/// layers): the entry point of the fuzz targets (vimana-fuzz).
pub fn check_manifest_document(reference: &str, bytes: &[u8]) -> Result<(), RootfsError> {
    let manifest = parse_document(reference, bytes)?;
    match manifest.manifests {
        Some(entries) => choose_platform(reference, entries).map(drop),
        None => image_of(reference, manifest, String::new()).map(drop),
    }
}

/// A registry session for one reference.
pub(crate) struct Puller<'a> {
    client: Client,
    parsed: Reference,
    reference: &'a str,
    insecure: bool,
}

impl<'a> Puller<'a> {
    pub(crate) fn new(
        parsed: Reference,
        reference: &'a str,
        insecure_registries: &[String],
    ) -> Self {
        let insecure = insecure_registries
            .iter()
            .any(|r| r == parsed.resolve_registry() || r == parsed.registry());
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure_registries.to_vec()),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        });
        Self {
            client,
            parsed,
            reference,
            insecure,
        }
    }

    fn by_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.parsed.registry().to_string(),
            self.parsed.repository().to_string(),
            digest.to_string(),
        )
    }

    fn classify(&self, err: OciDistributionError) -> RootfsError {
        let reference = self.reference.to_string();
        match &err {
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                RootfsError::Unreachable {
                    registry: self.parsed.resolve_registry().to_string(),
                    scheme: if self.insecure { "http" } else { "https" },
                    reference,
                    detail: error_chain(&err),
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_)
            | OciDistributionError::ServerError { code: 404, .. } => {
                RootfsError::NotFound { reference }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) =>
            {
                RootfsError::NotFound { reference }
            }
            _ => RootfsError::Registry {
                reference,
                detail: error_chain(&err),
            },
        }
    }

    /// Resolve the reference to an image manifest (picking linux/amd64 from an index).
    pub(crate) async fn resolve(&self) -> Result<Resolved, RootfsError> {
        let accepted = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
        let pinned = self.parsed.digest().map(str::to_string);
        let (bytes, digest) = self.fetch_manifest(&self.parsed, pinned, &accepted).await?;
        let manifest = parse_document(self.reference, &bytes)?;
        if let Some(entries) = manifest.manifests {
            let chosen = choose_platform(self.reference, entries)?;
            let by_digest = self.by_digest(&chosen.digest);
            let (bytes, digest) = self
                .fetch_manifest(
                    &by_digest,
                    Some(chosen.digest.clone()),
                    &[OCI_MANIFEST, DOCKER_MANIFEST],
                )
                .await?;
            let manifest = parse_document(self.reference, &bytes)?;
            return image_of(self.reference, manifest, digest);
        }
        image_of(self.reference, manifest, digest)
    }

    /// Fetch a manifest and check its bytes against `expected` (or the
    /// digest the registry reported, for a tag).
    async fn fetch_manifest(
        &self,
        image: &Reference,
        expected: Option<String>,
        accepted: &[&str],
    ) -> Result<(Vec<u8>, String), RootfsError> {
        let (bytes, reported) = self
            .client
            .pull_manifest_raw(image, &RegistryAuth::Anonymous, accepted)
            .await
            .map_err(|e| self.classify(e))?;
        if bytes.len() > MAX_MANIFEST {
            return Err(RootfsError::UnsupportedManifest {
                reference: self.reference.to_string(),
                reason: format!(
                    "the manifest is {} bytes (limit {MAX_MANIFEST})",
                    bytes.len()
                ),
            });
        }
        let actual = sha256_digest(&bytes);
        let expected = expected
            .or_else(|| sha256_hex(&reported).map(|_| reported.clone()))
            .unwrap_or_else(|| actual.clone());
        if actual != expected {
            return Err(RootfsError::DigestMismatch {
                reference: self.reference.to_string(),
                what: "manifest".into(),
                expected,
                actual,
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Download `layer` into `dest`, checking its size and sha256.
    pub(crate) async fn download(&self, layer: &Layer, dest: &Path) -> Result<(), RootfsError> {
        let descriptor = OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: i64::try_from(layer.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let by_digest = self.by_digest(&layer.digest);
        // Make sure a token is in place for registries that want one.
        self.client
            .store_auth_if_needed(by_digest.resolve_registry(), &RegistryAuth::Anonymous)
            .await;
        let mut stream = self
            .client
            .pull_blob_stream(&by_digest, &descriptor)
            .await
            .map_err(|e| self.classify(e))?;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(io_err(dest, "create layer file"))?;
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RootfsError::Registry {
                reference: self.reference.to_string(),
                detail: format!(
                    "download of layer {} broke off: {}",
                    layer.digest,
                    error_chain(&e)
                ),
            })?;
            received = received.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if received > layer.size {
                break;
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(io_err(dest, "write layer file"))?;
        }
        file.flush()
            .await
            .map_err(io_err(dest, "write layer file"))?;
        let actual = format!("sha256:{}", hex(&hasher.finalize()));
        if received != layer.size || actual != layer.digest {
            return Err(RootfsError::DigestMismatch {
                reference: self.reference.to_string(),
                what: format!("layer {}", layer.digest),
                expected: format!("{} ({} bytes)", layer.digest, layer.size),
                actual: if received == layer.size {
                    actual
                } else {
                    format!("{received} bytes")
                },
            });
        }
        Ok(())
    }
}
