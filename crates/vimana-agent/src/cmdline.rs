//! The `vimana.*` parameters of the guest kernel command line.
//!
//! | parameter | meaning |
//! |---|---|
//! | `vimana.hostname=<name>` | hostname of the guest |
//! | `vimana.ip=<ipv4>/<prefix>` | address of `eth0` |
//! | `vimana.gw=<ipv4>` | default route via this gateway (needs `vimana.ip`) |
//! | `vimana.dns=<ip>[,<ip>...]` | nameservers written to `/etc/resolv.conf` |
//! | `vimana.console=<tty>` | device of the console shell (default `ttyS0`) |
//! | `vimana.volume=<disk>,<path>[,ro]` | mount a disk at `path` (repeatable); `disk` is `/dev/…` or a virtio-blk serial |
//!
//! Missing parameters mean "do not configure"; malformed ones are reported
//! as [`CmdlineError`]s next to the rest of the configuration, never fatal.
//! The host builds the same parameters with [`GuestConfig::to_cmdline`].

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Console device used when `vimana.console=` is absent.
pub const DEFAULT_CONSOLE: &str = "ttyS0";

/// Network configuration of `eth0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// Address of the interface.
    pub addr: Ipv4Addr,
    /// Prefix length (0..=32).
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
}

impl NetConfig {
    /// The netmask for [`NetConfig::prefix`].
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        };
        Ipv4Addr::from(bits)
    }
}

/// What the `vimana.*` parameters ask of the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    /// `vimana.hostname`.
    pub hostname: Option<String>,
    /// `vimana.ip` + `vimana.gw`.
    pub net: Option<NetConfig>,
    /// `vimana.dns`.
    pub dns: Vec<IpAddr>,
    /// `vimana.console` (a name under `/dev`, e.g. `ttyS0`).
    pub console: Option<String>,
    /// `vimana.volume`, in command-line order.
    pub volumes: Vec<VolumeMount>,
}

/// A disk the agent mounts at boot (`vimana.volume=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// `/dev/vdb`, or the virtio-blk serial of the disk (`vimana-d1`),
    /// which does not depend on the order devices are probed in.
    pub disk: String,
    /// Absolute mount point in the guest.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl VolumeMount {
    /// The parameter value: `<disk>,<target>[,ro]`.
    pub fn to_value(&self) -> String {
        let ro = if self.read_only { ",ro" } else { "" };
        format!("{},{}{ro}", self.disk, self.target)
    }

    fn parse(value: &str) -> Result<Self, &'static str> {
        let mut parts = value.split(',');
        let (Some(disk), Some(target)) = (parts.next(), parts.next()) else {
            return Err("expected <disk>,<path>[,ro]");
        };
        let read_only = match parts.next() {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err("the third field must be ro or rw"),
        };
        if parts.next().is_some() {
            return Err("expected <disk>,<path>[,ro]");
        }
        if disk.is_empty()
            || disk.contains("..")
            || (disk.contains('/') && !disk.starts_with("/dev/"))
        {
            return Err("the disk must be /dev/<name> or a serial");
        }
        if !target.starts_with('/') || target == "/" || target.split('/').any(|c| c == "..") {
            return Err("the mount point must be an absolute path other than /");
        }
        Ok(Self {
            disk: disk.to_owned(),
            target: target.to_owned(),
            read_only,
        })
    }
}

/// A `vimana.*` parameter that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// The value does not parse.
    #[error("kernel parameter {key}={value:?}: {reason}")]
    Invalid {
        /// Parameter name, e.g. `vimana.ip`.
        key: &'static str,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// `vimana.gw` without a usable `vimana.ip`.
    #[error("kernel parameter vimana.gw={0} ignored: vimana.ip is missing or invalid")]
    GatewayWithoutIp(Ipv4Addr),
}

impl GuestConfig {
    /// Parses a kernel command line (the content of `/proc/cmdline`).
    /// Unknown parameters are ignored; the last occurrence of a parameter
    /// wins.
    pub fn from_cmdline(cmdline: &str) -> (Self, Vec<CmdlineError>) {
        let mut cfg = GuestConfig::default();
        let mut errors = Vec::new();
        let mut ip: Option<(Ipv4Addr, u8)> = None;
        let mut gw: Option<Ipv4Addr> = None;
        for word in split_words(cmdline) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "vimana.hostname" => match valid_hostname(value) {
                    Ok(()) => cfg.hostname = Some(value.to_owned()),
                    Err(reason) => errors.push(invalid("vimana.hostname", value, reason)),
                },
                "vimana.ip" => match parse_cidr(value) {
                    Ok(v) => ip = Some(v),
                    Err(reason) => {
                        ip = None;
                        errors.push(invalid("vimana.ip", value, reason));
                    }
                },
                "vimana.gw" => match value.parse::<Ipv4Addr>() {
                    Ok(v) => gw = Some(v),
                    Err(_) => errors.push(invalid("vimana.gw", value, "not an IPv4 address")),
                },
                "vimana.dns" => {
                    cfg.dns.clear();
                    for part in value.split(',').filter(|p| !p.is_empty()) {
                        match part.parse::<IpAddr>() {
                            Ok(a) => cfg.dns.push(a),
                            Err(_) => errors.push(invalid("vimana.dns", part, "not an IP address")),
                        }
                    }
                }
                "vimana.volume" => match VolumeMount::parse(value) {
                    Ok(v) => cfg.volumes.push(v),
                    Err(reason) => errors.push(invalid("vimana.volume", value, reason)),
                },
                "vimana.console" => {
                    let name = value.strip_prefix("/dev/").unwrap_or(value);
                    if name.is_empty() || name.contains('/') || name.contains("..") {
                        errors.push(invalid(
                            "vimana.console",
                            value,
                            "not a device name under /dev",
                        ));
                    } else {
                        cfg.console = Some(name.to_owned());
                    }
                }
                _ => {}
            }
        }
        match (ip, gw) {
            (Some((addr, prefix)), gateway) => {
                cfg.net = Some(NetConfig {
                    addr,
                    prefix,
                    gateway,
                })
            }
            (None, Some(g)) => errors.push(CmdlineError::GatewayWithoutIp(g)),
            (None, None) => {}
        }
        (cfg, errors)
    }

    /// The console device name (`vimana.console` or [`DEFAULT_CONSOLE`]).
    pub fn console_device(&self) -> &str {
        self.console.as_deref().unwrap_or(DEFAULT_CONSOLE)
    }

    /// The `vimana.*` parameters for this configuration, space separated,
    /// to append to a guest kernel command line.
    pub fn to_cmdline(&self) -> String {
        let mut out = Vec::new();
        if let Some(h) = &self.hostname {
            out.push(format!("vimana.hostname={h}"));
        }
        if let Some(n) = &self.net {
            out.push(format!("vimana.ip={}/{}", n.addr, n.prefix));
            if let Some(g) = n.gateway {
                out.push(format!("vimana.gw={g}"));
            }
        }
        if !self.dns.is_empty() {
            let mut s = String::from("vimana.dns=");
            for (i, d) in self.dns.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{d}");
            }
            out.push(s);
        }
        if let Some(c) = &self.console {
            out.push(format!("vimana.console={c}"));
        }
        for v in &self.volumes {
            out.push(format!("vimana.volume={}", v.to_value()));
        }
        out.join(" ")
    }
}

fn invalid(key: &'static str, value: &str, reason: &'static str) -> CmdlineError {
    CmdlineError::Invalid {
        key,
        value: value.to_owned(),
        reason,
    }
}

/// Splits like the kernel does: on whitespace, except inside double quotes
/// (which are removed).
fn split_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut has_word = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_word = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_word {
                    words.push(std::mem::take(&mut cur));
                    has_word = false;
                }
            }
            c => {
                cur.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(cur);
    }
    words
}

fn parse_cidr(value: &str) -> Result<(Ipv4Addr, u8), &'static str> {
    let (addr, prefix) = value
        .split_once('/')
        .ok_or("expected <ipv4>/<prefix>, e.g. 10.0.0.2/24")?;
    let addr = addr
        .parse::<Ipv4Addr>()
        .map_err(|_| "not an IPv4 address")?;
    let prefix = prefix
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or("prefix must be 0..=32")?;
    Ok((addr, prefix))
}

fn valid_hostname(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > 64 {
        return Err("hostname must be 1 to 64 characters");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err("hostname may contain only letters, digits, '-' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config() {
        let (cfg, errs) = GuestConfig::from_cmdline(
            "console=ttyS0 reboot=k panic=1 vimana.hostname=web-1 vimana.ip=10.0.0.2/24 \
             vimana.gw=10.0.0.1 vimana.dns=1.1.1.1,2606:4700::1111 vimana.console=hvc0\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(cfg.hostname.as_deref(), Some("web-1"));
        let net = cfg.net.unwrap();
        assert_eq!(net.addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(net.prefix, 24);
        assert_eq!(net.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(net.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(cfg.dns.len(), 2);
        assert_eq!(cfg.console_device(), "hvc0");
    }

    #[test]
    fn missing_params_mean_nothing_to_do() {
        let (cfg, errs) = GuestConfig::from_cmdline("console=ttyS0 root=/dev/vda");
        assert!(errs.is_empty());
        assert_eq!(cfg, GuestConfig::default());
        assert_eq!(cfg.console_device(), DEFAULT_CONSOLE);
    }

    #[test]
    fn invalid_values_are_reported_not_fatal() {
        let (cfg, errs) = GuestConfig::from_cmdline(
            "vimana.ip=10.0.0.300/24 vimana.gw=10.0.0.1 vimana.hostname=bad_name vimana.dns=x,8.8.8.8",
        );
        assert!(cfg.net.is_none());
        assert!(cfg.hostname.is_none());
        assert_eq!(cfg.dns, vec!["8.8.8.8".parse::<IpAddr>().unwrap()]);
        assert_eq!(errs.len(), 4, "{errs:?}");
        let text = errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("vimana.ip=\"10.0.0.300/24\""), "{text}");
        assert!(text.contains("vimana.gw=10.0.0.1 ignored"), "{text}");
        let (_, errs) = GuestConfig::from_cmdline("vimana.ip=10.0.0.2");
        assert!(matches!(
            &errs[0],
            CmdlineError::Invalid {
                key: "vimana.ip",
                ..
            }
        ));
        let (_, errs) = GuestConfig::from_cmdline("vimana.ip=10.0.0.2/33");
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn quotes_and_prefix_edges() {
        let (cfg, _) =
            GuestConfig::from_cmdline("foo=\"a b\" vimana.hostname=\"h1\" vimana.ip=1.2.3.4/0");
        assert_eq!(cfg.hostname.as_deref(), Some("h1"));
        let net = cfg.net.unwrap();
        assert_eq!(net.netmask(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(net.gateway, None);
        let (cfg, _) = GuestConfig::from_cmdline("vimana.ip=1.2.3.4/32 vimana.console=/dev/ttyS1");
        assert_eq!(cfg.net.unwrap().netmask(), Ipv4Addr::BROADCAST);
        assert_eq!(cfg.console_device(), "ttyS1");
    }

    #[test]
    fn to_cmdline_roundtrips() {
        let cfg = GuestConfig {
            hostname: Some("vm1".into()),
            net: Some(NetConfig {
                addr: Ipv4Addr::new(172, 16, 0, 2),
                prefix: 30,
                gateway: Some(Ipv4Addr::new(172, 16, 0, 1)),
            }),
            dns: vec!["9.9.9.9".parse().unwrap(), "1.1.1.1".parse().unwrap()],
            console: Some("ttyS0".into()),
            volumes: vec![
                VolumeMount {
                    disk: "vimana-d1".into(),
                    target: "/data".into(),
                    read_only: true,
                },
                VolumeMount {
                    disk: "/dev/vdc".into(),
                    target: "/srv/cache".into(),
                    read_only: false,
                },
            ],
        };
        let line = cfg.to_cmdline();
        assert_eq!(
            line,
            "vimana.hostname=vm1 vimana.ip=172.16.0.2/30 vimana.gw=172.16.0.1 \
             vimana.dns=9.9.9.9,1.1.1.1 vimana.console=ttyS0 \
             vimana.volume=vimana-d1,/data,ro vimana.volume=/dev/vdc,/srv/cache"
        );
        let (back, errs) = GuestConfig::from_cmdline(&line);
        assert!(errs.is_empty());
        assert_eq!(back, cfg);
    }

    #[test]
    fn bad_volumes_are_reported() {
        for bad in [
            "vimana.volume=vimana-d1",
            "vimana.volume=vimana-d1,data",
            "vimana.volume=vimana-d1,/",
            "vimana.volume=vimana-d1,/a/../b",
            "vimana.volume=../x,/data",
            "vimana.volume=etc/x,/data",
            "vimana.volume=vimana-d1,/data,rx",
            "vimana.volume=vimana-d1,/data,ro,extra",
        ] {
            let (cfg, errs) = GuestConfig::from_cmdline(bad);
            assert!(cfg.volumes.is_empty(), "{bad}");
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert!(errs[0].to_string().contains("vimana.volume"), "{}", errs[0]);
        }
    }
}
