//! The one error type of this crate: every message names the thing that
//! failed, the rule it broke and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while pushing, pulling or caching an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The reference does not parse as an OCI reference.
    #[error(
        "invalid OCI reference `{reference}`: {reason}; use `<registry>/<domain-id>/<server-id>:<version>` or `...@sha256:<64 hex>`"
    )]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The registry answers over plain http but is not listed as insecure.
    #[error(
        "registry `{registry}` speaks plain http, which is refused unless allowed: add \"{registry}\" to `insecure_registries` in the OCI config (only for a trusted network)"
    )]
    InsecureRegistry {
        /// `host[:port]` of the registry.
        registry: String,
    },

    /// The registry could not be reached at all (connection refused, DNS, timeout, TLS).
    #[error(
        "cannot reach registry `{registry}` over {scheme} for `{reference}`: {detail}; check that the registry is running and the address is right"
    )]
    Unreachable {
        /// `host[:port]` of the registry.
        registry: String,
        /// `http` or `https`.
        scheme: &'static str,
        /// The reference being pushed or pulled.
        reference: String,
        /// The transport error.
        detail: String,
    },

    /// The registry has no manifest (or repository) for the reference.
    #[error(
        "`{reference}` was not found in the registry: no such repository, tag or digest; check the name and push the artifact first"
    )]
    NotFound {
        /// The reference as given.
        reference: String,
    },

    /// The registry refused the credentials (or their absence).
    #[error(
        "registry `{registry}` refused access to `{reference}` (401/403): set `auth` (user, password or token) in the OCI config to credentials allowed to {operation} it"
    )]
    Unauthorized {
        /// `host[:port]` of the registry.
        registry: String,
        /// The reference being pushed or pulled.
        reference: String,
        /// `pull` or `push`.
        operation: &'static str,
    },

    /// Any other error answered by the registry.
    #[error("registry error while trying to {operation} `{reference}`: {detail}")]
    Registry {
        /// The reference being pushed or pulled.
        reference: String,
        /// `pull` or `push`.
        operation: &'static str,
        /// The registry's answer.
        detail: String,
    },

    /// Content did not hash to the digest that names it.
    #[error(
        "{what} of `{reference}` has digest {actual} but {expected} was expected: the content is corrupt or was replaced; do not use it, re-push the artifact"
    )]
    DigestMismatch {
        /// Which object (manifest, wasm layer, ...).
        what: String,
        /// The reference being pulled or pushed.
        reference: String,
        /// The digest the descriptor or reference promised.
        expected: String,
        /// The digest of the received bytes.
        actual: String,
    },

    /// Content did not have the size its descriptor declares.
    #[error(
        "{what} {digest} of `{reference}` is {actual} bytes but its descriptor says {expected}: the registry sent wrong content; re-push the artifact"
    )]
    SizeMismatch {
        /// Which object.
        what: String,
        /// Its digest.
        digest: String,
        /// The reference being pulled.
        reference: String,
        /// Declared size.
        expected: u64,
        /// Received size (or at least this many bytes).
        actual: u64,
    },

    /// A blob is larger than [`crate::MAX_BLOB_SIZE`].
    #[error(
        "{what} {digest} of `{reference}` is {size} bytes, over the limit of {limit} bytes: components must be smaller; shrink the component (strip debug info) before pushing"
    )]
    TooLarge {
        /// Which object.
        what: String,
        /// Its digest (or `-` before hashing).
        digest: String,
        /// The reference.
        reference: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The manifest is not a vimana Wasm component artifact.
    #[error(
        "manifest of `{reference}` is not a Wasm component artifact: {reason}; see docs/images.md for the layout"
    )]
    InvalidManifest {
        /// The reference.
        reference: String,
        /// Which rule it broke.
        reason: String,
    },

    /// The artifact to push is not valid.
    #[error("cannot push to `{reference}`: {reason}")]
    InvalidArtifact {
        /// The target reference.
        reference: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// Reading or writing the local cache failed.
    #[error(
        "OCI cache at {path} failed ({action}): {source}; check that `cache_dir` is writable and the disk has space"
    )]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl OciError {
    /// True when the registry could not be reached (the offline fallback applies).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OciError::Unreachable { .. })
    }

    /// True when the registry does not know the reference.
    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::NotFound { .. })
    }
}
