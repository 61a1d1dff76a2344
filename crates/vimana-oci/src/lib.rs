//! OCI artifacts of WebAssembly component services (see `docs/images.md`).
//!
//! An artifact is an OCI image manifest whose config has the media type
//! [`WASM_CONFIG_MEDIA_TYPE`], with exactly one [`WASM_LAYER_MEDIA_TYPE`]
//! layer (the component) and optionally one [`DESCRIPTOR_SET_MEDIA_TYPE`]
//! layer (an encoded `google.protobuf.FileDescriptorSet`).
//!
//! [`push`] uploads one; [`pull`] downloads one, verifying every byte against
//! its sha256 digest and size, into a content-addressed cache under
//! [`OciConfig::cache_dir`]. A digest-pinned pull whose content is cached
//! makes no network call; a tag pull asks the registry for the current digest
//! and falls back to the cached one (marked `stale`) when the registry is
//! unreachable.
//!
//! The helpers every OCI client of vimana shares (the VM root filesystems
//! too) are public: [`parse_reference`], [`sha256_digest`], [`sha256_hex`],
//! [`reference_file_name`] and [`error_chain`].

mod artifact;
mod cache;
mod config;
mod digest;
mod error;
mod fetch;
mod manifest;
mod pull;
mod push;
mod transport;

pub use artifact::ArtifactParts;
pub use cache::escape as reference_file_name;
pub use config::OciConfig;
pub use config::parse_reference;
pub use digest::{sha256_digest, sha256_hex};
pub use error::OciError;
pub use manifest::check_artifact_documents;
pub use pull::{PulledArtifact, pull};
pub use push::{PushOutcome, push};
pub use transport::error_chain;

/// Media type of the OCI image manifest used for artifacts.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the artifact's config blob (wasm-oci convention).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the layer holding the component bytes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Media type of the optional layer holding an encoded `FileDescriptorSet`.
pub const DESCRIPTOR_SET_MEDIA_TYPE: &str = "application/vnd.vimana.protobuf.descriptor-set.v1";
/// Annotation holding the RFC 3339 creation time.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation holding the artifact version.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Largest blob (component, descriptor set, config) accepted: 256 MiB.
pub const MAX_BLOB_SIZE: u64 = 256 * 1024 * 1024;
/// Largest manifest accepted: 4 MiB (the limit of distribution registries).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
