//! Repository management: `<home>/repos.toml` (name → url, etag,
//! fetched_at) and cached index copies in `<home>/repos/<name>.toml`. The
//! built-in `vimana` repository is embedded and always present.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde::{Deserialize, Serialize};

use crate::default_repo::{BUILTIN_REPO, default_index};
use crate::error::{RegistryError, Result};
use crate::fsutil::write_atomic;
use crate::index::{self, Index, is_valid_name};
use crate::source::Source;

/// One entry of `repos.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoEntry {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// Unix seconds of the last successful fetch.
    #[serde(default)]
    fetched_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReposFile {
    #[serde(default)]
    repo: BTreeMap<String, RepoEntry>,
}

/// A configured repository as `list()` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoInfo {
    pub name: String,
    /// `None` for the built-in repository.
    pub url: Option<String>,
    pub etag: Option<String>,
    /// Unix seconds of the last successful fetch (`None` for the built-in).
    pub fetched_at: Option<u64>,
    pub builtin: bool,
}

/// A repository with its index loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedRepo {
    pub name: String,
    /// Base for relative artifact URLs; `None` for the built-in repository.
    pub url: Option<String>,
    pub index: Index,
}

/// What `update` did to one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateStatus {
    /// A new index was fetched, validated and cached.
    Updated,
    /// The server answered 304 (or the file is unchanged): cache kept.
    NotModified,
    /// The built-in repository is updated with vimana itself.
    Builtin,
}

/// The outcome of `update` for one repository.
#[derive(Debug)]
pub struct UpdateOutcome {
    pub name: String,
    pub status: Result<UpdateStatus>,
}

enum Fetched {
    NotModified,
    Body { text: String, etag: Option<String> },
}

/// Repositories under one vimana home.
#[derive(Clone, Debug)]
pub struct Registry {
    home: PathBuf,
    client: reqwest::Client,
}

impl Registry {
    /// Repositories under `home` (e.g. `~/.vimana`). Does no I/O.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self::with_client(home, crate::download::default_client())
    }

    /// Like `new`, with a caller-configured HTTP client (proxy, timeouts).
    pub fn with_client(home: impl Into<PathBuf>, client: reqwest::Client) -> Self {
        Registry {
            home: home.into(),
            client,
        }
    }

    /// The vimana home this registry lives in.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The HTTP client, for downloads.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn repos_file(&self) -> PathBuf {
        self.home.join("repos.toml")
    }

    fn cache_file(&self, name: &str) -> PathBuf {
        self.home.join("repos").join(format!("{name}.toml"))
    }

    fn read_repos(&self) -> Result<ReposFile> {
        let path = self.repos_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| RegistryError::ReposFile {
                path,
                message: e.message().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReposFile::default()),
            Err(e) => Err(RegistryError::io("reading", path, e)),
        }
    }

    fn write_repos(&self, file: &ReposFile) -> Result<()> {
        let text = toml::to_string(file).map_err(|e| RegistryError::ReposFile {
            path: self.repos_file(),
            message: e.to_string(),
        })?;
        write_atomic(&self.repos_file(), text.as_bytes())
    }

    /// Add a repository: fetch and validate its index before writing
    /// anything; on any error nothing is added. A relative path is stored
    /// as an absolute one.
    pub async fn add(&self, name: &str, url: &str) -> Result<RepoInfo> {
        if !is_valid_name(name) {
            return Err(RegistryError::BadRepoName(name.to_string()));
        }
        if name == BUILTIN_REPO {
            return Err(RegistryError::BuiltinRepo(name.to_string(), "replaced"));
        }
        if self.read_repos()?.repo.contains_key(name) {
            return Err(RegistryError::RepoExists(name.to_string()));
        }
        let url = match Source::parse(url)? {
            Source::Http(_) => url.to_string(),
            Source::File(_) if url.starts_with("file:") => url.to_string(),
            Source::File(p) => std::path::absolute(&p)
                .map_err(|e| RegistryError::io("resolving", &p, e))?
                .to_string_lossy()
                .into_owned(),
        };
        let Fetched::Body { text, etag } = self.fetch(&url, None).await? else {
            return Err(RegistryError::Network {
                url,
                message: "unexpected 304 Not Modified without a cached copy".into(),
            });
        };
        index::parse(&url, &text)?;
        // Re-read: a concurrent add of the same name must not be overwritten.
        let mut file = self.read_repos()?;
        if file.repo.contains_key(name) {
            return Err(RegistryError::RepoExists(name.to_string()));
        }
        let entry = RepoEntry {
            url: url.clone(),
            etag,
            fetched_at: now(),
        };
        write_atomic(&self.cache_file(name), text.as_bytes())?;
        file.repo.insert(name.to_string(), entry.clone());
        if let Err(e) = self.write_repos(&file) {
            let _ = std::fs::remove_file(self.cache_file(name));
            return Err(e);
        }
        Ok(info(name, &entry))
    }

    /// Every repository, the built-in one first, then by name.
    pub fn list(&self) -> Result<Vec<RepoInfo>> {
        let mut out = vec![RepoInfo {
            name: BUILTIN_REPO.to_string(),
            url: None,
            etag: None,
            fetched_at: None,
            builtin: true,
        }];
        out.extend(self.read_repos()?.repo.iter().map(|(n, e)| info(n, e)));
        Ok(out)
    }

    /// Remove a repository and its cached index. The built-in one is refused.
    pub fn remove(&self, name: &str) -> Result<()> {
        if name == BUILTIN_REPO {
            return Err(RegistryError::BuiltinRepo(name.to_string(), "removed"));
        }
        let mut file = self.read_repos()?;
        if file.repo.remove(name).is_none() {
            return Err(not_found(name, &file));
        }
        self.write_repos(&file)?;
        match std::fs::remove_file(self.cache_file(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RegistryError::io("removing", self.cache_file(name), e)),
        }
    }

    /// Refresh one repository (`Some(name)`) or all (`None`) with a
    /// conditional GET (If-None-Match with the stored ETag). A new index is
    /// validated before it replaces the cached copy; on error the old copy
    /// stays.
    pub async fn update(&self, name: Option<&str>) -> Result<Vec<UpdateOutcome>> {
        let file = self.read_repos()?;
        let names: Vec<String> = match name {
            Some(BUILTIN_REPO) => {
                return Ok(vec![UpdateOutcome {
                    name: BUILTIN_REPO.to_string(),
                    status: Ok(UpdateStatus::Builtin),
                }]);
            }
            Some(n) if !file.repo.contains_key(n) => return Err(not_found(n, &file)),
            Some(n) => vec![n.to_string()],
            None => file.repo.keys().cloned().collect(),
        };
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            let status = self.update_one(&n).await;
            out.push(UpdateOutcome { name: n, status });
        }
        Ok(out)
    }

    async fn update_one(&self, name: &str) -> Result<UpdateStatus> {
        let Some(entry) = self.read_repos()?.repo.get(name).cloned() else {
            return Err(not_found(name, &self.read_repos()?));
        };
        let cache = self.cache_file(name);
        let have_cache = cache.exists();
        let etag = entry.etag.as_deref().filter(|_| have_cache);
        let (text, new_etag) = match self.fetch(&entry.url, etag).await? {
            Fetched::NotModified => (None, entry.etag.clone()),
            Fetched::Body { text, etag } => (Some(text), etag),
        };
        let status = match text {
            None => UpdateStatus::NotModified,
            Some(text) => {
                index::parse(&entry.url, &text)?;
                let old = std::fs::read_to_string(&cache).ok();
                if old.as_deref() == Some(text.as_str()) {
                    UpdateStatus::NotModified
                } else {
                    write_atomic(&cache, text.as_bytes())?;
                    UpdateStatus::Updated
                }
            }
        };
        let mut file = self.read_repos()?;
        if let Some(e) = file.repo.get_mut(name) {
            e.etag = new_etag;
            e.fetched_at = now();
            self.write_repos(&file)?;
        }
        Ok(status)
    }

    /// Every repository with its (cached) index, the built-in one first.
    pub fn load_all(&self) -> Result<Vec<LoadedRepo>> {
        let mut out = vec![LoadedRepo {
            name: BUILTIN_REPO.to_string(),
            url: None,
            index: default_index()?,
        }];
        for (name, entry) in self.read_repos()?.repo {
            let path = self.cache_file(&name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| RegistryError::io("reading cached index", &path, e))?;
            let index = index::parse(&path.to_string_lossy(), &text)?;
            out.push(LoadedRepo {
                name,
                url: Some(entry.url),
                index,
            });
        }
        Ok(out)
    }

    async fn fetch(&self, url: &str, etag: Option<&str>) -> Result<Fetched> {
        match Source::parse(url)? {
            Source::File(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| RegistryError::io("reading", &path, e))?;
                Ok(Fetched::Body { text, etag: None })
            }
            Source::Http(u) => {
                let net = |e: reqwest::Error| RegistryError::Network {
                    url: url.to_string(),
                    message: error_chain(&e),
                };
                let mut req = self.client.get(u);
                if let Some(tag) = etag {
                    req = req.header(IF_NONE_MATCH, tag);
                }
                let resp = req.send().await.map_err(net)?;
                let status = resp.status();
                if status == StatusCode::NOT_MODIFIED {
                    return Ok(Fetched::NotModified);
                }
                if !status.is_success() {
                    return Err(RegistryError::HttpStatus {
                        url: url.to_string(),
                        status: status.as_u16(),
                    });
                }
                let etag = resp
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = resp.text().await.map_err(net)?;
                Ok(Fetched::Body { text, etag })
            }
        }
    }
}

fn info(name: &str, e: &RepoEntry) -> RepoInfo {
    RepoInfo {
        name: name.to_string(),
        url: Some(e.url.clone()),
        etag: e.etag.clone(),
        fetched_at: Some(e.fetched_at),
        builtin: false,
    }
}

fn not_found(name: &str, file: &ReposFile) -> RegistryError {
    let mut known = vec![BUILTIN_REPO.to_string()];
    known.extend(file.repo.keys().cloned());
    RegistryError::RepoNotFound {
        name: name.to_string(),
        known: known.join(", "),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `e` with its sources, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
