//! MicroVMs as a vimana workload kind.
//!
//! - [`model`]: the one validated description of a VM ([`VmConfig`]) that
//!   both published `hac.toml` shapes and vimana's own keys turn into.
//! - [`hac`]: `hac.toml` parsing and validation, with located errors.
//! - [`initramfs`]: the guest root vimana assembles (busybox, kernel
//!   modules, the agent).
//! - [`driver`]: the `vm` workload kind ([`driver::VmDriver`]).
//! - [`provider`]: the hypervisor seam and its QEMU, Firecracker and Cloud
//!   Hypervisor implementations.

pub mod driver;
pub mod hac;
pub mod initramfs;
pub mod model;
pub mod network;
pub mod provider;
pub mod rootfs;

pub use model::{
    NetworkConfig, NetworkMode, PortForward, Protocol, Provider, RootFs, SpacecoreInfo, VmConfig,
    Volume,
};
