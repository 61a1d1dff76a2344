//! Interface configuration with the classic `SIOCSIF*` / `SIOCADDRT`
//! ioctls (no netlink, no extra crates).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use vimana_agent::cmdline::NetConfig;

/// `struct rtentry` of `<net/route.h>` (not in the libc crate for glibc).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

const RTF_UP: libc::c_ushort = 0x0001;
const RTF_GATEWAY: libc::c_ushort = 0x0002;

fn inet_socket() -> io::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size (16 bytes) and
    // sockaddr_in is a valid bit pattern for sockaddr.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ioctl<T>(fd: &OwnedFd, request: libc::c_ulong, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `arg` is the structure `request` expects, valid for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg as *mut T) };
    Errno::result(rc).map(drop)
}

fn err(name: &str, what: &str, e: Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{name}: {what}: {e}"))
}

/// Sets IFF_UP on `name`, waiting up to 2 s for the interface to appear.
pub fn interface_up(name: &str) -> io::Result<()> {
    let fd = inet_socket()?;
    let mut req = ifreq(name)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match ioctl(&fd, libc::SIOCGIFFLAGS, &mut req) {
            Ok(()) => break,
            // The driver may still be probing.
            Err(Errno::ENODEV) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(err(name, "SIOCGIFFLAGS", e)),
        }
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ioctl(&fd, libc::SIOCSIFFLAGS, &mut req).map_err(|e| err(name, "SIOCSIFFLAGS", e))
}

/// Brings `name` up with the address, netmask and default route of `cfg`.
pub fn configure(name: &str, cfg: &NetConfig) -> io::Result<()> {
    interface_up(name)?;
    let fd = inet_socket()?;
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_in(cfg.addr);
    ioctl(&fd, libc::SIOCSIFADDR, &mut req).map_err(|e| err(name, "SIOCSIFADDR", e))?;
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_in(cfg.netmask());
    ioctl(&fd, libc::SIOCSIFNETMASK, &mut req).map_err(|e| err(name, "SIOCSIFNETMASK", e))?;
    if let Some(gw) = cfg.gateway {
        let mut dev: Vec<libc::c_char> = name
            .bytes()
            .map(|b| b as libc::c_char)
            .chain(std::iter::once(0))
            .collect();
        let mut rt = RtEntry {
            rt_pad1: 0,
            rt_dst: sockaddr_in(Ipv4Addr::UNSPECIFIED),
            rt_gateway: sockaddr_in(gw),
            rt_genmask: sockaddr_in(Ipv4Addr::UNSPECIFIED),
            rt_flags: RTF_UP | RTF_GATEWAY,
            rt_pad2: 0,
            rt_pad3: 0,
            rt_pad4: std::ptr::null_mut(),
            rt_metric: 0,
            rt_dev: dev.as_mut_ptr(),
            rt_mtu: 0,
            rt_window: 0,
            rt_irtt: 0,
        };
        match ioctl(&fd, libc::SIOCADDRT, &mut rt) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(err(name, &format!("default route via {gw}"), e)),
        }
    }
    Ok(())
}
