//! Host port forwards in bridge mode (`forwards = ["8080:80"]`): one
//! nftables table per VM (`vimana-<tap>`) that DNATs connections to a host
//! address (loopback included) on the host port to the guest, and the
//! claims of every VM in `<state_dir>/forwards.json`, so two VMs never get
//! the same host port.
//!
//! Forwards from loopback need `route_localnet` on the bridge, which also
//! lets a guest that routes 127.0.0.0/8 to the bridge reach every service
//! bound to the host's loopback (CVE-2020-8558). The guard table
//! ([`localnet_guard_ruleset`]) is applied before `route_localnet` is
//! turned on and drops such packets; only the replies of the DNATed
//! forwards pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::model::{PortForward, Protocol};

use super::error::NetError;

/// The nftables table (family `ip`) that keeps guests off the host's
/// loopback once `route_localnet` is on.
pub const LOCALNET_GUARD_TABLE: &str = "vimana-localnet";

/// Drops what arrives from `bridge` for 127.0.0.0/8 unless it belongs to a
/// DNATed connection (the replies of a loopback forward, de-NATed back to
/// 127.0.0.1 before the input hook).
pub fn localnet_guard_ruleset(table: &str, bridge: &str) -> String {
    format!(
        "table ip {table} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname \"{bridge}\" ip daddr 127.0.0.0/8 ct status & dnat != dnat drop\n\
         \t}}\n\
         }}"
    )
}

/// The nftables table (family `ip`) with the forwards of the VM on `tap`.
pub fn forward_table(tap: &str) -> String {
    format!("vimana-{tap}")
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// The table that forwards `forwards` to `guest` behind `bridge`: DNAT for
/// packets from outside (prerouting) and from the host itself (output),
/// to any local address; connections from loopback are masqueraded on the
/// way to the guest (the bridge needs `route_localnet`). The output chain
/// says `-100` because nft 1.0.6 (Debian 12) rejects the `dstnat` keyword
/// on that hook.
pub fn forward_ruleset(
    table: &str,
    bridge: &str,
    guest: Ipv4Addr,
    forwards: &[PortForward],
) -> String {
    let mut rules = String::new();
    for f in forwards {
        let _ = writeln!(
            rules,
            "\t\tfib daddr type local {} dport {} dnat to {guest}:{}",
            proto(f.protocol),
            f.host,
            f.guest
        );
    }
    format!(
        "table ip {table} {{\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         {rules}\
         \t}}\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         {rules}\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr 127.0.0.0/8 oifname \"{bridge}\" ip daddr {guest} masquerade\n\
         \t}}\n\
         }}"
    )
}

/// Which VM holds which host ports, persisted as JSON (written atomically).
#[derive(Clone, Debug)]
pub struct ForwardBook {
    path: PathBuf,
}

impl ForwardBook {
    /// The file's name inside the state directory.
    pub const FILE: &'static str = "forwards.json";

    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(Self::FILE),
        }
    }

    /// VM → its forwards (an absent file means none).
    pub fn load(&self) -> Result<BTreeMap<String, Vec<PortForward>>, NetError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| NetError::CorruptLeases {
                path: self.path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(NetError::LeaseIo {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn save(&self, book: &BTreeMap<String, Vec<PortForward>>) -> Result<(), NetError> {
        super::ipam::save_json(&self.path, book)
    }

    /// Records `forwards` for `vm` (replacing its earlier ones); fails
    /// without a change when another VM holds one of the host ports.
    pub fn claim(&self, vm: &str, forwards: &[PortForward]) -> Result<(), NetError> {
        let mut book = self.load()?;
        for f in forwards {
            let owner = book.iter().find(|(other, held)| {
                other.as_str() != vm
                    && held
                        .iter()
                        .any(|h| h.host == f.host && h.protocol == f.protocol)
            });
            if let Some((owner, _)) = owner {
                return Err(NetError::PortTaken {
                    port: f.host,
                    protocol: proto(f.protocol),
                    owner: owner.clone(),
                });
            }
        }
        if forwards.is_empty() {
            book.remove(vm);
        } else {
            book.insert(vm.to_string(), forwards.to_vec());
        }
        self.save(&book)
    }

    /// Drops the claims of `vm`.
    pub fn release(&self, vm: &str) -> Result<(), NetError> {
        let mut book = self.load()?;
        if book.remove(vm).is_some() {
            self.save(&book)?;
        }
        Ok(())
    }

    /// Drops the claims of VMs for which `keep` is false; returns them.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, NetError> {
        let mut book = self.load()?;
        let gone: Vec<String> = book.keys().filter(|v| !keep(v)).cloned().collect();
        if !gone.is_empty() {
            book.retain(|v, _| keep(v));
            self.save(&book)?;
        }
        Ok(gone)
    }
}

/// Whether the host port is free for a forward: nothing on the host
/// listens on it (a DNAT rule would silently take its traffic).
pub fn host_port_free(f: &PortForward) -> Result<(), NetError> {
    let addr = (Ipv4Addr::UNSPECIFIED, f.host);
    let bound = match f.protocol {
        Protocol::Tcp => std::net::TcpListener::bind(addr).map(drop),
        Protocol::Udp => std::net::UdpSocket::bind(addr).map(drop),
    };
    match bound {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::PortInUse {
            port: f.host,
            protocol: proto(f.protocol),
        }),
        _ => Ok(()),
    }
}
