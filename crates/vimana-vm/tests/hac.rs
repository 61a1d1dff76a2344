//! `hac.toml` parsing: the published shapes, vimana's keys, and one test
//! per validation rule (code, message words, label position).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use vimana_vm::hac::{self, HacDiagnostic, HacError, ParseOptions, Parsed};
use vimana_vm::{
    NetworkConfig, NetworkMode, PortForward, Protocol, Provider, RootFs, SpacecoreInfo, VmConfig,
    Volume,
};

const HYPERCORE: &str = include_str!("fixtures/hac/hypercore.toml");
const SPACECORE: &str = include_str!("fixtures/hac/spacecore.toml");
const VIMANA: &str = include_str!("fixtures/hac/vimana.toml");
const MINIMAL: &str = include_str!("fixtures/hac/minimal-hardware.toml");

/// Deterministic options: 8 GiB host, paths not checked.
fn opts() -> ParseOptions {
    ParseOptions {
        host_memory_mib: Some(8192),
        base_dir: None,
        check_paths: false,
    }
}

fn ok(text: &str) -> Parsed {
    match hac::parse(text, Path::new("hac.toml"), &opts()) {
        Ok(p) => p,
        Err(e) => panic!("expected success, got {e}"),
    }
}

fn err_with(text: &str, opts: &ParseOptions) -> HacDiagnostic {
    match hac::parse(text, Path::new("hac.toml"), opts) {
        Ok(p) => panic!("expected an error, got {:?}", p.config),
        Err(e) => e.diagnostic().cloned().expect("a located diagnostic"),
    }
}

/// Line and column (1-based, characters) of a byte offset, computed here
/// independently of the library.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Asserts the code, that the message holds every word, and where the
/// label starts; returns the diagnostic for further checks.
#[track_caller]
fn check(text: &str, code: &str, words: &[&str], line_col: (usize, usize)) -> HacDiagnostic {
    check_with(text, &opts(), code, words, line_col)
}

#[track_caller]
fn check_with(
    text: &str,
    opts: &ParseOptions,
    code: &str,
    words: &[&str],
    line_col: (usize, usize),
) -> HacDiagnostic {
    let d = err_with(text, opts);
    assert_eq!(d.code_str(), code, "{d}");
    for w in words {
        assert!(d.message().contains(w), "{w:?} not in {:?}", d.message());
    }
    assert_eq!(position(text, d.span().start), line_col, "{d}");
    assert_eq!(d.line_col(), line_col);
    assert!(!d.help_text().is_empty());
    assert_eq!(d.source_name(), "hac.toml");
    d
}

fn base(cpus: u32, memory_mib: u64, root: RootFs) -> VmConfig {
    VmConfig {
        provider: None,
        cpus,
        memory_mib,
        disk_bytes: None,
        kernel: None,
        modules: None,
        cmdline_extra: Vec::new(),
        root,
        network: NetworkConfig::default(),
        volumes: Vec::new(),
        spacecore: SpacecoreInfo::default(),
    }
}

#[test]
fn hypercore_shape_parses_unchanged() {
    let p = ok(HYPERCORE);
    let mut want = base(
        4,
        4096,
        RootFs::Drive {
            path: "/home/dev/firecracker-containerd/tools/image-builder/rootfs.img".into(),
        },
    );
    want.kernel = Some("/home/dev/images/vmlinux-5.10.217".into());
    want.network = NetworkConfig {
        mode: NetworkMode::Bridge,
        host_interface: Some("ens2".into()),
        ..NetworkConfig::default()
    };
    want.spacecore.name = Some("Test Node".into());
    want.spacecore.description = Some("Testing".into());
    assert_eq!(p.config, want);
    // Both drive and ref: the drive wins, with a warning at `ref`.
    assert_eq!(p.warnings.len(), 1);
    let w = &p.warnings[0];
    assert!(w.is_warning());
    assert_eq!(w.code_str(), "vimana::hac::drive_and_ref");
    assert_eq!(position(HYPERCORE, w.span().start), (10, 7));
}

#[test]
fn spacecore_shape_parses() {
    let p = ok(SPACECORE);
    let mut want = base(1, 512, RootFs::Initramfs);
    want.disk_bytes = Some(1 << 30);
    want.spacecore = SpacecoreInfo {
        name: Some("node".into()),
        description: Some("A test spacecore".into()),
        version: Some("0.1.0".into()),
        container_image: Some("ghcr.io/example/node:0.1.0".into()),
        backend: Some("process".into()),
        commands: BTreeMap::from([
            ("start".into(), "/usr/local/bin/node --serve".into()),
            ("backup".into(), "tar czf backup.tgz state".into()),
        ]),
    };
    assert_eq!(p.config, want);
    assert!(p.warnings.is_empty());
}

#[test]
fn vimana_keys_parse() {
    let dir = Path::new("/srv/web");
    let opts = ParseOptions {
        base_dir: Some(dir.into()),
        ..opts()
    };
    let p = hac::parse(VIMANA, Path::new("hac.toml"), &opts).expect("valid");
    let mut want = base(
        2,
        1024,
        RootFs::Image {
            reference: "docker.io/library/nginx:1.27".into(),
        },
    );
    want.provider = Some(Provider::CloudHypervisor);
    want.kernel = Some(dir.join("vmlinuz"));
    want.modules = Some(dir.join("modules"));
    want.cmdline_extra = vec!["quiet".into(), "loglevel=3".into()];
    want.network = NetworkConfig {
        mode: NetworkMode::User,
        forwards: vec![
            PortForward {
                host: 8080,
                guest: 80,
                protocol: Protocol::Tcp,
            },
            PortForward {
                host: 5353,
                guest: 53,
                protocol: Protocol::Udp,
            },
        ],
        ..NetworkConfig::default()
    };
    want.volumes = vec![
        Volume {
            source: dir.join("site.ext4"),
            target: "/usr/share/nginx/html".into(),
            read_only: true,
        },
        Volume {
            source: dir.join("scratch.img"),
            target: "/scratch".into(),
            read_only: false,
        },
    ];
    want.spacecore.name = Some("web".into());
    assert_eq!(p.config, want);
    assert!(p.warnings.is_empty());
}

#[test]
fn minimal_hardware_table_loads_with_real_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hac.toml");
    std::fs::write(&file, MINIMAL).expect("write");
    std::fs::write(dir.path().join("vmlinux"), b"kernel").expect("write");
    let opts = ParseOptions {
        host_memory_mib: Some(1024),
        ..ParseOptions::default()
    };
    let p = hac::load(&file, &opts).expect("valid");
    let mut want = base(2, 256, RootFs::Initramfs);
    want.kernel = Some(dir.path().join("vmlinux"));
    assert_eq!(p.config, want);
    assert!(p.warnings.is_empty());
}

#[test]
fn only_a_name_gives_a_default_vm() {
    let p = ok("[spacecore]\nname = \"tiny\"\n");
    let mut want = base(
        hac::DEFAULT_CPUS,
        hac::DEFAULT_MEMORY_MIB,
        RootFs::Initramfs,
    );
    want.spacecore.name = Some("tiny".into());
    assert_eq!(p.config, want);
    assert_eq!(ok("").config, base(1, 512, RootFs::Initramfs));
}

#[test]
fn unknown_key_names_key_table_and_allowed_keys() {
    let text = "[hardware]\ncores = 2\ncpus = 4\n";
    let d = check(
        text,
        "vimana::hac::unknown_key",
        &[
            "`cpus`",
            "[hardware]",
            "cores, memory, kernel, drive, ref, interface",
        ],
        (3, 1),
    );
    assert!(
        d.help_text().contains("did you mean `cores`"),
        "{}",
        d.help_text()
    );

    let text = "name = \"x\"\n";
    check(
        text,
        "vimana::hac::unknown_key",
        &["`name`", "top level", "spacecore"],
        (1, 1),
    );

    let text = "[[volumes]]\nsource = \"a\"\ntarget = \"/a\"\n\n[[volumes]]\nsource = \"b\"\ntarget = \"/b\"\nreadonly = true\n";
    let d = check(
        text,
        "vimana::hac::unknown_key",
        &["`readonly`", "[[volumes]] #2", "read_only"],
        (8, 1),
    );
    assert!(d.help_text().contains("`read_only`"));

    let text = "[resources]\ncpu = 1\n\n[kernel]\npath = \"x\"\n";
    check(
        text,
        "vimana::hac::unknown_key",
        &["`kernel`", "top level", "boot"],
        (4, 2),
    );

    let text = "[network]\nmode = \"user\"\nforward = [\"1:1\"]\n";
    check(
        text,
        "vimana::hac::unknown_key",
        &["`forward`", "[network]", "forwards"],
        (3, 1),
    );
}

#[test]
fn cores_must_be_positive() {
    check(
        "[hardware]\ncores = 0\n",
        "vimana::hac::cpus",
        &["[hardware] cores", "between 1 and 255", "got 0"],
        (2, 9),
    );
    check(
        "[resources]\ncpu = -2\n",
        "vimana::hac::cpus",
        &["[resources] cpu", "got -2"],
        (2, 7),
    );
    check(
        "[hardware]\ncores = 100000\n",
        "vimana::hac::cpus",
        &["got 100000"],
        (2, 9),
    );
}

#[test]
fn memory_limits() {
    check(
        "[hardware]\nmemory = 16384\n",
        "vimana::hac::memory_exceeds_host",
        &["[hardware] memory", "16384 MiB", "8192 MiB"],
        (2, 10),
    );
    check(
        "[resources]\nmemory = \"9GB\"\n",
        "vimana::hac::memory_exceeds_host",
        &["9216 MiB"],
        (2, 10),
    );
    check(
        "[hardware]\nmemory = 8\n",
        "vimana::hac::memory_too_small",
        &["at least 16 MiB", "got 8 MiB"],
        (2, 10),
    );
    check(
        "[resources]\nmemory = \"1500KB\"\n",
        "vimana::hac::memory_unit",
        &["whole number of MiB"],
        (2, 10),
    );
    // No host limit known: only the rules of the file apply.
    let unbounded = ParseOptions {
        host_memory_mib: None,
        ..opts()
    };
    let p = hac::parse(
        "[hardware]\nmemory = 65536\n",
        Path::new("hac.toml"),
        &unbounded,
    )
    .expect("valid");
    assert_eq!(p.config.memory_mib, 65536);
}

#[test]
fn bad_sizes_list_the_units() {
    for (value, word) in [
        ("\"512XB\"", "\"XB\""),
        ("\"-1GB\"", "negative"),
        ("\"1.5GB\"", "whole"),
        ("\"512\"", "unit"),
        ("-1", "negative"),
    ] {
        let text = format!("[resources]\nmemory = {value}\n");
        let d = check(
            &text,
            "vimana::hac::size",
            &[word, "B, K/KB/KiB, M/MB/MiB, G/GB/GiB"],
            (2, 10),
        );
        assert!(d.help_text().contains("512MB"));
    }
    check(
        "[resources]\ndisk = \"0GB\"\n",
        "vimana::hac::disk",
        &["larger than 0"],
        (2, 8),
    );
    check(
        "[resources]\ndisk = \"huge\"\n",
        "vimana::hac::size",
        &["[resources] disk"],
        (2, 8),
    );
}

#[test]
fn missing_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checked = ParseOptions {
        host_memory_mib: Some(8192),
        base_dir: Some(dir.path().into()),
        check_paths: true,
    };
    let text = "[hardware]\ncores = 1\nkernel = \"vmlinux\"\n";
    let d = check_with(
        text,
        &checked,
        "vimana::hac::kernel_missing",
        &["kernel \"vmlinux\"", "cannot be used"],
        (3, 10),
    );
    assert!(
        d.message()
            .contains(&dir.path().join("vmlinux").display().to_string())
    );
    assert!(d.help_text().contains("relative"));

    std::fs::write(dir.path().join("vmlinux"), b"k").expect("write");
    let text = "[hardware]\nkernel = \"vmlinux\"\ndrive = \"disk/root.img\"\n";
    check_with(
        text,
        &checked,
        "vimana::hac::drive_missing",
        &["drive \"disk/root.img\""],
        (3, 9),
    );

    let text = "[boot]\nkernel = \"~/vmlinux\"\n";
    let d = check_with(
        text,
        &checked,
        "vimana::hac::kernel_missing",
        &["kernel"],
        (2, 10),
    );
    assert!(d.help_text().contains("not expanded"));

    let text = "[boot]\nkernel = \".\"\n";
    check_with(
        text,
        &checked,
        "vimana::hac::kernel_missing",
        &["is a directory"],
        (2, 10),
    );
    let text = "[boot]\nmodules = \"vmlinux\"\n";
    check_with(
        text,
        &checked,
        "vimana::hac::modules_missing",
        &["not a directory"],
        (2, 11),
    );
    let text = "[[volumes]]\nsource = \"nope\"\ntarget = \"/x\"\n";
    check_with(
        text,
        &checked,
        "vimana::hac::volume_source",
        &["volume source \"nope\""],
        (2, 10),
    );
}

#[test]
fn bad_port_forwards() {
    for (fwd, word) in [
        ("80", "HOST:GUEST"),
        ("x:80", "host port \"x\" is not a number"),
        ("70000:80", "host port 70000 is out of range"),
        ("80:0", "guest port 0"),
        ("80:80/sctp", "protocol"),
    ] {
        let text = format!("[network]\nmode = \"user\"\nforwards = [\"8080:80\", \"{fwd}\"]\n");
        check(&text, "vimana::hac::port_forward", &[fwd, word], (3, 24));
    }
    let text = "[network]\nforwards = [\"80:80\", \"80:81\"]\n";
    check(text, "vimana::hac::duplicate_forward", &["80"], (2, 22));
}

#[test]
fn forwards_need_a_network() {
    let text = "[network]\nmode = \"none\"\nforwards = [\"8080:80\"]\n";
    let d = check(
        text,
        "vimana::hac::forwards_without_network",
        &["forwards", "\"none\""],
        (3, 12),
    );
    assert!(d.help_text().contains("mode = \"user\""));
    // Bridge mode forwards too (nftables DNAT).
    let p = ok("[network]\nmode = \"bridge\"\nforwards = [\"8080:80\"]\n");
    assert_eq!(p.config.network.forwards.len(), 1);
    // Without a mode, forwards imply user networking.
    assert_eq!(
        ok("[network]\nforwards = [\"8080:80\"]\n")
            .config
            .network
            .mode,
        NetworkMode::User
    );
}

#[test]
fn network_mode_address_and_interface() {
    check(
        "[network]\nmode = \"nat\"\n",
        "vimana::hac::network_mode",
        &["\"nat\"", "none", "bridge"],
        (2, 8),
    );
    check(
        "[network]\nmode = \"user\"\naddress = \"10.88.0.5\"\n",
        "vimana::hac::network_address",
        &["bridge"],
        (3, 11),
    );
    check(
        "[network]\nmode = \"bridge\"\naddress = \"10.88.0\"\n",
        "vimana::hac::network_address",
        &["not an IPv4"],
        (3, 11),
    );
    let p = ok("[network]\nmode = \"bridge\"\naddress = \"10.88.0.5\"\n");
    assert_eq!(p.config.network.address, Some(Ipv4Addr::new(10, 88, 0, 5)));
    let p = ok("[hardware]\ninterface = \"eth0\"\n[network]\nmode = \"user\"\n");
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].code_str(), "vimana::hac::interface_unused");
    check(
        "[hardware]\ninterface = \"eth0\"\n[network]\ninterface = \"eth1\"\n",
        "vimana::hac::conflict",
        &["interface", "[hardware]", "[network]"],
        (4, 13),
    );
}

#[test]
fn volume_targets_must_be_absolute() {
    let text = "[[volumes]]\nsource = \"data\"\ntarget = \"data\"\n";
    let d = check(
        text,
        "vimana::hac::volume_target",
        &["\"data\"", "absolute"],
        (3, 10),
    );
    assert!(d.help_text().contains("\"/data\""));
    check(
        "[[volumes]]\nsource = \"a\"\ntarget = \"/\"\n",
        "vimana::hac::volume_target",
        &["other than /"],
        (3, 10),
    );
    check(
        "[[volumes]]\nsource = \"a\"\ntarget = \"/my data\"\n",
        "vimana::hac::volume_target",
        &["\"/my data\"", "' '"],
        (3, 10),
    );
    let text = "[[volumes]]\nsource = \"a\"\ntarget = \"/a\"\n[[volumes]]\nsource = \"b\"\ntarget = \"/a/\"\n";
    check(text, "vimana::hac::duplicate_volume", &["\"/a/\""], (6, 10));
    check(
        "[[volumes]]\nsource = \"a\"\n",
        "vimana::hac::missing_key",
        &["[[volumes]] #1", "`target`"],
        (1, 1),
    );
}

#[test]
fn providers() {
    let d = check(
        "provider = \"xen\"\n",
        "vimana::hac::provider",
        &["\"xen\"", "qemu, firecracker, cloud-hypervisor"],
        (1, 12),
    );
    assert!(d.help_text().contains("qemu"));
    for (name, want) in [
        ("qemu", Provider::Qemu),
        ("firecracker", Provider::Firecracker),
        ("cloud-hypervisor", Provider::CloudHypervisor),
        ("cloudhypervisor", Provider::CloudHypervisor),
    ] {
        assert_eq!(
            ok(&format!("provider = \"{name}\"\n")).config.provider,
            Some(want)
        );
    }
}

#[test]
fn two_sources_conflict() {
    let text = "[hardware]\ncores = 2\n\n[resources]\ncpu = 2\n";
    check(
        text,
        "vimana::hac::conflict",
        &["[hardware]", "[resources]"],
        (4, 1),
    );
    let text = "[hardware]\nkernel = \"a\"\n[boot]\nkernel = \"b\"\n";
    check(
        text,
        "vimana::hac::conflict",
        &["`kernel`", "[hardware]", "[boot]"],
        (4, 10),
    );
}

#[test]
fn other_value_errors() {
    check(
        "[hardware]\ncores = \"four\"\n",
        "vimana::hac::invalid_type",
        &["[hardware] `cores`", "an integer"],
        (2, 9),
    );
    check(
        "[boot]\ncmdline = [\"quiet\", \"a b\"]\n",
        "vimana::hac::cmdline",
        &["\"a b\""],
        (2, 21),
    );
    check(
        "[boot]\nref = \"\"\n",
        "vimana::hac::image_ref",
        &["not valid"],
        (2, 7),
    );
    check(
        "[hardware]\ncores = 2\ncores = 3\n",
        "vimana::hac::syntax",
        &["duplicate key"],
        (3, 1),
    );
    check("[hardware\n", "vimana::hac::syntax", &[], (1, 10));
}

#[test]
fn io_errors_name_the_path() {
    let missing = PathBuf::from("/nonexistent/vimana/hac.toml");
    let e = hac::load(&missing, &opts()).expect_err("missing file");
    assert!(matches!(e, HacError::Io { .. }));
    assert_eq!(e.code_str(), "vimana::hac::io");
    assert!(e.to_string().contains("/nonexistent/vimana/hac.toml"));
}

#[test]
fn garbage_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hac.toml");
    std::fs::write(&file, b"[spacecore]\nname = \"\xff\xfe\"\n").expect("write");
    let e = hac::load(&file, &opts()).expect_err("not UTF-8");
    let d = e.diagnostic().expect("located");
    assert_eq!(d.code_str(), "vimana::hac::encoding");
    assert_eq!(d.line_col(), (2, 9));

    let nested = "a = ".to_string() + &"[".repeat(5000);
    let inputs = [
        "",
        "\0\u{1}\u{7f}",
        "[",
        "]]]",
        "=",
        "\"",
        "[hardware]\nmemory = \"\u{1F600}GB\"",
        "ß = 1",
        &nested,
    ];
    for text in inputs {
        let _ = hac::parse(text, Path::new("hac.toml"), &opts());
    }
    // Every prefix of every fixture: ok or one located error, never a panic.
    for text in [HYPERCORE, SPACECORE, VIMANA] {
        for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            if let Err(e) = hac::parse(&text[..end], Path::new("hac.toml"), &opts()) {
                let d = e.diagnostic().expect("located");
                assert!(d.span().end <= end);
            }
        }
    }
}

#[test]
fn rendered_error_points_into_the_file() {
    let text = "[spacecore]\nname = \"x\"\n\n[hardware]\ncores = 0\n";
    let e = hac::parse(text, Path::new("nodes/hac.toml"), &opts()).expect_err("cores = 0");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &e)
        .expect("render");
    assert!(out.contains("vimana::hac::cpus"), "{out}");
    assert!(out.contains("╭─[nodes/hac.toml:5:9]"), "{out}");
    assert!(out.contains("cores = 0"), "{out}");
    assert!(out.contains("out of range"), "{out}");
    assert!(out.contains("help:"), "{out}");
    assert_eq!(
        e.to_string(),
        "nodes/hac.toml:5:9: [hardware] cores must be between 1 and 255, got 0"
    );
}

#[test]
fn commands_take_a_string_or_a_table() {
    let text = "[commands]\nbackup = { run = \"x\", desc = \"y\" }\n";
    check(
        text,
        "vimana::hac::unknown_key",
        &["`desc`", "[commands.backup]", "run, description"],
        (2, 23),
    );
    let text = "[commands]\nx = 5\n";
    check(
        text,
        "vimana::hac::invalid_type",
        &["[commands] `x`", "shell command"],
        (2, 5),
    );
}

#[test]
fn volume_directories_are_refused_with_how_to_make_an_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let opts = ParseOptions {
        base_dir: Some(dir.path().into()),
        check_paths: true,
        ..opts()
    };
    let d = check_with(
        "[[volumes]]\nsource = \"data\"\ntarget = \"/data\"\n",
        &opts,
        "vimana::hac::volume_directory",
        &["\"data\"", "directory", "disk images"],
        (2, 10),
    );
    assert!(
        d.help_text().contains("mkfs.ext4 -d data"),
        "{}",
        d.help_text()
    );
}
