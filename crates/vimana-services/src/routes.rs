//! The gateway route table of a resource set, and the statuses of its
//! Vimanas, Domains and Servers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vimana_core::available;
use vimana_gateway::{
    DomainRoute, ReflectionPolicy, Routes, ServerRoute, TlsMaterial, VersionRoute,
};
use vimana_resources::{
    DEFAULT_CANONICAL_SUPERDOMAIN, Domain, ResourceKind, ResourceSet, Server, Status,
    component_name,
};

use crate::backend::{WasmGrpc, WasmHttp};
use crate::deploy::Deployed;
use crate::openapi;
use crate::runtime::DEFAULT_DEADLINE;

type Reported = Vec<(ResourceKind, String, Status)>;

/// Routes for every Domain of `set`, given the loaded Components and why
/// the others failed to load (both by component name).
pub fn build(
    set: &ResourceSet,
    loaded: &HashMap<String, Arc<Deployed>>,
    failed: &HashMap<String, String>,
) -> (Routes, Reported) {
    let mut out = Vec::new();
    let mut routes = Routes::default();
    for v in set.vimanas() {
        out.push((
            ResourceKind::Vimana,
            v.metadata.name.clone(),
            available("True", "Serving", "served by this daemon's gateway"),
        ));
    }
    for d in set.domains() {
        let servers: Vec<&Server> = set
            .servers()
            .filter(|s| s.spec.domain == d.spec.id)
            .collect();
        match domain_route(set, d, &servers, loaded, failed, &mut out) {
            Ok(route) => {
                out.push((
                    ResourceKind::Domain,
                    d.metadata.name.clone(),
                    available(
                        "True",
                        "Serving",
                        format!("answering on {}", route.hostnames.join(", ")),
                    ),
                ));
                routes.domains.push(route);
            }
            Err((reason, message)) => out.push((
                ResourceKind::Domain,
                d.metadata.name.clone(),
                available("False", reason, message),
            )),
        }
    }
    (routes, out)
}

fn domain_route(
    set: &ResourceSet,
    d: &Domain,
    servers: &[&Server],
    loaded: &HashMap<String, Arc<Deployed>>,
    failed: &HashMap<String, String>,
    out: &mut Reported,
) -> Result<DomainRoute, (&'static str, String)> {
    let superdomain = set
        .vimanas()
        .find(|v| v.metadata.name == d.spec.vimana)
        .map_or(DEFAULT_CANONICAL_SUPERDOMAIN, |v| {
            v.spec.canonical_superdomain.as_str()
        });
    let mut hostnames = vec![format!("{}.{superdomain}", d.spec.id)];
    hostnames.extend(d.spec.aliases.iter().cloned());
    let tls = match &d.spec.tls {
        None => None,
        Some(t) => Some(TlsMaterial {
            cert_chain_pem: std::fs::read(&t.cert_file).map_err(|e| {
                (
                    "TlsUnreadable",
                    format!("cannot read spec.tls.certFile {}: {e}", t.cert_file),
                )
            })?,
            key_pem: std::fs::read(&t.key_file).map_err(|e| {
                (
                    "TlsUnreadable",
                    format!("cannot read spec.tls.keyFile {}: {e}", t.key_file),
                )
            })?,
        }),
    };
    let reflection = match (
        &d.spec.grpc.reflection.none_but,
        &d.spec.grpc.reflection.all_but,
    ) {
        (Some(only), _) => ReflectionPolicy::NoneBut(only.clone()),
        (None, Some(except)) => ReflectionPolicy::AllBut(except.clone()),
        (None, None) => ReflectionPolicy::All,
    };
    let mut route = DomainRoute {
        id: d.spec.id.clone(),
        hostnames,
        tls,
        reflection,
        ..DomainRoute::default()
    };
    let mut contracts = Vec::new();
    for s in servers {
        let deadline = s
            .spec
            .deadline_ms
            .map_or(DEFAULT_DEADLINE, Duration::from_millis);
        let mut grpc_versions: HashMap<&str, Vec<VersionRoute>> = HashMap::new();
        let mut http_versions = Vec::new();
        let mut missing = Vec::new();
        for (version, weight) in &s.spec.version_weights {
            let name = component_name(&d.spec.id, &s.spec.id, version);
            let Some(dep) = loaded.get(&name) else {
                missing.push(name);
                continue;
            };
            match &dep.contract {
                Some(contract) => {
                    if !contracts
                        .iter()
                        .any(|c: &Arc<vimana_grpc::Contract>| Arc::ptr_eq(c, contract))
                    {
                        contracts.push(Arc::clone(contract));
                    }
                    for svc in &s.spec.services {
                        grpc_versions
                            .entry(svc.as_str())
                            .or_default()
                            .push(VersionRoute {
                                name: name.clone(),
                                weight: *weight,
                                grpc: Some(Arc::new(WasmGrpc {
                                    service: svc.clone(),
                                    component: Arc::clone(&dep.component),
                                    contract: Arc::clone(contract),
                                })),
                                http: None,
                            });
                    }
                }
                None => http_versions.push(VersionRoute {
                    name: name.clone(),
                    weight: *weight,
                    grpc: None,
                    http: Some(Arc::new(WasmHttp {
                        component: Arc::clone(&dep.component),
                    })),
                }),
            }
        }
        for svc in &s.spec.services {
            if !grpc_versions.contains_key(svc.as_str()) {
                let why = no_grpc_version(s, &missing, failed, !http_versions.is_empty());
                route.unavailable.insert(svc.clone(), why);
            }
        }
        for (svc, versions) in grpc_versions {
            route.services.insert(
                svc.to_owned(),
                Arc::new(ServerRoute {
                    name: s.metadata.name.clone(),
                    deadline,
                    versions,
                }),
            );
        }
        if !http_versions.is_empty() {
            route.http = Some(Arc::new(ServerRoute {
                name: s.metadata.name.clone(),
                deadline,
                versions: http_versions,
            }));
        }
        out.push((
            ResourceKind::Server,
            s.metadata.name.clone(),
            server_status(s, &missing),
        ));
    }
    route
        .unavailable
        .retain(|svc, _| !route.services.contains_key(svc));
    route.descriptor_sets = contracts
        .iter()
        .map(|c| Bytes::copy_from_slice(c.descriptor_set()))
        .collect();
    if d.spec.open_api {
        let services: Vec<&str> = route.services.keys().map(String::as_str).collect();
        let doc = openapi::merged(&d.metadata.name, &contracts, &services);
        route.open_api = Some(Bytes::from(doc));
    }
    Ok(route)
}

/// Why no version of Server `s` serves gRPC, from the Components' load
/// failures (`missing`: the component names not loaded).
fn no_grpc_version(
    s: &Server,
    missing: &[String],
    failed: &HashMap<String, String>,
    has_http: bool,
) -> String {
    if s.spec.version_weights.is_empty() {
        return format!(
            "Server {}: spec.versionWeights names no Component version",
            s.metadata.name
        );
    }
    let mut why: Vec<String> = missing
        .iter()
        .map(|name| match failed.get(name) {
            Some(f) => format!("{name}: {f}"),
            None => format!("{name}: no such Component; apply one with this version"),
        })
        .collect();
    if has_http {
        why.push(format!(
            "the loaded versions of Server {} serve plain HTTP, not gRPC",
            s.metadata.name
        ));
    }
    why.join("; ")
}

fn server_status(s: &Server, missing: &[String]) -> Status {
    if s.spec.version_weights.is_empty() {
        return available(
            "False",
            "NoVersions",
            "spec.versionWeights names no Component version",
        );
    }
    if missing.is_empty() {
        available(
            "True",
            "Serving",
            format!("{} version(s) in rotation", s.spec.version_weights.len()),
        )
    } else {
        available(
            "False",
            "VersionsUnavailable",
            format!(
                "not loaded: {}; see `vimana get components`",
                missing.join(", ")
            ),
        )
    }
}
