//! A recording, in-memory [`NetOps`] for tests (here and in the driver).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::error::NetError;
use super::ops::NetOps;

/// Kind of a fake link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeKind {
    Bridge,
    Tap,
    /// A pre-existing link of another kind (e.g. `eth0`).
    Other,
}

/// One fake link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeLink {
    pub kind: FakeKind,
    pub up: bool,
    pub controller: Option<String>,
    pub addresses: Vec<(Ipv4Addr, u8)>,
    pub owner: Option<u32>,
}

/// Everything the fake knows.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Every call, e.g. `create_tap vt-0123 owner=Some(0)`, in order.
    pub calls: Vec<String>,
    pub links: BTreeMap<String, FakeLink>,
    pub ip_forward: bool,
    pub nft_installed: bool,
    /// Links with `route_localnet` enabled.
    pub route_localnet: Vec<String>,
    /// nftables tables by name → ruleset.
    pub nft_tables: BTreeMap<String, String>,
    /// Calls whose name is listed here fail with a permission error.
    pub deny: Vec<&'static str>,
}

/// The recording fake.
#[derive(Debug, Default)]
pub struct FakeNetOps {
    state: Mutex<FakeState>,
}

impl FakeNetOps {
    /// A fake host; `nft` installed or not.
    pub fn new(nft_installed: bool) -> FakeNetOps {
        let fake = FakeNetOps::default();
        fake.state().nft_installed = nft_installed;
        fake
    }

    /// The state, for inspection and setup.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The recorded calls, then forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state().calls)
    }

    /// Names of the links of `kind`.
    pub fn links_of(&self, kind: FakeKind) -> Vec<String> {
        self.state()
            .links
            .iter()
            .filter(|(_, l)| l.kind == kind)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn record(
        &self,
        op: &'static str,
        detail: String,
    ) -> Result<MutexGuard<'_, FakeState>, NetError> {
        let mut s = self.state();
        s.calls.push(if detail.is_empty() {
            op.to_string()
        } else {
            format!("{op} {detail}")
        });
        if s.deny.contains(&op) {
            return Err(NetError::Permission {
                action: op.replace('_', " "),
                device: detail,
            });
        }
        Ok(s)
    }
}

fn missing(action: &str, name: &str) -> NetError {
    NetError::Netlink {
        action: action.into(),
        device: name.into(),
        reason: "no such link".into(),
    }
}

fn new_link(kind: FakeKind, owner: Option<u32>) -> FakeLink {
    FakeLink {
        kind,
        up: false,
        controller: None,
        addresses: Vec::new(),
        owner,
    }
}

#[async_trait]
impl NetOps for FakeNetOps {
    async fn create_bridge(&self, name: &str) -> Result<(), NetError> {
        let mut s = self.record("create_bridge", name.into())?;
        s.links
            .entry(name.into())
            .or_insert_with(|| new_link(FakeKind::Bridge, None));
        Ok(())
    }

    async fn add_address(&self, link: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
        let mut s = self.record("add_address", format!("{link} {addr}/{prefix}"))?;
        let l = s
            .links
            .get_mut(link)
            .ok_or_else(|| missing("adding an address to", link))?;
        if !l.addresses.contains(&(addr, prefix)) {
            l.addresses.push((addr, prefix));
        }
        Ok(())
    }

    async fn set_up(&self, link: &str) -> Result<(), NetError> {
        let mut s = self.record("set_up", link.into())?;
        let l = s
            .links
            .get_mut(link)
            .ok_or_else(|| missing("setting up", link))?;
        l.up = true;
        Ok(())
    }

    async fn create_tap(&self, name: &str, owner: Option<u32>) -> Result<(), NetError> {
        let mut s = self.record("create_tap", format!("{name} owner={owner:?}"))?;
        if s.links.contains_key(name) {
            return Err(NetError::Tun {
                tap: name.into(),
                source: std::io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        s.links.insert(name.into(), new_link(FakeKind::Tap, owner));
        Ok(())
    }

    async fn attach_to_bridge(&self, link: &str, bridge: &str) -> Result<(), NetError> {
        let mut s = self.record("attach_to_bridge", format!("{link} {bridge}"))?;
        if s.links.get(bridge).map(|l| l.kind) != Some(FakeKind::Bridge) {
            return Err(missing("attaching to", bridge));
        }
        let l = s
            .links
            .get_mut(link)
            .ok_or_else(|| missing("attaching", link))?;
        l.controller = Some(bridge.into());
        Ok(())
    }

    async fn delete_link(&self, name: &str) -> Result<bool, NetError> {
        let mut s = self.record("delete_link", name.into())?;
        Ok(s.links.remove(name).is_some())
    }

    async fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        Ok(self.state().links.contains_key(name))
    }

    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetError> {
        Ok(self
            .state()
            .links
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn enable_ip_forward(&self) -> Result<(), NetError> {
        let mut s = self.record("enable_ip_forward", String::new())?;
        s.ip_forward = true;
        Ok(())
    }

    async fn enable_route_localnet(&self, link: &str) -> Result<(), NetError> {
        let mut s = self.record("enable_route_localnet", link.into())?;
        s.route_localnet.push(link.to_string());
        Ok(())
    }

    fn nft_available(&self) -> bool {
        self.state().nft_installed
    }

    async fn nft_apply(&self, table: &str, ruleset: &str) -> Result<(), NetError> {
        let mut s = self.record("nft_apply", table.into())?;
        if !s.nft_installed {
            return Err(NetError::Nft("the nft command is not installed".into()));
        }
        s.nft_tables.insert(table.into(), ruleset.into());
        Ok(())
    }

    async fn nft_remove(&self, table: &str) -> Result<(), NetError> {
        let mut s = self.record("nft_remove", table.into())?;
        s.nft_tables.remove(table);
        Ok(())
    }
}
