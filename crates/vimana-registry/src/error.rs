//! The crate's error type.

use std::path::PathBuf;

use miette::Diagnostic;

use crate::index::IndexError;

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RegistryError {
    /// An index failed to parse or validate (carries source text and a span).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Index(#[from] Box<IndexError>),

    #[error("{action} {path}: {source}")]
    #[diagnostic(code(vimana::registry::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("fetching {url}: {message}")]
    #[diagnostic(
        code(vimana::registry::network),
        help(
            "check the address and your network connection; a partial download is resumed on the next try"
        )
    )]
    Network { url: String, message: String },

    #[error("fetching {url}: the server answered HTTP {status}")]
    #[diagnostic(code(vimana::registry::http_status))]
    HttpStatus { url: String, status: u16 },

    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}")]
    #[diagnostic(
        code(vimana::registry::checksum),
        help(
            "the download was deleted; the file on the server differs from the one the index describes — report it to the repository owner"
        )
    )]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("unsupported address {url:?}: {reason}")]
    #[diagnostic(
        code(vimana::registry::url),
        help("use an https://, http:// or file:// URL, or a local path")
    )]
    BadUrl { url: String, reason: String },

    #[error("archive {archive}: entry {entry:?} rejected: {rule}")]
    #[diagnostic(
        code(vimana::registry::unsafe_archive),
        help(
            "the archive tries to write outside its destination or contains a special file; nothing was installed"
        )
    )]
    UnsafeEntry {
        archive: PathBuf,
        entry: String,
        rule: String,
    },

    #[error("archive {archive}: {message}")]
    #[diagnostic(code(vimana::registry::archive))]
    Archive { archive: PathBuf, message: String },

    #[error("destination {0} already exists")]
    #[diagnostic(
        code(vimana::registry::dest_exists),
        help("remove it first; unpack never merges into an existing directory")
    )]
    DestinationExists(PathBuf),

    #[error("invalid repository name {0:?}")]
    #[diagnostic(
        code(vimana::registry::repo_name),
        help("a repository name starts with a lowercase letter and holds only a-z, 0-9 and '-'")
    )]
    BadRepoName(String),

    #[error("repository {0:?} already exists")]
    #[diagnostic(
        code(vimana::registry::repo_exists),
        help("`vimana repo remove {0}` first, or choose another name")
    )]
    RepoExists(String),

    #[error("no repository named {name:?} (known: {known})")]
    #[diagnostic(code(vimana::registry::repo_not_found))]
    RepoNotFound { name: String, known: String },

    #[error("the built-in repository {0:?} cannot be {1}")]
    #[diagnostic(
        code(vimana::registry::builtin_repo),
        help("it ships inside the vimana binary and is updated with vimana itself")
    )]
    BuiltinRepo(String, &'static str),

    #[error("repository store {path}: {message}")]
    #[diagnostic(
        code(vimana::registry::repos_file),
        help("fix or delete the file; `vimana repo add` recreates it")
    )]
    ReposFile { path: PathBuf, message: String },

    #[error("no package named {name:?}{suggest}")]
    #[diagnostic(
        code(vimana::registry::package_not_found),
        help("`vimana search <term>` lists the packages of every repository")
    )]
    PackageNotFound { name: String, suggest: String },

    #[error("package {name:?} exists in several repositories: {candidates}")]
    #[diagnostic(
        code(vimana::registry::ambiguous_package),
        help("name one as <repository>/<package>")
    )]
    AmbiguousPackage { name: String, candidates: String },

    #[error("package {package:?} has no node type {node_type:?} (available: {available})")]
    #[diagnostic(code(vimana::registry::node_type_not_found))]
    NodeTypeNotFound {
        package: String,
        node_type: String,
        available: String,
    },

    #[error("{package} {node_type} is a {kind} node, which this vimana cannot run yet")]
    #[diagnostic(
        code(vimana::registry::unsupported_kind),
        help("only `process` node types run today")
    )]
    UnsupportedKind {
        package: String,
        node_type: String,
        kind: String,
    },

    #[error("{package} {node_type} has no build for {os}/{arch} (available: {available})")]
    #[diagnostic(code(vimana::registry::no_artifact))]
    NoArtifact {
        package: String,
        node_type: String,
        os: String,
        arch: String,
        available: String,
    },

    #[error("the package index's {what} {value:?} would leave {base}")]
    #[diagnostic(
        code(vimana::registry::unsafe_path),
        help(
            "a package name, version or bin must be a plain relative path (no '/' at the start, no '..'); report it to the repository owner"
        )
    )]
    UnsafePath {
        what: &'static str,
        value: String,
        base: PathBuf,
    },

    #[error("command template {template:?}: {message}")]
    #[diagnostic(code(vimana::registry::template))]
    Template { template: String, message: String },
}

/// The crate's result type.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RegistryError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
