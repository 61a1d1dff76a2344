//! Root filesystems from OCI images, against a real `docker-registry` on
//! loopback and real `mkfs.ext4` / `debugfs` (e2fsprogs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tar::EntryType;
use vimana_vm::rootfs::{RootfsBuilder, RootfsError};

#[path = "support/oci.rs"]
mod oci;
use oci::{LayerBuilder, REGISTRY_BIN, Registry, push_image, tool};

/// True when everything needed is installed; otherwise prints why (and fails under CI).
fn prerequisites() -> bool {
    let mut missing = Vec::new();
    if !Path::new(REGISTRY_BIN).exists() {
        missing.push("docker-registry (apt-get install docker-registry)");
    }
    for t in ["mkfs.ext4", "debugfs"] {
        if tool(t).is_none() {
            missing.push("e2fsprogs (apt-get install e2fsprogs)");
        }
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox (apt-get install busybox-static)");
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!("missing: {}", missing.join(", "));
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipping: {reason}");
    false
}

fn debugfs(image: &Path, request: &str) -> String {
    let out = Command::new(tool("debugfs").unwrap())
        .args(["-R", request])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debugfs -R '{request}' failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names listed by `debugfs -R 'ls -l <dir>'` (without `.` and `..`).
fn names(image: &Path, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = debugfs(image, &format!("ls -l {dir}"))
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

fn agent_file(dir: &Path) -> PathBuf {
    let agent = dir.join("vimana-agent");
    std::fs::write(&agent, b"#!/bin/sh\necho vimana agent stand-in\n").unwrap();
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_layers_whiteouts_agent_and_offline_cache() {
    if !prerequisites() {
        return;
    }
    let mut registry = Registry::start();
    let reference = format!("{}/library/busybox:1", registry.addr);
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let layer1 = LayerBuilder::new()
        .dir("bin")
        .file("bin/busybox", 0o755, &busybox)
        .link(EntryType::Symlink, "bin/sh", "busybox")
        .dir("etc")
        .file("etc/hello", 0o644, b"hello from layer one\n")
        .link(EntryType::Link, "etc/hello-again", "etc/hello")
        .file("etc/gone", 0o600, b"to be deleted\n")
        .dir("opt")
        .dir("opt/keep")
        .dir("opt/keep/a")
        .gzip();
    let layer2 = LayerBuilder::new()
        .file("etc/.wh.gone", 0o644, b"")
        .file("opt/.wh..wh..opq", 0o644, b"")
        .file("opt/new", 0o640, b"new\n")
        .gzip();
    push_image(&reference, vec![layer1, layer2]).await;

    let dir = tempfile::tempdir().unwrap();
    let agent = agent_file(dir.path());
    let builder = RootfsBuilder::new(dir.path().join("cache"), vec![registry.addr.clone()]);
    let first = builder.build(&reference, &agent, None).await.unwrap();
    assert!(!first.reused);
    assert!(first.manifest_digest.starts_with("sha256:"));
    assert!(first.path.is_file(), "{}", first.path.display());
    let image = &first.path;

    assert_eq!(names(image, "/etc"), ["hello", "hello-again"]);
    assert_eq!(debugfs(image, "cat /etc/hello"), "hello from layer one\n");
    assert_eq!(
        debugfs(image, "cat /etc/hello-again"),
        "hello from layer one\n"
    );
    assert_eq!(names(image, "/opt"), ["new"]);
    assert_eq!(names(image, "/bin"), ["busybox", "sh"]);
    let sh = debugfs(image, "stat /bin/sh");
    assert!(sh.contains("Type: symlink"), "{sh}");
    assert!(sh.contains("\"busybox\""), "{sh}");
    let agent_stat = debugfs(image, "stat /sbin/vimana-agent");
    assert!(agent_stat.contains("Mode:  0755"), "{agent_stat}");
    assert!(agent_stat.contains("Type: regular"), "{agent_stat}");
    let new_stat = debugfs(image, "stat /opt/new");
    assert!(new_stat.contains("Mode:  0640"), "{new_stat}");
    let label = debugfs(image, "stats");
    assert!(label.contains("vimana-root"), "{label}");

    // The work directory is gone: only the final image remains.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("cache/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");

    // Cached: no registry needed.
    registry.stop();
    let second = builder.build(&reference, &agent, None).await.unwrap();
    assert!(second.reused);
    assert_eq!(second.path, first.path);
    assert_eq!(second.manifest_digest, first.manifest_digest);

    // A different size is a different image: it needs the (stopped) registry.
    let err = builder
        .build(&reference, &agent, Some(256 * 1024 * 1024))
        .await
        .unwrap_err();
    assert!(matches!(err, RootfsError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&registry.addr), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaping_layers_are_refused_and_write_nothing_outside() {
    if !prerequisites() {
        return;
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_file(dir.path());
    // The unpacked tree is <dir>/cache/tmp/<work>/root: four `..` reach <dir>.
    let builder = RootfsBuilder::new(dir.path().join("cache"), vec![registry.addr.clone()]);

    let dotdot = format!("{}/bad/dotdot:1", registry.addr);
    let layer = LayerBuilder::new()
        .dir("etc")
        .raw_file("../../../../escape", b"pwned\n")
        .gzip();
    push_image(&dotdot, vec![layer]).await;
    let err = builder.build(&dotdot, &agent, None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RootfsError::PathEscape { .. }), "{text}");
    assert!(
        text.contains("../../../../escape") && text.contains("sha256:"),
        "{text}"
    );
    assert!(!dir.path().join("escape").exists());

    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let symlink = format!("{}/bad/symlink:1", registry.addr);
    let layer = LayerBuilder::new()
        .link(EntryType::Symlink, "evil", outside.to_str().unwrap())
        .file("evil/x", 0o644, b"pwned\n")
        .gzip();
    push_image(&symlink, vec![layer]).await;
    let err = builder.build(&symlink, &agent, None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RootfsError::PathEscape { .. }), "{text}");
    assert!(text.contains("evil/x"), "{text}");
    assert!(!outside.join("x").exists());

    let tmp_symlink = format!("{}/bad/tmp-symlink:1", registry.addr);
    let layer = LayerBuilder::new()
        .link(EntryType::Symlink, "evil", "/tmp")
        .file("evil/vimana-rootfs-escape-probe", 0o644, b"pwned\n")
        .gzip();
    push_image(&tmp_symlink, vec![layer]).await;
    let err = builder.build(&tmp_symlink, &agent, None).await.unwrap_err();
    assert!(matches!(err, RootfsError::PathEscape { .. }), "{err}");
    assert!(!Path::new("/tmp/vimana-rootfs-escape-probe").exists());

    // Hard links to outside the root are refused too.
    let hardlink = format!("{}/bad/hardlink:1", registry.addr);
    let mut layer = LayerBuilder::new();
    {
        let mut h = LayerBuilder::header(EntryType::Link, 0o644, 0);
        let old = h.as_old_mut();
        let name = b"passwd";
        old.name[..name.len()].copy_from_slice(name);
        let target = b"../../../../../etc/passwd";
        old.linkname[..target.len()].copy_from_slice(target);
        h.set_cksum();
        layer.0.append(&h, std::io::empty()).unwrap();
    }
    push_image(&hardlink, vec![layer.gzip()]).await;
    let err = builder.build(&hardlink, &agent, None).await.unwrap_err();
    assert!(matches!(err, RootfsError::PathEscape { .. }), "{err}");

    // Nothing half-built is left behind.
    let images: Vec<_> = std::fs::read_dir(dir.path().join("cache/images"))
        .unwrap()
        .collect();
    assert!(images.is_empty(), "{images:?}");
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("cache/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// An image whose `/usr` is a symlink to a host directory and whose `/sbin`
/// links to `usr` (issue 9, item 1): the agent is written where the guest
/// will find `/sbin/vimana-agent` — inside the root — and the host
/// directory is neither emptied nor written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_injection_never_follows_links_out_of_the_root() {
    if !prerequisites() {
        return;
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_file(dir.path());
    let host_dir = dir.path().join("host-dir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("vimana-agent"), b"a host file\n").unwrap();
    let host = host_dir.to_str().unwrap();

    let reference = format!("{}/bad/usr-link:1", registry.addr);
    let layer = LayerBuilder::new()
        .link(EntryType::Symlink, "usr", host)
        .link(EntryType::Symlink, "sbin", "usr")
        .dir("etc")
        .gzip();
    push_image(&reference, vec![layer]).await;
    let builder = RootfsBuilder::new(dir.path().join("cache"), vec![registry.addr.clone()]);
    let built = builder.build(&reference, &agent, None).await.unwrap();

    let entries: Vec<_> = std::fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        ["vimana-agent"],
        "something was written to the host"
    );
    assert_eq!(
        std::fs::read(host_dir.join("vimana-agent")).unwrap(),
        b"a host file\n",
        "the host file was replaced"
    );
    // Inside the image the links are kept and resolve (as the guest sees
    // them) to the agent.
    let sbin = debugfs(&built.path, "stat /sbin");
    assert!(
        sbin.contains("Type: symlink") && sbin.contains("\"usr\""),
        "{sbin}"
    );
    assert_eq!(
        debugfs(&built.path, &format!("cat {host}/vimana-agent")).as_bytes(),
        std::fs::read(&agent).unwrap()
    );
}

/// A daemon killed mid-build leaves its work directory (issue 9, item 12):
/// the next build removes what processes that are gone left in `tmp/`, and
/// keeps what belongs to live ones. No registry is needed: the cleanup
/// comes before the pull (which fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_by_a_killed_build_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_file(dir.path());
    let tmp = dir.path().join("cache/tmp");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = tmp.join(format!("build-{dead}-0"));
    std::fs::create_dir_all(stale.join("root/usr/bin")).unwrap();
    std::fs::write(stale.join("root/usr/bin/big"), vec![0u8; 4096]).unwrap();
    std::fs::write(tmp.join(format!("ref-{dead}-3")), b"sha256:x\n").unwrap();
    let live = tmp.join(format!("build-{}-7", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(tmp.join("unrelated"), b"kept\n").unwrap();

    let builder = RootfsBuilder::new(dir.path().join("cache"), vec!["127.0.0.1:1".into()]);
    let err = builder
        .build("127.0.0.1:1/x/y:1", &agent, None)
        .await
        .unwrap_err();
    assert!(matches!(err, RootfsError::Unreachable { .. }), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!("build-{}-7", std::process::id()),
            "unrelated".into()
        ]
    );
    assert_eq!(builder.remove_stale_work(), 0);
}

/// The same at daemon start: the VM driver removes what a killed daemon's
/// builds left in its root-filesystem cache.
#[test]
fn the_vm_driver_removes_stale_build_work_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = vimana_vm::driver::VmDriverConfig::under(dir.path());
    let tmp = cfg.cache_dir.join("rootfs/tmp");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = tmp.join(format!("build-{dead}-0"));
    std::fs::create_dir_all(stale.join("root/etc")).unwrap();
    let _driver = vimana_vm::driver::VmDriver::new(cfg);
    assert!(!stale.exists(), "{} is left", stale.display());
}
