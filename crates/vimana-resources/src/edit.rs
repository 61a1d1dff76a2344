//! Editing a [`ResourceSet`] the way the daemon does: loading stored
//! resources as they are, removing, finding what a removal leaves
//! dangling, and recording observed status.

use std::collections::BTreeMap;

use crate::set::{ResourceRef, ResourceSet};
use crate::types::{Object, Resource, ResourceKind, Status};

/// A resource that refers to one that is not in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    /// The resource holding the reference.
    pub from: ResourceRef,
    /// Its field holding the reference, e.g. `spec.domain`.
    pub field: String,
    /// What it refers to, e.g. `Domain 00000000000000000000000000000001`.
    pub target: String,
}

impl ResourceSet {
    /// Stores `resource` as it is (status kept, no rules checked): for
    /// loading what was validated when it was applied.
    pub fn insert(&mut self, resource: Resource) {
        fn put<S>(map: &mut BTreeMap<String, Object<S>>, mut o: Object<S>) {
            o.origin = None;
            map.insert(o.metadata.name.clone(), o);
        }
        match resource {
            Resource::Vimana(o) => put(&mut self.vimanas, o),
            Resource::Domain(o) => put(&mut self.domains, o),
            Resource::Server(o) => put(&mut self.servers, o),
            Resource::Component(o) => put(&mut self.components, o),
        }
    }

    /// Removes one resource by kind and `metadata.name`.
    pub fn remove(&mut self, kind: ResourceKind, name: &str) -> Option<Resource> {
        match kind {
            ResourceKind::Vimana => self.vimanas.remove(name).map(Resource::Vimana),
            ResourceKind::Domain => self.domains.remove(name).map(Resource::Domain),
            ResourceKind::Server => self.servers.remove(name).map(Resource::Server),
            ResourceKind::Component => self.components.remove(name).map(Resource::Component),
        }
    }

    /// One resource by `metadata.name`, or for Components also by
    /// `<domain-id>:<server-id>@<version>`.
    pub fn find(&self, kind: ResourceKind, name: &str) -> Option<Resource> {
        self.get(kind, name).or_else(|| match kind {
            ResourceKind::Component => self.component(name).cloned().map(Resource::Component),
            _ => None,
        })
    }

    /// Every resource, in dependency order (Vimanas, Domains, Servers,
    /// Components), each kind by name.
    pub fn resources(&self) -> Vec<Resource> {
        let mut out: Vec<Resource> = Vec::with_capacity(self.len());
        out.extend(self.vimanas.values().cloned().map(Resource::Vimana));
        out.extend(self.domains.values().cloned().map(Resource::Domain));
        out.extend(self.servers.values().cloned().map(Resource::Server));
        out.extend(self.components.values().cloned().map(Resource::Component));
        out
    }

    /// Sets the status of one resource; `false` if there is no such resource.
    pub fn set_status(&mut self, kind: ResourceKind, name: &str, status: Status) -> bool {
        fn set<S>(map: &mut BTreeMap<String, Object<S>>, name: &str, status: Status) -> bool {
            map.get_mut(name).map(|o| o.status = Some(status)).is_some()
        }
        match kind {
            ResourceKind::Vimana => set(&mut self.vimanas, name, status),
            ResourceKind::Domain => set(&mut self.domains, name, status),
            ResourceKind::Server => set(&mut self.servers, name, status),
            ResourceKind::Component => set(&mut self.components, name, status),
        }
    }

    /// References that do not resolve in this set: a Domain's
    /// `spec.vimana`, a Server's `spec.domain` and `versionWeights` keys, a
    /// Component's `spec.domain` and `spec.server`. Empty for any set built
    /// by [`ResourceSet::apply`]; after [`ResourceSet::remove`] it names
    /// what still uses the removed resources.
    pub fn dangling(&self) -> Vec<Dangling> {
        let mut out = Vec::new();
        let mut add = |kind: ResourceKind, name: &str, field: String, target: String| {
            out.push(Dangling {
                from: ResourceRef {
                    kind,
                    name: name.to_owned(),
                },
                field,
                target,
            });
        };
        let domain = |id: &str| self.domains.values().any(|d| d.spec.id == id);
        for d in self.domains.values() {
            if !self.vimanas.contains_key(&d.spec.vimana) {
                let target = format!("Vimana {:?}", d.spec.vimana);
                add(
                    ResourceKind::Domain,
                    &d.metadata.name,
                    "spec.vimana".into(),
                    target,
                );
            }
        }
        for s in self.servers.values() {
            if !domain(&s.spec.domain) {
                let target = format!("Domain {}", s.spec.domain);
                add(
                    ResourceKind::Server,
                    &s.metadata.name,
                    "spec.domain".into(),
                    target,
                );
            }
            for version in s.spec.version_weights.keys() {
                let found = self.components.values().any(|c| {
                    c.spec.domain == s.spec.domain
                        && c.spec.server == s.spec.id
                        && &c.spec.version == version
                });
                if !found {
                    let field = format!("spec.versionWeights[{version:?}]");
                    let target = format!(
                        "Component {}",
                        crate::component_name(&s.spec.domain, &s.spec.id, version)
                    );
                    add(ResourceKind::Server, &s.metadata.name, field, target);
                }
            }
        }
        for c in self.components.values() {
            if !domain(&c.spec.domain) {
                let target = format!("Domain {}", c.spec.domain);
                add(
                    ResourceKind::Component,
                    &c.metadata.name,
                    "spec.domain".into(),
                    target,
                );
            }
            let server = self
                .servers
                .values()
                .any(|s| s.spec.domain == c.spec.domain && s.spec.id == c.spec.server);
            if !server {
                let target = format!("Server {} in Domain {}", c.spec.server, c.spec.domain);
                add(
                    ResourceKind::Component,
                    &c.metadata.name,
                    "spec.server".into(),
                    target,
                );
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{ResourceKind, ResourceSet, parse_documents};

    const ADDER: &str = include_str!("../examples/adder.yaml");

    #[test]
    fn remove_leaves_dangling_references_named() {
        let mut set = ResourceSet::new();
        set.apply(parse_documents("adder.yaml", ADDER).unwrap())
            .unwrap();
        assert!(set.dangling().is_empty());
        let mut copy = set.clone();
        assert!(copy.remove(ResourceKind::Domain, "example").is_some());
        let users: Vec<String> = copy.dangling().iter().map(|d| d.from.to_string()).collect();
        assert_eq!(users, ["Server/adder", "Component/adder-1.0.0"]);
        assert!(copy.remove(ResourceKind::Domain, "example").is_none());
        let found = set
            .find(
                ResourceKind::Component,
                "00000000000000000000000000000001:adder@1.0.0",
            )
            .unwrap();
        assert_eq!(found.name(), "adder-1.0.0");
        assert_eq!(set.resources().len(), 4);
    }

    #[test]
    fn json_round_trip_keeps_status_and_parse_json_checks() {
        let mut set = ResourceSet::new();
        set.apply(parse_documents("adder.yaml", ADDER).unwrap())
            .unwrap();
        let status = crate::Status::default();
        assert!(set.set_status(ResourceKind::Server, "adder", status.clone()));
        let server = set.get(ResourceKind::Server, "adder").unwrap();
        let json = serde_json::to_value(&server).unwrap();
        let back = crate::Resource::from_json(json.clone()).unwrap();
        assert_eq!(back.status(), Some(&status));
        assert!(
            crate::Resource::parse_json(None, json.clone())
                .unwrap()
                .status()
                .is_none()
        );
        let mut bad = json;
        bad["spec"]["id"] = "Not A Label".into();
        let err = crate::Resource::parse_json(None, bad).unwrap_err();
        assert_eq!(err.rule(), crate::Rule::ServerId);
        for alias in ["components", "Component", "comp", "COMPONENT"] {
            assert_eq!(
                ResourceKind::from_alias(alias),
                Some(ResourceKind::Component)
            );
        }
        assert_eq!(ResourceKind::from_alias("widgets"), None);
    }
}
