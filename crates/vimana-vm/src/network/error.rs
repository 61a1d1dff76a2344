//! Errors of bridge networking: each names the device, address or file
//! involved and says what to do about it.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Why a VM could not be put on (or taken off) the bridge.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `attach` was called for a VM whose `[network] mode` is not `bridge`.
    #[error("VM {vm} does not use bridge networking (`[network] mode = \"{mode}\"`)")]
    NotBridgeMode { vm: String, mode: String },

    /// The kernel refused for lack of privilege.
    #[error("{action} {device} needs CAP_NET_ADMIN: run the daemon as root")]
    Permission { action: String, device: String },

    /// A netlink request failed for another reason.
    #[error("{action} {device} failed: {reason}")]
    Netlink {
        action: String,
        device: String,
        reason: String,
    },

    /// Opening or configuring `/dev/net/tun` failed.
    #[error(
        "creating tap {tap} through /dev/net/tun failed: {source}; check that the tun \
         module is loaded (`modprobe tun`) and that the daemon runs as root"
    )]
    Tun {
        tap: String,
        #[source]
        source: std::io::Error,
    },

    /// A subnet setting that cannot work.
    #[error("invalid bridge subnet {subnet}: {reason}")]
    InvalidSubnet { subnet: String, reason: String },

    /// A fixed `address` outside the bridge's subnet.
    #[error(
        "address {address} is outside the bridge subnet {subnet}: pick an address in {subnet} \
         or leave `address` out to get one allocated"
    )]
    OutsideSubnet { address: Ipv4Addr, subnet: String },

    /// A fixed `address` that is the network, gateway or broadcast address.
    #[error(
        "address {address} is reserved in subnet {subnet} ({what}): pick another host address \
         or leave `address` out"
    )]
    ReservedAddress {
        address: Ipv4Addr,
        subnet: String,
        what: &'static str,
    },

    /// A fixed `address` another VM holds.
    #[error(
        "address {address} is already leased to VM {owner}: pick another address, or stop \
         {owner} first"
    )]
    AddressTaken { address: Ipv4Addr, owner: String },

    /// Every host address of the subnet is leased.
    #[error(
        "subnet {subnet} has no free address left ({leased} leased): stop a VM or configure a \
         larger subnet"
    )]
    Exhausted { subnet: String, leased: usize },

    /// The lease file cannot be read or written.
    #[error("lease file {}: {source}", path.display())]
    LeaseIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The lease file exists but is not what vimana writes.
    #[error(
        "lease file {} is corrupt ({reason}): move it away; the addresses of VMs started \
         afterwards are allocated anew",
        path.display()
    )]
    CorruptLeases { path: PathBuf, reason: String },

    /// A host port another VM forwards already.
    #[error(
        "host port {port}/{protocol} is already forwarded to VM {owner}: pick another host port, \
         or stop {owner} first"
    )]
    PortTaken {
        port: u16,
        protocol: &'static str,
        owner: String,
    },

    /// A host port something on the host listens on.
    #[error(
        "host port {port}/{protocol} is in use on this host: pick another host port for the \
         forward, or stop what listens on it"
    )]
    PortInUse { port: u16, protocol: &'static str },

    /// Forwards in bridge mode need nftables.
    #[error("port forwards in bridge mode need nftables: install it (apt-get install nftables)")]
    ForwardsNeedNft,

    /// `nft` failed (reported as a warning by [`BridgeNetwork`](super::BridgeNetwork)).
    #[error("nft: {0}")]
    Nft(String),

    /// Anything else the host refused.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
