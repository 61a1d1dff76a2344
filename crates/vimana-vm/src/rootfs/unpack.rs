//! Applying layer tarballs to a directory, safely.
//!
//! Every entry path is checked lexically (no `..`, no absolute paths) and its
//! parent is resolved component by component from the root with `lstat`:
//! a symlink on the way is followed only when its target is relative and
//! stays inside the root (so `lib -> usr/lib` works and `evil -> /tmp` or
//! `evil -> ../..` is refused). Files are created with `O_NOFOLLOW` and
//! `O_EXCL` after whatever was at the final name has been removed, so the
//! final component is never followed either.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::error::RootfsError;
use super::pull::{Compression, Layer};

/// Most symlinks followed while resolving one parent path.
const MAX_SYMLINK_HOPS: usize = 40;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What applying the layers did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct UnpackStats {
    /// Device nodes, FIFOs and other special files that were not created.
    pub(crate) skipped_special: u64,
}

/// A problem with one entry, turned into a [`RootfsError`] by the caller.
#[derive(Debug)]
pub(crate) enum EntryError {
    Unsafe(String),
    Io(io::Error),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        EntryError::Io(e)
    }
}

/// Apply the layer in `blob` onto `root`.
pub(crate) fn apply_layer(
    root: &Path,
    blob: &Path,
    layer: &Layer,
    reference: &str,
    stats: &mut UnpackStats,
) -> Result<(), RootfsError> {
    let layer_err = |entry: &str, source: io::Error| RootfsError::Layer {
        reference: reference.to_string(),
        layer: layer.digest.clone(),
        entry: entry.to_string(),
        source,
    };
    let file = File::open(blob).map_err(|e| layer_err("-", e))?;
    let reader: Box<dyn Read> = match layer.compression {
        Compression::Gzip => Box::new(MultiGzDecoder::new(io::BufReader::new(file))),
        Compression::None => Box::new(io::BufReader::new(file)),
    };
    let mut archive = tar::Archive::new(reader);
    let mut this_layer: HashSet<PathBuf> = HashSet::new();
    let entries = archive.entries().map_err(|e| layer_err("-", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_err("-", e))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        match apply_entry(root, &mut entry, &mut this_layer, stats) {
            Ok(()) => {}
            Err(EntryError::Unsafe(reason)) => {
                return Err(RootfsError::PathEscape {
                    reference: reference.to_string(),
                    layer: layer.digest.clone(),
                    entry: name,
                    reason,
                });
            }
            Err(EntryError::Io(e)) => return Err(layer_err(&name, e)),
        }
    }
    Ok(())
}

/// Lexically check `path` from a tar header: relative, no `..`; returns
/// its normal components (`.` dropped).
fn clean(path: &Path) -> Result<Vec<OsString>, EntryError> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(EntryError::Unsafe("contains a `..` component".into()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(EntryError::Unsafe("is an absolute path".into()));
            }
        }
    }
    Ok(out)
}

/// How [`resolve_dir`] treats symlinks that lead out of the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// An absolute target, or `..` above the root, is an error (layer
    /// entries: such an image is refused).
    Refuse,
    /// As the guest will see the tree (`openat2` `RESOLVE_IN_ROOT`): an
    /// absolute target starts again at the root and `..` stops there
    /// (files vimana adds after the unpack).
    InRoot,
}

/// Resolve `components` (a directory path relative to `root`) without ever
/// leaving `root`, creating missing directories (0755) when `create` is set.
/// Returns the resolved path relative to `root`: real directories only.
pub(crate) fn resolve_dir(
    root: &Path,
    components: &[OsString],
    create: bool,
    links: Links,
) -> Result<Vec<OsString>, EntryError> {
    let mut pending: Vec<OsString> = components.iter().rev().cloned().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0usize;
    while let Some(component) = pending.pop() {
        if component == ".." {
            if resolved.pop().is_none() && links == Links::Refuse {
                return Err(EntryError::Unsafe(
                    "goes through a symlink that points outside the root".into(),
                ));
            }
            continue;
        }
        if component == "." || component.is_empty() {
            continue;
        }
        let rel: PathBuf = resolved.iter().chain(std::iter::once(&component)).collect();
        let full = root.join(&rel);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(EntryError::Unsafe("goes through too many symlinks".into()));
                }
                let target = fs::read_link(&full)?;
                if target.is_absolute() && links == Links::InRoot {
                    resolved.clear();
                } else if target.is_absolute() {
                    return Err(EntryError::Unsafe(format!(
                        "goes through symlink `{}` -> `{}`, which points outside the root",
                        rel.display(),
                        target.display()
                    )));
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        Component::CurDir => {}
                        Component::RootDir if links == Links::InRoot => {}
                        Component::RootDir | Component::Prefix(_) => {
                            return Err(EntryError::Unsafe(format!(
                                "goes through symlink `{}` with an absolute target",
                                rel.display()
                            )));
                        }
                    }
                }
            }
            Ok(meta) if meta.is_dir() => resolved.push(component),
            Ok(_) => {
                return Err(EntryError::Io(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("`{}` is not a directory", rel.display()),
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&full)?;
                fs::set_permissions(&full, fs::Permissions::from_mode(0o755))?;
                resolved.push(component);
            }
            Err(e) => return Err(EntryError::Io(e)),
        }
    }
    Ok(resolved)
}

/// Remove whatever is at `path` (never following a symlink).
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remove everything under `dir` that this layer did not create.
fn make_opaque(root: &Path, dir: &Path, this_layer: &HashSet<PathBuf>) -> io::Result<()> {
    let full = root.join(dir);
    let read = match fs::read_dir(&full) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in read {
        let child = child?;
        let rel = dir.join(child.file_name());
        if this_layer.contains(&rel) {
            if child.file_type()?.is_dir() {
                make_opaque(root, &rel, this_layer)?;
            }
        } else {
            remove_any(&child.path())?;
        }
    }
    Ok(())
}

fn apply_entry<R: Read>(
    root: &Path,
    entry: &mut tar::Entry<'_, R>,
    this_layer: &mut HashSet<PathBuf>,
    stats: &mut UnpackStats,
) -> Result<(), EntryError> {
    let path = entry.path()?.into_owned();
    let mut components = clean(&path)?;
    let Some(name) = components.pop() else {
        // The root itself (`./`): nothing to create.
        return Ok(());
    };
    let name_str = name.to_string_lossy().into_owned();
    let kind = entry.header().entry_type();

    // Whiteouts apply to what the lower layers left.
    if name_str == OPAQUE {
        let dir = resolve_dir(root, &components, true, Links::Refuse)?;
        let dir: PathBuf = dir.iter().collect();
        make_opaque(root, &dir, this_layer)?;
        return Ok(());
    }
    if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
            return Err(EntryError::Unsafe("is a malformed whiteout".into()));
        }
        let dir = match resolve_dir(root, &components, false, Links::Refuse) {
            Ok(dir) => dir,
            Err(EntryError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let target: PathBuf = dir
            .iter()
            .chain(std::iter::once(&OsString::from(hidden)))
            .collect();
        remove_any(&root.join(target))?;
        return Ok(());
    }

    match kind {
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::Directory
        | EntryType::Symlink
        | EntryType::Link => {}
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            stats.skipped_special += 1;
            return Ok(());
        }
        // Metadata-only entries (pax and GNU headers are consumed by `tar`).
        _ => return Ok(()),
    }

    let parent = resolve_dir(root, &components, true, Links::Refuse)?;
    let rel: PathBuf = parent.iter().chain(std::iter::once(&name)).collect();
    let full = root.join(&rel);
    let header = entry.header();
    let mode = header.mode()? & 0o7777;
    let uid = header.uid()?;
    let gid = header.gid()?;
    let owner = (
        u32::try_from(uid).unwrap_or(0),
        u32::try_from(gid).unwrap_or(0),
    );

    match kind {
        EntryType::Directory => {
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&full)?;
                    fs::create_dir(&full)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&full)?,
                Err(e) => return Err(EntryError::Io(e)),
            }
            chown(&full, owner, false)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(mode))?;
        }
        EntryType::Regular | EntryType::Continuous => {
            remove_any(&full)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&full)?;
            io::copy(entry, &mut file)?;
            // chown before chmod: chown clears setuid/setgid bits.
            std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1)).or_else(ignore_eperm)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        EntryType::Symlink => {
            let Some(target) = entry.link_name()? else {
                return Err(EntryError::Unsafe("is a symlink without a target".into()));
            };
            remove_any(&full)?;
            // The target is only data inside the image; it is never followed here
            // except by `resolve_dir`, which refuses targets that leave the root.
            std::os::unix::fs::symlink(&target, &full)?;
            chown(&full, owner, true)?;
        }
        EntryType::Link => {
            let Some(target) = entry.link_name()? else {
                return Err(EntryError::Unsafe("is a hard link without a target".into()));
            };
            let mut target = clean(&target).map_err(|e| match e {
                EntryError::Unsafe(reason) => {
                    EntryError::Unsafe(format!("is a hard link whose target {reason}"))
                }
                other => other,
            })?;
            let Some(target_name) = target.pop() else {
                return Err(EntryError::Unsafe("is a hard link to the root".into()));
            };
            let target_parent = resolve_dir(root, &target, false, Links::Refuse)?;
            let target_rel: PathBuf = target_parent
                .iter()
                .chain(std::iter::once(&target_name))
                .collect();
            let target_full = root.join(&target_rel);
            let meta = fs::symlink_metadata(&target_full)?;
            if meta.is_dir() {
                return Err(EntryError::Unsafe("is a hard link to a directory".into()));
            }
            if target_full != full {
                remove_any(&full)?;
                // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
                fs::hard_link(&target_full, &full)?;
            }
        }
        _ => {}
    }
    this_layer.insert(rel);
    Ok(())
}

fn ignore_eperm(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::PermissionDenied {
        Ok(())
    } else {
        Err(e)
    }
}

/// Set the owner of `path` (of the link itself when `link`); ignored when
/// not permitted (unprivileged builds keep the builder's ownership).
fn chown(path: &Path, (uid, gid): (u32, u32), link: bool) -> io::Result<()> {
    let result = if link {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    } else {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
    };
    result.or_else(ignore_eperm)
}

/// Approximate bytes the tree at `root` needs: file sizes plus a block per inode.
pub(crate) fn tree_size(root: &Path) -> io::Result<u64> {
    let mut total: u64 = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for child in fs::read_dir(&dir)? {
            let child = child?;
            let meta = child.metadata()?;
            total = total.saturating_add(4096);
            if meta.is_dir() {
                stack.push(child.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lexical_checks() {
        assert!(clean(Path::new("./a/b")).is_ok());
        assert!(matches!(
            clean(Path::new("a/../../b")),
            Err(EntryError::Unsafe(_))
        ));
        assert!(matches!(
            clean(Path::new("/etc")),
            Err(EntryError::Unsafe(_))
        ));
    }

    #[test]
    fn relative_symlinks_inside_are_followed_and_escaping_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("abs")).unwrap();
        let got = resolve_dir(root, &["lib".into(), "x".into()], true, Links::Refuse).unwrap();
        assert_eq!(got, vec![OsString::from("usr"), "lib".into(), "x".into()]);
        assert!(root.join("usr/lib/x").is_dir());
        assert!(matches!(
            resolve_dir(root, &["up".into()], true, Links::Refuse),
            Err(EntryError::Unsafe(_))
        ));
        assert!(matches!(
            resolve_dir(root, &["abs".into()], true, Links::Refuse),
            Err(EntryError::Unsafe(_))
        ));
        // In the root: `/tmp` is the image's /tmp, `../..` stops at the root.
        let got = resolve_dir(root, &["abs".into(), "y".into()], true, Links::InRoot).unwrap();
        assert_eq!(got, vec![OsString::from("tmp"), "y".into()]);
        assert!(root.join("tmp/y").is_dir());
        let got = resolve_dir(root, &["up".into(), "z".into()], true, Links::InRoot).unwrap();
        assert_eq!(got, vec![OsString::from("z")]);
    }
}
