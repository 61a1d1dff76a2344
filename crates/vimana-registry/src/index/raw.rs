//! The index as written: serde types that keep spans for validation errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// Read first, without `deny_unknown_fields`, so that an index from a newer
/// schema is reported as such instead of as unknown keys.
#[derive(Deserialize)]
pub(super) struct SchemaProbe {
    pub schema: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIndex {
    #[allow(dead_code)]
    pub schema: toml::Value,
    pub repository: RawRepository,
    #[serde(default)]
    pub package: Vec<RawPackage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepository {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPackage {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    pub version: Spanned<String>,
    #[serde(default)]
    pub homepage: Option<Spanned<String>>,
    #[serde(default)]
    pub notes: Option<String>,
    pub node_types: Spanned<BTreeMap<Spanned<String>, RawNodeType>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNodeType {
    #[serde(default)]
    pub description: String,
    pub kind: Spanned<String>,
    #[serde(default)]
    pub init: Option<Spanned<Vec<Spanned<String>>>>,
    pub start: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub flags: BTreeMap<Spanned<String>, RawFlag>,
    #[serde(default)]
    pub ports: Vec<Spanned<i64>>,
    #[serde(default)]
    pub resources: Option<RawResources>,
    /// Environment of the node process; values are templated like commands.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// `always` (default), `on-failure` or `never`.
    #[serde(default)]
    pub restart: Option<Spanned<String>>,
    #[serde(default)]
    pub artifacts: Vec<RawArtifact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlag {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResources {
    #[serde(default)]
    pub cpu: Option<Spanned<f64>>,
    #[serde(default)]
    pub memory: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtifact {
    pub os: Spanned<String>,
    pub arch: Spanned<String>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    pub format: Spanned<String>,
    pub bin: Spanned<String>,
}
