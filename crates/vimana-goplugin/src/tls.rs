//! AutoMTLS: certificate generation and certificate *pinning* in both
//! directions. go-plugin's certificates are self-signed CA certificates used
//! as leaves (webpki refuses that), so instead of chain validation we require
//! the presented end-entity certificate to equal the expected DER exactly,
//! while still verifying handshake signatures with the aws-lc-rs provider
//! (which, unlike ring, handles go-plugin's ECDSA P-521 keys).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme};

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

/// Generates a go-plugin style certificate: self-signed, CA, SAN localhost,
/// ExtKeyUsage ClientAuth+ServerAuth, ECDSA. `p521` selects P-521/SHA-512
/// (as go-plugin itself does); otherwise P-256.
pub fn generate_cert(p521: bool) -> Result<CertPair, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName as Dn, DnType,
        ExtendedKeyUsagePurpose as Eku, IsCa, KeyPair, KeyUsagePurpose as Ku,
    };
    let alg = if p521 {
        &rcgen::PKCS_ECDSA_P521_SHA512
    } else {
        &rcgen::PKCS_ECDSA_P256_SHA256
    };
    let key = KeyPair::generate_for(alg).map_err(|e| format!("key generation: {e}"))?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| e.to_string())?;
    let mut dn = Dn::new();
    dn.push(DnType::CommonName, "localhost");
    dn.push(DnType::OrganizationName, "HashiCorp");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![Ku::DigitalSignature, Ku::KeyEncipherment, Ku::KeyCertSign];
    params.extended_key_usages = vec![Eku::ClientAuth, Eku::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365 * 30);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signing: {e}"))?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    })
}

/// The aws-lc-rs crypto provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// First certificate in a PEM string, as DER.
pub fn cert_der_from_pem(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("bad certificate PEM: {e}"))
}

/// Private key from PEM (PKCS#8, SEC1 or PKCS#1).
pub fn key_der_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("bad private key PEM: {e}"))
}

/// Accepts exactly one certificate (by DER), checking handshake signatures.
#[derive(Debug)]
pub struct PinnedCert {
    expected: Vec<u8>,
    algs: WebPkiSupportedAlgorithms,
}

impl PinnedCert {
    pub fn new(expected_der: Vec<u8>, provider: &CryptoProvider) -> Self {
        Self {
            expected: expected_der,
            algs: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), TlsError> {
        if end_entity.as_ref() == self.expected.as_slice() {
            Ok(())
        } else {
            Err(TlsError::General(
                "peer certificate does not match the pinned go-plugin AutoMTLS certificate".into(),
            ))
        }
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl ClientCertVerifier for PinnedCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Host side: client cert = host cert, server pinned to `server_der`, ALPN h2.
pub fn client_config(
    server_der: Vec<u8>,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let verifier = Arc::new(PinnedCert::new(server_der, &provider));
    let cert = cert_der_from_pem(client_cert_pem)?;
    let key = key_der_from_pem(client_key_pem)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)
        .map_err(|e| format!("client certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// Plugin side: serve `own`, require the client cert to equal `client_der`.
pub fn server_config(own: &CertPair, client_der: Vec<u8>) -> Result<rustls::ServerConfig, String> {
    let provider = provider();
    let verifier = Arc::new(PinnedCert::new(client_der, &provider));
    let cert = cert_der_from_pem(&own.cert_pem)?;
    let key = key_der_from_pem(&own.key_pem)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("server certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certs_build_configs() {
        let host = generate_cert(false).unwrap();
        let plugin = generate_cert(true).unwrap();
        assert!(host.cert_pem.contains("BEGIN CERTIFICATE"));
        assert_eq!(
            cert_der_from_pem(&host.cert_pem).unwrap().as_ref(),
            &host.cert_der[..]
        );
        client_config(plugin.cert_der.clone(), &host.cert_pem, &host.key_pem).unwrap();
        server_config(&plugin, host.cert_der.clone()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&plugin.cert_der).unwrap();
        assert!(parsed.is_ca());
    }
}
