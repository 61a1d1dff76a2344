//! The validated description of one microVM. Every source (the
//! `[hardware]` and `[spacecore]` shapes of `hac.toml`, vimana's own keys,
//! CLI flags) ends up here; providers only ever see this form.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The hypervisor that runs the VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// `qemu-system-x86_64 -M microvm` (KVM when usable, else TCG).
    #[default]
    Qemu,
    /// Firecracker (needs KVM).
    Firecracker,
    /// Cloud Hypervisor (needs KVM).
    CloudHypervisor,
}

impl Provider {
    /// Every provider, in the order `vimana init` lists them.
    pub const ALL: [Provider; 3] = [
        Provider::Qemu,
        Provider::Firecracker,
        Provider::CloudHypervisor,
    ];

    /// The name used in `hac.toml`, `--provider` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Qemu => "qemu",
            Provider::Firecracker => "firecracker",
            Provider::CloudHypervisor => "cloud-hypervisor",
        }
    }

    /// Parses a provider name; `cloudhypervisor` (hypercore's spelling) and
    /// `ch` are accepted for Cloud Hypervisor.
    pub fn parse(name: &str) -> Option<Provider> {
        match name.to_ascii_lowercase().as_str() {
            "qemu" => Some(Provider::Qemu),
            "firecracker" | "fc" => Some(Provider::Firecracker),
            "cloud-hypervisor" | "cloudhypervisor" | "ch" => Some(Provider::CloudHypervisor),
            _ => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the guest boots from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RootFs {
    /// An initramfs vimana assembles (busybox + kernel modules + agent): the
    /// default when neither `drive` nor `ref` is given.
    Initramfs,
    /// A disk image file used as the root drive (`/dev/vda`).
    Drive { path: PathBuf },
    /// An OCI image reference, turned into a cached ext4 image with the
    /// agent injected.
    Image { reference: String },
}

/// Guest networking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// No network device.
    #[default]
    None,
    /// User-mode networking (QEMU slirp) with port forwards.
    User,
    /// A TAP device on the `vimana0` bridge, an address from the subnet.
    Bridge,
}

/// Transport of a port forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// `host:guest` (optionally `/udp`): host port forwarded into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    pub host: u16,
    pub guest: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

/// Validated `[network]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub mode: NetworkMode,
    /// `user`: QEMU slirp's hostfwd on 127.0.0.1; `bridge`: nftables DNAT
    /// from every host address (see `network::forwards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<PortForward>,
    /// A fixed guest address in bridge mode (else allocated from the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// hypercore's `interface`: the host interface the bridge uplinks to
    /// (used for NAT in bridge mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_interface: Option<String>,
}

/// A host directory or image shared with the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Host path of a disk image file, attached as a virtio block device
    /// after the root drive and mounted at `target` by the guest agent.
    /// (Directories would need virtiofs/9p; hac.toml refuses them.)
    pub source: PathBuf,
    /// Mount point inside the guest (absolute).
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// The descriptive `[spacecore]` table, kept for listings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacecoreInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `[commands]`: named shell commands (e.g. `start`), run through the
    /// agent (`start` runs once the agent is ready).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commands: BTreeMap<String, String>,
}

/// One microVM, validated: what a provider needs to build its VMM
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    /// `None`: the daemon's default (`qemu`), or `--provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// vCPUs, ≥ 1.
    pub cpus: u32,
    /// Guest RAM in MiB, ≥ 16 and no more than the host can give.
    pub memory_mib: u64,
    /// Size of the writable root disk built from an image (`[resources]
    /// disk`), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    /// Kernel image (bzImage/vmlinuz for QEMU, vmlinux/bzImage for
    /// Firecracker/CH). `None`: the documented default source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<PathBuf>,
    /// Directory holding the kernel's modules (`lib/modules/<release>`),
    /// copied into a vimana-built initramfs. `None`: found next to the
    /// kernel (Debian package layout) when needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<PathBuf>,
    /// Extra kernel command-line words, appended after vimana's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmdline_extra: Vec<String>,
    pub root: RootFs,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub spacecore: SpacecoreInfo,
}

impl VmConfig {
    /// The provider to use: the config's, else `fallback`.
    pub fn provider_or(&self, fallback: Provider) -> Provider {
        self.provider.unwrap_or(fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert_eq!(
            Provider::parse("cloudhypervisor"),
            Some(Provider::CloudHypervisor)
        );
        assert_eq!(Provider::parse("xen"), None);
    }
}
