//! Safe unpacking of artifacts (raw, tar.gz, zip) into a fresh directory.
//!
//! Everything goes into a temporary directory beside `dest`, which is
//! renamed into place only when every entry passed the rules; on any error
//! the temporary directory is removed and `dest` is not created. Rules:
//! no absolute paths, no `..`, no writing through a symlink, symlinks and
//! hard links must point inside, no device files or FIFOs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{RegistryError, Result};
use crate::index::ArchiveFormat;

/// Unpack `archive` into `dest`, which must not exist. For
/// [`ArchiveFormat::Raw`] the file is copied to `dest/<raw_name>` and made
/// executable.
pub fn unpack(archive: &Path, format: ArchiveFormat, dest: &Path, raw_name: &str) -> Result<()> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(RegistryError::DestinationExists(dest.to_path_buf()));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| RegistryError::io("creating", parent, e))?;
    let stem = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unpack".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}.unpack-"))
        .tempdir_in(parent)
        .map_err(|e| RegistryError::io("creating a temporary directory in", parent, e))?;
    let root = tmp.path();
    let mut u = Unpacker {
        archive,
        root: root.to_path_buf(),
    };
    match format {
        ArchiveFormat::Raw => u.raw(raw_name)?,
        ArchiveFormat::TarGz => u.tar_gz()?,
        ArchiveFormat::Zip => u.zip()?,
    }
    u.check_symlinks()?;
    // Make the directory itself readable like a normal one (tempdir is 0700).
    let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o755));
    let root = tmp.keep();
    if let Err(e) = fs::rename(&root, dest) {
        let _ = fs::remove_dir_all(&root);
        return Err(RegistryError::io("moving into place", dest, e));
    }
    Ok(())
}

struct Unpacker<'a> {
    archive: &'a Path,
    root: PathBuf,
}

enum Kind {
    File {
        mode: u32,
    },
    Dir,
    Symlink(PathBuf),
    /// Target relative to the archive root.
    Hardlink(PathBuf),
}

impl Unpacker<'_> {
    fn reject(&self, entry: &str, rule: impl Into<String>) -> RegistryError {
        RegistryError::UnsafeEntry {
            archive: self.archive.to_path_buf(),
            entry: entry.to_string(),
            rule: rule.into(),
        }
    }

    fn broken(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Archive {
            archive: self.archive.to_path_buf(),
            message: message.into(),
        }
    }

    /// The entry's path as a clean relative path, or the rule it breaks.
    fn safe_rel(&self, entry: &str, path: &Path) -> Result<Option<PathBuf>> {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.reject(entry, "path contains a `..` component"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.reject(entry, "absolute path"));
                }
            }
        }
        Ok((!out.as_os_str().is_empty()).then_some(out))
    }

    /// Refuse to write through a symlink created by an earlier entry.
    fn check_parents(&self, entry: &str, rel: &Path) -> Result<()> {
        let mut cur = self.root.clone();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                cur.push(c);
                if let Ok(m) = fs::symlink_metadata(&cur)
                    && m.file_type().is_symlink()
                {
                    return Err(self.reject(entry, "path passes through a symlink"));
                }
            }
        }
        Ok(())
    }

    /// Whether `target` (relative to the directory of `rel`) stays inside.
    fn link_stays_inside(rel: &Path, target: &Path) -> bool {
        if target.has_root() {
            return false;
        }
        let mut depth: i64 = rel.components().count() as i64 - 1;
        for c in target.components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return false,
            }
        }
        true
    }

    fn place(&mut self, entry: &str, path: &Path, kind: Kind, data: &mut dyn Read) -> Result<()> {
        let Some(rel) = self.safe_rel(entry, path)? else {
            return Ok(()); // "./" itself
        };
        self.check_parents(entry, &rel)?;
        let full = self.root.join(&rel);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(|e| RegistryError::io("creating", parent, e))?;
        }
        // Never follow or merge into something an earlier entry created.
        if let Ok(m) = fs::symlink_metadata(&full) {
            if m.is_dir() {
                if matches!(kind, Kind::Dir) {
                    return Ok(());
                }
                return Err(self.reject(entry, "replaces a directory"));
            }
            fs::remove_file(&full).map_err(|e| RegistryError::io("replacing", &full, e))?;
        }
        match kind {
            Kind::Dir => {
                fs::create_dir(&full).map_err(|e| RegistryError::io("creating", &full, e))?;
            }
            Kind::File { mode } => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&full)
                    .map_err(|e| RegistryError::io("creating", &full, e))?;
                std::io::copy(data, &mut f)
                    .map_err(|e| self.broken(format!("entry {entry:?}: {e}")))?;
                f.flush()
                    .map_err(|e| RegistryError::io("writing", &full, e))?;
                // Keep the permission bits (exec!) but never setuid/setgid/sticky.
                fs::set_permissions(&full, fs::Permissions::from_mode(mode & 0o777))
                    .map_err(|e| RegistryError::io("setting permissions of", &full, e))?;
            }
            Kind::Symlink(target) => {
                if !Self::link_stays_inside(&rel, &target) {
                    return Err(self.reject(
                        entry,
                        format!(
                            "symlink target {} escapes the destination",
                            target.display()
                        ),
                    ));
                }
                std::os::unix::fs::symlink(&target, &full)
                    .map_err(|e| RegistryError::io("creating symlink", &full, e))?;
            }
            Kind::Hardlink(target) => {
                let rule = || {
                    format!(
                        "hard link target {} escapes the destination",
                        target.display()
                    )
                };
                let Some(trel) = self
                    .safe_rel(entry, &target)
                    .map_err(|_| self.reject(entry, rule()))?
                else {
                    return Err(self.reject(entry, rule()));
                };
                self.check_parents(entry, &trel)?;
                let src = self.root.join(&trel);
                match fs::symlink_metadata(&src) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(self.reject(
                            entry,
                            format!(
                                "hard link target {} is not a regular file unpacked earlier",
                                target.display()
                            ),
                        ));
                    }
                }
                fs::hard_link(&src, &full)
                    .map_err(|e| RegistryError::io("creating hard link", &full, e))?;
            }
        }
        Ok(())
    }

    fn raw(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(self.reject(name, "a raw artifact needs a plain file name"));
        }
        let mut f = fs::File::open(self.archive)
            .map_err(|e| RegistryError::io("opening", self.archive, e))?;
        self.place(name, Path::new(name), Kind::File { mode: 0o755 }, &mut f)
    }

    fn tar_gz(&mut self) -> Result<()> {
        let f = fs::File::open(self.archive)
            .map_err(|e| RegistryError::io("opening", self.archive, e))?;
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let entries = ar
            .entries()
            .map_err(|e| self.broken(format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.broken(format!("reading: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| self.broken(format!("bad entry name: {e}")))?
                .into_owned();
            let name = path.to_string_lossy().into_owned();
            use tar::EntryType as T;
            let et = entry.header().entry_type();
            let kind = match et {
                T::Regular | T::Continuous => Kind::File {
                    mode: entry.header().mode().unwrap_or(0o644),
                },
                T::Directory => Kind::Dir,
                T::Symlink | T::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| self.broken(format!("entry {name:?}: bad link name: {e}")))?
                        .ok_or_else(|| self.reject(&name, "link without a target"))?
                        .into_owned();
                    if et == T::Symlink {
                        Kind::Symlink(target)
                    } else {
                        Kind::Hardlink(target)
                    }
                }
                T::Char | T::Block => return Err(self.reject(&name, "device file")),
                T::Fifo => return Err(self.reject(&name, "FIFO")),
                // pax/GNU metadata entries are consumed by the tar crate;
                // anything else carries no file.
                _ => continue,
            };
            self.place(&name, &path, kind, &mut entry)?;
        }
        Ok(())
    }

    fn zip(&mut self) -> Result<()> {
        let f = fs::File::open(self.archive)
            .map_err(|e| RegistryError::io("opening", self.archive, e))?;
        let mut ar =
            zip::ZipArchive::new(f).map_err(|e| self.broken(format!("not a zip archive: {e}")))?;
        for i in 0..ar.len() {
            let mut file = ar
                .by_index(i)
                .map_err(|e| self.broken(format!("entry {i}: {e}")))?;
            let name = file.name().to_string();
            let mode = file.unix_mode();
            const S_IFMT: u32 = 0o170000;
            let kind = match mode.map(|m| m & S_IFMT) {
                Some(0o120000) => {
                    let mut target = String::new();
                    file.read_to_string(&mut target)
                        .map_err(|e| self.broken(format!("entry {name:?}: {e}")))?;
                    Kind::Symlink(PathBuf::from(target))
                }
                Some(0o020000) | Some(0o060000) => return Err(self.reject(&name, "device file")),
                Some(0o010000) => return Err(self.reject(&name, "FIFO")),
                Some(0o140000) => return Err(self.reject(&name, "socket")),
                _ if file.is_dir() => Kind::Dir,
                _ => Kind::File {
                    mode: mode.map_or(0o644, |m| m & 0o7777),
                },
            };
            let path = PathBuf::from(&name);
            self.place(&name, &path, kind, &mut file)?;
        }
        Ok(())
    }

    /// Final pass: every symlink must resolve inside the root, also through
    /// chains of links that are each harmless alone, and also when a link
    /// dangles (a missing component counts as a directory someone may
    /// create later, so `s/L -> ../x` plus `s/a -> L/../..` is refused
    /// whether `x` exists or not).
    fn check_symlinks(&self) -> Result<()> {
        let mut stack = vec![PathBuf::new()];
        while let Some(dir) = stack.pop() {
            let full = self.root.join(&dir);
            let rd = fs::read_dir(&full).map_err(|e| RegistryError::io("reading", &full, e))?;
            for ent in rd {
                let ent = ent.map_err(|e| RegistryError::io("reading", &full, e))?;
                let rel = dir.join(ent.file_name());
                let ft = ent
                    .file_type()
                    .map_err(|e| RegistryError::io("reading", ent.path(), e))?;
                if ft.is_dir() {
                    stack.push(rel);
                } else if ft.is_symlink()
                    && let Some(rule) = self.resolve_in_root(&rel)?
                {
                    return Err(self.reject(&rel.to_string_lossy(), rule));
                }
            }
        }
        Ok(())
    }

    /// Walks `rel` as the kernel would, following the links found under the
    /// root; `Some(rule)` when the walk leaves the root or loops.
    fn resolve_in_root(&self, rel: &Path) -> Result<Option<&'static str>> {
        const MAX_LINKS: usize = 40; // the kernel's limit (ELOOP)
        const OUTSIDE: &str = "symlink resolves outside the destination (through another link)";
        // Components still to walk, reversed (the next one is at the end);
        // `None` is `..`.
        fn steps(p: &Path) -> Option<Vec<Option<std::ffi::OsString>>> {
            let mut out = Vec::new();
            for c in p.components() {
                match c {
                    Component::Normal(n) => out.push(Some(n.to_os_string())),
                    Component::ParentDir => out.push(None),
                    Component::CurDir => {}
                    Component::RootDir | Component::Prefix(_) => return None,
                }
            }
            out.reverse();
            Some(out)
        }
        let Some(mut todo) = steps(rel) else {
            return Ok(Some(OUTSIDE));
        };
        let mut at = PathBuf::new();
        let mut links = 0;
        while let Some(step) = todo.pop() {
            let Some(name) = step else {
                if !at.pop() {
                    return Ok(Some(OUTSIDE));
                }
                continue;
            };
            at.push(name);
            let full = self.root.join(&at);
            if !fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Ok(Some("symlink loop (more than 40 links to follow)"));
            }
            let target =
                fs::read_link(&full).map_err(|e| RegistryError::io("reading", &full, e))?;
            let Some(more) = steps(&target) else {
                return Ok(Some(OUTSIDE));
            };
            at.pop();
            todo.extend(more);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_depth() {
        assert!(Unpacker::link_stays_inside(
            Path::new("a/b"),
            Path::new("../c")
        ));
        assert!(!Unpacker::link_stays_inside(
            Path::new("a"),
            Path::new("../c")
        ));
        assert!(!Unpacker::link_stays_inside(
            Path::new("a/b"),
            Path::new("/etc")
        ));
        assert!(Unpacker::link_stays_inside(
            Path::new("a"),
            Path::new("b/c/../d")
        ));
    }
}
