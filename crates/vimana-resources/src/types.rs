//! The resource types, as serde sees them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Origin};

/// The `apiVersion` of every resource.
pub const API_VERSION: &str = "api.vimana.host/v1alpha1";

/// Default of `Vimana.spec.canonicalSuperdomain`.
pub const DEFAULT_CANONICAL_SUPERDOMAIN: &str = "vimana.local";

/// The four resource kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    /// A Vimana installation.
    Vimana,
    /// A domain served by a Vimana.
    Domain,
    /// A gRPC server in a domain.
    Server,
    /// One version of a server's Wasm component.
    Component,
}

impl ResourceKind {
    /// All kinds, in dependency order.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Vimana,
        ResourceKind::Domain,
        ResourceKind::Server,
        ResourceKind::Component,
    ];

    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Vimana => "Vimana",
            ResourceKind::Domain => "Domain",
            ResourceKind::Server => "Server",
            ResourceKind::Component => "Component",
        }
    }

    /// Parses a `kind` string (exact spelling).
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The resource's name (unique per kind).
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `status`, written by the operator; ignored on input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One `status.conditions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One resource document: `apiVersion`, `kind`, `metadata`, `spec` and an
/// optional `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Object<S> {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// The kind string.
    pub kind: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// The desired state.
    pub spec: S,
    /// Observed state; dropped by [`crate::parse_documents`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// File and document this resource was parsed from (not serialized).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

impl<S: PartialEq> Object<S> {
    /// Same metadata and spec (status and origin are not compared).
    pub fn same_content(&self, other: &Self) -> bool {
        self.metadata == other.metadata && self.spec == other.spec
    }
}

/// `Vimana.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VimanaSpec {
    /// Regions this Vimana runs in.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The superdomain under which domains get canonical hostnames.
    #[serde(default = "default_superdomain")]
    pub canonical_superdomain: String,
}

fn default_superdomain() -> String {
    DEFAULT_CANONICAL_SUPERDOMAIN.to_owned()
}

/// `Domain.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainSpec {
    /// Exactly 32 lowercase hex digits.
    pub id: String,
    /// `metadata.name` of the Vimana serving this domain.
    pub vimana: String,
    /// Extra hostnames.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// gRPC options.
    #[serde(default)]
    pub grpc: GrpcSpec,
    /// Serve an OpenAPI document.
    #[serde(default)]
    pub open_api: bool,
    /// TLS certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// `Domain.spec.grpc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcSpec {
    /// Server reflection.
    #[serde(default)]
    pub reflection: ReflectionSpec,
}

/// `Domain.spec.grpc.reflection`: at most one of the two lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReflectionSpec {
    /// Reflect only these services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none_but: Option<Vec<String>>,
    /// Reflect every service except these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_but: Option<Vec<String>>,
}

/// `Domain.spec.tls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key.
    pub key_file: String,
}

/// `Server.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    /// A DNS label: `^[a-z](?:[0-9a-z-]{0,61}[0-9a-z])?$`.
    pub id: String,
    /// The Domain id.
    pub domain: String,
    /// Fully qualified gRPC services, e.g. `foo.bar.AdderService`.
    #[serde(default)]
    pub services: Vec<String>,
    /// Traffic weight per Component version.
    #[serde(default)]
    pub version_weights: BTreeMap<String, u32>,
    /// Request deadline in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

/// `Component.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentSpec {
    /// Semantic version without build metadata, at most 63 characters.
    pub version: String,
    /// The Server id.
    pub server: String,
    /// The Domain id.
    pub domain: String,
    /// A local `.wasm` path or an OCI reference.
    pub image: String,
}

/// Where a Component's Wasm comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A local file ending in `.wasm`.
    Path(PathBuf),
    /// An OCI reference, e.g. `ghcr.io/acme/adder:1.0.0`.
    Oci(String),
}

impl ComponentSpec {
    /// Classifies `image`: a `.wasm` file or an OCI reference.
    pub fn image_source(&self) -> ImageSource {
        if self.image.ends_with(".wasm") {
            ImageSource::Path(PathBuf::from(&self.image))
        } else {
            ImageSource::Oci(self.image.clone())
        }
    }
}

/// A Vimana resource.
pub type Vimana = Object<VimanaSpec>;
/// A Domain resource.
pub type Domain = Object<DomainSpec>;
/// A Server resource.
pub type Server = Object<ServerSpec>;
/// A Component resource.
pub type Component = Object<ComponentSpec>;

/// The name of a Component: `<domain-id>:<server-id>@<version>`.
pub fn component_name(domain_id: &str, server_id: &str, version: &str) -> String {
    format!("{domain_id}:{server_id}@{version}")
}

impl Component {
    /// `<domain-id>:<server-id>@<version>` of this Component.
    pub fn component_name(&self) -> String {
        component_name(&self.spec.domain, &self.spec.server, &self.spec.version)
    }
}

/// Any resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// A Vimana.
    Vimana(Vimana),
    /// A Domain.
    Domain(Domain),
    /// A Server.
    Server(Server),
    /// A Component.
    Component(Component),
}

impl Resource {
    /// Its kind.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Vimana(_) => ResourceKind::Vimana,
            Resource::Domain(_) => ResourceKind::Domain,
            Resource::Server(_) => ResourceKind::Server,
            Resource::Component(_) => ResourceKind::Component,
        }
    }

    /// Its metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Resource::Vimana(o) => &o.metadata,
            Resource::Domain(o) => &o.metadata,
            Resource::Server(o) => &o.metadata,
            Resource::Component(o) => &o.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// File and document it was parsed from.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Resource::Vimana(o) => o.origin.as_ref(),
            Resource::Domain(o) => o.origin.as_ref(),
            Resource::Server(o) => o.origin.as_ref(),
            Resource::Component(o) => o.origin.as_ref(),
        }
    }

    /// The error context: `file document N (Kind "name")`.
    pub fn context(&self) -> Context {
        Context {
            origin: self.origin().cloned(),
            kind: Some(self.kind()),
            name: Some(self.name().to_owned()),
        }
    }

    /// Drops `status` (input never carries observed state).
    pub fn clear_status(&mut self) {
        match self {
            Resource::Vimana(o) => o.status = None,
            Resource::Domain(o) => o.status = None,
            Resource::Server(o) => o.status = None,
            Resource::Component(o) => o.status = None,
        }
    }
}
