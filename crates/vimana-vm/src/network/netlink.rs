//! [`NetOps`] against the kernel: links and addresses over rtnetlink, TAP
//! devices through `/dev/net/tun`, NAT through the `nft` command.
//!
//! Everything happens in the network namespace of the calling thread: the
//! netlink socket is bound to the namespace it was opened in, and the tun
//! ioctls, `/proc/sys` writes and `nft` children run on the calling thread.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;
use std::process::{Command, Stdio};

use async_trait::async_trait;
use futures::TryStreamExt as _;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use super::error::NetError;
use super::ops::NetOps;

/// The real [`NetOps`].
pub struct NetlinkOps {
    handle: Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl NetlinkOps {
    /// Opens a netlink socket in the current thread's network namespace;
    /// must be called inside a tokio runtime (the socket's driver task is
    /// spawned on it).
    pub fn connect() -> Result<NetlinkOps, NetError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetError::Io {
                what: "opening a netlink socket".into(),
                source,
            })?;
        let connection = tokio::spawn(connection);
        Ok(NetlinkOps { handle, connection })
    }

    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl_error("looking up link", name, e)),
        }
    }

    async fn index(&self, action: &str, name: &str) -> Result<u32, NetError> {
        match self.link(name).await? {
            Some(l) => Ok(l.header.index),
            None => Err(NetError::Netlink {
                action: action.into(),
                device: name.into(),
                reason: "no such link".into(),
            }),
        }
    }
}

impl Drop for NetlinkOps {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The positive errno of a netlink error, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn nl_error(action: &str, device: &str, e: rtnetlink::Error) -> NetError {
    match errno(&e) {
        Some(libc::EPERM) | Some(libc::EACCES) => NetError::Permission {
            action: action.into(),
            device: device.into(),
        },
        Some(code) => NetError::Netlink {
            action: action.into(),
            device: device.into(),
            reason: std::io::Error::from_raw_os_error(code).to_string(),
        },
        None => NetError::Netlink {
            action: action.into(),
            device: device.into(),
            reason: e.to_string(),
        },
    }
}

fn name_of(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

#[async_trait]
impl NetOps for NetlinkOps {
    async fn create_bridge(&self, name: &str) -> Result<(), NetError> {
        match self
            .handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_error("creating bridge", name, e)),
        }
    }

    async fn add_address(&self, link: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
        let action = format!("adding address {addr}/{prefix} to");
        let index = self.index(&action, link).await?;
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(addr), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_error(&action, link, e)),
        }
    }

    async fn set_up(&self, link: &str) -> Result<(), NetError> {
        let index = self.index("setting up", link).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl_error("setting up", link, e))
    }

    async fn create_tap(&self, name: &str, owner: Option<u32>) -> Result<(), NetError> {
        create_persistent_tap(name, owner).map_err(|source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::Permission {
                action: "creating tap".into(),
                device: name.into(),
            },
            _ => NetError::Tun {
                tap: name.into(),
                source,
            },
        })
    }

    async fn attach_to_bridge(&self, link: &str, bridge: &str) -> Result<(), NetError> {
        let action = format!("attaching to bridge {bridge}:");
        let bridge_index = self.index(&action, bridge).await?;
        let index = self.index(&action, link).await?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(index)
                    .controller(bridge_index)
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| nl_error(&action, link, e))
    }

    async fn delete_link(&self, name: &str) -> Result<bool, NetError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(nl_error("deleting link", name, e)),
        }
    }

    async fn link_exists(&self, name: &str) -> Result<bool, NetError> {
        Ok(self.link(name).await?.is_some())
    }

    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetError> {
        let mut links = self.handle.link().get().execute();
        let mut names = Vec::new();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(|e| nl_error("listing links", &format!("{prefix}*"), e))?
        {
            if let Some(n) = name_of(&link).filter(|n| n.starts_with(prefix)) {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }

    async fn enable_ip_forward(&self) -> Result<(), NetError> {
        let path = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        std::fs::write(path, "1").map_err(|source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::Permission {
                action: "enabling".into(),
                device: "net.ipv4.ip_forward".into(),
            },
            _ => NetError::Io {
                what: format!("writing {path}"),
                source,
            },
        })
    }

    async fn enable_route_localnet(&self, link: &str) -> Result<(), NetError> {
        let path = format!("/proc/sys/net/ipv4/conf/{link}/route_localnet");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        std::fs::write(&path, "1").map_err(|source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::Permission {
                action: "enabling".into(),
                device: format!("net.ipv4.conf.{link}.route_localnet"),
            },
            _ => NetError::Io {
                what: format!("writing {path}"),
                source,
            },
        })
    }

    fn nft_available(&self) -> bool {
        nft_binary().is_some()
    }

    async fn nft_apply(&self, table: &str, ruleset: &str) -> Result<(), NetError> {
        // Creating the table first makes the delete valid whether or not it
        // existed; `nft -f` applies the whole script as one transaction.
        let script = format!("table ip {table} {{}}\ndelete table ip {table}\n{ruleset}\n");
        run_nft(&["-f", "-"], Some(&script))
    }

    async fn nft_remove(&self, table: &str) -> Result<(), NetError> {
        let script = format!("table ip {table} {{}}\ndelete table ip {table}\n");
        run_nft(&["-f", "-"], Some(&script))
    }
}

fn nft_binary() -> Option<std::path::PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs `nft` on the calling thread (so it inherits the thread's network
/// namespace) and reports its stderr on failure.
fn run_nft(args: &[&str], stdin: Option<&str>) -> Result<(), NetError> {
    let nft =
        nft_binary().ok_or_else(|| NetError::Nft("the nft command is not installed".into()))?;
    let mut child = Command::new(&nft)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Nft(format!("cannot run {}: {e}", nft.display())))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or_default().as_bytes())
            .map_err(|e| NetError::Nft(format!("writing the ruleset: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Nft(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Nft(format!(
            "nft {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_int_bad!(tun_set_persist, libc::TUNSETPERSIST);
nix::ioctl_write_int_bad!(tun_set_owner, libc::TUNSETOWNER);

/// `ip tuntap add <name> mode tap [user <owner>]`: TUNSETIFF, TUNSETOWNER,
/// TUNSETPERSIST on a `/dev/net/tun` descriptor, which is then closed.
fn create_persistent_tap(name: &str, owner: Option<u32>) -> std::io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?} (1 to 15 characters, no '/' or spaces)"),
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let flags = libc::IFF_TAP | libc::IFF_NO_PI;
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    let fd = file.as_raw_fd();
    // SAFETY: fd is an open /dev/net/tun descriptor and req a valid ifreq
    // that outlives the call.
    unsafe { tun_set_iff(fd, &req) }.map_err(std::io::Error::from)?;
    if let Some(uid) = owner {
        let uid = libc::c_int::try_from(uid)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "uid too large"))?;
        // SAFETY: fd is the tun descriptor configured above.
        unsafe { tun_set_owner(fd, uid) }.map_err(std::io::Error::from)?;
    }
    // SAFETY: as above.
    unsafe { tun_set_persist(fd, 1) }.map_err(std::io::Error::from)?;
    Ok(())
}
