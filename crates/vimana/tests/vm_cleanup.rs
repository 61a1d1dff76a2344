//! What VMs leave on the host is removed by the daemon: a removed VM's run
//! directory (with its `root.ext4` copy), and at daemon start the TAP
//! devices, leases and forward tables of VMs the store no longer holds
//! (a daemon killed while a VM booted). The bridge part runs in a network
//! namespace the test makes (root, `ip`, `nft`; skipped with a reason
//! otherwise, failing under `CI`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Env;
use vimana_vm::network::{BridgeNetwork, BridgeSettings, TAP_PREFIX, forward_table};
use vimana_vm::{NetworkConfig, NetworkMode, PortForward, Protocol};

/// `PUT /v1/workloads/<name>` with `body`; the HTTP status line.
fn put(env: &Env, name: &str, body: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(env.home().join("vimanad.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let req = format!(
        "PUT /v1/workloads/{name} HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

/// `vimana rm` (the generic command, not `vm rm`) of a VM deletes
/// `vms/<name>` with its root disk copy.
#[test]
fn rm_of_a_vm_deletes_its_run_directory() {
    let env = Env::new();
    env.ok(&["status"]);
    // A VM whose boot fails at once: its record stays, as after a crash.
    let body = r#"{"spec":{"kind":"vm","config":{"cpus":1,"memory_mib":64,"kernel":"/dev/null","root":{"kind":"initramfs"}}}}"#;
    let status = put(&env, "vm-gone", body);
    assert!(!status.contains(" 200 "), "{status}");
    assert_eq!(env.workload("vm-gone")["kind"], "vm");
    let dir = env.home().join("vms/vm-gone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.ext4"), vec![0u8; 4096]).unwrap();
    env.ok(&["rm", "vm-gone"]);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(env.home().join("vms").is_dir());
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn precondition() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (a network namespace, tap devices)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (modprobe tun)".into());
    }
    if !Path::new("/usr/sbin/nft").exists() {
        return Err("nft is not installed (apt-get install nftables)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("the `ip` command (iproute2) is not installed".into()),
    }
}

/// What a daemon killed while VM `ghost` booted on the bridge leaves: its
/// TAP, lease, forward claim and forward table, made in `ns` through the
/// same code the driver uses.
fn leave_a_ghost(ns: &str, state: &Path) -> String {
    let (ns, state) = (ns.to_string(), state.to_path_buf());
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = BridgeNetwork::on_host(BridgeSettings::under(&state)).unwrap();
            let config = NetworkConfig {
                mode: NetworkMode::Bridge,
                forwards: vec![PortForward {
                    host: 18081,
                    guest: 80,
                    protocol: Protocol::Tcp,
                }],
                ..NetworkConfig::default()
            };
            net.attach("ghost", &config).await.unwrap().tap
        })
    })
    .join()
    .unwrap()
}

fn taps(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-j", "link", "show"])
        .output()
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    links
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with(TAP_PREFIX))
        .map(str::to_string)
        .collect()
}

fn nft_tables(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_daemon_start_removes_what_gone_vms_left_on_the_bridge() {
    if let Err(reason) = precondition() {
        vimana_testkit::unavailable::<()>(reason);
        return;
    }
    let name = format!("vcl-{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &name]).status();
    if !made.is_ok_and(|s| s.success()) {
        vimana_testkit::unavailable::<()>(format!("cannot create network namespace {name}"));
        return;
    }
    let ns = Netns(name);
    let env = Env::new();
    let state = env.home().join("vms/net");
    let tap = leave_a_ghost(&ns.0, &state);
    assert_eq!(taps(&ns.0), vec![tap.clone()]);
    assert!(nft_tables(&ns.0).contains(&forward_table(&tap)));

    // A daemon starts (in the namespace): the store holds no VM `ghost`.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_vimana"),
            "status",
        ])
        .env("VIMANA_HOME", env.home())
        .env_remove("VIMANA_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(taps(&ns.0).is_empty(), "taps left: {:?}", taps(&ns.0));
    let tables = nft_tables(&ns.0);
    assert!(!tables.contains(&forward_table(&tap)), "{tables}");
    for file in ["leases.json", "forwards.json"] {
        let text = std::fs::read_to_string(state.join(file)).unwrap_or_default();
        assert!(!text.contains("ghost"), "{file}: {text}");
    }
}
