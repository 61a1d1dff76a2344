//! Guest addresses: a subnet, its gateway, and leases (VM name → address)
//! kept in a small JSON file so they survive daemon restarts.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::NetError;

/// An IPv4 subnet such as `10.88.0.0/24` (host bits are cleared on parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// vimana's default bridge subnet, `10.88.0.0/24`.
    pub const DEFAULT: Subnet = Subnet {
        network: Ipv4Addr::new(10, 88, 0, 0),
        prefix: 24,
    };

    /// A subnet with room for a gateway and at least one guest
    /// (prefix 1..=30).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, NetError> {
        if !(1..=30).contains(&prefix) {
            return Err(NetError::InvalidSubnet {
                subnet: format!("{addr}/{prefix}"),
                reason: "the prefix length must be between 1 and 30 (room for a gateway and \
                         a guest)"
                    .into(),
            });
        }
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        Ok(Subnet { network, prefix })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// The first host address (`.1` of a /24): the default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Host addresses, lowest first (network and broadcast excluded).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let first = u32::from(self.network) + 1;
        let last = u32::from(self.broadcast()) - 1;
        (first..=last).map(Ipv4Addr::from)
    }

    /// Why `addr` cannot be a guest's address, if it cannot.
    pub(crate) fn reserved(&self, addr: Ipv4Addr, gateway: Ipv4Addr) -> Option<&'static str> {
        if addr == self.network {
            Some("the network address")
        } else if addr == self.broadcast() {
            Some("the broadcast address")
        } else if addr == gateway {
            Some("the bridge's gateway address")
        } else {
            None
        }
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl Default for Subnet {
    fn default() -> Self {
        Subnet::DEFAULT
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| invalid("expected <address>/<prefix>, e.g. 10.88.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .map_err(|_| invalid("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .trim()
            .parse()
            .map_err(|_| invalid("the prefix length is not a number"))?;
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the lease file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseFile {
    /// VM name → guest address.
    leases: BTreeMap<String, Ipv4Addr>,
}

/// Address allocation within one subnet, persisted in
/// `<state_dir>/leases.json`.
///
/// Every operation reads the file, changes it and writes it back
/// atomically (temporary file + rename), so the file is the only state;
/// callers serialize operations (see [`BridgeNetwork`](super::BridgeNetwork)).
#[derive(Clone, Debug)]
pub struct Ipam {
    path: PathBuf,
    subnet: Subnet,
    gateway: Ipv4Addr,
}

impl Ipam {
    /// The lease file's name inside the state directory.
    pub const FILE: &'static str = "leases.json";

    pub fn new(state_dir: &Path, subnet: Subnet, gateway: Ipv4Addr) -> Result<Ipam, NetError> {
        if !subnet.contains(gateway) || subnet.reserved(gateway, Ipv4Addr::UNSPECIFIED).is_some() {
            return Err(NetError::InvalidSubnet {
                subnet: subnet.to_string(),
                reason: format!("the gateway {gateway} is not a host address of the subnet"),
            });
        }
        Ok(Ipam {
            path: state_dir.join(Self::FILE),
            subnet,
            gateway,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The current leases (an absent file means none).
    pub fn leases(&self) -> Result<BTreeMap<String, Ipv4Addr>, NetError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(NetError::LeaseIo {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: LeaseFile = serde_json::from_str(&text).map_err(|e| NetError::CorruptLeases {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut seen = BTreeMap::new();
        for (vm, addr) in &file.leases {
            if let Some(other) = seen.insert(*addr, vm) {
                return Err(NetError::CorruptLeases {
                    path: self.path.clone(),
                    reason: format!("{addr} is leased to both {other} and {vm}"),
                });
            }
        }
        Ok(file.leases)
    }

    fn save(&self, leases: BTreeMap<String, Ipv4Addr>) -> Result<(), NetError> {
        save_json(&self.path, &LeaseFile { leases })
    }

    /// The address of `vm`: its existing lease, else `fixed` (which must be
    /// a free host address of the subnet), else the lowest free one.
    pub fn allocate(&self, vm: &str, fixed: Option<Ipv4Addr>) -> Result<Ipv4Addr, NetError> {
        let mut leases = self.leases()?;
        let current = leases.get(vm).copied();
        let addr = match fixed {
            Some(addr) if current == Some(addr) => return Ok(addr),
            Some(addr) => {
                if !self.subnet.contains(addr) {
                    return Err(NetError::OutsideSubnet {
                        address: addr,
                        subnet: self.subnet.to_string(),
                    });
                }
                if let Some(what) = self.subnet.reserved(addr, self.gateway) {
                    return Err(NetError::ReservedAddress {
                        address: addr,
                        subnet: self.subnet.to_string(),
                        what,
                    });
                }
                if let Some((owner, _)) = leases.iter().find(|(n, a)| **a == addr && *n != vm) {
                    return Err(NetError::AddressTaken {
                        address: addr,
                        owner: owner.clone(),
                    });
                }
                addr
            }
            None => {
                if let Some(addr) = current.filter(|a| self.subnet.contains(*a)) {
                    return Ok(addr);
                }
                let used: std::collections::BTreeSet<Ipv4Addr> = leases
                    .iter()
                    .filter(|(n, _)| *n != vm)
                    .map(|(_, a)| *a)
                    .collect();
                self.subnet
                    .hosts()
                    .find(|a| *a != self.gateway && !used.contains(a))
                    .ok_or_else(|| NetError::Exhausted {
                        subnet: self.subnet.to_string(),
                        leased: used.len(),
                    })?
            }
        };
        leases.insert(vm.to_string(), addr);
        self.save(leases)?;
        Ok(addr)
    }

    /// Drops the lease of `vm`; `false` when it had none.
    pub fn release(&self, vm: &str) -> Result<bool, NetError> {
        let mut leases = self.leases()?;
        if leases.remove(vm).is_none() {
            return Ok(false);
        }
        self.save(leases)?;
        Ok(true)
    }

    /// Drops the leases of VMs for which `keep` is false; returns their
    /// names.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, NetError> {
        let mut leases = self.leases()?;
        let gone: Vec<String> = leases.keys().filter(|n| !keep(n)).cloned().collect();
        if gone.is_empty() {
            return Ok(gone);
        }
        for n in &gone {
            leases.remove(n);
        }
        self.save(leases)?;
        Ok(gone)
    }
}

/// Writes `value` as pretty JSON to `path` atomically (temporary file,
/// fsync, rename), creating the directory; the state files of the bridge
/// network (leases, forwards) are only ever replaced whole.
pub(crate) fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), NetError> {
    let io = |source| NetError::LeaseIo {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| io(std::io::Error::other(e)))?;
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
