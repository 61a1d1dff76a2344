//! From a validated [`VmConfig`] to a [`LaunchSpec`]: the run directory,
//! the kernel and its modules, the guest root (a cached initramfs with the
//! agent), the accelerator and the kernel command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use vimana_agent::cmdline::VolumeMount;
use vimana_core::DriverError;

use crate::initramfs::{self, InitramfsSpec};
use crate::model::{NetworkMode, Provider, RootFs, VmConfig};
use crate::network::TapLease;
use crate::provider::{Accel, DriveSpec, LaunchSpec, NetSpec, VsockSpec, guest_disk, host_tsc_khz};

use super::VmDriverConfig;

/// The guest CID of every VM: each VM has its own vsock backend, so CIDs
/// need not differ between VMs.
pub const GUEST_CID: u32 = 3;

/// Words vimana always puts on the kernel command line.
const BASE_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 quiet";

/// The modules directory of a kernel in the Debian package layout
/// (`<root>/boot/vmlinuz-<rel>` → `<root>/lib/modules/<rel>`).
pub fn modules_next_to(kernel: &Path) -> Option<PathBuf> {
    let name = kernel.file_name()?.to_str()?;
    let release = name.strip_prefix("vmlinuz-")?;
    let root = kernel.parent()?.parent()?;
    let dir = root.join("lib/modules").join(release);
    dir.is_dir().then_some(dir)
}

/// The kernel to boot: the config's, else the daemon's default.
pub fn kernel_of(config: &VmConfig, cfg: &VmDriverConfig) -> Result<PathBuf, DriverError> {
    let kernel = config
        .kernel
        .clone()
        .or_else(|| cfg.default_kernel.clone())
        .ok_or_else(|| {
            DriverError::new(
                "no kernel: hac.toml names none and no default kernel is configured; \
                 set `kernel` in [hardware] (or [boot]), or put one at \
                 VIMANA_HOME/vm/kernel (scripts/vm-test-assets.sh fetches Debian's cloud kernel)",
            )
        })?;
    if !kernel.is_file() {
        return Err(DriverError::new(format!(
            "kernel {} does not exist; fix the `kernel` path in hac.toml",
            kernel.display()
        )));
    }
    Ok(kernel)
}

/// The guest agent to bake into guests (`cfg.agent`, else
/// `$VIMANA_AGENT`, else the static agent embedded at build time by
/// `vimana-agent-image`, else [`vimana_agent::locate_static_agent`]), refused unless it is a static
/// executable: it runs as PID 1 before any library exists in the guest (a
/// dynamically linked one makes the kernel panic with "not found").
pub fn guest_agent(cfg: &VmDriverConfig) -> Result<PathBuf, DriverError> {
    let how = format!(
        "build the static agent with scripts/build-agent.sh and set `[vm] agent` in \
         config.toml (or {}) to the path it prints",
        vimana_agent::AGENT_ENV
    );
    let explicit = cfg.agent.clone().or_else(|| {
        std::env::var_os(vimana_agent::AGENT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let embedded = match (&explicit, vimana_agent_image::AGENT) {
        (None, Some(bytes)) => Some(embedded_agent(cfg, bytes)?),
        _ => None,
    };
    let agent = explicit
        .or(embedded)
        .or_else(vimana_agent::locate_static_agent)
        .ok_or_else(|| {
            DriverError::new(format!(
                "the guest agent (a static `vimana-agent` binary) was not found: {how}"
            ))
        })?;
    let data = std::fs::read(&agent).map_err(|e| {
        DriverError::new(format!(
            "cannot read the guest agent {}: {e}; {how}",
            agent.display()
        ))
    })?;
    if let Some(why) = initramfs::not_static(&data) {
        return Err(DriverError::new(format!(
            "the guest agent {} is not a static executable ({why}): it runs as PID 1 in the \
             guest, where no dynamic loader or libc exists (a plain `cargo build` links \
             vimana-agent dynamically); {how}",
            agent.display()
        )));
    }
    Ok(agent)
}

/// The agent embedded in this binary at build time, written once to
/// `<cache>/agent/vimana-agent-<sha256>` (content-addressed, atomically).
fn embedded_agent(cfg: &VmDriverConfig, bytes: &[u8]) -> Result<PathBuf, DriverError> {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let path = cfg
        .cache_dir
        .join("agent")
        .join(format!("vimana-agent-{hex}"));
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        DriverError::new(format!(
            "cannot {what} the embedded guest agent at {}: {e}",
            path.display()
        ))
    };
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", &e))?;
    }
    initramfs::write_atomically(&path, bytes).map_err(|e| fail("write", &e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| fail("make executable", &e))?;
    Ok(path)
}

/// Builds (or finds in the cache) the initramfs: busybox, the kernel's
/// virtio/vsock modules and the agent.
pub fn initramfs_for(
    config: &VmConfig,
    kernel: &Path,
    cfg: &VmDriverConfig,
) -> Result<PathBuf, DriverError> {
    let agent = guest_agent(cfg)?;
    let mut spec = InitramfsSpec::new(cfg.busybox.clone());
    spec.agent = Some(agent);
    let modules = config.modules.clone().or_else(|| modules_next_to(kernel));
    if let Some(dir) = modules {
        spec = spec.with_default_modules(dir);
    }
    // Assembling the archive to find its content key costs ~0.3 s; within
    // one daemon, unchanged inputs (same files, sizes, mtimes) reuse it.
    let quick = format!("{}|{}", cfg.cache_dir.display(), quick_key(&spec));
    let memo = MEMO.get_or_init(Default::default);
    if let Some(path) = memo
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&quick)
        .filter(|p| p.is_file())
    {
        return Ok(path.clone());
    }
    let info = initramfs::build_cached(&spec, &cfg.cache_dir)
        .map_err(|e| DriverError::new(format!("cannot build the guest initramfs: {e}")))?;
    memo.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(quick, info.path.clone());
    Ok(info.path)
}

/// Initramfs archives built by this process, by [`quick_key`].
static MEMO: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();

/// The inputs of an initramfs by path, size and mtime (not content).
fn quick_key(spec: &InitramfsSpec) -> String {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                format!("{}:{}:{t}", p.display(), m.len())
            })
            .unwrap_or_else(|_| format!("{}:missing", p.display()))
    };
    let mut parts = vec![stamp(&spec.busybox)];
    if let Some(a) = &spec.agent {
        parts.push(stamp(a));
    }
    if let Some(d) = &spec.modules_dir {
        parts.push(stamp(d));
    }
    parts.extend(spec.modules.iter().cloned());
    parts.join("|")
}

/// eth0 in QEMU's user-mode (slirp) network: the guest address slirp
/// expects, its gateway (the host) and its DNS forwarder.
pub const USER_NET_CMDLINE: &str = "vimana.ip=10.0.2.15/24 vimana.gw=10.0.2.2 vimana.dns=10.0.2.3";

/// The whole kernel command line.
pub fn cmdline(config: &VmConfig, name: &str, accel: Accel, lease: Option<&TapLease>) -> String {
    let mut words = vec![BASE_CMDLINE.to_string(), format!("vimana.hostname={name}")];
    if accel == Accel::Tcg
        && let Some(khz) = host_tsc_khz()
    {
        // Without it about one TCG boot in three hangs calibrating the TSC.
        words.push(format!("tsc_early_khz={khz}"));
    }
    let provider = config.provider_or(Provider::Qemu);
    let has_root_drive = !matches!(config.root, RootFs::Initramfs);
    if has_root_drive {
        // vimana's initramfs mounts the disk and switches to it.
        words.push(format!("vimana.root={}", guest_disk(provider, 0)));
    }
    // The agent mounts the volumes (drives after the root drive).
    for (i, v) in config.volumes.iter().enumerate() {
        let mount = VolumeMount {
            disk: guest_disk(provider, i + usize::from(has_root_drive)),
            target: v.target.clone(),
            read_only: v.read_only,
        };
        words.push(format!("vimana.volume={}", mount.to_value()));
    }
    if let Some(lease) = lease {
        words.push(lease.cmdline());
    } else if config.network.mode == NetworkMode::User {
        // QEMU's user-mode network: fixed guest address, gateway and DNS.
        words.push(USER_NET_CMDLINE.into());
    }
    words.extend(config.cmdline_extra.iter().cloned());
    words.join(" ")
}

/// The provider-independent launch description of VM `name`.
pub fn launch_spec(
    config: &VmConfig,
    name: &str,
    run_dir: &Path,
    accel: Accel,
    cfg: &VmDriverConfig,
    lease: Option<&TapLease>,
) -> Result<LaunchSpec, DriverError> {
    let kernel = kernel_of(config, cfg)?;
    let initrd = Some(initramfs_for(config, &kernel, cfg)?);
    let root_drive = match &config.root {
        RootFs::Initramfs => None,
        RootFs::Drive { path } => Some(DriveSpec {
            path: path.clone(),
            read_only: false,
        }),
        RootFs::Image { reference } => {
            return Err(DriverError::new(format!(
                "the image {reference} has not been turned into a disk (internal error)"
            )));
        }
    };
    let net = match config.network.mode {
        NetworkMode::None => NetSpec::None,
        NetworkMode::User => NetSpec::User {
            forwards: config.network.forwards.clone(),
        },
        NetworkMode::Bridge => match lease {
            Some(lease) => lease.net_spec(),
            None => {
                return Err(DriverError::new(
                    "bridge networking needs a TAP lease (internal error: attach first)",
                ));
            }
        },
    };
    let mut extra_drives = Vec::with_capacity(config.volumes.len());
    for v in &config.volumes {
        if !v.source.is_file() {
            return Err(DriverError::new(format!(
                "volume {}: {} is not a disk image file (volumes are attached as block devices; \
                 make one with `mkfs.ext4 -d DIR IMAGE SIZE`)",
                v.target,
                v.source.display()
            )));
        }
        extra_drives.push(DriveSpec {
            path: v.source.clone(),
            read_only: v.read_only,
        });
    }
    Ok(LaunchSpec {
        id: name.to_string(),
        run_dir: run_dir.to_path_buf(),
        cpus: config.cpus,
        memory_mib: config.memory_mib,
        kernel,
        initrd,
        root_drive,
        extra_drives,
        cmdline: cmdline(config, name, accel, lease),
        net,
        vsock: Some(VsockSpec {
            guest_cid: GUEST_CID,
            uds_path: run_dir.join("vsock.sock"),
        }),
        console_log: run_dir.join("console.log"),
        console_socket: run_dir.join("console.sock"),
        accel,
    })
}

/// The last `n` lines of a console log (empty when unreadable), with
/// control characters other than newlines and tabs dropped.
pub fn console_tail(path: &Path, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(64 * 1024);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect::<String>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_configured_agent_the_embedded_static_one_is_used() {
        if std::env::var_os(vimana_agent::AGENT_ENV).is_some() {
            eprintln!("SKIP: {} is set", vimana_agent::AGENT_ENV);
            return;
        }
        let Some(bytes) = vimana_agent_image::AGENT else {
            assert!(
                std::env::var_os("CI").is_none(),
                "this build embeds no guest agent (see vimana-agent-image's build warning)"
            );
            eprintln!("SKIP: no embedded agent (VIMANA_EMBED_AGENT=0?)");
            return;
        };
        assert_eq!(
            initramfs::not_static(bytes),
            None,
            "the embedded agent is static"
        );
        let tmp = tempfile::tempdir().unwrap();
        let cfg = VmDriverConfig::under(tmp.path());
        assert!(cfg.agent.is_none());
        let first = guest_agent(&cfg).unwrap();
        assert!(first.starts_with(cfg.cache_dir.join("agent")), "{first:?}");
        assert_eq!(std::fs::read(&first).unwrap(), bytes);
        // Written once, content-addressed: the second call reuses it.
        let again = guest_agent(&cfg).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn modules_dir_follows_the_debian_layout() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let boot = tmp.path().join("boot");
        let mods = tmp.path().join("lib/modules/6.1.0-9-cloud-amd64");
        std::fs::create_dir_all(&boot).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(&mods).unwrap_or_else(|e| panic!("{e}"));
        let kernel = boot.join("vmlinuz-6.1.0-9-cloud-amd64");
        assert_eq!(modules_next_to(&kernel), Some(mods));
        assert_eq!(modules_next_to(&boot.join("bzImage")), None);
    }

    #[test]
    fn console_tail_keeps_the_last_printable_lines() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = tmp.path().join("console.log");
        std::fs::write(&log, "a\r\n\x1b[0mb\n\nc\nKernel panic - not syncing\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(console_tail(&log, 2), "c\nKernel panic - not syncing");
        assert_eq!(console_tail(&tmp.path().join("none"), 3), "");
    }

    #[test]
    fn user_networking_configures_the_guest_for_slirp() {
        let mut config = VmConfig {
            provider: None,
            cpus: 1,
            memory_mib: 64,
            disk_bytes: None,
            kernel: None,
            modules: None,
            cmdline_extra: vec!["quiet".into()],
            root: RootFs::Initramfs,
            network: Default::default(),
            volumes: Vec::new(),
            spacecore: Default::default(),
        };
        let none = cmdline(&config, "vm-a", Accel::Kvm, None);
        assert!(!none.contains("vimana.ip="), "{none}");
        config.network.mode = NetworkMode::User;
        let user = cmdline(&config, "vm-a", Accel::Kvm, None);
        assert!(user.contains(USER_NET_CMDLINE), "{user}");
        assert!(user.ends_with(" quiet"), "extras come last: {user}");
        let (parsed, errors) = vimana_agent::cmdline::GuestConfig::from_cmdline(&user);
        assert!(errors.is_empty(), "{errors:?}");
        let net = parsed
            .net
            .unwrap_or_else(|| panic!("no eth0 config in {user}"));
        assert_eq!(net.addr.to_string(), "10.0.2.15");
        assert_eq!(
            net.gateway.map(|g| g.to_string()).as_deref(),
            Some("10.0.2.2")
        );
    }
}
