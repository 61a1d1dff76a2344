//! A guest on the bridge must not reach the host's loopback (the
//! `route_localnet` hole of CVE-2020-8558), while the VM's declared port
//! forwards (DNAT, loopback included) keep working. Real kernel, nftables
//! and sockets: a "host" namespace gets the bridge and the VM's forward
//! through [`BridgeNetwork`], a "guest" namespace is wired to the bridge by
//! a veth pair and holds the VM's leased address. Needs root, `ip`, `nft`;
//! skipped with a reason otherwise, unless `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use vimana_vm::network::{BridgeNetwork, BridgeSettings, TapLease};
use vimana_vm::{NetworkConfig, NetworkMode, PortForward, Protocol};

#[path = "support/netns.rs"]
mod netns;

use netns::{Netns, in_netns};

const FORWARD_PORT: u16 = 18080;
const GUEST_PORT: u16 = 8080;

/// Accepts connections on `listener` forever, greeting each with `text`.
fn greet(listener: TcpListener, text: &'static str) {
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(text.as_bytes());
        }
    });
}

/// What a connection to `addr` reads, or why it failed.
fn fetch(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read: {e}"))?;
    Ok(text)
}

/// The bridge and VM `web` with one forward, set up in `host`.
fn attach(host: &Netns, state: std::path::PathBuf) -> TapLease {
    in_netns(host, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let net = BridgeNetwork::on_host(BridgeSettings::under(&state)).unwrap();
            let config = NetworkConfig {
                mode: NetworkMode::Bridge,
                forwards: vec![PortForward {
                    host: FORWARD_PORT,
                    guest: GUEST_PORT,
                    protocol: Protocol::Tcp,
                }],
                ..NetworkConfig::default()
            };
            net.attach("web", &config).await.unwrap()
        })
    })
}

#[test]
fn bridge_guests_cannot_reach_the_hosts_loopback_but_forwards_work() {
    if let Err(reason) = netns::precondition() {
        vimana_testkit::unavailable::<()>(reason);
        return;
    }
    if !netns::nft_installed() {
        vimana_testkit::unavailable::<()>("nft is not installed (apt-get install nftables)");
        return;
    }
    let (host, guest) = match (Netns::create("vlh"), Netns::create("vlg")) {
        (Ok(h), Ok(g)) => (h, g),
        (Err(e), _) | (_, Err(e)) => {
            vimana_testkit::unavailable::<()>(e);
            return;
        }
    };
    host.ip(&["link", "set", "lo", "up"]);
    let state = tempfile::tempdir().unwrap();
    let lease = attach(&host, state.path().to_path_buf());

    // The "guest": the lease's address behind a veth on the bridge, with
    // 127.0.0.0/8 routed to the bridge and route_localnet on, as a hostile
    // guest would set it up.
    host.ip(&[
        "link", "add", "vl-h", "type", "veth", "peer", "name", "vl-g", "netns", &guest.0,
    ]);
    host.ip(&["link", "set", "vl-h", "master", "vimana0", "up"]);
    let addr = format!("{}/{}", lease.address, lease.prefix);
    guest.ip(&["addr", "add", &addr, "dev", "vl-g"]);
    guest.ip(&["link", "set", "vl-g", "up"]);
    let gw = lease.gateway.to_string();
    guest.ip(&["route", "add", "127.0.0.0/8", "via", &gw, "dev", "vl-g"]);
    guest.sysctl("net.ipv4.conf.all.route_localnet=1");
    guest.sysctl("net.ipv4.conf.vl-g.route_localnet=1");

    let secret = in_netns(&host, || TcpListener::bind("127.0.0.1:0").unwrap());
    let secret_addr = secret.local_addr().unwrap();
    greet(secret, "host-loopback-only");
    let service = in_netns(&guest, || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, GUEST_PORT)).unwrap()
    });
    greet(service, "hello-from-the-guest");

    // The declared forward still reaches the guest, from the host's
    // loopback and from the bridge address.
    for target in [Ipv4Addr::LOCALHOST, lease.gateway] {
        let addr = SocketAddr::from((target, FORWARD_PORT));
        let got = in_netns(&host, move || fetch(addr));
        assert_eq!(
            got.as_deref(),
            Ok("hello-from-the-guest"),
            "forward via {addr}"
        );
    }
    // The guest reaches nothing on the host's loopback.
    let got = in_netns(&guest, move || fetch(secret_addr));
    assert!(
        got.is_err(),
        "a guest on the bridge reached the host's {secret_addr}: {got:?}"
    );
}
