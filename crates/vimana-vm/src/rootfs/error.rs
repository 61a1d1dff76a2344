//! What can go wrong while building a root filesystem, each naming what it
//! was working on and how to fix it.

use std::path::PathBuf;

/// An error from [`super::RootfsBuilder::build`].
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The reference does not parse.
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// The registry could not be reached.
    #[error(
        "registry {registry} is not reachable over {scheme} while pulling `{reference}`: {detail} \
         (check that the registry runs and the address is right; a registry that speaks plain \
         http must be listed in insecure_registries)"
    )]
    Unreachable {
        registry: String,
        scheme: &'static str,
        reference: String,
        detail: String,
    },

    /// The registry has no such image.
    #[error("image `{reference}` was not found in its registry (check the repository and tag)")]
    NotFound { reference: String },

    /// The registry refused or failed a request.
    #[error("registry error while pulling `{reference}`: {detail}")]
    Registry { reference: String, detail: String },

    /// An image index without a linux/amd64 image.
    #[error(
        "image index `{reference}` has no linux/amd64 manifest (platforms offered: {offered}); \
         push an amd64 image or reference one by digest"
    )]
    NoPlatform { reference: String, offered: String },

    /// A manifest that is not an image manifest or index vimana understands.
    #[error("`{reference}` is not a container image: {reason}")]
    UnsupportedManifest { reference: String, reason: String },

    /// A layer vimana cannot unpack.
    #[error(
        "layer {layer} of `{reference}` has media type `{media_type}`; only tar and tar+gzip \
         layers are supported (rebuild the image without zstd compression)"
    )]
    UnsupportedLayer {
        reference: String,
        layer: String,
        media_type: String,
    },

    /// Downloaded content does not match its descriptor.
    #[error(
        "{what} of `{reference}` does not match its digest: expected {expected}, got {actual} \
         (the registry or a proxy is serving corrupt content)"
    )]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },

    /// A layer entry that would be written outside the root.
    #[error(
        "layer {layer} of `{reference}` is unsafe: entry `{entry}` {reason}; refusing to unpack \
         the image (rebuild it without that entry)"
    )]
    PathEscape {
        reference: String,
        layer: String,
        entry: String,
        reason: String,
    },

    /// A layer that could not be read or applied.
    #[error("cannot apply layer {layer} of `{reference}` at entry `{entry}`: {source}")]
    Layer {
        reference: String,
        layer: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },

    /// The agent binary could not be read.
    #[error("cannot read the guest agent {}: {source} (build vimana-agent first)", path.display())]
    Agent {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `mkfs.ext4` is not installed.
    #[error("mkfs.ext4 was not found in PATH, /sbin or /usr/sbin: apt-get install e2fsprogs")]
    MkfsMissing,

    /// `mkfs.ext4` failed.
    #[error("mkfs.ext4 failed for {} ({status}): {stderr}", image.display())]
    Mkfs {
        image: PathBuf,
        status: String,
        stderr: String,
    },

    /// A file-system operation in the cache failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A closure turning an io error on `path` into [`RootfsError::Io`].
pub(crate) fn io_err(
    path: &std::path::Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError::Io {
        path,
        action,
        source,
    }
}
