//! sha256 digests in their OCI string form (`sha256:<64 lowercase hex>`).

use sha2::{Digest as _, Sha256};

/// The OCI digest string of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a well-formed sha256 digest, or why it is not one.
///
/// Only sha256 is accepted: it is what every registry produces, and a fixed
/// algorithm keeps cache paths unambiguous.
pub fn sha256_hex(digest: &str) -> Result<&str, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest `{digest}` is not a sha256 digest (`sha256:<64 hex>`)"))?;
    if hex.len() != 64 {
        return Err(format!(
            "digest `{digest}` has {} hex characters, sha256 needs 64",
            hex.len()
        ));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "digest `{digest}` must be lowercase hexadecimal after `sha256:`"
        ));
    }
    Ok(hex)
}

/// Whether `bytes` hash to `digest`.
pub(crate) fn matches(bytes: &[u8], digest: &str) -> bool {
    sha256_digest(bytes) == digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_is_checked() {
        let good = sha256_digest(b"x");
        assert!(sha256_hex(&good).is_ok());
        assert!(sha256_hex("sha512:abc").is_err());
        assert!(sha256_hex("sha256:abc").is_err());
        assert!(sha256_hex(&good.to_uppercase().replace("SHA256", "sha256")).is_err());
        assert!(sha256_hex(&format!("sha256:{}", "../".repeat(21) + "a")).is_err());
    }

    #[test]
    fn matches_compares_content() {
        let d = sha256_digest(b"abc");
        assert!(matches(b"abc", &d));
        assert!(!matches(b"abd", &d));
    }
}
