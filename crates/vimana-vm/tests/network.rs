//! Bridge networking against the real kernel, inside a network namespace
//! the test creates (and deletes, also on failure). Needs root, `ip` and
//! `/dev/net/tun`; skipped with a reason otherwise, unless `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vimana_vm::network::{BridgeNetwork, BridgeSettings, TAP_PREFIX};
use vimana_vm::{NetworkConfig, NetworkMode};

/// Deletes the namespace when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `Err(reason)` when this host cannot run the test.
fn precondition() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (creates a network namespace and tap devices)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (modprobe tun)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("the `ip` command (iproute2) is not installed".into()),
    }
}

fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("bridge network test cannot run under CI: {reason}");
    }
    eprintln!("skipping the bridge network test: {reason}");
}

fn ip_json(ns: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new("ip")
        .args(["-n", ns, "-j", "-d"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).unwrap()
}

fn links(ns: &str) -> Vec<Value> {
    ip_json(ns, &["link", "show"])
}

fn link<'a>(links: &'a [Value], name: &str) -> Option<&'a Value> {
    links.iter().find(|l| l["ifname"] == name)
}

fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// `nft list table ip vimana` in the namespace; `None` without nft or
/// without the table.
fn nft_table(ns: &str) -> Option<String> {
    if !Path::new("/usr/sbin/nft").exists() && !Path::new("/sbin/nft").exists() {
        return None;
    }
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "table", "ip", "vimana"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bridge_config() -> NetworkConfig {
    NetworkConfig {
        mode: NetworkMode::Bridge,
        ..NetworkConfig::default()
    }
}

fn settings(state: &Path) -> BridgeSettings {
    let mut s = BridgeSettings::under(state);
    s.dns = Some(Ipv4Addr::new(10, 88, 0, 1));
    s
}

async fn scenario(ns: &str, state: PathBuf) {
    let net = BridgeNetwork::on_host(settings(&state)).unwrap();
    let a = net.attach("alpha", &bridge_config()).await.unwrap();
    let b = net.attach("beta", &bridge_config()).await.unwrap();
    assert_eq!(a.address, Ipv4Addr::new(10, 88, 0, 2));
    assert_eq!(b.address, Ipv4Addr::new(10, 88, 0, 3));
    assert_eq!(
        a.cmdline(),
        "vimana.ip=10.88.0.2/24 vimana.gw=10.88.0.1 vimana.dns=10.88.0.1"
    );
    for w in a.warnings.iter().chain(&b.warnings) {
        eprintln!("attach warning: {w}");
    }

    // The bridge carries the gateway address and is up.
    let addrs = ip_json(ns, &["addr", "show", "dev", "vimana0"]);
    let info = addrs[0]["addr_info"].as_array().unwrap();
    assert!(
        info.iter()
            .any(|a| a["local"] == "10.88.0.1" && a["prefixlen"] == 24),
        "{info:?}"
    );
    let all = links(ns);
    let bridge = link(&all, "vimana0").unwrap();
    assert!(has_flag(bridge, "UP"), "{bridge}");
    assert_eq!(bridge["linkinfo"]["info_kind"], "bridge");

    // NAT when nft is installed (a warning otherwise).
    if let Some(rules) = nft_table(ns) {
        assert!(rules.contains("masquerade"), "{rules}");
        assert!(rules.contains("10.88.0.0/24"), "{rules}");
        let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        assert_eq!(forward.trim(), "1");
    } else {
        assert!(
            a.warnings.iter().any(|w| w.contains("nft")),
            "{:?}",
            a.warnings
        );
    }

    // Both taps: persistent taps, enslaved to the bridge, up.
    for lease in [&a, &b] {
        let tap = link(&all, &lease.tap).unwrap_or_else(|| panic!("{} missing", lease.tap));
        assert_eq!(tap["master"], "vimana0", "{tap}");
        assert!(has_flag(tap, "UP"), "{tap}");
        let data = &tap["linkinfo"]["info_data"];
        assert_eq!(tap["linkinfo"]["info_kind"], "tun", "{tap}");
        assert_eq!(data["type"], "tap", "{tap}");
        assert_eq!(data["persist"], true, "{tap}");
    }

    // Detach one: its tap is gone, its address free again.
    net.detach(&a).await.unwrap();
    net.detach(&a).await.unwrap();
    let all = links(ns);
    assert!(link(&all, &a.tap).is_none());
    assert!(link(&all, &b.tap).is_some());
    let leases = net.ipam().leases().unwrap();
    assert!(!leases.contains_key("alpha") && leases.contains_key("beta"));

    // A crash: the daemon goes away without detaching beta; the next one
    // cleans up at start.
    drop(net);
    let net = BridgeNetwork::on_host(settings(&state)).unwrap();
    let report = net.cleanup_orphans(Vec::<String>::new()).await.unwrap();
    assert_eq!(report.taps, vec![b.tap.clone()]);
    assert_eq!(report.leases, vec!["beta".to_string()]);
    let left: Vec<String> = links(ns)
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with(TAP_PREFIX))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "taps left: {left:?}");
    assert!(net.ipam().leases().unwrap().is_empty());

    net.teardown().await.unwrap();
    assert!(link(&links(ns), "vimana0").is_none());
    assert!(nft_table(ns).is_none());
}

#[test]
fn bridge_and_taps_in_a_network_namespace() {
    if let Err(reason) = precondition() {
        skip(&reason);
        return;
    }
    let name = format!("vmt-{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &name]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            skip(&format!(
                "cannot create a network namespace: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return;
        }
        Err(e) => {
            skip(&format!("cannot run `ip netns add`: {e}"));
            return;
        }
    }
    let ns = Netns(name.clone());
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_path_buf();

    // Netlink sockets, tun devices and /proc/sys/net belong to the
    // namespace of the thread that opens them: enter it on a thread of our
    // own and run a current-thread runtime there.
    let thread = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(scenario(&name, state_dir));
    });
    let result = thread.join();
    drop(ns);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
