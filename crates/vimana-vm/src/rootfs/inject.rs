//! Writing vimana's files (the guest agent) into an unpacked image tree
//! without ever leaving it.
//!
//! The image decides what `/sbin` is: a directory, or a symlink (merged-/usr
//! images link it to `usr/sbin`; a hostile image may link it, or a
//! directory on the way, to a host path such as `usr -> /etc`). The
//! directory is first resolved as the guest will see it
//! ([`Links::InRoot`]: absolute targets start again at the root, `..` stops
//! there), then opened one component at a time with
//! `openat(O_DIRECTORY | O_NOFOLLOW)` from the root, so the kernel refuses
//! any symlink still on the way; the file is removed and created relative to
//! that directory (`unlinkat`, `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::error::{RootfsError, io_err};
use super::unpack::{self, Links};

/// Directory of the agent inside the image and its file name.
const AGENT_DIR: &str = "sbin";
const AGENT_NAME: &str = "vimana-agent";

/// Puts the agent at `/sbin/vimana-agent` (0755) inside `tree`; returns the
/// tree size. Nothing outside `tree` is read, removed or written.
pub(crate) fn inject_agent(tree: &Path, agent: &[u8]) -> Result<u64, RootfsError> {
    let sbin = tree.join(AGENT_DIR);
    let dir = match unpack::resolve_dir(tree, &[AGENT_DIR.into()], true, Links::InRoot) {
        Ok(dir) => dir,
        // A symlink loop, or `/sbin` (or what it points to) is not a
        // directory: a real `/sbin` replaces it.
        Err(_) => {
            remove_entry(&sbin).map_err(io_err(&sbin, "replace"))?;
            std::fs::create_dir(&sbin).map_err(io_err(&sbin, "create directory"))?;
            vec![OsString::from(AGENT_DIR)]
        }
    };
    let rel: PathBuf = dir.iter().collect();
    let shown = tree.join(&rel).join(AGENT_NAME);
    let fd = open_dir_beneath(tree, &dir).map_err(io_err(&shown, "open the directory of"))?;
    write_new(&fd, tree, &rel, AGENT_NAME, agent, 0o755).map_err(io_err(&shown, "write"))?;
    unpack::tree_size(tree).map_err(io_err(tree, "measure"))
}

/// Removes a direct entry of the tree without following it.
fn remove_entry(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `root/<components…>` as a directory, refusing (`ENOTDIR`/`ELOOP`)
/// any component that is a symlink or not a directory.
fn open_dir_beneath(root: &Path, components: &[OsString]) -> io::Result<OwnedFd> {
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = nix::fcntl::open(root, dir_flags, Mode::empty())?;
    for c in components {
        check_name(c)?;
        fd = openat(&fd, c.as_os_str(), dir_flags, Mode::empty())?;
    }
    Ok(fd)
}

/// A single path component: no `/`, not `.` or `..`, not empty.
fn check_name(name: &std::ffi::OsStr) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a file name", name.to_string_lossy()),
        ));
    }
    Ok(())
}

/// Replaces whatever is at `name` in `dir` (the directory `root/rel`) with
/// a new regular file holding `bytes`.
fn write_new(
    dir: &OwnedFd,
    root: &Path,
    rel: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        // A directory there: `rel` holds only real directories, so the
        // path-based removal stays inside the root.
        Err(Errno::EISDIR) => std::fs::remove_dir_all(root.join(rel).join(name))?,
        Err(e) => return Err(e.into()),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_on_the_way_is_refused_by_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("usr")).unwrap();
        let err = open_dir_beneath(dir.path(), &["usr".into()]).unwrap_err();
        // O_NOFOLLOW | O_DIRECTORY on a symlink: ENOTDIR (ELOOP without O_DIRECTORY).
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
            "{err}"
        );
        assert!(open_dir_beneath(dir.path(), &["..".into()]).is_err());
    }

    #[test]
    fn links_are_resolved_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let tree = dir.path();
        std::os::unix::fs::symlink(outside.path(), tree.join("usr")).unwrap();
        std::os::unix::fs::symlink("usr/../../../sbin2", tree.join("sbin")).unwrap();
        inject_agent(tree, b"agent").unwrap();
        assert_eq!(
            std::fs::read(tree.join("sbin2/vimana-agent")).unwrap(),
            b"agent"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // `/sbin` a plain file: replaced by a directory.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sbin"), b"x").unwrap();
        inject_agent(dir.path(), b"agent").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("sbin/vimana-agent")).unwrap(),
            b"agent"
        );
    }
}
