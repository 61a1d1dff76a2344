//! A deterministic writer of "newc" cpio archives, the format the kernel
//! unpacks into its rootfs (`Documentation/driver-api/early-userspace`).
//!
//! Each entry is a 110-byte ASCII header (`070701` then 13 fields of 8 hex
//! digits), the NUL-terminated name padded to a multiple of 4 bytes, and
//! the data padded likewise; `TRAILER!!!` ends the archive. Entries are
//! written sorted by path with fixed owners (0), mtimes (0) and inode
//! numbers (their position), so equal contents give equal bytes.

use std::collections::BTreeMap;

use super::InitramfsError;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    perm: u32,
    kind: Kind,
}

/// The fields of one newc header that vary between entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub ino: u32,
    pub mode: u32,
    pub nlink: u32,
    pub filesize: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// Length of the name including its terminating NUL.
    pub namesize: u32,
}

impl Header {
    /// The 110-byte ASCII header.
    pub(crate) fn encode(&self) -> String {
        let fields = [
            self.ino,
            self.mode,
            0, // uid
            0, // gid
            self.nlink,
            0, // mtime
            self.filesize,
            0, // devmajor
            0, // devminor
            self.rdev_major,
            self.rdev_minor,
            self.namesize,
            0, // check
        ];
        let mut out = String::with_capacity(110);
        out.push_str("070701");
        for field in fields {
            out.push_str(&format!("{field:08X}"));
        }
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn push_entry(out: &mut Vec<u8>, header: Header, name: &str, data: &[u8]) {
    out.extend_from_slice(header.encode().as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// An archive being assembled: paths are relative (`bin/busybox`), parent
/// directories are added implicitly (mode 0755).
#[derive(Clone, Debug, Default)]
pub(crate) struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    fn insert(&mut self, path: &str, perm: u32, kind: Kind) -> Result<(), InitramfsError> {
        let path = path.trim_start_matches('/');
        let bad = |reason: &'static str| InitramfsError::GuestPath {
            path: format!("/{path}"),
            reason,
        };
        if path.is_empty() || path.ends_with('/') {
            return Err(bad("must name a file below /"));
        }
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad("must not contain empty, `.` or `..` components"));
        }
        if let Kind::File(data) = &kind
            && u32::try_from(data.len()).is_err()
        {
            return Err(bad("is larger than the 4 GiB a newc entry can hold"));
        }
        let mut parent = String::new();
        for component in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.entries.get(&parent) {
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => {}
                Some(_) => return Err(bad("has a parent that is not a directory")),
                None => {
                    let dir = Entry {
                        perm: 0o755,
                        kind: Kind::Dir,
                    };
                    self.entries.insert(parent.clone(), dir);
                }
            }
        }
        match self.entries.get(path) {
            Some(Entry {
                kind: Kind::Dir, ..
            }) if kind == Kind::Dir => {}
            Some(_) => return Err(bad("is added twice")),
            None => {}
        }
        self.entries.insert(
            path.to_owned(),
            Entry {
                perm: perm & 0o7777,
                kind,
            },
        );
        Ok(())
    }

    pub(crate) fn dir(&mut self, path: &str, perm: u32) -> Result<(), InitramfsError> {
        self.insert(path, perm, Kind::Dir)
    }

    pub(crate) fn file(
        &mut self,
        path: &str,
        perm: u32,
        data: Vec<u8>,
    ) -> Result<(), InitramfsError> {
        self.insert(path, perm, Kind::File(data))
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> Result<(), InitramfsError> {
        self.insert(path, 0o777, Kind::Symlink(target.to_owned()))
    }

    pub(crate) fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), InitramfsError> {
        self.insert(path, perm, Kind::CharDev { major, minor })
    }

    /// The uncompressed newc archive.
    pub(crate) fn to_newc(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (path, entry)) in self.entries.iter().enumerate() {
            let (kind_bits, nlink, data, rdev) = match &entry.kind {
                Kind::Dir => (S_IFDIR, 2, &[][..], (0, 0)),
                Kind::File(data) => (S_IFREG, 1, data.as_slice(), (0, 0)),
                Kind::Symlink(target) => (S_IFLNK, 1, target.as_bytes(), (0, 0)),
                Kind::CharDev { major, minor } => (S_IFCHR, 1, &[][..], (*major, *minor)),
            };
            let header = Header {
                ino: u32::try_from(i + 1).unwrap_or(u32::MAX),
                mode: kind_bits | entry.perm,
                nlink,
                // Checked on insertion; symlink targets are short.
                filesize: u32::try_from(data.len()).unwrap_or(u32::MAX),
                rdev_major: rdev.0,
                rdev_minor: rdev.1,
                namesize: u32::try_from(path.len() + 1).unwrap_or(u32::MAX),
            };
            push_entry(&mut out, header, path, data);
        }
        let trailer = Header {
            nlink: 1,
            namesize: 11,
            ..Header::default()
        };
        push_entry(&mut out, trailer, "TRAILER!!!", &[]);
        out
    }
}
