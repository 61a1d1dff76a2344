#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::fake::{FakeKind, FakeNetOps};
use super::*;

fn bridge_cfg(address: Option<Ipv4Addr>) -> NetworkConfig {
    NetworkConfig {
        mode: NetworkMode::Bridge,
        address,
        ..NetworkConfig::default()
    }
}

fn settings(dir: &Path) -> BridgeSettings {
    BridgeSettings {
        bridge: DEFAULT_BRIDGE.into(),
        subnet: Subnet::DEFAULT,
        gateway: None,
        dns: None,
        state_dir: dir.to_path_buf(),
        tap_owner: Some(1000),
        nat: true,
    }
}

fn setup(nft: bool) -> (tempfile::TempDir, Arc<FakeNetOps>, BridgeNetwork) {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeNetOps::new(nft));
    let net = BridgeNetwork::new(fake.clone(), settings(dir.path())).unwrap();
    (dir, fake, net)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn names_are_short_stable_and_distinct() {
    let a = tap_name("web");
    assert!(a.starts_with("vt-") && a.len() == 15, "{a}");
    assert_eq!(a, tap_name("web"));
    assert_ne!(a, tap_name("db"));
    let m = mac_for("web");
    assert_eq!(m, mac_for("web"));
    assert!(m.starts_with("52:54:00:") && m.len() == 17, "{m}");
    assert_ne!(m, mac_for("db"));
}

#[test]
fn subnet_parsing_and_ranges() {
    let s: Subnet = "10.88.0.7/24".parse().unwrap();
    assert_eq!(s, Subnet::DEFAULT);
    assert_eq!(s.to_string(), "10.88.0.0/24");
    assert_eq!(s.broadcast(), ip("10.88.0.255"));
    assert_eq!(s.hosts().count(), 254);
    assert!(s.contains(ip("10.88.0.200")) && !s.contains(ip("10.89.0.1")));
    for bad in ["10.88.0.0", "10.88.0.0/31", "x/24", "10.88.0.0/abc"] {
        let e = bad.parse::<Subnet>().unwrap_err();
        assert!(matches!(e, NetError::InvalidSubnet { .. }), "{bad}: {e}");
    }
}

#[test]
fn ipam_lowest_free_fixed_release_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = Ipam::new(dir.path(), Subnet::DEFAULT, ip("10.88.0.1")).unwrap();
    assert_eq!(ipam.allocate("a", None).unwrap(), ip("10.88.0.2"));
    assert_eq!(ipam.allocate("b", None).unwrap(), ip("10.88.0.3"));
    // Same VM again: same address.
    assert_eq!(ipam.allocate("a", None).unwrap(), ip("10.88.0.2"));
    assert_eq!(
        ipam.allocate("c", Some(ip("10.88.0.50"))).unwrap(),
        ip("10.88.0.50")
    );
    assert!(ipam.release("a").unwrap());
    assert!(!ipam.release("a").unwrap());
    // The lowest free address is reused.
    assert_eq!(ipam.allocate("d", None).unwrap(), ip("10.88.0.2"));

    // A new instance reads the same leases.
    let again = Ipam::new(dir.path(), Subnet::DEFAULT, ip("10.88.0.1")).unwrap();
    let leases = again.leases().unwrap();
    assert_eq!(leases.len(), 3);
    assert_eq!(leases["b"], ip("10.88.0.3"));
    assert_eq!(leases["c"], ip("10.88.0.50"));
    assert_eq!(again.allocate("e", None).unwrap(), ip("10.88.0.4"));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("leases.json")]);
}

#[test]
fn ipam_fixed_address_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = Ipam::new(dir.path(), Subnet::DEFAULT, ip("10.88.0.1")).unwrap();
    ipam.allocate("a", Some(ip("10.88.0.9"))).unwrap();

    let e = ipam.allocate("b", Some(ip("10.88.0.9"))).unwrap_err();
    assert!(matches!(e, NetError::AddressTaken { ref owner, .. } if owner == "a"));
    assert!(e.to_string().contains("stop a first"), "{e}");

    let e = ipam.allocate("b", Some(ip("192.168.1.5"))).unwrap_err();
    assert!(matches!(e, NetError::OutsideSubnet { .. }));
    assert!(e.to_string().contains("10.88.0.0/24"), "{e}");

    for (addr, what) in [
        ("10.88.0.1", "gateway"),
        ("10.88.0.0", "network"),
        ("10.88.0.255", "broadcast"),
    ] {
        let e = ipam.allocate("b", Some(ip(addr))).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
    }
    // Nothing was leased to b.
    assert!(!ipam.leases().unwrap().contains_key("b"));
    // A VM may move to another fixed address.
    assert_eq!(
        ipam.allocate("a", Some(ip("10.88.0.10"))).unwrap(),
        ip("10.88.0.10")
    );
    assert_eq!(ipam.leases().unwrap().len(), 1);
}

#[test]
fn ipam_exhaustion_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let subnet: Subnet = "10.0.0.0/29".parse().unwrap(); // hosts .1-.6, gateway .1
    let ipam = Ipam::new(dir.path(), subnet, subnet.first_host()).unwrap();
    for i in 0..5 {
        ipam.allocate(&format!("vm{i}"), None).unwrap();
    }
    let e = ipam.allocate("one-too-many", None).unwrap_err();
    assert!(matches!(e, NetError::Exhausted { leased: 5, .. }), "{e}");
    assert!(e.to_string().contains("10.0.0.0/29"), "{e}");
}

#[test]
fn ipam_corrupt_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = Ipam::new(dir.path(), Subnet::DEFAULT, ip("10.88.0.1")).unwrap();
    for junk in [
        "{not json",
        r#"{"leases": {"a": "not-an-ip"}}"#,
        r#"{"leases": {"a": "10.88.0.2", "b": "10.88.0.2"}}"#,
        r#"[1, 2]"#,
    ] {
        std::fs::write(ipam.path(), junk).unwrap();
        let e = ipam.allocate("x", None).unwrap_err();
        assert!(matches!(e, NetError::CorruptLeases { .. }), "{junk}: {e}");
        assert!(e.to_string().contains("leases.json"), "{e}");
    }
}

#[test]
fn gateway_must_be_a_host_of_the_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.gateway = Some(ip("10.99.0.1"));
    let e = BridgeNetwork::new(Arc::new(FakeNetOps::new(false)), s)
        .err()
        .unwrap();
    assert!(e.to_string().contains("10.99.0.1"), "{e}");
}

#[tokio::test]
async fn attach_builds_bridge_tap_and_nat() {
    let (_dir, fake, net) = setup(true);
    let lease = net.attach("web", &bridge_cfg(None)).await.unwrap();
    assert_eq!(lease.tap, tap_name("web"));
    assert_eq!(lease.mac, mac_for("web"));
    assert_eq!(lease.address, ip("10.88.0.2"));
    assert_eq!((lease.prefix, lease.gateway), (24, ip("10.88.0.1")));
    assert!(lease.warnings.is_empty(), "{:?}", lease.warnings);
    assert_eq!(
        lease.cmdline(),
        "vimana.ip=10.88.0.2/24 vimana.gw=10.88.0.1"
    );
    let tap = lease.tap.clone();
    assert_eq!(
        fake.take_calls(),
        vec![
            "create_bridge vimana0".to_string(),
            "add_address vimana0 10.88.0.1/24".into(),
            "set_up vimana0".into(),
            format!("create_tap {tap} owner=Some(1000)"),
            format!("attach_to_bridge {tap} vimana0"),
            format!("set_up {tap}"),
            "enable_ip_forward".into(),
            "nft_apply vimana".into(),
        ]
    );
    {
        let s = fake.state();
        let l = &s.links[&tap];
        assert!(l.up && l.controller.as_deref() == Some("vimana0"));
        assert!(s.links["vimana0"].up);
        let rules = &s.nft_tables["vimana"];
        assert!(rules.contains("ip saddr 10.88.0.0/24"), "{rules}");
        assert!(rules.contains("masquerade"), "{rules}");
    }

    // A second VM: the bridge exists already, next address.
    let mut cfg = bridge_cfg(None);
    cfg.host_interface = Some("eth0".into());
    let db = net.attach("db", &cfg).await.unwrap();
    assert_eq!(db.address, ip("10.88.0.3"));
    let calls = fake.take_calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("create_bridge")),
        "{calls:?}"
    );
    assert!(fake.state().nft_tables["vimana"].contains("oifname \"eth0\""));

    // The lease round-trips through the VM handle (warnings excepted).
    let json = serde_json::to_value(&db).unwrap();
    let back: TapLease = serde_json::from_value(json).unwrap();
    assert_eq!(back, db);
    assert_eq!(
        back.net_spec(),
        NetSpec::Tap {
            tap: tap_name("db"),
            mac: mac_for("db")
        }
    );

    // Detach: tap gone, address free, idempotent.
    net.detach(&lease).await.unwrap();
    net.detach(&lease).await.unwrap();
    assert!(!fake.state().links.contains_key(&tap));
    assert!(!net.ipam().leases().unwrap().contains_key("web"));
    assert_eq!(fake.links_of(FakeKind::Tap), vec![tap_name("db")]);
    // Its address goes to the next VM.
    let next = net.attach("cache", &bridge_cfg(None)).await.unwrap();
    assert_eq!(next.address, ip("10.88.0.2"));
}

#[tokio::test]
async fn no_nft_is_a_warning_and_dns_reaches_the_cmdline() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeNetOps::new(false));
    let mut s = settings(dir.path());
    s.dns = Some(ip("9.9.9.9"));
    let net = BridgeNetwork::new(fake.clone(), s).unwrap();
    let lease = net
        .attach("web", &bridge_cfg(Some(ip("10.88.0.77"))))
        .await
        .unwrap();
    assert_eq!(lease.address, ip("10.88.0.77"));
    assert_eq!(lease.warnings.len(), 1);
    assert!(
        lease.warnings[0].contains("nft is not installed"),
        "{:?}",
        lease.warnings
    );
    assert_eq!(
        lease.cmdline(),
        "vimana.ip=10.88.0.77/24 vimana.gw=10.88.0.1 vimana.dns=9.9.9.9"
    );
    let calls = fake.take_calls();
    assert!(!calls.iter().any(|c| c.starts_with("nft")), "{calls:?}");
}

#[tokio::test]
async fn attach_refuses_other_modes_and_bad_addresses() {
    let (_dir, fake, net) = setup(true);
    let cfg = NetworkConfig {
        mode: NetworkMode::User,
        ..NetworkConfig::default()
    };
    let e = net.attach("web", &cfg).await.unwrap_err();
    assert!(e.to_string().contains("mode = \"user\""), "{e}");

    let e = net
        .attach("web", &bridge_cfg(Some(ip("172.16.0.2"))))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::OutsideSubnet { .. }), "{e}");
    assert!(fake.take_calls().is_empty());
}

#[tokio::test]
async fn failed_attach_leaves_nothing_behind() {
    let (_dir, fake, net) = setup(true);
    fake.state().deny.push("attach_to_bridge");
    let e = net.attach("web", &bridge_cfg(None)).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("needs CAP_NET_ADMIN: run the daemon as root"),
        "{e}"
    );
    assert!(fake.links_of(FakeKind::Tap).is_empty());
    assert!(net.ipam().leases().unwrap().is_empty());

    // A permission error creating the bridge names it.
    let (_dir, fake, net) = setup(true);
    fake.state().deny.push("create_bridge");
    let e = net.attach("web", &bridge_cfg(None)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "create bridge vimana0 needs CAP_NET_ADMIN: run the daemon as root"
    );
    assert!(net.ipam().leases().unwrap().is_empty());
}

#[tokio::test]
async fn attach_replaces_a_leftover_tap() {
    let (_dir, fake, net) = setup(false);
    let first = net.attach("web", &bridge_cfg(None)).await.unwrap();
    // The daemon died; the VM is booted again without a detach.
    fake.take_calls();
    let again = net.attach("web", &bridge_cfg(None)).await.unwrap();
    assert_eq!(again.address, first.address);
    let calls = fake.take_calls();
    let tap = tap_name("web");
    assert!(calls.contains(&format!("delete_link {tap}")), "{calls:?}");
    assert_eq!(fake.links_of(FakeKind::Tap), vec![tap]);
}

#[tokio::test]
async fn cleanup_orphans_keeps_live_vms_only() {
    let (_dir, fake, net) = setup(false);
    for vm in ["a", "b", "c"] {
        net.attach(vm, &bridge_cfg(None)).await.unwrap();
    }
    // A foreign link with another prefix is never touched.
    fake.state().links.insert(
        "eth0".into(),
        fake::FakeLink {
            kind: FakeKind::Other,
            up: true,
            controller: None,
            addresses: Vec::new(),
            owner: None,
        },
    );
    let report = net.cleanup_orphans(["b"]).await.unwrap();
    let mut want = vec![tap_name("a"), tap_name("c")];
    want.sort();
    let mut got = report.taps.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(report.leases, vec!["a".to_string(), "c".to_string()]);
    assert_eq!(fake.links_of(FakeKind::Tap), vec![tap_name("b")]);
    assert!(fake.state().links.contains_key("eth0"));
    assert!(fake.state().links.contains_key("vimana0"));

    let report = net.cleanup_orphans(Vec::<String>::new()).await.unwrap();
    assert_eq!(report.taps, vec![tap_name("b")]);
    assert!(fake.links_of(FakeKind::Tap).is_empty());
    assert!(net.ipam().leases().unwrap().is_empty());
    // Nothing left: a no-op.
    assert_eq!(
        net.cleanup_orphans(Vec::<String>::new()).await.unwrap(),
        CleanupReport::default()
    );
}

#[tokio::test]
async fn teardown_removes_nat_and_bridge() {
    let (_dir, fake, net) = setup(true);
    let lease = net.attach("a", &bridge_cfg(None)).await.unwrap();
    net.detach(&lease).await.unwrap();
    net.teardown().await.unwrap();
    let s = fake.state();
    assert!(s.links.is_empty());
    assert!(s.nft_tables.is_empty());
}

#[test]
fn resolver_skips_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("resolv.conf");
    std::fs::write(
        &p,
        "# x\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 1.1.1.1\n",
    )
    .unwrap();
    assert_eq!(host_resolver(&p), Some(ip("1.1.1.1")));
    std::fs::write(&p, "nameserver 127.0.0.53\n").unwrap();
    assert_eq!(host_resolver(&p), None);
}

fn with_forwards(ports: &[(u16, u16)]) -> NetworkConfig {
    NetworkConfig {
        forwards: ports
            .iter()
            .map(|&(host, guest)| PortForward {
                host,
                guest,
                protocol: crate::model::Protocol::Tcp,
            })
            .collect(),
        ..bridge_cfg(None)
    }
}

/// A high port nothing on this host listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn forwards_get_a_dnat_table_and_are_claimed_once() {
    let (dir, fake, net) = setup(true);
    let port = free_port();
    let lease = net
        .attach("web", &with_forwards(&[(port, 80)]))
        .await
        .unwrap();
    let table = forward_table(&lease.tap);
    {
        let s = fake.state();
        let rules = s.nft_tables.get(&table).expect("the VM's forward table");
        let rule = format!("fib daddr type local tcp dport {port} dnat to 10.88.0.2:80");
        assert_eq!(
            rules.matches(&rule).count(),
            2,
            "prerouting + output: {rules}"
        );
        assert!(
            rules
                .contains("ip saddr 127.0.0.0/8 oifname \"vimana0\" ip daddr 10.88.0.2 masquerade"),
            "{rules}"
        );
        assert_eq!(s.route_localnet, vec!["vimana0".to_string()]);
        // route_localnet only behind the guard that keeps guests off the
        // host's loopback (CVE-2020-8558).
        let guard = &s.nft_tables[LOCALNET_GUARD_TABLE];
        assert!(
            guard
                .contains("iifname \"vimana0\" ip daddr 127.0.0.0/8 ct status & dnat != dnat drop"),
            "{guard}"
        );
        let at = |c: &str| s.calls.iter().position(|x| x == c).unwrap();
        assert!(
            at(&format!("nft_apply {LOCALNET_GUARD_TABLE}")) < at("enable_route_localnet vimana0"),
            "{:?}",
            s.calls
        );
    }
    // Another VM cannot take the port; nothing of it is left behind.
    let err = net
        .attach("db", &with_forwards(&[(port, 5432)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::PortTaken { port: p, owner, .. } if *p == port && owner == "web"),
        "{err}"
    );
    assert!(err.to_string().contains("pick another host port"), "{err}");
    assert!(!net.ipam().leases().unwrap().contains_key("db"));
    assert!(!fake.state().links.contains_key(&tap_name("db")));
    // A port something on the host listens on is refused too.
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = net
        .attach("db", &with_forwards(&[(busy_port, 5432)]))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::PortInUse { .. }), "{err}");
    // Detach removes the table and the claim; the port is free again.
    net.detach(&lease).await.unwrap();
    assert!(!fake.state().nft_tables.contains_key(&table));
    let claims = std::fs::read_to_string(dir.path().join(ForwardBook::FILE)).unwrap();
    assert!(!claims.contains("web"), "{claims}");
    net.attach("db", &with_forwards(&[(port, 5432)]))
        .await
        .unwrap();
}

#[tokio::test]
async fn forwards_without_nft_fail_and_leave_nothing() {
    let (_dir, fake, net) = setup(false);
    let err = net
        .attach("web", &with_forwards(&[(free_port(), 80)]))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::ForwardsNeedNft), "{err}");
    assert!(
        err.to_string().contains("apt-get install nftables"),
        "{err}"
    );
    assert!(net.ipam().leases().unwrap().is_empty());
    assert!(!fake.state().links.contains_key(&tap_name("web")));
}

#[tokio::test]
async fn orphan_cleanup_removes_forward_tables() {
    let (_dir, fake, net) = setup(true);
    let lease = net
        .attach("gone", &with_forwards(&[(free_port(), 80)]))
        .await
        .unwrap();
    let table = forward_table(&lease.tap);
    assert!(fake.state().nft_tables.contains_key(&table));
    net.cleanup_orphans(Vec::<String>::new()).await.unwrap();
    assert!(!fake.state().nft_tables.contains_key(&table));
}
