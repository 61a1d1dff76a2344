//! Bridge networking for microVMs (`[network] mode = "bridge"`).
//!
//! Every VM gets a persistent TAP device `vt-<hash>` enslaved to the host
//! bridge `vimana0`, which carries the gateway address of the subnet
//! (default `10.88.0.0/24`, gateway `10.88.0.1`). The guest's address is
//! leased from the subnet ([`Ipam`], persisted as JSON in the state
//! directory) or is the VM's fixed `address`, and reaches the guest on the
//! kernel command line ([`TapLease::cmdline`]). With NAT enabled and `nft`
//! installed, the subnet is masqueraded towards the outside (through the
//! VM's `host_interface` when it names one); without `nft` that is a
//! warning, not an error.
//!
//! The host is reached through [`NetOps`]: [`NetlinkOps`] for real,
//! [`fake::FakeNetOps`] in tests.
//!
//! ## Use from the driver
//!
//! One [`BridgeNetwork`] per daemon (share it in an `Arc`):
//! - at start, [`BridgeNetwork::cleanup_orphans`] with the names of the VMs
//!   that still exist, so taps and leases of VMs that are gone (a crash)
//!   are removed;
//! - before booting a bridge-mode VM, [`BridgeNetwork::attach`]; put
//!   [`TapLease::net_spec`] in the launch spec, append
//!   [`TapLease::cmdline`] to the kernel command line and keep the lease in
//!   the VM's handle;
//! - after the VM stopped (or failed to boot), [`BridgeNetwork::detach`].

mod error;
pub mod fake;
mod forwards;
mod ipam;
mod netlink;
mod ops;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use error::NetError;
pub use forwards::{
    ForwardBook, LOCALNET_GUARD_TABLE, forward_ruleset, forward_table, localnet_guard_ruleset,
};
pub use ipam::{Ipam, Subnet};
pub use netlink::NetlinkOps;
pub use ops::NetOps;

use crate::model::{NetworkConfig, NetworkMode, PortForward};
use crate::provider::NetSpec;

/// The default bridge.
pub const DEFAULT_BRIDGE: &str = "vimana0";
/// Prefix of every VM tap device.
pub const TAP_PREFIX: &str = "vt-";
/// The nftables table (family `ip`) holding vimana's NAT rules.
pub const NFT_TABLE: &str = "vimana";

/// The tap device of VM `vm`: `vt-` + 12 hex digits of a hash of the name
/// (15 characters, the kernel's limit).
pub fn tap_name(vm: &str) -> String {
    let digest = Sha256::digest(vm.as_bytes());
    let mut name = String::from(TAP_PREFIX);
    for b in &digest[..6] {
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// The guest MAC of VM `vm`: `52:54:00:xx:xx:xx` (locally administered,
/// unicast) with the last three bytes from a hash of the name.
pub fn mac_for(vm: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"vimana-mac\0");
    h.update(vm.as_bytes());
    let d = h.finalize();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", d[0], d[1], d[2])
}

/// The first IPv4 nameserver of a `resolv.conf` that is not a loopback
/// address (a guest cannot reach the host's 127.0.0.53), if any.
pub fn host_resolver(resolv_conf: &Path) -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string(resolv_conf).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<Ipv4Addr>().ok())
            .flatten()
            .filter(|a| !a.is_loopback())
    })
}

/// Host-wide settings of the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSettings {
    /// Name of the bridge (default `vimana0`).
    pub bridge: String,
    /// The guests' subnet (default `10.88.0.0/24`).
    pub subnet: Subnet,
    /// The bridge's address and the guests' default route; `None`: the
    /// first host address (`10.88.0.1`).
    pub gateway: Option<Ipv4Addr>,
    /// Nameserver given to guests (`vimana.dns=`); `None`: none.
    pub dns: Option<Ipv4Addr>,
    /// Where the lease file lives.
    pub state_dir: PathBuf,
    /// Owner (uid) of the tap devices; `None`: root only.
    pub tap_owner: Option<u32>,
    /// Masquerade the subnet towards the outside (needs `nft`).
    pub nat: bool,
}

impl BridgeSettings {
    /// The defaults, with leases under `state_dir`, taps owned by the
    /// daemon's uid and the host's first usable nameserver for guests.
    pub fn under(state_dir: &Path) -> BridgeSettings {
        BridgeSettings {
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet: Subnet::DEFAULT,
            gateway: None,
            dns: host_resolver(Path::new("/etc/resolv.conf")),
            state_dir: state_dir.to_path_buf(),
            tap_owner: Some(nix::unistd::geteuid().as_raw()),
            nat: true,
        }
    }
}

/// What attaching a VM gave it; stored in the VM's handle so the VM can be
/// detached by a later daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapLease {
    /// The VM the lease belongs to.
    pub vm: String,
    /// The bridge the tap is enslaved to.
    pub bridge: String,
    /// The tap device (`vt-…`).
    pub tap: String,
    /// The guest's MAC address.
    pub mac: String,
    /// The guest's address.
    pub address: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix: u8,
    /// The guest's default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Ipv4Addr>,
    /// Problems that did not stop the attach (e.g. no NAT); for the VM's
    /// log, not persisted.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl TapLease {
    /// The kernel command-line words that configure the guest's `eth0`:
    /// `vimana.ip=<addr>/<prefix> vimana.gw=<gw>` (+ `vimana.dns=<dns>`).
    pub fn cmdline(&self) -> String {
        let mut words = format!(
            "vimana.ip={}/{} vimana.gw={}",
            self.address, self.prefix, self.gateway
        );
        if let Some(dns) = self.dns {
            let _ = write!(words, " vimana.dns={dns}");
        }
        words
    }

    /// The provider's network device for this lease.
    pub fn net_spec(&self) -> NetSpec {
        NetSpec::Tap {
            tap: self.tap.clone(),
            mac: self.mac.clone(),
        }
    }
}

/// What [`BridgeNetwork::cleanup_orphans`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Tap devices deleted.
    pub taps: Vec<String>,
    /// VMs whose lease was released.
    pub leases: Vec<String>,
}

/// The bridge, its subnet and the VMs' taps. Operations are serialized;
/// use one instance per daemon.
pub struct BridgeNetwork {
    ops: Arc<dyn NetOps>,
    settings: BridgeSettings,
    ipam: Ipam,
    forwards: ForwardBook,
    lock: tokio::sync::Mutex<()>,
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
}

impl BridgeNetwork {
    /// Checks the settings (bridge name, gateway inside the subnet).
    pub fn new(ops: Arc<dyn NetOps>, settings: BridgeSettings) -> Result<Self, NetError> {
        if !valid_ifname(&settings.bridge) {
            return Err(NetError::InvalidSubnet {
                subnet: settings.subnet.to_string(),
                reason: format!(
                    "bridge name {:?} is not a valid interface name (1 to 15 letters, digits, \
                     '-', '_' or '.')",
                    settings.bridge
                ),
            });
        }
        let gateway = settings
            .gateway
            .unwrap_or_else(|| settings.subnet.first_host());
        let ipam = Ipam::new(&settings.state_dir, settings.subnet, gateway)?;
        let forwards = ForwardBook::new(&settings.state_dir);
        Ok(BridgeNetwork {
            ops,
            settings,
            ipam,
            forwards,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// On the real host, through netlink (inside a tokio runtime; the
    /// network namespace is the calling thread's).
    pub fn on_host(settings: BridgeSettings) -> Result<Self, NetError> {
        Self::new(Arc::new(NetlinkOps::connect()?), settings)
    }

    pub fn settings(&self) -> &BridgeSettings {
        &self.settings
    }

    pub fn ipam(&self) -> &Ipam {
        &self.ipam
    }

    /// Puts VM `vm` on the bridge: creates the bridge if needed, leases an
    /// address, creates the tap (replacing a leftover one of the same VM)
    /// and sets up NAT. On error nothing new is left behind.
    ///
    /// Call it only for a VM that is not running: its tap is recreated.
    pub async fn attach(&self, vm: &str, config: &NetworkConfig) -> Result<TapLease, NetError> {
        if config.mode != NetworkMode::Bridge {
            let mode = serde_json::to_value(config.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(NetError::NotBridgeMode {
                vm: vm.into(),
                mode,
            });
        }
        let _guard = self.lock.lock().await;
        let had_lease = self.ipam.leases()?.contains_key(vm);
        let address = self.ipam.allocate(vm, config.address)?;
        let tap = tap_name(vm);
        if let Err(e) = self.plumb(&tap).await {
            let _ = self.ops.delete_link(&tap).await;
            if !had_lease {
                let _ = self.ipam.release(vm);
            }
            return Err(e);
        }
        if let Err(e) = self.forward(vm, &tap, address, &config.forwards).await {
            let _ = self.ops.delete_link(&tap).await;
            if !had_lease {
                let _ = self.ipam.release(vm);
            }
            return Err(e);
        }
        let warnings = self.nat(config.host_interface.as_deref()).await;
        for w in &warnings {
            tracing::warn!(vm, "{w}");
        }
        Ok(TapLease {
            vm: vm.into(),
            bridge: self.settings.bridge.clone(),
            tap,
            mac: mac_for(vm),
            address,
            prefix: self.ipam.subnet().prefix(),
            gateway: self.ipam.gateway(),
            dns: self.settings.dns,
            warnings,
        })
    }

    /// The bridge with its gateway address, up (repaired if it exists).
    async fn ensure_bridge(&self) -> Result<(), NetError> {
        let bridge = &self.settings.bridge;
        if !self.ops.link_exists(bridge).await? {
            self.ops.create_bridge(bridge).await?;
        }
        self.ops
            .add_address(bridge, self.ipam.gateway(), self.ipam.subnet().prefix())
            .await?;
        self.ops.set_up(bridge).await
    }

    async fn plumb(&self, tap: &str) -> Result<(), NetError> {
        self.ensure_bridge().await?;
        if self.ops.link_exists(tap).await? {
            self.ops.delete_link(tap).await?;
        }
        self.ops.create_tap(tap, self.settings.tap_owner).await?;
        self.ops
            .attach_to_bridge(tap, &self.settings.bridge)
            .await?;
        self.ops.set_up(tap).await
    }

    /// The VM's host port forwards (its nftables table and its claims),
    /// replacing earlier ones; none: whatever it had is removed.
    async fn forward(
        &self,
        vm: &str,
        tap: &str,
        guest: Ipv4Addr,
        forwards: &[PortForward],
    ) -> Result<(), NetError> {
        let table = forward_table(tap);
        if forwards.is_empty() {
            if self.forwards.load()?.contains_key(vm) {
                if self.ops.nft_available() {
                    self.ops.nft_remove(&table).await?;
                }
                self.forwards.release(vm)?;
            }
            return Ok(());
        }
        if !self.ops.nft_available() {
            return Err(NetError::ForwardsNeedNft);
        }
        for f in forwards {
            forwards::host_port_free(f)?;
        }
        self.forwards.claim(vm, forwards)?;
        let applied = async {
            self.ops.enable_ip_forward().await?;
            // The guard first: route_localnet without it opens the host's
            // loopback to every guest on the bridge.
            let guard = localnet_guard_ruleset(LOCALNET_GUARD_TABLE, &self.settings.bridge);
            self.ops.nft_apply(LOCALNET_GUARD_TABLE, &guard).await?;
            self.ops
                .enable_route_localnet(&self.settings.bridge)
                .await?;
            let rules = forward_ruleset(&table, &self.settings.bridge, guest, forwards);
            self.ops.nft_apply(&table, &rules).await
        }
        .await;
        if applied.is_err() {
            let _ = self.forwards.release(vm);
        }
        applied
    }

    /// Removes the forwards of `vm` (on `tap`), if it has any.
    async fn unforward(&self, vm: &str, tap: &str) -> Result<(), NetError> {
        if !self.forwards.load()?.contains_key(vm) {
            return Ok(());
        }
        if self.ops.nft_available() {
            self.ops.nft_remove(&forward_table(tap)).await?;
        }
        self.forwards.release(vm)
    }

    /// Masquerading for the subnet; every problem is a warning.
    async fn nat(&self, uplink: Option<&str>) -> Vec<String> {
        if !self.settings.nat {
            return Vec::new();
        }
        let subnet = self.ipam.subnet();
        if !self.ops.nft_available() {
            return vec![format!(
                "nft is not installed: VMs on {} ({subnet}) reach the host but not the \
                 outside; install nftables for NAT",
                self.settings.bridge
            )];
        }
        let mut warnings = Vec::new();
        let uplink = match uplink {
            Some(i) if !valid_ifname(i) => {
                warnings.push(format!(
                    "host_interface {i:?} is not a valid interface name: NAT through any \
                     interface"
                ));
                None
            }
            other => other,
        };
        if let Err(e) = self.ops.enable_ip_forward().await {
            warnings.push(format!("VMs cannot reach the outside: {e}"));
        }
        let rules = nat_ruleset(NFT_TABLE, &self.settings.bridge, subnet, uplink);
        if let Err(e) = self.ops.nft_apply(NFT_TABLE, &rules).await {
            warnings.push(format!(
                "NAT for {subnet} is not set up, VMs cannot reach the outside: {e}"
            ));
        }
        warnings
    }

    /// Takes the VM off the bridge: deletes its tap and releases its
    /// address. Idempotent; a lease that was since given to another
    /// attach of the VM with a different address is left alone.
    pub async fn detach(&self, lease: &TapLease) -> Result<(), NetError> {
        let _guard = self.lock.lock().await;
        let unforwarded = self.unforward(&lease.vm, &lease.tap).await;
        let deleted = self.ops.delete_link(&lease.tap).await;
        let released = match self.ipam.leases() {
            Ok(l) if l.get(&lease.vm) == Some(&lease.address) => {
                self.ipam.release(&lease.vm).map(|_| ())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        deleted?;
        unforwarded?;
        released
    }

    /// Takes VM `vm` off the bridge whatever its lease says (it was
    /// removed): its forward table and claims, its tap, its lease.
    /// Idempotent.
    pub async fn forget(&self, vm: &str) -> Result<(), NetError> {
        let _guard = self.lock.lock().await;
        let tap = tap_name(vm);
        let unforwarded = self.unforward(vm, &tap).await;
        let deleted = self.ops.delete_link(&tap).await;
        let released = self.ipam.release(vm).map(|_| ());
        deleted?;
        unforwarded?;
        released
    }

    /// Deletes the taps and releases the leases of VMs not in `live` (at
    /// daemon start: whatever a crash left behind).
    pub async fn cleanup_orphans<I, S>(&self, live: I) -> Result<CleanupReport, NetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let live: BTreeSet<String> = live.into_iter().map(|s| s.as_ref().to_string()).collect();
        let live_taps: BTreeSet<String> = live.iter().map(|v| tap_name(v)).collect();
        let _guard = self.lock.lock().await;
        let mut report = CleanupReport::default();
        let mut first_error = None;
        for tap in self.ops.links_with_prefix(TAP_PREFIX).await? {
            if live_taps.contains(&tap) {
                continue;
            }
            match self.ops.delete_link(&tap).await {
                Ok(true) => report.taps.push(tap),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match self.ipam.retain(|vm| live.contains(vm)) {
            Ok(gone) => report.leases = gone,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        match self.forwards.retain(|vm| live.contains(vm)) {
            Ok(gone) => {
                for vm in gone {
                    if self.ops.nft_available()
                        && let Err(e) = self.ops.nft_remove(&forward_table(&tap_name(&vm))).await
                    {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Removes the NAT table and the bridge (nothing may be attached), then
    /// the loopback guard (its `route_localnet` went with the bridge).
    pub async fn teardown(&self) -> Result<(), NetError> {
        let _guard = self.lock.lock().await;
        if self.settings.nat && self.ops.nft_available() {
            self.ops.nft_remove(NFT_TABLE).await?;
        }
        self.ops.delete_link(&self.settings.bridge).await?;
        if self.ops.nft_available() {
            self.ops.nft_remove(LOCALNET_GUARD_TABLE).await?;
        }
        Ok(())
    }
}

/// The nftables table that masquerades `subnet` leaving through `uplink`
/// (any interface but the bridge when `None`) and lets its traffic be
/// forwarded.
pub fn nat_ruleset(table: &str, bridge: &str, subnet: Subnet, uplink: Option<&str>) -> String {
    let out = match uplink {
        Some(i) => format!("oifname \"{i}\""),
        None => format!("oifname != \"{bridge}\""),
    };
    format!(
        "table ip {table} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} ip daddr != {subnet} {out} masquerade\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{bridge}\" accept\n\
         \t\toifname \"{bridge}\" ct state established,related accept\n\
         \t}}\n\
         }}"
    )
}
