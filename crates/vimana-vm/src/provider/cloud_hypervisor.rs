//! Cloud Hypervisor: `cloud-hypervisor --api-socket path=<run_dir>/ch.sock`,
//! then `PUT /api/v1/vm.create` with the VM's configuration and
//! `PUT /api/v1/vm.boot`.
//!
//! The serial console is written to `console_log` (mode `File`; Cloud
//! Hypervisor truncates that file when the VM is created) and the
//! virtio console is off. Limitation: no console socket for interactive
//! attach. No user-mode networking (TAP only). Memory is shared so
//! vhost-user devices can map it.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    ApiCall, HostFacts, HttpMethod, LaunchPlan, LaunchSpec, NetSpec, ProcessPlan, ProviderError,
    Vmm, VmmStatus, api_client, check_socket_paths, drive_serial, require_kvm, utf8,
};
use crate::model::Provider;

const API_TIMEOUT: Duration = Duration::from_secs(5);
const API: &str = "/api/v1";

#[derive(Clone, Debug)]
pub struct CloudHypervisor {
    pub binary: PathBuf,
}

impl Default for CloudHypervisor {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("cloud-hypervisor"),
        }
    }
}

impl CloudHypervisor {
    pub fn api_socket(spec: &LaunchSpec) -> PathBuf {
        spec.run_path("ch.sock")
    }

    /// The body of `PUT /api/v1/vm.create`.
    pub fn vm_config(spec: &LaunchSpec) -> Result<Value, ProviderError> {
        require_kvm(Provider::CloudHypervisor, spec)?;
        let mut payload = json!({
            "kernel": utf8(&spec.kernel, "kernel")?,
            "cmdline": spec.cmdline,
        });
        if let Some(initrd) = &spec.initrd {
            payload["initramfs"] = json!(utf8(initrd, "initrd")?);
        }
        let mut disks = Vec::new();
        for (i, d) in spec.drives().enumerate() {
            disks.push(json!({
                "path": utf8(&d.path, "drive")?,
                "readonly": d.read_only,
                "serial": drive_serial(i),
            }));
        }
        let net = match &spec.net {
            NetSpec::None => Vec::new(),
            NetSpec::User { .. } => {
                return Err(ProviderError::Unsupported {
                    provider: Provider::CloudHypervisor,
                    what: "user-mode networking".into(),
                    fix: "use `[network] mode = \"bridge\"` (a TAP device), or provider `qemu`"
                        .into(),
                });
            }
            NetSpec::Tap { tap, mac } => vec![json!({ "tap": tap, "mac": mac })],
        };
        let memory_bytes =
            spec.memory_mib
                .checked_mul(1 << 20)
                .ok_or_else(|| ProviderError::Unsupported {
                    provider: Provider::CloudHypervisor,
                    what: format!(
                        "{} MiB of guest memory (more than 2^64 bytes)",
                        spec.memory_mib
                    ),
                    fix: format!("give the VM at most {} MiB", crate::hac::MAX_MEMORY_MIB),
                })?;
        let mut cfg = json!({
            "cpus": { "boot_vcpus": spec.cpus, "max_vcpus": spec.cpus },
            "memory": { "size": memory_bytes, "shared": true },
            "payload": payload,
            "serial": { "mode": "File", "file": utf8(&spec.console_log, "console log")? },
            "console": { "mode": "Off" },
        });
        if !disks.is_empty() {
            cfg["disks"] = Value::Array(disks);
        }
        if !net.is_empty() {
            cfg["net"] = Value::Array(net);
        }
        if let Some(v) = &spec.vsock {
            cfg["vsock"] = json!({ "cid": v.guest_cid, "socket": utf8(&v.uds_path, "vsock")? });
        }
        Ok(cfg)
    }
}

fn put(action: &str, body: Option<Value>) -> ApiCall {
    ApiCall::put(format!("{API}/{action}"), body)
}

#[async_trait]
impl Vmm for CloudHypervisor {
    fn provider(&self) -> Provider {
        Provider::CloudHypervisor
    }

    fn check(&self, host: &HostFacts) -> Result<(), String> {
        host.require(
            &self.binary,
            "download a release from https://github.com/cloud-hypervisor/cloud-hypervisor/releases",
        )?;
        host.require_kvm("cloud-hypervisor")
    }

    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, ProviderError> {
        let api = Self::api_socket(spec);
        let config = Self::vm_config(spec)?;
        let argv = vec![
            utf8(&self.binary, "cloud-hypervisor binary")?.to_string(),
            "--api-socket".to_string(),
            format!("path={}", utf8(&api, "API socket")?),
        ];
        let mut plan = LaunchPlan {
            api_socket: Some(api.clone()),
            api_calls: vec![put("vm.create", Some(config)), put("vm.boot", None)],
            ..LaunchPlan::default()
        };
        if let Some(v) = &spec.vsock {
            plan.remove_first.push(v.uds_path.clone());
        }
        plan.processes.push(ProcessPlan {
            name: "cloud-hypervisor".into(),
            argv,
            env: Vec::new(),
            cwd: Some(spec.run_dir.clone()),
            stdout: spec.run_path("cloud-hypervisor.stdout"),
            stderr: spec.run_path("cloud-hypervisor.stderr"),
            wait_for: vec![api],
        });
        check_socket_paths(&plan)?;
        Ok(plan)
    }

    async fn request_shutdown(&self, spec: &LaunchSpec) -> Result<(), ProviderError> {
        // The ACPI power button lets the guest shut down cleanly;
        // `vm.shutdown` would stop it at once.
        api_client::call(
            &Self::api_socket(spec),
            &put("vm.power-button", None),
            API_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    async fn status(&self, spec: &LaunchSpec) -> Result<VmmStatus, ProviderError> {
        let socket = Self::api_socket(spec);
        let call = ApiCall {
            method: HttpMethod::Get,
            path: format!("{API}/vm.info"),
            body: None,
        };
        let info = api_client::call(&socket, &call, API_TIMEOUT).await?;
        match info
            .as_ref()
            .and_then(|v| v.get("state"))
            .and_then(Value::as_str)
        {
            Some("Running") => Ok(VmmStatus::Running),
            Some("Paused") => Ok(VmmStatus::Paused),
            Some("Created") => Ok(VmmStatus::NotStarted),
            Some("Shutdown") => Ok(VmmStatus::Shutdown),
            Some(other) => Ok(VmmStatus::Other(other.to_string())),
            None => Err(ProviderError::Protocol {
                socket,
                message: "GET /api/v1/vm.info returned no state".into(),
            }),
        }
    }
}

#[cfg(test)]
#[path = "cloud_hypervisor_tests.rs"]
mod tests;
