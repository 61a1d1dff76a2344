//! Verified, resumable downloads into a content-addressed cache:
//! `<cache>/sha256/<hex>`; partial downloads in
//! `<cache>/partial/<sha256-of-url>.part`, resumed with HTTP Range.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};
use crate::repos::error_chain;
use crate::source::Source;

/// A file in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// `<cache>/sha256/<hex>`.
    pub path: PathBuf,
    /// The file's sha256 (lowercase hex).
    pub sha256: String,
    /// Whether it was checked against an expected digest. When `false`
    /// the caller should warn and show `sha256`.
    pub verified: bool,
    /// Whether it came from the cache without any transfer.
    pub cached: bool,
}

/// Progress callback: bytes done, total when known.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// [`download_with`] using a default HTTP client.
pub async fn download(
    url: &str,
    expected_sha256: Option<&str>,
    cache_dir: &Path,
    progress: Progress<'_>,
) -> Result<Downloaded> {
    download_with(&default_client(), url, expected_sha256, cache_dir, progress).await
}

/// The HTTP client used when the caller gives none: connect and read
/// timeouts so that a stalled server cannot hang `vimana run` forever.
pub fn default_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

/// Hold an exclusive lock on `path` (created if needed) until dropped.
async fn lock(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("opening", path))?;
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || f.lock().map(|()| f))
        .await
        .map_err(|e| RegistryError::io("locking", &owned, std::io::Error::other(e)))?
        .map_err(|e| RegistryError::io("locking", &owned, e))
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn io<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> RegistryError + 'p {
    move |e| RegistryError::io(action, path, e)
}

/// sha256 of a file.
fn hash_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(io("opening", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io("reading", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

struct Layout {
    by_hash: PathBuf,
    partial: PathBuf,
    by_url: PathBuf,
    locks: PathBuf,
}

impl Layout {
    fn new(cache: &Path) -> Result<Self> {
        let l = Layout {
            by_hash: cache.join("sha256"),
            partial: cache.join("partial"),
            by_url: cache.join("by-url"),
            locks: cache.join("locks"),
        };
        for d in [&l.by_hash, &l.partial, &l.by_url, &l.locks] {
            std::fs::create_dir_all(d).map_err(io("creating", d))?;
        }
        Ok(l)
    }
}

/// Download `url` (https, http, file:// or a path) into the cache, verify
/// it against `expected_sha256` when given, and return where it is.
///
/// A cached file with the expected digest is returned without a request
/// (and without `expected_sha256`, a URL fetched before is too). An
/// interrupted transfer is resumed with `Range`; a server that ignores
/// `Range` (200) restarts from zero. A checksum mismatch deletes the
/// partial file.
pub async fn download_with(
    client: &reqwest::Client,
    url: &str,
    expected_sha256: Option<&str>,
    cache_dir: &Path,
    progress: Progress<'_>,
) -> Result<Downloaded> {
    let expected = match expected_sha256 {
        None => None,
        Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => {
            return Err(RegistryError::BadUrl {
                url: url.to_string(),
                reason: format!("expected sha256 {h:?} is not 64 hex digits"),
            });
        }
    };
    let layout = Layout::new(cache_dir)?;
    let url_key = hex_sha256(url.as_bytes());
    let url_marker = layout.by_url.join(&url_key);

    // One transfer per URL at a time (across processes): a second caller
    // waits, then finds the file in the cache.
    let lock_path = layout.locks.join(&url_key);
    let _lock = lock(&lock_path).await?;

    // Cache hit.
    let known = match &expected {
        Some(h) => Some(h.clone()),
        None => std::fs::read_to_string(&url_marker)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() == 64),
    };
    if let Some(hash) = known {
        let path = layout.by_hash.join(&hash);
        if path.is_file() {
            if hash_file(&path)? == hash {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                progress(size, Some(size));
                return Ok(Downloaded {
                    path,
                    sha256: hash,
                    verified: expected.is_some(),
                    cached: true,
                });
            }
            // A corrupted cache entry: drop it and fetch again.
            let _ = std::fs::remove_file(&path);
        }
    }

    let part = layout.partial.join(format!("{url_key}.part"));
    let actual = match Source::parse(url)? {
        Source::File(src) => copy_local(&src, &part, progress)?,
        Source::Http(u) => fetch_http(client, url, u, &part, progress).await?,
    };
    if let Some(exp) = &expected
        && *exp != actual
    {
        let _ = std::fs::remove_file(&part);
        return Err(RegistryError::ChecksumMismatch {
            url: url.to_string(),
            expected: exp.clone(),
            actual,
        });
    }
    let path = layout.by_hash.join(&actual);
    std::fs::rename(&part, &path).map_err(io("moving into the cache", &path))?;
    if expected.is_none() {
        crate::fsutil::write_atomic(&url_marker, actual.as_bytes())?;
    }
    Ok(Downloaded {
        path,
        sha256: actual,
        verified: expected.is_some(),
        cached: false,
    })
}

fn copy_local(src: &Path, part: &Path, progress: Progress<'_>) -> Result<String> {
    let mut from = std::fs::File::open(src).map_err(io("opening", src))?;
    let total = from.metadata().ok().map(|m| m.len());
    let mut to = std::fs::File::create(part).map_err(io("creating", part))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = from.read(&mut buf).map_err(io("reading", src))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(io("writing", part))?;
        done += n as u64;
        progress(done, total);
    }
    to.sync_all().map_err(io("writing", part))?;
    Ok(hex::encode(h.finalize()))
}

/// Start of a `Content-Range: bytes <start>-<end>/<total>` header, and the total.
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

async fn fetch_http(
    client: &reqwest::Client,
    url: &str,
    u: url::Url,
    part: &Path,
    progress: Progress<'_>,
) -> Result<String> {
    let net = |e: reqwest::Error| RegistryError::Network {
        url: url.to_string(),
        message: error_chain(&e),
    };
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(u.clone());
    if have > 0 {
        req = req.header(RANGE, format!("bytes={have}-"));
    }
    let mut resp = req.send().await.map_err(net)?;
    let mut status = resp.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // The partial file is not a prefix of what the server has now.
        let _ = std::fs::remove_file(part);
        resp = client.get(u).send().await.map_err(net)?;
        status = resp.status();
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (offset, total) = if status == StatusCode::PARTIAL_CONTENT && have > 0 {
        match header(CONTENT_RANGE).as_deref().and_then(content_range) {
            Some((start, total)) if start == have => (have, total),
            _ => {
                let _ = std::fs::remove_file(part);
                return Err(RegistryError::Network {
                    url: url.to_string(),
                    message: "the server answered a resume request with a different range; the partial download was dropped, try again".into(),
                });
            }
        }
    } else if status.is_success() {
        // 200: the whole file (a server that ignores Range restarts from 0).
        let len = header(CONTENT_LENGTH).and_then(|v| v.parse().ok());
        (0, len)
    } else {
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            let _ = std::fs::remove_file(part);
        }
        return Err(RegistryError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    };

    let mut h = Sha256::new();
    let file = if offset > 0 {
        // Hash what we already have, then append.
        let mut f = std::fs::File::open(part).map_err(io("opening", part))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut left = offset;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = f.read(&mut buf[..want]).map_err(io("reading", part))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            left -= n as u64;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(part)
            .map_err(io("opening", part))?
    } else {
        std::fs::File::create(part).map_err(io("creating", part))?
    };
    let mut done = offset;
    progress(done, total);
    // Receiving, hashing and writing overlap: the two last run on their own
    // threads, fed through bounded channels, and writes go out in 1 MiB blocks.
    let sink = Pipeline::start(file, h);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = sink.finish(part);
                return Err(RegistryError::Network {
                    url: url.to_string(),
                    message: format!(
                        "transfer interrupted after {done} bytes ({}); run again to resume",
                        error_chain(&e)
                    ),
                });
            }
        };
        done += chunk.len() as u64;
        if !sink.push(chunk) {
            break;
        }
        progress(done, total);
    }
    let (_file, h) = sink.finish(part)?;
    if let Some(t) = total
        && done != t
    {
        return Err(RegistryError::Network {
            url: url.to_string(),
            message: format!("transfer ended after {done} of {t} bytes; run again to resume"),
        });
    }
    Ok(hex::encode(h.finalize()))
}

/// Hashes and writes a download on two threads while the caller receives.
struct Pipeline {
    write_tx: std::sync::mpsc::SyncSender<bytes::Bytes>,
    hash_tx: std::sync::mpsc::SyncSender<bytes::Bytes>,
    writer: std::thread::JoinHandle<std::io::Result<std::fs::File>>,
    hasher: std::thread::JoinHandle<Sha256>,
}

impl Pipeline {
    const DEPTH: usize = 64;

    fn start(file: std::fs::File, mut h: Sha256) -> Self {
        let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(Self::DEPTH);
        let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(Self::DEPTH);
        let writer = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            for chunk in write_rx {
                out.write_all(&chunk)?;
            }
            out.into_inner().map_err(|e| e.into_error())
        });
        let hasher = std::thread::spawn(move || {
            for chunk in hash_rx {
                h.update(&chunk);
            }
            h
        });
        Self {
            write_tx,
            hash_tx,
            writer,
            hasher,
        }
    }

    /// Hands a chunk to both threads; false when the writer has failed.
    fn push(&self, chunk: bytes::Bytes) -> bool {
        self.hash_tx.send(chunk.clone()).is_ok() && self.write_tx.send(chunk).is_ok()
    }

    /// Waits for both threads; the file is flushed (not fsynced: every cache
    /// hit is hashed again before use, so an entry torn by a crash is
    /// detected and fetched anew, and a torn partial fails its checksum).
    fn finish(self, part: &Path) -> Result<(std::fs::File, Sha256)> {
        drop(self.write_tx);
        drop(self.hash_tx);
        let thread_died = || RegistryError::Io {
            action: "writing",
            path: part.to_path_buf(),
            source: std::io::Error::other("download writer thread failed"),
        };
        let file = self
            .writer
            .join()
            .map_err(|_| thread_died())?
            .map_err(io("writing", part))?;
        let h = self.hasher.join().map_err(|_| thread_died())?;
        Ok((file, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(content_range("bytes 10-99/100"), Some((10, Some(100))));
        assert_eq!(content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }
}
