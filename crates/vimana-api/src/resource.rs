//! The `api.vimana.host/v1alpha1` resources over the REST API: request and
//! answer bodies of `/v1/resources`, and how each resource fared.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vimana_resources::{ResourceKind, ResourceRef};

/// Body of `POST /v1/resources`: resources to apply, all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Resource objects (`apiVersion`, `kind`, `metadata`, `spec`), as in
    /// the YAML files; `status` is ignored.
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<serde_json::Value>,
    /// Optional: where each resource came from, in the same order, so that
    /// errors name the file and document. Empty, or one per resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<SourceRef>,
}

/// A file (`-` for stdin) and the 1-based index of a YAML document in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub file: String,
    pub document: usize,
}

/// Body of `POST /v1/resources/delete`: resources to delete, all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    pub resources: Vec<ResourceId>,
}

/// One resource by kind and name. `kind` accepts the kind (`Domain`), its
/// plural (`domains`) or short form (`dom`); `name` is `metadata.name`, or
/// for a Component also `<domain-id>:<server-id>@<version>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceId {
    pub kind: String,
    pub name: String,
}

/// What an apply or delete did with one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// It did not exist.
    Created,
    /// Its metadata or spec changed.
    Configured,
    /// Applied again without change.
    Unchanged,
    /// Removed.
    Deleted,
}

impl ChangeKind {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Configured => "configured",
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// One line of an apply or delete answer: `domain/example created`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceChange {
    /// `Vimana`, `Domain`, `Server` or `Component`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    pub change: ChangeKind,
}

impl ResourceChange {
    /// The change of the resource `r`.
    pub fn new(r: &ResourceRef, change: ChangeKind) -> Self {
        Self {
            kind: r.kind.as_str().to_owned(),
            name: r.name.clone(),
            change,
        }
    }
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}",
            self.kind.to_ascii_lowercase(),
            self.name,
            self.change.as_str()
        )
    }
}

/// Answer of apply and delete: one entry per resource, in request order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeList {
    pub changes: Vec<ResourceChange>,
    /// The store revision after the change (unchanged if nothing changed).
    pub revision: u64,
}

/// Which resources `GetResources` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceQuery {
    /// Only this kind (all kinds if `None`).
    pub kind: Option<ResourceKind>,
    /// Only this `metadata.name` (or Component name); needs `kind`.
    pub name: Option<String>,
}
