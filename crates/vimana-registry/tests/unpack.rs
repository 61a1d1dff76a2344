//! Unpacking: good archives keep exec bits; malicious ones write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vimana_registry::{ArchiveFormat, RegistryError, unpack};

enum E<'a> {
    File(&'a [u8], u32, &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    Hardlink(&'a [u8], &'a [u8]),
    Char(&'a [u8]),
}

/// A tar.gz with raw names (the tar crate's builder would refuse `..`).
fn tar_gz(path: &Path, entries: &[E<'_>]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_old();
        let (name, data, mode, ty, link): (&[u8], &[u8], u32, tar::EntryType, &[u8]) = match e {
            E::File(n, m, d) => (n, d, *m, tar::EntryType::Regular, b""),
            E::Dir(n) => (n, b"", 0o755, tar::EntryType::Directory, b""),
            E::Symlink(n, t) => (n, b"", 0o777, tar::EntryType::Symlink, t),
            E::Hardlink(n, t) => (n, b"", 0o644, tar::EntryType::Link, t),
            E::Char(n) => (n, b"", 0o644, tar::EntryType::Char, b""),
        };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_entry_type(ty);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn good_tar_gz_keeps_exec_bits() {
    let dir = tempfile::tempdir().unwrap();
    let ar = dir.path().join("a.tar.gz");
    tar_gz(
        &ar,
        &[
            E::Dir(b"pkg/"),
            E::File(b"pkg/bin/tool", 0o755, b"#!/bin/sh\necho hi\n"),
            E::File(b"./pkg/README", 0o644, b"read me"),
            E::Symlink(b"pkg/current", b"bin/tool"),
            E::Hardlink(b"pkg/tool2", b"pkg/bin/tool"),
        ],
    );
    let dest = dir.path().join("out");
    unpack(&ar, ArchiveFormat::TarGz, &dest, "unused").unwrap();
    assert_eq!(mode(&dest.join("pkg/bin/tool")), 0o755);
    assert_eq!(mode(&dest.join("pkg/README")), 0o644);
    assert_eq!(
        std::fs::read(dest.join("pkg/current")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        std::fs::read(dest.join("pkg/tool2")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    // No temporary directory left beside dest.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Unpacking again refuses to merge.
    assert!(matches!(
        unpack(&ar, ArchiveFormat::TarGz, &dest, "unused"),
        Err(RegistryError::DestinationExists(_))
    ));
}

#[test]
fn good_zip_keeps_exec_bits() {
    let dir = tempfile::tempdir().unwrap();
    let ar = dir.path().join("a.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&ar).unwrap());
        let exec = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        let plain = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        z.add_directory("bin/", exec).unwrap();
        z.start_file("bin/tool", exec).unwrap();
        z.write_all(b"binary").unwrap();
        z.start_file("doc.txt", plain).unwrap();
        z.write_all(b"doc").unwrap();
        z.add_symlink("tool", "bin/tool", plain).unwrap();
        z.finish().unwrap();
    }
    let dest = dir.path().join("out");
    unpack(&ar, ArchiveFormat::Zip, &dest, "unused").unwrap();
    assert_eq!(mode(&dest.join("bin/tool")), 0o755);
    assert_eq!(mode(&dest.join("doc.txt")), 0o644);
    assert_eq!(std::fs::read(dest.join("tool")).unwrap(), b"binary");
}

#[test]
fn raw_is_copied_and_made_executable() {
    let dir = tempfile::tempdir().unwrap();
    let ar = dir.path().join("blob");
    std::fs::write(&ar, b"\x7fELF").unwrap();
    let dest = dir.path().join("out");
    unpack(&ar, ArchiveFormat::Raw, &dest, "node").unwrap();
    assert_eq!(mode(&dest.join("node")), 0o755);
}

#[test]
fn zip_with_parent_path_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ar = dir.path().join("evil.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&ar).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("ok.txt", o).unwrap();
        z.write_all(b"fine").unwrap();
        z.start_file("../evil", o).unwrap();
        z.write_all(b"boom").unwrap();
        z.finish().unwrap();
    }
    let outer = dir.path().join("outer");
    std::fs::create_dir(&outer).unwrap();
    let dest = outer.join("dest");
    let err = unpack(&ar, ArchiveFormat::Zip, &dest, "x").unwrap_err();
    assert!(err.to_string().contains("../evil"), "{err}");
    assert_eq!(std::fs::read_dir(&outer).unwrap().count(), 0);
}

/// Each malicious archive: error naming the entry and rule, nothing written
/// outside, `dest` not created, no temporary directory left.
#[test]
fn malicious_tar_gz_writes_nothing() {
    let abs = format!("/tmp/vimana-registry-abs-{}", std::process::id());
    let cases: Vec<(&str, Vec<E<'_>>, &str, &str)> = vec![
        (
            "dotdot",
            vec![
                E::File(b"ok", 0o644, b"ok"),
                E::File(b"../evil", 0o644, b"boom"),
            ],
            "../evil",
            "`..`",
        ),
        (
            "absolute",
            vec![E::File(abs.as_bytes(), 0o644, b"boom")],
            abs.as_str(),
            "absolute",
        ),
        (
            "symlink escape",
            vec![E::Symlink(b"pkg/link", b"../../evil")],
            "pkg/link",
            "escapes",
        ),
        (
            "absolute symlink",
            vec![E::Symlink(b"link", b"/etc")],
            "link",
            "escapes",
        ),
        (
            "write through symlink",
            vec![
                E::Symlink(b"link", b"."),
                E::File(b"link/x", 0o644, b"boom"),
            ],
            "link/x",
            "symlink",
        ),
        (
            "symlink chain",
            vec![
                E::Dir(b"x/"),
                E::Symlink(b"s/L", b"../x"),
                E::Symlink(b"s/a", b"L/../.."),
            ],
            "s/a",
            "outside",
        ),
        (
            // The same chain while `x` does not exist yet: `s/a` dangles
            // today and leaves the root as soon as anything creates `x/`.
            "dangling symlink chain",
            vec![E::Symlink(b"s/L", b"../x"), E::Symlink(b"s/a", b"L/../..")],
            "s/a",
            "outside",
        ),
        (
            "chain through a dangling link",
            vec![
                E::Symlink(b"s/L", b"../x"),
                E::Symlink(b"x", b"missing"),
                E::Symlink(b"s/a", b"L/../.."),
            ],
            "s/a",
            "outside",
        ),
        ("symlink loop", vec![E::Symlink(b"l", b"l")], "l", "loop"),
        (
            "hardlink escape",
            vec![E::Hardlink(b"h", b"../outside.txt")],
            "h",
            "hard link",
        ),
        (
            "absolute hardlink",
            vec![E::Hardlink(b"h", b"/etc/passwd")],
            "h",
            "hard link",
        ),
        ("device", vec![E::Char(b"dev/null")], "dev/null", "device"),
    ];
    for (what, entries, entry, rule) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"secret").unwrap();
        let ar = dir.path().join("evil.tar.gz");
        tar_gz(&ar, &entries);
        let outer = dir.path().join("outer");
        std::fs::create_dir(&outer).unwrap();
        let dest = outer.join("dest");
        let Err(err) = unpack(&ar, ArchiveFormat::TarGz, &dest, "x") else {
            panic!("{what}: unpacked without an error");
        };
        let RegistryError::UnsafeEntry {
            entry: e, rule: r, ..
        } = &err
        else {
            panic!("{what}: {err:?}");
        };
        assert_eq!(e, entry, "{what}");
        assert!(r.contains(rule), "{what}: {r}");
        assert!(!dest.exists(), "{what}");
        assert_eq!(std::fs::read_dir(&outer).unwrap().count(), 0, "{what}");
        assert!(!dir.path().join("evil").exists(), "{what}");
        assert!(!outer.join("evil").exists(), "{what}");
        assert_eq!(
            std::fs::read(dir.path().join("outside.txt")).unwrap(),
            b"secret"
        );
        assert!(!Path::new(&abs).exists(), "{what}");
    }
}
