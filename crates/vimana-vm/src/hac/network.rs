//! `[network]` (mode, forwards, address, interface) and `[[volumes]]`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use toml::Spanned;

use super::context::{Cx, Want, either};
use super::error::HacError;
use super::raw::{RawNetwork, RawVolume, Text};
use super::rules;
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
        if has_forwards {
            rules::forwards_need_network(mode).map_err(|b| cx.fail(list.span(), b))?;
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
            rules::forward_once(&mut seen, &fwd).map_err(|b| cx.fail(item.span(), b))?;
            out.forwards.push(fwd);
        }
    }
    if let Some(a) = address {
        out.address = Some(check_address(cx, &a, mode)?);
    }
    if let Some(i) = interface {
        rules::interface(i.get_ref()).map_err(|b| cx.fail(i.span(), b))?;
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
    let Ok(ip) = a.get_ref().parse::<Ipv4Addr>() else {
        return Err(cx.err(
            "vimana::hac::network_address",
            a.span(),
            format!("[network] address {:?} is not an IPv4 address", a.get_ref()),
            "not an IPv4 address",
            "write a dotted IPv4 address such as \"10.88.0.5\"",
        ));
    };
    rules::guest_address(ip, mode).map_err(|b| cx.fail(a.span(), b))
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
        rules::volume_source(&source, v.source.get_ref())
            .map_err(|b| cx.fail(v.source.span(), b))?;
        rules::volume_target(&mut seen, v.target.get_ref())
            .map_err(|b| cx.fail(v.target.span(), b))?;
        out.push(Volume {
            source,
            target: v.target.into_inner(),
            read_only: v.read_only,
        });
    }
    Ok(out)
}
