//! The `vimana init` checks.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use crate::fmt::{format_bytes, format_duration, plural};
use crate::kvm::kvm_usable;
use crate::paths::{existing_ancestor, hypervisors, which};
use crate::{Check, CheckOptions};

/// Minimum total memory for the memory check.
pub const MIN_MEMORY: u64 = 512 * 1024 * 1024;
/// Minimum free space under the home directory for the disk check.
pub const MIN_FREE_DISK: u64 = 1024 * 1024 * 1024;

/// Supported hypervisor binaries, in table order, with how to install each.
pub const HYPERVISORS: [(&str, &str); 3] = [
    (
        "qemu-system-x86_64",
        "apt-get install qemu-system-x86 (Debian/Ubuntu) or dnf install qemu-system-x86 (Fedora)",
    ),
    (
        "firecracker",
        "download a release from https://github.com/firecracker-microvm/firecracker/releases \
         and put `firecracker` on PATH",
    ),
    (
        "cloud-hypervisor",
        "download a release from https://github.com/cloud-hypervisor/cloud-hypervisor/releases \
         and put `cloud-hypervisor` on PATH",
    ),
];

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Run every check, in table order: cpu, memory, disk, kvm, tun, vsock, cgroup-v2,
/// then one row per entry of [`HYPERVISORS`]. Never panics; takes at most about
/// `opts.kvm_timeout` + 0.5 s.
pub fn run_checks(opts: &CheckOptions) -> Vec<Check> {
    let mut rows = vec![
        check_cpus(),
        check_memory(),
        check_disk(&opts.home),
        check_kvm(opts),
        check_tun(),
        check_vsock(),
        check_cgroup_v2(),
    ];
    rows.extend(
        hypervisors()
            .into_iter()
            .zip(HYPERVISORS)
            .map(|((binary, path), (_, hint))| match path {
                Some(p) => Check::pass(&binary, p.display().to_string()),
                None => Check::fail(&binary, "not found on PATH", hint),
            }),
    );
    rows
}

fn check_cpus() -> Check {
    match std::thread::available_parallelism() {
        Ok(n) => Check::pass("cpu", plural(n.get(), "CPU", "CPUs")),
        Err(e) => Check::fail(
            "cpu",
            format!("unknown ({e})"),
            "check that /proc and /sys are mounted",
        ),
    }
}

fn check_memory() -> Check {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let total = sys.total_memory();
    if total == 0 {
        Check::fail("memory", "unknown", "check that /proc/meminfo is readable")
    } else if total < MIN_MEMORY {
        Check::fail(
            "memory",
            format_bytes(total),
            format!("vimana needs at least {} of RAM", format_bytes(MIN_MEMORY)),
        )
    } else {
        Check::pass("memory", format_bytes(total))
    }
}

fn check_disk(home: &Path) -> Check {
    let Some(base) = existing_ancestor(home) else {
        return Check::fail(
            "disk",
            format!("no existing directory above {}", home.display()),
            "check the vimana home path",
        );
    };
    let stat = match nix::sys::statvfs::statvfs(base.as_path()) {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                "disk",
                format!("statvfs {}: {e}", base.display()),
                "check the vimana home path and its permissions",
            );
        }
    };
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    let mut value = format!("{} free under {}", format_bytes(free), home.display());
    if base != home {
        value.push_str(&format!(
            " (not created yet; measured at {})",
            base.display()
        ));
    }
    if free >= MIN_FREE_DISK {
        Check::pass("disk", value)
    } else {
        Check::fail(
            "disk",
            value,
            format!(
                "free at least {} there, or point vimana's home elsewhere",
                format_bytes(MIN_FREE_DISK)
            ),
        )
    }
}

fn check_kvm(opts: &CheckOptions) -> Check {
    let start = std::time::Instant::now();
    match kvm_usable(opts.kvm_timeout) {
        Ok(()) => Check::pass(
            "kvm",
            format!(
                "usable: test guest ran natively (loop, OUT 0x10 ← 0x42, HLT) in {}",
                format_duration(start.elapsed())
            ),
        ),
        Err(e) => {
            let mut value = e.to_string();
            if Path::new("/sys/module/kvm_pvm").exists() {
                value.push_str(" [/dev/kvm is provided by kvm_pvm]");
            }
            Check::fail("kvm", value, e.hint())
        }
    }
}

fn open_rw(path: &str) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
}

fn check_tun() -> Check {
    const TUN: &str = "/dev/net/tun";
    match open_rw(TUN) {
        Ok(()) => Check::pass("tun", format!("{TUN} opens read-write")),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Check::fail(
            "tun",
            format!("{TUN}: {e}"),
            "run vimana as root or grant it CAP_NET_ADMIN (e.g. `setcap cap_net_admin+ep`)",
        ),
        Err(e) => Check::fail(
            "tun",
            format!("{TUN}: {e}"),
            "`modprobe tun` (and make sure /dev/net/tun exists)",
        ),
    }
}

fn check_vsock() -> Check {
    const VHOST_VSOCK: &str = "/dev/vhost-vsock";
    let device = open_rw(VHOST_VSOCK);
    if device.is_ok() {
        return Check::pass("vsock", format!("{VHOST_VSOCK} opens read-write"));
    }
    if let Some(path) = which("vhost-device-vsock") {
        return Check::pass("vsock", format!("vhost-device-vsock at {}", path.display()));
    }
    let why = match device {
        Err(e) if e.kind() == io::ErrorKind::NotFound => "missing".to_owned(),
        Err(e) => e.to_string(),
        Ok(()) => "ok".to_owned(),
    };
    Check::fail(
        "vsock",
        format!("{VHOST_VSOCK}: {why}; vhost-device-vsock not on PATH"),
        "`modprobe vhost_vsock` (kernel backend) or `cargo install vhost-device-vsock` \
         (user-space backend)",
    )
}

fn check_cgroup_v2() -> Check {
    let controllers = Path::new(CGROUP_ROOT).join("cgroup.controllers");
    match std::fs::read_to_string(&controllers) {
        Ok(list) => {
            let names: Vec<&str> = list.split_whitespace().collect();
            if names.is_empty() {
                Check::pass("cgroup-v2", "cgroup v2 (no controllers enabled)")
            } else {
                Check::pass("cgroup-v2", format!("cgroup v2: {}", names.join(", ")))
            }
        }
        Err(_) => {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            Check::fail(
                "cgroup-v2",
                describe_cgroup_mounts(&mounts),
                "vimana needs the unified cgroup v2 hierarchy at /sys/fs/cgroup: boot with \
                 `systemd.unified_cgroup_hierarchy=1`, or `mount -t cgroup2 none /sys/fs/cgroup`",
            )
        }
    }
}

/// Explain what is mounted instead of a cgroup v2 root, from `/proc/self/mounts`.
pub(crate) fn describe_cgroup_mounts(mounts: &str) -> String {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(target), Some(fstype)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        match fstype {
            "cgroup" => {
                let name = Path::new(target)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| target.to_owned());
                v1.push(name);
            }
            "cgroup2" => v2.push(target.to_owned()),
            _ => {}
        }
    }
    let mut out = if v1.is_empty() {
        format!("no cgroup v2 at {CGROUP_ROOT}")
    } else {
        format!("cgroup v1 ({})", v1.join(", "))
    };
    if !v2.is_empty() {
        out.push_str(&format!("; cgroup2 only at {}", v2.join(", ")));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cgroup_hybrid_description() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            describe_cgroup_mounts(mounts),
            "cgroup v1 (cpu, memory); cgroup2 only at /sys/fs/cgroup/unified"
        );
        assert_eq!(
            describe_cgroup_mounts("proc /proc proc rw 0 0\n"),
            "no cgroup v2 at /sys/fs/cgroup"
        );
    }

    #[test]
    fn disk_check_walks_up_to_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("not/yet/.vimana");
        let row = check_disk(&home);
        assert_eq!(row.name, "disk");
        assert!(row.value.contains("free under"), "{row:?}");
        assert!(row.value.contains("not created yet"), "{row:?}");
        let row = check_disk(dir.path());
        assert!(!row.value.contains("not created yet"), "{row:?}");
    }

    #[test]
    fn run_checks_returns_all_rows_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let opts = CheckOptions {
            home: dir.path().join(".vimana"),
            kvm_timeout: Duration::from_secs(3),
        };
        let start = Instant::now();
        let rows = run_checks(&opts);
        let took = start.elapsed();
        let names: Vec<&str> = rows.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "memory",
                "disk",
                "kvm",
                "tun",
                "vsock",
                "cgroup-v2",
                "qemu-system-x86_64",
                "firecracker",
                "cloud-hypervisor"
            ]
        );
        for row in &rows {
            let mark = if row.ok { '✓' } else { '✗' };
            println!("{mark} {:<20} {}", row.name, row.value);
            if let Some(hint) = &row.hint {
                println!("  {:<20} hint: {hint}", "");
            }
            assert!(!row.value.is_empty(), "{row:?}");
            assert_eq!(row.ok, row.hint.is_none(), "{row:?}");
        }
        println!("run_checks took {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
}
