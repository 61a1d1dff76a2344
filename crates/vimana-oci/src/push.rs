//! Uploading an artifact: blobs first (skipping those the registry has),
//! then the manifest under the reference's tag (or digest).

use http::HeaderValue;
use oci_client::Reference;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::MANIFEST_MEDIA_TYPE;
use crate::artifact::{ArtifactParts, build};
use crate::config::{OciConfig, parse_reference};
use crate::error::OciError;
use crate::transport::{Operation, classify};

/// The result of a successful [`push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// Digest of the pushed manifest (`sha256:<hex>`).
    pub manifest_digest: String,
    /// The reference pushed to, in canonical form.
    pub reference: String,
    /// The same artifact pinned by digest: `<registry>/<repository>@<digest>`.
    pub pinned: String,
}

/// Push `artifact` to `reference` (`<registry>/<domain-id>/<server-id>:<version>`).
///
/// Blobs already present in the repository are not uploaded again. When the
/// reference pins a digest, it must equal the digest of the manifest built
/// from `artifact`.
///
/// # Errors
///
/// [`OciError::InvalidReference`], [`OciError::InvalidArtifact`] (not a
/// component, digest pin mismatch), [`OciError::TooLarge`],
/// [`OciError::InsecureRegistry`] (plain http registry not listed in
/// `insecure_registries`), [`OciError::Unreachable`],
/// [`OciError::Unauthorized`], [`OciError::Registry`].
pub async fn push(
    cfg: &OciConfig,
    reference: &str,
    artifact: &ArtifactParts,
) -> Result<PushOutcome, OciError> {
    let parsed = parse_reference(reference)?;
    let created =
        OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|e| OciError::InvalidArtifact {
                reference: reference.to_string(),
                reason: format!("cannot format the creation time: {e}"),
            })?;
    let built = build(reference, artifact, &created)?;
    if let Some(pinned) = parsed.digest()
        && pinned != built.manifest_digest
    {
        return Err(OciError::InvalidArtifact {
            reference: reference.to_string(),
            reason: format!(
                "the reference pins {pinned} but the manifest built from the artifact is {}: push to a tag instead",
                built.manifest_digest
            ),
        });
    }
    let client = cfg.client(&parsed).await;
    let fail = |e| classify(cfg, &parsed, reference, Operation::Push, e);
    for (digest, bytes) in &built.blobs {
        let exists = match client.blob_exists(&parsed, digest).await {
            Ok(exists) => exists,
            Err(e) => return Err(fail(e).await),
        };
        if exists {
            tracing::debug!(%digest, "blob already in the registry");
            continue;
        }
        if let Err(e) = client.push_blob(&parsed, bytes.clone(), digest).await {
            return Err(fail(e).await);
        }
    }
    let content_type = HeaderValue::from_static(MANIFEST_MEDIA_TYPE);
    if let Err(e) = client
        .push_manifest_raw(&parsed, built.manifest.clone(), content_type)
        .await
    {
        return Err(fail(e).await);
    }
    let pinned = Reference::with_digest(
        parsed.registry().to_string(),
        parsed.repository().to_string(),
        built.manifest_digest.clone(),
    );
    tracing::info!(reference = %parsed, digest = %built.manifest_digest, "pushed artifact");
    Ok(PushOutcome {
        manifest_digest: built.manifest_digest,
        reference: parsed.whole(),
        pinned: pinned.whole(),
    })
}
