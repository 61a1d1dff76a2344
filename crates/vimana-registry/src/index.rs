//! The repository index format (see `docs/registry.md`): parsing with
//! spans, validation into a checked model, and diagnostics.

mod error;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use error::IndexError;

/// The index schema this vimana reads.
pub const SCHEMA: i64 = 1;

/// A validated repository index.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Index {
    pub schema: i64,
    pub repository: Repository,
    pub packages: Vec<Package>,
}

/// `[repository]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Repository {
    pub name: String,
    pub description: String,
}

/// One `[[package]]`: a spacecore with its node types.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Package {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub version: String,
    pub homepage: Option<String>,
    /// Free-form remarks by the index author (e.g. why checksums are missing).
    pub notes: Option<String>,
    pub node_types: BTreeMap<String, NodeType>,
}

impl Package {
    /// Whether every artifact of every node type carries a sha256.
    pub fn is_verified(&self) -> bool {
        self.node_types
            .values()
            .flat_map(|n| &n.artifacts)
            .all(|a| a.sha256.is_some())
    }
}

/// How a node type runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A plain supervised process (supported).
    Process,
    /// A spacecore plugin (known, not supported by `run` yet).
    Plugin,
    /// A WebAssembly component (known, not supported yet).
    Wasm,
    /// A microVM (known, not supported yet).
    Vm,
}

impl NodeKind {
    /// The name used in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Process => "process",
            NodeKind::Plugin => "plugin",
            NodeKind::Wasm => "wasm",
            NodeKind::Vm => "vm",
        }
    }

    /// Whether this vimana can run it.
    pub fn is_supported(self) -> bool {
        self == NodeKind::Process
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "process" => NodeKind::Process,
            "plugin" => NodeKind::Plugin,
            "wasm" => NodeKind::Wasm,
            "vm" => NodeKind::Vm,
            _ => return None,
        })
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[package.node_types.<type>]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeType {
    pub description: String,
    pub kind: NodeKind,
    /// Run once when the node's store directory does not exist yet.
    pub init: Option<Vec<String>>,
    /// The long-running command (first element: the program).
    pub start: Vec<String>,
    pub flags: BTreeMap<String, Flag>,
    pub ports: Vec<u16>,
    pub resources: Option<Resources>,
    /// Environment of the node process (values templated like commands).
    pub env: BTreeMap<String, String>,
    /// What the supervisor does when the node exits by itself.
    pub restart: Restart,
    pub artifacts: Vec<Artifact>,
}

/// Restart policy of a node type: `always`, `on-failure` or `never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// A `run` flag a node type accepts (`--<name> <value>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub default: Option<String>,
    pub description: String,
}

/// Resource hints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resources {
    pub cpu: Option<f64>,
    pub memory_bytes: Option<u64>,
}

/// How an artifact is packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ArchiveFormat {
    /// The file is the binary itself.
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "zip")]
    Zip,
}

impl ArchiveFormat {
    /// The name used in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveFormat::Raw => "raw",
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::Zip => "zip",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "raw" => ArchiveFormat::Raw,
            "tar.gz" | "tgz" => ArchiveFormat::TarGz,
            "zip" => ArchiveFormat::Zip,
            _ => return None,
        })
    }
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One downloadable build of a node type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// Normalised OS name (`linux`, `macos`).
    pub os: String,
    /// Normalised architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// As written: absolute http(s)/file URL or a path relative to the index.
    pub url: String,
    /// Lowercase hex, when the index author knows it.
    pub sha256: Option<String>,
    pub format: ArchiveFormat,
    /// The executable: path inside the archive, or the file name for `raw`.
    pub bin: String,
}

/// Normalise OS aliases (`darwin` → `macos`).
pub fn normalize_os(os: &str) -> String {
    match os {
        "darwin" | "osx" => "macos".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Normalise architecture aliases (`amd64` → `x86_64`, `arm64` → `aarch64`).
pub fn normalize_arch(arch: &str) -> String {
    match arch {
        "amd64" | "x64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Parse and validate an index. `name` (file name or URL) appears in errors.
pub fn parse(name: &str, text: &str) -> Result<Index, Box<IndexError>> {
    validate::parse(name, text)
}

/// Whether `name` is a valid repository, package or node type name
/// (`^[a-z][a-z0-9-]*$`).
pub fn is_valid_name(name: &str) -> bool {
    validate::is_name(name)
}
