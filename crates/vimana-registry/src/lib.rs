//! Spacecore package repositories for `vimana run`: the index format,
//! repository management, search, resolution of a package and node type to
//! an artifact for this host, verified resumable downloads, and safe
//! unpacking. See `docs/registry.md`.

pub mod default_repo;
pub mod download;
pub mod error;
mod fsutil;
pub mod index;
pub mod repos;
pub mod resolve;
pub mod search;
pub mod source;
pub mod template;
pub mod unpack;

pub use default_repo::{BUILTIN_REPO, default_index, default_index_text};
pub use download::{Downloaded, default_client, download, download_with};
pub use error::{RegistryError, Result};
pub use fsutil::join_inside;
pub use index::{
    ArchiveFormat, Artifact, Flag, Index, IndexError, NodeKind, NodeType, Package, Restart,
};
pub use repos::{LoadedRepo, Registry, RepoInfo, UpdateOutcome, UpdateStatus};
pub use resolve::{Resolved, host_platform, resolve_in};
pub use search::{MatchKind, PackageHit, list_in, search_in};
pub use unpack::unpack;
