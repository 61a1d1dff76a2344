//! The compiled route table: hostnames indexed, TLS material parsed and
//! reflection services built once per [`Routes`] version.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::error::GatewayError;
use crate::reflection::{self, Reflection};
use crate::routes::{DomainRoute, Routes, TlsMaterial};

/// One domain, ready to serve.
pub(crate) struct Domain {
    pub(crate) route: DomainRoute,
    pub(crate) cert: Option<Arc<CertifiedKey>>,
    pub(crate) reflection: Option<Reflection>,
}

/// A route table version.
#[derive(Default)]
pub(crate) struct Table {
    domains: Vec<Arc<Domain>>,
    hosts: HashMap<String, usize>,
}

/// The host of an authority, SNI name or `Host` header: lower case,
/// without port and trailing dot.
pub(crate) fn normalize_host(authority: &str) -> String {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_tls(domain: &str, tls: &TlsMaterial) -> Result<Arc<CertifiedKey>, GatewayError> {
    let bad = |reason: String| GatewayError::TlsMaterial {
        domain: domain.to_string(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&tls.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad("no certificate in the chain".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| bad(format!("private key: {e}")))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map(Arc::new)
        .map_err(|e| bad(e.to_string()))
}

impl Table {
    /// Compiles a route table; fails on unusable TLS material or
    /// descriptor sets. A hostname claimed twice goes to the first domain.
    pub(crate) fn compile(routes: Routes) -> Result<Table, GatewayError> {
        let mut table = Table::default();
        for route in routes.domains {
            let cert = route
                .tls
                .as_ref()
                .map(|tls| parse_tls(&route.id, tls))
                .transpose()?;
            let reflection = reflection::build(&route)?;
            let index = table.domains.len();
            for host in &route.hostnames {
                table.hosts.entry(normalize_host(host)).or_insert(index);
            }
            table.domains.push(Arc::new(Domain {
                route,
                cert,
                reflection,
            }));
        }
        Ok(table)
    }

    /// The domain serving `host` (any case, with or without port).
    pub(crate) fn domain(&self, host: &str) -> Option<&Arc<Domain>> {
        self.hosts
            .get(&normalize_host(host))
            .and_then(|&i| self.domains.get(i))
    }

    /// The first domain (for TLS clients that send no SNI).
    pub(crate) fn first(&self) -> Option<&Arc<Domain>> {
        self.domains.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host("Adder.Example.COM:8443"),
            "adder.example.com"
        );
        assert_eq!(normalize_host("adder.example.com."), "adder.example.com");
        assert_eq!(normalize_host("[::1]:80"), "::1");
        assert_eq!(normalize_host("host"), "host");
    }

    #[test]
    fn lookup_is_case_insensitive_and_first_claim_wins() {
        let routes = Routes {
            domains: vec![
                DomainRoute {
                    id: "a".into(),
                    hostnames: vec!["a.test".into(), "Alias.Test".into()],
                    ..Default::default()
                },
                DomainRoute {
                    id: "b".into(),
                    hostnames: vec!["alias.test".into(), "b.test".into()],
                    ..Default::default()
                },
            ],
        };
        let table = Table::compile(routes).unwrap();
        let id = |h: &str| table.domain(h).map(|d| d.route.id.clone());
        assert_eq!(id("ALIAS.test:443").as_deref(), Some("a"));
        assert_eq!(id("b.test").as_deref(), Some("b"));
        assert_eq!(id("c.test"), None);
    }
}
