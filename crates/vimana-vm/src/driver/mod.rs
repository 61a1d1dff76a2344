//! The `vm` workload kind: [`VmDriver`] implements the framework's
//! [`Driver`] on top of the [`Vmm`](crate::provider::Vmm) seam. The
//! framework owns state, restarts, events and logs; this module turns a
//! stored VM description into running processes (or re-adopts them).

mod adopt;
mod console;
mod handle;
mod instance;
mod launch;
pub mod prepare;
mod ready;
mod remove;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use vimana_api::{ApiError, WorkloadKind, WorkloadName, WorkloadSpec};
use vimana_core::{Driver, DriverError, Instance, RunContext};

pub use handle::{HANDLE_FILE, Proc, VmHandle};
pub use remove::remove_run_dir;

use crate::model::{NetworkMode, VmConfig};
use crate::network::{BridgeNetwork, BridgeSettings};

/// Where the driver keeps things and what it boots with.
#[derive(Clone, Debug)]
pub struct VmDriverConfig {
    /// One run directory per VM: `<state_dir>/<name>`.
    pub state_dir: PathBuf,
    /// Built initramfs archives, by content hash.
    pub cache_dir: PathBuf,
    /// busybox-static, copied into every vimana-built initramfs.
    pub busybox: PathBuf,
    /// The static guest agent; `None`: `vimana_agent::locate_static_agent`.
    pub agent: Option<PathBuf>,
    /// The kernel of VMs whose hac.toml names none.
    pub default_kernel: Option<PathBuf>,
    /// How long a VM may take from launch until its agent answers.
    pub ready_timeout: Duration,
    /// Budget of the whole stop sequence (agent, ACPI, SIGTERM).
    pub stop_timeout: Duration,
    /// Registries (`host[:port]`) that root-filesystem images may be pulled
    /// from over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// `Some(reason)` forces TCG (tests, or a host known to lack KVM);
    /// `None` probes KVM by running a tiny guest once.
    pub force_tcg: Option<String>,
}

impl VmDriverConfig {
    /// Defaults under a `VIMANA_HOME`-like root.
    pub fn under(root: &std::path::Path) -> Self {
        let default_kernel = root.join("vm/kernel/vmlinuz");
        Self {
            state_dir: root.join("vms"),
            cache_dir: root.join("cache/vm"),
            busybox: PathBuf::from("/bin/busybox"),
            agent: None,
            default_kernel: default_kernel.is_file().then_some(default_kernel),
            ready_timeout: Duration::from_secs(120),
            stop_timeout: Duration::from_secs(30),
            insecure_registries: Vec::new(),
            force_tcg: None,
        }
    }
}

impl VmDriverConfig {
    /// Where root filesystems built from OCI images are cached.
    pub(crate) fn rootfs_cache(&self) -> PathBuf {
        self.cache_dir.join("rootfs")
    }
}

/// The microVM driver.
pub struct VmDriver {
    cfg: VmDriverConfig,
    /// KVM usability, probed once (`Err`: why not).
    kvm: OnceLock<Result<(), String>>,
    /// The host bridge, set up on the first bridge-mode VM.
    net: OnceLock<Result<Arc<BridgeNetwork>, String>>,
}

impl VmDriver {
    /// The driver of one daemon. What builds of a killed daemon left in the
    /// root-filesystem cache's `tmp/` is removed here, at daemon start.
    pub fn new(cfg: VmDriverConfig) -> Self {
        crate::rootfs::RootfsBuilder::new(cfg.rootfs_cache(), Vec::new()).remove_stale_work();
        Self {
            cfg,
            kvm: OnceLock::new(),
            net: OnceLock::new(),
        }
    }

    /// The bridge network (one per daemon: it serialises its changes).
    pub(crate) fn network(&self) -> Result<Arc<BridgeNetwork>, DriverError> {
        self.net
            .get_or_init(|| {
                BridgeNetwork::on_host(BridgeSettings::under(&self.cfg.state_dir.join("net")))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(DriverError::new)
    }

    /// Whether KVM really runs a guest here (cached after the first probe).
    pub async fn kvm(&self) -> Result<(), String> {
        if let Some(r) = self.kvm.get() {
            return r.clone();
        }
        let r = match &self.cfg.force_tcg {
            Some(why) => Err(why.clone()),
            None => tokio::task::spawn_blocking(|| {
                vimana_host::kvm_usable(Duration::from_secs(2)).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("KVM probe failed: {e}"))),
        };
        self.kvm.get_or_init(|| r).clone()
    }
}

/// The VM description inside a workload spec, checked by the same rules as
/// a `hac.toml` ([`crate::hac::check`], with this host's memory): the API
/// may send anything. `check_paths`: whether the files it names must exist
/// (on a new spec; a VM being re-adopted keeps running without them).
pub fn config_of(spec: &WorkloadSpec, check_paths: bool) -> Result<VmConfig, String> {
    let WorkloadSpec::Vm(vm) = spec else {
        return Err(format!("expected a vm spec, got {}", spec.kind()));
    };
    let config: VmConfig = serde_json::from_value(vm.config.clone())
        .map_err(|e| format!("invalid VM description: {e}"))?;
    let opts = crate::hac::ParseOptions {
        check_paths,
        ..crate::hac::ParseOptions::for_host()
    };
    crate::hac::check(&config, &opts).map_err(|b| format!("invalid VM description: {b}"))?;
    Ok(config)
}

#[async_trait]
impl Driver for VmDriver {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Vm
    }

    fn validate(&self, spec: &WorkloadSpec) -> Result<(), ApiError> {
        config_of(spec, true)
            .map(|_| ())
            .map_err(ApiError::BadRequest)
    }

    async fn run(&self, ctx: RunContext) -> Result<Box<dyn Instance>, DriverError> {
        let config = config_of(&ctx.spec, false).map_err(DriverError::new)?;
        let net = match config.network.mode {
            NetworkMode::Bridge => Some(self.network()?),
            _ => None,
        };
        if let Some(h) = ctx.adopt.clone() {
            match adopt::adopt(&self.cfg, &ctx, h, self).await {
                Ok(i) => return Ok(i),
                Err(e) if ctx.adopt_only => return Err(e),
                Err(e) => ctx.logs.daemon(format!("cannot re-adopt the VM: {e}")),
            }
        }
        // The stored handle may be of an earlier boot: the daemon can have
        // died while it booted this VM again (the handle file tells).
        if let Some(i) = adopt::resume_unfinished(&self.cfg, &ctx, self).await? {
            return Ok(i);
        }
        let kvm = self.kvm().await;
        launch::launch(&self.cfg, &ctx, &config, kvm, net).await
    }

    async fn removed(&self, name: &WorkloadName, _spec: &WorkloadSpec) -> Result<(), DriverError> {
        self.forget(name).await
    }
}

pub(crate) type SharedVmm = Arc<dyn crate::provider::Vmm>;
