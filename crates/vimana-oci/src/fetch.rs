//! Downloading one blob with a size bound and digest check, into the cache.

use futures::StreamExt;
use oci_client::{Client, Reference};

use crate::artifact::Expected;
use crate::cache::Cache;
use crate::config::OciConfig;
use crate::digest::sha256_digest;
use crate::error::OciError;
use crate::transport::{Operation, classify, error_chain};

/// Largest initial buffer reserved from a declared size (the rest grows on demand).
const MAX_PREALLOCATION: u64 = 16 * 1024 * 1024;

/// The blob `expected`, from the cache when intact, otherwise downloaded,
/// verified (size, then sha256) and cached. The flag is true when downloaded.
pub(crate) async fn fetch_blob(
    cfg: &OciConfig,
    client: &Client,
    cache: &Cache,
    by_digest: &Reference,
    reference: &str,
    expected: Expected,
) -> Result<(Vec<u8>, bool), OciError> {
    if let Some(bytes) = cache.read_blob(&expected).await? {
        return Ok((bytes, false));
    }
    let size_error = |actual: u64| OciError::SizeMismatch {
        what: expected.what.to_string(),
        digest: expected.digest.clone(),
        reference: reference.to_string(),
        expected: expected.size,
        actual,
    };
    let mut stream = match client
        .pull_blob_stream(by_digest, &expected.descriptor())
        .await
    {
        Ok(stream) => stream,
        Err(e) => return Err(classify(cfg, by_digest, reference, Operation::Pull, e).await),
    };
    if let Some(length) = stream.content_length
        && length != expected.size
    {
        return Err(size_error(length));
    }
    let capacity = usize::try_from(expected.size.min(MAX_PREALLOCATION)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| OciError::Registry {
            reference: reference.to_string(),
            operation: "pull",
            detail: format!(
                "download of {} {} broke off: {}",
                expected.what,
                expected.digest,
                error_chain(&e)
            ),
        })?;
        bytes.extend_from_slice(&chunk);
        let received = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if received > expected.size {
            return Err(size_error(received));
        }
    }
    let received = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if received != expected.size {
        return Err(size_error(received));
    }
    let actual = sha256_digest(&bytes);
    if actual != expected.digest {
        return Err(OciError::DigestMismatch {
            what: format!("{} {}", expected.what, expected.digest),
            reference: reference.to_string(),
            expected: expected.digest,
            actual,
        });
    }
    cache.write_blob(&expected.digest, &bytes).await?;
    Ok((bytes, true))
}
