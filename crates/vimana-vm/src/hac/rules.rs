//! The rules of a VM description, on typed values. The `hac.toml` loader
//! applies each to a value with its span (a located diagnostic); the
//! daemon applies the same ones to every [`VmConfig`] it receives through
//! the API ([`check`]), so the CLI and the daemon cannot disagree.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB, ParseOptions};
use crate::model::{NetworkMode, PortForward, Protocol, RootFs, VmConfig};

/// A broken rule: its code (`vimana::hac::…`), what is wrong, a short
/// label for the offending value and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (rule {code}); {help}")]
pub struct Broken {
    pub code: &'static str,
    pub message: String,
    pub label: &'static str,
    pub help: String,
}

pub(crate) fn broken(
    code: &'static str,
    message: impl Into<String>,
    label: &'static str,
    help: impl Into<String>,
) -> Broken {
    Broken {
        code,
        message: message.into(),
        label,
        help: help.into(),
    }
}

/// What a path must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Anything but a directory (a file or a block device).
    File,
    Dir,
    Any,
}

/// vCPUs: 1 to [`MAX_CPUS`].
pub(crate) fn cpus(n: i64, name: &str) -> Result<u32, Broken> {
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_CPUS).contains(&n) => Ok(n),
        _ => Err(broken(
            "vimana::hac::cpus",
            format!("{name} must be between 1 and {MAX_CPUS}, got {n}"),
            "out of range",
            format!("set {name} to a whole number of vCPUs from 1 to {MAX_CPUS}"),
        )),
    }
}

/// Guest memory in MiB: at least [`MIN_MEMORY_MIB`], at most
/// [`MAX_MEMORY_MIB`] and no more than the host has.
pub(crate) fn memory_mib(mib: u64, name: &str, host: Option<u64>) -> Result<u64, Broken> {
    if mib < MIN_MEMORY_MIB {
        return Err(broken(
            "vimana::hac::memory_too_small",
            format!("{name} must be at least {MIN_MEMORY_MIB} MiB, got {mib} MiB"),
            "too small to boot",
            format!("give the VM {MIN_MEMORY_MIB} MiB or more (512MB is a good start)"),
        ));
    }
    let limit = host.map_or(MAX_MEMORY_MIB, |h| h.min(MAX_MEMORY_MIB));
    if mib > limit {
        let has = match host {
            Some(h) => format!("this host has only {h} MiB"),
            None => format!("vimana gives a VM at most {MAX_MEMORY_MIB} MiB"),
        };
        return Err(broken(
            "vimana::hac::memory_exceeds_host",
            format!("{name} asks for {mib} MiB but {has}"),
            "more than the host has",
            format!("lower {name} to at most {limit} MiB (leave some for the host)"),
        ));
    }
    Ok(mib)
}

pub(crate) fn disk_bytes(bytes: u64) -> Result<u64, Broken> {
    if bytes == 0 {
        return Err(broken(
            "vimana::hac::disk",
            "[resources] disk must be larger than 0",
            "empty disk",
            "give a size such as \"1GB\", or remove the key",
        ));
    }
    Ok(bytes)
}

/// One extra kernel parameter.
pub(crate) fn cmdline_word(s: &str) -> Result<(), Broken> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(broken(
            "vimana::hac::cmdline",
            format!("[boot] cmdline entry {s:?} must be one non-empty word"),
            "not one word",
            "write one kernel parameter per array entry: cmdline = [\"quiet\", \"loglevel=3\"]",
        ));
    }
    Ok(())
}

pub(crate) fn image_ref(s: &str) -> Result<(), Broken> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(broken(
            "vimana::hac::image_ref",
            format!("image reference {s:?} is not valid"),
            "not an image reference",
            "write an OCI reference such as \"docker.io/library/alpine:latest\"",
        ));
    }
    Ok(())
}

pub(crate) fn interface(name: &str) -> Result<(), Broken> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
    if !valid {
        return Err(broken(
            "vimana::hac::interface",
            format!("host interface name {name:?} is not valid"),
            "invalid interface name",
            "give a host network interface such as \"eth0\" (`ip link` lists them)",
        ));
    }
    Ok(())
}

/// A fixed guest address: unicast, bridge mode only.
pub(crate) fn guest_address(ip: Ipv4Addr, mode: NetworkMode) -> Result<Ipv4Addr, Broken> {
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
        return Err(broken(
            "vimana::hac::network_address",
            format!("[network] address {ip} cannot be a guest's address"),
            "reserved address",
            "pick a unicast address from the bridge's subnet, e.g. \"10.88.0.5\"",
        ));
    }
    if mode != NetworkMode::Bridge {
        return Err(broken(
            "vimana::hac::network_address",
            format!("[network] address {ip} needs mode = \"bridge\""),
            "only used in bridge mode",
            "set mode = \"bridge\", or remove address",
        ));
    }
    Ok(ip)
}

pub(crate) fn forwards_need_network(mode: NetworkMode) -> Result<(), Broken> {
    if mode == NetworkMode::None {
        return Err(broken(
            "vimana::hac::forwards_without_network",
            "[network] forwards need a network, but mode is \"none\"",
            "no network to forward into",
            "set mode = \"user\" (or \"bridge\"), or remove forwards",
        ));
    }
    Ok(())
}

/// Ports 1-65535 (a parsed `"HOST:GUEST"` is checked as it is parsed).
pub(crate) fn forward_ports(f: &PortForward) -> Result<(), Broken> {
    if f.host == 0 || f.guest == 0 {
        return Err(broken(
            "vimana::hac::port_forward",
            format!(
                "port forward {}:{} is not valid: ports are 1-65535",
                f.host, f.guest
            ),
            "invalid forward",
            "forward a host port 1-65535 to a guest port 1-65535, e.g. \"8080:80\"",
        ));
    }
    Ok(())
}

/// Each host port (per protocol) once; `seen` holds the earlier ones.
pub(crate) fn forward_once(
    seen: &mut BTreeSet<(u16, bool)>,
    f: &PortForward,
) -> Result<(), Broken> {
    if !seen.insert((f.host, f.protocol == Protocol::Udp)) {
        return Err(broken(
            "vimana::hac::duplicate_forward",
            format!("host port {} is forwarded twice", f.host),
            "second forward of this port",
            "forward each host port (per protocol) only once",
        ));
    }
    Ok(())
}

/// A volume's mount point: absolute, not `/`, no `..`, nothing that breaks
/// the kernel command line, each used once (`seen`).
pub(crate) fn volume_target(seen: &mut BTreeSet<String>, t: &str) -> Result<(), Broken> {
    if let Some(c) = t
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '"' | '\''))
    {
        return Err(broken(
            "vimana::hac::volume_target",
            format!("volume target {t:?} contains {c:?}"),
            "not allowed in a mount point",
            "use a path without spaces, commas or quotes (it travels on the kernel command line)",
        ));
    }
    let absolute = t.starts_with('/') && t != "/" && !t.split('/').any(|c| c == "..");
    if !absolute {
        return Err(broken(
            "vimana::hac::volume_target",
            format!("volume target {t:?} must be an absolute guest path other than /"),
            "not an absolute path",
            format!(
                "write the mount point inside the guest, e.g. \"/data\"{}",
                hint_abs(t)
            ),
        ));
    }
    if !seen.insert(t.trim_end_matches('/').to_string()) {
        return Err(broken(
            "vimana::hac::duplicate_volume",
            format!("volume target {t:?} is used twice"),
            "second mount at this path",
            "mount each guest path only once",
        ));
    }
    Ok(())
}

fn hint_abs(t: &str) -> String {
    let rel = t.trim_start_matches("./");
    if t.starts_with('/') || rel.is_empty() || rel.contains("..") {
        String::new()
    } else {
        format!(" (\"/{rel}\")")
    }
}

/// A volume source is a disk image, not a directory.
pub(crate) fn volume_source(source: &Path, raw: &str) -> Result<(), Broken> {
    if source.is_dir() {
        return Err(broken(
            "vimana::hac::volume_directory",
            format!(
                "volume source {raw:?} is a directory; volumes are disk images attached as block devices"
            ),
            "a directory",
            format!(
                "make an image of it, e.g. `mkfs.ext4 -d {raw} volume.ext4 1G`, and name that file"
            ),
        ));
    }
    Ok(())
}

/// `path` (given as `raw`) exists as `want` says; `base` names where a
/// relative path was resolved (for the help).
pub(crate) fn existing(
    path: &Path,
    raw: &str,
    what: &str,
    code: &'static str,
    want: Want,
    base: &str,
) -> Result<(), Broken> {
    let help = if raw.starts_with('~') {
        "write the full path: `~` is not expanded".to_string()
    } else {
        format!("fix the path; a relative path is relative to {base}")
    };
    match std::fs::metadata(path) {
        Err(e) => Err(broken(
            code,
            format!("{what} {raw:?} cannot be used: {} ({e})", path.display()),
            "not found",
            help,
        )),
        Ok(m) if want == Want::Dir && !m.is_dir() => Err(broken(
            code,
            format!("{what} {raw:?} is not a directory"),
            "not a directory",
            help,
        )),
        Ok(m) if want == Want::File && m.is_dir() => Err(broken(
            code,
            format!("{what} {raw:?} is a directory, not a file"),
            "a directory",
            help,
        )),
        Ok(_) => Ok(()),
    }
}

/// A path in a received description: absolute (the CLI resolves relative
/// ones against the hac.toml) and, when paths are checked, existing.
fn typed_path(
    path: &Path,
    what: &str,
    code: &'static str,
    want: Want,
    opts: &ParseOptions,
) -> Result<(), Broken> {
    let raw = path.to_string_lossy();
    if !path.is_absolute() {
        return Err(broken(
            code,
            format!("{what} {raw:?} must be an absolute path"),
            "relative path",
            "give the absolute path (`vimana vm spawn` resolves relative paths against the hac.toml)",
        ));
    }
    if opts.check_paths {
        existing(path, &raw, what, code, want, "/")?;
    }
    Ok(())
}

/// Every rule on a typed description, as the daemon receives it. The first
/// broken one is the error.
pub fn check(c: &VmConfig, opts: &ParseOptions) -> Result<(), Broken> {
    cpus(i64::from(c.cpus), "cpus")?;
    memory_mib(c.memory_mib, "memory_mib", opts.host_memory_mib)?;
    if let Some(d) = c.disk_bytes {
        disk_bytes(d)?;
    }
    if let Some(k) = &c.kernel {
        typed_path(k, "kernel", "vimana::hac::kernel_missing", Want::File, opts)?;
    }
    if let Some(m) = &c.modules {
        let code = "vimana::hac::modules_missing";
        typed_path(m, "modules directory", code, Want::Dir, opts)?;
    }
    for w in &c.cmdline_extra {
        cmdline_word(w)?;
    }
    match &c.root {
        RootFs::Initramfs => {}
        RootFs::Drive { path } => {
            let code = "vimana::hac::drive_missing";
            typed_path(path, "drive", code, Want::File, opts)?;
        }
        RootFs::Image { reference } => image_ref(reference)?,
    }
    let n = &c.network;
    if !n.forwards.is_empty() {
        forwards_need_network(n.mode)?;
    }
    let mut seen = BTreeSet::new();
    for f in &n.forwards {
        forward_ports(f)?;
        forward_once(&mut seen, f)?;
    }
    if let Some(a) = n.address {
        guest_address(a, n.mode)?;
    }
    if let Some(i) = &n.host_interface {
        interface(i)?;
    }
    let mut targets = BTreeSet::new();
    for v in &c.volumes {
        let code = "vimana::hac::volume_source";
        typed_path(&v.source, "volume source", code, Want::Any, opts)?;
        volume_source(&v.source, &v.source.to_string_lossy())?;
        volume_target(&mut targets, &v.target)?;
    }
    Ok(())
}
