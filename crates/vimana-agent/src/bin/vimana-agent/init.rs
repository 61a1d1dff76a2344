//! PID 1 duties: filesystems, hostname, network, power off.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::reboot::{RebootMode, reboot};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, sync};
use vimana_agent::cmdline::GuestConfig;

use crate::{log, net};

struct Fs {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

fn filesystems() -> Vec<Fs> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    vec![
        Fs {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: nosuid_nodev | MsFlags::MS_NOEXEC,
            data: None,
        },
        Fs {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: nosuid_nodev | MsFlags::MS_NOEXEC,
            data: None,
        },
        Fs {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
        },
        Fs {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("mode=0620,ptmxmode=0666,gid=5"),
        },
        Fs {
            source: "shm",
            target: "/dev/shm",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=1777"),
        },
        Fs {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=0755"),
        },
        Fs {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=1777"),
        },
    ]
}

/// Mount points listed in /proc/self/mounts (empty before /proc exists).
fn mounted() -> Vec<String> {
    fs::read_to_string("/proc/self/mounts")
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Mounts the pseudo filesystems that are not mounted yet. Failures are
/// logged, never fatal.
pub fn mount_filesystems() {
    for fs in filesystems() {
        let already = if fs.target == "/proc" {
            Path::new("/proc/self").exists()
        } else {
            mounted().iter().any(|m| m == fs.target)
        };
        if already {
            continue;
        }
        if let Err(e) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(fs.target)
        {
            log(&format!("cannot create {}: {e}", fs.target));
            continue;
        }
        match mount(
            Some(fs.source),
            fs.target,
            Some(fs.fstype),
            fs.flags,
            fs.data,
        ) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => log(&format!("cannot mount {} on {}: {e}", fs.fstype, fs.target)),
        }
    }
}

/// Reads and applies the `vimana.*` kernel parameters (hostname, network,
/// DNS). Returns the configuration for the console device.
pub fn configure_from_cmdline() -> GuestConfig {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_else(|e| {
        log(&format!("cannot read /proc/cmdline: {e}"));
        String::new()
    });
    let (cfg, errors) = GuestConfig::from_cmdline(&cmdline);
    for e in &errors {
        log(&e.to_string());
    }
    if let Some(h) = &cfg.hostname
        && let Err(e) = nix::unistd::sethostname(h)
    {
        log(&format!("cannot set hostname {h:?}: {e}"));
    }
    if let Err(e) = net::interface_up("lo") {
        log(&format!("cannot bring lo up: {e}"));
    }
    if let Some(n) = &cfg.net
        && let Err(e) = net::configure("eth0", n)
    {
        log(&format!("cannot configure eth0: {e}"));
    }
    if !cfg.dns.is_empty() {
        let text: String = cfg
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect();
        if let Err(e) =
            fs::create_dir_all("/etc").and_then(|()| fs::write("/etc/resolv.conf", text))
        {
            log(&format!("cannot write /etc/resolv.conf: {e}"));
        }
    }
    cfg
}

/// Stops everything and powers off (or reboots). Never returns.
pub fn power_off(reboot_instead: bool) -> ! {
    log(if reboot_instead {
        "rebooting"
    } else {
        "powering off"
    });
    sync();
    let all = Pid::from_raw(-1);
    let _ = kill(all, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    // kill(-1, 0) fails with ESRCH once no other process is left.
    while Instant::now() < deadline && kill(all, None).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(all, Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(100));
    sync();
    for target in ["/tmp", "/run", "/dev/shm", "/dev/pts"] {
        let _ = umount2(target, MntFlags::MNT_DETACH);
    }
    let _ = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    );
    sync();
    let mode = if reboot_instead {
        RebootMode::RB_AUTOBOOT
    } else {
        RebootMode::RB_POWER_OFF
    };
    loop {
        let Err(e) = reboot(mode);
        log(&format!("reboot({mode:?}) failed: {e}"));
        std::thread::sleep(Duration::from_secs(5));
    }
}
