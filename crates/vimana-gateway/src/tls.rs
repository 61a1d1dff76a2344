//! Server certificates by SNI: a domain's own certificate, or one issued
//! on demand by the local CA.
//!
//! Only hostnames of the route table get a certificate: an unknown SNI
//! name fails the handshake (so network input cannot make the CA issue
//! certificates for arbitrary names). A client sending no SNI gets the
//! first domain's certificate.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::gateway::Inner;
use crate::table::Domain;

/// Resolves certificates from the gateway's current route table.
pub(crate) struct Resolver {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    fn cert_for(&self, domain: &Domain, host: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(cert) = &domain.cert {
            return Some(Arc::clone(cert));
        }
        let host = host.or_else(|| domain.route.hostnames.first().map(String::as_str))?;
        let ca = self.inner.config.local_ca.as_ref()?;
        match ca.issue(host) {
            Ok(cert) => Some(cert),
            Err(e) => {
                tracing::warn!(host, error = %e, "issuing a certificate failed");
                None
            }
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.inner.table.load();
        match hello.server_name() {
            Some(name) => {
                let domain = table.domain(name)?;
                self.cert_for(domain, Some(&crate::table::normalize_host(name)))
            }
            None => self.cert_for(table.first()?, None),
        }
    }
}

/// The rustls configuration of the TLS listener (ALPN h2, http/1.1).
pub(crate) fn server_config(inner: Arc<Inner>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver { inner }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
