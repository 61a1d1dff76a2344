//! QEMU `microvm`: the argv, the `vhost-device-vsock` sidecar before it, and
//! control over QMP. Guest memory is a shared memfd so the vhost-user vsock
//! backend can map it. The serial console is a unix socket server (attach)
//! that also logs to `console_log`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::qmp::Qmp;
use super::{
    Accel, HostFacts, LaunchPlan, LaunchSpec, NetSpec, ProcessPlan, ProviderError, Vmm, VmmStatus,
    check_socket_paths, drive_serial, utf8, vsock,
};
use crate::model::{Protocol, Provider};

/// How long QMP may take to answer one command.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// `qemu-system-x86_64` and the vsock sidecar binary.
#[derive(Clone, Debug)]
pub struct Qemu {
    pub binary: PathBuf,
    pub vsock_binary: PathBuf,
}

impl Default for Qemu {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("qemu-system-x86_64"),
            vsock_binary: PathBuf::from(vsock::SIDECAR_BINARY),
        }
    }
}

impl Qemu {
    /// The QMP socket of a VM.
    pub fn qmp_socket(spec: &LaunchSpec) -> PathBuf {
        spec.run_path("qmp.sock")
    }

    /// The QEMU command line for `spec` (the VMM process only).
    pub fn argv(&self, spec: &LaunchSpec) -> Result<Vec<String>, ProviderError> {
        let mem = format!("{}M", spec.memory_mib);
        let mut a: Vec<String> = Vec::with_capacity(48);
        let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
        push(&[utf8(&self.binary, "QEMU binary")?]);
        push(&["-name", &esc(&spec.id)]);
        push(&["-M", "microvm,memory-backend=mem,rtc=on"]);
        match spec.accel {
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
        }
        push(&["-smp", &spec.cpus.to_string(), "-m", &mem]);
        push(&[
            "-object",
            &format!("memory-backend-memfd,id=mem,size={mem},share=on"),
        ]);
        push(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
        push(&["-kernel", utf8(&spec.kernel, "kernel")?]);
        if let Some(initrd) = &spec.initrd {
            push(&["-initrd", utf8(initrd, "initrd")?]);
        }
        push(&["-append", &spec.cmdline]);
        let console = format!(
            "socket,id=con0,path={},server=on,wait=off,logfile={},logappend=on",
            esc_path(&spec.console_socket, "console socket")?,
            esc_path(&spec.console_log, "console log")?,
        );
        push(&["-chardev", &console, "-serial", "chardev:con0"]);
        let qmp = format!(
            "unix:{},server=on,wait=off",
            esc_path(&Self::qmp_socket(spec), "QMP socket")?
        );
        push(&["-qmp", &qmp]);
        if spec.vsock.is_some() {
            let chardev = format!(
                "socket,id=vsock0,path={}",
                esc_path(&vsock::vhost_socket(spec), "vhost-user socket")?
            );
            push(&["-chardev", &chardev]);
            push(&["-device", "vhost-user-vsock-device,chardev=vsock0"]);
        }
        for (i, drive) in spec.drives().enumerate() {
            let mut d = format!(
                "id=d{i},file={},format=raw,if=none",
                esc_path(&drive.path, "drive")?
            );
            if drive.read_only {
                d.push_str(",readonly=on");
            }
            push(&["-drive", &d]);
            push(&[
                "-device",
                &format!("virtio-blk-device,drive=d{i},serial={}", drive_serial(i)),
            ]);
        }
        match &spec.net {
            NetSpec::None => {}
            NetSpec::User { forwards } => {
                // restrict=on: slirp maps 10.0.2.2 to the host's
                // 127.0.0.1, so an unrestricted guest reaches every service
                // on the host's loopback (the daemon's TCP API, the
                // gateway). Restricted, the guest reaches neither the host
                // nor the outside; the declared forwards still work.
                let mut n = String::from("user,id=n0,restrict=on");
                for f in forwards {
                    let proto = match f.protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                    };
                    n.push_str(&format!(
                        ",hostfwd={proto}:127.0.0.1:{}-:{}",
                        f.host, f.guest
                    ));
                }
                push(&["-netdev", &n, "-device", "virtio-net-device,netdev=n0"]);
            }
            NetSpec::Tap { tap, mac } => {
                let n = format!("tap,id=n0,ifname={},script=no,downscript=no", esc(tap));
                let d = format!("virtio-net-device,netdev=n0,mac={}", esc(mac));
                push(&["-netdev", &n, "-device", &d]);
            }
        }
        Ok(a)
    }
}

#[async_trait]
impl Vmm for Qemu {
    fn provider(&self) -> Provider {
        Provider::Qemu
    }

    fn check(&self, host: &HostFacts) -> Result<(), String> {
        host.require(
            &self.binary,
            "install QEMU (Debian: apt-get install qemu-system-x86)",
        )?;
        host.require(
            &self.vsock_binary,
            "install it with `cargo install vhost-device-vsock` (QEMU's vsock backend)",
        )?;
        Ok(())
    }

    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, ProviderError> {
        let mut plan = LaunchPlan::default();
        if let Some(v) = &spec.vsock {
            plan.remove_first.push(v.uds_path.clone());
            plan.processes
                .push(vsock::sidecar(&self.vsock_binary, spec, v)?);
        }
        let qmp = Self::qmp_socket(spec);
        plan.processes.push(ProcessPlan {
            name: "qemu".into(),
            argv: self.argv(spec)?,
            env: Vec::new(),
            cwd: Some(spec.run_dir.clone()),
            stdout: spec.run_path("qemu.stdout"),
            stderr: spec.run_path("qemu.stderr"),
            wait_for: vec![qmp, spec.console_socket.clone()],
        });
        check_socket_paths(&plan)?;
        Ok(plan)
    }

    async fn request_shutdown(&self, spec: &LaunchSpec) -> Result<(), ProviderError> {
        let mut qmp = Qmp::connect(&Self::qmp_socket(spec), QMP_TIMEOUT).await?;
        qmp.system_powerdown().await
    }

    async fn status(&self, spec: &LaunchSpec) -> Result<VmmStatus, ProviderError> {
        let mut qmp = Qmp::connect(&Self::qmp_socket(spec), QMP_TIMEOUT).await?;
        Ok(qmp.query_status().await?.into_status())
    }
}

/// Escapes a value inside a QEMU `key=value,…` option (`,` → `,,`).
fn esc(value: &str) -> String {
    value.replace(',', ",,")
}

fn esc_path(path: &Path, what: &str) -> Result<String, ProviderError> {
    Ok(esc(utf8(path, what)?))
}

/// The host's TSC frequency in kHz, for `tsc_early_khz=` under TCG (the
/// guest cannot calibrate its TSC without a PIT/HPET reference there).
/// Reads `/sys/devices/system/cpu/cpu0/tsc_freq_khz` when the kernel exposes
/// it, else `cpu MHz` from `/proc/cpuinfo`.
pub fn host_tsc_khz() -> Option<u64> {
    let sysfs = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/tsc_freq_khz").ok();
    if let Some(khz) = sysfs.and_then(|s| s.trim().parse::<u64>().ok()) {
        return Some(khz).filter(|k| *k > 0);
    }
    parse_cpuinfo_khz(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

/// The first `cpu MHz` line of `/proc/cpuinfo`, in kHz (rounded).
pub fn parse_cpuinfo_khz(cpuinfo: &str) -> Option<u64> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() != "cpu MHz" {
            return None;
        }
        let mhz: f64 = value.trim().parse().ok()?;
        (mhz.is_finite() && mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
    })
}

#[cfg(test)]
#[path = "qemu_tests.rs"]
mod tests;
