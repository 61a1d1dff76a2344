//! The artifact layout: building the config and manifest for a push, and
//! checking a pulled manifest against the rules of docs/images.md.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use crate::digest::sha256_digest;
use crate::error::OciError;
use crate::{
    ANNOTATION_CREATED, ANNOTATION_VERSION, DESCRIPTOR_SET_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    MAX_BLOB_SIZE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};

/// What to push: the component and what describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactParts {
    /// The component bytes (binary component encoding, not a core module).
    pub wasm: Vec<u8>,
    /// An encoded `google.protobuf.FileDescriptorSet` of the services, if any.
    pub descriptor_set: Option<Vec<u8>>,
    /// The `org.opencontainers.image.version` annotation, if any.
    pub version: Option<String>,
    /// WIT interfaces the component exports (recorded in the config).
    pub exports: Vec<String>,
    /// WIT interfaces the component imports (recorded in the config).
    pub imports: Vec<String>,
}

/// The config blob, modelled on the wasm-oci convention.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WasmConfig {
    pub(crate) created: String,
    pub(crate) architecture: String,
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) component: Option<ComponentInfo>,
}

/// The WIT world of the component, as far as the pusher described it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ComponentInfo {
    #[serde(default)]
    pub(crate) exports: Vec<String>,
    #[serde(default)]
    pub(crate) imports: Vec<String>,
}

/// A blob the manifest promises: what it is, its digest and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) what: &'static str,
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

impl Expected {
    /// The descriptor oci-client wants for a blob download.
    pub(crate) fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: i64::try_from(self.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        }
    }
}

/// A manifest that follows the artifact rules.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactManifest {
    pub(crate) config: Expected,
    pub(crate) wasm: Expected,
    pub(crate) descriptor_set: Option<Expected>,
    pub(crate) version: Option<String>,
}

/// The bytes to upload for one push.
pub(crate) struct Built {
    /// `(digest, bytes)` of the config, the wasm layer and the descriptor-set layer.
    pub(crate) blobs: Vec<(String, Vec<u8>)>,
    pub(crate) manifest: Vec<u8>,
    pub(crate) manifest_digest: String,
}

fn descriptor(media_type: &str, bytes: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(bytes),
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    }
}

/// Build config and manifest for `parts`, created at `created` (RFC 3339).
pub(crate) fn build(
    reference: &str,
    parts: &ArtifactParts,
    created: &str,
) -> Result<Built, OciError> {
    check_parts(reference, parts)?;
    let wasm = descriptor(WASM_LAYER_MEDIA_TYPE, &parts.wasm);
    let mut layers = vec![wasm];
    if let Some(set) = &parts.descriptor_set {
        layers.push(descriptor(DESCRIPTOR_SET_MEDIA_TYPE, set));
    }
    let component =
        (!parts.exports.is_empty() || !parts.imports.is_empty()).then(|| ComponentInfo {
            exports: parts.exports.clone(),
            imports: parts.imports.clone(),
        });
    let config = WasmConfig {
        created: created.to_string(),
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: layers.iter().map(|l| l.digest.clone()).collect(),
        component,
    };
    let invalid = |e: serde_json::Error| OciError::InvalidArtifact {
        reference: reference.to_string(),
        reason: format!("cannot encode the config or manifest as JSON: {e}"),
    };
    let config = serde_json::to_vec(&config).map_err(invalid)?;
    let mut annotations = BTreeMap::from([(ANNOTATION_CREATED.to_string(), created.to_string())]);
    if let Some(version) = &parts.version {
        annotations.insert(ANNOTATION_VERSION.to_string(), version.clone());
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        config: descriptor(WASM_CONFIG_MEDIA_TYPE, &config),
        layers,
        annotations: Some(annotations),
        ..OciImageManifest::default()
    };
    let manifest = serde_json::to_vec(&manifest).map_err(invalid)?;
    let mut blobs = vec![
        (sha256_digest(&config), config),
        (sha256_digest(&parts.wasm), parts.wasm.clone()),
    ];
    if let Some(set) = &parts.descriptor_set {
        blobs.push((sha256_digest(set), set.clone()));
    }
    Ok(Built {
        blobs,
        manifest_digest: sha256_digest(&manifest),
        manifest,
    })
}

/// The preamble of a binary component: magic, version 0x0d, layer 1.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

fn check_parts(reference: &str, parts: &ArtifactParts) -> Result<(), OciError> {
    let invalid = |reason: String| OciError::InvalidArtifact {
        reference: reference.to_string(),
        reason,
    };
    if !parts.wasm.starts_with(&COMPONENT_PREAMBLE) {
        let reason = if parts.wasm.starts_with(b"\0asm") {
            "the wasm bytes are a core module, not a component: wrap it with `wasm-tools component new`"
        } else {
            "the wasm bytes are not a binary WebAssembly component (no `\\0asm` component preamble): pass the compiled .wasm file"
        };
        return Err(invalid(reason.to_string()));
    }
    let sizes = [
        ("wasm layer", parts.wasm.len()),
        (
            "descriptor set",
            parts.descriptor_set.as_ref().map_or(0, Vec::len),
        ),
    ];
    for (what, size) in sizes {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        if size > MAX_BLOB_SIZE {
            return Err(OciError::TooLarge {
                what: what.to_string(),
                digest: "-".into(),
                reference: reference.to_string(),
                size,
                limit: MAX_BLOB_SIZE,
            });
        }
    }
    Ok(())
}
