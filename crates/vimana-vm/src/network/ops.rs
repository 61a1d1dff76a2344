//! The host operations bridge networking needs, behind a trait so the
//! logic is tested against a recording fake and runs against the kernel
//! through [`NetlinkOps`](super::NetlinkOps).

use std::net::Ipv4Addr;

use async_trait::async_trait;

use super::error::NetError;

/// Link and firewall operations on the host (in the caller's network
/// namespace).
#[async_trait]
pub trait NetOps: Send + Sync {
    /// Creates bridge `name`; an existing link of that name is fine.
    async fn create_bridge(&self, name: &str) -> Result<(), NetError>;

    /// Adds `addr/prefix` to `link`; an address already present is fine.
    async fn add_address(&self, link: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetError>;

    /// Sets `link` up.
    async fn set_up(&self, link: &str) -> Result<(), NetError>;

    /// Creates a persistent TAP device `name` (no packet-info header) owned
    /// by `owner` (a uid) when given; it lives until deleted.
    async fn create_tap(&self, name: &str, owner: Option<u32>) -> Result<(), NetError>;

    /// Enslaves `link` to `bridge`.
    async fn attach_to_bridge(&self, link: &str, bridge: &str) -> Result<(), NetError>;

    /// Deletes `name`; `Ok(false)` when there is no such link.
    async fn delete_link(&self, name: &str) -> Result<bool, NetError>;

    async fn link_exists(&self, name: &str) -> Result<bool, NetError>;

    /// Names of the links that start with `prefix`.
    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetError>;

    /// `net.ipv4.ip_forward = 1`.
    async fn enable_ip_forward(&self) -> Result<(), NetError>;

    /// `net.ipv4.conf.<link>.route_localnet = 1`, so connections from
    /// loopback can be DNATed to guests behind `link`.
    async fn enable_route_localnet(&self, link: &str) -> Result<(), NetError>;

    /// Whether the `nft` command is installed.
    fn nft_available(&self) -> bool;

    /// Replaces nftables table `ip <table>` with `ruleset` (a complete
    /// `table ip <table> { … }` definition), atomically.
    async fn nft_apply(&self, table: &str, ruleset: &str) -> Result<(), NetError>;

    /// Deletes table `ip <table>`; absent is fine.
    async fn nft_remove(&self, table: &str) -> Result<(), NetError>;
}
