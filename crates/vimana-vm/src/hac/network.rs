//! `[network]` (mode, forwards, address, interface) and `[[volumes]]`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use toml::Spanned;

use super::context::{Cx, Want, either};
use super::error::HacError;
use super::raw::{RawNetwork, RawVolume, Text};
use crate::model::{NetworkConfig, NetworkMode, PortForward, Protocol, Volume};

const MODES: &str = "\"none\", \"user\", \"bridge\"";

pub(crate) fn network(
    cx: &mut Cx<'_>,
    raw: Option<Spanned<RawNetwork>>,
    hw_interface: Option<Text>,
) -> Result<NetworkConfig, HacError> {
    let (mode, forwards, address, interface) = match raw.map(Spanned::into_inner) {
        Some(n) => (n.mode, n.forwards, n.address, n.interface),
        None => (None, None, None, None),
    };
    let interface = either(
        cx,
        "interface",
        hw_interface,
        "[hardware]",
        interface,
        "[network]",
    )?;
    let explicit = mode.as_ref().map(|m| parse_mode(cx, m)).transpose()?;
    let has_forwards = forwards.as_ref().is_some_and(|f| !f.get_ref().is_empty());
    let mode = match explicit {
        Some(m) => m,
        None if interface.is_some() => NetworkMode::Bridge,
        None if has_forwards => NetworkMode::User,
        None => NetworkMode::None,
    };

    let mut out = NetworkConfig {
        mode,
        ..NetworkConfig::default()
    };
    if let Some(list) = forwards {
        if has_forwards && mode == NetworkMode::None {
            return Err(cx.err(
                "vimana::hac::forwards_without_network",
                list.span(),
                "[network] forwards need a network, but mode is \"none\"",
                "no network to forward into",
                "set mode = \"user\" (or \"bridge\"), or remove forwards",
            ));
        }
        let mut seen = BTreeSet::new();
        for item in list.into_inner() {
            let fwd = parse_forward(item.get_ref()).map_err(|why| {
                cx.err(
                    "vimana::hac::port_forward",
                    item.span(),
                    format!("port forward {:?} is not valid: {why}", item.get_ref()),
                    "invalid forward",
                    "write \"HOST:GUEST\" with ports 1-65535, optionally \"/tcp\" or \"/udp\", e.g. \"8080:80\" or \"5353:53/udp\"",
                )
            })?;
            if !seen.insert((fwd.host, fwd.protocol == Protocol::Udp)) {
                return Err(cx.err(
                    "vimana::hac::duplicate_forward",
                    item.span(),
                    format!("host port {} is forwarded twice", fwd.host),
                    "second forward of this port",
                    "forward each host port (per protocol) only once",
                ));
            }
            out.forwards.push(fwd);
        }
    }
    if let Some(a) = address {
        out.address = Some(check_address(cx, &a, mode)?);
    }
    if let Some(i) = interface {
        let name = i.get_ref();
        let valid = !name.is_empty()
            && name.len() <= 15
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
        if !valid {
            return Err(cx.err(
                "vimana::hac::interface",
                i.span(),
                format!("host interface name {name:?} is not valid"),
                "invalid interface name",
                "give a host network interface such as \"eth0\" (`ip link` lists them)",
            ));
        }
        if mode != NetworkMode::Bridge {
            let w = cx.diag(
                "vimana::hac::interface_unused",
                i.span(),
                "`interface` is only used in bridge mode and is ignored here",
                "ignored",
                "set [network] mode = \"bridge\", or remove `interface`",
            );
            cx.warnings.push(w.warning());
        }
        out.host_interface = Some(i.into_inner());
    }
    Ok(out)
}

fn parse_mode(cx: &Cx<'_>, m: &Text) -> Result<NetworkMode, HacError> {
    match m.get_ref().as_str() {
        "none" => Ok(NetworkMode::None),
        "user" => Ok(NetworkMode::User),
        "bridge" => Ok(NetworkMode::Bridge),
        other => Err(cx.err(
            "vimana::hac::network_mode",
            m.span(),
            format!("unknown network mode {other:?}; modes: {MODES}"),
            "unknown mode",
            format!("set mode to one of {MODES}"),
        )),
    }
}

fn check_address(cx: &Cx<'_>, a: &Text, mode: NetworkMode) -> Result<Ipv4Addr, HacError> {
    let err = |message: String, label: &str, help: &str| {
        cx.err(
            "vimana::hac::network_address",
            a.span(),
            message,
            label,
            help,
        )
    };
    let Ok(ip) = a.get_ref().parse::<Ipv4Addr>() else {
        return Err(err(
            format!("[network] address {:?} is not an IPv4 address", a.get_ref()),
            "not an IPv4 address",
            "write a dotted IPv4 address such as \"10.88.0.5\"",
        ));
    };
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
        return Err(err(
            format!("[network] address {ip} cannot be a guest's address"),
            "reserved address",
            "pick a unicast address from the bridge's subnet, e.g. \"10.88.0.5\"",
        ));
    }
    if mode != NetworkMode::Bridge {
        return Err(err(
            format!("[network] address {ip} needs mode = \"bridge\""),
            "only used in bridge mode",
            "set mode = \"bridge\", or remove address",
        ));
    }
    Ok(ip)
}

/// `"HOST:GUEST"` or `"HOST:GUEST/tcp|udp"`.
fn parse_forward(s: &str) -> Result<PortForward, String> {
    let (ports, protocol) = match s.split_once('/') {
        None => (s, Protocol::Tcp),
        Some((p, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" => (p, Protocol::Tcp),
            "udp" => (p, Protocol::Udp),
            _ => return Err(format!("unknown protocol {proto:?} (tcp or udp)")),
        },
    };
    let Some((host, guest)) = ports.split_once(':') else {
        return Err("expected HOST:GUEST".into());
    };
    Ok(PortForward {
        host: port(host, "host")?,
        guest: port(guest, "guest")?,
        protocol,
    })
}

fn port(s: &str, which: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{which} port {s:?} is not a number"));
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{which} port {s} is out of range 1-65535")),
    }
}

pub(crate) fn volumes(cx: &Cx<'_>, raw: Vec<Spanned<RawVolume>>) -> Result<Vec<Volume>, HacError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for v in raw {
        let v = v.into_inner();
        let source = cx.path(
            &v.source,
            "volume source",
            "vimana::hac::volume_source",
            Want::Any,
        )?;
        if source.is_dir() {
            return Err(cx.err(
                "vimana::hac::volume_directory",
                v.source.span(),
                format!(
                    "volume source {:?} is a directory; volumes are disk images attached as block devices",
                    v.source.get_ref()
                ),
                "a directory",
                format!(
                    "make an image of it, e.g. `mkfs.ext4 -d {} volume.ext4 1G`, and name that file",
                    v.source.get_ref()
                ),
            ));
        }
        let t = v.target.get_ref();
        if let Some(c) = t
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, ',' | '"' | '\''))
        {
            return Err(cx.err(
                "vimana::hac::volume_target",
                v.target.span(),
                format!("volume target {t:?} contains {c:?}"),
                "not allowed in a mount point",
                "use a path without spaces, commas or quotes (it travels on the kernel command line)",
            ));
        }
        let absolute = t.starts_with('/') && t != "/" && !t.split('/').any(|c| c == "..");
        if !absolute {
            return Err(cx.err(
                "vimana::hac::volume_target",
                v.target.span(),
                format!("volume target {t:?} must be an absolute guest path other than /"),
                "not an absolute path",
                format!(
                    "write the mount point inside the guest, e.g. \"/data\"{}",
                    hint_abs(t)
                ),
            ));
        }
        if !seen.insert(t.trim_end_matches('/').to_string()) {
            return Err(cx.err(
                "vimana::hac::duplicate_volume",
                v.target.span(),
                format!("volume target {t:?} is used twice"),
                "second mount at this path",
                "mount each guest path only once",
            ));
        }
        out.push(Volume {
            source,
            target: v.target.into_inner(),
            read_only: v.read_only,
        });
    }
    Ok(out)
}

fn hint_abs(t: &str) -> String {
    let rel = t.trim_start_matches("./");
    if t.starts_with('/') || rel.is_empty() || rel.contains("..") {
        String::new()
    } else {
        format!(" (\"/{rel}\")")
    }
}
