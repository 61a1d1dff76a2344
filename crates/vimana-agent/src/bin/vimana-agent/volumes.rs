//! `vimana.volume=` disks, mounted before the agent reports ready.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount};
use vimana_agent::cmdline::VolumeMount;

use crate::log;

/// How long a disk may take to appear after the agent starts.
const DISK_WAIT: Duration = Duration::from_secs(5);

/// Mounts every volume; a volume that cannot be mounted is logged on the
/// console and skipped (the guest still comes up).
pub fn mount_volumes(volumes: &[VolumeMount]) {
    for v in volumes {
        match mount_one(v) {
            Ok(how) => log(&format!("volume {} mounted ({how})", v.target)),
            Err(e) => log(&format!("volume {}: {e}", v.target)),
        }
    }
}

fn mount_one(v: &VolumeMount) -> Result<String, String> {
    let dev = find_disk(&v.disk, DISK_WAIT)
        .ok_or_else(|| format!("no disk {} appeared within {DISK_WAIT:?}", v.disk))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&v.target)
        .map_err(|e| format!("cannot create the mount point: {e}"))?;
    let mut flags = MsFlags::empty();
    if v.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let mut tried = Vec::new();
    for fstype in block_filesystems() {
        match mount(
            Some(dev.as_path()),
            v.target.as_str(),
            Some(fstype.as_str()),
            flags,
            None::<&str>,
        ) {
            Ok(()) => {
                let mode = if v.read_only { "ro" } else { "rw" };
                return Ok(format!("{} {fstype} {mode}", dev.display()));
            }
            Err(e) => tried.push(format!("{fstype}: {e}")),
        }
    }
    Err(format!(
        "cannot mount {} ({})",
        dev.display(),
        if tried.is_empty() {
            "the kernel lists no block filesystems".to_string()
        } else {
            tried.join(", ")
        }
    ))
}

/// `/dev/<name>` as given, or the virtio-blk disk whose serial is `disk`.
fn find_disk(disk: &str, wait: Duration) -> Option<PathBuf> {
    let deadline = Instant::now() + wait;
    loop {
        if disk.starts_with("/dev/") {
            if Path::new(disk).exists() {
                return Some(PathBuf::from(disk));
            }
        } else if let Some(dev) = by_serial(disk) {
            return Some(dev);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn by_serial(serial: &str) -> Option<PathBuf> {
    fs::read_dir("/sys/block").ok()?.flatten().find_map(|e| {
        let s = fs::read_to_string(e.path().join("serial")).ok()?;
        (s.trim() == serial).then(|| Path::new("/dev").join(e.file_name()))
    })
}

/// Filesystems of `/proc/filesystems` that need a device (ext4 first).
fn block_filesystems() -> Vec<String> {
    let text = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mut types: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    types.sort_by_key(|t| t != "ext4");
    types
}
