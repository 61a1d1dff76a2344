//! Firecracker: `firecracker --api-sock <run_dir>/fc.sock --config-file
//! <run_dir>/fc.json`, or (API mode) the same configuration as `PUT` calls
//! followed by `InstanceStart`.
//!
//! The serial console is Firecracker's stdout, so the plan sends stdout to
//! `console_log` and Firecracker's own log to `<run_dir>/firecracker.log`.
//! Limitation: there is no console socket; interactive attach would need a
//! pty on stdin/stdout. No user-mode networking either (TAP only).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::api_client;
use super::{
    ApiCall, HostFacts, HttpMethod, LaunchPlan, LaunchSpec, NetSpec, ProcessPlan, ProviderError,
    Vmm, VmmStatus, check_socket_paths, require_kvm, utf8,
};
use crate::model::Provider;

const API_TIMEOUT: Duration = Duration::from_secs(5);

/// How the VM is configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirecrackerMode {
    /// `--config-file`: Firecracker boots the guest by itself.
    #[default]
    ConfigFile,
    /// `PUT` the configuration and `InstanceStart` over the API socket.
    Api,
}

#[derive(Clone, Debug)]
pub struct Firecracker {
    pub binary: PathBuf,
    pub mode: FirecrackerMode,
}

impl Default for Firecracker {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("firecracker"),
            mode: FirecrackerMode::ConfigFile,
        }
    }
}

/// The pieces of Firecracker's configuration, shared by both modes.
struct Parts {
    boot_source: Value,
    drives: Vec<(String, Value)>,
    machine_config: Value,
    network: Vec<(String, Value)>,
    vsock: Option<Value>,
    logger: Value,
}

impl Firecracker {
    pub fn api_socket(spec: &LaunchSpec) -> PathBuf {
        spec.run_path("fc.sock")
    }

    pub fn config_path(spec: &LaunchSpec) -> PathBuf {
        spec.run_path("fc.json")
    }

    pub fn log_path(spec: &LaunchSpec) -> PathBuf {
        spec.run_path("firecracker.log")
    }

    fn parts(spec: &LaunchSpec) -> Result<Parts, ProviderError> {
        require_kvm(Provider::Firecracker, spec)?;
        let mut boot_source = json!({
            "kernel_image_path": utf8(&spec.kernel, "kernel")?,
            "boot_args": spec.cmdline,
        });
        if let Some(initrd) = &spec.initrd {
            boot_source["initrd_path"] = json!(utf8(initrd, "initrd")?);
        }
        let mut drives = Vec::new();
        for (i, d) in spec.drives().enumerate() {
            let is_root = i == 0 && spec.root_drive.is_some();
            let id = if is_root {
                "root".to_string()
            } else {
                format!("d{i}")
            };
            let value = json!({
                "drive_id": id,
                "path_on_host": utf8(&d.path, "drive")?,
                "is_root_device": is_root,
                "is_read_only": d.read_only,
            });
            drives.push((id, value));
        }
        let network = match &spec.net {
            NetSpec::None => Vec::new(),
            NetSpec::User { .. } => {
                return Err(ProviderError::Unsupported {
                    provider: Provider::Firecracker,
                    what: "user-mode networking".into(),
                    fix: "use `[network] mode = \"bridge\"` (a TAP device), or provider `qemu`"
                        .into(),
                });
            }
            NetSpec::Tap { tap, mac } => vec![(
                "eth0".to_string(),
                json!({ "iface_id": "eth0", "host_dev_name": tap, "guest_mac": mac }),
            )],
        };
        let vsock = match &spec.vsock {
            Some(v) => Some(json!({
                "guest_cid": v.guest_cid,
                "uds_path": utf8(&v.uds_path, "vsock")?,
            })),
            None => None,
        };
        Ok(Parts {
            boot_source,
            drives,
            machine_config: json!({
                "vcpu_count": spec.cpus,
                "mem_size_mib": spec.memory_mib,
                "smt": false,
            }),
            network,
            vsock,
            logger: json!({
                "log_path": utf8(&Self::log_path(spec), "Firecracker log")?,
                "level": "Info",
            }),
        })
    }

    /// The `--config-file` JSON.
    pub fn config_file(spec: &LaunchSpec) -> Result<Value, ProviderError> {
        let p = Self::parts(spec)?;
        let mut cfg = json!({
            "boot-source": p.boot_source,
            "drives": p.drives.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "machine-config": p.machine_config,
            "network-interfaces": p.network.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "logger": p.logger,
        });
        if let Some(v) = p.vsock {
            cfg["vsock"] = v;
        }
        Ok(cfg)
    }

    /// The same configuration as API calls, ending with `InstanceStart`.
    pub fn api_calls(spec: &LaunchSpec) -> Result<Vec<ApiCall>, ProviderError> {
        let p = Self::parts(spec)?;
        let mut calls = vec![
            ApiCall::put("/logger", Some(p.logger)),
            ApiCall::put("/machine-config", Some(p.machine_config)),
            ApiCall::put("/boot-source", Some(p.boot_source)),
        ];
        for (id, d) in p.drives {
            calls.push(ApiCall::put(format!("/drives/{id}"), Some(d)));
        }
        for (id, n) in p.network {
            calls.push(ApiCall::put(format!("/network-interfaces/{id}"), Some(n)));
        }
        if let Some(v) = p.vsock {
            calls.push(ApiCall::put("/vsock", Some(v)));
        }
        calls.push(action("InstanceStart"));
        Ok(calls)
    }
}

fn action(kind: &str) -> ApiCall {
    ApiCall::put("/actions", Some(json!({ "action_type": kind })))
}

#[async_trait]
impl Vmm for Firecracker {
    fn provider(&self) -> Provider {
        Provider::Firecracker
    }

    fn check(&self, host: &HostFacts) -> Result<(), String> {
        host.require(
            &self.binary,
            "download a release from https://github.com/firecracker-microvm/firecracker/releases",
        )?;
        host.require_kvm("firecracker")
    }

    fn plan(&self, spec: &LaunchSpec) -> Result<LaunchPlan, ProviderError> {
        let api = Self::api_socket(spec);
        let mut argv = vec![
            utf8(&self.binary, "firecracker binary")?.to_string(),
            "--api-sock".to_string(),
            utf8(&api, "API socket")?.to_string(),
        ];
        // The logger's file must exist before Firecracker opens it.
        let mut plan = LaunchPlan {
            files: vec![(Self::log_path(spec), Vec::new())],
            api_socket: Some(api.clone()),
            ..LaunchPlan::default()
        };
        if let Some(v) = &spec.vsock {
            plan.remove_first.push(v.uds_path.clone());
        }
        match self.mode {
            FirecrackerMode::ConfigFile => {
                let path = Self::config_path(spec);
                let cfg = serde_json::to_vec_pretty(&Self::config_file(spec)?).map_err(|e| {
                    ProviderError::InvalidSpec {
                        message: format!("cannot encode the Firecracker config: {e}"),
                    }
                })?;
                argv.push("--config-file".into());
                argv.push(utf8(&path, "config file")?.to_string());
                plan.files.push((path, cfg));
            }
            FirecrackerMode::Api => plan.api_calls = Self::api_calls(spec)?,
        }
        plan.processes.push(ProcessPlan {
            name: "firecracker".into(),
            argv,
            env: Vec::new(),
            cwd: Some(spec.run_dir.clone()),
            stdout: spec.console_log.clone(),
            stderr: spec.run_path("firecracker.stderr"),
            wait_for: vec![api],
        });
        check_socket_paths(&plan)?;
        Ok(plan)
    }

    async fn request_shutdown(&self, spec: &LaunchSpec) -> Result<(), ProviderError> {
        let socket = Self::api_socket(spec);
        api_client::call(&socket, &action("SendCtrlAltDel"), API_TIMEOUT).await?;
        Ok(())
    }

    async fn status(&self, spec: &LaunchSpec) -> Result<VmmStatus, ProviderError> {
        let socket = Self::api_socket(spec);
        let call = ApiCall {
            method: HttpMethod::Get,
            path: "/".into(),
            body: None,
        };
        let info = api_client::call(&socket, &call, API_TIMEOUT).await?;
        let state = info
            .as_ref()
            .and_then(|v| v.get("state"))
            .and_then(Value::as_str);
        match state {
            Some("Running") => Ok(VmmStatus::Running),
            Some("Paused") => Ok(VmmStatus::Paused),
            Some("Not started") => Ok(VmmStatus::NotStarted),
            Some(other) => Ok(VmmStatus::Other(other.to_string())),
            None => Err(ProviderError::Protocol {
                socket,
                message: format!("GET / returned no state: {}", shown(info)),
            }),
        }
    }
}

fn shown(v: Option<Value>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "(no body)".into())
}

#[cfg(test)]
#[path = "firecracker_tests.rs"]
mod tests;
