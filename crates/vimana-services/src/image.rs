//! Fetching a Component's image: a local `.wasm` file or an OCI artifact.

use std::path::Path;

use sha2::{Digest, Sha256};
use vimana_oci::OciConfig;
use vimana_resources::ImageSource;

use crate::contract_section;

/// The bytes of a component image and what came with them.
pub struct Image {
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub wasm: Vec<u8>,
    /// The encoded FileDescriptorSet of its services, if it carries one.
    pub descriptor_set: Option<Vec<u8>>,
}

/// Why an image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read component file {path}: {source}; check the Component's spec.image")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("component image {path} is not a WebAssembly binary: {why}")]
    Invalid { path: String, why: String },
    #[error("pulling {reference} failed: {why}")]
    Pull { reference: String, why: String },
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Reads a local image; its contract is the embedded descriptor section.
pub fn read_local(path: &Path) -> Result<Image, ImageError> {
    let shown = path.display().to_string();
    let wasm = std::fs::read(path).map_err(|source| ImageError::Read {
        path: shown.clone(),
        source,
    })?;
    let descriptor_set = contract_section::extract(&wasm).map_err(|e| ImageError::Invalid {
        path: shown,
        why: e.to_string(),
    })?;
    Ok(Image {
        digest: digest_of(&wasm),
        wasm,
        descriptor_set,
    })
}

/// Fetches the image of `source` (blocking: OCI pulls run on `rt`).
pub fn fetch(
    source: &ImageSource,
    oci: &OciConfig,
    rt: &tokio::runtime::Handle,
) -> Result<Image, ImageError> {
    match source {
        ImageSource::Path(p) => read_local(p),
        ImageSource::Oci(reference) => {
            let pulled =
                rt.block_on(vimana_oci::pull(oci, reference))
                    .map_err(|e| ImageError::Pull {
                        reference: reference.clone(),
                        why: e.to_string(),
                    })?;
            Ok(Image {
                digest: digest_of(&pulled.wasm),
                wasm: pulled.wasm,
                descriptor_set: pulled.descriptor_set,
            })
        }
    }
}
