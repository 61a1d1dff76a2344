//! rustls configuration shared by `native-adder` (server side) and
//! `grpc-load` (client side). Both advertise only ALPN `h2`, as gRPC
//! requires, and use rustls' process-default provider (aws-lc-rs).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// ALPN protocol id of HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// Reads every certificate of a PEM file.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("opening {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// Installs aws-lc-rs as the process-wide provider unless one is set.
fn ensure_provider() {
    // Fails only when a provider is already installed, which is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Server configuration for a certificate chain and its private key
/// (PKCS#8, PKCS#1 or SEC1 PEM), ALPN `h2`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    ensure_provider();
    let chain = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the TLS server configuration")?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Client configuration trusting exactly the certificates in `ca`, ALPN `h2`.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>> {
    ensure_provider();
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("adding a CA certificate from {}", ca.display()))?;
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Parses the SNI / verification name (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .with_context(|| format!("invalid TLS server name {host:?}"))
}
