//! Checking a pulled manifest and config against the artifact rules.

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::artifact::{ArtifactManifest, Expected, WasmConfig};
use crate::digest::sha256_hex;
use crate::error::OciError;
use crate::{
    ANNOTATION_VERSION, DESCRIPTOR_SET_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MAX_BLOB_SIZE,
    WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};

/// Parse `bytes` as an artifact manifest of `reference` and check its rules:
/// schema version 2, OCI manifest media type, the wasm config media type,
/// exactly one `application/wasm` layer, at most one descriptor-set layer,
/// no other layers, sha256 digests and sizes within [`MAX_BLOB_SIZE`].
pub(crate) fn parse_manifest(reference: &str, bytes: &[u8]) -> Result<ArtifactManifest, OciError> {
    let invalid = |reason: String| OciError::InvalidManifest {
        reference: reference.to_string(),
        reason,
    };
    let manifest: OciImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("it is not an OCI image manifest ({e})")))?;
    if manifest.schema_version != 2 {
        return Err(invalid(format!(
            "schemaVersion is {}, must be 2",
            manifest.schema_version
        )));
    }
    if let Some(media_type) = manifest.media_type.as_deref()
        && media_type != MANIFEST_MEDIA_TYPE
    {
        return Err(invalid(format!(
            "mediaType is `{media_type}`, must be `{MANIFEST_MEDIA_TYPE}`"
        )));
    }
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(invalid(format!(
            "config media type is `{}`, must be `{WASM_CONFIG_MEDIA_TYPE}` (is this a container image?)",
            manifest.config.media_type
        )));
    }
    let config = expected(reference, "config", &manifest.config)?;
    let mut wasm = Vec::new();
    let mut descriptor_set = Vec::new();
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            WASM_LAYER_MEDIA_TYPE => wasm.push(expected(reference, "wasm layer", layer)?),
            DESCRIPTOR_SET_MEDIA_TYPE => {
                descriptor_set.push(expected(reference, "descriptor-set layer", layer)?)
            }
            other => {
                return Err(invalid(format!(
                    "layer media type `{other}` is not allowed, only `{WASM_LAYER_MEDIA_TYPE}` and `{DESCRIPTOR_SET_MEDIA_TYPE}`"
                )));
            }
        }
    }
    if wasm.len() != 1 {
        return Err(invalid(format!(
            "it has {} `{WASM_LAYER_MEDIA_TYPE}` layers, exactly one is required",
            wasm.len()
        )));
    }
    if descriptor_set.len() > 1 {
        return Err(invalid(format!(
            "it has {} `{DESCRIPTOR_SET_MEDIA_TYPE}` layers, at most one is allowed",
            descriptor_set.len()
        )));
    }
    let version = manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_VERSION).cloned());
    Ok(ArtifactManifest {
        config,
        wasm: wasm.remove(0),
        descriptor_set: descriptor_set.pop(),
        version,
    })
}

fn expected(reference: &str, what: &'static str, d: &OciDescriptor) -> Result<Expected, OciError> {
    sha256_hex(&d.digest).map_err(|reason| OciError::InvalidManifest {
        reference: reference.to_string(),
        reason: format!("{what}: {reason}"),
    })?;
    let size = u64::try_from(d.size).map_err(|_| OciError::InvalidManifest {
        reference: reference.to_string(),
        reason: format!("{what} {} has negative size {}", d.digest, d.size),
    })?;
    if size > MAX_BLOB_SIZE {
        return Err(OciError::TooLarge {
            what: what.to_string(),
            digest: d.digest.clone(),
            reference: reference.to_string(),
            size,
            limit: MAX_BLOB_SIZE,
        });
    }
    Ok(Expected {
        what,
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size,
    })
}

/// Parse the config blob and check it describes a wasm artifact that lists
/// the manifest's wasm layer.
pub(crate) fn parse_config(
    reference: &str,
    bytes: &[u8],
    manifest: &ArtifactManifest,
) -> Result<WasmConfig, OciError> {
    let invalid = |reason: String| OciError::InvalidManifest {
        reference: reference.to_string(),
        reason,
    };
    let config: WasmConfig = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the config blob is not a wasm config ({e})")))?;
    if config.architecture != "wasm" {
        return Err(invalid(format!(
            "config architecture is `{}`, must be `wasm`",
            config.architecture
        )));
    }
    if !config.layer_digests.is_empty() && !config.layer_digests.contains(&manifest.wasm.digest) {
        return Err(invalid(format!(
            "config layerDigests does not list the wasm layer {}",
            manifest.wasm.digest
        )));
    }
    Ok(config)
}

/// Checks an artifact's manifest and config blob as [`crate::pull`] does,
/// without a registry: the entry point of the fuzz targets (vimana-fuzz).
pub fn check_artifact_documents(
    reference: &str,
    manifest: &[u8],
    config: &[u8],
) -> Result<(), OciError> {
    let manifest = parse_manifest(reference, manifest)?;
    parse_config(reference, config, &manifest).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ArtifactParts, build};

    fn parts() -> ArtifactParts {
        ArtifactParts {
            wasm: vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 7],
            descriptor_set: Some(vec![1, 2, 3]),
            version: Some("1.2.3".into()),
            exports: vec!["a:b/c".into()],
            imports: vec![],
        }
    }

    fn built_manifest() -> serde_json::Value {
        let built = build("r/d/s:1", &parts(), "2026-01-01T00:00:00Z").unwrap();
        serde_json::from_slice(&built.manifest).unwrap()
    }

    #[test]
    fn built_artifact_parses_back() {
        let built = build("r/d/s:1", &parts(), "2026-01-01T00:00:00Z").unwrap();
        let m = parse_manifest("r/d/s:1", &built.manifest).unwrap();
        assert_eq!(m.version.as_deref(), Some("1.2.3"));
        assert_eq!(m.wasm.size, 9);
        assert_eq!(m.descriptor_set.as_ref().unwrap().size, 3);
        let config = parse_config("r/d/s:1", &built.blobs[0].1, &m).unwrap();
        assert_eq!(config.os, "wasip2");
        assert_eq!(config.layer_digests.len(), 2);
        assert_eq!(config.component.unwrap().exports, vec!["a:b/c".to_string()]);
    }

    fn rejected(manifest: serde_json::Value, needle: &str) {
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let err = parse_manifest("r/d/s:1", &bytes).unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains("r/d/s:1"), "{err}");
    }

    #[test]
    fn container_image_config_is_rejected() {
        let mut m = built_manifest();
        m["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        rejected(m, WASM_CONFIG_MEDIA_TYPE);
    }

    #[test]
    fn wasm_layer_count_must_be_one() {
        let mut m = built_manifest();
        let wasm = m["layers"][0].clone();
        m["layers"].as_array_mut().unwrap().push(wasm);
        rejected(m.clone(), "2 `application/wasm` layers");
        m["layers"] = serde_json::json!([]);
        rejected(m, "0 `application/wasm` layers");
    }

    #[test]
    fn unknown_layers_and_bad_digests_are_rejected() {
        let mut m = built_manifest();
        m["layers"][1]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        rejected(m, "is not allowed");
        let mut m = built_manifest();
        m["layers"][0]["digest"] = "sha512:00".into();
        rejected(m, "sha256");
        let mut m = built_manifest();
        m["layers"][0]["size"] = (crate::MAX_BLOB_SIZE + 1).into();
        rejected(m, "over the limit");
    }

    #[test]
    fn core_modules_and_garbage_are_not_pushed() {
        let mut p = parts();
        p.wasm = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        let err = build("r/d/s:1", &p, "t").err().unwrap().to_string();
        assert!(err.contains("core module"), "{err}");
        p.wasm = b"not wasm".to_vec();
        assert!(build("r/d/s:1", &p, "t").is_err());
    }
}
