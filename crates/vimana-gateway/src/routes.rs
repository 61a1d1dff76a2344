//! The route table: domains, their services and the weighted versions
//! behind each service.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use crate::backend::{GrpcBackend, HttpBackend};

/// The whole route table, replaced at once by
/// [`Gateway::set_routes`](crate::Gateway::set_routes).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Every domain served.
    pub domains: Vec<DomainRoute>,
}

/// One domain: the hostnames it answers on and what it serves.
#[derive(Debug, Clone, Default)]
pub struct DomainRoute {
    /// The domain id.
    pub id: String,
    /// The canonical `<id>.<superdomain>` and any aliases, matched
    /// case-insensitively against SNI and `:authority`/`Host`.
    pub hostnames: Vec<String>,
    /// The domain's own certificate; `None` = one issued by the local CA.
    pub tls: Option<TlsMaterial>,
    /// Which services server reflection lists.
    pub reflection: ReflectionPolicy,
    /// The document served at `/.well-known/schema.json`; `None` also
    /// disables JSON transcoding.
    pub open_api: Option<Bytes>,
    /// Encoded `FileDescriptorSet`s of the domain's services (reflection).
    pub descriptor_sets: Vec<Bytes>,
    /// gRPC services by full name (`package.Service`).
    pub services: HashMap<String, Arc<ServerRoute>>,
    /// Services a Server declares but no version of which can take traffic
    /// (not in `services`), with why: calls answer `UNAVAILABLE` with it,
    /// which clients retry, instead of `UNIMPLEMENTED` "unknown service".
    pub unavailable: HashMap<String, String>,
    /// Plain HTTP components: every request not taken by gRPC, JSON
    /// transcoding or the schema document.
    pub http: Option<Arc<ServerRoute>>,
}

/// A certificate chain and its private key, PEM-encoded.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    /// The leaf first, then intermediates.
    pub cert_chain_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("cert_chain_pem", &self.cert_chain_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Which services gRPC server reflection lists for a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReflectionPolicy {
    /// Every service of the descriptor sets (and the reflection service).
    #[default]
    All,
    /// Only these services; with an empty list reflection is not served.
    NoneBut(Vec<String>),
    /// Every service except these.
    AllBut(Vec<String>),
}

/// One server (a service or an HTTP component) and its versions.
#[derive(Debug, Clone)]
pub struct ServerRoute {
    /// The server name.
    pub name: String,
    /// How long one call may take.
    pub deadline: Duration,
    /// The versions, chosen at random by weight for each request.
    pub versions: Vec<VersionRoute>,
}

/// One version of a server and its share of the traffic.
#[derive(Clone)]
pub struct VersionRoute {
    /// `<domain>:<server>@<version>`; sent back in `vimana-component`.
    pub name: String,
    /// The relative weight; 0 = no traffic.
    pub weight: u32,
    /// The gRPC backend, if the version serves gRPC.
    pub grpc: Option<Arc<dyn GrpcBackend>>,
    /// The HTTP backend, if the version serves plain HTTP.
    pub http: Option<Arc<dyn HttpBackend>>,
}

impl fmt::Debug for VersionRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionRoute")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .field("grpc", &self.grpc.is_some())
            .field("http", &self.http.is_some())
            .finish()
    }
}

impl ServerRoute {
    /// Chooses a version at random in proportion to the weights; `None`
    /// when no version has a weight above zero.
    pub fn pick(&self) -> Option<&VersionRoute> {
        let total: u64 = self.versions.iter().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = rand::rng().random_range(0..total);
        for v in &self.versions {
            let w = u64::from(v.weight);
            if ticket < w {
                return Some(v);
            }
            ticket -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, weight: u32) -> VersionRoute {
        VersionRoute {
            name: name.into(),
            weight,
            grpc: None,
            http: None,
        }
    }

    #[test]
    fn pick_skips_zero_weights_and_none_when_all_zero() {
        let route = ServerRoute {
            name: "s".into(),
            deadline: Duration::from_secs(1),
            versions: vec![version("a", 0), version("b", 5), version("c", 0)],
        };
        for _ in 0..100 {
            assert_eq!(route.pick().map(|v| v.name.as_str()), Some("b"));
        }
        let empty = ServerRoute {
            versions: vec![version("a", 0)],
            ..route
        };
        assert!(empty.pick().is_none());
    }
}
