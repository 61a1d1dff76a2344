//! [`ResourceSet`] (applied resources) and the cross-document rules of
//! [`validate`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::check::check_resource;
use crate::error::{ResourceError, Rule};
use crate::types::{Component, Domain, Resource, ResourceKind, Server, Vimana, component_name};

/// The applied resources, by kind and `metadata.name`. In memory; the
/// daemon persists it (it is serde-serializable, see [`ResourceSet::to_json`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSet {
    #[serde(default)]
    pub(crate) vimanas: BTreeMap<String, Vimana>,
    #[serde(default)]
    pub(crate) domains: BTreeMap<String, Domain>,
    #[serde(default)]
    pub(crate) servers: BTreeMap<String, Server>,
    #[serde(default)]
    pub(crate) components: BTreeMap<String, Component>,
}

/// A resource named by kind and `metadata.name`; displays as `Kind/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    /// Kind.
    pub kind: ResourceKind,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What [`ResourceSet::apply`] did with each resource, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// Resources that did not exist.
    pub created: Vec<ResourceRef>,
    /// Resources whose metadata or spec changed.
    pub updated: Vec<ResourceRef>,
    /// Resources applied again without change.
    pub unchanged: Vec<ResourceRef>,
}

impl ResourceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates `resources` against this set ([`validate`]) and stores
    /// them. Nothing is stored if any resource is rejected.
    pub fn apply(&mut self, resources: Vec<Resource>) -> Result<ApplyOutcome, ResourceError> {
        validate(&resources, self)?;
        let mut outcome = ApplyOutcome::default();
        for mut resource in resources {
            resource.clear_status();
            let r = ResourceRef {
                kind: resource.kind(),
                name: resource.name().to_owned(),
            };
            let change = match resource {
                Resource::Vimana(o) => upsert(&mut self.vimanas, o),
                Resource::Domain(o) => upsert(&mut self.domains, o),
                Resource::Server(o) => upsert(&mut self.servers, o),
                Resource::Component(o) => upsert(&mut self.components, o),
            };
            match change {
                Change::Created => outcome.created.push(r),
                Change::Updated => outcome.updated.push(r),
                Change::Unchanged => outcome.unchanged.push(r),
            }
        }
        Ok(outcome)
    }

    /// One resource by kind and `metadata.name`.
    pub fn get(&self, kind: ResourceKind, name: &str) -> Option<Resource> {
        match kind {
            ResourceKind::Vimana => self.vimanas.get(name).cloned().map(Resource::Vimana),
            ResourceKind::Domain => self.domains.get(name).cloned().map(Resource::Domain),
            ResourceKind::Server => self.servers.get(name).cloned().map(Resource::Server),
            ResourceKind::Component => self.components.get(name).cloned().map(Resource::Component),
        }
    }

    /// Vimanas by name.
    pub fn vimanas(&self) -> impl Iterator<Item = &Vimana> {
        self.vimanas.values()
    }

    /// Domains by name.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// Servers by name.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    /// Components by name.
    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.components.values()
    }

    /// The Component `<domain-id>:<server-id>@<version>`, if applied.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components
            .values()
            .find(|c| c.component_name() == name)
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.vimanas.len() + self.domains.len() + self.servers.len() + self.components.len()
    }

    /// No resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// JSON for persistence.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads what [`ResourceSet::to_json`] wrote.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

enum Change {
    Created,
    Updated,
    Unchanged,
}

fn upsert<S: PartialEq>(
    map: &mut BTreeMap<String, crate::Object<S>>,
    o: crate::Object<S>,
) -> Change {
    let mut o = o;
    o.origin = None;
    match map.get(&o.metadata.name) {
        Some(old) if old.same_content(&o) => Change::Unchanged,
        Some(_) => {
            map.insert(o.metadata.name.clone(), o);
            Change::Updated
        }
        None => {
            map.insert(o.metadata.name.clone(), o);
            Change::Created
        }
    }
}

/// The state after applying: `existing`, overlaid with the new resources.
struct View<'a> {
    vimanas: BTreeMap<&'a str, &'a Vimana>,
    domains: BTreeMap<&'a str, &'a Domain>,
    servers: BTreeMap<&'a str, &'a Server>,
    components: BTreeMap<&'a str, &'a Component>,
}

impl<'a> View<'a> {
    fn new(set: &'a [Resource], existing: &'a ResourceSet) -> Self {
        fn base<T>(m: &BTreeMap<String, T>) -> BTreeMap<&str, &T> {
            m.iter().map(|(k, v)| (k.as_str(), v)).collect()
        }
        let mut view = View {
            vimanas: base(&existing.vimanas),
            domains: base(&existing.domains),
            servers: base(&existing.servers),
            components: base(&existing.components),
        };
        for r in set {
            match r {
                Resource::Vimana(o) => view.vimanas.insert(&o.metadata.name, o).map(|_| ()),
                Resource::Domain(o) => view.domains.insert(&o.metadata.name, o).map(|_| ()),
                Resource::Server(o) => view.servers.insert(&o.metadata.name, o).map(|_| ()),
                Resource::Component(o) => view.components.insert(&o.metadata.name, o).map(|_| ()),
            };
        }
        view
    }
}

/// Checks `set` (the documents about to be applied) as a whole and against
/// `existing`:
///
/// - every resource's field rules (as [`crate::parse_documents`] does);
/// - no two documents with the same kind and `metadata.name`;
/// - a Component version is immutable: re-applying
///   `<domain>:<server>@<version>` with a different image (or changing the
///   spec of an applied Component) is refused;
/// - ids are unique: Domain `spec.id`, Server `spec.id` within its domain,
///   Component name `<domain>:<server>@<version>`;
/// - references resolve: a Domain's `spec.vimana`, a Server's `spec.domain`,
///   a Component's `spec.domain` and `spec.server`;
/// - every `versionWeights` key of a Server has a Component of that
///   version for that server.
pub fn validate(set: &[Resource], existing: &ResourceSet) -> Result<(), ResourceError> {
    for r in set {
        check_resource(r)?;
    }

    let mut names: HashMap<(ResourceKind, &str), &Resource> = HashMap::new();
    for r in set {
        if let Some(first) = names.insert((r.kind(), r.name()), r) {
            let at = first
                .origin()
                .map(|o| format!(" (first in {} document {})", o.file, o.document))
                .unwrap_or_default();
            return Err(ResourceError::invalid(
                &r.context(),
                "metadata.name",
                Rule::DuplicateName,
                format!("{:?} is given twice{at}", r.name()),
                format!(
                    "keep one {} named {:?} or rename one of them",
                    r.kind(),
                    r.name()
                ),
            ));
        }
    }

    // Immutable Component versions.
    for r in set {
        let Resource::Component(c) = r else { continue };
        let cname = c.component_name();
        for old in existing.components.values() {
            let same_object = old.metadata.name == c.metadata.name;
            if old.component_name() == cname && old.spec.image != c.spec.image {
                return Err(ResourceError::invalid(
                    &r.context(),
                    "spec.image",
                    Rule::ImmutableVersion,
                    format!(
                        "{:?} differs from {:?}, the image already applied for Component {cname} (versions are immutable)",
                        c.spec.image, old.spec.image
                    ),
                    format!(
                        "publish the new image under a new spec.version (e.g. bump {}) and shift versionWeights to it",
                        c.spec.version
                    ),
                ));
            }
            if same_object && old.spec != c.spec {
                let field = if old.spec.version != c.spec.version {
                    "spec.version"
                } else if old.spec.server != c.spec.server {
                    "spec.server"
                } else {
                    "spec.domain"
                };
                return Err(ResourceError::invalid(
                    &r.context(),
                    field,
                    Rule::ImmutableVersion,
                    format!(
                        "cannot change: Component {:?} was applied as {} (Components are immutable)",
                        c.metadata.name,
                        old.component_name()
                    ),
                    "create a new Component with its own metadata.name for the new version",
                ));
            }
        }
    }

    let view = View::new(set, existing);

    // Unique ids. A clash is reported on the later resource: the one that
    // comes after its twin in the input, or that joins an applied one.
    let index: HashMap<(ResourceKind, &str), usize> = set
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.kind(), r.name()), i))
        .collect();
    for (i, r) in set.iter().enumerate() {
        let earlier =
            |kind: ResourceKind, name: &str| index.get(&(kind, name)).is_none_or(|&j| j < i);
        let clash = match r {
            Resource::Vimana(_) => None,
            Resource::Domain(d) => view
                .domains
                .values()
                .find(|o| {
                    o.metadata.name != d.metadata.name
                        && o.spec.id == d.spec.id
                        && earlier(ResourceKind::Domain, &o.metadata.name)
                })
                .map(|o| {
                    (
                        "spec.id",
                        format!("{:?}", d.spec.id),
                        ResourceKind::Domain,
                        &o.metadata.name,
                    )
                }),
            Resource::Server(s) => view
                .servers
                .values()
                .find(|o| {
                    o.metadata.name != s.metadata.name
                        && o.spec.id == s.spec.id
                        && o.spec.domain == s.spec.domain
                        && earlier(ResourceKind::Server, &o.metadata.name)
                })
                .map(|o| {
                    (
                        "spec.id",
                        format!("{:?}", s.spec.id),
                        ResourceKind::Server,
                        &o.metadata.name,
                    )
                }),
            Resource::Component(c) => {
                let cname = c.component_name();
                view.components
                    .values()
                    .find(|o| {
                        o.metadata.name != c.metadata.name
                            && o.component_name() == cname
                            && earlier(ResourceKind::Component, &o.metadata.name)
                    })
                    .map(|o| {
                        (
                            "spec.version",
                            cname.clone(),
                            ResourceKind::Component,
                            &o.metadata.name,
                        )
                    })
            }
        };
        if let Some((field, id, kind, other)) = clash {
            return Err(ResourceError::invalid(
                &r.context(),
                field,
                Rule::DuplicateId,
                format!("{id} is already used by {kind} {other:?}"),
                format!("use a different id, or change {kind} {other:?} instead of adding another"),
            ));
        }
    }

    // References.
    let domain_known = |id: &str| view.domains.values().any(|d| d.spec.id == id);
    for r in set {
        match r {
            Resource::Vimana(_) => {}
            Resource::Domain(d) => {
                if !view.vimanas.contains_key(d.spec.vimana.as_str()) {
                    return Err(unknown(
                        r,
                        "spec.vimana",
                        "Vimana",
                        &d.spec.vimana,
                        "metadata.name",
                    ));
                }
            }
            Resource::Server(s) => {
                if !domain_known(&s.spec.domain) {
                    return Err(unknown(
                        r,
                        "spec.domain",
                        "Domain",
                        &s.spec.domain,
                        "spec.id",
                    ));
                }
            }
            Resource::Component(c) => {
                if !domain_known(&c.spec.domain) {
                    return Err(unknown(
                        r,
                        "spec.domain",
                        "Domain",
                        &c.spec.domain,
                        "spec.id",
                    ));
                }
                let server_known = view
                    .servers
                    .values()
                    .any(|s| s.spec.domain == c.spec.domain && s.spec.id == c.spec.server);
                if !server_known {
                    return Err(ResourceError::invalid(
                        &r.context(),
                        "spec.server",
                        Rule::UnknownReference,
                        format!(
                            "{:?} is not the spec.id of any Server in Domain {}",
                            c.spec.server, c.spec.domain
                        ),
                        format!(
                            "apply a Server with spec.id {:?} and spec.domain {} (in this file or before), or correct spec.server",
                            c.spec.server, c.spec.domain
                        ),
                    ));
                }
            }
        }
    }

    // versionWeights need Components.
    for r in set {
        let Resource::Server(s) = r else { continue };
        for version in s.spec.version_weights.keys() {
            let found = view.components.values().any(|c| {
                c.spec.domain == s.spec.domain
                    && c.spec.server == s.spec.id
                    && &c.spec.version == version
            });
            if !found {
                let cname = component_name(&s.spec.domain, &s.spec.id, version);
                return Err(ResourceError::invalid(
                    &r.context(),
                    format!("spec.versionWeights[{version:?}]"),
                    Rule::MissingComponent,
                    format!("names version {version}, but there is no Component {cname}"),
                    format!(
                        "apply a Component with spec.version {version:?}, spec.server {:?} and spec.domain {}, or remove the key",
                        s.spec.id, s.spec.domain
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn unknown(r: &Resource, field: &str, kind: &str, value: &str, by: &str) -> ResourceError {
    ResourceError::invalid(
        &r.context(),
        field,
        Rule::UnknownReference,
        format!("{value:?} is not the {by} of any {kind}"),
        format!("apply the {kind} first (or in the same file), or correct {field}"),
    )
}
