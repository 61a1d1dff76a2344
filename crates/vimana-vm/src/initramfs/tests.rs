//! Unit tests: newc encoding, `.modinfo` parsing, module load order with
//! the real Debian cloud kernel (scripts/vm-test-assets.sh), `/init`.

use std::path::PathBuf;
use std::process::Command;

use super::cpio::{Archive, Header};
use super::elf::{Elf, parse_modinfo};
use super::*;

/// `lib/modules/<release>` of the test kernel, fetched by the script.
/// Missing assets skip the test (printing why) unless `CI` is set.
fn test_modules_dir() -> Option<PathBuf> {
    vimana_testkit::require(vimana_testkit::vm_assets()).map(|a| a.modules)
}

#[test]
fn newc_header_layout() {
    let h = Header {
        ino: 1,
        mode: 0o100_755,
        nlink: 1,
        filesize: 0x1234,
        rdev_major: 5,
        rdev_minor: 1,
        namesize: 5,
    };
    let text = h.encode();
    assert_eq!(text.len(), 110);
    let fields = [
        "00000001", // ino
        "000081ED", // mode: regular file, 0755
        "00000000", // uid
        "00000000", // gid
        "00000001", // nlink
        "00000000", // mtime
        "00001234", // filesize
        "00000000", // devmajor
        "00000000", // devminor
        "00000005", // rdevmajor
        "00000001", // rdevminor
        "00000005", // namesize
        "00000000", // check
    ];
    assert_eq!(text, format!("070701{}", fields.concat()));
}

#[test]
fn newc_archive_is_padded_sorted_and_terminated() {
    let mut a = Archive::default();
    a.file("init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
    a.char_dev("dev/console", 0o600, 5, 1).unwrap();
    a.symlink("bin/sh", "busybox").unwrap();
    let bytes = a.to_newc();
    assert_eq!(bytes.len() % 4, 0);
    // Walk the entries back: names in sorted order, parents implied.
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let header = std::str::from_utf8(&bytes[off..off + 110]).unwrap();
        assert!(header.starts_with("070701"));
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
        let name = std::str::from_utf8(&bytes[off + 110..off + 110 + namesize - 1]).unwrap();
        assert_eq!(field(5), 0, "mtime of {name}");
        if name == "dev/console" {
            assert_eq!((mode, field(9), field(10)), (0o020_600, 5, 1));
        }
        names.push(name.to_owned());
        off = (off + 110 + namesize).next_multiple_of(4);
        off = (off + size).next_multiple_of(4);
        if name == "TRAILER!!!" {
            break;
        }
    }
    assert_eq!(off, bytes.len());
    assert_eq!(
        names,
        ["bin", "bin/sh", "dev", "dev/console", "init", "TRAILER!!!"]
    );
}

#[test]
fn archive_rejects_bad_guest_paths() {
    let mut a = Archive::default();
    a.file("etc/x", 0o644, vec![]).unwrap();
    assert!(a.file("etc/x", 0o644, vec![]).is_err(), "duplicate");
    assert!(
        a.file("etc/x/y", 0o644, vec![]).is_err(),
        "parent is a file"
    );
    assert!(a.file("a/../b", 0o644, vec![]).is_err());
    assert!(a.file("/", 0o644, vec![]).is_err());
}

#[test]
fn modinfo_parsing() {
    let section = b"license=GPL\0depends=virtio_ring,virtio,net-failover\0\0\0retpoline=Y\0\
                    name=virtio_net\0vermagic=6.1.0-56-cloud-amd64 SMP mod_unload \0";
    let info = parse_modinfo(section);
    assert_eq!(info.name.as_deref(), Some("virtio_net"));
    assert_eq!(info.depends, ["virtio_ring", "virtio", "net_failover"]);
    assert_eq!(
        info.vermagic.as_deref(),
        Some("6.1.0-56-cloud-amd64 SMP mod_unload")
    );
    assert!(parse_modinfo(b"depends=\0name=virtio\0").depends.is_empty());
}

#[test]
fn elf_reader_rejects_garbage_and_sees_busybox_is_static() {
    assert!(Elf::parse(b"#!/bin/sh\n").is_err());
    assert!(Elf::parse(b"\x7fELF\x02\x01").is_err(), "truncated header");
    let Ok(busybox) = std::fs::read("/bin/busybox") else {
        assert!(std::env::var_os("CI").is_none(), "/bin/busybox missing");
        eprintln!("skipping busybox check: /bin/busybox missing (apt-get install busybox-static)");
        return;
    };
    let elf = Elf::parse(&busybox).unwrap();
    assert!(!elf.has_interpreter().unwrap());
    let libc = std::fs::read("/bin/ls").unwrap();
    assert!(Elf::parse(&libc).unwrap().has_interpreter().unwrap());
}

#[test]
fn real_modules_resolve_in_load_order() {
    let Some(dir) = test_modules_dir() else {
        return;
    };
    let modules = resolve_modules(&dir, DEFAULT_MODULES).unwrap();
    let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|m| *m == n)
            .unwrap_or_else(|| panic!("{n} missing from {names:?}"))
    };
    for m in &modules {
        assert!(m.path.is_file(), "{}", m.path.display());
        assert!(m.relative.starts_with("kernel"));
        for dep in &m.depends {
            assert!(
                pos(dep) < pos(&m.name),
                "{dep} after {} in {names:?}",
                m.name
            );
        }
    }
    for n in ["virtio", "virtio_ring", "net_failover", "failover", "vsock"] {
        pos(n);
    }
    assert!(pos("vmw_vsock_virtio_transport_common") < pos("vmw_vsock_virtio_transport"));
    // No duplicates; `-` spelling and builtin names are accepted.
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    let again = resolve_modules(&dir, &["virtio-blk", "ext4", "8250"]).unwrap();
    assert_eq!(again.last().map(|m| m.name.as_str()), Some("virtio_blk"));
    assert!(!again.iter().any(|m| m.name == "ext4"), "ext4 is built in");
}

#[test]
fn unknown_module_is_an_error_naming_it_and_the_dir() {
    let Some(dir) = test_modules_dir() else {
        return;
    };
    let err = resolve_modules(&dir, &["virtio_blk", "no_such_mod"]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no_such_mod"), "{text}");
    assert!(text.contains(&dir.display().to_string()), "{text}");
}

#[test]
fn init_script_shapes() {
    let paths = vec![
        "/lib/modules/r/kernel/a.ko".to_owned(),
        "/lib/modules/r/kernel/b.ko".to_owned(),
    ];
    let plain = init_script(&paths, false);
    assert!(plain.starts_with("#!/bin/sh\n"));
    let a = plain.find("insmod '/lib/modules/r/kernel/a.ko'").unwrap();
    let b = plain.find("insmod '/lib/modules/r/kernel/b.ko'").unwrap();
    assert!(a < b, "load order kept");
    assert!(plain.contains("mount -t proc"));
    assert!(plain.contains("vimana.debug=1"));
    assert!(plain.contains(READY_MARKER));
    assert!(plain.contains("setsid cttyhack sh"));
    assert!(!plain.contains(AGENT_GUEST_PATH));
    let agent = init_script(&paths, true);
    assert!(agent.contains("exec /sbin/vimana-agent --init"));
    assert!(!agent.contains(READY_MARKER));
    let busybox = std::path::Path::new("/bin/busybox");
    if busybox.exists() {
        // The generated script parses: `sh -n`.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("init");
        std::fs::write(&file, &plain).unwrap();
        let st = Command::new(busybox)
            .args(["sh", "-n"])
            .arg(&file)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

#[test]
fn missing_busybox_says_how_to_install_it() {
    let spec = InitramfsSpec::new("/nonexistent/busybox");
    let dir = tempfile::tempdir().unwrap();
    let err = build(&spec, &dir.path().join("i.gz")).unwrap_err();
    assert!(
        err.to_string().contains("apt-get install busybox-static"),
        "{err}"
    );
    let not_static = InitramfsSpec::new("/bin/ls");
    let err = build(&not_static, &dir.path().join("i.gz")).unwrap_err();
    assert!(
        matches!(err, InitramfsError::BusyboxNotStatic { .. }),
        "{err}"
    );
    assert!(!dir.path().join("i.gz").exists());
}
