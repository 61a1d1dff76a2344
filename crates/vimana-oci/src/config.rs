//! Caller configuration and the oci-client built from it.

use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::digest::sha256_hex;
use crate::error::OciError;

/// How to talk to registries and where to cache what was pulled.
///
/// `Debug` prints the user name but never the password.
#[derive(Clone, Default)]
pub struct OciConfig {
    /// Registries (`host[:port]`, exactly as written in references) that may
    /// be used over plain http. Every other registry must speak https.
    pub insecure_registries: Vec<String>,
    /// Root of the content-addressed cache (`blobs/`, `manifests/`, `refs/`).
    pub cache_dir: PathBuf,
    /// Basic-auth credentials `(user, password)` sent to the registry
    /// (also used to obtain bearer tokens); `None` for anonymous access.
    pub auth: Option<(String, String)>,
}

/// How long to wait for a TCP/TLS connection before calling a registry unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a single read may stall before the transfer is abandoned.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl std::fmt::Debug for OciConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = self
            .auth
            .as_ref()
            .map(|(user, _)| (user.as_str(), "<redacted>"));
        f.debug_struct("OciConfig")
            .field("insecure_registries", &self.insecure_registries)
            .field("cache_dir", &self.cache_dir)
            .field("auth", &auth)
            .finish()
    }
}

impl OciConfig {
    /// Whether `registry` may be spoken to over plain http.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure_registries.iter().any(|r| r == registry)
    }

    /// The URL scheme used for `registry`.
    pub(crate) fn scheme(&self, registry: &str) -> &'static str {
        if self.is_insecure(registry) {
            "http"
        } else {
            "https"
        }
    }

    /// The credentials in oci-client's form.
    pub(crate) fn registry_auth(&self) -> RegistryAuth {
        match &self.auth {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// A client that uses http only for the insecure registries, with the
    /// credentials already registered for `reference`'s registry.
    pub(crate) async fn client(&self, reference: &Reference) -> Client {
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.insecure_registries.clone()),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        };
        let client = Client::new(config);
        client
            .store_auth_if_needed(reference.resolve_registry(), &self.registry_auth())
            .await;
        client
    }
}

/// Parse `reference`, checking that a pinned digest is a well-formed sha256.
pub fn parse_reference(reference: &str) -> Result<Reference, OciError> {
    let invalid = |reason: String| OciError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    let parsed: Reference = reference
        .parse()
        .map_err(|e: oci_client::ParseError| invalid(e.to_string()))?;
    if let Some(digest) = parsed.digest() {
        sha256_hex(digest).map_err(invalid)?;
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vimana_form_and_digests_parse() {
        let r = parse_reference("127.0.0.1:5000/dom-1/srv-1:1.2.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "dom-1/srv-1");
        assert_eq!(r.tag(), Some("1.2.0"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse_reference(&format!("reg.example/d/s@{d}")).unwrap();
        assert_eq!(r.digest(), Some(d.as_str()));
    }

    #[test]
    fn bad_references_name_the_reference() {
        let err = parse_reference("Reg/UPPER:tag").unwrap_err().to_string();
        assert!(err.contains("Reg/UPPER:tag"), "{err}");
        assert!(parse_reference("reg.example/d/s@sha256:short").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = OciConfig {
            auth: Some(("alice".into(), "s3cret".into())),
            ..OciConfig::default()
        };
        let text = format!("{cfg:?}");
        assert!(text.contains("alice") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn only_listed_registries_use_http() {
        let cfg = OciConfig {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            ..OciConfig::default()
        };
        assert_eq!(cfg.scheme("127.0.0.1:5000"), "http");
        assert_eq!(cfg.scheme("127.0.0.1:5001"), "https");
    }
}
