//! gRPC server reflection (v1 and v1alpha) for one domain, built with
//! tonic-reflection from the domain's descriptor sets when the route table
//! is set, and honouring the domain's [`ReflectionPolicy`].
//!
//! The policy filters the *listed* services; file and symbol lookups work
//! for every file of the domain's descriptor sets. The sets are decoded
//! before registration, so custom options are not served.

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic_reflection::server::Builder;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::body::{BoxError, GatewayBody};
use crate::error::GatewayError;
use crate::routes::{DomainRoute, ReflectionPolicy};

/// The full name of the v1 reflection service.
pub const V1_SERVICE: &str = "grpc.reflection.v1.ServerReflection";
/// The full name of the v1alpha reflection service.
pub const V1ALPHA_SERVICE: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A reflection service as the gateway calls it.
pub(crate) type ReflectionService =
    BoxCloneSyncService<http::Request<Incoming>, http::Response<GatewayBody>, Infallible>;

/// Both reflection services of one domain.
pub(crate) struct Reflection {
    pub(crate) v1: ReflectionService,
    pub(crate) v1alpha: ReflectionService,
}

impl Reflection {
    /// The service for a reflection service name, if `service` is one.
    pub(crate) fn for_service(&self, service: &str) -> Option<ReflectionService> {
        match service {
            V1_SERVICE => Some(self.v1.clone()),
            V1ALPHA_SERVICE => Some(self.v1alpha.clone()),
            _ => None,
        }
    }
}

fn box_service<S, B>(svc: S) -> ReflectionService
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneSyncService::new(
        svc.map_response(|resp: http::Response<B>| {
            resp.map(|b| b.map_err(Into::into).boxed_unsync())
        }),
    )
}

/// Builds the domain's reflection services; `None` when its policy lists
/// nothing (then reflection answers `UNIMPLEMENTED`).
pub(crate) fn build(domain: &DomainRoute) -> Result<Option<Reflection>, GatewayError> {
    let err = |reason: String| GatewayError::Reflection {
        domain: domain.id.clone(),
        reason,
    };
    let mut sets = Vec::with_capacity(domain.descriptor_sets.len());
    let mut all_services = Vec::new();
    for encoded in &domain.descriptor_sets {
        let set = FileDescriptorSet::decode(encoded.clone()).map_err(|e| err(e.to_string()))?;
        for file in &set.file {
            let package = file.package.clone().unwrap_or_default();
            for service in &file.service {
                let name = service.name.clone().unwrap_or_default();
                all_services.push(if package.is_empty() {
                    name
                } else {
                    format!("{package}.{name}")
                });
            }
        }
        sets.push(set);
    }
    let listed: Option<Vec<String>> = match &domain.reflection {
        ReflectionPolicy::All => None,
        ReflectionPolicy::NoneBut(names) if names.is_empty() => return Ok(None),
        ReflectionPolicy::NoneBut(names) => Some(names.clone()),
        ReflectionPolicy::AllBut(hidden) => Some(
            all_services
                .iter()
                .chain([V1_SERVICE.to_string(), V1ALPHA_SERVICE.to_string()].iter())
                .filter(|s| !hidden.contains(s))
                .cloned()
                .collect(),
        ),
    };
    if listed.as_ref().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    let builder = || {
        let mut b = Builder::configure();
        for set in &sets {
            b = b.register_file_descriptor_set(set.clone());
        }
        for name in listed.iter().flatten() {
            b = b.with_service_name(name.clone());
        }
        b
    };
    let v1 = builder().build_v1().map_err(|e| err(e.to_string()))?;
    let v1alpha = builder().build_v1alpha().map_err(|e| err(e.to_string()))?;
    Ok(Some(Reflection {
        v1: box_service(v1),
        v1alpha: box_service(v1alpha),
    }))
}
